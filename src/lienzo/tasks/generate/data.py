"""The GAN's data: real images streamed in seeded batches (a generator step takes `gan.critic_steps` of them)."""

from __future__ import annotations

import logging
import math

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from lienzo.data.module import TensorImages, keep_batch, shard_of
from lienzo.data.sources import load_splits
from lienzo.errors import DataError

log = logging.getLogger("lienzo")

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
