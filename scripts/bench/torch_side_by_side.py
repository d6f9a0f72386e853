#!/usr/bin/env python3
"""FedMerge against PyTorch on the same workloads, alternating A/B, printing the ratio table.

PyTorch is a reference only, never a dependency of FedMerge or its CI: run this script with the
python of a venv that has torch, transformers and safetensors (default /work/venv-torch; any
other with --python, or run it with that python directly). Both sides use 2 threads
(torch.set_num_threads, OPENBLAS_NUM_THREADS; OpenMP waits passively, see main); each round runs FedMerge's side (a
`fedmerge bench workload` process: it loads first, then times `--repeats` runs) and PyTorch's
side (in this process, after loading, the same runs) in alternating order; the table shows
medians over all runs. Ratio = FedMerge time / PyTorch time (below 1: FedMerge is faster).

Workloads (MiniLM-L6, the demo's fine-tuned models in .cache/demo/work/*/prepared):
  step-64, step-128  one fine-tuning step (batch 16, every position a real token): forward,
                     backward, gradient clipping, AdamW; transformers BertForSequenceClassification
  gram               Gram pass: --gram-batches no-grad batches of 16 texts at length 128; PyTorch
                     collects XᵀX per distinct linear input with forward hooks (q/k/v share one;
                     pooler and classifier over their pooled rows), fp32 products into fp64 sums
  fisher             diagonal Fisher, exact over the 2 labels: per example one forward and one
                     backward per label, Σ p_y g_y² (--fisher-examples texts at length 128)
  regmean-3, -5      RegMean α 0.9 of 3 and 5 models (5 = the 3 demo models and 2 of them again)
                     with their Grams in memory; PyTorch fp64: Σ G̃ᵢ, Σ G̃ᵢWᵢᵀ, then the faster
                     of torch.linalg.solve and cholesky + cholesky_solve per run
  mats-4             MaTS K-FAC of 4 models against our own RegMean of the same 4 (no PyTorch
                     MaTS exists to compare with); needs --mats-models with stats carrying
                     <linear>.kfac_out (`fedmerge stats --kfac-examples N`)
  predict            `fedmerge predict` on --predict-texts, whole process, against transformers
                     batched (scripts/bench/predict_torch.py)

Usage: /work/venv-torch/bin/python scripts/bench/torch_side_by_side.py [--rounds 3] [--only gram,regmean-3]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fedmerge_workload(args, name, extra, repeats=None):
    """Runs `fedmerge bench workload NAME …`; returns its JSON object (seconds: list)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run([args.fedmerge, "bench", "workload", name, "--repeats", str(repeats or args.repeats)] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"fedmerge bench workload {name} failed ({out.returncode}): {out.stderr.decode()[-2000:]}")
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def timed_runs(repeats, body, warmup=True):
    if warmup:
        body()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        runs.append(time.perf_counter() - start)
    return runs


# ---------------------------------------------------------------- PyTorch sides

def torch_step(args, length):
    import torch
    from transformers import BertForSequenceClassification
    model = BertForSequenceClassification.from_pretrained(args.model)
    model.train()
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 29000, (16, length), generator=g)
    mask = torch.ones_like(ids)
    labels = torch.arange(16) % 2
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=5e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return lambda: timed_runs(args.repeats, step)


def load_texts(path):
    return [line.rstrip("\n") for line in open(path, encoding="utf-8") if line.strip()]


def torch_gram(args):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    tok = AutoTokenizer.from_pretrained(args.model)
    model = BertForSequenceClassification.from_pretrained(args.model).eval()
    texts = load_texts(args.texts)[:16 * args.gram_batches]
    batches = [tok(texts[i:i + 16], padding=True, truncation=True, max_length=128, return_tensors="pt")
               for i in range(0, len(texts), 16)]
    grams, rows = {}, {}
    state = {}

    def hook(name, pooled):
        def fn(module, inputs):
            x = inputs[0]
            if pooled:
                x = x.reshape(-1, x.shape[-1])
            else:
                x = x[state["mask"]]            # non-padding rows only
            g = x.T @ x
            if name in grams:
                grams[name] += g.double()
            else:
                grams[name] = g.double()
            rows[name] = rows.get(name, 0) + x.shape[0]
        return fn
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith(("attention.self.key", "attention.self.value")):
            module.register_forward_pre_hook(hook(name, name.startswith(("bert.pooler", "classifier"))))

    def run():
        grams.clear(); rows.clear()
        with torch.inference_mode():
            for b in batches:
                state["mask"] = b["attention_mask"].bool()
                model(**b)
    return lambda: timed_runs(args.repeats, run)


