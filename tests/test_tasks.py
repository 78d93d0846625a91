"""A new task needs no edits outside its own module: a toy autoencoder on Fashion-MNIST, registered
through the public interface only, trains, resumes, evaluates, reports and is listed like classify."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lienzo import load_config
from lienzo.tasks import config_from_dict
from lienzo.data.idx import read_idx
from lienzo.errors import ConfigError
from lienzo.evaluate import evaluate, load_run
from lienzo.runs import list_runs, read_metrics
from lienzo.tasks import get_task, list_tasks, register_task, unregister_task
from lienzo.report.content import Report, ReportSection, Table
from lienzo.tasks.base import Task
from lienzo.train import train


@dataclass
class AutoencoderConfig:
    code: int = 16  # size of the bottleneck
    limit: int = 1200  # images of each split used (the test stays fast)


class PixelsData(L.LightningDataModule):
    def __init__(self, root, limit: int, batch_size: int, info: dict | None = None):
        super().__init__()
        self.root, self.limit, self.batch_size = root, limit, batch_size
        self.splits: dict[str, torch.Tensor] = {}
        self.mean_image = None if info is None else torch.tensor(info["mean_image"])

    def setup(self, stage=None):
        if self.splits:
            return
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images = read_idx(self.root / f"{prefix}-images-idx3-ubyte.gz")[: self.limit]
            self.splits[split] = torch.from_numpy(images.copy()).float().div(255).flatten(1)
        self.splits["val"], self.splits["train"] = self.splits["train"][:200], self.splits["train"][200:]
        if self.mean_image is None:
            self.mean_image = self.splits["train"].mean(0)

    def _loader(self, split):
        return DataLoader(TensorDataset(self.splits[split]), batch_size=self.batch_size)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("val")


class Autoencoder(L.LightningModule):
    def __init__(self, config: dict, info: dict):
        super().__init__()
        self.save_hyperparameters()
        code = config["ae"]["code"]
        self.encoder = nn.Sequential(nn.Linear(784, code), nn.ReLU())
        self.decoder = nn.Linear(code, 784)
        with torch.no_grad():  # start from the mean image: training can only improve on it
            self.decoder.weight.mul_(0.1)
            self.decoder.bias.copy_(torch.tensor(info["mean_image"]))
        self.lr = config["optim"]["lr"]

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def training_step(self, batch, batch_idx):
        loss = F.mse_loss(self(batch[0]), batch[0])
        self.log("train_mse", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_mse", F.mse_loss(self(batch[0]), batch[0]), on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class Autoencode(Task):
    name = "autoencode_toy"
    config_sections = {"ae": AutoencoderConfig}
    main_metric = ("test", "mse", "min")

    def data_module(self, cfg, info=None):
        from pathlib import Path

        return PixelsData(Path(cfg.data.root), cfg.ae.limit, cfg.data.batch_size, info)

    def data_info(self, data):
        return {"mean_image": data.mean_image.tolist()}

    def build_module(self, cfg, info, load_weights=True):
        return Autoencoder(cfg.to_dict(), info)

    def monitor(self, cfg, has_val):
        return ("val_mse", "min") if has_val else ("train_mse", "min")

    @torch.no_grad()
    def evaluate(self, loaded, data, split, cfg):
        if split not in data.splits:
            return None
        x = data.splits[split]
        baseline = torch.tensor(loaded.info["mean_image"]).expand_as(x)
        return {"mse": float(F.mse_loss(loaded.module(x), x)), "mean_image_mse": float(F.mse_loss(baseline, x)),
                "count": len(x)}

    def report(self, run_dir, cfg, metrics, history, data=None, extras=None):
        rows = [[s, f"{metrics[s]['mse']:.5f}"] for s in metrics["splits"]]
        return Report(subtitle="toy autoencoder", cards=[("test mse", f"{metrics['test']['mse']:.4f}")],
                      headline=ReportSection("Reconstruction error", table=Table(["split", "mse"], rows)))


@pytest.fixture
def toy_task():
    register_task(Autoencode)
    yield Autoencode.name
    unregister_task(Autoencode.name)


def _config(tmp_path, fashion_root, *extra):
    return load_config(None, [f"task={Autoencode.name}", f"data.root={fashion_root}", "data.batch_size=50",
                              "optim.lr=0.01", "trainer.max_epochs=2", "trainer.progress=false",
                              f"run.dir={tmp_path}", "run.name=toy", *extra])


def test_task_registry_and_config_sections(toy_task, fashion_root, tmp_path):
    assert toy_task in list_tasks() and "classify" in list_tasks()
    cfg = _config(tmp_path, fashion_root, "ae.code=8")
    assert cfg.task == toy_task and cfg.ae.code == 8 and cfg.to_dict()["ae"] == {"code": 8, "limit": 1200}
    with pytest.raises(ConfigError, match="ae.cod"):
        _config(tmp_path, fashion_root, "ae.cod=8")
    with pytest.raises(ConfigError, match="unknown task 'autoencode_tyo'"):
        config_from_dict({"task": "autoencode_tyo"})
    with pytest.raises(ConfigError, match="ae"):  # classify has no ae section
        config_from_dict({"ae": {"code": 3}})
    with pytest.raises(ValueError, match="registered twice"):
        register_task(type("Other", (Task,), {"name": toy_task}))
    assert get_task(toy_task).main_metric == ("test", "mse", "min")


@pytest.mark.slow
def test_toy_task_trains_resumes_evaluates_reports(toy_task, fashion_root, tmp_path):
    cfg = _config(tmp_path, fashion_root)
    run = train(cfg)

    # history.csv keeps every key the task logged, and the learning rate
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_mse", "val_mse", "lr", "seconds"} <= set(rows[0])
    assert float(rows[0]["lr"]) == pytest.approx(0.01)
    assert float(rows[1]["val_mse"]) < float(rows[0]["val_mse"])  # it learns

    # metrics.json: the envelope around the task's own results
    metrics = read_metrics(run / "metrics.json")
    assert metrics["task"] == toy_task and metrics["run"] == "toy" and metrics["created"]
    assert metrics["splits"] == ["val", "test"]
    assert metrics["test"]["count"] == 1200 and metrics["val"]["count"] == 200
    assert metrics["test"]["mse"] < metrics["test"]["mean_image_mse"]  # better than the mean image
    assert metrics["main"] == {"split": "test", "metric": "mse", "mode": "min", "value": metrics["test"]["mse"]}
    assert metrics["best_epoch"] == int(min(rows, key=lambda r: float(r["val_mse"]))["epoch"])
    assert metrics["monitor"] == "val_mse"
    assert metrics["networks"] == {"encoder": 784 * 16 + 16, "decoder": 16 * 784 + 784}

    # load_run restores every network, not only `model`
    loaded = load_run(run)
    assert set(loaded.networks) == {"encoder", "decoder"}
    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    for key, value in loaded.module.state_dict().items():
        assert torch.equal(value, state[key]), key

    # evaluate writes the task's results beside the run, never over metrics.json
    result, path = evaluate(run)
    assert path.parent == run / "evaluations" and result["task"] == toy_task
    assert result["mse"] == pytest.approx(metrics["test"]["mse"], rel=1e-6)

    # the report page has the task's section and a curve of what it logged
    page = (run / "report.html").read_text()
    assert "Reconstruction error" in page and "toy autoencoder" in page and "val_mse" in page
    assert page.index("Reconstruction error") < page.index("Training curves") < page.index("History")
    assert (run / "plots" / "curves.png").stat().st_size > 5000

    # resume: one epoch, then continue to two, equals the straight two-epoch run
    short = train(_config(tmp_path, fashion_root, "trainer.max_epochs=1", "run.name=toy_short"))
    resumed = train(resume=short, overrides=["trainer.max_epochs=2"])
    a = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key

    # `lienzo runs` lists both, with the task's main metric
    listed = {r["name"]: r for r in list_runs(tmp_path)}
    assert listed["toy"]["task"] == toy_task and listed["toy"]["state"] == "finished"
    assert listed["toy"]["main"] == pytest.approx(metrics["test"]["mse"])
    assert json.loads(json.dumps(listed["toy"])) == listed["toy"]  # JSON-able for --json, nothing lost
    assert listed["toy"]["arch"] is None  # the toy says no architecture; model.arch's default is not it
