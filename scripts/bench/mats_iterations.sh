#!/usr/bin/env bash
# MaTS (K-FAC, from RegMean α 0.9) at 5, 10, 20 and 40 CG iterations against RegMean α 0.9 on
# the demo's three fine-tuned models: merge seconds (`fedmerge merge`, whole process), accuracy
# of each merged model on the three demo test sets (`fedmerge evaluate`), the relative Frobenius
# distance of the linear weights to the 40-iteration merge, and the median final CG residual.
# Needs `bash scripts/demo.sh` run once and K-FAC statistics beside each model, e.g.
#   fedmerge stats --model M --data .cache/demo/data/<d>/train.csv --out M/stats.safetensors \
#       --gram-batches 8 --kfac-examples 64
# Usage: scripts/bench/mats_iterations.sh [--fedmerge BIN] MOVIES_DIR TWEETS_DIR AMAZON_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/.build/release/fedmerge"
if [[ "${1:-}" == "--fedmerge" ]]; then bin=$2; shift 2; fi
[[ $# -eq 3 ]] || { echo "usage: $0 [--fedmerge BIN] MOVIES_DIR TWEETS_DIR AMAZON_DIR" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
config() { # name method parameters
    printf 'merge_method: %s\nmodels:\n  - model: %s\n  - model: %s\n  - model: %s\nparameters: %s\n' \
        "$2" "$(realpath "$4")" "$(realpath "$5")" "$(realpath "$6")" "$3" > "$work/$1.yaml"
}
names=(regmean mats5 mats10 mats20 mats40)
config regmean regmean "{alpha: 0.9}" "$@"
for it in 5 10 20 40; do config "mats$it" mats "{objective: kfac, init: regmean, alpha: 0.9, iterations: $it}" "$@"; done
for n in "${names[@]}"; do
    start=$(date +%s.%N)
    "$bin" merge "$work/$n.yaml" --out "$work/out-$n" --quiet
    end=$(date +%s.%N)
    echo "$n $(echo "$end - $start" | bc)" >> "$work/seconds.txt"
    for d in movies tweets amazon; do
        "$bin" evaluate --model "$work/out-$n" --data "$root/.cache/demo/data/$d/test.csv" --max-len 64 --json > "$work/eval-$n-$d.json"
    done
done
python3 - "$work" "${names[@]}" <<'PY'
import json, struct, sys
import numpy as np
work, names = sys.argv[1], sys.argv[2:]
def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}
seconds = dict(line.split() for line in open(f"{work}/seconds.txt"))
reference = load(f"{work}/out-mats40/model.safetensors")
linears = [k for k, v in reference.items() if v.ndim == 2 and k.endswith(".weight") and "embeddings" not in k]
print("| merge | seconds | movies | tweets | amazon | mean accuracy | ‖W − W(mats40)‖/‖W(mats40)‖ | median final CG residual |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for n in names:
    accuracy = [100 * json.load(open(f"{work}/eval-{n}-{d}.json"))["accuracy"] for d in ("movies", "tweets", "amazon")]
    model = load(f"{work}/out-{n}/model.safetensors")
    num = sum(float(((model[k].astype(np.float64) - reference[k]) ** 2).sum()) for k in linears)
    den = sum(float((reference[k].astype(np.float64) ** 2).sum()) for k in linears)
    report = json.load(open(f"{work}/out-{n}/merge-report.json"))
    residuals = [t["finalResidual"] for t in report.get("tensors", []) if t.get("finalResidual") is not None]
    median = f"{np.median(residuals):.1e}" if residuals else "—"
    print(f"| {n} | {float(seconds[n]):.1f} | " + " | ".join(f"{a:.2f}" for a in accuracy)
          + f" | {np.mean(accuracy):.2f} | {np.sqrt(num / den):.3f} | {median} |")
PY
