"""Fine-tuning groups: frozen parameters stay, re-initialised ones change, learning rates per group."""

import json

import pytest
import torch
import torchvision

from lienzo import load_config, train
from lienzo.config import FinetuneGroup
from lienzo.errors import ConfigError
from lienzo.models import Classifier
from lienzo.evaluate import load_run
from lienzo.tasks.classify.data import ClassificationData
from lienzo.train import build_task
from lienzo.transfer.finetune import head_parameters, parse_groups
from tests.helpers import write_idx_dataset

GROUPS = ('finetune.groups=[{pattern: "layer1.*", freeze: true}, {pattern: conv1, reinit: true, lr: 0.05},'
          ' {pattern: "layer4.*", lr: 1.0e-4}]')


@pytest.fixture
def setup(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, tmp_path / "r18.pth")
    root = write_idx_dataset(tmp_path / "data", n_train=60, n_test=30)
    base = [f"data.root={root}", "data.name=idx", "model.arch=resnet18", f"model.pretrained={tmp_path / 'r18.pth'}",
            "data.batch_size=16", "trainer.progress=false", f"run.dir={tmp_path / 'runs'}", "optim.lr=0.01",
            "optim.momentum=0.9", "trainer.precision=32"]
    return state, base


def test_groups_freeze_reinit_and_rates(setup):
    state, base = setup
    cfg = load_config(None, base + [GROUPS])
    data = ClassificationData(cfg.data, 0)
    data.setup()
    task = build_task(cfg, data)
    model = task.model
    assert model.fc.out_features == 10 and model.conv1.in_channels == 1  # adapted to the 10 IDX classes, grey input
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert not torch.allclose(model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))  # re-initialised
    assert torch.equal(model.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])  # kept
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr_of[id(model.conv1.weight)] == 0.05
    assert lr_of[id(model.layer4[1].conv2.weight)] == 1e-4
    assert lr_of[id(model.fc.weight)] == 0.01 and lr_of[id(model.layer2[0].bn1.weight)] == 0.01
    assert id(model.layer1[0].conv1.weight) not in lr_of


