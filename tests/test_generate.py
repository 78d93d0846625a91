"""The generate task (issue 10): losses and the gradient penalty against hand computations, the critic/
generator step schedule, the generator's moving average, exact resume, sample files and bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lienzo import load_config
from lienzo.cli import main
from lienzo.data.hdf5 import load_hdf5, write_hdf5
from lienzo.errors import ConfigError, DataError, ModelError, RunError
from lienzo.metrics.generative import INCEPTION_FILE, seeded_subset
from lienzo.models.registry import create_model
from lienzo.tasks import get_task
from lienzo.tasks.generate import check_generate_run, critic_loss, generator_loss, gradient_penalty
from lienzo.tasks.generate.sample import sample
from lienzo.tasks.generate.samples import checkerboard, mask_views
from lienzo.train import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write_h5(path: Path, channels: int, n_train: int = 48, n_test: int = 16, size: int = 8) -> Path:
    rng = np.random.default_rng(channels)
    for group, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)
        write_hdf5(path, images, np.zeros(n, dtype=np.int64), ["object"], group=group)
    return path


def _tiny(tmp: Path, h5: Path, name: str, *extra: str):
    """A generate config that trains in seconds: 8 px, 8 maps, 2 critic steps of 8 images."""
    return load_config(None, ["task=generate", "data.name=hdf5", f"data.root={h5}", "data.image_size=[8,8]",
                              "data.batch_size=8", "model.maps=8", "model.z_dim=16", "gan.critic_steps=2",
                              "gan.generator_batch=8", "gan.steps_per_epoch=3", "gan.grid=4", "gan.scorer=null",
                              "gan.ema_decay=0.9", "trainer.max_steps=6", "trainer.progress=false",
                              "trainer.precision=32", "trainer.accelerator=cpu", "trainer.threads=1", f"run.dir={tmp}", f"run.name={name}",
                              *extra])


@pytest.fixture(scope="module", autouse=True)
def _threads():
    """trainer.threads=1 below (two OpenMP threads on tiny convolutions crawl on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rgba_runs(tmp_path_factory):
    """A 6-step 4-channel run straight, and one cut off in the middle of its 4th generator step (after the
    first of its 2 critic steps; the checkpoint is the one of step 3), then resumed."""
    tmp = tmp_path_factory.mktemp("gan")
    h5 = _write_h5(tmp / "rgba.h5", 4)
    straight = train(_tiny(tmp, h5, "straight"))
    calls = []

    def cut(*args):
        calls.append(1)
        if len(calls) == 3 * 2 + 2:  # step 4's second critic step: its first one has changed the critic
            raise RuntimeError("power cut")
        return gradient_penalty(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lienzo.tasks.generate.module.gradient_penalty", cut)
        with pytest.raises(RuntimeError, match="power cut"):
            train(_tiny(tmp, h5, "cut"))
    cut_step = torch.load(tmp / "cut" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    resumed = train(resume=tmp / "cut")
    return SimpleNamespace(straight=straight, resumed=resumed, tmp=tmp, h5=h5, cut_step=cut_step)


# -- losses ------------------------------------------------------------------------------------------

class Linear(nn.Module):
    """D(x) = w·x: its gradient is w at every x, so the penalty is (‖w‖ − 1)² exactly."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(1)


@pytest.mark.parametrize("w, expected", [
    (torch.full((1, 2, 2), 1.0), (2.0 - 1.0) ** 2),       # ‖w‖ = 2
    (torch.tensor([[[0.3, 0.0], [0.4, 0.0]]]), 0.25),     # ‖w‖ = 0.5 → (0.5 − 1)²
])
def test_gradient_penalty_of_a_linear_critic(w, expected):
    torch.manual_seed(0)
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    eps = torch.rand(5, 1, 1, 1)
    critic = Linear(w.clone())
    penalty = gradient_penalty(critic, real, fake, eps)
    assert penalty.item() == pytest.approx(expected, rel=1e-6)
    penalty.backward()  # create_graph: the penalty trains the critic; d/dw (‖w‖−1)² = 2(‖w‖−1)·w/‖w‖
    norm = w.norm()
    assert torch.allclose(critic.w.grad, 2 * (norm - 1) * w / norm, atol=1e-6)


def test_loss_values_and_signs():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 3.0])
    # wgan-gp: E[D(fake)] − E[D(real)] = 1 − 1 = 0; the generator wants D(fake) up: −1
    assert critic_loss("wgan-gp", real, fake).item() == pytest.approx(0.0)
    assert critic_loss("wgan-gp", torch.tensor([3.0]), torch.tensor([-1.0])).item() == pytest.approx(-4.0)
    assert generator_loss("wgan-gp", fake).item() == pytest.approx(-1.0)
    # hinge: mean relu(1 − real) = (0 + 1)/2, mean relu(1 + fake) = (0 + 4)/2
    assert critic_loss("hinge", real, fake).item() == pytest.approx(0.5 + 2.0)
    assert generator_loss("hinge", fake).item() == pytest.approx(-1.0)
    # ns: softplus(−real) + softplus(fake); generator softplus(−fake)
    sp = lambda x: float(np.log1p(np.exp(x)))  # noqa: E731
    assert critic_loss("ns", real, fake).item() == pytest.approx((sp(-2) + sp(0)) / 2 + (sp(-1) + sp(3)) / 2, rel=1e-6)
    assert generator_loss("ns", fake).item() == pytest.approx((sp(1) + sp(-3)) / 2, rel=1e-6)
    # a critic that tells real from fake well has a lower loss than one that does not, for every kind
    good, bad = (torch.tensor([5.0]), torch.tensor([-5.0])), (torch.tensor([-5.0]), torch.tensor([5.0]))
    for kind in ("wgan-gp", "hinge", "ns"):
        assert critic_loss(kind, *good) < critic_loss(kind, *bad)
        assert generator_loss(kind, torch.tensor([5.0])) < generator_loss(kind, torch.tensor([-5.0]))


def test_bf16_gradient_penalty_agrees_with_fp32():
    torch.manual_seed(0)
    critic = create_model("wgan_resnet", channels=3, image_size=8, maps=8).critic
    with torch.no_grad():
        critic.fc.weight.mul_(20.0)  # gradients of norm ≈ a few, so (‖g‖ − 1)² is not near its floor of 0 or 1
    real, fake = torch.rand(6, 3, 8, 8) * 2 - 1, torch.rand(6, 3, 8, 8) * 2 - 1
    eps = torch.rand(6, 1, 1, 1)
    fp32 = gradient_penalty(critic, real, fake, eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = gradient_penalty(critic, real, fake, eps)
    assert bf16.dtype == torch.float32
    assert fp32.item() > 0.1
    assert bf16.item() == pytest.approx(fp32.item(), rel=5e-2)


# -- the step ----------------------------------------------------------------------------------------

def _module(*extra: str, shape=(3, 8, 8)):
    cfg = load_config(None, ["task=generate", "model.maps=8", "model.z_dim=16", "data.batch_size=4",
                             "gan.generator_batch=6", "gan.grid=4", *extra])
    return get_task("generate").build_module(cfg, {"input_shape": list(shape)})


def test_critic_steps_per_generator_step(monkeypatch):
    module = _module("gan.critic_steps=3")
    steps = {"critic": 0, "generator": 0}
    opt_g = torch.optim.SGD(module.generator.parameters(), lr=0.01)
    opt_c = torch.optim.SGD(module.critic.parameters(), lr=0.01)

    def counting(opt, name):
        step = opt.step

        def wrapped(*a, **k):
            steps[name] += 1
            return step(*a, **k)
        opt.step = wrapped
        return opt

    counting(opt_g, "generator"), counting(opt_c, "critic")
    monkeypatch.setattr(module, "optimizers", lambda: (opt_g, SimpleNamespace(optimizer=opt_c)))
    monkeypatch.setattr(module, "manual_backward", lambda loss: loss.backward())
    monkeypatch.setattr(module, "lr_schedulers", lambda: None)
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    batches = []
    module.critic.register_forward_hook(lambda m, inputs, out: batches.append(inputs[0].shape[0]))
    before_c = [p.detach().clone() for p in module.critic.parameters()]
    module.train()
    module.training_step(torch.rand(12, 3, 8, 8) * 2 - 1, 0)
    assert steps == {"critic": 3, "generator": 1}
    # per critic step: reals (4), fakes (4), interpolates (4); then the generator's batch (6)
    assert batches == [4, 4, 4] * 3 + [6]
    assert module._sums[4].item() == 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before_c, module.critic.parameters()))
    assert all(p.requires_grad for p in module.critic.parameters())


def test_ema_of_the_generator():
    module = _module("gan.ema_decay=0.75")
    old = {k: v.clone() for k, v in module.sampler.state_dict().items()}
    with torch.no_grad():
        for p in module.generator.parameters():
            p.add_(torch.randn_like(p))
        bn = module.generator.to_image.norm
        bn.running_mean.fill_(0.5), bn.num_batches_tracked.fill_(7)
    raw = dict(module.generator.state_dict())
    module.generator_ema.update_parameters(module.generator)
    ema = module.sampler.state_dict()
    for name in raw:  # weights and batch-norm statistics averaged, counters copied
        if raw[name].is_floating_point():
            assert torch.allclose(ema[name], 0.75 * old[name] + 0.25 * raw[name], atol=1e-6), name
        else:
            assert torch.equal(ema[name], raw[name]), name
    # running_mean started at 0: 0.75·0 + 0.25·0.5
    assert ema["to_image.norm.running_mean"].eq(0.125).all() and ema["to_image.norm.num_batches_tracked"] == 7
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    assert _module("gan.ema_decay=null").generator_ema is None


# -- training, resume, samples ------------------------------------------------------------------------

@pytest.mark.slow
def test_resume_is_the_uninterrupted_run(rgba_runs):
    ckpts = [torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
             for run in (rgba_runs.straight, rgba_runs.resumed)]
    assert rgba_runs.cut_step == 3 and rgba_runs.resumed == rgba_runs.tmp / "cut"
    assert [c["global_step"] for c in ckpts] == [6, 6]  # global_step counts generator steps
    a, b = (c["state_dict"] for c in ckpts)
    assert a.keys() == b.keys()
    assert any(k.startswith("generator_ema.") for k in a) and any(k.startswith("critic.") for k in a)
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key
    rows = []
    for run in (rgba_runs.straight, rgba_runs.resumed):
        with open(run / "history.csv") as f:
            rows.append(list(csv.DictReader(f)))
    assert [float(r["generator_steps"]) for r in rows[0]] == [3.0, 6.0]
    assert [float(r["generator_steps"]) for r in rows[1]] == [3.0, 6.0]
    for x, y in zip(*rows):
        for key in ("train_critic_loss", "train_wasserstein", "train_gp", "train_generator_loss"):
            assert float(x[key]) == pytest.approx(float(y[key]), abs=1e-5), key
    plots = rgba_runs.straight / "plots"
    for suffix in ("", "_mask", "_masked"):
        assert (plots / f"samples_step0000006{suffix}.png").is_file()


def _cut_short(path: Path) -> None:
    """The first half of a file's bytes, as a copy cut short leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.slow
def test_a_damaged_checkpoint_of_a_gan_is_one_line(rgba_runs, tmp_path, capsys):
    """A copy cut short: resume, sample and evaluate say which file and how to go on (tests/test_runs.py
    follows the ways on for a classify run)."""
    import shutil

    run = shutil.copytree(rgba_runs.straight, tmp_path / "gan")
    last, best, config = run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best.ckpt", run / "config.yaml"
    _cut_short(last)
    with pytest.raises(RunError) as raised:
        train(resume=run, overrides=["trainer.max_steps=9"])
    assert str(raised.value) == (f"{last}: not a readable checkpoint (cut short or damaged); {best} looks whole: "
                                 f"evaluate, predict and sample use it, and copied over last.ckpt it resumes the run "
                                 f"from its epoch (the later ones are lost); or train a fresh run from {config}")
    shutil.copy(rgba_runs.straight / "checkpoints" / "last.ckpt", last)
    _cut_short(best)
    expected = (f"lienzo: error: {best}: not a readable checkpoint (cut short or damaged); {last} looks whole: "
                f"copied over best.ckpt it serves evaluate, predict and sample (with the last epoch's weights, not "
                f"the best's); or train a fresh run from {config}")
    for verb in (["sample", str(run), "--n", "2", "--out", str(tmp_path / "g.png")], ["evaluate", str(run)]):
        assert main(verb) == 2
        assert capsys.readouterr().err.strip() == expected, verb
    assert not (tmp_path / "g.png").exists()


@pytest.mark.slow
def test_sample_files(rgba_runs):
    run, tmp = rgba_runs.straight, rgba_runs.tmp
    grid = sample(run, n=5, out=tmp / "g.png")
    assert grid == tmp / "g.png"
    for name in ("g.png", "g_mask.png", "g_masked.png"):
        image = Image.open(tmp / name)
        # 5 samples: 3 columns × 2 rows of 8 px with 2 px padding → 32 × 22
        assert image.mode == "RGB" and image.size == (2 + 3 * 10, 2 + 2 * 10), name
    folder = sample(run, n=5, out=tmp / "pngs")
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"sample_{i}.png" for i in range(5)]
    for f in files:
        image = Image.open(f)
        assert image.mode == "RGBA" and image.size == (8, 8)
    h5 = sample(run, n=5, out=tmp / "s.h5")
    arrays = load_hdf5(h5, "train")
    assert arrays.images.shape == (5, 4, 8, 8) and arrays.images.dtype == torch.uint8
    import h5py

    with h5py.File(h5) as f:
        assert f["images"].shape == (5, 8, 8, 4) and f["images"].dtype == np.uint8
    # the same seed gives the same samples; the PNGs are the HDF5 file's pixels
    again = load_hdf5(sample(run, n=5, out=tmp / "again.h5"), "train")
    assert torch.equal(again.images, arrays.images)
    other = load_hdf5(sample(run, n=5, seed=1, out=tmp / "other.h5"), "train")
    assert not torch.equal(other.images, arrays.images)
    first = torch.from_numpy(np.array(Image.open(files[0]))).permute(2, 0, 1)
    assert torch.equal(first, arrays.images[0])
    # existing outputs are refused
    for out in ("g.png", "s.h5", "pngs"):
        with pytest.raises(RunError, match="overwrite"):
            sample(run, n=5, out=tmp / out)
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp / "s.h5")]) == 2