def torch_fisher(args):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    tok = AutoTokenizer.from_pretrained(args.model)
    model = BertForSequenceClassification.from_pretrained(args.model).eval()
    texts = load_texts(args.texts)[:args.fisher_examples]
    encoded = [tok([t], truncation=True, max_length=128, return_tensors="pt") for t in texts]
    params = [p for p in model.parameters()]

    def run():
        fisher = [torch.zeros_like(p) for p in params]
        for enc in encoded:
            logits = model(**enc).logits[0]
            logp = torch.log_softmax(logits, -1)
            probs = logp.exp().detach()
            for y in range(logits.shape[0]):
                grads = torch.autograd.grad(logp[y], params, retain_graph=y + 1 < logits.shape[0])
                for f, g in zip(fisher, grads):
                    f.add_(g * g, alpha=float(probs[y]))
        return fisher
    return lambda: timed_runs(args.repeats, run)


def load_merge_inputs(directories):
    """Weights (fp32 torch tensors) and, per linear with a Gram, (Gram fp32, num_rows)."""
    import torch
    from safetensors.torch import load_file
    from safetensors import safe_open
    models = []
    for d in directories:
        weights = load_file(os.path.join(d, "model.safetensors"))
        with safe_open(os.path.join(d, "stats.safetensors"), "pt") as f:
            meta = f.metadata() or {}
            grams = {}
            for k in f.keys():
                if k.endswith(".gram"):
                    grams[k[:-len(".gram")]] = f.get_tensor(k)
        for k, v in meta.items():
            if k.endswith(".gram.same_as"):
                grams[k[:-len(".gram.same_as")]] = grams[v]
        rows = {k[:-len(".gram.num_rows")]: float(v) for k, v in meta.items() if k.endswith(".gram.num_rows")}
        models.append((weights, {n: (g, rows[n]) for n, g in grams.items()}))
    return models


def torch_regmean(models, alpha=0.9, solver="cholesky"):
    """RegMean written the natural way in fp64: Σ G̃ᵢ, Σ G̃ᵢWᵢᵀ, one solve per linear."""
    import torch
    merged = {}
    linears = [n for n in models[0][1] if n + ".weight" in models[0][0]]
    for n in linears:
        sum_g, sum_gw = None, None
        for weights, grams in models:
            g, r = grams[n]
            g = g.double() / r
            g = g * alpha + torch.diag(torch.diag(g)) * (1 - alpha)
            gw = g @ weights[n + ".weight"].double().T
            sum_g = g if sum_g is None else sum_g + g
            sum_gw = gw if sum_gw is None else sum_gw + gw
        if solver == "solve":
            x = torch.linalg.solve(sum_g, sum_gw)
        else:
            x = torch.cholesky_solve(sum_gw, torch.linalg.cholesky(sum_g))
        merged[n + ".weight"] = x.T.float()
    for k in models[0][0]:
        if k not in merged:
            merged[k] = sum(m[0][k].float() for m in models) / len(models)
    return merged


