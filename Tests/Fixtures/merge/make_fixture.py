#!/usr/bin/env python3
"""Reference merges for Tests/MergeTests/FixtureTests.swift, computed independently in numpy.

A toy 2-layer model (HF-style names with the fine-tuned `bert.` prefix; the base has no
prefix) fine-tuned three times, with Grams (query/key share one via `same_as`), diagonal
Fishers (some entries below the floor) and label counts. Every method and heads mode is
computed here directly from its definition (all models in memory, float64, np.linalg.solve)
and written with the fp32 inputs to merge_fixture.json.

Run from the repository root:  python3 Tests/Fixtures/merge/make_fixture.py
"""
import json
import os

import numpy as np

rng = np.random.default_rng(20261123)
F32 = np.float32

# name -> shape; linears are (out, in).
SHAPES = {
    "bert.embeddings.word_embeddings.weight": (5, 3),
    "bert.encoder.layer.0.attention.self.query.weight": (3, 3),
    "bert.encoder.layer.0.attention.self.query.bias": (3,),
    "bert.encoder.layer.0.attention.self.key.weight": (3, 3),
    "bert.encoder.layer.0.attention.self.key.bias": (3,),
    "bert.encoder.layer.0.intermediate.dense.weight": (4, 3),
    "bert.encoder.layer.0.intermediate.dense.bias": (4,),
    "bert.encoder.layer.1.output.dense.weight": (3, 4),
    "bert.encoder.layer.1.output.dense.bias": (3,),
    "classifier.weight": (2, 3),
    "classifier.bias": (2,),
}
# linear -> name of the linear whose Gram it shares (None: its own Gram).
GRAMS = {
    "bert.encoder.layer.0.attention.self.query": None,
    "bert.encoder.layer.0.attention.self.key": "bert.encoder.layer.0.attention.self.query",
    "bert.encoder.layer.0.intermediate.dense": None,
    "bert.encoder.layer.1.output.dense": None,
    "classifier": None,
}
NAMES = ["a", "b", "c"]
WEIGHTS = [1.0, 2.0, 0.5]
ROWS = [7, 11, 5]
LABEL_COUNTS = [[5, 0], [3, 4], [0, 6]]


def f32(x):
    return np.asarray(x, dtype=F32).astype(np.float64)


base = {n[len("bert."):] if n.startswith("bert.") else n: f32(rng.standard_normal(s))
        for n, s in SHAPES.items() if not n.startswith("classifier")}


def base_of(name):
    if name in base:
        return base[name]
    stripped = name.split(".", 1)[1] if "." in name else name
    return base.get(stripped)


models, stats = [], []
for k in range(3):
    tensors = {}
    for n, s in SHAPES.items():
        b = base_of(n)
        tensors[n] = f32((b if b is not None else 0) + 0.5 * rng.standard_normal(s))
    models.append(tensors)
    st, meta = {}, {}
    for lin, same in GRAMS.items():
        if same is not None:
            meta[lin + ".gram.same_as"] = same
            continue
        d = SHAPES[lin + ".weight"][1]
        x = rng.standard_normal((ROWS[k], d)) * rng.uniform(0.5, 2.0, size=d)
        st[lin + ".gram"] = f32(x.T @ x)
        meta[lin + ".gram.num_rows"] = str(ROWS[k])
    for n, s in SHAPES.items():
        f = rng.uniform(0.01, 1.0, size=s)
        if n == "bert.encoder.layer.0.intermediate.dense.bias":
            f[:2] = 1e-9           # below the floor in every model: falls back to the average
        st[n + ".fisher"] = f32(f)
    meta["train.label_counts"] = json.dumps(LABEL_COUNTS[k])
    stats.append((st, meta))

w = np.array(WEIGHTS)


def average(name, idx=range(3)):
    idx = list(idx)
    return sum(w[i] * models[i][name] for i in idx) / sum(w[i] for i in idx)


def gram_of(k, lin):
    st, meta = stats[k]
    src = meta.get(lin + ".gram.same_as", lin)
    return st[src + ".gram"], int(meta[src + ".gram.num_rows"])


def regmean(alpha_for, normalize="mean", heads="average"):
    out = {}
    for n in SHAPES:
        lin = n[: -len(".weight")] if n.endswith(".weight") else None
        if heads != "average" and n.startswith("classifier."):
            continue
        if lin in GRAMS:
            a = alpha_for(n)
            gs, rhs = 0, 0
            for k in range(3):
                g, rows = gram_of(k, lin)
                g = g / rows if normalize == "mean" else g
                gt = a * g + (1 - a) * np.diag(np.diag(g))
                gs = gs + w[k] * gt
                rhs = rhs + w[k] * gt @ models[k][n].T
            out[n] = np.linalg.solve(gs, rhs).T
        else:
            out[n] = average(n)
    return out


