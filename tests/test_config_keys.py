"""Each task owns its config keys: classify's settings keep their names on classify runs; on a run of
another task they are one error that says what to use instead (from a file or a key=value override alike);
and every numeric key of every task has a range, checked in one place."""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest
import yaml

from lienzo.config import Config, field_rules, field_types
from lienzo.errors import ConfigError
from lienzo.tasks import config_from_dict, get_task, load_config

# classify's own keys, each with a value other than its default
CLASSIFY_KEYS = {
    "data.augment": "standard",
    "data.random_erasing": 0.25,
    "data.progressive_scale": 0.6,
    "data.progressive_fraction": 0.75,
    "data.normalize": False,
    "trainer.tta": True,
    "trainer.tta_shift": 1,
    "trainer.test_every_epoch": 3,
    "trainer.ema_decay": 0.99,
    "optim.label_smoothing": 0.1,
    "optim.lookahead_steps": 5,
    "optim.lookahead_alpha": 0.8,
    "finetune.unfreeze_after": 2,
    "finetune.groups": [{"pattern": "fc", "lr": 0.001, "freeze": False, "reinit": True}],
}
IMAGE_KEYS = {"data.classes": ["Bag", "Sandal"], "data.label_mode": "coarse", "data.image_size": [16, 16],
              "data.channels": 3}  # classify and generate (images read from lienzo.data.sources)


def nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def lookup(cfg, key: str):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return [dataclasses.asdict(v) for v in cfg] if isinstance(cfg, list) and cfg and dataclasses.is_dataclass(cfg[0]) \
        else cfg


def set_in(tmp_path, how: str, task: str, key: str, value):
    """A config of `task` with `key` set to `value`, in a YAML file or as a key=value override."""
    if how == "file":
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump({"task": task, **nested(key, value)}))
        return load_config(path)
    return load_config(None, [f"task={task}", f"{key}={json.dumps(value)}"])


@pytest.mark.parametrize("how", ["file", "override"])
@pytest.mark.parametrize("key", [*CLASSIFY_KEYS, *IMAGE_KEYS])
def test_classify_keys_keep_their_names(tmp_path, how, key):
    value = {**CLASSIFY_KEYS, **IMAGE_KEYS}[key]
    cfg = set_in(tmp_path, how, "classify", key, value)
    assert lookup(cfg, key) == value
    if key in CLASSIFY_KEYS:  # classify's alone: not a shared key any more
        with pytest.raises(AttributeError):
            lookup(Config(), key)


HINTED = {  # (task, key): what the error says to do instead
    ("generate", "trainer.ema_decay"): "a generate run averages its generator with gan.ema_decay",
    ("generate", "data.augment"): "a generate run trains on the images as they are",
    ("generate", "data.progressive_scale"): "a generate run trains its networks at one image size",
    ("generate", "trainer.test_every_epoch"): "gan.score_every",
    ("generate", "finetune.groups"): "a generate run trains its networks from scratch",
    ("caption", "trainer.tta"): "a caption run does not use it",
    ("caption", "data.augment"): "a caption run trains on cached features of the images as they are",
    ("caption", "data.image_size"): "caption.backbone",
    ("caption", "data.classes"): "captions, not classes, are a caption run's labels",
    ("caption", "finetune.unfreeze_after"): "a caption run fine-tunes every group from the start",
}
ON = {"data.normalize": True}  # normalize=false switches normalisation off: a value that does nothing elsewhere
REJECTED = [("generate", key) for key in CLASSIFY_KEYS] + \
           [("caption", key) for key in [*CLASSIFY_KEYS, *IMAGE_KEYS] if key != "finetune.groups"]


@pytest.mark.parametrize("how", ["file", "override"])
@pytest.mark.parametrize("task, key", REJECTED)
def test_other_tasks_reject_classify_keys_with_a_hint(tmp_path, how, task, key):
    value = {**CLASSIFY_KEYS, **IMAGE_KEYS, **ON}[key]
    with pytest.raises(ConfigError) as err:
        set_in(tmp_path, how, task, key, value)
    message = str(err.value)
    owners = {"finetune.groups": "classify and caption"}.get(key, "classify and generate" if key in IMAGE_KEYS else "classify")
    assert message.startswith(f"{key} is a {owners} setting; "), message
    hints = get_task(task).config_hints
    parents = [".".join(key.split(".")[:i]) for i in range(key.count(".") + 1, 0, -1)]
    expected = next((hints[k] for k in parents if k in hints), f"a {task} run does not use it")
    assert message == f"{key} is a {owners} setting; {expected}"
    assert HINTED.get((task, key), expected) in message


def test_hints_name_keys_that_exist():
    """A hint for a key no other task has would never show: every hinted key is some other task's."""
    for task in ("classify", "generate", "caption"):
        others = [config_from_dict({"task": other}) for other in ("classify", "generate", "caption") if other != task]
        for key in get_task(task).config_hints:
            assert any(_has(cfg, key) for cfg in others), f"{task}: hint for {key}, which no other task has"


def _has(cfg, key: str) -> bool:
    try:
        lookup(cfg, key)
        return True
    except AttributeError:
        return False


# What runs of generate and caption saved before each task owned its keys: every shared key, at values that do
# nothing. They still load (evaluate, resume, report), and the keys are dropped.
SAVED_BEFORE = {
    "data": {"augment": "none", "random_erasing": None, "progressive_scale": None, "progressive_fraction": 0.5,
             "normalize": False, "classes": None, "label_mode": "fine", "image_size": None, "channels": None},
    "optim": {"label_smoothing": 0.0, "lookahead_steps": 0, "lookahead_alpha": 0.5},
    "trainer": {"tta": False, "test_every_epoch": False, "tta_shift": 0, "ema_decay": None},
}


