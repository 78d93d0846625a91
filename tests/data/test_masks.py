"""RGB+mask datasets: COCO instances (polygon, RLE, uncompressed RLE, crowd, area threshold) and image/mask
folders (the motion-mask heuristics), on tiny files the tests write and masks drawn by hand."""

import json
import warnings

import h5py
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from lienzo.cli import main
from lienzo.data.hdf5 import load_hdf5
from lienzo.curate.masks import coco_masks, group_split, mask_pairs, square_sample
from lienzo.errors import ConfigError, DataError, RunError
from tests.helpers import write_png

SIZE = 16  # the tests' output side: every source is 32 px on its short side, so one output pixel is 2×2


def _blocks(rng, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows×cols×3 colours, the same at twice the size): an image whose 2×2 area average is exact."""
    colours = rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8)
    return colours, colours.repeat(2, axis=0).repeat(2, axis=1)


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (iscrowd annotations use it): run lengths in column-major order, zeros first."""
    flat = mask.flatten(order="F")
    bounds = [0, *(np.flatnonzero(np.diff(flat)) + 1).tolist(), len(flat)]
    runs = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": ([0] if flat[0] else []) + runs}


def _drawn_mask() -> tuple[np.ndarray, np.ndarray]:
    """(a 32×32 mask drawn by hand, what it is at 16×16 under the at-least-half rule)."""
    drawn = np.zeros((32, 32), np.uint8)
    drawn[0:16, :] = 1     # the top half: output rows 0..7
    drawn[16:20, 0:8] = 1  # output rows 8..9, columns 0..3
    drawn[20, 8:10] = 1    # half of output pixel (10, 4): in
    drawn[22, 12] = 1      # a quarter of output pixel (11, 6): out
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[0:8, :] = 255
    expected[8:10, 0:4] = 255
    expected[10, 4] = 255
    return drawn, expected


