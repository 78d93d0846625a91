import numpy as np
import torch

from lienzo.data.splits import channel_stats, stratified_split
from lienzo.data.transforms import (BatchAugment, random_crop, random_erasing, random_flip, to_unit,
                                    trivial_augment)


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


def _shapes(size: int = 12, n: int = 16) -> torch.Tensor:
    """uint8 images with a bright off-centre block on a dim gradient: no symmetry, so a flip or a shift shows."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    images += (np.arange(size, dtype=np.uint8) * 4).reshape(1, 1, 1, size)
    for i in range(n):
        top, left = rng.integers(1, size // 2, 2)
        images[i, :, top : top + 4, left : left + 3] = 200 + 5 * i % 50
    return torch.from_numpy(images)


def _crops_and_flips(image: torch.Tensor, padding: int) -> torch.Tensor:
    """Every zero-padded crop of an image and of its mirror image: what `basic` may return."""
    c, h, w = image.shape
    out = []
    for source in (image, image.flip(2)):
        padded = torch.nn.functional.pad(source, (padding,) * 4)
        out += [padded[:, dy : dy + h, dx : dx + w] for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    return torch.stack(out)


def _nearest_crop_or_flip(x: torch.Tensor, out: torch.Tensor, padding: int):
    """Per image: (is out exactly a crop/flip of x, correlation of out with the closest one)."""
    exact, correlation = [], []
    for i in range(len(x)):
        candidates = _crops_and_flips(x[i], padding).flatten(1)
        distance = (candidates - out[i].flatten()).abs().sum(1)
        best = candidates[int(distance.argmin())]
        exact.append(bool(distance.min() == 0))
        correlation.append(float(torch.corrcoef(torch.stack([best, out[i].flatten()]))[0, 1]))
    return exact, correlation


def test_preset_none_is_identity():
    images = _shapes()
    augment = BatchAugment("none")
    assert not augment.active
    assert torch.equal(augment(images), to_unit(images)) and torch.equal(augment.erase(to_unit(images)), to_unit(images))


def test_preset_basic_only_flips_and_crops_and_changes_most_images():
    images = _shapes()
    x = to_unit(images)
    out = BatchAugment("basic")(images)
    assert out.dtype == torch.float32 and out.shape == x.shape
    exact, _ = _nearest_crop_or_flip(x, out, padding=2)
    assert all(exact)  # nothing but moved pixels and zero padding
    assert sum(not torch.equal(out[i], x[i]) for i in range(len(x))) >= 12  # 1 of 50 outcomes is the identity
    mirrored = sum(any(torch.equal(out[i], c) for c in _crops_and_flips(x[i], 2)[25:]) for i in range(len(x)))
    assert 3 <= mirrored <= 13  # about half the images are mirrored
    unflipped = BatchAugment("basic", flip=False)(images)
    assert not any(any(torch.equal(unflipped[i], c) for c in _crops_and_flips(x[i], 2)[25:]) for i in range(len(x)))
    assert BatchAugment("basic", flip=False).erase(out) is out  # no erasing unless asked


def test_preset_standard_warps_and_recolours_mildly():
    images = _shapes(size=16)
    x = to_unit(images)
    out = BatchAugment("standard")(images)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    exact, correlation = _nearest_crop_or_flip(x, out, padding=2)
    assert sum(exact) <= 2  # rotation, zoom and brightness/contrast moved most images off the pixel grid
    assert min(correlation) > 0.6  # ... but mildly: each is still close to a crop or flip of its input
    ratio = out.mean((1, 2, 3)) / x.mean((1, 2, 3))
    assert float(ratio.min()) > 0.6 and float(ratio.max()) < 1.4 and float(ratio.std()) > 0.02


def test_preset_strong_adds_trivial_augment_and_erasing():
    images = _shapes(size=16, n=64)
    augment = BatchAugment("strong")
    assert augment.erasing == 0.5 and BatchAugment("strong", erasing=0.0).erasing == 0.0
    changed = trivial_augment(images, generator=torch.Generator().manual_seed(0))
    assert changed.dtype == torch.uint8 and sum(not torch.equal(a, b) for a, b in zip(changed, images)) >= 16
    out = augment(images)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    ones = torch.ones(200, 1, 16, 16)
    touched = (augment.erase(ones) == 0).flatten(1).any(1)
    assert 70 < int(touched.sum()) < 130  # p = 0.5


def test_same_seed_same_batch_and_global_generators_untouched():
    images = _shapes(size=16)
    cpu_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    for preset in ("basic", "standard", "strong"):
        first, second, other = BatchAugment(preset, erasing=0.5), BatchAugment(preset, erasing=0.5), BatchAugment(preset, erasing=0.5)
        first.reseed(123)
        second.reseed(123)
        other.reseed(124)
        a = first.erase(first(images))
        torch.manual_seed(99)  # the global generator's state does not matter ...
        b = second.erase(second(images))
        assert torch.equal(a, b), preset
        assert not torch.equal(a, other.erase(other(images))), preset
        torch.set_rng_state(cpu_state)
        first.reseed(123)  # reseeding replays the same draws
        assert torch.equal(first.erase(first(images)), a), preset
    # ... and is left as it was
    after = BatchAugment("strong")
    after.erase(after(images))
    assert torch.equal(torch.get_rng_state(), cpu_state) and np.array_equal(np.random.get_state()[1], np_state)
