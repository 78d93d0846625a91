"""Decoding image files of any size and mode into uint8 C×H×W tensors, consistently."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lienzo.errors import ConfigError, DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    """L, RGB, RGBA, LA, P, 16-bit (I;16, I) and CMYK to L (channels=1), RGB (channels=3) or RGBA (channels=4).

    For 1 and 3, transparency is composited over white: clip-art and icons are drawn on a transparent
    background that the artist saw as paper. With 4 the fourth channel (alpha, a mask) is kept as it is.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / (top or 1.0)), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if channels == 4:
        return image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def load_image(path: str | Path, channels: int = 3, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image file as a uint8 C×H×W tensor (C = channels: 1, 3 or 4); resize to size=(H, W) with
    area-like (box) filtering."""
    if channels not in (1, 3, 4):  # a ConfigError, so that readers that skip bad files do not skip them all
        raise ConfigError(f"cannot decode image files to {channels} channels (1: grey, 3: RGB, 4: RGBA)")
    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image = _to_mode(image, channels)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BOX if image.width > size[1] else Image.Resampling.BILINEAR)
            # a copy: np.asarray would be a read-only view of PIL's buffer, and torch.from_numpy warns on those
            array = np.array(image, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{path}: not a readable image ({err.__class__.__name__})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def image_mode_channels(path: Path) -> int | None:
    """1 for grey images, 3 for anything with colour, None for a file that is not a readable image."""
    try:
        with Image.open(path) as image:
            return 1 if image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
    except Exception:  # PIL raises many types on bad files; load_image reports them properly
        return None


def warn_skipped(skipped: list[tuple[Path, str]], where: str) -> None:
    if skipped:
        names = ", ".join(str(p) for p, _ in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(f"{where}: skipped {len(skipped)} unreadable file(s): {names}", stacklevel=3)
