"""Augmentation presets that work on whole batches of tensors, on whatever device the batch is on.

Per-image Python is the bottleneck for 28×28 images, so every random choice here is drawn for
the whole batch at once and applied with tensor ops (index gathers, `grid_sample`, masks).
The draws come from generators the augmentation owns (one per device), never from torch's global
ones, so a training loop can make them a function of (seed, epoch, rank) with `reseed`:

    augment = BatchAugment("standard")
    augment.reseed(seed)                                   # e.g. once per epoch
    x = augment.erase(Normalizer(mean, std)(augment(batch_uint8)))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PRESETS = ("none", "basic", "standard", "strong")


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 → float in [0, 1]."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


class Normalizer:
    """uint8 (or [0, 1] float) batch → (x/255 − mean)/std as one fused multiply-add, with the
    per-channel scale and shift cached per device and dtype (this runs on every batch)."""

    def __init__(self, mean, std):
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self._cache: dict = {}

    def _coefficients(self, x: torch.Tensor, unit: float):
        key = (x.device, unit)
        if key not in self._cache:
            std = torch.tensor(self.std, dtype=torch.float32)
            scale = (unit / std).view(1, -1, 1, 1)
            shift = (-torch.tensor(self.mean, dtype=torch.float32) / std).view(1, -1, 1, 1)
            self._cache[key] = (scale.to(x.device), shift.to(x.device))
        return self._cache[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        unit = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
        scale, shift = self._coefficients(x, unit)
        return torch.addcmul(shift, x.float(), scale)


def random_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by `padding` and crop back to the original size at a random offset per image."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    rows = (torch.arange(h, device=x.device).view(1, h) + dy.view(b, 1)).view(b, 1, h, 1).expand(b, c, h, w)
    cols = (torch.arange(w, device=x.device).view(1, w) + dx.view(b, 1)).view(b, 1, 1, w).expand(b, c, h, w)
    flat = padded.flatten(2)
    index = rows * (w + 2 * padding) + cols
    return flat.gather(2, index.reshape(b, c, h * w)).view(b, c, h, w)


def random_affine(x: torch.Tensor, degrees: float, translate: float, scale: tuple[float, float],
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Small rotations, translations and zooms, one matrix per image, through one grid_sample."""
    b = x.shape[0]
    angle = (torch.rand(b, device=x.device, generator=generator) * 2 - 1) * math.radians(degrees)
    zoom = torch.empty(b, device=x.device).uniform_(*scale, generator=generator)
    shift = (torch.rand(b, 2, device=x.device, generator=generator) * 2 - 1) * (2 * translate)  # grid units span 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_brightness_contrast(x: torch.Tensor, brightness: float, contrast: float,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's mean by 1 ± brightness and its spread around the mean by 1 ± contrast."""
    b = x.shape[0]
    gain = 1 + (torch.rand(b, 1, 1, 1, device=x.device, generator=generator) * 2 - 1) * brightness
    spread = 1 + (torch.rand(b, 1, 1, 1, device=x.device, generator=generator) * 2 - 1) * contrast
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * spread + mean * gain).clamp_(0, 1)


def random_erasing(x: torch.Tensor, p: float = 0.5, area=(0.02, 0.25), ratio=(0.3, 3.3),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a random rectangle in each image with probability p. (Called after normalisation, where 0 is
    the training split's mean when `data.normalize` is on, and black when it is off.)"""
    b, _, h, w = x.shape
    dev = x.device
    target = torch.empty(b, device=dev).uniform_(*area, generator=generator) * h * w
    log_ratio = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    eh = (target * aspect).sqrt().round().clamp(1, h).long()
    ew = (target / aspect).sqrt().round().clamp(1, w).long()
    top = (torch.rand(b, device=dev, generator=generator) * (h - eh + 1)).long()
    left = (torch.rand(b, device=dev, generator=generator) * (w - ew + 1)).long()
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1))
    )
    apply = (torch.rand(b, device=dev, generator=generator) < p).view(b, 1, 1)
    return x.masked_fill((inside & apply).unsqueeze(1), 0.0)


