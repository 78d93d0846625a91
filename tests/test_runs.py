"""The run folder for every task: metrics.json envelope, history.csv columns, states, listing,
comparison, loggers, checkpoint choice, file modes."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import stat

import pytest
import torch

from lienzo.errors import ConfigError, ModelError, RunError
from lienzo.evaluate import evaluate, load_run, refresh_report
from lienzo.report.compare import compare_runs
from lienzo.runs import (RUNNING_FILE, atomic_write_text, checkpoint_path, history_columns, list_runs, read_metrics,
                         write_history, write_json)
from lienzo.train import learning_rates, train
from tests.helpers import tiny_classify_config, write_idx_dataset


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("data"), n_train=60, n_test=30)


_cfg = tiny_classify_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_root):
    runs = tmp_path_factory.mktemp("runs")
    return train(_cfg(data_root, runs, "a"))


def test_metrics_json_is_the_envelope_with_classify_fields(finished):
    metrics = json.loads((finished / "metrics.json").read_text())
    assert metrics["task"] == "classify" and metrics["run"] == "a"
    assert metrics["lienzo"] == __import__("lienzo").__version__
    assert metrics["created"].startswith("20") and "T" in metrics["created"]
    assert metrics["splits"] == ["val", "test"]
    for split in ("val", "test"):
        assert {"top1", "top5", "cross_entropy", "count", "per_class", "confusion"} <= set(metrics[split])
    assert metrics["test"]["count"] == 30 and sum(map(sum, metrics["test"]["confusion"])) == 30
    assert metrics["main"] == {"split": "test", "metric": "top1", "mode": "max", "value": metrics["test"]["top1"]}
    assert metrics["monitor"] == "val_loss"
    rows = list(csv.DictReader(open(finished / "history.csv")))
    assert metrics["best_epoch"] == int(min(rows, key=lambda r: float(r["val_loss"]))["epoch"])


def test_history_has_every_logged_key_in_order(finished):
    with open(finished / "history.csv") as f:
        header = next(csv.reader(f))
    assert header == ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "lr", "seconds"]
    rows = [{"epoch": 1, "val_x": 1.0, "train_x": 2.0, "gp": 3.0, "lr-adam0": 0.1, "seconds": 1.0},
            {"epoch": 2, "new": 5.0, "seconds": 2.0}]
    assert history_columns(rows) == ["epoch", "train_x", "val_x", "gp", "new", "lr-adam0", "seconds"]
    write_history(finished.parent / "h.csv", rows)
    back = list(csv.DictReader(open(finished.parent / "h.csv")))
    assert back[1]["new"] == "5" and back[1]["gp"] == "" and back[0]["new"] == ""


def test_learning_rate_of_every_optimizer_and_group():
    p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    one = torch.optim.SGD([{"params": [p[0]], "lr": 0.1}], lr=0.1)
    assert learning_rates([one]) == {"lr": 0.1}
    groups = torch.optim.SGD([{"params": [p[0]], "lr": 0.1, "name": "head"}, {"params": [p[1]], "lr": 0.01}], lr=0.5)
    assert learning_rates([groups]) == {"lr": 0.1, "lr-head": 0.1, "lr-1": 0.01}
    two = [torch.optim.Adam([p[1]], lr=2e-4), torch.optim.Adam([p[2]], lr=1e-4)]
    assert learning_rates(two) == {"lr-adam0": 2e-4, "lr-adam1": 1e-4}


def test_old_metrics_json_still_loads_evaluates_and_reports(finished, tmp_path):
    old = shutil.copytree(finished, tmp_path / "old")
    metrics = json.loads((old / "metrics.json").read_text())
    for key in ("task", "lienzo", "created", "run", "splits", "main", "monitor"):
        metrics.pop(key)
    write_json(old / "metrics.json", metrics)
    upgraded = read_metrics(old / "metrics.json")
    assert upgraded["task"] == "classify" and upgraded["splits"] == ["val", "test"]
    assert upgraded["main"]["value"] == metrics["test"]["top1"]
    # a checkpoint from before `info`: class names etc. at the top of hyper_parameters
    ckpt = torch.load(old / "checkpoints" / "best.ckpt", weights_only=False)
    info = ckpt["hyper_parameters"].pop("info")
    ckpt["hyper_parameters"].update(info)
    ckpt.pop("lienzo_format")  # written before checkpoints said their format
    torch.save(ckpt, old / "checkpoints" / "best.ckpt")
    loaded = load_run(old)
    assert loaded.class_names == info["class_names"] and loaded.input_shape == tuple(info["input_shape"])
    result, _ = evaluate(old)
    assert result["top1"] == pytest.approx(metrics["test"]["top1"])
    page = refresh_report(old).read_text()
    assert "test top-1" in page and "Confusion matrix" in page


def test_checkpoint_path_never_swaps_silently(finished, tmp_path, caplog):
    run = shutil.copytree(finished, tmp_path / "r")
    (run / "checkpoints" / "best.ckpt").unlink()
    with caplog.at_level(logging.WARNING, logger="lienzo"):
        assert checkpoint_path(run, "best").name == "last.ckpt"
    assert "no best.ckpt; using last.ckpt" in caplog.text
    shutil.copy(finished / "checkpoints" / "best.ckpt", run / "checkpoints" / "best.ckpt")
    (run / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(RunError, match="no last.ckpt"):  # resuming from best would silently lose epochs
        checkpoint_path(run, "last")


def cut_short(path):
    """The first half of a file's bytes, as a copy cut short leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_checkpoint_is_one_line_that_says_how_to_go_on(finished, tmp_path, capsys):
    from lienzo.cli import main

    run = shutil.copytree(finished, tmp_path / "cut")
    last, best, config = run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best.ckpt", run / "config.yaml"
    config_before = config.read_text()
    cut_short(last)
    resume_error = (f"{last}: not a readable checkpoint (cut short or damaged); {best} looks whole: evaluate, predict "
                    f"and sample use it, and copied over last.ckpt it resumes the run from its epoch (the later ones "
                    f"are lost); or train a fresh run from {config}")
    with pytest.raises(RunError) as raised:
        train(resume=run, overrides=["trainer.max_epochs=3"])
    assert str(raised.value) == resume_error
    assert main(["train", "--resume", str(run), "trainer.max_epochs=3"]) == 2
    assert capsys.readouterr().err.strip() == f"lienzo: error: {resume_error}"
    assert config.read_text() == config_before and not (run / RUNNING_FILE).exists()  # the run as it was
    # both cut: only a fresh run is left
    shutil.copy(best, tmp_path / "best.ckpt")
    cut_short(best)
    with pytest.raises(RunError) as raised:
        evaluate(run)
    assert str(raised.value) == (f"{best}: not a readable checkpoint (cut short or damaged); train a fresh run "
                                 f"from {config}")
    # best cut, last whole: evaluate and predict say to use last.ckpt
    shutil.copy(finished / "checkpoints" / "last.ckpt", last)
    best_error = (f"{best}: not a readable checkpoint (cut short or damaged); {last} looks whole: copied over "
                  f"best.ckpt it serves evaluate, predict and sample (with the last epoch's weights, not the best's); "
                  f"or train a fresh run from {config}")
    for verb in (["evaluate", str(run)], ["predict", str(run), str(tmp_path / "x.png")]):
        assert main(verb) == 2
        assert capsys.readouterr().err.strip() == f"lienzo: error: {best_error}", verb
    # and the ways on that the lines name work: last.ckpt over a cut best.ckpt evaluates; a whole best.ckpt
    # over last.ckpt resumes
    shutil.copy(last, best)
    assert evaluate(run)[0]["count"] == 30
    shutil.copy(tmp_path / "best.ckpt", last)
    assert train(resume=run, overrides=["trainer.max_epochs=3"]) == run
    assert read_metrics(run / "metrics.json")["epochs"] == 3


