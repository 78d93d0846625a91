"""Evaluation for any task: a run rebuilt from its checkpoint, metrics.json after training, and
re-evaluation of a finished run on other data.

    loaded = load_run("runs/fashion_fast")                       # every network of the run's task
    metrics, path = evaluate("runs/fashion_fast", ["data.root=/data/other-fashion"])
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from lienzo import legacy
from lienzo.config import Config
from lienzo.errors import DataError, ModelError, RunError
from lienzo.runs import (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, checkpoint_path, envelope, read_checkpoint, read_history,
                         read_metrics, unique_path, write_json)
from lienzo.report.html import write_report
from lienzo.tasks import config_from_dict, get_task, load_config
from lienzo.tasks.base import Task

log = logging.getLogger("lienzo")


class LoadedRun:
    """A run rebuilt from a checkpoint: the task's LightningModule with every network restored, the
    run's config, the data facts (`info`) its networks depend on, and its task.

    `loaded.model` is the module's `model` network (classifiers, backbones); `loaded.networks` holds
    all of them by name (a GAN's generator and critic); a classifier's data facts read as properties
    (`class_names`, `input_shape`, `mean`, `std`)."""

    def __init__(self, module: nn.Module, config: Config, info: dict, path: Path, task: Task):
        self.module, self.config, self.info, self.path, self.spec = module, config, dict(info), path, task

    @property
    def task(self) -> str:
        """The task's name ("classify"); `spec` is the Task itself."""
        return self.config.task

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {name: child for name, child in self.module.named_children()
                if any(True for _ in child.parameters())}

    @property
    def model(self) -> nn.Module:
        if not hasattr(self.module, "model"):
            raise RunError(f"{self.path}: a {self.task} run has no single model (networks: "
                           f"{', '.join(self.networks)})")
        return self.module.model

    def _fact(self, name: str):
        if name not in self.info:
            raise RunError(f"{self.path}: a {self.task} run has no {name.replace('_', ' ')}")
        return self.info[name]

    @property
    def class_names(self) -> list[str]:
        return list(self._fact("class_names"))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self._fact("input_shape"))

    @property
    def mean(self) -> list[float]:
        return list(self._fact("mean"))

    @property
    def std(self) -> list[float]:
        return list(self._fact("std"))


