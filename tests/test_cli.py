"""The verbs: bad input is exit code 2 and one clear line, no traceback; what they print, and how."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import lienzo
from lienzo.cli import main
from lienzo.cli.output import format_results
from lienzo.data.idx import write_idx
from lienzo.metrics.classification import classification_metrics
from tests.helpers import write_idx_dataset


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(capsys, expected: str, *args):
    code, _, err = run_cli(capsys, *args)
    lines = [l for l in err.splitlines() if l.startswith("lienzo: error:")]
    assert code == 2, err
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err


def test_config_errors(capsys, tmp_path):
    assert_one_line_error(capsys, "config file not found", "train", str(tmp_path / "nope.yaml"))
    assert_one_line_error(capsys, "unknown config key 'optim.lrr'", "train", "configs/fashion_basenet.yaml", "optim.lrr=1")
    assert_one_line_error(capsys, "trainer.max_epochs: expected an integer", "train", "configs/fashion_basenet.yaml",
                          "trainer.max_epochs=ten")
    assert_one_line_error(capsys, "train needs a CONFIG", "train")


def test_data_and_model_errors(capsys, tmp_path, fashion_root):
    base = ["train", "configs/fashion_basenet.yaml", f"run.dir={tmp_path / 'runs'}", "trainer.progress=false"]
    assert_one_line_error(capsys, "unknown architecture 'resnet81' (did you mean", *base, "model.arch=resnet81")
    assert_one_line_error(capsys, "apt-get install dataset-fashion-mnist", *base, f"data.root={tmp_path}")
    root = write_idx_dataset(tmp_path / "idx", n_train=20, n_test=5)
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    assert_one_line_error(capsys, "t10k-images-idx3-ubyte.gz", *base, "data.name=idx", f"data.root={root}")
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.float32))
    assert_one_line_error(capsys, "expected uint8 images", *base, "data.name=idx", f"data.root={root}")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(capsys, "cannot create a run folder", "train", "configs/fashion_basenet.yaml",
                          "data.name=idx", f"data.root={write_idx_dataset(tmp_path / 'ok')}", f"run.dir={blocker}")
    # the trainings that failed on their data left no run folder behind (glob finds none in a missing folder)
    assert sorted(p.name for p in (tmp_path / "runs").glob("*")) == []


def test_run_errors(capsys, tmp_path):
    assert_one_line_error(capsys, "run folder not found", "evaluate", str(tmp_path / "missing"))
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert_one_line_error(capsys, "no best.ckpt", "evaluate", str(tmp_path / "run"))
    (tmp_path / "run" / "checkpoints" / "best.ckpt").write_bytes(b"not a checkpoint")
    assert_one_line_error(capsys, "not a readable checkpoint", "predict", str(tmp_path / "run"), "x.png")


def test_checkpoint_of_another_architecture_or_class_count(capsys, tmp_path):
    root = write_idx_dataset(tmp_path / "idx", n_train=30, n_test=9)
    code, _, err = run_cli(capsys, "train", "configs/fashion_basenet.yaml", "data.name=idx", f"data.root={root}",
                           "trainer.max_epochs=1", f"run.dir={tmp_path}", "run.name=r", "trainer.progress=false")
    assert code == 0, err
    run = tmp_path / "r"
    assert_one_line_error(capsys, "checkpoint does not fit", "train", "--resume", str(run), "model.arch=lenet5")
    assert_one_line_error(capsys, "the model was trained on", "evaluate", str(run), "data.classes=[0, 1]")
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)
    ckpt["hyper_parameters"]["config"]["model"]["arch"] = "lenet5"
    torch.save(ckpt, run / "checkpoints" / "best.ckpt")
    assert_one_line_error(capsys, "checkpoint does not fit", "evaluate", str(run))


def test_debug_shows_the_traceback(tmp_path):
    from lienzo.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "train", str(tmp_path / "nope.yaml")])


def test_models_and_summary(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "vgg16" in out and "138,357,544" in out
    code, out, _ = run_cli(capsys, "summary", "vgg16", "--input", "3,224,224")
    assert code == 0 and "138,357,544" in out and "512×7×7" in out


def test_bench_reports_what_was_asked(capsys):
    args = ["bench", "train", "basenet", "--input", "1,28,28", "--batch-size", "8", "--steps", "3", "--warmup", "1",
            "--precision", "32", "--threads", "1"]
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {k: result[k] for k in ("arch", "batch_size", "input", "precision", "threads", "steps")} == {
        "arch": "basenet", "batch_size": 8, "input": [1, 28, 28], "precision": "32-true", "threads": 1, "steps": 3}
    assert result["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert result["seconds"] > 0 and result["images_per_second"] == pytest.approx(3 * 8 / result["seconds"], rel=0.01)
    # the key=value spelling is the same setting, reported as used; the text form says the same
    code, out, err = run_cli(capsys, "bench", "train", "basenet", "--input", "1,28,28", "--steps", "2", "--warmup", "0",
                             "data.batch_size=4", "trainer.precision=32")
    assert code == 0, err
    assert out.startswith("basenet: ") and " images/s  (batch 4, input 1×28×28, 32-true, " in out
    assert float(out.split(": ", 1)[1].split(" images/s")[0].replace(",", "")) > 0


def test_results_print_the_headline_numbers_first(capsys, monkeypatch, tmp_path):
    # classification_metrics puts the count first; the line leads with top-k, then other floats, the count last
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    result = classification_metrics(logits, torch.tensor([0, 1, 0, 2]), ["a", "b", "c"])
    assert list(result)[0] == "count"
    fake = types.ModuleType("lienzo.evaluate")
    fake.evaluate = lambda run, overrides, split, samples=None: (result, tmp_path / "e.json")
    monkeypatch.setitem(sys.modules, "lienzo.evaluate", fake)
    code, out, _ = run_cli(capsys, "evaluate", str(tmp_path))
    line = f"top-1 50.00%  top-5 100.00%  cross-entropy {result['cross_entropy']:.4f}  (4 images)"
    assert code == 0 and out == f"test: {line} -> {tmp_path / 'e.json'}\n"
    fake = types.ModuleType("lienzo.transfer.svm")
    fake.evaluate_svm = lambda model, features, split: (result, tmp_path / "s.json")
    monkeypatch.setitem(sys.modules, "lienzo.transfer.svm", fake)
    code, out, _ = run_cli(capsys, "svm", "evaluate", "m", "f.h5", "--split", "val")
    assert code == 0 and out == f"val: {line} -> {tmp_path / 's.json'}\n"
    # top-k by k, other floats and other integers each in the dict's order; seconds and nested values left out
    other = {"count": 7, "epochs": 3, "top5": 0.5, "fid": 12.25, "seconds": 9.0, "top10": 1.0, "top1": 0.25,
             "cross_entropy": 1.5, "per_class": {"a": {"top1": 1.0}}}
    assert format_results(other) == "top-1 25.00%  top-5 50.00%  top-10 100.00%  fid 12.25  cross-entropy 1.5000  " \
                                    "epochs 3  (7 images)"


def test_train_prints_each_lightning_line_once_and_no_tips(tmp_path):
    root = write_idx_dataset(tmp_path / "idx", n_train=30, n_test=9)
    repo = Path(__file__).resolve().parents[1]
    src = Path(lienzo.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "lienzo", "train", str(repo / "configs" / "fashion_basenet.yaml"), "data.name=idx",
         f"data.root={root}", "trainer.max_epochs=1", f"run.dir={tmp_path}", "run.name=r", "trainer.progress=false"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path))})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    said = [line.removeprefix("INFO: ") for line in lines]  # Lightning's own handler writes "INFO: " first
    assert [line for line in said if said.count(line) > 1] == [], done.stderr
    assert len([line for line in said if line.startswith("GPU available: ")]) == 1, done.stderr
    assert said.count("`Trainer.fit` stopped: `max_epochs=1` reached.") == 1, done.stderr
    assert not [line for line in said if "Tip" in line or "litlogger" in line], done.stderr
    assert lines == said  # Lightning's lines read like lienzo's
    assert len([line for line in lines if line.startswith("data idx: 27 train, 3 val, 9 test")]) == 1, done.stderr
