#!/usr/bin/env bash
# GPU checks and accuracy runs, for the lent H100/H200 (see benchmarks/RESULTS.md).
# Usage (repository root, Fashion-MNIST copied to .data/fashion-mnist): bash benchmarks/gpu_session.sh OUTDIR
set -u
OUT=${1:-benchmarks/out}; mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
L="python3 -m lienzo"
FM="data.root=.data/fashion-mnist"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)" >> "$OUT/gpu.txt"
{
for p in 32 bf16 16; do $L bench train resnet18 --batch-size 128 --input 3,32,32 --precision $p --steps 30 --json; done
$L bench train fastnet_s --batch-size 256 --input 1,28,28 --steps 50 --json
$L bench train basenet --batch-size 32 --input 1,28,28 --steps 200 --json
} > "$OUT/bench.jsonl" 2> "$OUT/bench.err"
# DDP on one node (one process per GPU present), fp16 autocast, one epoch each.
$L train configs/fashion_fast.yaml $FM trainer.max_epochs=1 trainer.strategy=ddp trainer.precision=16 \
   trainer.progress=false run.dir="$OUT/runs" run.name=ddp_fp16 > "$OUT/ddp.log" 2>&1; echo "ddp rc=$?" >> "$OUT/ddp.log"
for spec in "fashion_fast" "fashion_fast model.arch=fastnet trainer.max_epochs=12 run.name=fast_w32_e12" \
            "fashion_best"; do
  set -- $spec; cfg=$1; shift
  timeout 330 $L train configs/$cfg.yaml $FM trainer.progress=false run.dir="$OUT/runs" "$@" > "$OUT/$cfg-$#.log" 2>&1
done
for m in "$OUT"/runs/*/metrics.json; do
  python3 -c "import json,sys; m=json.load(open('$m')); print('$m', m['epochs'], round(m['train_seconds']), m.get('val',{}).get('top1'), m.get('test',{}).get('top1'))"
done > "$OUT/summary.txt"
cat "$OUT"/summary.txt "$OUT"/bench.jsonl "$OUT/gpu.txt"; tail -3 "$OUT"/ddp.log
tar czf "$OUT/runs.tgz" --exclude='*.ckpt' -C "$OUT" runs
