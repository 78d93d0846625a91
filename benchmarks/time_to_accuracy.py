"""Time to accuracy of a preset: `lienzo train` once per seed, wall time around the whole command, test
top-1 at the end, and the epoch (and elapsed training seconds) at which the per-epoch test curve
(`trainer.test_every_epoch`, in history.csv) first reached the target.

    .venv/bin/python benchmarks/time_to_accuracy.py [--config configs/fashion_fast.yaml] [--seeds 0 1 2]
    .venv/bin/python benchmarks/time_to_accuracy.py --from-runs /tmp/final     # summarise runs made before
    .venv/bin/python benchmarks/time_to_accuracy.py --as-avx2 --seeds 0        # this CPU limited to AVX2, fp32

--as-avx2 is a stand-in for a CPU without AVX-512 and bf16: torch's kernels and oneDNN are limited to AVX2
(ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2) and trainer.precision=32, what `auto` picks there. Machines of
one kind differ, so calibrate on the same machine: the old FastNet-S preset (`git show d1db847:configs/fashion_fast.yaml`)
with trainer.max_epochs=2 trainer.precision=32 under the same two variables took 54.4 s an epoch on the one real
2-core AVX2-only CPU measured (2026-11-22); scale the stand-in's times by 54.4 / its seconds an epoch there.

Prints a Markdown table for benchmarks/RESULTS.md. Run it alone on the machine: it times wall clock.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def summarise(run: Path, wall: float | None, target: float) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    elapsed, reached = 0.0, None
    for row in history:
        elapsed += float(row["seconds"])
        if reached is None and row.get("test_top1") and float(row["test_top1"]) >= target:
            reached = (int(row["epoch"]), elapsed)
    return {"run": run.name, "test_top1": metrics["test"]["top1"], "train_seconds": metrics["train_seconds"],
            "wall": wall, "epochs": len(history), "reached": reached}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/fashion_fast.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--from-runs", type=Path, help="summarise the run folders in this folder instead")
    parser.add_argument("--as-avx2", action="store_true", help="limit kernels to AVX2 and train in fp32 (see above)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    rows = []
    if args.from_runs:
        rows = [summarise(run, None, args.target) for run in sorted(args.from_runs.iterdir())
                if (run / "metrics.json").is_file()]
    else:
        base = Path(tempfile.mkdtemp(prefix="tta-"))
        env = dict(os.environ)
        if args.as_avx2:
            env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
            args.overrides.append("trainer.precision=32")
        for seed in args.seeds:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lienzo", "train", args.config, f"run.seed={seed}", f"run.dir={base}",
                            f"run.name=seed{seed}", "trainer.progress=false", *args.overrides], cwd=ROOT, env=env, check=True)
            rows.append(summarise(base / f"seed{seed}", time.perf_counter() - start, args.target))
    print(f"| run | test top-1 | wall | training | epochs | curve ≥ {100 * args.target:.0f} % at |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        wall = f"{r['wall']:.0f} s" if r["wall"] is not None else "–"
        reached = f"epoch {r['reached'][0]}, {r['reached'][1]:.0f} s" if r["reached"] else "not reached (no TTA)"
        print(f"| {r['run']} | {100 * r['test_top1']:.2f} % | {wall} | {r['train_seconds']:.0f} s | {r['epochs']} | {reached} |")
    accuracies = [r["test_top1"] for r in rows]
    print(f"\nmean {100 * statistics.mean(accuracies):.2f} %, min {100 * min(accuracies):.2f} %"
          + (f", median wall {statistics.median(r['wall'] for r in rows):.0f} s" if rows[0]["wall"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
