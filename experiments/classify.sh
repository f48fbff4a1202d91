#!/bin/bash
# The runs behind docs/classify.md (one torch thread each, one after another):
#   bash experiments/classify.sh RUNS_DIR && python experiments/classify_table.py RUNS_DIR/*
set -e
out=${1:-runs/classify_docs}
export OMP_NUM_THREADS=1
run() { name=$1; shift; odeflow train classify "$@" --out "$out/$name" --quiet; }
for m in odenet resnet anode sonode; do
  run digits_$m --model $m --data digits --epochs 20 --lr-schedule cosine
done
run digits_odenet_optdisc --model odenet --data digits --epochs 20 --lr-schedule cosine --mode opt-disc
for m in odenet resnet anode sonode; do
  run annuli_$m --model $m --data annuli --epochs 30 --n-steps 10 --hidden 32 32
done
run annuli_odenet_dopri5 --model odenet --data annuli --epochs 30 --method dopri5 --n-steps 0 --hidden 32 32
run annuli_odenet_dopri5_kinetic --model odenet --data annuli --epochs 30 --method dopri5 --n-steps 0 --hidden 32 32 --kinetic 0.1
