"""Prediction throughput of a trained run on the Fashion-MNIST test split, at batch 32 (the peers')
and at lienzo's default evaluation batch. Usage: python benchmarks/predict_speed.py RUN_OR_RUNS_DIR"""
import glob
import sys
import time
from pathlib import Path

from lienzo.data.idx import FASHION_MNIST_CLASSES, load_idx_split
from lienzo.evaluate import load_run
from lienzo.tasks.classify import predict_logits

given = Path(sys.argv[1])
run = given if (given / "checkpoints").is_dir() else sorted(glob.glob(f"{given}/*/"))[-1]
loaded = load_run(run)
test = load_idx_split("/usr/share/datasets/fashion-mnist", "test", FASHION_MNIST_CLASSES)
for batch in (32, 512):
    predict_logits(loaded.model, test.images[:1024], loaded.mean, loaded.std, batch_size=batch)  # warm-up
    start = time.perf_counter()
    logits = predict_logits(loaded.model, test.images, loaded.mean, loaded.std, batch_size=batch)
    seconds = time.perf_counter() - start
    accuracy = float((logits.argmax(1) == test.labels).float().mean())
    print(f"lienzo predict batch {batch}: {len(test) / seconds:.0f} img/s; test accuracy {accuracy:.4f}")
