"""Training throughput through the same task and Trainer path as `lienzo train`, on synthetic batches.

    bench_train("resnet18", batch_size=128, input_shape=(3, 32, 32), precision="auto", steps=20)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from lienzo.errors import ConfigError
from lienzo.data.arrays import ImageArrays
from lienzo.tasks.classify.data import ClassificationData
from lienzo.models.summary import macs_for_precision
from lienzo.tasks import config_from_dict, get_task
from lienzo.train import build_task, build_trainer


class _Timer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self._sync(trainer)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._sync(trainer)
        self.end = time.perf_counter()

    @staticmethod
    def _sync(trainer):
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()


def bench_train(arch: str, batch_size: int | None = None, input_shape=(3, 32, 32), precision: str | None = None,
                steps: int = 20, warmup: int = 3, num_classes: int = 10, overrides: list[str] = ()) -> dict:
    """Images per second over `steps` training steps after `warmup` steps, batch loading included.

    `batch_size` and `precision` are data.batch_size and trainer.precision (defaults 128 and auto): give
    each as an argument or as an override; both with different values is an error."""
    if steps < 1 or warmup < 0:
        raise ConfigError(f"bench needs steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    cfg = _bench_config(arch, batch_size, precision, overrides)
    batch_size = cfg.data.batch_size
    channels, height, width = input_shape
    n = batch_size * (steps + warmup)
    generator = torch.Generator().manual_seed(0)
    arrays = ImageArrays(torch.randint(0, 256, (n, channels, height, width), dtype=torch.uint8, generator=generator),
                         torch.randint(0, num_classes, (n,), generator=generator), [str(i) for i in range(num_classes)])
    data = ClassificationData(cfg.data, seed=0, mean=[0.5] * channels, std=[0.25] * channels)
    data.train_arrays, data.val_arrays, data.test_arrays = arrays, None, None
    task = build_task(cfg, data)
    timer = _Timer(warmup)
    with tempfile.TemporaryDirectory() as tmp:
        # Only the timer: no checkpoints, history or progress bar in the measured loop.
        trainer = build_trainer(cfg, Path(tmp), get_task(cfg.task), has_val=False, callbacks=[timer], max_steps=steps + warmup,
                                macs_per_image=macs_for_precision(task.model, input_shape),
                                enable_checkpointing=False, limit_val_batches=0)
        trainer.fit(task, datamodule=data)
    seconds = timer.end - timer.start
    return {
        "arch": arch,
        "batch_size": batch_size,
        "input": list(input_shape),
        "precision": trainer.precision,
        "device": str(trainer.strategy.root_device),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "seconds": round(seconds, 4),
        "images_per_second": round(steps * batch_size / seconds, 1),
        "channels_last": cfg.trainer.channels_last,
    }


def _bench_config(arch, batch_size, precision, overrides):
    """The training config of the benchmark: SGD, one epoch, no validation, the given batch and precision."""
    given = {"data.batch_size": batch_size, "trainer.precision": precision}
    for key, value in given.items():
        if value is None:
            continue
        for text in overrides:
            name, _, raw = text.partition("=")
            if name.strip() == key and raw.strip() != str(value):
                raise ConfigError(f"{key} is given twice ({value} and {text.strip()}): give only one")
    return config_from_dict({
        "data": {"batch_size": 128, "val_fraction": 0.0, "normalize": False},
        "model": {"arch": arch},
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "trainer": {"precision": "auto", "max_epochs": 1, "progress": False, "monitor": "train_loss"},  # no val split
    }, [*overrides, *(f"{key}={value}" for key, value in given.items() if value is not None)])


def format_bench(result: dict) -> str:
    """One line: speed first, then what was measured."""
    shape = "×".join(map(str, result["input"]))
    return (f"{result['arch']}: {result['images_per_second']:,.1f} images/s  (batch {result['batch_size']}, "
            f"input {shape}, {result['precision']}, {result['device']}, {result['threads']} threads, "
            f"{result['steps']} steps in {result['seconds']} s)")
