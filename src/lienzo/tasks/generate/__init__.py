"""The generation task: a WGAN-GP (Gulrajani et al. 2017) — or a non-saturating or hinge GAN — with a
generator and a critic from the `gan` model registry, on RGB, grey or RGB+mask images.

    lienzo train configs/gan_fashion.yaml
    lienzo sample runs/gan_fashion --n 64 --out grid.png
    lienzo evaluate runs/gan_fashion --n 50000

One training step is one generator iteration: `gan.critic_steps` critic steps, each on its own batch of
`data.batch_size` real images (the step's batch holds them all), then one generator step on
`gan.generator_batch` samples. `trainer.max_steps` counts generator steps, and an "epoch" is
`gan.steps_per_epoch` of them: the interval of history rows, checkpoints, sample grids and FID checks.
An exponential moving average of the generator's weights (`gan.ema_decay`) makes the samples and the
metrics; the raw weights keep training and travel in the checkpoint for resuming.

    config.py   the `gan` section and the GAN's defaults of the shared sections
    data.py     GenerativeData: real images streamed in seeded batches
    losses.py   critic and generator losses, the gradient penalty
    module.py   GenerateModule: manual optimisation, the generator's moving average, FID checks
    samples.py  grids, sample files, scoring a run, the report's sections
    task.py     Generate: the Task the spine talks to
    sample.py   the `lienzo sample` verb;  study.py: `lienzo study masks`
"""

from lienzo.tasks.generate.config import LOSSES, GanConfig, validate
from lienzo.tasks.generate.data import GenerativeData, from_uint8
from lienzo.tasks.generate.losses import critic_loss, generator_loss, gradient_penalty
from lienzo.tasks.generate.module import GenerateModule
from lienzo.tasks.generate.task import PRESET_SCORERS, Generate, check_generate_run, check_scorer

__all__ = ["LOSSES", "PRESET_SCORERS", "GanConfig", "Generate", "GenerateModule", "GenerativeData", "check_generate_run",
           "check_scorer", "critic_loss", "from_uint8", "generator_loss", "gradient_penalty", "validate"]
