"""The CLI's conventions: fast start, --json, --out, validated values, one way per setting, exit codes,
--resume with overrides only, --threads on every verb that computes."""

import argparse
import csv
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import lienzo
from lienzo.cli import build_parser, main
from tests.helpers import write_idx_dataset

SRC = Path(lienzo.__file__).resolve().parents[1]


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("lienzo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def fake_module(monkeypatch, name: str, **functions) -> None:
    """Put a stand-in for lienzo.<module> where the CLI's `from .x import f` finds it."""
    module = types.ModuleType(name)
    module.__dict__.update(functions)
    monkeypatch.setitem(sys.modules, name, module)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:  # `from . import curate` looks at the package's attribute first
        monkeypatch.setattr(sys.modules[parent], child, module, raising=False)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})


# ---- 1. start-up --------------------------------------------------------------------------------------

def test_help_answers_without_torch():
    # What makes --help answer at once: no torch import (benchmarks/cli_startup.py measures the time).
    done = python("import sys\n"
                  "from lienzo.cli import main\n"
                  "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
                  "print(code, 'torch' in sys.modules)")
    assert "train" in done.stdout and done.stdout.split()[-2:] == ["0", "False"], done.stderr


def test_models_does_not_load_lightning():
    done = python("import sys\n"
                  "from lienzo.cli import main\n"
                  "code = main(['models', 'vgg16', '--json'])\n"
                  "loaded = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]\n"
                  "print(code, sorted(loaded))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"
    rows = json.loads("\n".join(done.stdout.splitlines()[:-1]))
    assert [(r["kind"], r["name"], r["params_224px_1000"]) for r in rows] == [("classifier", "vgg16", 138_357_544)]


def test_models_are_grouped_by_kind(capsys):
    code, out, _ = run_cli(capsys, "models", "vgg1*")
    assert code == 0 and out.splitlines()[0] == "classifiers:" and "138,357,544" in out
    code, _, err = run_cli(capsys, "models", "--kind", "poem")
    assert code == 2 and "unknown kind of model 'poem'" in one_error_line(err)


def test_tsne_into_run_is_a_flag(monkeypatch):
    calls = []
    fake_module(monkeypatch, "lienzo.transfer.tsne", tsne=lambda *args, **kw: calls.append((args, kw)) or "t.png")
    assert main(["tsne", "f.h5", "--into-run", "--max-points", "50"]) == 0
    assert calls == [(("f.h5", None, "train", 50), {"into_run": True})]


def test_import_lienzo_is_lazy_and_the_verbs_stay_functions():
    done = python("import sys, types\n"
                  "import lienzo\n"
                  "print('torch' in sys.modules)\n"
                  "from lienzo.train import build_task  # the submodules load...\n"
                  "import lienzo.evaluate\n"
                  "from lienzo import evaluate, train, ConfigError, load_config\n"
                  "verbs = (lienzo.train, lienzo.evaluate, train, evaluate)\n"
                  "print(all(isinstance(f, types.FunctionType) for f in verbs))\n"
                  "print(train.__module__, evaluate.__module__, ConfigError.__name__,\n"
                  "      sorted(lienzo.__all__) == lienzo.__all__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "lienzo.train", "lienzo.evaluate", "ConfigError", "True"]


# ---- 2. --json ----------------------------------------------------------------------------------------

def test_json_on_every_verb_that_prints_results(capsys, monkeypatch, tmp_path):
    result = {"top1": 0.85, "top5": 0.99, "cross_entropy": 0.4123, "count": 20, "per_class": {"a": {"top1": 1.0}}}
    fake_module(monkeypatch, "lienzo.evaluate", evaluate=lambda run, overrides, split, samples=None: (result, tmp_path / "e.json"))
    fake_module(monkeypatch, "lienzo.transfer.svm", evaluate_svm=lambda m, f, s: (result, tmp_path / "s.json"))
    code, out, _ = run_cli(capsys, "evaluate", str(tmp_path), "--json")
    assert code == 0 and json.loads(out) == {"split": "test", "path": str(tmp_path / "e.json"), "results": result}
    code, out, _ = run_cli(capsys, "evaluate", str(tmp_path))
    expected = f"test: top-1 85.00%  top-5 99.00%  cross-entropy 0.4123  (20 images) -> {tmp_path / 'e.json'}"
    assert out.strip() == expected
    code, out, _ = run_cli(capsys, "svm", "evaluate", "m", "f.h5", "--split", "val", "--json")
    assert code == 0 and json.loads(out)["results"] == result and json.loads(out)["split"] == "val"

    counts = {"cat": 3, "dog": 2}
    curate = types.SimpleNamespace(match=lambda *a, **k: counts, filter_scored=lambda *a, **k: counts,
                                   split=lambda *a, **k: counts, score=lambda *a: {"cat": {"count": 3, "top1": 1.0}})
    fake_module(monkeypatch, "lienzo.curate", **vars(curate))
    for verb in (["match", "src"], ["filter", "scores.csv"], ["split", "folder"]):
        code, out, _ = run_cli(capsys, "curate", *verb, "--out", str(tmp_path / "o"), "--json")
        assert code == 0 and json.loads(out) == {"counts": counts, "total": 5, "out": str(tmp_path / "o")}
    code, out, _ = run_cli(capsys, "curate", "score", "run", "folder", "--out", "s.csv", "--json")
    assert json.loads(out) == {"classes": {"cat": {"count": 3, "top1": 1.0}}, "out": "s.csv"}

    code, out, _ = run_cli(capsys, "summary", "basenet", "--input", "1,28,28", "--json")
    info = json.loads(out)
    model = lienzo.create_model("basenet", num_classes=10, in_chans=1, input_size=(28, 28))
    assert code == 0 and info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["parameters"] == sum(row["parameters"] for row in info["layers"])
    assert info["layers"][-1]["output"] == [10]


# ---- 3. one convention for flags ----------------------------------------------------------------------

def _parsers(parser: argparse.ArgumentParser, name="lienzo"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {verb}")


def test_every_positional_has_help_every_flag_is_lower_case_and_out_states_its_default():
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            if not action.option_strings:
                assert action.help, f"{name} {action.dest}: positional without help"
            assert all(o == o.lower() for o in action.option_strings), f"{name}: {action.option_strings}"
            if "--out" in action.option_strings:
                assert action.required or "default" in action.help, f"{name} --out: no stated default"


@pytest.mark.parametrize("args", [
    ["predict", "run", "x.png", "--top-k", "0"],
    ["bench", "train", "basenet", "--steps", "0"],
    ["bench", "train", "basenet", "--batch-size", "-4"],
    ["tsne", "f.h5", "--max-points", "0"],
    ["summary", "basenet", "--num-classes", "0"],
    ["curate", "score", "run", "folder", "--top-k", "0"],
    ["curate", "split", "folder", "--val", "1.5"],
    ["curate", "filter", "s.csv", "--min-prob", "2"],
    ["svm", "fit", "f.h5", "--folds", "1"],
    ["features", "extract", "vgg19", "--batch-size", "0"],
    ["study", "illustration", "--source-epochs", "0"],
])
def test_counts_and_fractions_are_validated(capsys, args):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and ("must be at least" in err or "expected a" in err), err


def test_svm_c_is_lower_case_and_the_old_spelling_still_works(capsys, monkeypatch, tmp_path):
    seen = []

    def fit_svm(features, out, **kw):
        seen.append(kw["C"])
        (tmp_path / "params.json").write_text(json.dumps({"best_params": {"C": 1}, "cv_score": 0.5, "folds": 3}))
        return tmp_path

    fake_module(monkeypatch, "lienzo.transfer.svm", fit_svm=fit_svm)
    assert main(["svm", "fit", "f.h5", "--c", "1,10"]) == 0
    assert main(["svm", "fit", "f.h5", "--C", "0.5", "--json"]) == 0
    assert seen == [[1.0, 10.0], [0.5]]
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["cv_score"] == 0.5
    assert "--C" not in dict(_parsers(build_parser()))["lienzo svm fit"].format_help()


def test_curate_outputs_are_out_with_defaults_beside_the_input(capsys, monkeypatch, tmp_path):
    outs = []
    fake_module(monkeypatch, "lienzo.curate", match=lambda src, vocab, out, **k: outs.append(out) or {},
                split=lambda folder, out, **k: outs.append(out) or {},
                filter_scored=lambda s, out, **k: outs.append(out) or {},
                score=lambda run, folder, out, top_k: outs.append(out) or {})
    main(["curate", "match", str(tmp_path / "downloads")])
    main(["curate", "split", str(tmp_path / "imgs") + "/"])
    main(["curate", "filter", str(tmp_path / "scores.csv")])
    main(["curate", "score", "run", str(tmp_path / "imgs")])
    main(["curate", "split", "imgs", str(tmp_path / "old.h5")])  # the old positional spelling
    assert outs == [tmp_path / "downloads_matched", tmp_path / "imgs_split", tmp_path / "scores_kept",
                    tmp_path / "imgs.scores.csv", tmp_path / "old.h5"]
    code, _, err = run_cli(capsys, "curate", "split", "imgs", "a.h5", "--out", "b.h5")
    assert code == 2 and "--out b.h5" in one_error_line(err)


# ---- 4. flags that are config keys --------------------------------------------------------------------

@pytest.mark.parametrize("args, named", [
    (["bench", "train", "basenet", "--batch-size", "8", "data.batch_size=16"],
     ("--batch-size 8", "data.batch_size=16")),
    (["bench", "train", "basenet", "--precision", "32", "trainer.precision=bf16"],
     ("--precision 32", "trainer.precision=bf16")),
    (["features", "extract", "vgg19", "--batch-size", "8", "data.batch_size=16"],
     ("--batch-size 8", "data.batch_size=16")),
    (["evaluate", "run", "--threads", "1", "trainer.threads=2"], ("--threads 1", "trainer.threads=2")),
])
def test_a_flag_and_a_conflicting_key_is_an_error_naming_both(capsys, monkeypatch, args, named):
    def must_not_run(*a, **k):
        raise AssertionError("ran despite the conflict")

    for name, function in [("lienzo.bench", "bench_train"), ("lienzo.transfer.features", "extract_features"),
                           ("lienzo.evaluate", "evaluate")]:
        fake_module(monkeypatch, name, **{function: must_not_run})
    code, _, err = run_cli(capsys, *args)
    line = one_error_line(err)
    assert code == 2 and all(text in line for text in named), line


# ---- 5. exit codes ------------------------------------------------------------------------------------

def test_some_unreadable_inputs_exit_3_and_the_rest_are_printed(capsys, monkeypatch):
    results = [{"path": "a.png", "predictions": [{"class": "cat", "probability": 0.9}]},
               {"path": "b.png", "error": "b.png: not an image"}]
    fake_module(monkeypatch, "lienzo.tasks.classify.predict", predict=lambda run, images, top_k: results)
    code, out, err = run_cli(capsys, "predict", "run", "a.png", "b.png")
    assert code == 3
    assert out.splitlines() == ["a.png: cat 90.0%", "b.png: error: b.png: not an image"]
    assert "1 of 2 images could not be read" in err
    fake_module(monkeypatch, "lienzo.tasks.classify.predict", predict=lambda run, images, top_k: results[:1])
    assert main(["predict", "run", "a.png"]) == 0


def test_predict_with_an_svm_folder_uses_the_svm(capsys, monkeypatch, tmp_path):
    # A folder holding svm.joblib is an SVM made by `lienzo svm fit`: its decision values print as scores.
    calls = []
    results = [{"path": "a.png", "predictions": [{"class": "cat", "score": 1.25}, {"class": "dog", "score": -0.5}]}]
    import lienzo.transfer.estimators as estimators

    monkeypatch.setattr(estimators, "predict_svm",
                        lambda run, images, top_k: calls.append((run, images, top_k)) or results)
    (tmp_path / "svm.joblib").write_bytes(b"")
    code, out, _ = run_cli(capsys, "predict", str(tmp_path), "a.png", "--top-k", "2")
    assert code == 0 and out.splitlines() == ["a.png: cat (+1.25), dog (-0.50)"]
    assert calls == [(str(tmp_path), ["a.png"], 2)]


def test_interrupted_is_one_line_and_130(capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    fake_module(monkeypatch, "lienzo.evaluate", evaluate=interrupted)
    code, out, err = run_cli(capsys, "evaluate", "run")
    assert code == 130 and err.strip() == "lienzo: interrupted" and out == ""


# ---- 6. train --resume --------------------------------------------------------------------------------

def test_resume_takes_key_value_overrides_but_no_config_file(capsys, monkeypatch, tmp_path):
    calls = []
    fake_module(monkeypatch, "lienzo.train",
                train=lambda cfg=None, resume=None, overrides=(): calls.append((resume, overrides)))
    extra = tmp_path / "extra.yaml"
    extra.write_text("optim:\n  lr: 0.5\n")
    code, _, err = run_cli(capsys, "train", "--resume", "runs/try", str(extra))
    assert code == 2 and "config files cannot be combined with --resume" in one_error_line(err)
    code, _, err = run_cli(capsys, "train", "--resume", "runs/try", "trainer.max_epochs=3", str(extra))
    assert code == 2 and str(extra) in one_error_line(err)
    assert calls == []
    assert main(["train", "--resume", "runs/try", "trainer.max_epochs=3", "optim.lr=0.1"]) == 0
    assert main(["train", "trainer.max_epochs=4", "--resume", "runs/try"]) == 0
    assert calls == [("runs/try", ["trainer.max_epochs=3", "optim.lr=0.1"]), ("runs/try", ["trainer.max_epochs=4"])]


def test_resume_with_an_override_trains_on(capsys, tmp_path):
    root = write_idx_dataset(tmp_path / "idx", n_train=30, n_test=9)
    base = ["data.name=idx", f"data.root={root}", f"run.dir={tmp_path}", "run.name=r",
            "trainer.progress=false", "trainer.max_epochs=1"]
    assert main(["train", "configs/fashion_basenet.yaml", *base]) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "trainer.max_epochs=2"]) == 0
    with open(tmp_path / "r" / "history.csv", newline="") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert len(epochs) == 2 and epochs[1] == epochs[0] + 1


# ---- 7. threads ---------------------------------------------------------------------------------------

RUN = "RUN"  # stands for a run folder that the test makes
THREADED = {  # verb -> (module, function the CLI calls, what that function returns, other ways to set threads)
    ("evaluate", RUN): ("lienzo.evaluate", "evaluate", ({"top1": 1.0}, "e.json"), ("key=value", "run config")),
    ("predict", RUN, "a.png"): ("lienzo.tasks.classify.predict", "predict", [], ("run config",)),
    ("features", "extract", "vgg19", "--out", "f.h5"): ("lienzo.transfer.features", "extract_features", "f.h5",
                                                        ("key=value", "--config")),
    ("svm", "fit", "f.h5"): ("lienzo.transfer.svm", "fit_svm", None, ()),
    ("svm", "evaluate", "m", "f.h5"): ("lienzo.transfer.svm", "evaluate_svm", ({"top1": 1.0}, "s.json"), ()),
    ("tsne", "f.h5"): ("lienzo.transfer.tsne", "tsne", "t.png", ()),
    ("curate", "score", RUN, "folder", "--out", "s.csv"): ("lienzo.curate", "score", {}, ("run config",)),
    ("bench", "train", "basenet"): ("lienzo.bench", "bench_train", {}, ("key=value",)),
    ("caption", "describe", RUN, "a.png"): ("lienzo.tasks.caption.use", "describe", [], ("run config",)),
    ("caption", "search", RUN, "a dog", "--images", "x"): ("lienzo.tasks.caption.use", "search", [], ("run config",)),
    ("caption", "annotate", RUN, "a.png", "--sentences", "s.txt"): ("lienzo.tasks.caption.use", "annotate", [], ("run config",)),
}


def _setting_threads(way: str, argv: list[str], threads: int, run: Path) -> list[str]:
    """The command line that asks for `threads` CPU threads in `way` (writing the file that way needs)."""
    config = f"trainer:\n  threads: {threads}\n"
    if way == "--threads":
        return [*argv, "--threads", str(threads)]
    if way == "key=value":
        return [*argv, f"trainer.threads={threads}"]
    if way == "run config":
        (run / "config.yaml").write_text(config)
        return argv
    assert way == "--config", way
    (run.parent / "features.yaml").write_text(config)
    return [*argv, "--config", str(run.parent / "features.yaml")]


@pytest.mark.parametrize("verb", list(THREADED), ids=lambda v: " ".join(v[:2]))
def test_threads_apply_to_every_verb_that_computes(capsys, monkeypatch, tmp_path, verb):
    module, function, returned, other_ways = THREADED[verb]
    run = tmp_path / "run"
    run.mkdir()
    argv = [str(run) if word == RUN else word for word in verb]
    seen = []
    (tmp_path / "params.json").write_text(json.dumps({"best_params": {}, "cv_score": 1.0, "folds": 2}))

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return tmp_path if returned is None else returned

    fake_module(monkeypatch, module, **{function: spy, "format_bench": lambda r: ""})
    before = torch.get_num_threads()
    ways = ("--threads", *other_ways)
    wanted = [before + 1 + i for i in range(len(ways))]  # a different count each way, so none passes by another's
    for way, threads in zip(ways, wanted):
        assert main(_setting_threads(way, argv, threads, run)) == 0, way
        (run / "config.yaml").unlink(missing_ok=True)
    assert main(argv) == 0
    assert seen == [*wanted, before] and torch.get_num_threads() == before


def test_threads_come_from_the_runs_config(monkeypatch, tmp_path):
    (tmp_path / "config.yaml").write_text("trainer:\n  threads: 1\n")
    seen = []
    fake_module(monkeypatch, "lienzo.evaluate",
                evaluate=lambda *a, **k: seen.append(torch.get_num_threads()) or ({}, "e"))
    before = torch.get_num_threads()
    assert main(["evaluate", str(tmp_path)]) == 0
    assert main(["evaluate", str(tmp_path), f"trainer.threads={before + 1}"]) == 0
    assert seen == [1, before + 1] and torch.get_num_threads() == before