@pytest.mark.parametrize("task", ["generate", "caption"])
def test_runs_saved_with_the_shared_keys_still_load(task):
    values = {"task": task, **SAVED_BEFORE}
    if task == "caption":
        values["finetune"] = {"groups": None, "unfreeze_after": 0}
    cfg = config_from_dict(values)
    assert cfg.task == task
    assert not any(hasattr(cfg.trainer, k) for k in SAVED_BEFORE["trainer"])
    assert not hasattr(cfg.optim, "label_smoothing") and not hasattr(cfg.data, "augment")


@pytest.mark.parametrize("task, key, value, message", [
    ("classify", "gan.gp_weight", 5, "gan.gp_weight is a generate setting; a classify run trains no GAN"),
    ("classify", "caption.beam", 3, "caption.beam is a caption setting; a classify run trains no captioner"),
    ("classify", "model.z_dim", 64, "model.z_dim is a generate setting; a classify run's network is model.arch"),
    ("generate", "data.captions", "x.json", "data.captions is a caption setting; a generate run does not use it"),
    ("generate", "gan.gp_weigth", 5, "unknown config key 'gan.gp_weigth' (did you mean gan.gp_weight"),
    ("caption", "trainer.tta", False, None),  # off: nothing to reject
])
def test_keys_of_other_tasks(task, key, value, message):
    if message is None:
        config_from_dict({"task": task}, [f"{key}={json.dumps(value)}"])
        return
    with pytest.raises(ConfigError) as err:
        config_from_dict({"task": task}, [f"{key}={json.dumps(value)}"])
    assert message in str(err.value)


def test_a_section_of_another_task_is_rejected_even_at_its_defaults():
    # a whole `gan:` section on a classify run is a mistake, whatever it holds
    with pytest.raises(ConfigError, match="gan.ema_decay is a generate setting"):
        config_from_dict({"gan": {"ema_decay": None}})


# -- ranges: every numeric key of every task --------------------------------------------------------------

def numeric_keys(section, prefix: str = ""):
    """(key, section class, field name) of every int or float field, lists of them and list items' fields
    included, under `section`."""
    types = field_types(type(section))
    for f in dataclasses.fields(section):
        key, value, kind = f"{prefix}{f.name}", getattr(section, f.name), types[f.name]
        if dataclasses.is_dataclass(value):
            yield from numeric_keys(value, f"{key}.")
            continue
        args = set(typing.get_args(kind)) | {kind}
        items = {a for k in args for a in typing.get_args(k)} if any(typing.get_origin(k) is list for k in args) else set()
        item_classes = [a for a in items if dataclasses.is_dataclass(a)]
        if item_classes:
            yield from numeric_keys(item_classes[0](), f"{key}[0].")
        elif {int, float} & (args | items):
            yield key, type(section), f.name


TASK_KEYS = [(task, key, cls, name) for task in ("classify", "generate", "caption")
             for key, cls, name in numeric_keys(config_from_dict({"task": task}))]


def outside(rule, kind_is_int: bool):
    r = rule["range"]
    bad = (r.low if r.low_open else r.low - 1) if not math.isinf(r.low) else (r.high if r.high_open else r.high + 1)
    bad = int(bad) if kind_is_int else float(bad)
    return [bad] * (rule["lengths"][0] if rule["lengths"] else 1) if rule["lengths"] or rule.get("list") else bad


def nested_value(key: str, value):
    """{"finetune": {"groups": [{"lr": v}]}} for "finetune.groups[0].lr"."""
    head, _, rest = key.partition(".")
    if head.endswith("[0]"):
        return {head[:-3]: [nested_value(rest, value)]}
    return {head: nested_value(rest, value) if rest else value}


@pytest.mark.parametrize("task, key, cls, name", TASK_KEYS, ids=[f"{t}:{k}" for t, k, _, _ in TASK_KEYS])
def test_every_numeric_key_has_a_range_and_a_value_outside_it_is_an_error(task, key, cls, name):
    rule = field_rules(cls).get(name, {})
    assert "range" in rule, f"{key} ({cls.__name__}.{name}): declare its range with lienzo.config.bounded"
    kind = field_types(cls)[name]
    args = set(typing.get_args(kind)) | {kind}
    is_list = any(typing.get_origin(k) is list for k in args)
    numbers = {a for k in args for a in (typing.get_args(k) if typing.get_origin(k) is list else (k,))}
    bad = outside({**rule, "list": is_list}, float not in numbers)
    with pytest.raises(ConfigError) as err:
        config_from_dict({"task": task, **nested_value(key, bad)})
    message = str(err.value)
    assert message.startswith(f"{key}: ") and str(rule["range"]) in message and f"got {bad}" in message, message


def test_the_range_table_covers_the_keys_the_issue_names():
    keys = {(t, k) for t, k, _, _ in TASK_KEYS}
    assert {("generate", "gan.gp_weight"), ("generate", "gan.ema_decay"), ("caption", "caption.margin"),
            ("classify", "trainer.ema_decay"), ("classify", "finetune.groups[0].lr"), ("classify", "run.seed"),
            ("caption", "data.test_fraction"), ("generate", "model.maps")} <= keys
    assert len(TASK_KEYS) > 60
