#!/usr/bin/env bash
# BaseNet at the practice's settings (batch 32, SGD 0.01), lienzo vs the peers, side by side on this machine.
# Needs tensorflow-cpu in its own venv for the Keras peer: python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu
# Usage: bash benchmarks/basenet_vs_peers.sh [PEERS_DIR]
set -u
PEERS=${1:-../shared/peers}
TF=${TF_PYTHON:-/tmp/tf/bin/python}
cd "$(dirname "$0")/.."
echo "== lienzo: training through the Trainer path (bench train, synthetic batches, no validation)"
.venv/bin/lienzo bench train basenet --batch-size 32 --input 1,28,28 --steps 1500 --warmup 50 optim.momentum=0.0 2>/dev/null
echo "== lienzo: one real epoch of configs/fashion_basenet.yaml (validation included)"
.venv/bin/lienzo train configs/fashion_basenet.yaml trainer.max_epochs=1 trainer.progress=false run.dir=/tmp/lienzo-bench 2>&1 | grep -E "top-1" | head -1
tail -1 /tmp/lienzo-bench/fashion_basenet*/history.csv | tail -1
.venv/bin/python benchmarks/predict_speed.py /tmp/lienzo-bench
echo "== plain PyTorch loop"; (cd "$PEERS" && /work/main/.venv/bin/python torch_basenet.py 1)
echo "== Keras"; (cd "$PEERS" && $TF keras_basenet.py 1)
rm -rf /tmp/lienzo-bench
