#!/usr/bin/env bash
# The two tables of issue 15 over the pairs of pretrained seeds (run from /work/main).
set -u
F=/tmp/pt/fedmerge-rel
T=/tmp/pt/tables
cd /work/main
run() { echo "+ $*" >> $T/commands.log; { /usr/bin/time -f "%e s %M KB" nice "$@"; } >> $T/run.log 2>&1 || echo "FAILED: $*" >> $T/run.log; }
for pair in "1 2" "1 3" "2 3"; do
  set -- $pair; a=$1; b=$2
  A=/tmp/pt/bert-s$a; B=/tmp/pt/bert-s$b; D=$T/p$a$b
  while [ ! -f $B/model.safetensors ]; do sleep 20; done
  mkdir -p $D
  barrier() { [ -f $D/$2/barrier.csv ] || run $F barrier $A $1 --data text:/tmp/pt/barrier-texts.txt --out $D/$2 --max-len 64 --max-examples 500 --seed 7 --points 5 --pseudo-perplexity-sequences 10; }
  align() { [ -f $D/$1/model.safetensors ] || run $F align --reference $A --model $B --data /tmp/pt/align-texts.txt --out $D/$1 --max-len 64 --max-texts 1000 --overwrite "${@:2}"; }
  barrier $B unaligned
  align full --attention head_perm --residual all --feed-forward match; barrier $D/full full-curve
  for att in vanilla monotonic ignore_heads head_perm; do
    align ff-$att --attention $att --residual identity --feed-forward match; barrier $D/ff-$att ff-$att-curve
  done
  for res in first last all separate; do
    align res-$res --attention vanilla --residual $res --feed-forward identity; barrier $D/res-$res res-$res-curve
  done
done
echo done >> $T/run.log