def _square(x0, y0, x1, y1) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture
def coco(tmp_path):
    """A COCO instances file over three images (one missing) and what coco_masks must make of it."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    # 1: 40 wide, 32 high; its centre square is columns 4..35, in 2×2 blocks; the columns cropped off are noise
    colours, doubled = _blocks(rng, 16, 16)
    wide = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    wide[:, 4:36] = doubled
    write_png(folder / "wide.png", wide)
    # 2: a flat colour, as a JPEG
    folder.mkdir(exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), (200, 100, 50), np.uint8)).save(folder / "flat.jpg", quality=95)
    drawn, drawn_expected = _drawn_mask()
    rle = mask_utils.encode(np.asfortranarray(drawn))
    rle["counts"] = rle["counts"].decode()
    dataset = {
        "images": [{"id": 1, "file_name": "wide.png", "width": 40, "height": 32},
                   {"id": 2, "file_name": "flat.jpg", "width": 32, "height": 32},
                   {"id": 3, "file_name": "gone.png", "width": 32, "height": 32}],
        "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}, {"id": 2, "name": "kite"}],
        "annotations": [
            # pixels 8..23 both ways: columns 4..19 of the square, output rows 4..11 and columns 2..9
            {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": _square(8, 8, 24, 24)},
            {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": _square(30, 0, 34, 4)},
            # 6×32 pixels, 0.19 of the image's square, but the crop keeps columns 4..5 only: 0.06
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": _square(0, 0, 6, 32)},
            {"id": 20, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": rle},
            {"id": 21, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": _uncompressed_rle(drawn)},
            {"id": 22, "image_id": 2, "category_id": 3, "iscrowd": 1,
             "segmentation": _uncompressed_rle(np.ones((32, 32), np.uint8))},
            {"id": 23, "image_id": 2, "category_id": 2, "iscrowd": 0, "segmentation": _square(0, 0, 32, 32)},
            {"id": 30, "image_id": 3, "category_id": 2, "iscrowd": 0, "segmentation": _square(0, 0, 32, 32)},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(dataset))
    polygon = np.zeros((SIZE, SIZE), np.uint8)
    polygon[4:12, 2:10] = 255
    return {"json": path, "images": folder, "dataset": dataset, "colours": colours, "polygon": polygon,
            "drawn": drawn_expected}


def test_coco_masks_polygon_rle_crowd_and_area(coco, tmp_path):
    out = tmp_path / "coco.h5"
    with pytest.warns(UserWarning, match=r"skipped 1 listed image\(s\) missing or unreadable: gone.png"):
        result = coco_masks(coco["json"], coco["images"], out, size=SIZE, progress=False)
    assert result == {"counts": {"cat": 2, "kite": 1, "dog": 1},
                      "removed": {"crowd": 1, "other_category": 0, "no_mask": 0, "small": 2, "missing_image": 1}}
    data = load_hdf5(out, "train")
    assert data.class_names == ["cat", "kite", "dog"]  # category-id order
    assert data.labels.tolist() == [2, 0, 0, 1]  # instances 10, 20, 21, 23: image, then annotation id
    images = data.images.permute(0, 2, 3, 1).numpy()
    assert images.shape == (4, SIZE, SIZE, 4)
    assert np.array_equal(images[0, :, :, :3], coco["colours"])  # the centre square, area-averaged
    assert np.array_equal(images[0, :, :, 3], coco["polygon"])
    assert np.array_equal(images[1, :, :, 3], coco["drawn"])  # compressed RLE
    assert np.array_equal(images[2, :, :, 3], coco["drawn"])  # uncompressed RLE
    assert (images[3, :, :, 3] == 255).all()
    assert np.abs(images[1, :, :, :3].astype(int) - [200, 100, 50]).max() <= 3  # the JPEG, decoded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.h5", "images", "instances.json"]  # no partial file
    with pytest.raises(RunError, match="exists"):
        coco_masks(coco["json"], coco["images"], out, size=SIZE, progress=False)


def test_coco_masks_categories_keep_those_in_id_order(coco, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gone.png holds a kite only: not read, not missed
        result = coco_masks(coco["json"], coco["images"], tmp_path / "pets.h5", size=SIZE, categories=["dog", "cat"],
                            progress=False)
    assert result["counts"] == {"cat": 2, "dog": 1} and result["removed"]["other_category"] == 2  # kite 23 and 30
    data = load_hdf5(tmp_path / "pets.h5", "train")
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [1, 0, 0]
    # a lower threshold lets the instance the crop cut down in (0.0625 of the square), not the 16-pixel one
    with pytest.warns(UserWarning):
        low = coco_masks(coco["json"], coco["images"], tmp_path / "low.h5", size=SIZE, min_area=0.06, progress=False)
    assert low["counts"] == {"cat": 3, "kite": 1, "dog": 1} and low["removed"]["small"] == 1


def _rewrite(coco, tmp_path, change) -> str:
    dataset = json.loads(json.dumps(coco["dataset"]))
    change(dataset)
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(dataset))
    return path


def test_coco_masks_bad_input(coco, tmp_path):
    def run(annotations, **kw):
        return coco_masks(annotations, coco["images"], tmp_path / "x.h5", size=SIZE, progress=False, **kw)

    (tmp_path / "notes.json").write_text("these are not annotations")
    with pytest.raises(DataError, match="notes.json: not a JSON file"):
        run(tmp_path / "notes.json")
    (tmp_path / "list.json").write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(DataError, match="list.json: not a COCO instances file \\(no 'annotations' list"):
        run(tmp_path / "list.json")
    with pytest.raises(DataError, match="gone.png: listed in the annotations but missing"):
        run(coco["json"], strict=True)
    with pytest.raises(DataError, match="no category 'dgo' \\(did you mean dog\\?\\)"):
        run(coco["json"], categories=["dgo"])
    with pytest.raises(DataError, match=r"no instance covers at least 0.5 of its image \(left out: crowd 1, "
                                        r"other_category 5, small 2\); lower --min-area"):
        run(coco["json"], categories=["dog"], min_area=0.5)
    taller = _rewrite(coco, tmp_path, lambda d: d["images"][1].update(height=30))
    with pytest.raises(DataError, match="flat.jpg: image is 32x32 but the annotations give 32x30"):
        run(taller)
    nameless = _rewrite(coco, tmp_path, lambda d: d["images"][2].pop("file_name"))
    with pytest.raises(DataError, match="not a COCO instances file \\('images' entry 2 has no 'file_name'\\)"):
        run(nameless)
    stray = _rewrite(coco, tmp_path, lambda d: d["annotations"][0].update(image_id=99))
    with pytest.raises(DataError, match="annotation 10 is on image 99"):
        run(stray)
    with pytest.raises(ConfigError, match="name it with .h5"):
        coco_masks(coco["json"], coco["images"], tmp_path / "x.png", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_coco_masks_cli(coco, tmp_path, capsys):
    with pytest.warns(UserWarning):
        code = main(["curate", "coco-masks", str(coco["json"]), str(coco["images"]), "--size", str(SIZE),
                     "--categories", "kite", "--no-progress", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["counts"] == {"kite": 1} and printed["total"] == 1
    assert printed["removed"]["missing_image"] == 1
    assert printed["out"] == str(tmp_path / f"instances_masks{SIZE}.h5")  # beside the annotations
    assert load_hdf5(tmp_path / f"instances_masks{SIZE}.h5", "train").images.shape == (1, 4, SIZE, SIZE)
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["curate", "coco-masks", str(tmp_path / "bad.json"), str(coco["images"]), "--out",
                 str(tmp_path / "b.h5")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lienzo: error")]
    assert err == [(f"lienzo: error: {tmp_path / 'bad.json'}: not a COCO instances file (no 'images' list; COCO's "
                    "instances_*.json have 'images', 'annotations' and 'categories')")]


def test_square_sample_crops_tall_images_at_the_centre():
    rng = np.random.default_rng(1)
    colours, doubled = _blocks(rng, 4, 4)
    tall = rng.integers(0, 256, (12, 8, 3), dtype=np.uint8)  # rows 2..9 are the centre square
    tall[2:10] = doubled
    mask = np.zeros((12, 8), bool)
    mask[0:2] = True  # cropped off
    mask[2:4, 0:2] = True
    sample = square_sample(tall, mask, 4)
    assert np.array_equal(sample[:, :, :3], colours)
    assert sample[:, :, 3].tolist() == [[255, 0, 0, 0]] + [[0] * 4] * 3


# ---- image + mask folders ----------------------------------------------------------------------------------

def _mask(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[rows, cols] = 255
    return mask


@pytest.fixture
def pairs(tmp_path):
    """One image + mask pair per filter outcome; returns {name: (rgb, mask as stored)} of the kept ones."""
    rng = np.random.default_rng(2)
    images, masks = tmp_path / "images", tmp_path / "masks"
    rgb = {}

    def pair(name, mask, save=None):
        rgb[name] = write_png(images / f"{name}.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        (masks / name).parent.mkdir(parents=True, exist_ok=True)
        (save or (lambda path: write_png(path.with_suffix(".png"), mask)))(masks / name)

    pair("v1/ok", _mask(slice(4, 12), slice(4, 12)))  # 64 px, 0.25, none on the frame; in a sub-folder
    edge = _mask(slice(0, 8), slice(4, 12))  # 8 of its 64 pixels on the frame: 0.125 <= 0.2
    pair("edge", edge, lambda path: Image.fromarray(edge).save(path.with_suffix(".jpg"), quality=95))
    pair("small", None, lambda path: Image.fromarray(_mask(slice(6, 8), slice(6, 8)) > 0).save(path.with_suffix(".png")))
    pair("large", _mask(slice(1, 15), slice(1, 15)))  # 196 px: 0.77
    pair("cut", _mask(slice(0, 4), slice(0, 8)))  # 32 px, 11 on the frame: 0.34
    palette = Image.frombytes("P", (SIZE, SIZE), (_mask(slice(6, 14), slice(2, 10)) > 0).astype(np.uint8).tobytes())
    palette.putpalette([0, 0, 0, 128, 0, 0])  # DAVIS's dark red: grey 38, foreground by its index
    pair("palette", None, lambda path: palette.save(path.with_suffix(".png")))
    noisy = _mask(slice(4, 10), slice(4, 10))
    noisy[10, 10] = 255  # touches the square at a corner: the same region
    noisy[12:14, 1:3] = 255  # another region
    pair("noisy", noisy)
    write_png(images / "lonely.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    write_png(masks / "stray.png", np.zeros((SIZE, SIZE), np.uint8))
    return {"images": images, "masks": masks, "noisy": noisy, "edge": edge,
            "palette": _mask(slice(6, 14), slice(2, 10)), "ok": _mask(slice(4, 12), slice(4, 12)),
            "rgb": {name: np.asarray(Image.open(path)) for name, path in rgb.items()}}


def test_mask_pairs_filters_count_each_reason(pairs, tmp_path):
    result = mask_pairs(pairs["images"], pairs["masks"], tmp_path / "motion.h5", size=SIZE, progress=False)
    assert result == {"counts": {"object": 4},
                      "removed": {"small_foreground": 1, "large_foreground": 1, "on_border": 1, "unpaired_images": 1,
                                  "unpaired_masks": 1}}
    data = load_hdf5(tmp_path / "motion.h5", "train")
    assert data.class_names == ["object"] and data.labels.tolist() == [0] * 4
    images = data.images.permute(0, 2, 3, 1).numpy()
    kept = ["edge", "noisy", "palette", "v1/ok"]  # sorted by name
    for i, name in enumerate(kept):
        assert np.array_equal(images[i, :, :, :3], pairs["rgb"][name]), name
        assert np.array_equal(images[i, :, :, 3], pairs[name.split("/")[-1]]), name
    # only the largest region: the corner-touching pixel stays, the separate 2×2 goes
    largest = mask_pairs(pairs["images"], pairs["masks"], tmp_path / "largest.h5", size=SIZE, largest_component=True,
                         label="person", progress=False)
    assert largest["counts"] == {"person": 4}
    expected = pairs["noisy"].copy()
    expected[12:14, 1:3] = 0
    assert np.array_equal(load_hdf5(tmp_path / "largest.h5", "train").images[1, 3].numpy(), expected)
    # the thresholds are inclusive and move the counts as computed by hand
    tight = mask_pairs(pairs["images"], pairs["masks"], tmp_path / "tight.h5", size=SIZE, min_fg=0.25, max_fg=0.25,
                       max_border=0.1, progress=False)
    assert tight["counts"] == {"object": 2}  # ok and palette: 64 px each, none on the frame
    assert tight["removed"]["small_foreground"] == 3 and tight["removed"]["on_border"] == 1  # small, cut, noisy; edge


def test_mask_pairs_bad_input(pairs, tmp_path):
    write_png(tmp_path / "odd" / "images" / "a.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    write_png(tmp_path / "odd" / "masks" / "a.png", np.zeros((SIZE, SIZE - 4), np.uint8))
    with pytest.raises(DataError, match=r"masks/a.png: mask is 12x16 but its image .*images/a.png is 16x16"):
        mask_pairs(tmp_path / "odd" / "images", tmp_path / "odd" / "masks", tmp_path / "o.h5", progress=False)
    with pytest.raises(DataError, match="no image in .* has a mask of the same name"):
        mask_pairs(pairs["images"], tmp_path / "odd" / "masks", tmp_path / "o.h5", progress=False)
    with pytest.raises(DataError, match="no mask passed the filters \\(small_foreground 7, unpaired_images 1, "
                                        "unpaired_masks 1\\)"):
        mask_pairs(pairs["images"], pairs["masks"], tmp_path / "o.h5", size=SIZE, min_fg=0.8, max_fg=1, progress=False)
    with pytest.raises(ConfigError, match="min_fg 0.5 is above max_fg 0.4"):
        mask_pairs(pairs["images"], pairs["masks"], tmp_path / "o.h5", min_fg=0.5, max_fg=0.4)
    write_png(pairs["masks"] / "edge.png", pairs["edge"])  # beside edge.jpg
    with pytest.raises(DataError, match="edge.jpg and .*edge.png have one name"):
        mask_pairs(pairs["images"], pairs["masks"], tmp_path / "o.h5", progress=False)
    assert not (tmp_path / "o.h5").exists()


def test_mask_pairs_cli(pairs, tmp_path, capsys):
    code = main(["curate", "mask-pairs", str(pairs["images"]), str(pairs["masks"]), "--size", str(SIZE),
                 "--max-border", "0.1", "--largest-component", "--no-progress"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split() for line in lines[:-1]] == [
        ["object", "3"], ["total", "3"], ["removed:", "small_foreground", "1"], ["removed:", "large_foreground", "1"],
        ["removed:", "on_border", "2"], ["removed:", "unpaired_images", "1"], ["removed:", "unpaired_masks", "1"]]
    assert lines[-1] == str(tmp_path / f"images_masks{SIZE}.h5")
    with pytest.raises(SystemExit) as exit_:
        main(["curate", "mask-pairs", str(pairs["images"]), str(pairs["masks"]), "--min-fg", "1.5"])
    assert exit_.value.code == 2 and "expected a probability in [0, 1], got 1.5" in capsys.readouterr().err


# ---- held-out test split (--test, --seed) ------------------------------------------------------------------

# per COCO image (ids 1..10): the categories of its instances; 8 dogs and 7 cats in all
PHOTOS = {1: ["dog", "dog", "cat"], 2: ["dog"], 3: ["cat"], 4: ["dog", "cat"], 5: ["dog"], 6: ["cat", "cat"],
          7: ["dog"], 8: ["cat"], 9: ["dog", "dog"], 10: ["cat"]}


def _colour(image_id: int) -> list[int]:
    return [20 * image_id, 250 - 20 * image_id, 7 * image_id]  # one flat colour per photo: the pixels name it


@pytest.fixture
def photos(tmp_path):
    """Ten flat 16×16 photos with 15 instances of dog (id 1) and cat (id 2), each a quarter of its photo."""
    categories = {"dog": 1, "cat": 2}
    images, annotations = [], []
    for image_id, names in PHOTOS.items():
        write_png(tmp_path / "photos" / f"{image_id}.png", np.full((16, 16, 3), _colour(image_id), np.uint8))
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 16, "height": 16})
        for name in names:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": categories[name],
                                "iscrowd": 0, "segmentation": _square(0, 0, 8, 8)})
    path = tmp_path / "photos.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": i, "name": n} for n, i in categories.items()]}))
    return {"json": path, "images": tmp_path / "photos"}


def _groups(path) -> dict[str, dict]:
    """{group: {dataset: array}} of a split file, or {'': ...} for the top level of a one-split file."""
    with h5py.File(path, "r") as f:
        if "train" not in f:
            return {"": {key: f[key][()] for key in f}}
        return {group: {key: f[group][key][()] for key in f[group]} for group in f}


def test_group_split_holds_out_the_fraction_per_class_by_whole_groups():
    # one sample per group: exactly round(0.1 × 20) dogs and round(0.1 × 10) cats, whatever the seed
    labels = np.array([0] * 20 + [1] * 10)
    for seed in range(5):
        train, test = group_split(labels, np.arange(30), 0.1, seed)
        assert np.bincount(labels[test]).tolist() == [2, 1] and sorted([*train, *test]) == list(range(30))
    # pairs of samples share a group: 0.2 of 20 is two whole pairs, never half of one
    groups = np.arange(20) // 2
    held = [tuple(group_split(np.zeros(20), groups, 0.2, seed)[1]) for seed in range(6)]
    assert all(len(test) == 4 and len(set(groups[list(test)])) == 2 for test in held)
    assert held[0] == tuple(group_split(np.zeros(20), groups, 0.2, 0)[1]) and len(set(held)) > 1  # seeded


def test_coco_masks_test_split_keeps_each_photo_on_one_side(photos, tmp_path):
    result = coco_masks(photos["json"], photos["images"], tmp_path / "split.h5", size=8, test=0.3, seed=0,
                        progress=False)
    assert result["counts"] == {"dog": 8, "cat": 7}
    parts = _groups(tmp_path / "split.h5")
    assert sorted(parts) == ["test", "train"]
    assert result["split"] == {part: len(parts[part]["labels"]) for part in ("train", "test")}
    assert sum(result["split"].values()) == 15
    train_ids, test_ids = parts["train"]["image_ids"], parts["test"]["image_ids"]
    assert not set(train_ids) & set(test_ids) and sorted({*train_ids, *test_ids}) == list(PHOTOS)
    for part in parts.values():  # each sample's pixels are its photo's colour, its label a category of that photo
        assert part["class_names"].tolist() == [b"dog", b"cat"]
        for sample, label, image_id in zip(part["images"], part["labels"], part["image_ids"]):
            assert (sample[:, :, :3] == _colour(image_id)).all()
            assert sample[:4, :4, 3].tolist() == [[255] * 4] * 4 and ["dog", "cat"][label] in PHOTOS[image_id]
    # stratified: 0.3 of 8 dogs and of 7 cats is 2.4 and 2.1, so 2 and 2 (here photos 3, 5, 7 and 8)
    assert np.bincount(parts["test"]["labels"], minlength=2).tolist() == [2, 2]
    # the same seed is the same split; another seed moves photos
    coco_masks(photos["json"], photos["images"], tmp_path / "again.h5", size=8, test=0.3, seed=0, progress=False)
    assert _groups(tmp_path / "again.h5")["test"]["image_ids"].tolist() == test_ids.tolist()
    coco_masks(photos["json"], photos["images"], tmp_path / "seed1.h5", size=8, test=0.3, seed=1, progress=False)
    assert set(_groups(tmp_path / "seed1.h5")["test"]["image_ids"]) != set(test_ids)


def test_coco_masks_without_test_keeps_one_split(photos, tmp_path):
    result = coco_masks(photos["json"], photos["images"], tmp_path / "one.h5", size=8, progress=False)
    assert "split" not in result
    top = _groups(tmp_path / "one.h5")[""]
    assert sorted(top) == ["class_names", "image_ids", "images", "labels"]  # no groups
    assert top["image_ids"].tolist() == [1, 1, 1, 2, 3, 4, 4, 5, 6, 6, 7, 8, 9, 9, 10]
    assert load_hdf5(tmp_path / "one.h5", "test") is None and len(load_hdf5(tmp_path / "one.h5", "train")) == 15


def test_gan_config_reads_the_test_split(photos, tmp_path):
    from lienzo import load_config
    from lienzo.tasks.generate import GenerativeData

    coco_masks(photos["json"], photos["images"], tmp_path / "split.h5", size=8, test=0.3, progress=False)
    cfg = load_config("configs/gan_coco_masks64.yaml", [f"data.root={tmp_path / 'split.h5'}"])
    data = GenerativeData(cfg.data, cfg.gan)
    data.setup()
    split = _groups(tmp_path / "split.h5")
    assert (len(data.train_arrays), len(data.test_arrays)) == (len(split["train"]["labels"]),
                                                                len(split["test"]["labels"]))


def test_coco_masks_test_split_bad_fractions(coco, photos, tmp_path, capsys):
    args = ["curate", "coco-masks", str(coco["json"]), str(coco["images"]), "--size", str(SIZE), "--no-progress"]
    for bad in ("1", "-0.1", "1.5"):
        with pytest.raises(SystemExit) as exit_:
            main([*args, "--test", bad])
        assert exit_.value.code == 2 and f"argument --test: expected a fraction in [0, 1), got {bad}" in \
            capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"test must be a fraction in \[0, 1\), got 1.0"):
        coco_masks(photos["json"], photos["images"], tmp_path / "x.h5", test=1.0)
    # 4 instances on 2 photos: 0.1 of them rounds to no whole photo, 0.9 takes both
    with pytest.warns(UserWarning):
        assert main([*args, "--test", "0.1", "--out", str(tmp_path / "t.h5")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lienzo: error")]
    assert err == [(f"lienzo: error: {coco['json']}: --test 0.1 holds out no sample (4 samples from 2 images, "
                    "each image whole on one side); raise --test, or --test 0 for one split")]
    with pytest.warns(UserWarning):
        assert main([*args, "--test", "0.9", "--out", str(tmp_path / "t.h5")]) == 2
    assert "--test 0.9 leaves no sample to train on (4 samples from 2 images" in capsys.readouterr().err
    assert not (tmp_path / "t.h5").exists() and not (tmp_path / "t.h5.partial").exists()


def test_coco_masks_cli_test_split(photos, tmp_path, capsys):
    out = tmp_path / "split.h5"
    code = main(["curate", "coco-masks", str(photos["json"]), str(photos["images"]), "--size", "8", "--test", "0.3",
                 "--seed", "3", "--no-progress", "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    sizes = {part: len(group["labels"]) for part, group in _groups(out).items()}
    assert code == 0 and lines[-1] == str(out)
    assert [line.split() for line in lines[-3:-1]] == [["split:", "train", str(sizes["train"])],
                                                       ["split:", "test", str(sizes["test"])]]
    same = coco_masks(photos["json"], photos["images"], tmp_path / "api.h5", size=8, test=0.3, seed=3, progress=False)
    assert same["split"] == sizes  # --seed reaches the split
    assert _groups(tmp_path / "api.h5")["test"]["image_ids"].tolist() == _groups(out)["test"]["image_ids"].tolist()


def test_mask_pairs_test_split_per_file(pairs, tmp_path, capsys):
    result = mask_pairs(pairs["images"], pairs["masks"], tmp_path / "split.h5", size=SIZE, test=0.5, seed=0,
                        progress=False)
    assert result["split"] == {"train": 2, "test": 2}  # 0.5 of the 4 kept pairs
    parts = _groups(tmp_path / "split.h5")
    assert sorted(parts) == ["test", "train"] and "image_ids" not in parts["train"]

    def names(part):  # which kept pair each sample is, by its pixels
        return {name for image in parts[part]["images"] for name in ("edge", "noisy", "palette", "v1/ok")
                if np.array_equal(image[:, :, :3], pairs["rgb"][name])}

    assert len(names("train")) == len(names("test")) == 2 and not names("train") & names("test")
    code = main(["curate", "mask-pairs", str(pairs["images"]), str(pairs["masks"]), "--size", str(SIZE), "--test",
                 "0.5", "--no-progress", "--json", "--out", str(tmp_path / "cli.h5")])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["split"] == {"train": 2, "test": 2}
    assert _groups(tmp_path / "cli.h5")["test"]["images"].tolist() == parts["test"]["images"].tolist()  # seed 0
    assert main(["curate", "mask-pairs", str(pairs["images"]), str(pairs["masks"]), "--size", str(SIZE), "--test",
                 "0.1", "--out", str(tmp_path / "none.h5")]) == 2
    assert (f"lienzo: error: {pairs['masks']}: --test 0.1 holds out no sample (4 samples from 4 files, each file "
            "whole on one side)") in capsys.readouterr().err
    assert not (tmp_path / "none.h5").exists()
