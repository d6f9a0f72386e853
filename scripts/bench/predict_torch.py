#!/usr/bin/env python3
"""Side-by-side: `fedmerge predict --input` against PyTorch + transformers on the same model
directory and the same texts, alternating A/B, printing wall time, peak memory and the ratio.

PyTorch is a reference only, never a dependency: install it in a venv of your own
(`python3 -m venv .venv-torch && .venv-torch/bin/pip install torch transformers`) and run this
script with that venv's python. Both sides use 2 threads, no gradients, length-sorted batches
of 32 texts (transformers: `BertForSequenceClassification`, the model's own tokenizer), and
agree on the argmax label for every text (checked). FedMerge is timed as a whole process
(start, model load, inference, output); PyTorch from model load to the last batch (its
interpreter start and `import torch` are left out, in its favour).

Usage: predict_torch.py --model DIR --texts FILE [--fedmerge .build/release/fedmerge] [--rounds 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def torch_side(model_dir, texts_path, batch):
    """Runs in a child process so its peak RSS is its own; prints one JSON line."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.set_num_threads(2)
    texts = [line.rstrip("\n") for line in open(texts_path, encoding="utf-8") if line.strip()]
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    labels = [None] * len(texts)
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=512, return_tensors="pt")
            logits = model(**enc).logits
            for i, k in zip(idx, logits.argmax(-1).tolist()):
                labels[i] = model.config.id2label[k]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "labels": labels}))


def measured(command, env):
    """Runs `command`; returns (seconds, its own peak RSS in MiB via wait4, stdout)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{command[0]} failed with status {status}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, stdout.decode()


def run_torch(args):
    _, peak, out = measured([sys.executable, __file__, "--child", "--model", args.model, "--texts", args.texts,
                             "--batch", str(args.batch)], {"OMP_NUM_THREADS": "2"})
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = peak
    return result


def run_fedmerge(args):
    output = args.texts + ".fedmerge.jsonl"
    seconds, peak, _ = measured([args.fedmerge, "predict", "--model", args.model, "--input", args.texts, "--output", output],
                                {"OPENBLAS_NUM_THREADS": "2"})
    labels = [json.loads(line)["label"] for line in open(output, encoding="utf-8")]
    os.remove(output)
    return {"seconds": seconds, "peak_mib": peak, "labels": labels}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--texts", required=True)
    p.add_argument("--fedmerge", default=".build/release/fedmerge")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--child", action="store_true")
    args = p.parse_args()
    if args.child:
        return torch_side(args.model, args.texts, args.batch)
    n = sum(1 for line in open(args.texts, encoding="utf-8") if line.strip())
    best = {"fedmerge": None, "torch": None}
    for r in range(args.rounds):
        for name, run in (("fedmerge", run_fedmerge), ("torch", run_torch)) if r % 2 == 0 else (("torch", run_torch), ("fedmerge", run_fedmerge)):
            result = run(args)
            print(f"round {r + 1} {name:8s} {result['seconds']:8.2f} s  peak {result['peak_mib']:7.0f} MiB", flush=True)
            if best[name] is None or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    agree = sum(a == b for a, b in zip(best["fedmerge"]["labels"], best["torch"]["labels"]))
    f, t = best["fedmerge"], best["torch"]
    print(f"{n} texts: fedmerge {f['seconds']:.2f} s / {f['peak_mib']:.0f} MiB, torch {t['seconds']:.2f} s / "
          f"{t['peak_mib']:.0f} MiB; time ratio fedmerge/torch {f['seconds'] / t['seconds']:.2f}; "
          f"same argmax on {agree}/{n}")


if __name__ == "__main__":
    main()