def test_mask_views_of_one_pixel_images():
    images = torch.tensor([[200, 100, 40, 0], [200, 100, 40, 255]], dtype=torch.uint8).view(2, 4, 1, 1)
    rgb, transparent, masked = mask_views(images)
    assert rgb[:, :, 0, 0].tolist() == [[200, 100, 40]] * 2
    board = checkerboard(1, 1)[:, 0, 0].tolist()
    assert board == [230, 230, 230]
    assert transparent[:, :, 0, 0].tolist() == [board, [200, 100, 40]]  # alpha 0 → the board; 255 → the colour
    assert masked[:, :, 0, 0].tolist() == [[100, 50, 20], [200, 100, 40]]  # outside the mask at half value
    half = mask_views(torch.tensor([100, 50, 10, 51], dtype=torch.uint8).view(1, 4, 1, 1))
    # alpha 51/255 = 0.2: 100·0.2 + 230·0.8 = 204; masked 100·(0.5 + 0.1) = 60
    assert half[1][0, :, 0, 0].tolist() == [204, 194, 186] and half[2][0, :, 0, 0].tolist() == [60, 30, 6]
    assert checkerboard(8, 8)[0].unique().tolist() == [190, 230]
    assert checkerboard(8, 8)[0, 0, 0] == 230 and checkerboard(8, 8)[0, 0, 4] == 190


