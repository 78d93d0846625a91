"""The spine resolves the task once, finishes a run with the weights it holds, and sends only old runs
through lienzo.legacy."""

from __future__ import annotations

import json

import pytest
import torch

from lienzo import legacy
from lienzo import tasks as task_registry
from lienzo.evaluate import load_run
from lienzo.train import train
from tests.helpers import tiny_classify_config, write_idx_dataset


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("data"), n_train=60, n_test=30)


_cfg = tiny_classify_config


@pytest.fixture(scope="module")
def counted(tmp_path_factory, data_root):
    """A run trained with the task registry and the old-run upgrades counted."""
    calls = {"get_task": 0, "upgrade": 0}
    original = task_registry.get_task
    patch = pytest.MonkeyPatch()

    def counting(name):
        import sys

        caller = sys._getframe(1).f_globals["__name__"]
        if caller != "lienzo.tasks":  # the registry's own config helpers check a config against its task
            calls["get_task"] += 1
        return original(name)

    def no_upgrade(*args, **kwargs):
        calls["upgrade"] += 1
        raise AssertionError("a run trained today went through lienzo.legacy")

    import sys

    spine = [sys.modules["lienzo.train"], sys.modules["lienzo.evaluate"]]  # `lienzo.train` is the verb
    holders = [m for name, m in list(sys.modules.items())  # every module that imported the registry's function
               if name.startswith("lienzo") and getattr(m, "get_task", None) is original]
    for module in holders:
        patch.setattr(module, "get_task", counting)
    for name in ("upgrade_checkpoint", "upgrade_config", "upgrade_state_dict"):
        patch.setattr(legacy, name, no_upgrade)
    patch.setattr(spine[1], "load_run", lambda *a, **k: pytest.fail("finishing a run reloaded it from disk"))
    cfg = _cfg(data_root, tmp_path_factory.mktemp("runs"), "spine")
    try:
        run = train(cfg)
    finally:
        patch.undo()
    return run, calls


def test_one_train_resolves_its_task_once(counted):
    _, calls = counted
    assert calls["get_task"] == 1


def test_a_fresh_run_is_finished_without_the_old_runs_path(counted):
    run, calls = counted
    assert calls["upgrade"] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["top1"] > 0.9  # the bands of tests.helpers are easy: it learned
    for name in ("best", "last"):
        checkpoint = torch.load(run / "checkpoints" / f"{name}.ckpt", weights_only=False)
        assert checkpoint[legacy.FORMAT_KEY] == legacy.FORMAT and legacy.is_current(checkpoint)


def test_finishing_scores_the_best_weights_as_loading_them_does(counted):
    """metrics.json came from the in-memory module with best.ckpt's weights: the same numbers a fresh load gives."""
    run, _ = counted
    metrics = json.loads((run / "metrics.json").read_text())
    loaded = load_run(run)
    from lienzo.evaluate import evaluate

    result, _ = evaluate(run)
    assert result["top1"] == pytest.approx(metrics["test"]["top1"])
    assert result["cross_entropy"] == pytest.approx(metrics["test"]["cross_entropy"], rel=1e-4)
    assert loaded.spec.name == "classify" and loaded.task == "classify"


def test_old_checkpoints_are_upgraded_at_load(counted, tmp_path):
    """A checkpoint without the format stamp and with its data facts at the top goes through legacy, once."""
    import shutil

    run = shutil.copytree(counted[0], tmp_path / "old")
    path = run / "checkpoints" / "best.ckpt"
    checkpoint = torch.load(path, weights_only=False)
    checkpoint.pop(legacy.FORMAT_KEY)
    hp = checkpoint["hyper_parameters"]
    hp.update(hp.pop("info"))
    hp["config"].pop("task")
    torch.save(checkpoint, path)
    assert not legacy.is_current(checkpoint)
    upgraded = legacy.upgrade_checkpoint(checkpoint)
    assert upgraded["hyper_parameters"]["info"]["class_names"] == hp["class_names"]
    assert upgraded["hyper_parameters"]["config"]["task"] == "classify"
    loaded = load_run(run)
    assert loaded.class_names == hp["class_names"] and loaded.input_shape == tuple(hp["input_shape"])


def test_a_loaded_run_says_which_facts_it_lacks(counted):
    loaded = load_run(counted[0])
    loaded.info.pop("mean")
    from lienzo.errors import RunError

    with pytest.raises(RunError, match="a classify run has no mean"):
        _ = loaded.mean


def test_backward_is_plain_only_where_nothing_else_would_act(tmp_path):
    """TaskModule's shortcut: loss.backward() on one device without scaling and without backward hooks;
    Lightning's manual_backward otherwise (fp16, DDP, a callback on backward)."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from lienzo.tasks.base import TaskModule, plain_backward

    class Tiny(TaskModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

    class Watcher(Callback):
        def on_after_backward(self, trainer, pl_module):
            pass

    def trainer(**kwargs):
        return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs)

    module = Tiny()
    assert plain_backward(trainer(precision="32-true"), module)
    assert plain_backward(trainer(precision="bf16-mixed"), module)
    assert not plain_backward(trainer(precision="32-true", callbacks=[Watcher()]), module)

    class Hooked(Tiny):
        def on_before_backward(self, loss):
            pass

    assert not plain_backward(trainer(precision="32-true"), Hooked())
    module.layer._current_fx_name = "x"  # a plain attribute still works on submodules
    module._current_fx_name = "training_step"
    assert module._current_fx_name == "training_step" and "_current_fx_name" not in module._modules
