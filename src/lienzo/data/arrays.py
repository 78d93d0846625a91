"""The one in-memory form every source produces: uint8 images N×C×H×W, int64 labels, class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lienzo.errors import DataError


@dataclass
class ImageArrays:
    """Images (uint8, N×C×H×W), labels (int64, N), the names of the classes and, for files, their paths."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    paths: list[str] | None = None

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"images must be uint8 N×C×H×W, got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise DataError(
                f"labels range {int(self.labels.min())}..{int(self.labels.max())} "
                f"does not fit {len(self.class_names)} class names"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, index) -> ImageArrays:
        index = torch.as_tensor(index, dtype=torch.long)
        paths = [self.paths[i] for i in index.tolist()] if self.paths is not None else None
        return ImageArrays(self.images[index], self.labels[index], self.class_names, paths)

    def to_channels(self, channels: int) -> ImageArrays:
        """The same images with `channels` channels: unchanged when they have them, 1↔3 converted (see
        `to_channels`), any other change a DataError."""
        if channels == self.images.shape[1]:
            return self
        return ImageArrays(to_channels(self.images, channels), self.labels, self.class_names, self.paths)

    def select_classes(self, names: list[str]) -> ImageArrays:
        """Keep only the named classes, relabelled 0..len(names)-1 in the order given."""
        missing = [n for n in names if n not in self.class_names]
        if missing:
            from lienzo.errors import did_you_mean

            raise DataError(f"data.classes: unknown class '{missing[0]}'{did_you_mean(missing[0], self.class_names)}")
        old_to_new = torch.full((len(self.class_names),), -1, dtype=torch.long)
        for new, name in enumerate(names):
            old_to_new[self.class_names.index(name)] = new
        keep = (old_to_new[self.labels] >= 0).nonzero().flatten()
        kept = self.subset(keep)
        return ImageArrays(kept.images, old_to_new[kept.labels], list(names), kept.paths)


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, PIL's RGB→L


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """N×C×H×W images (uint8 or float) with `channels` channels: unchanged when C == channels (any C: RGB +
    mask has 4); colour → grey by luma, grey → colour by copies; any other pair is a DataError naming both.

    uint8 uses PIL's fixed-point rounding, so arrays and decoded files give the same grey values."""
    have = images.shape[1]
    if have == channels:
        return images
    if (have, channels) not in ((3, 1), (1, 3)):
        # 4 → 3 or 4 → 1 would have to drop or composite a channel (a mask, alpha): not ours to guess
        raise DataError(f"cannot convert {have}-channel images to {channels} channels "
                        "(only 1 ↔ 3 are defined: grey and RGB)")
    if channels == 1:
        if images.dtype == torch.uint8:
            r, g, b = images[:, 0].int(), images[:, 1].int(), images[:, 2].int()
            return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)
        weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    return images.expand(-1, channels, -1, -1).contiguous()


def from_numpy(images: np.ndarray, labels: np.ndarray, class_names: list[str], paths=None) -> ImageArrays:
    """N×H×W or N×H×W×C uint8 arrays (the files' usual layout) to ImageArrays."""
    if images.ndim == 3:
        images = images[:, :, :, None]
    tensor = torch.from_numpy(np.array(images.transpose(0, 3, 1, 2), order="C"))
    return ImageArrays(tensor, torch.from_numpy(np.asarray(labels).astype(np.int64)), list(class_names), paths)