# -- bad inputs --------------------------------------------------------------------------------------

def test_bad_configs_name_the_key(tmp_path, capsys):
    with pytest.raises(ConfigError, match="gan.loss: 'foo'"):
        load_config(None, ["task=generate", "gan.loss=foo"])
    with pytest.raises(ConfigError, match="model.arch: basenet.*not a GAN"):
        load_config(None, ["task=generate", "model.arch=basenet"])
    with pytest.raises(ConfigError, match=r"gan.eval_samples \(5\) must be at least gan.is_splits \(10\)"):
        load_config(None, ["task=generate", "gan.scorer=inception", "gan.eval_samples=5"])
    load_config(None, ["task=generate", "gan.scorer=null", "gan.eval_samples=5"])  # no scorer: no splits
    with pytest.raises(ModelError, match="30×30"):
        _module(shape=(3, 30, 30))
    with pytest.raises(DataError, match="square"):
        _module(shape=(3, 8, 16))
    for overrides, key in ((["gan.loss=foo"], "gan.loss"), (["model.arch=basenet"], "model.arch")):
        assert main(["train", str(CONFIGS / "gan_fashion.yaml"), *overrides]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("lienzo: error:") and key in err


def test_channels_mismatch_is_a_data_error(tmp_path, capsys):
    rgb, rgba = _write_h5(tmp_path / "rgb.h5", 3), _write_h5(tmp_path / "rgba.h5", 4)
    with pytest.raises(DataError, match="data.channels=4.*3-channel"):
        train(_tiny(tmp_path, rgb, "a", "data.channels=4"))
    with pytest.raises(DataError, match="data.channels=3.*4-channel"):
        train(_tiny(tmp_path, rgba, "b", "data.channels=3"))
    cfg = CONFIGS / "gan_fashion.yaml"
    assert main(["train", str(cfg), "data.name=hdf5", f"data.root={rgb}", "data.channels=4", f"run.dir={tmp_path}",
                 "trainer.progress=false", "gan.scorer=null", "trainer.max_steps=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "data.channels=4" in err


def test_sample_needs_a_generate_run(tmp_path):
    loaded = SimpleNamespace(task="classify", path=tmp_path / "run" / "checkpoints" / "best.ckpt")
    with pytest.raises(RunError, match=r"needs a generate run, this is a classify run"):
        check_generate_run(loaded, "sampling")
    with pytest.raises(ConfigError, match="--out"):
        sample(tmp_path, n=2, out=tmp_path / "x.jpg")
    with pytest.raises(ConfigError, match="--n"):
        sample(tmp_path, n=0)


# -- the scorer, the data of a saved run, evaluate ------------------------------------------------------

@pytest.fixture(scope="module")
def scorer_run(tmp_path_factory):
    """A BaseNet classify run of one epoch on 60 tiny grey images: a domain scorer that works offline."""
    from tests.helpers import write_idx_dataset

    tmp = tmp_path_factory.mktemp("scorer")
    root = write_idx_dataset(tmp / "data", n_train=60, n_test=30)
    return train(load_config(CONFIGS / "fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=20", "trainer.max_epochs=1", "trainer.progress=false",
        "data.val_fraction=0", "trainer.threads=1", f"run.dir={tmp}", "run.name=cls"]))


@pytest.fixture(scope="module")
def every2_run(tmp_path_factory, scorer_run):
    """5 epochs of 2 generator steps, an FID check after epochs 2 and 4 (domain features of `scorer_run`)."""
    tmp = tmp_path_factory.mktemp("every2")
    h5 = _write_h5(tmp / "rgba.h5", 4)
    return train(_tiny(tmp, h5, "every2", f"gan.scorer={scorer_run}", "gan.score_every=2", "gan.score_samples=16",
                       "gan.eval_samples=16", "gan.is_splits=2", "gan.steps_per_epoch=2", "trainer.max_steps=10"))


def _cli_tiny(tmp: Path, h5: Path, name: str, *extra: str) -> list[str]:
    """`lienzo train` arguments of `_tiny`'s config."""
    return ["train", str(CONFIGS / "gan_fashion.yaml"), f"data.root={h5}", "data.image_size=[8,8]", "data.batch_size=8",
            "model.maps=8", "model.z_dim=16", "gan.critic_steps=2", "gan.generator_batch=8", "gan.steps_per_epoch=3",
            "gan.grid=4", "trainer.max_steps=6", "trainer.progress=false", "trainer.threads=1",
            "trainer.accelerator=cpu", f"run.dir={tmp / 'runs'}", f"run.name={name}", *extra]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lienzo: error:"), err
    return err


def test_the_scorer_is_checked_before_training(tmp_path, monkeypatch, capsys, scorer_run):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache: no Inception weights
    monkeypatch.chdir(tmp_path)
    h5 = _write_h5(tmp_path / "rgb.h5", 3)
    (tmp_path / "empty").mkdir()
    gan = tmp_path / "gan" / "checkpoints"
    gan.mkdir(parents=True)
    torch.save({"hyper_parameters": {"config": {"task": "generate"}}}, gan / "best.ckpt")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    cases = [("inception", f"gan.scorer=inception: Inception weights missing: put {INCEPTION_FILE} in {hub}"),
             (f"inception:{tmp_path / 'nope.pth'}", f"Inception weights file {tmp_path / 'nope.pth'} not found"),
             (str(tmp_path / "empty"), f"gan.scorer: {tmp_path / 'empty'}: no best.ckpt in"),
             (str(tmp_path / "gan"), "a generate run; a domain scorer needs a classify run"),
             ("runs/study_masks/scorer", ("gan.scorer: runs/study_masks/scorer is not a run folder: make it first "
                                          "(lienzo study masks)")),
             ("runs/fashion_fast", "make it first (lienzo train configs/fashion_fast.yaml)")]
    for scorer, message in cases:
        assert main(_cli_tiny(tmp_path, h5, "a", f"gan.scorer={scorer}")) == 2, scorer
        assert message in _one_line_error(capsys)
        assert not (tmp_path / "runs").exists()  # no run folder, not even an empty one
    # the same checks on --resume and in evaluate, before anything is trained or written
    run = train(_tiny(tmp_path / "runs", h5, "ok"))
    capsys.readouterr()
    config = (run / "config.yaml").read_bytes()
    files = sorted(run.rglob("*"))
    assert main(["train", "--resume", str(run), "gan.scorer=inception"]) == 2
    assert "gan.scorer=inception: Inception weights missing" in _one_line_error(capsys)
    assert main(["evaluate", str(run), f"gan.scorer={tmp_path / 'gan'}", "--n", "20"]) == 2
    assert "a generate run; a domain scorer needs a classify run" in _one_line_error(capsys)
    assert (run / "config.yaml").read_bytes() == config and sorted(run.rglob("*")) == files
    # what evaluate needs of a generate run: a scorer, the test split
    assert main(["evaluate", str(run), "--n", "20"]) == 2
    assert _one_line_error(capsys) == ("lienzo: error: gan.scorer: this run has no scorer; pass one: lienzo evaluate RUN "
                                       "gan.scorer=RUN (a lienzo classifier run) or gan.scorer=inception (with its "
                                       "weights file)")
    assert main(["evaluate", str(run), f"gan.scorer={scorer_run}", "--split", "val", "--n", "20"]) == 2
    assert "--split val: generate runs are scored against the test split" in _one_line_error(capsys)
    assert sorted(run.rglob("*")) == files


def test_resume_and_evaluate_refuse_data_of_another_shape(tmp_path, capsys, scorer_run):
    rgba, rgb = _write_h5(tmp_path / "rgba.h5", 4), _write_h5(tmp_path / "rgb.h5", 3)
    rgba16 = _write_h5(tmp_path / "rgba16.h5", 4, size=16)
    run = train(_tiny(tmp_path, rgba, "run"))
    capsys.readouterr()
    config, files = (run / "config.yaml").read_bytes(), sorted(run.rglob("*"))
    # resume on RGB images: one line naming both shapes, config.yaml as it was
    assert main(["train", "--resume", str(run), f"data.root={rgb}"]) == 2
    assert _one_line_error(capsys) == (f"lienzo: error: {rgb}: 3×8×8 images, but the run was trained on 4×8×8 "
                                       "images: give a file of 4-channel images")
    # networks that do not fit the checkpoint: found before config.yaml is rewritten
    assert main(["train", "--resume", str(run), "model.maps=16"]) == 2
    assert "checkpoint does not fit this run's networks" in _one_line_error(capsys)
    assert (run / "config.yaml").read_bytes() == config and sorted(run.rglob("*")) == files
    # evaluate on 16 px images of a run of 8 px ones
    assert main(["evaluate", str(run), f"data.root={rgba16}", "data.image_size=null", f"gan.scorer={scorer_run}",
                 "--n", "20"]) == 2
    assert _one_line_error(capsys) == (f"lienzo: error: {rgba16}: 4×16×16 images, but the run was trained on 4×8×8 "
                                       "images: set data.image_size=[8, 8]")
    assert not (run / "evaluations").exists()


def test_history_rows_hold_what_their_epoch_logged(every2_run):
    with open(every2_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["val_fid"] != "" for r in rows] == [False, True, False, True, False]
    assert [r["val_is"] != "" for r in rows] == [False, True, False, True, False]
    assert [float(r["generator_steps"]) for r in rows] == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert "w" not in rows[0]  # the progress bar's last-step Wasserstein estimate is not history
    metrics = json.loads((every2_run / "metrics.json").read_text())
    fids = {int(r["epoch"]): float(r["val_fid"]) for r in rows if r["val_fid"]}
    assert metrics["monitor"] == "val_fid" and metrics["best_epoch"] == min(fids, key=fids.get)


def test_fid_checks_during_training_compare_with_training_images():
    module = _module("gan.scorer=runs/x", "gan.score_samples=5", "gan.is_splits=5", "run.seed=7")
    train_images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 2, 2)
    test_images = torch.full((10, 3, 2, 2), 200, dtype=torch.uint8)
    splits = {"train": train_images, "test": test_images}
    module._trainer = SimpleNamespace(datamodule=SimpleNamespace(split_images=splits.get))
    module.setup("fit")
    scorer, reference = module._scoring
    assert scorer is None  # built at the first check, on the module's device
    picked = reference[:, 0, 0, 0].tolist()
    assert len(set(picked)) == 5 and picked == sorted(picked) and max(picked) < 40  # training images, no repeats
    assert picked != [0, 1, 2, 3, 4]  # not the first five
    assert torch.equal(reference, seeded_subset(train_images, 5, 7 + 3))


def test_generate_evaluations_have_the_metrics_envelope(every2_run, scorer_run):
    from lienzo.evaluate import evaluate

    result, path = evaluate(every2_run, samples=16)
    saved = json.loads(path.read_text())
    assert {k: saved[k] for k in ("task", "run", "split", "splits", "lienzo")} == {
        "task": "generate", "run": "every2", "split": "test", "splits": ["test"],
        "lienzo": __import__("lienzo").__version__}
    assert saved["created"].startswith("20") and saved["checkpoint"].endswith("best.ckpt")
    assert saved["main"] == {"split": "test", "metric": "fid", "mode": "min", "value": saved["test"]["fid"]}
    assert saved["test"]["samples"] == 16 and saved["test"]["fid"] == pytest.approx(result["fid"])
    assert result["task"] == "generate" and result["scorer"] == "domain:cls"
    # a classify run's evaluation: the same envelope, written by the same function
    _, cls_path = evaluate(scorer_run)
    cls_saved = json.loads(cls_path.read_text())
    assert set(cls_saved) - {"test"} == set(saved) - {"test"} and cls_saved["main"]["metric"] == "top1"


def test_the_fid_curve_is_labelled_for_what_it_compares(every2_run, monkeypatch):
    from lienzo.report import plots
    from lienzo.runs import read_history

    cfg = load_config(every2_run / "config.yaml")
    report = get_task("generate").report(every2_run, cfg, json.loads((every2_run / "metrics.json").read_text()), [])
    assert report.curve_labels == {"val_fid": "samples against training images", "val_is": "samples"}
    legends = {}

    def keep(fig, path):
        for ax in fig.axes:
            if ax.get_legend() is not None:  # the grid's spare panels have none
                legends[ax.get_title()] = [t.get_text() for t in ax.get_legend().get_texts()]
        return path

    monkeypatch.setattr(plots, "save_figure", keep)
    plots.plot_curves(read_history(every2_run / "history.csv"), every2_run / "x.png", report.curve_labels)
    assert legends["fid"] == ["samples against training images"] and legends["is"] == ["samples"]
    assert legends["wasserstein"] == ["training"]


def test_study_masks_runs_the_size_its_help_promises(monkeypatch, tmp_path, capsys):
    """`lienzo study masks` hands masks_study the settings its help names: the 2-core CPU size by default
    (1,200 generator steps of 32 maps, 5,000 samples scored), --full the paper's (64 px, 128 maps, 100k steps,
    50,000 samples), each flag over either; then prints the table and the folder. (The study itself runs in
    tests/test_masks_study.py's tiny study.)"""
    from dataclasses import replace

    from lienzo.tasks.generate import study

    calls = []

    def fake_study(out, settings, scorer=None, fashion_root=None, progress=True):
        calls.append({"out": out, "settings": settings, "scorer": scorer, "root": fashion_root, "progress": progress})
        return {"dir": str(out)}

    monkeypatch.setattr(study, "masks_study", fake_study)
    monkeypatch.setattr(study, "format_table", lambda result: "| the table |\n")
    assert main(["study", "masks", "--out", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().out == f"| the table |\n{tmp_path / 's'}\n"
    cpu = calls[-1]["settings"]
    assert (cpu.size, cpu.maps, cpu.steps, cpu.eval_samples, cpu.n_train, cpu.seed) == (32, 32, 1200, 5000, 20000, 0)
    assert cpu == study.MasksStudySettings()
    assert {k: calls[-1][k] for k in ("out", "scorer", "root", "progress")} == {
        "out": str(tmp_path / "s"), "scorer": None, "root": None, "progress": True}
    assert main(["study", "masks", "--full"]) == 0
    full = calls[-1]["settings"]
    assert (full.size, full.maps, full.steps, full.eval_samples, full.n_train) == (64, 128, 100_000, 50_000, 60_000)
    assert main(["study", "masks", "--full", "--steps", "7", "--maps", "4", "--eval-samples", "9", "--seed", "3",
                 "--scorer", "runs/x", "--data-root", "fm", "--no-progress"]) == 0
    assert calls[-1]["settings"] == replace(study.FULL_SETTINGS, steps=7, maps=4, eval_samples=9, seed=3)
    assert (calls[-1]["scorer"], calls[-1]["root"], calls[-1]["progress"]) == ("runs/x", "fm", False)


# -- end to end ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_gan_fashion_end_to_end(fashion_root, tmp_path):
    """The preset on Fashion-MNIST, 8 generator steps scored by a domain scorer (a BaseNet on 600 of its
    images, 5 epochs: about 50 % top-1): FID falls between the two checks of history.csv."""
    from lienzo.data.idx import FASHION_MNIST_CLASSES, load_idx_split, write_idx

    subset = tmp_path / "fashion600"
    subset.mkdir()
    for split, prefix, n in (("train", "train", 600), ("test", "t10k", 200)):
        arrays = load_idx_split(fashion_root, split, FASHION_MNIST_CLASSES)
        write_idx(subset / f"{prefix}-images-idx3-ubyte.gz", arrays.images[:n, 0].numpy())
        write_idx(subset / f"{prefix}-labels-idx1-ubyte.gz", arrays.labels[:n].numpy().astype(np.uint8))
    scorer = train(load_config(CONFIGS / "fashion_basenet.yaml", [
        "data.name=idx", f"data.root={subset}", "data.batch_size=50", "optim.lr=0.05", "trainer.max_epochs=5",
        "trainer.progress=false", "trainer.precision=32", "trainer.accelerator=cpu", "trainer.threads=1",
        f"run.dir={tmp_path}", "run.name=scorer"]))
    cfg = load_config(CONFIGS / "gan_fashion.yaml", [
        f"data.root={fashion_root}", "data.batch_size=16", "gan.generator_batch=16", "model.maps=8",
        "trainer.max_steps=8", "gan.steps_per_epoch=4", "gan.grid=16", "trainer.progress=false",
        # the raw generator at a constant rate: an average (or a rate decaying to 0) hides 8 steps of learning
        "gan.ema_decay=null", "optim.schedule=none",
        f"gan.scorer={scorer}", "gan.score_every=1", "gan.score_samples=200", "gan.eval_samples=200", "gan.is_splits=2",
        "trainer.precision=32", "trainer.accelerator=cpu", "trainer.threads=1", f"run.dir={tmp_path}", "run.name=gan"])
    run = train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "generate"
    assert set(metrics["networks"]) == {"generator", "critic"}
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"train_wasserstein", "generator_steps", "train_gp", "val_fid"} <= set(rows[0])
    assert [float(r["generator_steps"]) for r in rows] == [4.0, 8.0]
    # Measured here: FID 62.8 after 4 steps, 55.4 after 8 (this seed, 0). Seeds 0-11 fell by 2.3 to 20 points
    # but for seed 10 (59.7 → 61.6): 8 steps of a GAN are a noisy climb, so the bar is 2 points, not 7
    first, last = float(rows[0]["val_fid"]), float(rows[-1]["val_fid"])
    assert last < first - 2.0, (first, last)
    # and the final score, against the test split: real training images (the bound) 0.45, the samples 54.8
    assert metrics["test"]["samples"] == 200 and metrics["test"]["real_fid"] < 5 < metrics["test"]["fid"]
    grids = sorted(p.name for p in (run / "plots").glob("samples_step*.png"))
    assert grids == ["samples_step0000004.png", "samples_step0000008.png"]
    assert Image.open(run / "plots" / grids[-1]).size == (2 + 4 * 34, 2 + 4 * 34)  # 16 grey 32 px samples
    page = (run / "report.html").read_text()
    assert "Samples after 8 generator steps" in page and "samples_step0000008.png" in page
    assert "Samples over training" in page


@pytest.mark.browser
def test_generate_report_renders_in_chromium(rgba_runs, tmp_path):
    from tests.helpers import assert_page_renders

    page = rgba_runs.straight / "report.html"
    assert "Samples after 6 generator steps" in page.read_text()
    assert_page_renders(page, tmp_path)


@pytest.mark.slow
def test_a_gan_interrupted_under_an_earlier_lienzo_resumes(rgba_runs, tmp_path):
    """last.ckpt of format 2 (the generator's average a plain copy, `generator_ema.*`) resumes through its
    upgraded copy, to the same weights as a run of today's format resumed from the same step."""
    import shutil

    from lienzo import legacy

    today = shutil.copytree(rgba_runs.straight, tmp_path / "today")
    old = shutil.copytree(rgba_runs.straight, tmp_path / "old")
    path = old / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=False)
    checkpoint[legacy.FORMAT_KEY] = 2
    state = checkpoint["state_dict"]
    state.pop("generator_ema.n_averaged")
    checkpoint["state_dict"] = {k.replace("generator_ema.module.", "generator_ema."): v for k, v in state.items()}
    torch.save(checkpoint, path)
    for run in (today, old):
        train(resume=run, overrides=["trainer.max_steps=9"])
    a = torch.load(today / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(old / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if not k.endswith("n_averaged"))
    assert torch.load(path, weights_only=False)[legacy.FORMAT_KEY] == legacy.FORMAT  # written anew by today's code
    assert not (old / "checkpoints" / "last-upgraded.ckpt").exists()  # the upgraded copy served its purpose


def test_an_old_linear_schedule_cannot_resume_and_says_so():
    from lienzo import legacy

    cfg = load_config(None, ["task=generate", "optim.schedule=linear"])
    old = {"lr_schedulers": [{"last_epoch": 3, "base_lrs": [0.1], "lr_lambdas": [None]}]}
    assert "optim.schedule=linear" in legacy.resume_problem(old, cfg)
    assert legacy.resume_problem({"lr_schedulers": [{"_schedulers": []}]}, cfg) is None
    assert legacy.resume_problem(old, load_config(None, ["task=generate", "optim.schedule=none"])) is None
