#!/usr/bin/env bash
# fashion_best on the lent GPU. Usage: T=SECONDS bash benchmarks/gpu_best.sh OUTDIR
# (Fashion-MNIST copied to .data/fashion-mnist). If the time limit cuts training short,
# the best checkpoint so far is evaluated on the test split.
set -u
OUT=${1:-benchmarks/out}; mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
L="python3 -m lienzo"; FM="data.root=.data/fashion-mnist"; T=${T:-540}
timeout $T $L train configs/fashion_best.yaml $FM trainer.progress=false run.dir="$OUT/runs" > "$OUT/best.log" 2>&1
echo "train rc=$?" >> "$OUT/best.log"
[ -f "$OUT/runs/fashion_best/metrics.json" ] || $L evaluate "$OUT/runs/fashion_best" $FM >> "$OUT/best.log" 2>&1
tail -4 "$OUT/best.log"; tail -3 "$OUT/runs/fashion_best/history.csv"
tar czf "$OUT/runs.tgz" --exclude='*.ckpt' -C "$OUT" runs
