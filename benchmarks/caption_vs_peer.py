"""Caption training speed: lienzo's caption task (`lienzo.train.train`, Lightning, the real data path: a Karpathy
split file, a features file, the vocabulary) against the plain PyTorch loops of ../shared/peers/torch_caption.py
at the peer's sizes, side by side in alternating rounds. Prints captions/s per round, the best-of-rounds ratio
(lienzo / peer) per model and precision, and peak resident memory.

    python benchmarks/caption_vs_peer.py --model both --steps 20 --rounds 3 --precision 32 bf16

Sizes (the peer's): features 2048, batch 128, vocabulary 2,500 (2,496 words + <pad> <start> <end> <unk>),
captions of 16 tokens (<start>, 14 words, <end>). showtell: words 512, LSTM 512, Adam 4e-4, no dropout, no
clipping. rank: words 300, joint 1024, one-way GRU, cosine, hardest negative margin 0.2, Adam 2e-4, no clipping.
Both on the CPU: the peer has no device option, so lienzo runs with trainer.accelerator=cpu; the peer is fp32
only, so 32 is like for like and bf16 is lienzo's own. Each lienzo run trains in a fresh process, like the peer.

Timing: lienzo times steps 1..N (step 0 warms up) from the end of one step to the end of another, so the
N timed steps include fetching their batches from the data loader; the peer warms up with 2 steps and reuses
one batch. What differs in the work itself (all small; none favours the peer):
- showtell: both LSTMs read 16 inputs (the image, then <start> and 14 words / 15 random tokens). The peer
  puts all 16 outputs through the output layer and the loss (the image's output predicts token 0); lienzo
  drops the image's output and predicts the 15 tokens after <start>: 15/16 of the peer's output-layer and
  cross-entropy work, the dominant cost (512×2500 per position).
- rank: the same GRU over 16 tokens, last state. The data has 5 captions per image, as Flickr and COCO
  do, so lienzo also masks pairs of one image in the hinge loss (the peer's batch has distinct images).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "torch_caption.py"
FEATURE_DIM, BATCH, WORDS, CAPTION_WORDS, PER_IMAGE = 2048, 128, 2496, 14, 5
MODELS = {
    "showtell": {"caption": {"model": "showtell", "word_dim": 512, "hidden": 512, "dropout": 0.0},
                 "optim": {"name": "adam", "lr": 4e-4}},
    "rank": {"caption": {"model": "rank", "word_dim": 300, "joint_dim": 1024, "encoder": "gru", "score": "cosine",
                         "loss": "hardest", "margin": 0.2},
             "optim": {"name": "adam", "lr": 2e-4}},
}
PEER_NAMES = {"showtell": "decoder", "rank": "ranking"}


# -- random data in the real formats ------------------------------------------------------------------

def random_captions(count: int, seed: int = 0) -> list[list[str]]:
    """`count` captions of 14 words from a 2,496-word list, every word used at least once (shuffled copies of
    the list back to back), so min_count 1 keeps all of them."""
    import numpy as np

    words = [f"w{i:04d}" for i in range(WORDS)]
    rng = np.random.default_rng(seed)
    needed = count * CAPTION_WORDS
    if needed < WORDS:
        raise SystemExit(f"{count} captions hold {needed} words, fewer than the {WORDS} of the vocabulary")
    stream = np.concatenate([rng.permutation(WORDS) for _ in range(-(-needed // WORDS))])[:needed]
    return [[words[i] for i in row] for row in stream.reshape(count, CAPTION_WORDS)]


def write_dataset(folder: Path, captions: int) -> tuple[Path, Path]:
    """A Karpathy split file (every image in train, 5 captions each) and its features file, as
    read_image_features reads it (written to a temporary name, then renamed)."""
    import h5py
    import numpy as np

    from lienzo.data.captions import CaptionImage, write_karpathy

    images = -(-captions // PER_IMAGE)
    token_lists = random_captions(images * PER_IMAGE)
    files = [f"{i:06d}.jpg" for i in range(images)]
    entries = [CaptionImage(file=f, split="train", tokens=token_lists[i * PER_IMAGE:(i + 1) * PER_IMAGE],
                            captions=[" ".join(t) for t in token_lists[i * PER_IMAGE:(i + 1) * PER_IMAGE]],
                            image_id=f[:-4]) for i, f in enumerate(files)]
    split_file = write_karpathy(folder / "dataset_random.json", entries, "random")
    features = folder / "random-features.h5"
    partial = features.with_name(features.name + ".partial")
    with h5py.File(partial, "w") as f:
        f["features"] = np.random.default_rng(1).standard_normal((images, FEATURE_DIM), dtype=np.float32)
        f.create_dataset("files", data=np.array(files, dtype=h5py.string_dtype()))
        f.attrs.update(shape=[FEATURE_DIM], backbone="random", layer="random", weights="None", complete=True)
    os.replace(partial, features)
    return split_file, features


# -- lienzo -------------------------------------------------------------------------------------------

def ours(model: str, precision: str, steps: int) -> tuple[float, str]:
    """(captions/s of `lienzo.train.train` over steps 1..steps, the Lightning precision it ran at)."""
    import importlib

    import lightning as L

    from lienzo.tasks import config_from_dict

    train_module = importlib.import_module("lienzo.train")
    times: list[float] = []
    seen: dict = {}

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 1:
                seen.update(tokens=tuple(batch[1].shape), vocab=len(pl_module.vocab), precision=trainer.precision)
                times.append(time.perf_counter())
            elif trainer.global_step == steps + 1:
                times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        split_file, features = write_dataset(Path(tmp), (steps + 2) * BATCH)  # one epoch: no epoch end is timed
        spec = MODELS[model]
        cfg = config_from_dict({
            "task": "caption",
            "data": {"name": "captions", "captions": str(split_file), "root": tmp, "batch_size": BATCH},
            "caption": {**spec["caption"], "features": str(features), "min_count": 1, "max_length": CAPTION_WORDS,
                        "grad_clip": None},
            "optim": spec["optim"],
            "trainer": {"max_steps": steps + 1, "precision": precision, "progress": False, "accelerator": "cpu"},
            "run": {"dir": tmp, "name": "bench"},
        })
        original = train_module.build_trainer

        def with_timer(*args, extra_callbacks=(), **kwargs):
            return original(*args, extra_callbacks=[*extra_callbacks, Timer()], **kwargs)

        train_module.build_trainer = with_timer
        train_module.train(cfg)
    # The sizes the comparison rests on, checked on what was trained, not on what was asked for.
    if seen.get("tokens") != (BATCH, CAPTION_WORDS + 2) or seen.get("vocab") != WORDS + 4:
        raise SystemExit(f"lienzo trained on batches of {seen.get('tokens')} tokens with a vocabulary of "
                         f"{seen.get('vocab')}, not ({BATCH}, {CAPTION_WORDS + 2}) and {WORDS + 4}")
    return steps * BATCH / (times[1] - times[0]), seen["precision"]


# -- rounds -------------------------------------------------------------------------------------------

def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:  # say why, not only that it failed
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peer(steps: int) -> tuple[dict[str, float], int]:
    """The peer's captions/s per model (its own process) and its peak RSS in MB."""
    wrapper = ("import resource, runpy, sys; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__'); "
               "print('peak_mb', round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))")
    out = run([sys.executable, "-c", wrapper, str(PEER), "--feature-dim", str(FEATURE_DIM), "--batch", str(BATCH),
               "--steps", str(steps)])
    speeds = {model: float(re.search(rf"{name}: ([\d.]+) captions/s", out).group(1))
              for model, name in PEER_NAMES.items()}
    return speeds, int(re.search(r"peak_mb (\d+)", out).group(1))


