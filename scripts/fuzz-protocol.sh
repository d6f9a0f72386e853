#!/usr/bin/env bash
# libFuzzer on the wire decoder + chunk receiver (Sources/ProtocolFuzz). Usage:
#   scripts/fuzz-protocol.sh [SECONDS]        (default 180)
# Builds in .build-fuzz so the normal .build is untouched; corpus in .build-fuzz/corpus;
# crashes are written as .build-fuzz/crash-* and replay with `swift run ProtocolFuzz FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-180}"
swift build --scratch-path .build-fuzz -c debug --product ProtocolFuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
mkdir -p .build-fuzz/corpus
python3 scripts/fuzz-protocol-seeds.py .build-fuzz/corpus
exec .build-fuzz/debug/ProtocolFuzz .build-fuzz/corpus -max_total_time="$seconds" -max_len=70000 \
    -artifact_prefix=.build-fuzz/ -print_final_stats=1
