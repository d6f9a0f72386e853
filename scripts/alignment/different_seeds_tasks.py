#!/usr/bin/env python3
"""Issue 15 item 5, second part: tables from scripts/alignment/different_seeds_tasks.sh's scores.

Usage: different_seeds_tasks.py SCORES OUT.md
SCORES holds `fedmerge evaluate --json` outputs named <model>.<task>.json (tasks: movies, tweets).
Same-init merges pair seed s's movies and tweets models; different-init merges pair seed a's
movies model (the reference) with seed b's tweets model, as trained or aligned to the reference.
"""
import json, math, os, sys

TASKS = ["movies", "tweets"]


def acc(scores, name, task):
    path = os.path.join(scores, f"{name}.{task}.json")
    with open(path) as f:
        return 100 * json.load(f)["accuracy"]


def mean_se(xs):
    m = sum(xs) / len(xs)
    se = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) if len(xs) > 1 else float("nan")
    return m, se


def row(label, values_by_task):
    cells = []
    for t in TASKS:
        m, se = mean_se(values_by_task[t])
        cells.append(f"{m:.1f} ± {se:.1f}")
    per = [sum(values_by_task[t][k] for t in TASKS) / len(TASKS) for k in range(len(values_by_task[TASKS[0]]))]
    m, se = mean_se(per)
    return f"| {label} | " + " | ".join(cells) + f" | {m:.1f} ± {se:.1f} |"


def main():
    scores, out = sys.argv[1], sys.argv[2]
    seeds = [1, 2, 3]
    pairs = [(1, 2), (2, 3), (3, 1)]
    lines = ["| model (accuracy %, mean ± SE over 3 seeds or pairs) | movies test | tweets test | mean |", "|---|---:|---:|---:|"]
    lines.append(row("own models: movies model on movies, tweets model on tweets",
                     {"movies": [acc(scores, f"s{s}-movies", "movies") for s in seeds],
                      "tweets": [acc(scores, f"s{s}-tweets", "tweets") for s in seeds]}))
    lines.append("| *same initialisation (seed s's two models)* | | | |")
    for method, label in [("average", "simple average"), ("regmean", "RegMean α 0.9")]:
        lines.append(row(label, {t: [acc(scores, f"same-s{s}-{method}", t) for s in seeds] for t in TASKS}))
    lines.append("| *different initialisations (seed a's movies model + seed b's tweets model)* | | | |")
    for method, label in [("average", "vanilla average"), ("regmean", "RegMean α 0.9, not aligned"),
                          ("aligned-average", "aligned average (B aligned to A, head_perm + residual all)"),
                          ("aligned-regmean", "aligned RegMean α 0.9 (B's Grams measured on the aligned model)")]:
        lines.append(row(label, {t: [acc(scores, f"diff-s{a}{b}-{method}", t) for a, b in pairs] for t in TASKS}))
    text = "\n".join(lines) + "\n"
    with open(out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
