"""`lienzo sample`'s files and where a generate run is sampled and scored (issue 10 review): exact output
names and their `_mask`/`_masked` siblings, folders written whole or not at all, the evaluation device and
precision, the strip of grids over training, and `lienzo summary` with model.* settings."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from lienzo import load_config
from lienzo.cli import main
from lienzo.data.hdf5 import load_hdf5, write_hdf5
from lienzo.errors import ConfigError, RunError
from lienzo.evaluate import load_run
from lienzo.metrics import generative
from lienzo.models.registry import create_model
from lienzo.tasks.generate.sample import sample, sample_images
from lienzo.models.summary import summary
from lienzo.tasks.generate import samples as generate_samples
from lienzo.tasks.generate.samples import (check_out, draw_samples, evaluation_device, samples_strip, sampling_dtype,
                                           score_run, strip_positions)
from lienzo.train import train


@pytest.fixture(scope="module")
def rgba_run(tmp_path_factory) -> Path:
    """A 2-step 4-channel run of 8 px images, 8 maps (trains in about a second)."""
    tmp = tmp_path_factory.mktemp("sample_files")
    rng = np.random.default_rng(4)
    for group, n in (("train", 32), ("test", 16)):
        images = rng.integers(0, 256, size=(n, 8, 8, 4), dtype=np.uint8)
        write_hdf5(tmp / "rgba.h5", images, np.zeros(n, dtype=np.int64), ["object"], group=group)
    threads = torch.get_num_threads()
    run = train(_config(tmp, "task=generate", "data.name=hdf5", f"data.root={tmp / 'rgba.h5'}"))
    torch.set_num_threads(threads)
    return run


def _config(tmp: Path, *overrides: str):
    return load_config(None, [*overrides, "data.batch_size=8", "model.maps=8", "model.z_dim=16", "gan.critic_steps=1",
                              "gan.generator_batch=8", "gan.steps_per_epoch=2", "gan.grid=4", "gan.scorer=null",
                              "trainer.max_steps=2", "trainer.progress=false", "trainer.precision=32",
                              "trainer.accelerator=cpu", "trainer.threads=1", f"run.dir={tmp}", "run.name=rgba"])


# -- output names ----------------------------------------------------------------------------------------

def test_a_grid_keeps_the_name_asked_for(rgba_run, tmp_path, capsys):
    out = tmp_path / "out" / "grid.PNG"
    assert main(["sample", str(rgba_run), "--n", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(out) and Path(printed).is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.PNG", "grid_mask.PNG", "grid_masked.PNG"]
    # 3 samples: 2 columns × 2 rows of 8 px with 2 px padding → 22 × 22, in PNG whatever the suffix's case
    for path in out.parent.iterdir():
        image = Image.open(path)
        assert image.format == "PNG" and image.size == (22, 22), path.name


def test_an_existing_sibling_is_never_overwritten(rgba_run, tmp_path, capsys):
    (tmp_path / "g2_mask.png").write_bytes(b"mine")
    with pytest.raises(RunError, match="g2_mask.png exists"):
        sample(rgba_run, n=2, out=tmp_path / "g2.png")
    assert main(["sample", str(rgba_run), "--n", "2", "--out", str(tmp_path / "g2.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lienzo: error:") and "g2_mask.png exists" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g2_mask.png"]
    assert (tmp_path / "g2_mask.png").read_bytes() == b"mine"


def test_check_out_looks_at_the_files_of_the_channels(tmp_path):
    (tmp_path / "g_masked.png").touch()
    check_out(tmp_path / "g.png", 3)  # an RGB grid writes g.png alone
    with pytest.raises(RunError, match="g_masked.png exists"):
        check_out(tmp_path / "g.png", 4)
    (tmp_path / "s.H5").touch()
    with pytest.raises(RunError, match="s.H5 exists"):
        check_out(tmp_path / "s.H5", 4)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").touch()
    with pytest.raises(RunError, match="not empty"):
        check_out(tmp_path / "full", 4)
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty", 4)


def test_out_in_folders_not_there_yet_makes_them(rgba_run, tmp_path, capsys):
    """lienzo makes the folders an --out names (as runs, features and reports do): no FileNotFoundError."""
    out = tmp_path / "no" / "such" / "dir" / "grid.png"
    assert main(["sample", str(rgba_run), "--n", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.png", "grid_mask.png", "grid_masked.png"]
    h5, pngs = tmp_path / "a" / "b" / "s.h5", tmp_path / "c" / "d" / "pngs"
    assert sample(rgba_run, n=2, out=h5) == h5 and sample(rgba_run, n=2, out=pngs) == pngs
    channels, height, width = load_run(rgba_run).input_shape
    arrays = load_hdf5(h5, "train")
    assert tuple(arrays.images.shape) == (2, channels, height, width) and arrays.class_names == ["generated"]
    assert [(p.name, Image.open(p).mode, Image.open(p).size) for p in sorted(pngs.iterdir())] == [
        (f"sample_{i}.png", "RGBA", (width, height)) for i in range(2)]


def test_an_out_that_cannot_be_made_is_one_line(rgba_run, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    blocked = {blocker / "grid.png": f"cannot write {blocker / 'grid.png'}: {blocker} is a file, not a folder",
               blocker / "sub" / "s.h5": f"cannot write {blocker / 'sub' / 's.h5'}: {blocker} is a file, not a folder",
               blocker / "sub" / "pngs": f"cannot write {blocker / 'sub' / 'pngs'}: {blocker} is a file, not a folder",
               tmp_path / "notes": None}
    (tmp_path / "notes").write_text("mine too")  # no suffix: a folder is asked for where a file is
    blocked[tmp_path / "notes"] = f"{tmp_path / 'notes'} exists and is no folder"
    for out, message in blocked.items():
        assert main(["sample", str(rgba_run), "--n", "2", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("lienzo: error:") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "notes.txt"]
    assert blocker.read_text() == "mine" and (tmp_path / "notes").read_text() == "mine too"
    # a folder this process may not write in (as /no/such/dir for a user who is not root): os.access says no
    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(generate_samples.os, "access", lambda path, mode: Path(path) != tmp_path / "locked")
    with pytest.raises(RunError) as raised:
        sample(rgba_run, n=2, out=tmp_path / "locked" / "x" / "g.png")
    assert str(raised.value) == (f"cannot write {tmp_path / 'locked' / 'x' / 'g.png'}: no permission to create files "
                                 f"in {tmp_path / 'locked'} (choose another --out)")
    assert list((tmp_path / "locked").iterdir()) == []


# -- folders -------------------------------------------------------------------------------------------

def test_a_folder_is_written_whole(rgba_run, tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("new", "empty"):
        folder = sample(rgba_run, n=3, out=tmp_path / name)
        assert folder == tmp_path / name
        assert sorted(p.name for p in folder.iterdir()) == ["sample_0.png", "sample_1.png", "sample_2.png"]
        assert Image.open(folder / "sample_0.png").mode == "RGBA"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]  # no hidden partial folder left


def test_a_failed_folder_leaves_nothing(rgba_run, tmp_path, monkeypatch):
    saved = []
    original = Image.Image.save

    def save(image, path, *args, **kwargs):
        saved.append(Path(path).name)
        if len(saved) == 2:
            raise OSError("disk full")
        return original(image, path, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(RunError) as raised:  # one line, not a traceback
        sample(rgba_run, n=3, out=tmp_path / "pngs")
    assert str(raised.value) == f"cannot write {tmp_path / 'pngs'}: disk full"
    assert saved == ["sample_0.png", "sample_1.png"]
    assert list(tmp_path.iterdir()) == []  # neither pngs/ nor the hidden folder it was being filled in


# -- device and precision ---------------------------------------------------------------------------------

def test_the_evaluation_device_follows_the_accelerator(monkeypatch):
    cfg = load_config(None, ["task=generate"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert evaluation_device(cfg) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert evaluation_device(cfg) == torch.device("cuda")  # accelerator auto finds the GPU
    cfg.trainer.accelerator = "cpu"
    assert evaluation_device(cfg) == torch.device("cpu")
    cfg.trainer.accelerator = "gpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="trainer.accelerator: gpu"):
        evaluation_device(cfg)


def test_sampling_uses_the_runs_precision(rgba_run, monkeypatch):
    loaded = load_run(rgba_run)
    module, cfg, info = loaded.module, loaded.config, loaded.info
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for precision, expected in (("32", None), ("bf16", torch.bfloat16), ("auto", None)):  # auto: 8 maps is tiny
        cfg.trainer.precision = precision
        assert sampling_dtype(module, cfg, info, cpu) == expected, precision
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    cfg.trainer.precision = "auto"
    assert sampling_dtype(module, cfg, info, cuda) == torch.bfloat16  # a GPU trains in bf16 whatever the size


def test_samples_in_bf16_are_float32_and_close(rgba_run):
    module = load_run(rgba_run).module
    z = module.noise(6, seed=0, device="cpu")
    fp32, bf16 = draw_samples(module, z, None), draw_samples(module, z, torch.bfloat16)
    assert fp32.dtype == bf16.dtype == torch.float32 and fp32.shape == (6, 4, 8, 8)
    assert not torch.equal(fp32, bf16)  # autocast took effect
    assert torch.allclose(fp32, bf16, atol=0.05)


def test_cpu_samples_are_unchanged(rgba_run):
    """On the CPU in fp32 `lienzo sample` draws what the generator gives for the seed's noise."""
    module = load_run(rgba_run).module
    expected = module.sample(module.noise(5, seed=3, device="cpu"))
    images = sample_images(rgba_run, n=5, seed=3)
    assert images.device.type == "cpu" and torch.equal(images, expected)