def fisher(floor=1e-6, normalize="none"):
    out = {}
    # normalize l2: each model's Fisher divided by its L2 norm over every tensor's Fisher.
    scale = [1.0] * 3
    if normalize == "l2":
        scale = [1 / np.sqrt(sum(np.sum(stats[k][0][n + ".fisher"].astype(np.float64) ** 2) for n in SHAPES)) for k in range(3)]
    for n in SHAPES:
        fs = sum(w[k] * scale[k] * stats[k][0][n + ".fisher"] for k in range(3))
        num = sum(w[k] * scale[k] * stats[k][0][n + ".fisher"] * models[k][n] for k in range(3))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[n] = np.where(fs < floor, average(n), num / fs)
    return out


def task_arithmetic(lam):
    out = {}
    for n in SHAPES:
        b = base_of(n)
        out[n] = average(n) if b is None else b + lam * sum(w[k] * (models[k][n] - b) for k in range(3))
    return out


def ties(density, lam):
    out = {}
    for n in SHAPES:
        b = base_of(n)
        if b is None:
            out[n] = average(n)
            continue
        trimmed = []
        for k in range(3):
            tau = (models[k][n] - b).ravel()
            keep = np.argsort(-np.abs(tau))[: int(density * tau.size)]
            t = np.zeros_like(tau)
            t[keep] = tau[keep]
            trimmed.append(w[k] * t)
        trimmed = np.array(trimmed)
        elected = np.sign(trimmed.sum(axis=0))
        agree = (np.sign(trimmed) == elected) & (trimmed != 0)
        weight_sum = (agree * w[:, None]).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            merged = np.where(weight_sum > 0, (trimmed * agree).sum(axis=0) / weight_sum, 0.0)
        out[n] = b + lam * merged.reshape(b.shape)
    return out


def with_heads(out, mode):
    heads = [n for n in SHAPES if n.startswith("classifier.")]
    if mode == "keep":
        for n in heads:
            for k, name in enumerate(NAMES):
                out["classifier_" + name + n[len("classifier"):]] = models[k][n]
    elif mode == "per_label":
        for n in heads:
            t = average(n).copy()
            for label in range(2):
                seen = [k for k in range(3) if LABEL_COUNTS[k][label] > 0]
                t[label] = average(n, seen)[label]
            out[n] = t
    return out


def alpha_schedule(n):
    return 0.5 if "layer.1" in n else 0.9


cases = [
    ("average", {}, {n: average(n) for n in SHAPES}),
    ("fisher", {}, fisher()),
    ("fisher", {"fisher_floor": 0.05}, fisher(0.05)),
    ("fisher", {"fisher_normalize": "l2", "fisher_floor": 1e-4}, fisher(1e-4, normalize="l2")),
    ("regmean", {}, regmean(lambda n: 0.9)),
    ("regmean", {"alpha": [{"filter": "layer.1", "value": 0.5}, {"value": 0.9}], "gram_normalize": "sum"},
     regmean(alpha_schedule, normalize="sum")),
    ("regmean", {"alpha": 1.0, "heads": "keep"}, with_heads(regmean(lambda n: 1.0, heads="keep"), "keep")),
    ("regmean", {"heads": "per_label"}, with_heads(regmean(lambda n: 0.9, heads="per_label"), "per_label")),
    ("average", {"heads": "per_label"}, with_heads({n: average(n) for n in SHAPES if not n.startswith("classifier.")}, "per_label")),
    ("task_arithmetic", {"lambda": 0.7}, task_arithmetic(0.7)),
    ("ties", {"density": 0.4, "lambda": 1.0}, ties(0.4, 1.0)),
    ("ties", {"density": 0.4, "lambda": 0.8, "heads": "keep"},
     with_heads({n: v for n, v in ties(0.4, 0.8).items() if not n.startswith("classifier.")}, "keep")),
]


def enc(t):
    t = np.asarray(t)
    return {"shape": list(t.shape), "data": [float(x) for x in t.ravel()]}


fixture = {
    "models": [{"name": NAMES[k], "weight": WEIGHTS[k],
                "tensors": {n: enc(t) for n, t in models[k].items()},
                "stats": {"tensors": {n: enc(t) for n, t in stats[k][0].items()}, "metadata": stats[k][1]}}
               for k in range(3)],
    "base": {n: enc(t) for n, t in base.items()},
    "cases": [{"method": m, "parameters": p, "expected": {n: enc(t) for n, t in e.items()}} for m, p, e in cases],
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "merge_fixture.json")
with open(path, "w") as f:
    json.dump(fixture, f, indent=None, separators=(",", ":"))
print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")
