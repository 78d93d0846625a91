"""The generate task's settings: the `gan` section, and the shared sections with the GAN's defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lienzo.config import ImageDataConfig, ModelConfig, OptimConfig, bounded, choice
from lienzo.errors import ConfigError
from lienzo.models.registry import list_models, model_kind

log = logging.getLogger("lienzo")

LOSSES = ("wgan-gp", "ns", "hinge")


# -- config ------------------------------------------------------------------------------------------

@dataclass
class GanDataConfig(ImageDataConfig):
    batch_size: int = 64  # real images per critic step (the thesis's critic batch)
    val_fraction: float = 0.0  # a GAN trains on the whole training split; the test split is the reference


@dataclass
class GanModelConfig(ModelConfig):
    arch: str = "wgan_resnet"  # a model of kind "gan" (`lienzo models`): wgan_resnet, dcgan
    maps: int = bounded(128, "[1, inf)")  # feature maps of the generator and critic (the paper's 128)
    z_dim: int = bounded(128, "[1, inf)")  # size of the noise vector
    spectral_norm: bool = False  # spectral norm on the critic's layers (for the ns and hinge losses)


@dataclass
class GanOptimConfig(OptimConfig):
    name: str = "adam"
    lr: float = 2e-4
    betas: list[float] | None = field(default_factory=lambda: [0.0, 0.9])
    schedule: str = "linear"  # both rates decay linearly to 0 over trainer.max_steps
    warmup_fraction: float = 0.0


@dataclass
class GanConfig:
    loss: str = choice("wgan-gp", LOSSES)  # wgan-gp (Wasserstein + gradient penalty), ns (non-saturating), hinge
    gp_weight: float = bounded(10.0, "[0, inf)")  # λ of the gradient penalty on random interpolates (wgan-gp)
    critic_steps: int = bounded(5, "[1, inf)")  # critic steps per generator step
    generator_batch: int = bounded(128, "[1, inf)")  # samples per generator step (the thesis's)
    ema_decay: float | None = bounded(0.999, "[0, 1)")  # moving average of the generator's weights for samples and
    # metrics; None = off
    steps_per_epoch: int = bounded(200, "[1, inf)")  # generator steps between history rows, checkpoints and grids
    grid: int = bounded(64, "[1, inf)")  # samples in the grids drawn from fixed noise after every epoch
    scorer: str | None = None  # feature network of IS/FID: "inception" (or "inception:FILE.pth"), or a lienzo
    # classifier run folder ("domain" IS/FID, offline); None = no metrics during or after training
    score_every: int = bounded(1, "[0, inf)")  # epochs between FID checks during training (val_fid in history.csv:
    # samples against training images; they choose best.ckpt, so the test split stays for the final evaluation);
    # 0 = never
    score_samples: int = bounded(1000, "[1, inf)")  # samples of each FID check during training, against as many
    # training images
    eval_samples: int = bounded(5000, "[1, inf)")  # samples scored after training (`lienzo evaluate RUN --n` for the
    # paper's 50,000)
    is_splits: int = bounded(10, "[1, inf)")  # Inception Score splits


SECTIONS = {"data": GanDataConfig, "model": GanModelConfig, "optim": GanOptimConfig, "gan": GanConfig}

# Keys of other tasks, set on a generate run: what to do instead (the rest: "a generate run does not use it").
_ONE_SIZE = "a generate run trains its networks at one image size (data.image_size)"
HINTS = {
    "trainer.ema_decay": "a generate run averages its generator with gan.ema_decay",
    "trainer.test_every_epoch": "a generate run checks FID during training every gan.score_every epochs",
    "trainer.tta": "a generate run is scored on samples (gan.scorer, gan.eval_samples)",
    "trainer.tta_shift": "a generate run is scored on samples (gan.scorer, gan.eval_samples)",
    "data.augment": "a generate run trains on the images as they are",
    "data.random_erasing": "a generate run trains on the images as they are",
    "data.progressive_scale": _ONE_SIZE,
    "data.progressive_fraction": _ONE_SIZE,
    "data.normalize": "a generate run scales its images to [-1, 1], the generator's tanh range",
    "optim.label_smoothing": "a generate run's losses are gan.loss",
    "finetune": "a generate run trains its networks from scratch (resume a run with --resume)",
    "caption": "a generate run trains no captioner (task: caption does)",
}


def validate(cfg) -> None:
    """The checks beyond each key's type, choices and range (lienzo.config checks those)."""
    g = cfg.gan
    for key in ("score_samples", "eval_samples"):
        if g.scorer and getattr(g, key) < g.is_splits:
            raise ConfigError(f"gan.{key} ({getattr(g, key)}) must be at least gan.is_splits ({g.is_splits})")
    if model_kind(cfg.model.arch) != "gan":
        raise ConfigError(f"model.arch: {cfg.model.arch} is a {model_kind(cfg.model.arch)}, not a GAN; "
                          f"the generate task takes {', '.join(list_models(kind='gan'))}")
    if cfg.model.pretrained:
        raise ConfigError("model.pretrained: the generate task trains from scratch (resume a run with --resume)")
    if cfg.trainer.precision == "16":
        raise ConfigError("trainer.precision=16: the gradient penalty's second derivatives need bf16 or 32")