def lienzo(model: str, precision: str, steps: int) -> tuple[float, str, int]:
    out = run([sys.executable, __file__, "--ours", "--model", model, "--precision", precision, "--steps", str(steps)])
    match = re.search(r"ours ([\d.]+) precision (\S+) peak_mb (\d+)", out)
    return float(match.group(1)), match.group(2), int(match.group(3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="both", choices=["showtell", "rank", "both"])
    p.add_argument("--steps", type=int, default=20, help="timed steps per run (lienzo: after 1 warm-up step)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", nargs="+", default=["32"], choices=["32", "bf16", "auto"],
                   help="lienzo's precisions (the peer is fp32 only)")
    p.add_argument("--ours", action="store_true", help="(internal) time lienzo once in this process and print it")
    a = p.parse_args()
    models = list(MODELS) if a.model == "both" else [a.model]
    if a.ours:
        speed, precision = ours(models[0], a.precision[0], a.steps)
        print(f"ours {speed:.2f} precision {precision} peak_mb {peak_mb()}")
        return
    peer_speeds: dict[str, list[float]] = {m: [] for m in models}
    our_speeds: dict[tuple[str, str], list[float]] = {(m, q): [] for m in models for q in a.precision}
    resolved: dict[tuple[str, str], str] = {}
    peaks: dict[str, int] = {}
    for round_ in range(a.rounds):
        jobs = ["peer", *our_speeds]
        for job in jobs if round_ % 2 == 0 else jobs[::-1]:  # who goes first alternates, so drift evens out
            if job == "peer":
                speeds, peak = peer(a.steps)
                peaks["peer"] = max(peaks.get("peer", 0), peak)
                for m in models:
                    peer_speeds[m].append(speeds[m])
                    print(f"round {round_ + 1}: peer {m} fp32 {speeds[m]:.0f} captions/s", flush=True)
                continue
            speed, resolved[job], peak = lienzo(*job, a.steps)
            our_speeds[job].append(speed)
            peaks[job[0]] = max(peaks.get(job[0], 0), peak)
            print(f"round {round_ + 1}: lienzo {job[0]} {resolved[job]} {speed:.0f} captions/s", flush=True)
    for (m, q), speeds in our_speeds.items():
        best_peer, best_ours = max(peer_speeds[m]), max(speeds)
        print(f"{m} (peer {PEER_NAMES[m]}) lienzo {resolved[m, q]} vs peer fp32: peer {best_peer:.0f} captions/s, "
              f"lienzo {best_ours:.0f} captions/s (best of {a.rounds}, {a.steps} steps), ratio "
              f"{best_ours / best_peer:.2f}, lienzo peak RSS {peaks[m]} MB (peer {peaks['peer']} MB)")


if __name__ == "__main__":
    main()