def test_training_leaves_frozen_layers_and_their_statistics_alone(setup):
    state, base = setup
    run = train(load_config(None, base + [GROUPS, "trainer.max_epochs=2"]))
    model = load_run(run, "last").model
    for key in ("layer1.0.conv1.weight", "layer1.1.bn2.weight", "layer1.0.bn1.running_mean", "layer1.1.bn2.running_var"):
        assert torch.equal(model.state_dict()[key], state[key]), key  # batch norm kept in eval mode too
    assert not torch.equal(model.state_dict()["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    assert not torch.equal(model.state_dict()["layer2.0.bn1.running_mean"], state["layer2.0.bn1.running_mean"])
    metrics = json.loads((run / "metrics.json").read_text())
    moved = metrics["weight_movement"]
    assert moved["layer1.0.conv1"] == 0.0 and moved["layer4.1.conv2"] > 0 and moved["conv1"] > moved["layer4.1.conv2"]
    assert "fc" not in moved  # a new head has no pretrained counterpart
    assert (run / "plots" / "weight_movement.png").is_file()


def test_gradual_unfreezing_trains_only_the_new_head_then_everything_but_frozen_groups(setup):
    state, base = setup
    first = train(load_config(None, base + ["finetune.unfreeze_after=1", "trainer.max_epochs=1",
                                            'finetune.groups=[{pattern: "layer1.*", freeze: true}]']))
    after1 = {k: v.clone() for k, v in load_run(first, "last").model.state_dict().items()}
    # epoch 1: only the new 10-class head learnt; everything else, batch-norm statistics included, is the source's
    for key in ("layer3.0.conv1.weight", "layer3.0.bn1.running_mean", "layer4.1.bn2.weight"):
        assert torch.equal(after1[key], state[key]), key
    assert torch.equal(after1["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))
    assert after1["fc.weight"].shape == (10, 512)  # a new head, not the source's first 10 rows
    assert (after1["fc.weight"] - state["fc.weight"][:10]).abs().mean() > 0.5 * state["fc.weight"][:10].abs().mean()
    # epoch 2 (resumed): unfrozen, every group but the frozen one moves
    second = train(resume=first, overrides=["trainer.max_epochs=2"])
    after2 = load_run(second, "last").model.state_dict()
    for key in ("layer3.0.conv1.weight", "layer3.0.bn1.running_mean", "conv1.weight", "fc.weight"):
        assert not torch.equal(after2[key], after1[key]), key
    for key in ("layer1.0.conv1.weight", "layer1.1.bn2.running_var"):
        assert torch.equal(after2[key], state[key]), key


def test_bad_groups_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown config key 'finetune.groups\[0\].rate'"):
        load_config(None, ['finetune.groups=[{pattern: "a", rate: 1}]'])
    with pytest.raises(ConfigError, match=r"finetune.groups\[0\].lr: must be positive \(or null\), got -1.0"):
        load_config(None, ['finetune.groups=[{pattern: "a", lr: -1}]'])
    with pytest.raises(ConfigError, match=r"finetune.groups\[1\].pattern: expected a pattern"):
        load_config(None, ['finetune.groups=[{pattern: "a"}, {lr: 0.1}]'])
    with pytest.raises(ConfigError, match=r"finetune.groups\[0\].freeze: expected true or false"):
        load_config(None, ['finetune.groups=[{pattern: "a", freeze: 3}]'])


def test_groups_are_typed_in_the_config_and_plain_in_checkpoints():
    cfg = load_config(None, ['finetune.groups=[{pattern: "layer4.*", lr: 1.0e-4}]'])
    assert cfg.finetune.groups == [FinetuneGroup("layer4.*", 1e-4)]
    saved = cfg.to_dict()["finetune"]["groups"]  # what hyper_parameters hold
    assert saved == [{"pattern": "layer4.*", "lr": 1e-4, "freeze": False, "reinit": False}]
    assert parse_groups(saved) == parse_groups(cfg.finetune.groups) == cfg.finetune.groups
    with pytest.raises(ConfigError, match=r"finetune.groups\[0\].lr: expected a number"):
        parse_groups([{"pattern": "a", "lr": "fast"}])


def test_the_head_is_the_models_classifier_not_its_last_linear_layer():
    class WithProjection(Classifier):  # a linear layer defined after the classifier
        def __init__(self):
            super().__init__()
            self.features, self.neck = torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten()
            self.num_features, self.head = 4, torch.nn.Linear(4, 3)
            self.projection = torch.nn.Linear(4, 2)

    assert head_parameters(WithProjection()) == {"head.weight", "head.bias"}
    assert head_parameters(torchvision.models.vgg11()) == {"classifier.6.weight", "classifier.6.bias"}


def test_finetuning_a_timm_model_from_a_local_file(tmp_path):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    root = write_idx_dataset(tmp_path / "data", n_train=60, n_test=30)
    run = train(load_config(None, [
        f"data.root={root}", "data.name=idx", "model.arch=timm:resnet18", f"model.pretrained={tmp_path / 'model.safetensors'}",
        "data.batch_size=16", "trainer.progress=false", f"run.dir={tmp_path / 'runs'}", "trainer.max_epochs=1",
        "trainer.precision=32", 'finetune.groups=[{pattern: "layer1.*", freeze: true}]']))
    weights = load_run(run).model.state_dict()  # rebuilt from the run folder alone
    assert weights["fc.weight"].shape == (10, 512) and weights["conv1.weight"].shape[1] == 1
    assert torch.equal(weights["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert not torch.equal(weights["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])


@pytest.mark.slow
def test_finetuning_under_ddp_on_two_cpu_processes(setup, tmp_path):
    """DDP (gloo, two processes) with frozen and re-initialised groups: frozen weights stay, the run completes,
    and channels_last is set before DDP builds its gradient buckets (no stride-mismatch copies)."""
    import subprocess
    import sys

    state, base = setup
    args = [a for a in base if not a.startswith("trainer.precision")] + [
        GROUPS, "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp",
        "run.name=ddp"]
    config = tmp_path / "ddp.yaml"
    config.write_text("run: {seed: 0}\n")
    done = subprocess.run([sys.executable, "-m", "lienzo", "train", str(config), *args], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bucket view strides" not in done.stderr
    run = tmp_path / "runs" / "ddp"
    weights = load_run(run, "last").model.state_dict()
    assert torch.equal(weights["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert not torch.equal(weights["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["count"] == 30 and metrics["weight_movement"]["layer1.0.conv1"] == 0.0