def trivial_augment(images: torch.Tensor, groups: int = 8, generator: torch.Generator | None = None) -> torch.Tensor:
    """TrivialAugmentWide on uint8 images: one random op per group of images (torchvision applies
    one op to a whole batch tensor, so groups trade variety against per-call overhead).

    torchvision draws its choices from torch's global CPU generator: with a `generator`, that global
    state is set from it for the call and restored afterwards, so the choices follow `generator`."""
    from torchvision.transforms import v2

    op = v2.TrivialAugmentWide()
    if generator is None:
        return torch.cat([op(chunk) for chunk in images.chunk(groups)])
    seed = int(torch.randint(0, 2**62, (), device=generator.device, generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only: fork_rng restores just that
        return torch.cat([op(chunk) for chunk in images.chunk(groups)])


def progressive_size(full: int, epoch: int, max_epochs: int, scale: float | None, fraction: float = 0.5) -> int:
    """Side length of the training images at `epoch` (0-based) under progressive resizing (fast.ai's
    DAWNBench runs, MosaicML Composer's ProgressiveResizing): `full`·`scale` at the first epoch, growing
    linearly to `full` at epoch fraction·max_epochs (rounded; at the latest the last epoch), full size from
    then on. scale None = full."""
    ramp = min(math.floor(fraction * max_epochs + 0.5), max_epochs - 1)  # halves round up, here and below;
    # the last epoch is always at full size (the size it is evaluated at)
    if scale is None or scale >= 1 or epoch >= ramp:
        return full
    return max(1, min(full, math.floor(full * (scale + (1 - scale) * epoch / ramp) + 0.5)))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A batch scaled to size (H, W), antialiased when shrinking; the batch itself when it has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)


class BatchAugment:
    """A named preset: none, basic (flip + padded crop), standard (+ rotation, translation, zoom,
    brightness/contrast), strong (+ TrivialAugmentWide and random erasing).

    Called on uint8 images; returns float images in [0, 1] (erasing happens after normalisation
    through `erase`). Its random draws come from its own generators, one per device, seeded with
    `seed` and reseeded with `reseed`; torch's global generators are neither used nor changed."""

    def __init__(self, preset: str = "none", flip: bool = True, erasing: float | None = None, seed: int = 0):
        if preset not in PRESETS:
            raise ValueError(f"unknown augmentation preset {preset!r}; known: {', '.join(PRESETS)}")
        self.preset = preset
        self.flip = flip
        self.erasing = (0.5 if preset == "strong" else 0.0) if erasing is None else erasing
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    @property
    def active(self) -> bool:
        """False when the preset changes nothing (then the caller can skip it)."""
        return self.preset != "none" or self.erasing > 0

    def reseed(self, seed: int) -> None:
        """Make every draw from now on a function of `seed` alone (a training loop passes one integer
        made of seed, epoch and rank at each epoch's start)."""
        self.seed = seed
        self._generators.clear()

    def generator(self, device: torch.device | str) -> torch.Generator:
        """The generator this augmentation draws from on `device`, made from `seed` at first use."""
        device = torch.device(device)
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        level = PRESETS.index(self.preset)
        generator = self.generator(images.device)
        if level >= 3 and images.dtype == torch.uint8:
            images = trivial_augment(images, generator=generator)
        x = to_unit(images)
        if level >= 1:
            if self.flip:
                x = random_flip(x, generator=generator)
            x = random_crop(x, padding=max(2, x.shape[-1] // 8), generator=generator)
        if level >= 2:
            x = random_affine(x, degrees=10, translate=0.05, scale=(0.95, 1.05), generator=generator)
            x = random_brightness_contrast(x, brightness=0.2, contrast=0.2, generator=generator)
        return x

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """Random erasing (on the normalised batch) when the preset or `erasing` asks for it."""
        return random_erasing(x, p=self.erasing, generator=self.generator(x.device)) if self.erasing > 0 else x