def test_without_validation_the_monitor_is_said_and_used(data_root, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lienzo"):
        run = train(_cfg(data_root, tmp_path, "noval", "data.val_fraction=0", "trainer.monitor=val_top1"))
    assert "best.ckpt and early stopping watch train_loss, not trainer.monitor=val_top1" in caplog.text
    metrics = read_metrics(run / "metrics.json")
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert metrics["monitor"] == "train_loss"
    assert metrics["best_epoch"] == int(min(rows, key=lambda r: float(r["train_loss"]))["epoch"])


def test_resume_with_a_checkpoint_of_another_architecture_names_the_keys(finished, tmp_path):
    run = shutil.copytree(finished, tmp_path / "other")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt["state_dict"] = {k.replace("model.", "model.extra.", 1): v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    with pytest.raises(ModelError, match=r"missing \(first: model\..*unexpected \(first: model\.extra\."):
        train(resume=run, overrides=["trainer.max_epochs=3"])


def test_runs_lists_states_and_sorts(finished, tmp_path):
    base = tmp_path / "runs"
    shutil.copytree(finished, base / "done")
    killed = shutil.copytree(finished, base / "killed")
    (killed / "metrics.json").unlink()
    atomic_write_text(killed / RUNNING_FILE, json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    alive = shutil.copytree(killed, base / "alive")
    atomic_write_text(alive / RUNNING_FILE, json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    (base / "not-a-run").mkdir()
    runs = {r["name"]: r for r in list_runs(base)}
    assert set(runs) == {"done", "killed", "alive"}
    assert (runs["done"]["state"], runs["killed"]["state"], runs["alive"]["state"]) == ("finished", "interrupted", "running")
    done = runs["done"]
    assert (done["task"], done["arch"], done["data"], done["epochs"], done["max_epochs"]) == ("classify", "basenet", "fashion_mnist", 2, 2)
    assert done["metric"] == "test top1" and done["main"] == read_metrics(finished / "metrics.json")["test"]["top1"]
    assert runs["killed"]["main"] is None
    assert runs["done"]["created"] == (finished / ".created").read_text() and runs["done"]["created"].endswith("+00:00")
    # sort=main follows each metric's direction: best first, runs without a value last
    for name, metric, value, mode in (("worse", "top1", 0.2, "max"), ("better", "top1", 0.9, "max"),
                                      ("lowloss", "mse", 0.1, "min"), ("highloss", "mse", 0.5, "min")):
        other = shutil.copytree(finished, base / name)
        metrics = json.loads((other / "metrics.json").read_text())
        metrics["main"].update(metric=metric, value=value, mode=mode)
        write_json(other / "metrics.json", metrics)
    ranked = [r["name"] for r in list_runs(base, sort="main")]
    assert ranked.index("better") < ranked.index("worse") and ranked.index("lowloss") < ranked.index("highloss")
    assert set(ranked[-2:]) == {"killed", "alive"}
    assert [r["name"] for r in list_runs(base, sort="name")] == ["alive", "better", "done", "highloss", "killed", "lowloss", "worse"]
    with pytest.raises(RunError, match="cannot sort runs by 'size'"):
        list_runs(base, sort="size")


def test_compare_page_has_table_and_inline_curves(finished, data_root, tmp_path):
    other = train(_cfg(data_root, tmp_path, "b", "optim.lr=0.01"))
    page = compare_runs([finished, other], tmp_path / "compare.html").read_text()
    assert page.count("<tr>") == 3 and ">a<" in page and ">b<" in page
    assert "data:image/png;base64," in page and "http" not in page.split("<body>")[1]
    with pytest.raises(RunError, match="at least two"):
        compare_runs([finished], tmp_path / "x.html")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    # in a fresh process, as a user's shell would start it (the mode is read from the umask at import)
    import subprocess
    import sys

    code = (f"import os; os.umask({umask}); from lienzo.runs import atomic_write_text; "
            f"atomic_write_text({str(tmp_path / 'f.txt')!r}, 'x')")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(data_root, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lienzo"), pytest.raises(ConfigError) as raised:
        train(_cfg(data_root, tmp_path, "bad", "trainer.precision=16", "trainer.accelerator=cpu"))
    assert str(raised.value) == "trainer.precision: 16 (fp16 autocast) needs a GPU; use bf16 or 32 on the CPU"
    assert not (tmp_path / "bad").exists() and "stopped before its first checkpoint" in caplog.text
    assert list_runs(tmp_path) == []


def test_a_resumed_finished_run_is_running_while_it_trains(finished, tmp_path):
    run = shutil.copytree(finished, tmp_path / "again")
    atomic_write_text(run / RUNNING_FILE, json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    assert list_runs(tmp_path)[0]["state"] == "running"


@pytest.mark.parametrize("kind", ["tensorboard", "mlflow"])
def test_loggers_write_beside_the_run(kind, data_root, tmp_path):
    run = train(_cfg(data_root, tmp_path / "runs", kind, f"trainer.logger={kind}"))
    if kind == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        assert {"train_loss", "val_loss", "val_top1"} <= tags
        assert len(events.Scalars("val_loss")) == 2
        history = list(csv.DictReader(open(run / "history.csv")))
        assert events.Scalars("val_loss")[-1].value == pytest.approx(float(history[-1]["val_loss"]), rel=1e-4)
    else:
        store = tmp_path / "runs" / "mlruns"
        metric_files = list(store.rglob("metrics/val_loss"))
        assert len(metric_files) == 1
        assert len(metric_files[0].read_text().splitlines()) == 2
    assert (run / "metrics.json").is_file()


def test_runs_cli_lists_and_compares(finished, tmp_path, capsys):
    from lienzo.cli import main

    base = tmp_path / "runs"
    shutil.copytree(finished, base / "one")
    shutil.copytree(finished, base / "two")
    assert main(["runs", str(base), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed] == ["one", "two"] and listed[0]["state"] == "finished"
    assert main(["runs", str(base), "--sort", "name"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["run", "task", "arch"] and lines[1].split()[:2] == ["one", "classify"]
    assert lines[1].split()[-1] == "finished" and lines[1].split()[4] == "2/2"
    out = tmp_path / "cmp.html"
    assert main(["runs", "compare", str(base / "one"), str(base / "two"), "--out", str(out)]) == 0
    assert out.is_file() and str(out.resolve()) in capsys.readouterr().out
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "folder not found" in capsys.readouterr().err


def test_the_run_says_how_long_it_will_take_from_a_measured_warm_up(data_root, tmp_path, caplog):
    import re

    with caplog.at_level(logging.INFO, logger="lienzo"):
        train(_cfg(data_root, tmp_path, "eta", "data.batch_size=2", "trainer.max_epochs=3"))
    warm = re.search(r"about (\d+) s of training to go \(([\d.]+) ms a step over (\d+) steps", caplog.text)
    assert warm, caplog.text
    steps_left = 3 * 27 - 25  # 60 images less 10 % validation at batch 2: 27 steps an epoch; 25 were taken
    assert int(warm.group(3)) == steps_left
    assert abs(float(warm.group(2)) * steps_left / 1000 - int(warm.group(1))) <= 1
    assert re.search(r"epoch 1 took \d+ s with validation: about \d+ s to go", caplog.text)


def test_compare_keeps_the_line_of_a_run_without_validation(monkeypatch):
    """One run logged val_loss, the other only train_loss: the loss panel holds a line for each."""
    from lienzo.report import compare

    drawn = []
    monkeypatch.setattr(compare, "_png_data", lambda fig: drawn.append(fig) or "png")
    histories = {"a": [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2}, {"epoch": 2, "train_loss": 0.8, "val_loss": 1.0}],
                 "b": [{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.7}]}
    assert compare.compare_figure(histories) == "png"
    ax = drawn[0].axes[0]
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines == {"a": [1.2, 1.0], "b (train_loss)": [0.9, 0.7]}


def test_evaluate_takes_a_checkpoint_file_and_writes_beside_its_run(finished, tmp_path):
    run = shutil.copytree(finished, tmp_path / "r")
    # last.ckpt with a zeroed head (every class equally likely): its figures show which weights were evaluated
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    for name in ("model.head.weight", "model.head.bias"):
        checkpoint["state_dict"][name].zero_()
    torch.save(checkpoint, last)
    classes = len(checkpoint["hyper_parameters"]["info"]["class_names"])
    result, path = evaluate(last)
    assert path.parent == run / "evaluations" and result["checkpoint"].endswith("last.ckpt")
    assert result["count"] == 30 and result["cross_entropy"] == pytest.approx(math.log(classes), abs=1e-4)
    # best.ckpt given as a file: the test split as metrics.json recorded it after training
    best_result, _ = evaluate(run / "checkpoints" / "best.ckpt")
    recorded = json.loads((run / "metrics.json").read_text())["test"]
    assert (best_result["top1"], best_result["cross_entropy"]) == pytest.approx(
        (recorded["top1"], recorded["cross_entropy"]), abs=1e-6)


def test_evaluate_rejects_overrides_that_would_change_nothing(finished):
    """finetune.* shaped the training; on a trained classify run it is one error, not a silent no-op."""
    with pytest.raises(RunError) as raised:
        evaluate(finished, ["finetune.unfreeze_after=3"])
    assert str(raised.value) == "evaluate cannot change 'finetune.unfreeze_after' of a trained classify run"
    with pytest.raises(RunError) as raised:
        evaluate(finished, ["optim.lr=0.1"])
    assert str(raised.value) == "evaluate takes only data.*, trainer.* overrides, not 'optim.lr=0.1'"
