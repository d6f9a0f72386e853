#!/usr/bin/env python3
"""Checks a model directory saved by FedMerge from outside Swift, with the `safetensors` package
(numpy backend; `pip install safetensors`): the tensor names and shapes are exactly the state
dict of transformers' BertForSequenceClassification (bert.embeddings.*, bert.encoder.layer.N.*,
bert.pooler.dense.*, classifier.*, as in modeling_bert.py), config.json carries
architectures/num_labels/id2label/label2id, and the numpy BERT forward of make_reference.py on
the saved weights gives the logits FedMerge computed (cases.json: [{"ids": [...], "logits": [...]}]).
torch/transformers are not installable here, so the state dict is listed from the model's
documented structure rather than instantiated.

Usage: check_saved_model.py MODEL_DIR CASES_JSON   — prints one JSON line, exits 1 on mismatch.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import bert  # noqa: E402  (the same independent numpy forward)


def expected_state_dict(cfg):
    C, I, K = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_labels"]
    e = {
        "bert.embeddings.word_embeddings.weight": [cfg["vocab_size"], C],
        "bert.embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], C],
        "bert.embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], C],
        "bert.embeddings.LayerNorm.weight": [C], "bert.embeddings.LayerNorm.bias": [C],
        "bert.pooler.dense.weight": [C, C], "bert.pooler.dense.bias": [C],
        "classifier.weight": [K, C], "classifier.bias": [K],
    }
    for l in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            e[p + n + ".weight"] = [C, C]
            e[p + n + ".bias"] = [C]
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            e[p + n + ".weight"] = [C]
            e[p + n + ".bias"] = [C]
        e[p + "intermediate.dense.weight"] = [I, C]
        e[p + "intermediate.dense.bias"] = [I]
        e[p + "output.dense.weight"] = [C, I]
        e[p + "output.dense.bias"] = [C]
    return e


def load_weights(model_dir, expected, problems):
    """The saved tensors as float64; names or shapes other than `expected` are added to problems."""
    W = {k: v.astype(np.float64) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    missing = sorted(set(expected) - set(W))
    extra = sorted(set(W) - set(expected))
    wrong = sorted(k for k in expected if k in W and list(W[k].shape) != expected[k])
    if missing or extra or wrong:
        problems.append(f"missing {missing[:5]}, unexpected {extra[:5]}, wrong shapes {wrong[:5]}")
    return W


def finish(problems, W, worst):
    """Prints the verdict line and exits 1 on any problem (logits off by more than 1e-4 included)."""
    if worst > 1e-4:
        problems.append(f"logits differ by {worst}")
    print(json.dumps({"ok": not problems, "problems": problems, "tensors": len(W), "max_abs_logit_diff": worst}))
    sys.exit(0 if not problems else 1)


def main():
    model_dir, cases_path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    problems = []
    if cfg.get("architectures") != ["BertForSequenceClassification"]:
        problems.append(f"architectures = {cfg.get('architectures')}")
    K = cfg.get("num_labels")
    id2label = cfg.get("id2label", {})
    if K != len(id2label) or sorted(id2label) != [str(i) for i in range(K)]:
        problems.append(f"num_labels {K} vs id2label {id2label}")
    if {v: int(k) for k, v in id2label.items()} != cfg.get("label2id"):
        problems.append("label2id is not the inverse of id2label")
    for f in ("vocab.txt",):
        if not os.path.exists(os.path.join(model_dir, f)):
            problems.append(f"{f} missing")

    W = load_weights(model_dir, expected_state_dict(cfg), problems)

    worst = 0.0
    if not problems:
        plain = {k[5:] if k.startswith("bert.") else k: v for k, v in W.items()}
        for case in json.load(open(cases_path)):
            h = bert(plain, cfg, case["ids"])
            pooled = np.tanh(h[0] @ plain["pooler.dense.weight"].T + plain["pooler.dense.bias"])
            logits = pooled @ plain["classifier.weight"].T + plain["classifier.bias"]
            worst = max(worst, float(np.abs(logits - np.array(case["logits"])).max()))
    finish(problems, W, worst)


if __name__ == "__main__":
    main()
