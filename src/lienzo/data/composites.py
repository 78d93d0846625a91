"""RGB+mask images that every machine can make: Fashion-MNIST items, colourised, pasted onto real photos.

The GAN thesis trained on objects with their segmentation masks (COCO instances, motion-segmented video).
This is the same kind of data in miniature and offline, for `lienzo study masks`:

1. background: a square crop (side 20–40 % of the photo's short side, random position) of one of the
   photos that scikit-image and scikit-learn ship inside their packages (`PHOTOS`), resized to size×size
   with area averaging (torchvision's `roi_align`). Train and test crops come from disjoint *regions* of
   the same photos: train from the first 60 % of each photo along its long side, test from the last 40 %,
   so both splits see the same photos' colours while no background pixel is shared;
2. item: a Fashion-MNIST garment (train items for the train split, test items for the test split), scaled
   to 50–90 % of the canvas and placed at a random position (bilinear, one affine grid per item), and
   tinted with a random colour (random hue, saturation 0.35–1, value 0.65–1) times its own grey
   intensity, so its shading is kept;
3. mask: the pixels where the placed garment's intensity is above `THRESHOLD`, holes filled (a dark
   patch inside a garment is still the garment); the item replaces the crop under the mask and the crop
   is left untouched elsewhere. The mask is the fourth channel (0 or 255), the label the garment's class.

Everything is drawn from `numpy.random.default_rng([seed, split])` (row i of each split depends only on i
and the seed), so the same seed gives the same bytes.

    train, test = make_composites(n_train=20000, n_test=5000, size=32, seed=0)
    write_composites("composites.h5", train, test)            # 4 channels: RGB + mask
    write_composites("composites_rgb.h5", train, test, rgb=True)  # the RGB part alone
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lienzo.errors import ConfigError, DataError, RunError
from lienzo.data.arrays import ImageArrays
from lienzo.data.hdf5 import write_hdf5
from lienzo.data.idx import DEFAULT_ROOTS, FASHION_MNIST_CLASSES, load_idx_split

log = logging.getLogger("lienzo")

THRESHOLD = 0.1  # placed intensity (0..1) above which a pixel belongs to the garment
CROP_SIDE = (0.2, 0.4)  # background crop side, as a fraction of the photo's short side
ITEM_SCALE = (0.5, 0.9)  # garment side, as a fraction of the canvas
TRAIN_FRACTION = 0.6  # train crops lie in the first 60 % of a photo along its long side, test crops in the rest
SPLIT_STREAM = {"train": 0, "test": 1}


def _skimage(name: str):
    def load() -> np.ndarray:
        import skimage.data

        return skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()

    return load


def _sklearn(name: str):
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


# The colour photographs shipped inside the installed packages (none needs a download).
PHOTOS = {
    "skimage:astronaut": _skimage("astronaut"),
    "skimage:chelsea": _skimage("chelsea"),
    "skimage:coffee": _skimage("coffee"),
    "skimage:rocket": _skimage("rocket"),
    "skimage:motorcycle_left": _skimage("motorcycle_left"),
    "skimage:hubble_deep_field": _skimage("hubble_deep_field"),
    "sklearn:china.jpg": _sklearn("china.jpg"),
    "sklearn:flower.jpg": _sklearn("flower.jpg"),
}


def load_photos(size: int = 32) -> list[torch.Tensor]:
    """The `PHOTOS` as float 3×H×W tensors (0..255), shrunk so that their short side is at most 8·size:
    a crop then spans 1.6–3.2 output pixels per photo pixel at 32 px, enough for area averaging to
    smooth it, and building stays fast."""
    from PIL import Image

    photos = []
    for name, load in PHOTOS.items():
        try:
            array = load()
        except (OSError, ValueError, ImportError) as err:  # a trimmed install: skimage would want pooch to fetch it
            raise DataError(f"photo {name}: cannot be loaded ({err}); install scikit-image and scikit-learn "
                            "with their bundled sample images") from None
        image = Image.fromarray(np.ascontiguousarray(array[..., :3]))
        scale = 8 * size / min(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        photos.append(torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1).contiguous())
    return photos


def photo_region(height: int, width: int, split: str) -> tuple[float, float, float, float]:
    """The part (x0, y0, x1, y1, in pixels) of a height×width photo that `split`'s crops come from: the
    first `TRAIN_FRACTION` of its long side for train, the rest for test (disjoint regions)."""
    cut = TRAIN_FRACTION * max(height, width)
    if width >= height:
        return (0.0, 0.0, cut, float(height)) if split == "train" else (cut, 0.0, float(width), float(height))
    return (0.0, 0.0, float(width), cut) if split == "train" else (0.0, cut, float(width), float(height))


@dataclass
class CompositeParts:
    """The layers of n composites (their images are `images()`): crops, placed items, masks and where
    each crop came from."""

    background: torch.Tensor  # uint8 N×3×S×S: the photo crops
    item: torch.Tensor  # uint8 N×3×S×S: the tinted garments where they were placed (black elsewhere)
    mask: torch.Tensor  # bool N×S×S: the garment's pixels
    labels: torch.Tensor  # int64 N: the garment's class
    photo: torch.Tensor  # int64 N: index into PHOTOS
    boxes: torch.Tensor  # float N×4: the crop (x0, y0, x1, y1) in its photo's pixels (as load_photos shrank it)

    def images(self) -> torch.Tensor:
        """uint8 N×4×S×S: the item over the crop under the mask, the crop elsewhere, and the mask (0/255)."""
        mask = self.mask.unsqueeze(1)
        rgb = torch.where(mask, self.item, self.background)
        return torch.cat([rgb, mask.to(torch.uint8) * 255], 1)


def _crops(photos: list[torch.Tensor], draws: np.ndarray, size: int, split: str) -> tuple[torch.Tensor, ...]:
    """Background crops for the draws' rows (columns: photo, side, x, y in [0, 1)), resized to size×size."""
    from torchvision.ops import roi_align

    n = len(draws)
    photo = torch.from_numpy((draws[:, 0] * len(photos)).astype(np.int64))
    boxes = torch.zeros(n, 4, dtype=torch.float64)
    out = torch.zeros(n, 3, size, size)
    for p, image in enumerate(photos):
        index = (photo == p).nonzero().flatten()
        if not len(index):
            continue
        height, width = image.shape[1:]
        x0, y0, x1, y1 = photo_region(height, width, split)
        d = torch.from_numpy(draws[index.numpy()])
        side = (CROP_SIDE[0] + (CROP_SIDE[1] - CROP_SIDE[0]) * d[:, 1]) * min(height, width)
        left = x0 + d[:, 2] * (x1 - x0 - side)
        top = y0 + d[:, 3] * (y1 - y0 - side)
        boxes[index] = torch.stack([left, top, left + side, top + side], 1)
        rois = torch.cat([torch.zeros(len(index), 1, dtype=torch.float64), boxes[index]], 1).float()
        # aligned=True: pixel i covers [i, i+1); sampling_ratio=0: ceil(side/size)² samples averaged per pixel
        out[index] = roi_align(image.unsqueeze(0), rois, size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
    return out.round().clamp(0, 255).to(torch.uint8), photo, boxes


def place_items(garments: torch.Tensor, draws: np.ndarray, size: int) -> torch.Tensor:
    """Grey garments (uint8 N×H×W) scaled and moved onto a size×size canvas (columns: scale, x, y in
    [0, 1)); float N×S×S intensities in 0..1, 0 outside the garment's square."""
    d = torch.from_numpy(draws).float()
    scale = ITEM_SCALE[0] + (ITEM_SCALE[1] - ITEM_SCALE[0]) * d[:, 0]
    left, top = d[:, 1] * (1 - scale), d[:, 2] * (1 - scale)  # canvas fractions of the garment's corner
    theta = torch.zeros(len(d), 2, 3)
    # canvas coordinate u ∈ [-1, 1] → garment coordinate (u + 1 - 2·corner) / scale - 1
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, 0, 2] = (1 - 2 * left) / scale - 1
    theta[:, 1, 2] = (1 - 2 * top) / scale - 1
    grid = F.affine_grid(theta, [len(d), 1, size, size], align_corners=False)
    placed = F.grid_sample(garments.unsqueeze(1).float() / 255, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return placed.squeeze(1).clamp(0, 1)


def item_masks(intensity: torch.Tensor) -> torch.Tensor:
    """Pixels above THRESHOLD with the holes filled, per image (the structure links no two images)."""
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    return torch.from_numpy(ndimage.binary_fill_holes((intensity > THRESHOLD).numpy(), structure=structure))


def _tints(draws: np.ndarray) -> torch.Tensor:
    """RGB tints (float N×3 in 0..1) from columns hue, saturation, value in [0, 1)."""
    from matplotlib.colors import hsv_to_rgb

    hsv = np.stack([draws[:, 0], 0.35 + 0.65 * draws[:, 1], 0.65 + 0.35 * draws[:, 2]], 1)
    return torch.from_numpy(hsv_to_rgb(hsv)).float()


def composite_parts(garments: ImageArrays, photos: list[torch.Tensor], n: int, size: int, seed: int,
                    split: str) -> CompositeParts:
    """n composites of `split` from its garments (grey Fashion-MNIST arrays) and `photos` (load_photos)."""
    if n > len(garments):
        raise ConfigError(f"{n} {split} composites asked for, but the {split} split has {len(garments)} "
                          "garments (each is used once): ask for fewer")
    rng = np.random.default_rng([seed, SPLIT_STREAM[split]])
    chosen = torch.from_numpy(rng.permutation(len(garments))[:n])
    draws = rng.random((n, 10))  # photo, side, x, y | scale, x, y | hue, saturation, value
    background, photo, boxes = _crops(photos, draws[:, :4], size, split)
    intensity = place_items(garments.images[chosen, 0], draws[:, 4:7], size)
    mask = item_masks(intensity)
    tinted = intensity.unsqueeze(1) * _tints(draws[:, 7:]).view(n, 3, 1, 1)
    item = (tinted * 255).round().to(torch.uint8) * mask.unsqueeze(1)
    return CompositeParts(background, item, mask, garments.labels[chosen], photo, boxes)


def make_composites(fashion_root: str | Path | None = None, n_train: int = 20000, n_test: int = 5000,
                    size: int = 32, seed: int = 0) -> tuple[ImageArrays, ImageArrays]:
    """Train and test RGB+mask composites (uint8 N×4×size×size, Fashion-MNIST's classes); see the module."""
    if size < 8:
        raise ConfigError(f"composite size {size} is too small: use 8 pixels or more (32 is the study's)")
    root = fashion_root or DEFAULT_ROOTS["fashion_mnist"]
    photos = load_photos(size)
    result = []
    for split, n in (("train", n_train), ("test", n_test)):
        garments = load_idx_split(root, split, FASHION_MNIST_CLASSES, "fashion_mnist")
        parts = composite_parts(garments, photos, n, size, seed, split)
        result.append(ImageArrays(parts.images(), parts.labels, list(FASHION_MNIST_CLASSES)))
    log.info("made %d train and %d test composites of %d px on %d photos", n_train, n_test, size, len(photos))
    return result[0], result[1]


def rgb_part(arrays: ImageArrays) -> ImageArrays:
    """The composites without their mask channel."""
    return ImageArrays(arrays.images[:, :3].contiguous(), arrays.labels, arrays.class_names, arrays.paths)


def write_composites(path: str | Path, train: ImageArrays, test: ImageArrays, rgb: bool = False) -> Path:
    """Write `train` and `test` groups (the layout `data.name: hdf5` reads) atomically; `rgb` drops the
    mask channel. An existing file is an error: nothing is overwritten."""
    path = Path(path)
    if path.exists():
        raise RunError(f"{path} exists; choose a new output")
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    for group, arrays in (("train", train), ("test", test)):
        arrays = rgb_part(arrays) if rgb else arrays
        write_hdf5(partial, arrays.images.permute(0, 2, 3, 1).numpy(), arrays.labels.numpy(), arrays.class_names,
                   group)
    os.replace(partial, path)
    return path
