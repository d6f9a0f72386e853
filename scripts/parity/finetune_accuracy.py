#!/usr/bin/env python3
"""Fine-tuning parity at the level of results: the same train/test CSV split fine-tuned with
`fedmerge finetune` and with PyTorch + transformers (the same recipe: AdamW, weight decay 0.01
off biases/LayerNorm, 6% linear warmup then linear decay, clip 1.0, dropout 0.1, batch 16,
BertForSequenceClassification head), over several seeds; prints accuracy / macro-F1 mean ± std
of both and writes a JSON next to --out. Each side seeds its own head init, shuffling and
dropout, so single runs differ; the claim is about the distributions.

PyTorch is a reference only: run this with the python of a venv that has torch and
transformers; FedMerge runs as the release binary.

  /path/to/venv/bin/python scripts/parity/finetune_accuracy.py --model .cache/models/minilm-l6 \
      --train .cache/demo/data/movies/train.csv --test .cache/demo/data/movies/test.csv \
      --seeds 1 2 3 --out results/parity/finetune-movies.json
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time


def read(path):
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def macro_f1(gold, pred, labels):
    f1s = []
    for l in labels:
        tp = sum(g == l and p == l for g, p in zip(gold, pred))
        fp = sum(g != l and p == l for g, p in zip(gold, pred))
        fn = sum(g == l and p != l for g, p in zip(gold, pred))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


def torch_run(args, seed):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    texts, labels = read(args.train)
    test_texts, test_labels = read(args.test)
    names = sorted(set(labels))
    y = [names.index(l) for l in labels]
    tok = AutoTokenizer.from_pretrained(args.model)
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=len(names))
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, eps=1e-8)
    steps_per_epoch = (len(texts) + args.batch - 1) // args.batch
    total = steps_per_epoch * args.epochs
    sched = get_linear_schedule_with_warmup(opt, round(0.06 * total), total)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(texts), generator=g).tolist()
        for s in range(0, len(order), args.batch):
            idx = order[s:s + args.batch]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=args.max_len, return_tensors="pt")
            out = model(**enc, labels=torch.tensor([y[i] for i in idx]))
            opt.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
    seconds = time.perf_counter() - start
    model.eval()
    pred = []
    with torch.inference_mode():
        for s in range(0, len(test_texts), 64):
            enc = tok(test_texts[s:s + 64], padding=True, truncation=True, max_length=args.max_len, return_tensors="pt")
            pred += [names[k] for k in model(**enc).logits.argmax(-1).tolist()]
    acc = sum(p == t for p, t in zip(pred, test_labels)) / len(test_labels)
    return {"accuracy": acc, "macro_f1": macro_f1(test_labels, pred, names), "train_seconds": seconds}


def fedmerge_run(args, seed):
    out_dir = os.path.join(os.path.dirname(os.path.abspath(args.out)), f".parity-model-{seed}")
    cmd = [args.fedmerge, "finetune", "--model", args.model, "--train", args.train, "--test", args.test, "--out", out_dir,
           "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch-size", str(args.batch), "--max-len", str(args.max_len),
           "--seed", str(seed)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"}).stdout
    result = json.loads(text.strip().splitlines()[-1])
    subprocess.run(["rm", "-rf", out_dir], check=True)
    return {"accuracy": result["test_accuracy"], "macro_f1": result["test_macro_f1"], "train_seconds": result["train_seconds"]}


def summary(runs, key):
    values = [r[key] * 100 for r in runs]
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-len", type=int, default=64)
    p.add_argument("--fedmerge", default=".build/release/fedmerge")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    runs = {"fedmerge": [], "transformers": []}
    for seed in args.seeds:  # alternate A/B so load on the machine hits both alike
        runs["fedmerge"].append(fedmerge_run(args, seed))
        runs["transformers"].append(torch_run(args, seed))
        print(f"seed {seed}: fedmerge {runs['fedmerge'][-1]}, transformers {runs['transformers'][-1]}", flush=True)
    report = {"command": " ".join(sys.argv), "recipe": vars(args), "runs": runs, "summary": {}}
    for side, rs in runs.items():
        (a, sa), (f, sf) = summary(rs, "accuracy"), summary(rs, "macro_f1")
        report["summary"][side] = {"accuracy_mean": a, "accuracy_std": sa, "macro_f1_mean": f, "macro_f1_std": sf,
                                   "train_seconds_mean": statistics.mean(r["train_seconds"] for r in rs)}
        print(f"{side:13s} accuracy {a:.1f} ± {sa:.1f}   macro-F1 {f:.1f} ± {sf:.1f}   ({len(rs)} seeds)")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh, indent=1)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