def check_fits(module: nn.Module, checkpoint: dict, path: Path) -> None:
    """A checkpoint whose networks do not fit the module is the user's mistake (another architecture,
    class count, ...): name the first mismatched, missing and unexpected keys and their counts."""
    own = module.state_dict()
    saved = checkpoint.get("state_dict", {})
    shapes = [k for k, v in saved.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    problems = []
    if shapes:
        first = shapes[0]
        problems.append(f"{len(shapes)} of another shape (first: {first} {tuple(saved[first].shape)} "
                        f"vs {tuple(own[first].shape)})")
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    problems += [f"{len(keys)} {what} (first: {keys[0]})" for what, keys in
                 (("missing", missing), ("unexpected", unexpected)) if keys]
    if problems:
        raise ModelError(f"{path}: checkpoint does not fit this run's networks: {'; '.join(problems)}")


def load_run(run: str | Path, which: str = "best") -> LoadedRun:
    """Rebuild a run's task module from best.ckpt (or last.ckpt), with every network it trained. Runs of
    earlier lienzo versions are upgraded on the way (lienzo.legacy); today's load as they are."""
    checkpoint, path = read_checkpoint(run, which)
    current = legacy.is_current(checkpoint)
    if not current:
        checkpoint = legacy.upgrade_checkpoint(checkpoint)
    hp = checkpoint["hyper_parameters"]
    cfg = config_from_dict(hp["config"])
    task = get_task(cfg.task)
    state = checkpoint["state_dict"]
    if not current:
        cfg = legacy.upgrade_config(cfg, state)
    module = task.build_module(cfg, hp["info"], load_weights=False)
    if not current:
        state = legacy.upgrade_state_dict(cfg, module, state)
    check_fits(module, {"state_dict": state}, path)
    module.load_state_dict(state)
    return LoadedRun(module.eval(), cfg, hp["info"], path, task)


def split_results(task, loaded: LoadedRun, data, cfg: Config, splits=("val", "test")) -> tuple[dict, dict]:
    """(results, extras) per split: the task's results, and its in-memory "_" entries apart."""
    results, extras = {}, {}
    for split in splits:
        result = task.evaluate(loaded, data, split, cfg)
        if result is None:
            continue
        extras[split] = {k: result.pop(k) for k in [k for k in result if k.startswith("_")]}
        results[split] = result
    return results, extras


def finalize_run(run_dir: Path, cfg: Config, task: Task, module, data, precision: str,
                 monitor: tuple[str, str]) -> dict:
    """After training: the trained module with best.ckpt's weights (a plain load: the run was written a
    moment ago in today's format) evaluated on val and test; metrics.json, plots and report.html."""
    best = checkpoint_path(run_dir, "best")
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    module.load_state_dict(checkpoint["state_dict"])
    loaded = LoadedRun(module.eval(), cfg, checkpoint["hyper_parameters"]["info"], best, task)
    history = read_history(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).is_file() else []
    monitor, mode = monitor
    results, extras = split_results(task, loaded, data, cfg)
    fields = {
        **task.describe(cfg, loaded.module, loaded.info),
        "precision": precision,
        "epochs": len(history),
        "monitor": monitor,
        "best_epoch": best_epoch(history, monitor, mode),
        "train_seconds": sum(row.get("seconds", 0.0) for row in history),
        "checkpoint": str(loaded.path.relative_to(run_dir)),
        **task.extra_results(run_dir, cfg, loaded),
    }
    metrics = envelope(cfg.task, run_dir.name, results, task.headline(cfg), **fields)
    write_json(run_dir / METRICS_FILE, metrics)
    write_report(run_dir, cfg, metrics, history, task.report(run_dir, cfg, metrics, history, data, extras))
    for split, result in results.items():
        log.info("%s", task.summary_line(split, result))
    log.info("report: %s", (run_dir / "report.html").resolve())
    return metrics


def refresh_report(run_dir: str | Path) -> Path:
    """Write a run's report.html again from what its folder holds (after plots were added to it)."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / CONFIG_FILE)
    metrics = read_metrics(run_dir / METRICS_FILE)
    history = read_history(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).is_file() else []
    task = get_task(metrics.get("task") or cfg.task)
    return write_report(run_dir, cfg, metrics, history, task.report(run_dir, cfg, metrics, history))


def best_epoch(history: list[dict], monitor: str, mode: str) -> int | None:
    """The epoch whose `monitor` value was best (lowest for mode min), as ModelCheckpoint chose it."""
    rows = [r for r in history if r.get(monitor) == r.get(monitor) and r.get(monitor) is not None]  # drop NaN
    if not rows:
        return None
    pick = max if mode == "max" else min
    return int(pick(rows, key=lambda r: r[monitor])["epoch"])


def evaluate(run: str | Path, overrides: list[str] = (), split: str = "test",
             samples: int | None = None) -> tuple[dict, Path]:
    """Re-evaluate a run's best networks on its data or on other data (`data.*` overrides), or with other
    settings of its task's own section (`gan.scorer=...`); `samples`: how many a generative task draws.

    Writes `<run>/evaluations/<data name>-<split>[-N].json` in metrics.json's envelope (task, lienzo version,
    created, run, splits, main; the results under the split's key), never the run's own metrics.json.
    Returns the split's results with task, split, data and checkpoint added, and the file's path."""
    run_dir = Path(run)
    loaded = load_run(run_dir, "best")
    if run_dir.is_file():  # a checkpoint given directly: its run folder keeps the config and the evaluations
        run_dir = run_dir.parent.parent
    task = loaded.spec
    own = tuple(f"{name}." for name in task.config_sections if name not in Config.__dataclass_fields__)
    changeable = own if task.evaluate_keys is None else tuple(
        p for p in own if any(key.startswith(p) for key in task.evaluate_keys))
    bad = [o for o in overrides if not o.split("=", 1)[0].strip().startswith(("data.", "trainer.", *own))]
    if bad:
        allowed = ", ".join(f"{p}*" for p in ("data.", "trainer.", *changeable))
        raise RunError(f"evaluate takes only {allowed} overrides, not '{bad[0]}'")
    fixed = [o for o in overrides if o.split("=", 1)[0].strip().startswith(own) and task.evaluate_keys is not None
             and o.split("=", 1)[0].strip() not in task.evaluate_keys]
    if fixed:
        may = f" (it may change {', '.join(task.evaluate_keys)})" if task.evaluate_keys else ""
        raise RunError(f"evaluate cannot change '{fixed[0].split('=', 1)[0].strip()}' of a trained {loaded.task} "
                       f"run{may}")
    if samples is None and task.sample_count_key is not None:
        samples = task.sample_count_default
    if samples is not None:
        if task.sample_count_key is None:
            raise RunError(f"{run_dir}: --n (samples to draw) is for generative runs; this is a {loaded.task} run")
        overrides = [*overrides, f"{task.sample_count_key}={samples}"]
    cfg = load_config(run_dir / CONFIG_FILE, overrides) if (run_dir / CONFIG_FILE).is_file() else loaded.config
    task.check_evaluate(cfg, split)
    data = task.data_module(cfg, loaded.info)
    data.setup("test")
    results, _ = split_results(task, loaded, data, cfg, splits=(split,))
    if split not in results:
        raise DataError(f"{cfg.data.name}: the data has no {split} split")
    result = results[split]
    facts = {"split": split, "data": cfg.to_dict()["data"], "checkpoint": str(loaded.path)}
    _, key, mode = task.headline(cfg)
    path = unique_path(run_dir / "evaluations", f"{cfg.data.name}-{split}")
    write_json(path, envelope(cfg.task, run_dir.resolve().name, results, (split, key, mode), **facts))
    return {**result, "task": cfg.task, **facts}, path
