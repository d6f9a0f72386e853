#!/usr/bin/env python3
"""numpy reference for `fedmerge bench merge`: RegMean of K MiniLM-L6-shaped models.

--mode inverse : the official RegMean implementation's arithmetic (Jin et al., ICLR 2023,
                 github.com/bloomberg/dataless-model-merging): all K models and Grams held in
                 memory, per linear  sum_gram = Σ G̃ᵢ;  sum_gram_m_ws = Σ G̃ᵢ Wᵢᵀ;
                 Wᵀ = inverse(sum_gram) @ sum_gram_m_ws.
--mode cholesky: streaming sums (one model in memory at a time) and a Cholesky solve.
Both in float64 like fedmerge; every other tensor is averaged. Random weights and random
SPD Grams (diag + low rank) of the real shapes. Prints one JSON object: merge_s (time of the
merge arithmetic only, not of generating the models) and rss_mib (peak resident set).
"""
import argparse
import json
import resource
import time

import numpy as np
import scipy.linalg


def linears(layers, hidden, inter):
    out = []
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            out.append((p + n, hidden, hidden))
        out.append((p + "intermediate.dense", inter, hidden))
        out.append((p + "output.dense", hidden, inter))
    out.append(("bert.pooler.dense", hidden, hidden))
    return out


def others(layers, hidden, inter, vocab):
    out = [("bert.embeddings.word_embeddings.weight", (vocab, hidden)),
           ("bert.embeddings.position_embeddings.weight", (512, hidden)),
           ("bert.embeddings.token_type_embeddings.weight", (2, hidden)),
           ("bert.embeddings.LayerNorm.weight", (hidden,)), ("bert.embeddings.LayerNorm.bias", (hidden,)),
           ("classifier.weight", (2, hidden)), ("classifier.bias", (2,))]
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for n, d in (("attention.self.query", hidden), ("attention.self.key", hidden), ("attention.self.value", hidden),
                     ("attention.output.dense", hidden), ("intermediate.dense", inter), ("output.dense", hidden)):
            out.append((p + n + ".bias", (d,)))
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            out += [(p + n + ".weight", (hidden,)), (p + n + ".bias", (hidden,))]
    out.append(("bert.pooler.dense.bias", (hidden,)))
    return out


def make_model(rng, lin, oth):
    weights = {n + ".weight": rng.uniform(-0.1, 0.1, (o, i)).astype(np.float32) for n, o, i in lin}
    weights.update({n: rng.uniform(-0.1, 0.1, s).astype(np.float32) for n, s in oth})
    grams = {}
    for n, o, i in lin:
        u = rng.standard_normal((i, 8)).astype(np.float32)
        grams[n] = (np.diag(rng.uniform(0.5, 1.5, i)).astype(np.float32) + u @ u.T) * 100
    return weights, grams


def reduce_non_diag(g, a):
    return g * a + np.diag(np.diag(g)) * (1 - a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--mode", choices=["inverse", "cholesky"], required=True)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--alpha", type=float, default=0.9)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    lin = linears(args.layers, args.hidden, args.intermediate)
    oth = others(args.layers, args.hidden, args.intermediate, args.vocab)
    rows = 100.0
    elapsed = 0.0
    if args.mode == "inverse":
        models = [make_model(rng, lin, oth) for _ in range(args.k)]   # the official code loads all models
        t = time.perf_counter()
        merged = {}
        for n, _, _ in lin:
            grams = [reduce_non_diag(g[n].astype(np.float64) / rows, args.alpha) for _, g in models]
            gram_m_ws = [g @ w[n + ".weight"].astype(np.float64).T for g, (w, _) in zip(grams, models)]
            sum_gram, sum_gram_m_ws = sum(grams), sum(gram_m_ws)
            merged[n + ".weight"] = (np.linalg.inv(sum_gram) @ sum_gram_m_ws).T.astype(np.float32)
        for n, _ in oth:
            merged[n] = (sum(w[n].astype(np.float64) for w, _ in models) / args.k).astype(np.float32)
        elapsed = time.perf_counter() - t
    else:
        sums_g, sums_r, sums_o = {}, {}, {}
        for _ in range(args.k):
            w, g = make_model(rng, lin, oth)
            t = time.perf_counter()
            for n, _, _ in lin:
                gt = reduce_non_diag(g[n].astype(np.float64) / rows, args.alpha)
                r = gt @ w[n + ".weight"].astype(np.float64).T
                if n in sums_g:
                    sums_g[n] += gt
                    sums_r[n] += r
                else:
                    sums_g[n], sums_r[n] = gt, r
            for n, _ in oth:
                x = w[n].astype(np.float64)
                if n in sums_o:
                    sums_o[n] += x
                else:
                    sums_o[n] = x
            elapsed += time.perf_counter() - t
            del w, g
        t = time.perf_counter()
        merged = {}
        for n, _, _ in lin:
            merged[n + ".weight"] = scipy.linalg.cho_solve(scipy.linalg.cho_factor(sums_g[n]), sums_r[n]).T.astype(np.float32)
        for n, _ in oth:
            merged[n] = (sums_o[n] / args.k).astype(np.float32)
        elapsed += time.perf_counter() - t
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"merge_s": elapsed, "rss_mib": rss_mib}))


if __name__ == "__main__":
    main()