class _Stop(Exception):
    pass


def test_score_run_moves_the_generator_and_the_scorer_to_the_gpu(monkeypatch):
    moved = []

    class Module:  # a loaded run's module as score_run sees it: where it is moved
        device = torch.device("cpu")

        def to(self, device):
            moved.append(device)
            self.device = device
            return self

    def make_scorer(spec, device):
        raise _Stop(spec, device)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(generate_samples, "sampling_dtype", lambda *args: torch.bfloat16)
    monkeypatch.setattr(generative, "make_scorer", make_scorer)
    cfg = load_config(None, ["task=generate", "gan.scorer=inception"])
    loaded = SimpleNamespace(module=Module(), info={"input_shape": [3, 32, 32]})
    with pytest.raises(_Stop) as stop:
        score_run(loaded, SimpleNamespace(setup=lambda stage: None), cfg)
    assert moved == [torch.device("cuda")] and stop.value.args == ("inception", torch.device("cuda"))


# -- samples over training -------------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "expected"), [(1, [0]), (2, [0, 1]), (4, [0, 1, 2, 3]), (6, [0, 1, 2, 3, 4, 5]),
                                                 (11, [0, 2, 4, 6, 8, 10]), (7, [0, 1, 2, 4, 5, 6])])
def test_strip_positions_keep_the_first_and_the_latest(count, expected):
    assert strip_positions(count, 6) == expected


