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
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from lienzo.config import DataConfig, ModelConfig, OptimConfig
from lienzo.data.module import TensorImages, keep_batch, shard_of
from lienzo.data.sources import load_splits
from lienzo.errors import ConfigError, DataError, LienzoError, RunError
from lienzo.models.registry import create_model, list_models, model_kind
from lienzo.optimizers import build_optimizer, build_scheduler
from lienzo.tasks.base import Report, Task
from lienzo.tasks.state import capture_rng, complete_saved_epoch, restore_rng

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


# -- data --------------------------------------------------------------------------------------------

class StreamSampler(DistributedSampler):
    """`length` indices an epoch, drawn from a stream of permutations of the dataset that is a function
    of (seed, epoch, rank) alone, so a resumed run sees what the uninterrupted one saw. Each rank draws
    its own stream. (A DistributedSampler, so that Lightning keeps it under DDP.)"""

    def __init__(self, dataset, length: int, seed: int = 0, start_epoch: int = 0, num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.num_samples = self.total_size = length
        self.epoch = start_epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 7919 + self.rank)
        self.epoch += 1
        passes = math.ceil(self.num_samples / len(self.dataset))
        order = torch.cat([torch.randperm(len(self.dataset), generator=generator) for _ in range(passes)])
        yield from order[: self.num_samples].tolist()


