#!/usr/bin/env python3
"""scipy.optimize.linear_sum_assignment optima for LinearAssignmentTests, written to assignment.json.

The cost matrices are not stored: entry k of matrix (n, seed) is the k-th SplitMix64 output of
`seed` as a double in [0, 1) (top 53 bits · 2⁻⁵³), which the Swift test regenerates with
LinAlg's SplitMix64; the stored checksum (sum of entries) catches a generator mismatch.

    python3 make_assignment_fixture.py
"""
import json
import pathlib

import numpy as np
from scipy.optimize import linear_sum_assignment

MASK = (1 << 64) - 1


def splitmix64(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def matrix(n, seed):
    g = splitmix64(seed)
    return np.array([(next(g) >> 11) * 2.0 ** -53 for _ in range(n * n)]).reshape(n, n)


cases = []
for n, seed in [(50, 7), (200, 11)]:
    c = matrix(n, seed)
    for maximize in (False, True):
        rows, cols = linear_sum_assignment(c, maximize=maximize)
        cases.append({"n": n, "seed": seed, "maximize": maximize, "checksum": float(c.sum()),
                      "optimum": float(c[rows, cols].sum()), "assignment": cols.tolist()})

path = pathlib.Path(__file__).with_name("assignment.json")
path.write_text(json.dumps({"cases": cases}) + "\n")
