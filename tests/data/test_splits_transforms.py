import numpy as np
import torch

from lienzo.data.splits import channel_stats, stratified_split
from lienzo.data.transforms import BatchAugment, normalize, random_crop, random_erasing, random_flip, to_unit


def test_stratified_split_is_seeded_and_keeps_proportions():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep, held = stratified_split(labels, 0.1, seed=1)
    assert sorted(torch.bincount(labels[held]).tolist()) == [2, 3, 5]
    assert len(set(keep.tolist()) & set(held.tolist())) == 0 and len(keep) + len(held) == 100
    assert torch.equal(held, stratified_split(labels, 0.1, seed=1)[1])
    assert not torch.equal(held, stratified_split(labels, 0.1, seed=2)[1])


def test_channel_stats_match_numpy():
    images = torch.randint(0, 256, (50, 3, 7, 5), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=16)
    array = images.numpy().astype(np.float64) / 255
    assert np.allclose(mean, array.mean(axis=(0, 2, 3))) and np.allclose(std, array.std(axis=(0, 2, 3)))


def test_flip_and_crop_move_pixels_without_changing_them():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    flipped = random_flip(x)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    cropped = random_crop(x, padding=2)
    assert cropped.shape == x.shape
    # every output pixel is either zero padding or some input pixel of the same image
    for i in range(4):
        values = set(x[i].flatten().tolist()) | {0.0}
        assert set(cropped[i].flatten().tolist()) <= values
    assert torch.equal(random_crop(x, padding=0), x)


def test_erasing_zeroes_rectangles_in_some_images():
    torch.manual_seed(0)
    x = torch.ones(200, 1, 16, 16)
    erased = random_erasing(x, p=0.5)
    touched = (erased == 0).flatten(1).any(1)
    assert 70 < int(touched.sum()) < 130
    zero_rows = (erased[touched] == 0).any(3).sum(2).squeeze(1)
    zero_area = (erased[touched] == 0).sum((1, 2, 3))
    zero_cols = zero_area // zero_rows
    assert bool((zero_rows * zero_cols == zero_area).all())  # rectangles


def test_presets_shapes_ranges_and_none_is_identity():
    images = torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8)
    assert torch.equal(BatchAugment("none")(images), to_unit(images))
    for preset in ("basic", "standard", "strong"):
        out = BatchAugment(preset)(images)
        assert out.shape == (16, 3, 12, 12) and out.dtype == torch.float32
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    x = normalize(torch.full((2, 1, 3, 3), 0.5), [0.25], [0.5])
    assert torch.allclose(x, torch.full_like(x, 0.5))
