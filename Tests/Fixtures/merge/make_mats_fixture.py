#!/usr/bin/env python3
"""Reference for Tests/MergeTests/MaTSTests.swift: the K-FAC MaTS system solved densely.

Three tiny models with a linear `bert.l` (3×4, Gram + K-FAC output factor), a linear `bert.m`
(2×3, Gram only) and a bias. For `bert.l.weight` the merged W solves
    (Σᵢ wᵢ Aᵢ ⊗ Bᵢ) vec(W) = Σᵢ wᵢ (Aᵢ ⊗ Bᵢ) vec(Wᵢ)      (vec column-major: vec(B W A) = (Aᵀ⊗B) vec W)
with Aᵢ = Gᵢ/nᵢ (+ damping·mean diag·I) and Bᵢ = Kᵢ/mᵢ (likewise), formed explicitly with
np.kron and solved with np.linalg.solve. Other tensors keep the init method's value (average,
or RegMean α = 0.9 for `bert.m.weight`). Writes mats_fixture.json beside this script.

Run from the repository root:  python3 Tests/Fixtures/merge/make_mats_fixture.py
"""
import json
import os

import numpy as np

rng = np.random.default_rng(8)
F32 = np.float32
W = [1.0, 2.0, 0.5]
ROWS, KROWS = [6, 9, 7], [5, 8, 4]


def f32(x):
    return np.asarray(x, dtype=F32).astype(np.float64)


def spd(d, rows):
    x = rng.standard_normal((rows, d)) * rng.uniform(0.5, 2.0, size=d)
    return f32(x.T @ x)


models, stats = [], []
for k in range(3):
    models.append({"bert.l.weight": f32(rng.standard_normal((3, 4))), "bert.l.bias": f32(rng.standard_normal(3)),
                   "bert.m.weight": f32(rng.standard_normal((2, 3)))})
    stats.append(({"bert.l.gram": spd(4, ROWS[k]), "bert.l.kfac_out": spd(3, KROWS[k]), "bert.m.gram": spd(3, ROWS[k])},
                  {"bert.l.gram.num_rows": str(ROWS[k]), "bert.l.kfac_out.num_rows": str(KROWS[k]),
                   "bert.m.gram.num_rows": str(ROWS[k])}))


def damp(m, d):
    return m + d * np.trace(m) / m.shape[0] * np.eye(m.shape[0])


def kfac_solution(damping):
    lhs, rhs = 0, 0
    for k in range(3):
        a = damp(stats[k][0]["bert.l.gram"] / ROWS[k], damping)
        b = damp(stats[k][0]["bert.l.kfac_out"] / KROWS[k], damping)
        c = W[k] * np.kron(a.T, b)
        lhs = lhs + c
        rhs = rhs + c @ models[k]["bert.l.weight"].flatten(order="F")
    return np.linalg.solve(lhs, rhs).reshape((3, 4), order="F")


def average(n):
    return sum(W[k] * models[k][n] for k in range(3)) / sum(W)


def regmean(n, lin, alpha=0.9):
    gs, r = 0, 0
    for k in range(3):
        g = stats[k][0][lin + ".gram"] / ROWS[k]
        gt = alpha * g + (1 - alpha) * np.diag(np.diag(g))
        gs, r = gs + W[k] * gt, r + W[k] * gt @ models[k][n].T
    return np.linalg.solve(gs, r).T


def enc(t):
    t = np.asarray(t)
    return {"shape": list(t.shape), "data": [float(x) for x in t.ravel()]}


cases = [
    ({"objective": "kfac", "init": "average", "damping": 0.0},
     {"bert.l.weight": kfac_solution(0.0), "bert.l.bias": average("bert.l.bias"), "bert.m.weight": average("bert.m.weight")}),
    ({"objective": "kfac", "init": "regmean", "damping": 0.1},
     {"bert.l.weight": kfac_solution(0.1), "bert.l.bias": average("bert.l.bias"), "bert.m.weight": regmean("bert.m.weight", "bert.m")}),
]
fixture = {
    "models": [{"name": "abc"[k], "weight": W[k], "tensors": {n: enc(t) for n, t in models[k].items()},
                "stats": {"tensors": {n: enc(t) for n, t in stats[k][0].items()}, "metadata": stats[k][1]}} for k in range(3)],
    "base": {},
    "cases": [{"method": "mats", "parameters": p, "expected": {n: enc(t) for n, t in e.items()}} for p, e in cases],
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mats_fixture.json")
with open(path, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")
