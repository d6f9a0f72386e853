#!/usr/bin/env python3
"""Write a randomly permuted copy of a BERT model directory (numpy, independent of the Swift code).

Function-preserving: one residual permutation P (embedding columns, every LayerNorm, W_O and
W_2 output rows, every consumer's input columns: Q/K/V, intermediate, pooler), per layer an outer
head permutation shared by Q, K, V with inner per-head permutations (Q and K share one, V its
own) and W_O's input columns following V, and the FF neurons. Used to check `fedmerge align`
on real models: aligning the copy back must restore the weights.

    python3 permute_bert.py SRC DST --seed 1
"""
import argparse
import json
import pathlib
import shutil

import numpy as np
from safetensors.numpy import load_file, save_file

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()
src, dst = pathlib.Path(args.src), pathlib.Path(args.dst)
cfg = json.loads((src / "config.json").read_text())
C, I, H, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
d = C // H
mean_pooling = cfg.get("fedmerge_pooling", "cls") == "mean"
rng = np.random.default_rng(args.seed)
t = load_file(str(src / "model.safetensors"))
p = rng.permutation(C)  # new unit i = old unit p[i]


def heads(outer, inner):
    return np.concatenate([outer[j] * d + inner[j] for j in range(H)])


out = {}
for name, w in t.items():
    n = name[5:] if name.startswith("bert.") else name
    rows = cols = None
    if n.startswith("embeddings.") and n.endswith("_embeddings.weight"):
        cols = p
    elif n.startswith("embeddings.LayerNorm."):
        rows = p
    elif n.startswith("encoder.layer."):
        pass
    elif n == "pooler.dense.weight":
        cols = p
    elif n.startswith("classifier") and n.endswith(".weight") and mean_pooling:
        cols = p
    if rows is not None:
        w = w[rows]
    if cols is not None:
        w = w[:, cols]
    out[name] = w
for l in range(L):
    outer = rng.permutation(H)
    qk = heads(outer, [rng.permutation(d) for _ in range(H)])
    v = heads(outer, [rng.permutation(d) for _ in range(H)])
    ff = rng.permutation(I)
    pre = f"bert.encoder.layer.{l}." if f"bert.encoder.layer.{l}.output.dense.weight" in t else f"encoder.layer.{l}."
    for part, rows, cols in [("attention.self.query", qk, p), ("attention.self.key", qk, p), ("attention.self.value", v, p),
                             ("attention.output.dense", p, v), ("intermediate.dense", ff, p), ("output.dense", p, ff)]:
        out[pre + part + ".weight"] = t[pre + part + ".weight"][rows][:, cols]
        out[pre + part + ".bias"] = t[pre + part + ".bias"][rows]
    for ln in ["attention.output.LayerNorm", "output.LayerNorm"]:
        for s in ["weight", "bias"]:
            out[pre + ln + "." + s] = t[pre + ln + "." + s][p]
dst.mkdir(parents=True, exist_ok=True)
save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(dst / "model.safetensors"), metadata={"format": "pt"})
for f in ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
    if (src / f).exists():
        shutil.copy(src / f, dst / f)
