"""The training step's own decisions: schedules stepped by the task, precision chosen per model size."""

import csv

import pytest
import torch

from lienzo import load_config, train
from lienzo.hardware import CPU_BF16_MIN_MACS, cpu_has_fast_bf16, resolve_precision
from lienzo.models import create_model
from lienzo.models.summary import macs_per_image
from tests.helpers import write_idx_dataset


def test_macs_per_image_is_the_lecture_arithmetic():
    # conv 5x5x6 on 28x28 → 24x24x6, each output 25 MACs; conv 5x5x16 on 12x12x6 → 8x8x16, 150 MACs each;
    # dense 256→50 and 50→10.
    expected = 24 * 24 * 6 * 25 + 8 * 8 * 16 * 150 + 256 * 50 + 50 * 10
    model = create_model("basenet", num_classes=10, in_chans=1, input_size=(28, 28))
    assert macs_per_image(model, (1, 28, 28)) == expected == 253_300
    assert model.training  # measuring leaves the mode as it was


def test_precision_auto_keeps_tiny_models_in_fp32_on_the_cpu():
    assert resolve_precision("auto", "cpu", 253_300) == "32-true"
    big = resolve_precision("auto", "cpu", CPU_BF16_MIN_MACS * 4)
    assert big == ("bf16-mixed" if cpu_has_fast_bf16() else "32-true")
    assert resolve_precision("bf16", "cpu", 10) == "bf16-mixed"  # an explicit choice is kept
    assert resolve_precision("32", "cpu", 1e12) == "32-true"


@pytest.mark.parametrize("schedule, expected", [
    ("step", [0.1, 0.05, 0.025]),   # StepLR(step_size=1, gamma=0.5), stepped once per epoch
    ("none", [0.1, 0.1, 0.1]),
])
def test_epoch_schedules_are_stepped_once_per_epoch(tmp_path, schedule, expected):
    root = write_idx_dataset(tmp_path / "data", n_train=60, n_test=30)
    cfg = load_config("configs/fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=16", "trainer.max_epochs=3", "trainer.progress=false",
        f"run.dir={tmp_path / 'runs'}", "optim.lr=0.1", f"optim.schedule={schedule}", "optim.step_size=1",
        "optim.gamma=0.5",
    ])
    run = train(cfg)
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["lr"]) for r in rows] == pytest.approx(expected)


def _ema_run(tmp_path, name, decay, epochs=1):
    root = tmp_path / "data"
    if not root.exists():
        write_idx_dataset(root, n_train=60, n_test=30)
    cfg = load_config("configs/fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=30", "data.val_fraction=0", f"trainer.max_epochs={epochs}",
        "trainer.progress=false", f"run.dir={tmp_path / 'runs'}", f"run.name={name}", "optim.lr=0.1",
        f"trainer.ema_decay={decay}",
    ])
    return train(cfg)


def _ckpt(run, which="last"):
    return torch.load(run / "checkpoints" / f"{which}.ckpt", map_location="cpu", weights_only=False)


def test_ema_checkpoint_holds_the_average_of_the_steps(tmp_path):
    # 60 images in batches of 30: two steps, so the average is d * w1 + (1 - d) * w2 and the raw weights are
    # w2. Two decays on the same seeded run give the same raw weights (averaging does not touch training),
    # and avg - raw = d * (w1 - w2): the two differences are in the ratio of the decays.
    one, two = _ema_run(tmp_path, "half", 0.5), _ema_run(tmp_path, "quarter", 0.25)
    a, b = _ckpt(one), _ckpt(two)
    assert set(a["state_dict"]) == set(a["current_model_state"])
    for name, raw in a["current_model_state"].items():
        assert torch.equal(raw, b["current_model_state"][name])
        diff_half, diff_quarter = a["state_dict"][name] - raw, b["state_dict"][name] - raw
        assert torch.allclose(diff_half * 0.25, diff_quarter * 0.5, atol=1e-6)
        assert diff_half.abs().max() > 0  # the average is not the last weights
    # evaluate and predict read the average
    from lienzo.evaluate import load_run

    loaded = load_run(one, "last")
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, a["state_dict"][f"model.{name}"])


def test_ema_survives_resume(tmp_path):
    straight = _ema_run(tmp_path, "straight", 0.9, epochs=2)
    stopped = _ema_run(tmp_path, "stopped", 0.9, epochs=1)
    resumed = train(resume=stopped, overrides=["trainer.max_epochs=2"])
    a, b = _ckpt(straight), _ckpt(resumed)
    assert b["epoch"] == a["epoch"] == 1
    for key in ("state_dict", "current_model_state"):
        for name, value in a[key].items():
            assert torch.allclose(value, b[key][name], atol=1e-7), (key, name)


def test_ema_decay_must_be_below_one():
    from lienzo.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.ema_decay"):
        load_config(None, ["trainer.ema_decay=1.0"])