# ---------------------------------------------------------------- driver

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fedmerge", default=os.path.join(ROOT, ".build/release/fedmerge"))
    p.add_argument("--python", default="/work/venv-torch/bin/python",
                   help="a python with torch + transformers; the script re-runs itself with it when it is not the current one")
    p.add_argument("--demo", default=os.path.join(ROOT, ".cache/demo/work"), help="the demo agents' work directories")
    p.add_argument("--model", help="model directory for step/gram/fisher (default: the demo's movies model)")
    p.add_argument("--texts", help="texts for gram/fisher (default: generated, every text ≥ 128 tokens)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per side per round")
    p.add_argument("--gram-batches", type=int, default=16)
    p.add_argument("--fisher-examples", type=int, default=32)
    p.add_argument("--mats-rounds", type=int, default=1, help="MaTS runs (each minutes long)")
    p.add_argument("--mats-models", help="comma-separated model directories with K-FAC statistics (mats-4 is skipped without)")
    p.add_argument("--predict-texts", help="texts for predict (default: 1000 lines of the demo's test sets)")
    p.add_argument("--only", help="comma-separated workloads: step-64,step-128,gram,fisher,regmean-3,regmean-5,mats-4,predict")
    p.add_argument("--torch-threads", type=int, default=2)
    args = p.parse_args()
    # OpenMP's default spin-waiting collapses under other load on 2 shared cores (a step of
    # 1 s took 4–8 s): passive waiting is PyTorch's best case here, so it gets it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        if os.path.exists(args.python) and os.path.realpath(args.python) != os.path.realpath(sys.executable):
            os.execv(args.python, [args.python] + sys.argv)
        raise SystemExit(f"no torch in {sys.executable} and no usable --python ({args.python}): nothing to compare with")
    torch.set_num_threads(args.torch_threads)
    if not os.path.exists(args.fedmerge):
        raise SystemExit(f"{args.fedmerge} does not exist: run `swift build -c release` first")
    demo = [os.path.join(args.demo, d, "prepared") for d in ("movies", "tweets", "amazon")]
    args.model = args.model or demo[0]
    if not args.texts:
        args.texts = "/tmp/fedmerge-side-by-side-texts.txt"
        vocab = [w for w in (l.strip() for l in open(os.path.join(args.model, "vocab.txt"), encoding="utf-8"))
                 if w.isalpha() and w.islower() and len(w) > 2]
        rng = random.Random(5)
        with open(args.texts, "w", encoding="utf-8") as f:
            for _ in range(max(16 * args.gram_batches, args.fisher_examples)):
                f.write(" ".join(rng.choice(vocab) for _ in range(140)) + "\n")
    chosen = (args.only or "step-64,step-128,gram,fisher,regmean-3,regmean-5,mats-4,predict").split(",")

    rows = []

    def measure(label, fed, tor, note="", rounds=None):
        ours, theirs = [], []
        for r in range(rounds or args.rounds):
            order = [("f", fed), ("t", tor)] if r % 2 == 0 else [("t", tor), ("f", fed)]
            for side, run in order:
                runs = run()
                (ours if side == "f" else theirs).extend(runs)
                print(f"  {label} round {r + 1} {'fedmerge' if side == 'f' else 'torch   '} "
                      + " ".join(f"{x:.3f}" for x in runs), file=sys.stderr, flush=True)
        f, t = statistics.median(ours), statistics.median(theirs)
        rows.append((label, f, t, f / t, note))
        print(f"{label:14s} fedmerge {f:8.3f} s   torch {t:8.3f} s   ratio {f / t:5.2f}  {note}", flush=True)

    model_flags = ["--model", args.model]
    for length in (64, 128):
        if f"step-{length}" in chosen:
            measure(f"step-{length}", lambda: fedmerge_workload(args, "step", model_flags + ["--length", str(length)])["seconds"],
                    torch_step(args, length), "batch 16")
    if "gram" in chosen:
        measure("gram", lambda: fedmerge_workload(args, "gram", model_flags + ["--texts", args.texts, "--count", str(args.gram_batches)])["seconds"],
                torch_gram(args), f"{args.gram_batches} batches × 16 × 128 tokens")
    if "fisher" in chosen:
        measure("fisher", lambda: fedmerge_workload(args, "fisher", model_flags + ["--texts", args.texts, "--count", str(args.fisher_examples)])["seconds"],
                torch_fisher(args), f"{args.fisher_examples} examples, exact over 2 labels")
    for k in (3, 5):
        if f"regmean-{k}" not in chosen:
            continue
        dirs = (demo * 2)[:k]
        inputs = load_merge_inputs(dirs)

        def torch_side(inputs=inputs):
            runs = []
            for _ in range(args.repeats):
                best = None
                for solver in ("cholesky", "solve"):
                    start = time.perf_counter()
                    torch_regmean(inputs, solver=solver)
                    t = time.perf_counter() - start
                    best = t if best is None else min(best, t)
                runs.append(best)
            return runs
        measure(f"regmean-{k}", lambda dirs=dirs: fedmerge_workload(args, "merge", ["--models", ",".join(dirs)])["seconds"],
                torch_side, "fp64; torch: faster of solve / cholesky_solve")
        del inputs
    if "mats-4" in chosen and args.mats_models:
        dirs = args.mats_models.split(",")
        info = {}

        def mats():
            out = fedmerge_workload(args, "merge", ["--models", ",".join(dirs), "--method", "mats", "--parameters", '{"objective": "kfac"}'], repeats=1)
            info.update(out)
            return out["seconds"]
        # One MaTS run per round: it takes minutes.
        measure("mats-4", mats,
                lambda: fedmerge_workload(args, "merge", ["--models", ",".join(dirs)])["seconds"],
                "vs our RegMean of the same models (K-FAC defaults)", rounds=args.mats_rounds)
        print(f"  mats-4 CG: {json.dumps({k: v for k, v in info.items() if k.startswith('cg_') and k != 'cg'})}", flush=True)
    if "predict" in chosen:
        texts = args.predict_texts
        if not texts:
            texts = "/tmp/fedmerge-side-by-side-predict.txt"
            import csv
            lines = []
            for d in ("movies", "tweets", "amazon"):
                with open(os.path.join(os.path.dirname(args.demo), "data", d, "test.csv"), encoding="utf-8") as f:
                    lines += [r["text"].replace("\n", " ") for r in csv.DictReader(f)]
            with open(texts, "w", encoding="utf-8") as f:
                f.write("\n".join(lines[:1000]) + "\n")
        out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts/bench/predict_torch.py"), "--model", args.model,
                              "--texts", texts, "--fedmerge", args.fedmerge, "--rounds", str(args.rounds)],
                             stdout=subprocess.PIPE, cwd=ROOT)
        last = out.stdout.decode().strip().splitlines()[-1] if out.stdout else "predict_torch.py printed nothing"
        print(f"predict        {last}", flush=True)
        rows.append(("predict", None, None, None, last))

    print()
    print(f"| workload | FedMerge s | PyTorch s | ratio | note |")
    print(f"|---|---|---|---|---|")
    for label, f, t, r, note in rows:
        if f is None:
            print(f"| {label} | | | | {note} |")
        else:
            print(f"| {label} | {f:.3f} | {t:.3f} | {r:.2f} | {note} |")


if __name__ == "__main__":
    main()
