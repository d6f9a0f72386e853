#!/usr/bin/env python3
"""numpy reference for `fedmerge bench linalg`: the same sgemm/dgemm and fp64 Cholesky solve.

Threads are set by the caller through OPENBLAS_NUM_THREADS. Prints one JSON object.
"""
import argparse
import json
import time

import numpy as np
import scipy.linalg


def best_time(repeats, fn):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemm-size", type=int, default=2048)
    ap.add_argument("--solve-size", type=int, default=1536)
    ap.add_argument("--rhs", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    n = args.gemm_size
    flops = 2.0 * n ** 3
    out = {}
    for dtype, name in ((np.float32, "sgemm"), (np.float64, "dgemm")):
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        c = np.empty((n, n), dtype=dtype)
        out[name + "_gflops"] = flops / 1e9 / best_time(args.repeats, lambda: np.matmul(a, b, out=c))
    d = args.solve_size
    x = rng.standard_normal((2 * d, d))
    spd = x.T @ x / (2 * d) + np.eye(d)
    rhs = rng.standard_normal((d, args.rhs))
    out["cholesky_solve_s"] = best_time(
        args.repeats, lambda: scipy.linalg.cho_solve(scipy.linalg.cho_factor(spd), rhs))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
