"""Inference with a classify run: logits in the run's precision and test-time augmentation, and the
metrics of a split.

    logits = run_logits(load_run("runs/fashion_fast"), images)     # uint8 N×C×H×W
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from lienzo.data.transforms import Normalizer
from lienzo.errors import DataError
from lienzo.hardware import autocast_dtype, resolve_accelerator, resolve_precision
from lienzo.metrics.classification import classification_metrics
from lienzo.models.summary import macs_for_precision

SHIFT_WEIGHT = 0.5  # each translated view counts half as much as the centred one (as airbench)


def shift_images(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images moved by (dy, dx) pixels, the uncovered border filled with 0 (before normalisation)."""
    h, w = images.shape[2:]
    padded = torch.nn.functional.pad(images, (abs(dx), abs(dx), abs(dy), abs(dy)))
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[:, :, top : top + h, left : left + w]


@torch.no_grad()
def predict_logits(model, images: torch.Tensor, mean, std, *, precision: str = "auto", accelerator: str = "auto",
                   batch_size: int = 512, tta: bool = False, tta_shift: int = 0,
                   channels_last: bool = True) -> torch.Tensor:
    """Logits (float32, on the CPU) for uint8 N×C×H×W images, in batches, in the run's precision.

    tta: average with the mirror image; tta_shift: also with the images moved by that many pixels
    up, down, left and right (each at half weight), the test-time augmentation of airbench."""
    device = torch.device("cuda" if resolve_accelerator(accelerator) == "gpu" else "cpu")
    dtype = autocast_dtype(resolve_precision(precision, accelerator, macs_for_precision(model, images.shape[1:])))
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    normalizer = Normalizer(mean, std)
    views = [((0, 0), 1.0)] + [((dy, dx), SHIFT_WEIGHT) for dy, dx in
                                ((tta_shift, 0), (-tta_shift, 0), (0, tta_shift), (0, -tta_shift)) if tta_shift]
    total = sum(weight for _, weight in views)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        logits = 0.0
        for (dy, dx), weight in views:
            x = normalizer(shift_images(batch, dy, dx) if (dy or dx) else batch)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            context = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
            with context:
                view = model(x).float()
                if tta:  # average with the mirror image: cheap, and worth a few tenths of a percent
                    view = (view + model(x.flip(3)).float()) / 2
            logits = logits + weight / total * view
        outputs.append(logits.cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 0)


def run_logits(loaded, images: torch.Tensor, cfg=None) -> torch.Tensor:
    """Logits of a loaded classify run for uint8 images, with the run's precision, TTA and layout."""
    cfg = cfg or loaded.config
    return predict_logits(loaded.model, images, loaded.info["mean"], loaded.info["std"],
                          precision=cfg.trainer.precision, accelerator=cfg.trainer.accelerator,
                          tta=cfg.trainer.tta, tta_shift=cfg.trainer.tta_shift, channels_last=cfg.trainer.channels_last)


def evaluate_arrays(loaded, arrays, cfg=None) -> dict:
    """classification_metrics of a loaded run on ImageArrays; "_logits" holds the logits."""
    info = loaded.info
    if tuple(arrays.shape) != tuple(info["input_shape"]):
        raise DataError(f"data images are {'x'.join(map(str, arrays.shape))} but the model was trained on "
                        f"{'x'.join(map(str, info['input_shape']))} (set data.image_size / data.channels)")
    if list(arrays.class_names) != list(info["class_names"]):
        raise DataError(f"data has classes {arrays.class_names[:5]}... but the model was trained on "
                        f"{info['class_names'][:5]}... ({len(arrays.class_names)} vs {len(info['class_names'])})")
    start = time.perf_counter()
    logits = run_logits(loaded, arrays.images, cfg)
    metrics = classification_metrics(logits, arrays.labels, info["class_names"])
    metrics["seconds"] = time.perf_counter() - start
    metrics["_logits"] = logits
    return metrics

