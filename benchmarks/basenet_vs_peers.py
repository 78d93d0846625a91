"""BaseNet at the practice's settings (batch 32, SGD 0.01): lienzo vs the peers, side by side, in rounds.

This machine's speed drifts by tens of percent between minutes, so every figure is taken ROUNDS
times, the four commands in turn within a round (the order rotating from round to round), and the
ratios are computed within each round before taking their median.

    .venv/bin/python benchmarks/basenet_vs_peers.py [--rounds 3] [--peers ../shared/peers]

The Keras peer needs tensorflow-cpu in a venv of its own (never the project's):
    python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu       (then --tf /tmp/tf/bin/python)
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIENZO = [sys.executable, "-m", "lienzo"]


def run(cmd, cwd=ROOT) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def lienzo_bench() -> dict:
    out = run([*LIENZO, "bench", "train", "basenet", "--batch-size", "32", "--input", "1,28,28", "--steps", "1500",
               "--warmup", "50", "optim.momentum=0.0"])
    return {"bench_train": json.loads(out)["images_per_second"]}


def lienzo_epoch(tmp: Path, name: str) -> dict:
    """One real epoch of configs/fashion_basenet.yaml (validation, history, checkpoints included)."""
    run([*LIENZO, "train", "configs/fashion_basenet.yaml", "trainer.max_epochs=1", "trainer.progress=false",
         f"run.dir={tmp}", f"run.name={name}"])
    with open(tmp / name / "history.csv") as f:
        seconds = float(list(csv.DictReader(f))[-1]["seconds"])
    predict = run([sys.executable, "benchmarks/predict_speed.py", str(tmp / name)])
    return {"train": 54000 / seconds, "predict": _number(r"batch 32: (\d+) img/s", predict)}


def peer(python: str, script: str, peers: Path, name: str) -> dict:
    out = run([python, script, "1"], cwd=peers)
    return {"train": _number(rf"{name} train: (\d+)", out), "predict": _number(rf"{name} predict: (\d+)", out)}


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if not match:
        raise SystemExit(f"no /{pattern}/ in:\n{text}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    parser.add_argument("--tf", default="/tmp/tf/bin/python", help="a Python with tensorflow-cpu, for the Keras peer")
    args = parser.parse_args()
    have_keras = Path(args.tf).exists()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            jobs = [("lienzo", lienzo_bench),
                    ("lienzo", lambda r=r: lienzo_epoch(Path(tmp), f"round{r}")),
                    ("torch", lambda: peer(sys.executable, "torch_basenet.py", args.peers, "torch"))]
            if have_keras:
                jobs.append(("keras", lambda: peer(args.tf, "keras_basenet.py", args.peers, "keras")))
            jobs = jobs[r % len(jobs):] + jobs[: r % len(jobs)]
            figures = {}
            for name, job in jobs:
                for key, value in job().items():
                    figures[f"{name}.{key}"] = value
            rounds.append(figures)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(figures.items())), flush=True)
    ratios = {
        "lienzo epoch / torch loop (train)": ("lienzo.train", "torch.train"),
        "lienzo bench / torch loop (train)": ("lienzo.bench_train", "torch.train"),
        "lienzo predict / torch predict": ("lienzo.predict", "torch.predict"),
    }
    if have_keras:
        ratios |= {"lienzo epoch / keras (train)": ("lienzo.train", "keras.train"),
                   "lienzo predict / keras predict": ("lienzo.predict", "keras.predict")}
    print("\nmedians (img/s): " + ", ".join(f"{k} {statistics.median(r[k] for r in rounds):,.0f}" for k in sorted(rounds[0])))
    for label, (a, b) in ratios.items():
        per_round = [r[a] / r[b] for r in rounds]
        print(f"{label}: median {statistics.median(per_round):.2f}x  (rounds: {', '.join(f'{x:.2f}' for x in per_round)})")
    if not have_keras:
        print(f"(Keras peer skipped: no {args.tf})")


if __name__ == "__main__":
    main()
