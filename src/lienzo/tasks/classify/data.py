"""The classification DataModule: a source read once into memory, split, and served in batches.

Batches are uint8 tensors sliced straight out of memory (the dataset implements `__getitems__`,
so the DataLoader asks for a whole batch in one call instead of one image at a time);
conversion, augmentation and normalisation happen later on the batch, on its device.
"""

from __future__ import annotations

import logging

import lightning as L
from torch.utils.data import DataLoader

from lienzo.data.arrays import ImageArrays
from lienzo.data.module import EpochSeededSampler, TensorImages, keep_batch, shard_of
from lienzo.data.sources import load_splits
from lienzo.data.splits import channel_stats, stratified_split

log = logging.getLogger("lienzo")


class ClassificationData(L.LightningDataModule):
    """Reads `data.*` once; exposes train/val/test loaders, class names, input shape and mean/std."""

    def __init__(self, data_cfg, seed: int = 0, mean=None, std=None):
        super().__init__()
        self.cfg = data_cfg
        self.seed = seed
        self.mean, self.std = mean, std
        self.start_epoch = 0  # set when resuming, so the shuffle continues where the run stopped
        self.test_every_epoch = False  # serve the test split beside the validation split (curves only)
        self.train_arrays = self.val_arrays = self.test_arrays = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_arrays is not None:
            return
        full_train, test, val = load_splits(self.cfg)
        if val is not None:  # the source's own validation split (curate split's 'val'); load_splits logs it
            self.train_arrays, self.val_arrays = full_train, val
        elif self.cfg.val_fraction > 0:
            keep, held = stratified_split(full_train.labels, self.cfg.val_fraction, self.seed)
            self.train_arrays, self.val_arrays = full_train.subset(keep), full_train.subset(held)
        else:
            self.train_arrays, self.val_arrays = full_train, None
        self.test_arrays = test
        if self.mean is None:
            if self.cfg.normalize:
                self.mean, self.std = channel_stats(self.train_arrays.images)
            else:
                channels = self.train_arrays.shape[0]
                self.mean, self.std = [0.0] * channels, [1.0] * channels
        log.info(
            "data %s: %d train, %d val, %d test, %d classes, input %s",
            self.cfg.name, len(self.train_arrays), len(self.val_arrays or []), len(self.test_arrays or []),
            len(self.class_names), "x".join(map(str, self.input_shape)),
        )

    @property
    def class_names(self) -> list[str]:
        return self.train_arrays.class_names

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train_arrays.shape

    def _loader(self, arrays: ImageArrays, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        dataset = TensorImages(arrays)
        return DataLoader(
            dataset,
            batch_size=batch_size or self.cfg.batch_size,
            sampler=EpochSeededSampler(dataset, self.seed, self.start_epoch, **shard_of(self.trainer)) if shuffle else None,
            collate_fn=keep_batch,
            num_workers=self.cfg.num_workers,
            drop_last=False,
        )

    def eval_batch_size(self) -> int:
        return max(self.cfg.batch_size, 256)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_arrays, shuffle=True)

    @property
    def eval_splits(self) -> list[str]:
        """The splits val_dataloader serves, in order (dataloader_idx 0, 1)."""
        splits = ["val"] if self.val_arrays else []
        if self.test_every_epoch and self.test_arrays:
            splits.append("test")
        return splits

    def val_dataloader(self):
        loaders = [self._loader(getattr(self, f"{split}_arrays"), shuffle=False, batch_size=self.eval_batch_size())
                   for split in self.eval_splits]
        return loaders if len(loaders) > 1 else loaders[0] if loaders else []
