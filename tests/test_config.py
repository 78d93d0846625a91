import pytest

from lienzo.config import Config
from lienzo.tasks import config_from_dict, load_config  # the loaders users get (lienzo.load_config)
from lienzo.errors import ConfigError


def test_defaults_are_the_practice_settings():
    cfg = Config()
    assert (cfg.data.batch_size, cfg.data.val_fraction, cfg.optim.name, cfg.optim.lr) == (32, 0.1, "sgd", 0.01)
    assert cfg.run.dir == "runs"


def test_overrides_are_parsed_as_yaml_and_typed():
    cfg = config_from_dict({}, ["optim.lr=0.5", "trainer.max_epochs=3", "data.classes=[a, b]", "data.strict=true",
                                "optim.weight_decay=1", "data.image_size=32,48"])
    assert cfg.optim.lr == 0.5 and isinstance(cfg.optim.weight_decay, float) and cfg.optim.weight_decay == 1.0
    assert cfg.trainer.max_epochs == 3 and cfg.data.classes == ["a", "b"] and cfg.data.strict is True
    assert cfg.data.image_size == [32, 48]


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown config key 'optim.lrr' (did you mean optim.lr"),
    ("nope.x=1", "unknown config key 'nope'"),
    ("trainer.max_epochs=three", "trainer.max_epochs: expected an integer"),
    ("data.strict=maybe", "data.strict: expected true or false"),
    ("optim.schedule=exponential", "optim.schedule: 'exponential' is not one of"),
    ("data.val_fraction=1.5", "data.val_fraction: must be in [0, 1)"),
    ("optim.lr", "is not key=value"),
])
def test_bad_keys_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({}, [override])
    assert message in str(err.value)


def test_yaml_file_and_run_name(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  batch_size: 64\nmodel:\n  arch: lenet5\n")
    cfg = load_config(path, ["run.seed=3"])
    assert (cfg.data.batch_size, cfg.model.arch, cfg.run.seed, cfg.run.name) == (64, "lenet5", 3, "exp")
    path.write_text("data: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_every_preset_loads():
    from pathlib import Path

    presets = sorted(Path("configs").glob("*.yaml"))
    assert {p.stem for p in presets} >= {"fashion_basenet", "fashion_basenet_plus", "fashion_fast", "fashion_best",
                                          "mnist_cnn", "cifar100_basenet"}
    for path in presets:
        assert load_config(path).run.name == path.stem
