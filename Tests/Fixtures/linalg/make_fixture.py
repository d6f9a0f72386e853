#!/usr/bin/env python3
"""numpy/scipy reference values for LinAlgTests, written to linalg.json.

    python3 make_fixture.py
"""
import json
import pathlib

import numpy as np
import scipy.linalg

rng = np.random.default_rng(2024)
out = {}

a = rng.standard_normal((4, 3))
b = rng.standard_normal((3, 5))
out["gemm"] = {"a": a.ravel().tolist(), "b": b.ravel().tolist(),
               "ab": (a @ b).ravel().tolist(),          # (4×3)(3×5)
               "atat": (a.T @ a).ravel().tolist(),      # Aᵀ A (3×3)
               "aat": (a @ a.T).ravel().tolist(),       # A Aᵀ (4×4)
               "btat": (b.T @ a.T).ravel().tolist()}    # Bᵀ Aᵀ (5×4)

x = rng.standard_normal((9, 6))
spd = x.T @ x + 0.5 * np.eye(6)
rhs = rng.standard_normal((6, 3))
out["spd"] = {"a": spd.ravel().tolist(), "b": rhs.ravel().tolist(),
              "x": scipy.linalg.solve(spd, rhs, assume_a="pos").ravel().tolist(),
              "cond1": float(np.linalg.cond(spd, 1)),
              "eigenvalues": np.linalg.eigvalsh(spd).tolist()}

# Exactly singular PSD (rank 3 of 6), right-hand side in its range: the minimum-norm
# solution is pinv(G) B.
xs = rng.standard_normal((3, 6))
g = xs.T @ xs
w = rng.standard_normal((6, 2))
bs = g @ w
out["singular"] = {"a": g.ravel().tolist(), "b": bs.ravel().tolist(),
                   "x_pinv": (np.linalg.pinv(g) @ bs).ravel().tolist(), "rank": 3}

# Ill-conditioned SPD: Hilbert matrix of order 10 (cond ≈ 1.6e13).
h = scipy.linalg.hilbert(10)
xh = np.ones(10)
out["hilbert"] = {"a": h.ravel().tolist(), "b": (h @ xh).tolist(), "cond2": float(np.linalg.cond(h))}

pathlib.Path(__file__).with_name("linalg.json").write_text(json.dumps(out, indent=1))
print("wrote linalg.json")
