"""Evaluation: logits for a split, metrics.json, and re-evaluation of a finished run on other data.

    metrics = evaluate("runs/fashion_fast", ["data.root=/data/other-fashion"])
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from .config import Config, config_from_dict, load_config
from .data.arrays import ImageArrays
from .data.module import ClassificationData
from .data.transforms import Normalizer
from .errors import DataError, ModelError, RunError
from .hardware import autocast_dtype, resolve_accelerator, resolve_precision
from .metrics.classification import classification_metrics
from .runs import CONFIG_FILE, METRICS_FILE, checkpoint_path, read_history, unique_path, write_json
from .summary import macs_for_precision

log = logging.getLogger("lienzo")


class LoadedRun:
    """A trained classifier rebuilt from a checkpoint, with everything needed to feed it."""

    def __init__(self, model, config: Config, class_names, input_shape, mean, std, path: Path):
        self.model, self.config, self.class_names = model, config, list(class_names)
        self.input_shape, self.mean, self.std, self.path = tuple(input_shape), mean, std, path


def load_run(run: str | Path, which: str = "best") -> LoadedRun:
    path = checkpoint_path(run, which)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types on a damaged file
        raise RunError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    hp = checkpoint.get("hyper_parameters")
    if not hp or "config" not in hp:
        raise RunError(f"{path}: not a lienzo checkpoint (no saved configuration)")
    cfg = config_from_dict(hp["config"])
    channels, height, width = hp["input_shape"]
    from .train import build_model

    model = build_model(cfg, len(hp["class_names"]), (channels, height, width), load_weights=False)
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{path}: checkpoint does not fit {cfg.model.arch} with {len(hp['class_names'])} classes "
                         f"({str(err).splitlines()[0]})") from None
    return LoadedRun(model.eval(), cfg, hp["class_names"], hp["input_shape"], hp["mean"], hp["std"], path)


@torch.no_grad()
def predict_logits(model, images: torch.Tensor, mean, std, *, precision: str = "auto", accelerator: str = "auto",
                   batch_size: int = 512, tta: bool = False, channels_last: bool = True) -> torch.Tensor:
    """Logits (float32, on the CPU) for uint8 N×C×H×W images, in batches, in the run's precision."""
    device = torch.device("cuda" if resolve_accelerator(accelerator) == "gpu" else "cpu")
    dtype = autocast_dtype(resolve_precision(precision, accelerator, macs_for_precision(model, images.shape[1:])))
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    normalizer = Normalizer(mean, std)
    outputs = []
    for start in range(0, len(images), batch_size):
        x = normalizer(images[start : start + batch_size].to(device))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        context = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
        with context:
            logits = model(x).float()
            if tta:  # average with the mirror image: cheap, and worth a few tenths of a percent
                logits = (logits + model(x.flip(3)).float()) / 2
        outputs.append(logits.cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 0)


def evaluate_arrays(loaded: LoadedRun, arrays: ImageArrays, cfg: Config | None = None) -> dict:
    cfg = cfg or loaded.config
    if tuple(arrays.shape) != loaded.input_shape:
        raise DataError(f"data images are {'x'.join(map(str, arrays.shape))} but the model was trained on "
                        f"{'x'.join(map(str, loaded.input_shape))} (set data.image_size / data.channels)")
    if list(arrays.class_names) != loaded.class_names:
        raise DataError(f"data has classes {arrays.class_names[:5]}... but the model was trained on "
                        f"{loaded.class_names[:5]}... ({len(arrays.class_names)} vs {len(loaded.class_names)})")
    start = time.perf_counter()
    logits = predict_logits(loaded.model, arrays.images, loaded.mean, loaded.std, precision=cfg.trainer.precision,
                            accelerator=cfg.trainer.accelerator, tta=cfg.trainer.tta,
                            channels_last=cfg.trainer.channels_last)
    metrics = classification_metrics(logits, arrays.labels, loaded.class_names)
    metrics["seconds"] = time.perf_counter() - start
    metrics["_logits"] = logits
    return metrics