class GenerativeData(L.LightningDataModule):
    """Reads `data.*` once (any lienzo source: IDX, CIFAR, folders, HDF5 with a mask channel), resized to
    `data.image_size`; the training loader hands out `critic_steps × batch_size` uint8 images a step.

    `run_shape` (C, H, W) is the image shape a saved run was trained on (evaluate, resume): data of another
    shape is a DataError naming both, since metrics of 8 px samples against 16 px images mean nothing."""

    def __init__(self, data_cfg, gan_cfg, seed: int = 0, run_shape: tuple[int, int, int] | None = None):
        super().__init__()
        self.cfg, self.gan, self.seed, self.run_shape = data_cfg, gan_cfg, seed, run_shape
        self.train_arrays = self.test_arrays = None
        self.start_epoch = 0

    def setup(self, stage: str | None = None) -> None:
        if self.train_arrays is not None:
            return
        try:
            splits = load_splits(self.cfg)
        except DataError as err:
            if "channel" in str(err):
                raise DataError(f"data.channels={self.cfg.channels}: {self.cfg.root or self.cfg.name} {err}; "
                                "an RGB+mask file trains 4-channel GANs, an RGB file 3-channel ones") from None
            raise
        size = self.cfg.image_size
        self.train_arrays = _resized(splits.train.images, size)
        reference = splits.test if splits.test is not None else splits.val
        self.test_arrays = _resized(reference.images, size) if reference is not None and len(reference) else None
        self._check_run_shape()

    def _check_run_shape(self) -> None:
        if self.run_shape is None:
            return
        want = tuple(self.run_shape)
        for images in (self.train_arrays, self.test_arrays):
            have = tuple(images.shape[1:]) if images is not None else want
            if have != want:
                fix = (f"set data.image_size=[{want[1]}, {want[2]}]" if have[0] == want[0]
                       else f"give a file of {want[0]}-channel images")
                raise DataError(f"{self.cfg.root or self.cfg.name}: {'×'.join(map(str, have))} images, but the run was "
                                f"trained on {'×'.join(map(str, want))} images: {fix}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_arrays.shape[1:])

    def train_dataloader(self) -> DataLoader:
        per_step = self.gan.critic_steps * self.cfg.batch_size
        if len(self.train_arrays) < self.cfg.batch_size:
            raise DataError(f"{self.cfg.root or self.cfg.name}: {len(self.train_arrays)} training images, fewer than "
                            f"one critic batch (data.batch_size={self.cfg.batch_size})")
        dataset = _Images(self.train_arrays)
        sampler = StreamSampler(dataset, per_step * self.gan.steps_per_epoch, self.seed, self.start_epoch,
                                **shard_of(self.trainer))
        return DataLoader(dataset, batch_size=per_step, sampler=sampler, collate_fn=keep_batch, drop_last=True,
                          num_workers=self.cfg.num_workers)

    def split_images(self, split: str) -> torch.Tensor | None:
        """uint8 images of a split ('train' or 'test'; the test split is the source's test or val split)."""
        return self.train_arrays if split == "train" else self.test_arrays


class _Images(TensorImages):
    """Batches of images alone (labels play no part in an unconditional GAN)."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index]

    def __getitems__(self, indices: list[int]):
        return self.images[torch.as_tensor(indices, dtype=torch.long)]


def _resized(images: torch.Tensor, size: list[int] | None) -> torch.Tensor:
    if not size:
        return images
    target = (size[0], size[-1])
    if tuple(images.shape[-2:]) == target:
        return images
    resized = [F.interpolate(chunk.float(), size=target, mode="bilinear", antialias=True, align_corners=False)
               for chunk in images.split(4096)]
    return torch.cat(resized).round_().clamp_(0, 255).to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 → float in [-1, 1], the generator's range."""
    return images.float().div_(127.5).sub_(1.0)


# -- losses ------------------------------------------------------------------------------------------

def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = ε·real + (1 − ε)·fake, one ε per sample.

    The gradient's norm is taken in fp32 whatever the autocast precision: in bf16 the squared sum over a
    64×64×4 image would lose the digits that make (‖g‖ − 1)² small."""
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grads.float().flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def critic_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic's loss (lower is better for the critic) for real and generated samples' scores."""
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    if kind == "wgan-gp":
        return fake_scores.mean() - real_scores.mean()
    if kind == "hinge":
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()  # ns: −log σ(D(x)) − log(1 − σ(D(G(z))))


def generator_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    fake_scores = fake_scores.float()
    if kind == "ns":
        return F.softplus(-fake_scores).mean()  # −log σ(D(G(z)))
    return -fake_scores.mean()  # wgan-gp and hinge


# -- the LightningModule -----------------------------------------------------------------------------

class GenerateModule(L.LightningModule):
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
        self.generator_ema = copy.deepcopy(gan.generator).requires_grad_(False).eval() if self.ema_decay is not None else None
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
        return self.generator_ema if self.generator_ema is not None else self.generator

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
        self._update_ema()
        sums[:3] /= self.critic_steps
        sums[3], sums[4] = g_loss.detach(), 1.0
        self._sums = sums if self._sums is None else self._sums + sums
        self.log("w", sums[1], prog_bar=True, logger=False)  # the Wasserstein estimate on the progress bar

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        ema_params, params = list(self.generator_ema.parameters()), list(self.generator.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - self.ema_decay)
        # Batch-norm statistics are averaged too (as timm's ModelEmaV2): the averaged weights with the raw
        # generator's statistics are a network that never existed. Counters are copied.
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            if ema_buffer.is_floating_point():
                ema_buffer.lerp_(buffer, 1.0 - self.ema_decay)
            else:
                ema_buffer.copy_(buffer)

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


# -- the task ------------------------------------------------------------------------------------------

class Generate(Task):
    """Train a GAN; samples, Inception Score and FID (with Inception or any lienzo classifier's features)."""

    name = "generate"
    main_metric = ("test", "fid", "min")
    config_sections = {"data": GanDataConfig, "model": GanModelConfig, "optim": GanOptimConfig, "gan": GanConfig}
    sample_count_key = "gan.eval_samples"
    sample_count_default = 50_000  # the paper's; `lienzo evaluate RUN --n 5000` for a quick look

    def validate(self, cfg) -> None:
        validate(cfg)

    def data_module(self, cfg, info: dict | None = None) -> GenerativeData:
        # a new run, a resumed one or an evaluation: a scorer that cannot score is said before anything is
        # read, trained or written
        check_scorer(cfg.gan.scorer)
        run_shape = tuple(info["input_shape"]) if info and info.get("input_shape") else None
        return GenerativeData(cfg.data, cfg.gan, cfg.run.seed, run_shape)

    def data_info(self, data: GenerativeData) -> dict:
        return {"input_shape": list(data.input_shape)}

    def build_module(self, cfg, info: dict, load_weights: bool = True) -> GenerateModule:
        channels, height, width = info["input_shape"]
        if height != width:
            raise DataError(f"{cfg.data.root or cfg.data.name}: {height}×{width} images; GANs here take square "
                            "ones (set data.image_size: [S, S])")
        gan = create_model(cfg.model.arch, channels=channels, image_size=height, maps=cfg.model.maps,
                           z_dim=cfg.model.z_dim, spectral_norm=cfg.model.spectral_norm)
        return GenerateModule(gan, cfg.to_dict(), info)

    def has_validation(self, data) -> bool:
        return False

    def precision_macs(self, module, info: dict) -> float | None:
        from lienzo.tasks.generate.samples import precision_macs

        return precision_macs(module, info)

    def monitor(self, cfg, has_val: bool) -> tuple[str, str]:
        if cfg.gan.scorer and cfg.gan.score_every:
            return "val_fid", "min"
        return "generator_steps", "max"  # without a metric, the latest generator is the best one

    def trainer_kwargs(self, cfg) -> dict:
        # The critic's steps leave the generator's weights without gradients (and the reverse): DDP must look
        # for unused parameters at every backward.
        return {"strategy": "ddp_find_unused_parameters_true"} if cfg.trainer.strategy == "ddp" else {}

    def describe(self, cfg, module, info: dict) -> dict:
        networks = {name: sum(p.numel() for p in getattr(module, name).parameters()) for name in ("generator", "critic")}
        return {"arch": cfg.model.arch, "parameters": sum(networks.values()), "networks": networks,
                "input_shape": info["input_shape"], "loss": cfg.gan.loss}

    def check_evaluate(self, cfg, split: str) -> None:
        if split != "test":
            raise ConfigError(f"--split {split}: generate runs are scored against the test split (the training "
                              "images are the real-data bound); leave --split out")
        if not cfg.gan.scorer:
            raise ConfigError("gan.scorer: this run has no scorer; pass one: lienzo evaluate RUN gan.scorer=RUN "
                              "(a lienzo classifier run) or gan.scorer=inception (with its weights file)")

    def evaluate(self, loaded, data, split: str, cfg) -> dict | None:
        if split != "test":
            return None
        from lienzo.tasks.generate.samples import score_run

        return score_run(loaded, data, cfg)

    def summary_line(self, split: str, results: dict) -> str:
        if results.get("fid") is None:
            return f"{split}: no IS/FID (set gan.scorer to a classifier run, or inception with its weights file)"
        return (f"{split}: FID {results['fid']:.2f} (real data: {results['real_fid']:.2f}), IS {results['is_mean']:.2f} "
                f"± {results['is_std']:.2f} (real: {results['real_is_mean']:.2f}) over {results['samples']} samples, "
                f"{results['scorer']} features")

    def report(self, run_dir: Path, cfg, metrics: dict, history: list[dict], data=None,
               extras: dict | None = None) -> Report:
        from lienzo.tasks.generate.samples import report_sections

        report = report_sections(run_dir, cfg, metrics)
        # no validation split: the FID checks during training compare the samples with training images
        report.curve_labels.update(val_fid="samples against training images", val_is="samples")
        return report


# The scorer runs the presets name, and the command that makes each.
PRESET_SCORERS = {"runs/fashion_fast": "lienzo train configs/fashion_fast.yaml",
                  "runs/study_masks/scorer": "lienzo study masks"}


def check_scorer(scorer: str | None) -> None:
    """gan.scorer can score, checked in full before a run trains or an evaluation starts (not at the first
    FID check or after training): "inception[:FILE]" has its weights file; a run folder holds a checkpoint
    of a classify run. The presets name runs users make first: the error says with which command."""
    if not scorer:
        return
    from lienzo.metrics.generative import inception_weights, require_classifier

    inception = scorer == "inception" or scorer.startswith("inception:")
    try:
        if inception:
            inception_weights(scorer.removeprefix("inception").removeprefix(":") or None)
            return
        if Path(scorer).is_dir():
            require_classifier(scorer)
            return
    except LienzoError as err:  # the inner message names the file or folder
        raise type(err)(f"gan.scorer{'=' + scorer if inception else ''}: {err}") from None
    path = Path(scorer)
    make = PRESET_SCORERS.get(path.as_posix(), f"lienzo train CLASSIFY_CONFIG run.dir={path.parent} run.name={path.name}")
    raise ConfigError(f"gan.scorer: {scorer} is not a run folder: make it first ({make}), or set gan.scorer=null "
                      "(samples only), gan.scorer=RUN (a lienzo classifier run) or gan.scorer=inception (with its "
                      "weights file)")


def check_generate_run(loaded, what: str) -> None:
    """`lienzo sample` and friends on a run of another task: one line naming it."""
    if loaded.task != Generate.name:
        raise RunError(f"{loaded.path.parent.parent}: {what} needs a generate run, this is a {loaded.task} run")


