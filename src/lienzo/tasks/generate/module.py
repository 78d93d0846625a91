"""GenerateModule: the generator and critic trained with manual optimisation, the generator's moving
average, and the FID checks during training."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lienzo.config import OptimConfig
from lienzo.optimizers import build_optimizer, build_scheduler
from lienzo.tasks.state import capture_rng, complete_saved_epoch, restore_rng
from lienzo.tasks.base import TaskModule
from lienzo.tasks.generate.data import from_uint8
from lienzo.tasks.generate.losses import critic_loss, generator_loss, gradient_penalty

# -- the generator's moving average --------------------------------------------------------------------

def generator_average(generator: nn.Module, decay: float) -> AveragedModel:
    """The generator's exponential moving average, ema ← decay·ema + (1 − decay)·w after every generator step,
    starting from the generator as built (so the first step already averages). Batch-norm statistics are
    averaged too (as timm's ModelEmaV2): the averaged weights with the raw generator's statistics are a
    network that never existed; integer buffers (batch norm's step counter) are copied.

    torch's AveragedModel copies the model at its first update; updating it once here with the untouched
    generator makes that copy the start, as the average always started."""
    average = AveragedModel(generator, multi_avg_fn=_ema_copying_counters(decay), use_buffers=True)
    average.update_parameters(generator)
    return average.requires_grad_(False).eval()


def _ema_copying_counters(decay: float):
    # torch's EMA rounds decay·n + (1 − decay)·m into an integer buffer, which leaves a counter stuck where
    # it started; the average's counter is the generator's.
    ema = get_ema_multi_avg_fn(decay)

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged) -> None:
        if averaged[0].is_floating_point():  # AveragedModel hands over one dtype at a time
            ema(averaged, current, n_averaged)
        else:
            torch._foreach_copy_(averaged, current)

    return update


# -- the LightningModule -----------------------------------------------------------------------------

class GenerateModule(TaskModule):
    """Manual optimisation of a generator and a critic. Only the generator's optimizer goes through
    Lightning's step accounting, so `trainer.global_step` (and `trainer.max_steps`) counts generator steps;
    the critic's steps are the inner loop of each."""

    def __init__(self, gan: nn.Module, config: dict, info: dict):
        super().__init__()
        self.save_hyperparameters(ignore=["gan"])
        g = config["gan"]
        self.generator, self.critic = gan.generator, gan.critic
        self.z_dim = int(gan.z_dim)
        self.kind, self.gp_weight = g["loss"], float(g["gp_weight"])
        self.critic_steps, self.generator_batch = int(g["critic_steps"]), int(g["generator_batch"])
        self.ema_decay = g["ema_decay"]
        self.generator_ema = generator_average(gan.generator, self.ema_decay) if self.ema_decay is not None else None
        self.seed = int(config["run"]["seed"])
        fixed = torch.randn(g["grid"], self.z_dim, generator=torch.Generator().manual_seed(self.seed))
        self.register_buffer("fixed_noise", fixed)
        self.automatic_optimization = False
        self._sums: torch.Tensor | None = None  # critic loss, wasserstein, penalty, generator loss, count
        self._scoring = None  # (scorer, real features) for FID during training; not a network of the run

    # -- sampling ------------------------------------------------------------------------------------
    @property
    def sampler(self) -> nn.Module:
        """The network samples and metrics come from: the moving average when there is one."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Images in [-1, 1] (float32, on z's device) for noise z, from `sampler` in eval mode."""
        net = self.sampler
        mode = net.training
        net.eval()
        try:
            return torch.cat([net(chunk).float() for chunk in z.split(batch_size)])
        finally:
            net.train(mode)

    def noise(self, n: int, seed: int, device=None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.z_dim, generator=generator).to(device or self.device)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.generator_ema is not None:
            self.generator_ema.eval()  # batch norm of the average uses the statistics it was handed
        return self

    # -- the step -------------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int = 0):
        return from_uint8(batch)

    def _step_generator(self) -> torch.Generator:
        # noise and interpolation weights from (seed, step, rank): a resumed run draws what the uninterrupted one did
        generator = torch.Generator(device=self.device)
        generator.manual_seed((self.seed * 1_000_003 + self.global_step) * 7919 + self.global_rank)
        return generator

    def training_step(self, batch, batch_idx):
        opt_g, opt_c = self.optimizers()
        critic_opt = opt_c.optimizer  # the plain optimizer: its steps are not trainer steps
        rng = self._step_generator()
        sums = torch.zeros(5, device=self.device)
        self.critic.requires_grad_(True)
        for real in batch.chunk(self.critic_steps):
            n = real.shape[0]
            z = torch.randn(n, self.z_dim, device=self.device, generator=rng)
            with torch.no_grad():
                fake = self.generator(z)
            real_scores, fake_scores = self.critic(real), self.critic(fake)
            loss = critic_loss(self.kind, real_scores, fake_scores)
            penalty = torch.zeros((), device=self.device)
            if self.kind == "wgan-gp":
                eps = torch.rand(n, 1, 1, 1, device=self.device, generator=rng)
                penalty = gradient_penalty(self.critic, real, fake, eps)
            critic_opt.zero_grad(set_to_none=True)
            self.manual_backward(loss + self.gp_weight * penalty)
            critic_opt.step()
            wasserstein = real_scores.detach().float().mean() - fake_scores.detach().float().mean()
            sums[:3] += torch.stack([loss.detach(), wasserstein, penalty.detach()])
        self.critic.requires_grad_(False)  # the generator's step needs no gradients of the critic's weights
        z = torch.randn(self.generator_batch, self.z_dim, device=self.device, generator=rng)
        g_loss = generator_loss(self.kind, self.critic(self.generator(z)))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.critic.requires_grad_(True)
        for scheduler in self.lr_schedulers() or []:
            scheduler.step()
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        sums[:3] /= self.critic_steps
        sums[3], sums[4] = g_loss.detach(), 1.0
        self._sums = sums if self._sums is None else self._sums + sums
        self.log("w", sums[1], prog_bar=True, logger=False)  # the Wasserstein estimate on the progress bar

    # -- epochs ---------------------------------------------------------------------------------------
    def on_train_epoch_end(self) -> None:
        if self._sums is not None:
            sums, self._sums = self._sums, None
            means = sums[:4] / sums[4]
            names = ("train_critic_loss", "train_wasserstein", "train_gp", "train_generator_loss")
            for name, value in zip(names, means):
                self.log(name, value, sync_dist=True)
        self.log("generator_steps", float(self.global_step), sync_dist=False)
        if self._scoring is not None and self._due_for_scoring():
            self.log_dict({f"val_{k}": v for k, v in self._score_now().items()}, sync_dist=False)
        if self.trainer.is_global_zero:
            from lienzo.tasks.generate.samples import save_sample_grids

            save_sample_grids(self.sample(self.fixed_noise), Path(self.trainer.default_root_dir) / "plots",
                              f"samples_step{self.global_step:07d}")

    def _due_for_scoring(self) -> bool:
        every = int(self.hparams.config["gan"]["score_every"])
        return every > 0 and (self.current_epoch + 1) % every == 0

    def _score_now(self) -> dict[str, float]:
        from lienzo.metrics.generative import generative_metrics, make_scorer, score_real

        scorer, real = self._scoring
        g = self.hparams.config["gan"]
        if scorer is None:
            scorer = make_scorer(g["scorer"], device=self.device)
            real = score_real(scorer, real)[0]  # uint8 images go in as they are
            self._scoring = (scorer, real)
        fake = self.sample(self.noise(g["score_samples"], self.seed + 1))
        result = generative_metrics(scorer, fake, real, splits=g["is_splits"])
        return {"fid": result["fid"], "is": result["is_mean"]}

    # -- optimisation ---------------------------------------------------------------------------------
    def configure_optimizers(self):
        optim_cfg = OptimConfig(**self.hparams.config["optim"])
        opt_g = build_optimizer(self.generator.parameters(), optim_cfg)
        opt_c = build_optimizer(self.critic.parameters(), optim_cfg)
        total = self.trainer.max_steps if self.trainer.max_steps and self.trainer.max_steps > 0 else \
            self.trainer.estimated_stepping_batches
        schedulers = [build_scheduler(opt, optim_cfg, total)[0] for opt in (opt_g, opt_c)]
        if any(s is None for s in schedulers):
            return [opt_g, opt_c]
        return [opt_g, opt_c], [{"scheduler": s, "interval": "step"} for s in schedulers]

    def setup(self, stage: str) -> None:
        # The real images FID compares with during training: a seeded random subset of the training images.
        # best.ckpt is chosen by this FID, so the test split stays out of it, for the final evaluation and the
        # real-data bound alone. The scorer is built at the first check, on the module's device (setup runs
        # before the module is moved to it).
        datamodule = self.trainer.datamodule if self.trainer is not None else None
        g = self.hparams.config["gan"]
        if stage != "fit" or not g["scorer"] or not g["score_every"] or datamodule is None:
            return
        from lienzo.metrics.generative import seeded_subset

        self._scoring = (None, seeded_subset(datamodule.split_images("train"), g["score_samples"], self.seed + 3))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = capture_rng()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        restore_rng(checkpoint.get("rng_states"))
        complete_saved_epoch(checkpoint)
