"""The classify task's settings: the shared sections with the keys only classify honours, under the names
they always had (`data.augment=standard`, `trainer.tta=true` on a classify run are what they were), and the
`finetune` section with gradual unfreezing. Other tasks reject these keys with what to use instead (their
`config_hints`).

    data     augment, random_erasing, progressive_scale, progressive_fraction, normalize (+ the image keys)
    optim    label_smoothing, lookahead_steps, lookahead_alpha
    trainer  tta, tta_shift, test_every_epoch, ema_decay
    finetune groups (per-layer rates, frozen and re-initialised layers), unfreeze_after
"""

from __future__ import annotations

from dataclasses import dataclass

from lienzo.config import (
    FinetuneConfig,
    ImageDataConfig,
    OptimConfig,
    TrainerConfig,
    bounded,
    choice,
)

AUGMENT_PRESETS = ("none", "basic", "standard", "strong")


@dataclass
class ClassifyDataConfig(ImageDataConfig):
    normalize: bool = True  # per-channel mean/std from the training split only
    augment: str = choice("none", AUGMENT_PRESETS)  # presets on whole batches (lienzo.data.transforms)
    random_erasing: float | None = bounded(None, "[0, 1]")  # probability per image; None = the preset's (0.5 for
    # strong, else 0)
    progressive_scale: float | None = bounded(None, "(0, 1]")  # progressive resizing: the first epoch trains on
    # images scaled by this (e.g. 0.7: 28 → 20 px), growing linearly to full size over progressive_fraction of
    # the epochs; None = off
    progressive_fraction: float = bounded(0.5, "(0, 1]")


@dataclass
class ClassifyOptimConfig(OptimConfig):
    label_smoothing: float = bounded(0.0, "[0, 1)")
    lookahead_steps: int = bounded(0, "[0, inf)")  # Lookahead: every k steps the slow weights move alpha of the
    # way; 0 = off
    lookahead_alpha: float = bounded(0.5, "(0, 1]")


@dataclass
class ClassifyTrainerConfig(TrainerConfig):
    tta: bool = False  # evaluate with horizontal-flip test-time augmentation
    test_every_epoch: bool | int = bounded(False, "[0, inf)")  # also score the test split after every epoch (true)
    # or every N epochs and the last (N): test_loss/test_top1 in history.csv for time-to-accuracy curves (never
    # used to choose best.ckpt)
    tta_shift: int = bounded(0, "[0, inf)")  # also with the images moved by this many pixels in 4 directions
    # (half weight); 0 = off
    ema_decay: float | None = bounded(None, "[0, 1)")  # keep an exponential moving average of the weights (e.g.
    # 0.999) and validate, checkpoint and evaluate with it; None = off


@dataclass
class ClassifyFinetuneConfig(FinetuneConfig):
    unfreeze_after: int = bounded(0, "[0, inf)")  # gradual unfreezing: only the last layer trains for this many
    # epochs


SECTIONS = {"data": ClassifyDataConfig, "optim": ClassifyOptimConfig, "trainer": ClassifyTrainerConfig,
            "finetune": ClassifyFinetuneConfig}

# Keys of other tasks, set on a classify run: what to do instead (the rest: "a classify run does not use it").
HINTS = {
    "gan": "a classify run trains no GAN (task: generate does)",
    "caption": "a classify run trains no captioner (task: caption does)",
    "model.maps": "a classify run's network is model.arch (task: generate trains GANs)",
    "model.z_dim": "a classify run's network is model.arch (task: generate trains GANs)",
    "model.spectral_norm": "a classify run's network is model.arch (task: generate trains GANs)",
}
