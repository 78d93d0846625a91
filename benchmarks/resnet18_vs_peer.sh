#!/usr/bin/env bash
# ResNet-18 (CIFAR stem, 3x32x32, batch 128): lienzo bench train vs the plain loops, side by side.
set -u
PEERS=${1:-../shared/peers}
cd "$(dirname "$0")/.."
.venv/bin/lienzo bench train resnet18 --batch-size 128 --input 3,32,32 --steps 12 2>/dev/null
(cd "$PEERS" && /work/main/.venv/bin/python torch_resnet18.py)