@pytest.mark.parametrize("count", [2, 4])
def test_the_strip_shows_the_latest_grid(tmp_path, monkeypatch, count):
    for step in range(1, count + 1):
        Image.new("L", (4, 4)).save(tmp_path / f"samples_step{step:07d}.png")
        Image.new("L", (4, 4)).save(tmp_path / f"samples_step{step:07d}_mask.png")  # not a grid of its own
    opened = []
    original = generate_samples.Image.open
    monkeypatch.setattr(generate_samples.Image, "open", lambda path: opened.append(Path(path).stem) or original(path))
    assert samples_strip(tmp_path, tmp_path / "strip.png") == tmp_path / "strip.png"
    assert opened == [f"samples_step{step:07d}" for step in range(1, count + 1)]


# -- summary with model.* settings -------------------------------------------------------------------------

def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_summary_takes_model_settings():
    default = summary("wgan_resnet")
    small = summary("wgan_resnet", settings={"maps": 32})
    assert default["parameters"] == _parameters(create_model("wgan_resnet"))
    assert small["maps"] == 32 and small["settings"] == {"maps": 32}
    assert small["parameters"] == _parameters(create_model("wgan_resnet", maps=32)) != default["parameters"]
    # the generator's first layer maps z to 4×4×maps: 64 fewer noise inputs drop 64·4·4·32 weights
    short = summary("wgan_resnet", settings={"maps": 32, "z_dim": 64})
    assert short["z_dim"] == 64 and small["parameters"] - short["parameters"] == 64 * 4 * 4 * 32
    # a classifier's variant: ResNet-18's ImageNet stem is a 7×7 convolution, the small one 3×3 (3 → 64 maps)
    imagenet = summary("resnet18", (3, 32, 32), settings={"variant": "imagenet"})
    cifar = summary("resnet18", (3, 32, 32), settings={"variant": "small"})
    assert imagenet["parameters"] - cifar["parameters"] == 3 * 64 * (7 * 7 - 3 * 3)


def test_summary_settings_on_the_command_line(capsys):
    assert main(["summary", "wgan_resnet", "--input", "4,64,64", "model.maps=16", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input"] == [4, 64, 64] and info["maps"] == 16
    assert info["parameters"] == _parameters(create_model("wgan_resnet", channels=4, image_size=64, maps=16))
    for override, named in (("gan.loss=ns", "gan.loss=ns: only model.*"), ("model.mapz=3", "model.mapz"),
                            ("model.maps=many", "model.maps: expected an integer"), ("model.arch=dcgan", "model.arch")):
        assert main(["summary", "wgan_resnet", override]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("lienzo: error:") and named in err, err