def finalize_run(run_dir: Path, cfg: Config, data: ClassificationData, precision: str) -> dict:
    """After training: evaluate best.ckpt on val and test, write metrics.json, plots and report.html."""
    from .report import write_report

    loaded = load_run(run_dir, "best")
    history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").is_file() else []
    metrics: dict = {
        "run": run_dir.name,
        "arch": cfg.model.arch,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "precision": precision,
        "class_names": loaded.class_names,
        "input_shape": list(loaded.input_shape),
        "mean": loaded.mean,
        "std": loaded.std,
        "epochs": len(history),
        "best_epoch": _best_epoch(history, cfg.trainer.monitor),
        "train_seconds": sum(row.get("seconds", 0.0) for row in history),
        "checkpoint": str(loaded.path.relative_to(run_dir)),
    }
    logits = {}
    for split, arrays in (("val", data.val_arrays), ("test", data.test_arrays)):
        if arrays is not None and len(arrays):
            result = evaluate_arrays(loaded, arrays, cfg)
            logits[split] = result.pop("_logits")
            metrics[split] = result
    if cfg.model.pretrained:
        metrics["weight_movement"] = _weight_movement(cfg, loaded)
    write_json(run_dir / METRICS_FILE, metrics)
    write_report(run_dir, cfg, metrics, history, data, logits)
    for split in ("val", "test"):
        if split in metrics:
            log.info("%s: top-1 %.2f %%, top-5 %.2f %%, cross-entropy %.4f", split, 100 * metrics[split]["top1"],
                     100 * metrics[split]["top5"], metrics[split]["cross_entropy"])
    log.info("report: %s", (run_dir / "report.html").resolve())
    return metrics


def _weight_movement(cfg: Config, loaded: LoadedRun) -> dict[str, float]:
    from .train import build_model
    from .transfer.finetune import weight_movement

    reference = build_model(cfg, len(loaded.class_names), loaded.input_shape, load_weights=True)
    new = tuple(f"{name}." for name in getattr(reference, "lienzo_new_layers", []))
    return weight_movement(loaded.model, {k: v for k, v in reference.state_dict().items() if not k.startswith(new)})


def _best_epoch(history: list[dict], monitor: str) -> int | None:
    rows = [r for r in history if r.get(monitor) == r.get(monitor)]  # drop NaN
    if not rows:
        return None
    pick = max if monitor.endswith("top1") else min
    return int(pick(rows, key=lambda r: r[monitor])["epoch"])


def evaluate(run: str | Path, overrides: list[str] = (), split: str = "test") -> tuple[dict, Path]:
    """Re-evaluate a run's best model on its data or on other data (`data.*` overrides).

    Writes `<run>/evaluations/<data name>[-N].json`, never the run's own metrics.json."""
    run_dir = Path(run)
    loaded = load_run(run_dir, "best")
    bad = [o for o in overrides if not o.split("=", 1)[0].strip().startswith(("data.", "trainer."))]
    if bad:
        raise RunError(f"evaluate takes only data.* and trainer.* overrides, not '{bad[0]}'")
    cfg = load_config(run_dir / CONFIG_FILE, overrides) if (run_dir / CONFIG_FILE).is_file() else loaded.config
    data = ClassificationData(cfg.data, cfg.run.seed, loaded.mean, loaded.std)
    data.setup("test")
    arrays = {"test": data.test_arrays, "val": data.val_arrays, "train": data.train_arrays}[split]
    if arrays is None:
        raise DataError(f"{cfg.data.name}: the data has no {split} split")
    result = evaluate_arrays(loaded, arrays, cfg)
    result.pop("_logits")
    result.update(split=split, data=cfg.to_dict()["data"], checkpoint=str(loaded.path))
    path = unique_path(run_dir / "evaluations", f"{cfg.data.name}-{split}")
    write_json(path, result)
    return result, path
