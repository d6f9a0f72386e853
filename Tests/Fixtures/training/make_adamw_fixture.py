#!/usr/bin/env python3
"""Writes adamw.json: three AdamW steps computed with numpy (float64) for AdamWTests.

Implements torch.optim.AdamW's documented algorithm (amsgrad=False, maximize=False) as
written in the PyTorch documentation, independently of our Swift code:
    theta <- theta - lr * weight_decay * theta
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g^2
    m_hat <- m / (1 - beta1^t);  v_hat <- v / (1 - beta2^t)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
Two parameter tensors: "weight" (decayed) and "bias" (not decayed; its decay is skipped).
The learning rate changes per step, as a schedule would. Inputs are float32 values so
the Swift side starts from exactly the same numbers.

Usage: python3 Tests/Fixtures/training/make_adamw_fixture.py
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adamw.json")
rng = np.random.default_rng(20261123)

config = {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weightDecay": 0.1}
learning_rates = [0.1, 0.05, 0.2]
sizes = {"weight": 6, "bias": 3}
decay = {"weight": True, "bias": False}

params = {k: rng.normal(size=n).astype(np.float32) for k, n in sizes.items()}
grads = [{k: rng.normal(scale=s, size=n).astype(np.float32) for (k, n), s in zip(sizes.items(), (1.0, 0.01))}
         for _ in learning_rates]
for g in grads:
    g["weight"][5] = 0.0   # a coordinate that never sees a gradient: only decay moves it

theta = {k: v.astype(np.float64) for k, v in params.items()}
m = {k: np.zeros(n) for k, n in sizes.items()}
v = {k: np.zeros(n) for k, n in sizes.items()}
steps = []
for t, (lr, g) in enumerate(zip(learning_rates, grads), start=1):
    for k in sizes:
        gk = g[k].astype(np.float64)
        if decay[k]:
            theta[k] = theta[k] - lr * config["weightDecay"] * theta[k]
        m[k] = config["beta1"] * m[k] + (1 - config["beta1"]) * gk
        v[k] = config["beta2"] * v[k] + (1 - config["beta2"]) * gk * gk
        m_hat = m[k] / (1 - config["beta1"] ** t)
        v_hat = v[k] / (1 - config["beta2"] ** t)
        theta[k] = theta[k] - lr * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    steps.append({"learningRate": lr,
                  "gradients": {k: g[k].tolist() for k in sizes},
                  "parameters": {k: theta[k].tolist() for k in sizes},
                  "firstMoments": {k: m[k].tolist() for k in sizes},
                  "secondMoments": {k: v[k].tolist() for k in sizes}})

with open(OUT, "w") as f:
    json.dump({"config": config, "order": list(sizes), "decay": [decay[k] for k in sizes],
               "initial": {k: params[k].tolist() for k in sizes}, "steps": steps}, f, indent=1)
    f.write("\n")
print(f"wrote {OUT}")
