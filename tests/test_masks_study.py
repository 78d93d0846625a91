"""The RGB+mask composites (lienzo.data.composites) and `lienzo study masks`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lienzo.data.arrays import ImageArrays
from lienzo.data.composites import (PHOTOS, THRESHOLD, item_masks, place_items, composite_parts, load_photos,
                                    make_composites, photo_region, write_composites)
from lienzo.data.hdf5 import load_hdf5
from lienzo.data.idx import FASHION_MNIST_CLASSES, load_idx_split
from lienzo.errors import ConfigError, RunError
from lienzo.tasks.generate.study import MasksStudySettings, direction, ema_decay, format_table, gan_values, masks_study
from lienzo.runs import read_json

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos():
    return load_photos(32)


@pytest.fixture(scope="module")
def garments(fashion_root):
    return {split: load_idx_split(fashion_root, split, FASHION_MNIST_CLASSES) for split in ("train", "test")}


@pytest.fixture(scope="module")
def parts(garments, photos):
    return composite_parts(garments["train"], photos, 400, 32, 0, "train")


def test_same_seed_same_bytes_other_seed_other_bytes(fashion_root):
    a_train, a_test = make_composites(fashion_root, 60, 40, seed=3)
    b_train, b_test = make_composites(fashion_root, 60, 40, seed=3)
    c_train, _ = make_composites(fashion_root, 60, 40, seed=4)
    assert a_train.images.shape == (60, 4, 32, 32) and a_test.images.shape == (40, 4, 32, 32)
    assert a_train.images.numpy().tobytes() == b_train.images.numpy().tobytes()
    assert a_test.images.numpy().tobytes() == b_test.images.numpy().tobytes()
    assert torch.equal(a_train.labels, b_train.labels)
    assert (a_train.images != c_train.images).float().mean() > 0.5  # a new seed: new crops, garments, colours


def test_rows_depend_only_on_their_index_and_seed(garments, photos):
    small = composite_parts(garments["test"], photos, 10, 32, 0, "test")
    large = composite_parts(garments["test"], photos, 30, 32, 0, "test")
    assert torch.equal(small.images(), large.images()[:10])


def test_mask_is_0_or_255_and_the_item_replaces_the_crop_only_under_it(parts):
    images = parts.images()
    mask = images[:, 3]
    assert set(torch.unique(mask).tolist()) == {0, 255}
    assert torch.equal(mask == 255, parts.mask)
    under = parts.mask.unsqueeze(1).expand(-1, 3, -1, -1)
    rgb = images[:, :3]
    assert torch.equal(rgb[~under], parts.background[~under])  # outside: the photo crop, untouched
    assert torch.equal(rgb[under], parts.item[under])  # inside: the tinted garment
    differs = (rgb != parts.background).any(1)[parts.mask].float().mean()
    assert differs > 0.98  # a garment pixel equal to the crop's on all three channels is a rare coincidence
    covered = parts.mask.flatten(1).float().mean(1)
    assert covered.min() > 0.02 and covered.max() < 0.9  # every image has an item, none covers the canvas


def test_labels_are_the_garments_classes(parts, garments):
    assert parts.labels.dtype == torch.int64
    assert 0 <= int(parts.labels.min()) and int(parts.labels.max()) < 10
    assert len(torch.unique(parts.labels)) == 10  # 400 random garments cover the 10 classes
    assert np.isin(parts.labels.numpy(), garments["train"].labels.numpy()).all()


def test_placing_a_white_square_at_half_scale_in_the_corner():
    # scale 0.5 at corner (0, 0) on a 32-pixel canvas: the 28-pixel square covers canvas pixels 0..15 exactly
    square = torch.full((1, 28, 28), 255, dtype=torch.uint8)
    placed = place_items(square, np.array([[0.0, 0.0, 0.0]]), 32)[0]
    assert torch.allclose(placed[:16, :16], torch.ones(16, 16))
    assert placed[16:].max() == 0 and placed[:, 16:].max() == 0
    # scale 0.9, far corner: the square spans canvas pixels 3.2..32; pixel 31's centre falls on garment
    # coordinate ((31.5/32 - 0.1)/0.9)·28 - 0.5 = 27.014, blended with the zero padding by 0.014 per axis
    placed = place_items(square, np.array([[1.0, 1.0, 1.0]]), 32)[0]
    edge = 1 - (((31.5 / 32 - 0.1) / 0.9) * 28 - 0.5 - 27)
    assert placed[31, 31].item() == pytest.approx(edge**2, abs=1e-4)
    assert placed[4:31, 4:31].min() > 1 - 1e-6 and placed[:3].max() == 0 and placed[:, :3].max() == 0


def test_mask_fills_holes_and_keeps_images_apart():
    ring = torch.zeros(2, 10, 10)
    ring[0, 2:8, 2:8] = 1.0
    ring[0, 4:6, 4:6] = 0.0  # a dark patch inside the garment
    ring[1, 0:3, 0:3] = THRESHOLD  # at the threshold: not the garment
    masks = item_masks(ring)
    expected = torch.zeros(2, 10, 10, dtype=torch.bool)
    expected[0, 2:8, 2:8] = True
    assert torch.equal(masks, expected)


def test_train_and_test_crops_come_from_disjoint_regions(garments, photos):
    splits = {s: composite_parts(garments[s], photos, 300, 32, 0, s) for s in ("train", "test")}
    for p, image in enumerate(photos):
        height, width = image.shape[1:]
        regions = {s: photo_region(height, width, s) for s in splits}
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = regions["train"], regions["test"]
        assert min(ax1, bx1) <= max(ax0, bx0) or min(ay1, by1) <= max(ay0, by0)  # the regions do not overlap
        for s, part in splits.items():
            boxes = part.boxes[part.photo == p]
            assert len(boxes), f"no {s} crop from photo {p}"
            x0, y0, x1, y1 = regions[s]
            assert (boxes[:, 0] >= x0).all() and (boxes[:, 1] >= y0).all()
            assert (boxes[:, 2] <= x1 + 1e-6).all() and (boxes[:, 3] <= y1 + 1e-6).all()
    assert len(photos) == len(PHOTOS) == 8


def test_composites_file_round_trip_and_its_rgb_twin(tmp_path, parts):
    arrays = ImageArrays(parts.images(), parts.labels, list(FASHION_MNIST_CLASSES))
    head = arrays.subset(range(100))
    path = write_composites(tmp_path / "c.h5", arrays, head)
    train, test = load_hdf5(path, "train"), load_hdf5(path, "test")
    assert torch.equal(train.images, arrays.images) and torch.equal(test.images, head.images)
    assert train.class_names == list(FASHION_MNIST_CLASSES)
    rgb = load_hdf5(write_composites(tmp_path / "rgb.h5", arrays, head, rgb=True), "train")
    assert torch.equal(rgb.images, arrays.images[:, :3])
    with pytest.raises(RunError, match="exists"):
        write_composites(path, arrays, head)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5", "rgb.h5"]  # no partial file left


def test_more_composites_than_garments_is_an_error(garments, photos):
    few = garments["test"].subset(range(5))
    with pytest.raises(ConfigError, match="6 test composites.*5 garments"):
        composite_parts(few, photos, 6, 32, 0, "test")


# -- lienzo study masks --------------------------------------------------------------------------------

def _row(fid, is_mean, is_std, kid, kid_std):
    return {"fid": fid, "is_mean": is_mean, "is_std": is_std, "kid_mean": kid, "kid_std": kid_std}


def test_direction_says_which_way_each_metric_went_and_whether_beyond_noise():
    rgb = _row(40.0, 3.0, 0.1, 0.030, 0.002)
    helped = direction(rgb, _row(35.0, 3.5, 0.1, 0.020, 0.002))
    assert helped["mask_lowers_fid"] and helped["mask_raises_is"] and helped["mask_lowers_kid"]
    assert helped["fid_gap"] == -5.0 and helped["is_gap"] == 0.5 and helped["is_gap_beyond_std"]
    assert helped["verdict"] == "the mask helped: lower FID and KID, higher IS"
    worse = direction(rgb, _row(45.0, 2.95, 0.1, 0.031, 0.002))
    assert worse["verdict"] == ("the mask did not help: higher FID and KID, lower IS "
                                "(the IS and KID gaps are within their std: not conclusive)")
    mixed = direction(rgb, _row(38.0, 2.5, 0.1, 0.040, 0.002))
    assert mixed["verdict"] == "mixed: FID better with the mask, IS worse with the mask, KID worse with the mask"


def test_ema_horizon_is_a_tenth_of_short_runs_and_the_papers_for_long_ones():
    assert ema_decay(1200) == 0.9917 and ema_decay(100) == 0.9 and ema_decay(100_000) == 0.999
    assert ema_decay(4) == 0.0  # a tiny run: the average is the generator itself


def test_preset_is_the_studys_rgb_mask_arm():
    preset = yaml.safe_load((REPO / "configs" / "gan_study_masks.yaml").read_text())
    built = gan_values(MasksStudySettings(), Path("runs/study_masks/composites.h5"), 4, "runs/study_masks/scorer",
                       Path("runs"), "x")
    built["trainer"].pop("progress")
    built.pop("run")
    assert preset == built


@pytest.mark.slow
def test_tiny_study_table_files_and_sanity(tmp_path, fashion_root):
    settings = MasksStudySettings(n_train=600, n_test=200, scorer_epochs=1, maps=16, steps=4, steps_per_epoch=2,
                                  critic_batch=32, generator_batch=32, eval_samples=100)
    study = masks_study(tmp_path / "study", settings, fashion_root=str(fashion_root), progress=False)
    work = Path(study["dir"])
    assert work == tmp_path / "study"
    names = [r["name"] for r in study["rows"]]
    assert names[0].startswith("real composites") and names[1].startswith("untrained")
    assert [r["channels"] for r in study["rows"]] == [3, 3, 3, 4]
    for row in study["rows"]:
        assert row["is_mean"] >= 1.0 - 1e-6 and row["fid"] >= 0.0 and row["samples"] == 100
    real, untrained, rgb, mask = study["rows"]
    assert real["fid"] < untrained["fid"] and real["fid"] < rgb["fid"] and real["fid"] < mask["fid"]
    checks = study["checks"]
    assert checks["mask_lowers_fid"] == (mask["fid"] < rgb["fid"])
    assert checks["fid_gap"] == pytest.approx(mask["fid"] - rgb["fid"])
    # the files: composites with and without the mask, the scorer, both runs, the three tables
    assert load_hdf5(work / "composites.h5", "train").images.shape == (600, 4, 32, 32)
    assert load_hdf5(work / "composites_rgb.h5", "test").images.shape == (200, 3, 32, 32)
    assert (work / "scorer" / "checkpoints" / "best.ckpt").is_file()
    for run, channels in (("gan_rgb", 3), ("gan_rgbmask", 4)):
        assert read_json(work / run / "metrics.json")["input_shape"] == [channels, 32, 32]
    assert len(study["grids"]["real"]) == 3 and len(study["grids"]["gan_rgb"]) == 1
    assert len(study["grids"]["gan_rgbmask"]) == 3
    assert all((work / p).is_file() for paths in study["grids"].values() for p in paths)
    page = (work / "study.html").read_text()
    assert all(p in page for p in study["grids"]["gan_rgbmask"]) and checks["verdict"] in page
    assert (work / "study.md").read_text() == format_table(read_json(work / "study.json"))
    assert f"| {rgb['name']} | 3 | {rgb['is_mean']:.2f} ± {rgb['is_std']:.2f} | {rgb['fid']:.2f} |" in format_table(study)


def test_cli_bad_scorer_and_steps_exit_2_before_anything_is_made(tmp_path, capsys):
    from lienzo.cli import main

    assert main(["study", "masks", "--scorer", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 2
    assert "nope: run folder not found" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["study", "masks", "--steps", "0"])
    assert exit_.value.code == 2 and "--steps: must be at least 1" in capsys.readouterr().err
