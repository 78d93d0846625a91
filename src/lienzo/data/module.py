"""What every task's data module shares: in-memory datasets that hand out whole batches, a seeded sampler
that replays its shuffles from (seed, epoch), and the shard of a distributed run.

Batches are uint8 tensors sliced straight out of memory (the dataset implements `__getitems__`,
so the DataLoader asks for a whole batch in one call instead of one image at a time);
conversion, augmentation and normalisation happen later on the batch, on its device.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset, DistributedSampler

from lienzo.data.arrays import ImageArrays



class TensorImages(Dataset):
    """Map-style dataset over ImageArrays that hands out whole batches."""

    def __init__(self, arrays: ImageArrays):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int):
        return self.arrays.images[index], self.arrays.labels[index]

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.arrays.images[index], self.arrays.labels[index]


def keep_batch(batch):
    """collate_fn for datasets that already return a batch."""
    return batch


class EpochSeededSampler(DistributedSampler):
    """A shuffle that is a function of (seed, epoch) alone, sharded across processes, so a resumed run
    sees the same order on every rank.

    Each epoch draws one permutation of the whole dataset from (seed, epoch); as in DistributedSampler
    it is padded with its own first indices to a multiple of `num_replicas`, and rank r takes every
    num_replicas-th index from position r: the ranks' shards are disjoint (up to the padding) and
    together cover the permutation. Alone (num_replicas=1) it is that permutation, unpadded.

    A DistributedSampler, so that under DDP Lightning keeps it instead of swapping in its own (which
    would draw other orders and know nothing of start_epoch). The epoch is start_epoch + the number
    of passes made so far; Lightning's set_epoch sets it as well. (When a run resumes, Lightning
    prefetches the first batches before it calls set_epoch, too late to choose their order.)"""

    def __init__(self, dataset, seed: int = 0, start_epoch: int = 0, num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.epoch = start_epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        padding = self.total_size - len(order)
        if padding:  # DistributedSampler's padding: repeat the start of the permutation
            order += (order * math.ceil(padding / len(order)))[:padding]
        yield from order[self.rank : self.total_size : self.num_replicas]


def shard_of(trainer) -> dict:
    """{"num_replicas", "rank"} of this process among the trainer's data-parallel processes ({1, 0} alone)."""
    kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
    if not kwargs:
        return {"num_replicas": 1, "rank": 0}
    return {"num_replicas": kwargs["num_replicas"], "rank": kwargs["rank"]}
