#!/usr/bin/env python3
"""Issue 15's two tables from `fedmerge barrier` runs over pairs of differently seeded BERTs.

Usage: different_seeds_tables.py RUNS OUT
RUNS holds one directory per pair (p12, p13, ...), each with <row>/barrier.csv as written by
scripts/alignment/different_seeds.sh. Writes OUT/tables.md (mean ± standard error over pairs,
next to Verma & Elbayad's MultiBERTs numbers) and OUT/<table>.svg (mean curves).
"""
import csv, math, os, sys

ATTENTION = [  # (row directory, label, paper's barrier: FF merged + attention variant)
    ("ff-vanilla-curve", "vanilla attention averaging", 4.31),
    ("ff-monotonic-curve", "monotonic (heads in order, inner per head)", 4.13),
    ("ff-ignore_heads-curve", "ignore heads (one assignment over all features)", 3.97),
    ("ff-head_perm-curve", "Head-Perm (inner per head pair + head assignment)", 3.71),
]
RESIDUAL = [  # only the residual stream permuted (FF and attention left in place)
    ("unaligned", "identity (vanilla averaging)", 4.95),
    ("res-first-curve", "first (P from the embeddings' output)", 7.58),
    ("res-last-curve", "last (P from the last layer's output)", 7.41),
    ("res-all-curve", "all (P from every residual point pooled)", 7.34),
    ("res-separate-curve", "separate (a P per residual point)", 9.38),
]
EXTRA = [("full-curve", "everything: FF + Head-Perm + residual all")]


def curve(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    lam = [float(r["lambda"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    pppl = [float(r["pseudo_perplexity"]) for r in rows] if "pseudo_perplexity" in rows[0] else None
    return lam, loss, pppl


def barrier(values):
    return max(values) - (values[0] + values[-1]) / 2


def mean_se(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var / len(xs))


def table(runs, pairs, rows, title):
    head = ("| " + title + " | barrier, nats (mean ± SE over pairs) | paired Δ vs the first row | per pair | pseudo-perplexity barrier | L(λ=½) | paper (MultiBERTs) |\n"
            "|---|---:|---:|---|---:|---:|---:|\n")
    lines = []
    baseline = {}
    for row in rows:
        d, label = row[0], row[1]
        b, bp, mid, found = [], [], [], []
        for p in pairs:
            path = os.path.join(runs, p, d, "barrier.csv")
            if not os.path.exists(path):
                continue
            lam, loss, pppl = curve(path)
            b.append(barrier(loss)); mid.append(loss[len(loss) // 2]); found.append(p)
            if pppl:
                bp.append(barrier(pppl))
        if not b:
            lines.append(f"| {label} | not run | | | | | |")
            continue
        if not baseline:
            baseline = dict(zip(found, b))
        diffs = [x - baseline[p] for p, x in zip(found, b) if p in baseline]
        dm, dse = mean_se(diffs) if diffs else (float("nan"), float("nan"))
        delta = "—" if d == rows[0][0] else f"{dm:+.3f} ± {dse:.3f}"
        m, se = mean_se(b)
        mp, sep = mean_se(bp) if bp else (float("nan"), float("nan"))
        mm, _ = mean_se(mid)
        per = ", ".join(f"{p[1:]}: {x:.3f}" for p, x in zip(found, b))
        paper_value = f"{row[2]:.2f}" if len(row) > 2 and row[2] is not None else "—"
        lines.append(f"| {label} | {m:.3f} ± {se:.3f} | {delta} | {per} | {mp:.0f} ± {sep:.0f} | {mm:.3f} | {paper_value} |")
    return head + "\n".join(lines) + "\n"


def svg(runs, pairs, rows, title, out):
    series = []
    for row in rows:
        curves = []
        for p in pairs:
            path = os.path.join(runs, p, row[0], "barrier.csv")
            if os.path.exists(path):
                lam, loss, _ = curve(path)
                curves.append([l - (x * loss[-1] + (1 - x) * loss[0]) for x, l in zip(lam, loss)])
        if curves:
            series.append((row[1], lam, [sum(c[k] for c in curves) / len(curves) for k in range(len(lam))]))
    if not series:
        return
    hi = max(max(s[2]) for s in series) or 1.0
    lo = min(0.0, min(min(s[2]) for s in series))
    W, H, L, T = 460.0, 240.0, 60.0, 40.0
    colors = ["#4a7ab5", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#333333"]
    s = f'<svg xmlns="http://www.w3.org/2000/svg" width="{int(L + W + 260)}" height="{int(T + H + 50)}" font-family="sans-serif" font-size="11">\n'
    s += f'<text x="{L}" y="20" font-size="13">{title}: mean rise above the chord over pairs (nats)</text>\n'
    for k in range(5):
        v = lo + (hi - lo) * k / 4; y = T + H * (1 - (v - lo) / (hi - lo))
        s += f'<line x1="{L}" y1="{y:.1f}" x2="{L + W}" y2="{y:.1f}" stroke="#ddd"/><text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.2f}</text>\n'
    s += f'<text x="{L + W / 2}" y="{T + H + 30}" text-anchor="middle">λ (0 = model B, 1 = model A)</text>\n'
    for i, (label, lam, ys) in enumerate(series):
        c = colors[i % len(colors)]
        pts = " ".join(f"{L + W * x:.1f},{T + H * (1 - (y - lo) / (hi - lo)):.1f}" for x, y in zip(lam, ys))
        s += f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>\n'
        s += f'<text x="{L + W + 10}" y="{T + 14 * i + 10}" fill="{c}">{label}</text>\n'
    open(out, "w").write(s + "</svg>\n")


def main():
    runs, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    pairs = sorted(p for p in os.listdir(runs) if p.startswith("p") and os.path.isdir(os.path.join(runs, p)))
    text = f"Pairs: {', '.join(p[1] + '–' + p[2] for p in pairs)} (seed of A – seed of B).\n\n"
    text += "### Attention (feed-forward neurons matched, residual stream left in place)\n\n"
    text += table(runs, pairs, ATTENTION, "attention")
    text += "\n### Residual stream (only the residual P; feed-forward and attention left in place)\n\n"
    text += table(runs, pairs, RESIDUAL, "residual")
    text += "\n### Everything aligned (against B as trained)\n\n" + table(runs, pairs, [RESIDUAL[0]] + [e + (None,) for e in EXTRA], "alignment")
    open(os.path.join(out, "tables.md"), "w").write(text)
    svg(runs, pairs, ATTENTION, "Attention variants (FF matched)", os.path.join(out, "attention.svg"))
    svg(runs, pairs, RESIDUAL, "Residual variants (only residual permuted)", os.path.join(out, "residual.svg"))
    print(text)


if __name__ == "__main__":
    main()
