"""WGAN-GP training speed: lienzo's generate task (`lienzo train`, Lightning, manual optimisation) against the
plain PyTorch loop of ../shared/peers/torch_wgan_gp.py at the same size, channels, maps and precision,
side by side in alternating rounds, both on `--device` (cpu or cuda). Prints generator iterations/s (5
critic steps + 1 generator step) and the ratio, and lienzo's peak resident memory (and peak GPU memory on cuda).

    python benchmarks/gan_vs_peer.py --size 32 --channels 3 --maps 64 --precision 32 --iters 3 --rounds 2
    python benchmarks/gan_vs_peer.py --device cuda --size 32 --maps 128 --precision bf16 --iters 20
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "torch_wgan_gp.py"


def ours(size: int, channels: int, maps: int, precision: str, iters: int, device: str = "cpu") -> float:
    """Generator it/s of `lienzo train` on random images on `device` (trainer.accelerator cpu or gpu, as the
    peer's --device), timed over steps 1..iters (step 0 warms up)."""
    import lightning as L
    import numpy as np
    import torch

    from lienzo.data.hdf5 import write_hdf5
    from lienzo.tasks import config_from_dict
    import importlib

    train_module = importlib.import_module("lienzo.train")

    times: list[float] = []

    def now() -> float:
        if device == "cuda":
            torch.cuda.synchronize()  # the GPU's queued work belongs to the step it was queued in
        return time.perf_counter()

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 1:
                times.append(now())

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == iters + 1:
                times.append(now())

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "random.h5"
        rng = np.random.default_rng(0)
        write_hdf5(data, rng.integers(0, 256, (1024, size, size, channels), dtype=np.uint8),
                   np.zeros(1024, dtype=np.int64), ["x"])
        cfg = config_from_dict({
            "task": "generate", "data": {"name": "hdf5", "root": str(data)},
            "model": {"maps": maps}, "trainer": {"max_steps": iters + 1, "precision": precision, "progress": False,
                        "accelerator": "gpu" if device == "cuda" else "cpu", "devices": 1},
            "gan": {"steps_per_epoch": iters + 1, "grid": 16}, "run": {"dir": tmp, "name": "bench"},
        })
        original = train_module.build_trainer

        def with_timer(*args, extra_callbacks=(), **kwargs):
            return original(*args, extra_callbacks=[*extra_callbacks, Timer()], **kwargs)

        train_module.build_trainer = with_timer
        train_module.train(cfg)
    return iters / (times[1] - times[0])


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--maps", type=int, default=64)
    p.add_argument("--precision", default="32", choices=["32", "bf16"])
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where both loops run (default: cpu)")
    p.add_argument("--ours", action="store_true", help="(internal) time lienzo once and print it/s")
    a = p.parse_args()
    if a.ours:
        speed = ours(a.size, a.channels, a.maps, a.precision, a.iters, a.device)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gpu = ""
        if a.device == "cuda":
            import torch

            gpu = f" peak_gpu_mb {torch.cuda.max_memory_allocated() / 2 ** 20:.0f}"
        print(f"ours {speed:.4f} peak_mb {peak:.0f}{gpu}")
        return
    args = ["--size", str(a.size), "--channels", str(a.channels), "--maps", str(a.maps), "--precision", a.precision,
            "--iters", str(a.iters), "--device", a.device]
    gpu_peaks = []
    peer_speeds, our_speeds, peaks = [], [], []
    for _ in range(a.rounds):
        out = run([sys.executable, str(PEER), *args])
        peer_speeds.append(float(re.search(r"([\d.]+) generator it/s", out).group(1)))
        out = run([sys.executable, __file__, *args, "--ours"])
        match = re.search(r"ours ([\d.]+) peak_mb (\d+)", out)
        our_speeds.append(float(match.group(1)))
        peaks.append(int(match.group(2)))
        gpu_peaks += [int(m) for m in re.findall(r"peak_gpu_mb (\d+)", out)]
        print(f"round: peer {peer_speeds[-1]:.4f} it/s, lienzo {our_speeds[-1]:.4f} it/s", flush=True)
    best_peer, best_ours = max(peer_speeds), max(our_speeds)
    gpu = f", peak GPU memory {max(gpu_peaks)} MB" if gpu_peaks else ""
    print(f"wgan-gp {a.size}px {a.channels}ch maps {a.maps} {a.precision} on {a.device}: peer {best_peer:.4f} it/s, "
          f"lienzo {best_ours:.4f} it/s (best of {a.rounds}), ratio {best_ours / best_peer:.2f}, lienzo peak RSS "
          f"{max(peaks)} MB{gpu}")


if __name__ == "__main__":
    main()
