"""Augmentation presets that work on whole batches of tensors, on whatever device the batch is on.

Per-image Python is the bottleneck for 28×28 images, so every random choice here is drawn for
the whole batch at once and applied with tensor ops (index gathers, `grid_sample`, masks).

    augment = BatchAugment("standard")
    x = normalize(augment(to_unit(batch_uint8)), mean, std)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PRESETS = ("none", "basic", "standard", "strong")


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 → float in [0, 1]."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


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


def random_flip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def random_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad by `padding` and crop back to the original size at a random offset per image."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h) + dy.view(b, 1)).view(b, 1, h, 1).expand(b, c, h, w)
    cols = (torch.arange(w, device=x.device).view(1, w) + dx.view(b, 1)).view(b, 1, 1, w).expand(b, c, h, w)
    flat = padded.flatten(2)
    index = rows * (w + 2 * padding) + cols
    return flat.gather(2, index.reshape(b, c, h * w)).view(b, c, h, w)


def random_affine(x: torch.Tensor, degrees: float, translate: float, scale: tuple[float, float]) -> torch.Tensor:
    """Small rotations, translations and zooms, one matrix per image, through one grid_sample."""
    b = x.shape[0]
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(degrees)
    zoom = torch.empty(b, device=x.device).uniform_(*scale)
    shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * (2 * translate)  # grid units span 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_brightness_contrast(x: torch.Tensor, brightness: float, contrast: float) -> torch.Tensor:
    b = x.shape[0]
    gain = 1 + (torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * brightness
    spread = 1 + (torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * contrast
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * spread + mean * gain).clamp_(0, 1)


def random_erasing(x: torch.Tensor, p: float = 0.5, area=(0.02, 0.25), ratio=(0.3, 3.3)) -> torch.Tensor:
    """Zero a random rectangle in a random half of the images (0 is the mean after normalisation)."""
    b, _, h, w = x.shape
    dev = x.device
    target = torch.empty(b, device=dev).uniform_(*area) * h * w
    log_ratio = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio)
    eh = (target * aspect).sqrt().round().clamp(1, h).long()
    ew = (target / aspect).sqrt().round().clamp(1, w).long()
    top = (torch.rand(b, device=dev) * (h - eh + 1)).long()
    left = (torch.rand(b, device=dev) * (w - ew + 1)).long()
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1))
    )
    apply = (torch.rand(b, device=dev) < p).view(b, 1, 1)
    return x.masked_fill((inside & apply).unsqueeze(1), 0.0)


def trivial_augment(images: torch.Tensor, groups: int = 8) -> torch.Tensor:
    """TrivialAugmentWide on uint8 images: one random op per group of images (torchvision applies
    one op to a whole batch tensor, so groups trade variety against per-call overhead)."""
    from torchvision.transforms import v2

    op = v2.TrivialAugmentWide()
    return torch.cat([op(chunk) for chunk in images.chunk(groups)])


class BatchAugment:
    """A named preset: none, basic (flip + padded crop), standard (+ rotation, translation, zoom,
    brightness/contrast), strong (+ TrivialAugmentWide and random erasing).

    Called on uint8 images; returns float images in [0, 1] (erasing happens after normalisation
    through `erase`, so that erased pixels become the mean)."""

    def __init__(self, preset: str = "none", flip: bool = True, erasing: float | None = None):
        if preset not in PRESETS:
            raise ValueError(f"unknown augmentation preset {preset!r}; known: {', '.join(PRESETS)}")
        self.preset = preset
        self.flip = flip
        self.erasing = (0.5 if preset == "strong" else 0.0) if erasing is None else erasing

    @property
    def active(self) -> bool:
        """False when the preset changes nothing (then the caller can skip it)."""
        return self.preset != "none" or self.erasing > 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        level = PRESETS.index(self.preset)
        if level >= 3 and images.dtype == torch.uint8:
            images = trivial_augment(images)
        x = to_unit(images)
        if level >= 1:
            if self.flip:
                x = random_flip(x)
            x = random_crop(x, padding=max(2, x.shape[-1] // 8))
        if level >= 2:
            x = random_affine(x, degrees=10, translate=0.05, scale=(0.95, 1.05))
            x = random_brightness_contrast(x, brightness=0.2, contrast=0.2)
        return x

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        return random_erasing(x, p=self.erasing) if self.erasing > 0 else x
