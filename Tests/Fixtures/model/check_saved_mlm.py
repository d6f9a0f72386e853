#!/usr/bin/env python3
"""Checks a masked-LM directory saved by `fedmerge pretrain` from outside Swift, with the
`safetensors` package (numpy backend): config.json declares BertForMaskedLM with tied word
embeddings; the tensors are BertForMaskedLM's state dict as modeling_bert.py lays it out
(bert.embeddings.*, bert.encoder.layer.N.*, cls.predictions.transform.dense.*,
cls.predictions.transform.LayerNorm.*, cls.predictions.bias; the decoder weight is the word
embeddings and the decoder bias is cls.predictions.bias, so neither is stored again), plus
bert.pooler.* which BertForMaskedLM ignores; and the numpy BERT forward of make_reference.py
followed by the head (dense, erf GELU, LayerNorm, logits = h·wteᵀ + bias) gives the logits
FedMerge computed at the selected positions
(cases.json: [{"ids": [...], "positions": [...], "logits": [[...], ...]}]).

Usage: check_saved_mlm.py MODEL_DIR CASES_JSON   — prints one JSON line, exits 1 on mismatch.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_saved_model import expected_state_dict, finish, load_weights  # noqa: E402
from make_reference import bert, gelu, layer_norm  # noqa: E402


def main():
    model_dir, cases_path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    problems = []
    if cfg.get("architectures") != ["BertForMaskedLM"]:
        problems.append(f"architectures = {cfg.get('architectures')}")
    if cfg.get("tie_word_embeddings", True) is not True:
        problems.append("tie_word_embeddings is not true")
    C, V = cfg["hidden_size"], cfg["vocab_size"]
    expected = expected_state_dict(dict(cfg, num_labels=0))
    del expected["classifier.weight"], expected["classifier.bias"]
    expected.update({"cls.predictions.transform.dense.weight": [C, C], "cls.predictions.transform.dense.bias": [C],
                     "cls.predictions.transform.LayerNorm.weight": [C], "cls.predictions.transform.LayerNorm.bias": [C],
                     "cls.predictions.bias": [V]})
    W = load_weights(model_dir, expected, problems)

    worst = 0.0
    if not problems:
        plain = {k[5:] if k.startswith("bert.") else k: v for k, v in W.items()}
        eps = cfg["layer_norm_eps"]
        for case in json.load(open(cases_path)):
            h = bert(plain, cfg, case["ids"])[case["positions"]]
            t = gelu(h @ plain["cls.predictions.transform.dense.weight"].T + plain["cls.predictions.transform.dense.bias"])
            t = layer_norm(t, plain["cls.predictions.transform.LayerNorm.weight"], plain["cls.predictions.transform.LayerNorm.bias"], eps)
            logits = t @ plain["embeddings.word_embeddings.weight"].T + plain["cls.predictions.bias"]
            worst = max(worst, float(np.abs(logits - np.array(case["logits"])).max()))
    finish(problems, W, worst)


if __name__ == "__main__":
    main()
