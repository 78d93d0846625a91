"""The generate task's settings: the `gan` section, and the shared sections with the GAN's defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lienzo.config import DataConfig, ModelConfig, OptimConfig
from lienzo.errors import ConfigError
from lienzo.models.registry import list_models, model_kind

log = logging.getLogger("lienzo")

LOSSES = ("wgan-gp", "ns", "hinge")


# -- config ------------------------------------------------------------------------------------------

@dataclass
class GanDataConfig(DataConfig):
    batch_size: int = 64  # real images per critic step (the thesis's critic batch)
    val_fraction: float = 0.0  # a GAN trains on the whole training split; the test split is the reference
    normalize: bool = False  # images are scaled to [-1, 1], the generator's tanh range


@dataclass
class GanModelConfig(ModelConfig):
    arch: str = "wgan_resnet"  # a model of kind "gan" (`lienzo models`): wgan_resnet, dcgan
    maps: int = 128  # feature maps of the generator and critic (the paper's 128)
    z_dim: int = 128  # size of the noise vector
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
    loss: str = "wgan-gp"  # wgan-gp (Wasserstein + gradient penalty), ns (non-saturating), hinge
    gp_weight: float = 10.0  # λ of the gradient penalty on random interpolates (wgan-gp)
    critic_steps: int = 5  # critic steps per generator step
    generator_batch: int = 128  # samples per generator step (the thesis's)
    ema_decay: float | None = 0.999  # moving average of the generator's weights for samples and metrics; None = off
    steps_per_epoch: int = 200  # generator steps between history rows, checkpoints and sample grids
    grid: int = 64  # samples in the grids drawn from fixed noise after every epoch
    scorer: str | None = None  # feature network of IS/FID: "inception" (or "inception:FILE.pth"), or a lienzo
    # classifier run folder ("domain" IS/FID, offline); None = no metrics during or after training
    score_every: int = 1  # epochs between FID checks during training (val_fid in history.csv: samples against
    # training images; they choose best.ckpt, so the test split stays for the final evaluation); 0 = never
    score_samples: int = 1000  # samples of each FID check during training, against as many training images
    eval_samples: int = 5000  # samples scored after training (`lienzo evaluate RUN --n` for the paper's 50,000)
    is_splits: int = 10  # Inception Score splits


def validate(cfg) -> None:
    g = cfg.gan
    if g.loss not in LOSSES:
        raise ConfigError(f"gan.loss: {g.loss!r} is not one of {', '.join(LOSSES)}")
    for key in ("critic_steps", "generator_batch", "steps_per_epoch", "grid", "score_samples", "eval_samples", "is_splits"):
        if getattr(g, key) < 1:
            raise ConfigError(f"gan.{key}: must be at least 1, got {getattr(g, key)}")
    if g.score_every < 0:
        raise ConfigError(f"gan.score_every: must be >= 0, got {g.score_every}")
    if g.ema_decay is not None and not 0.0 <= g.ema_decay < 1.0:
        raise ConfigError(f"gan.ema_decay: must be in [0, 1), got {g.ema_decay}")
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
    if cfg.data.augment != "none":
        raise ConfigError("data.augment: the generate task trains on the images as they are (none)")
    if cfg.data.progressive_scale is not None:
        raise ConfigError("data.progressive_scale: the generate task trains its networks at one image size (null)")
