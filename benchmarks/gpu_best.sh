#!/usr/bin/env bash
# fashion_best candidates on the lent GPU, trained side by side (at these sizes one H100 is bound by
# per-step launch cost, so two or three runs share it at little loss each).
# Usage: T=SECONDS bash benchmarks/gpu_best.sh OUTDIR ["overrides of candidate 1" "overrides of 2" ...]
# (Fashion-MNIST copied to .data/fashion-mnist). Without candidates: the preset at 100 epochs with and
# without EMA weights. If the time limit cuts a run short, its best checkpoint so far is evaluated.
set -u
OUT=${1:-benchmarks/out}; shift || true; mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
L="python3 -m lienzo"; FM="data.root=.data/fashion-mnist"; T=${T:-540}
if [ $# -eq 0 ]; then
  set -- "trainer.max_epochs=100" "trainer.max_epochs=100 trainer.ema_decay=0.999"
fi
i=0
for overrides in "$@"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  (timeout "$T" $L train configs/fashion_best.yaml $FM $overrides trainer.progress=false run.dir="$OUT/runs" \
     run.name="c$i" > "$OUT/c$i.log" 2>&1; echo "train rc=$? overrides: $overrides" >> "$OUT/c$i.log") &
done
wait
for j in $(seq 1 $i); do
  [ -f "$OUT/runs/c$j/metrics.json" ] || $L evaluate "$OUT/runs/c$j" $FM >> "$OUT/c$j.log" 2>&1
  echo "== c$j"; tail -3 "$OUT/c$j.log"; tail -2 "$OUT/runs/c$j/history.csv"
done
tar czf "$OUT/runs.tgz" --exclude='*.ckpt' -C "$OUT" runs
