import gzip
import pickle

import h5py
import numpy as np
import pytest
from PIL import Image

from lienzo.tasks import config_from_dict
from lienzo.data import load_source
from lienzo.data.folders import load_folder
from lienzo.data.hdf5 import load_hdf5, write_hdf5
from lienzo.data.idx import read_idx, write_idx
from lienzo.errors import ConfigError, DataError
from tests.helpers import tiny_images, write_cifar10, write_cifar100, write_idx_dataset, write_png


def data_cfg(**values):
    return config_from_dict({"data": values}).data


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    root = write_idx_dataset(tmp_path / "fm", n_train=12, n_test=6, gz=gz)
    train, test = load_source(data_cfg(name="idx", root=str(root)))
    images, labels = tiny_images(12, seed=5)
    assert train.images.shape == (12, 1, 28, 28) and test.images.shape == (6, 1, 28, 28)
    assert np.array_equal(train.images[:, 0].numpy(), images) and train.labels.tolist() == labels.tolist()


def test_idx_bad_files(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x08\x08\x08\x03rubbish")
    with pytest.raises(DataError, match="wrong magic"):
        read_idx(path)
    write_idx(path, np.zeros((4, 5, 5), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)
    gz = tmp_path / "y.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"abc")[:-4])
    with pytest.raises(DataError, match="y.gz"):
        read_idx(gz)


def test_idx_count_mismatch_and_missing(tmp_path):
    root = write_idx_dataset(tmp_path / "fm", n_train=10, n_test=4)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="10 images but .* 9 labels"):
        load_source(data_cfg(name="idx", root=str(root)))
    with pytest.raises(DataError, match="dataset-fashion-mnist.*data.root"):
        load_source(data_cfg(name="fashion_mnist", root=str(tmp_path / "empty")))


def test_cifar100_fine_coarse_and_class_subset(tmp_path):
    root = write_cifar100(tmp_path / "c100")
    train, test = load_source(data_cfg(name="cifar100", root=str(root)))
    assert train.images.shape == (40, 3, 32, 32) and train.class_names == ["class0", "class1", "class2", "class3"]
    images, labels = tiny_images(40, size=32, channels=3, classes=4)
    assert np.array_equal(train.images.permute(0, 2, 3, 1).numpy(), images)
    coarse, _ = load_source(data_cfg(name="cifar100", root=str(root), label_mode="coarse"))
    assert coarse.class_names == ["big", "small"] and coarse.labels.tolist() == (labels // 2).tolist()
    sub, sub_test = load_source(data_cfg(name="cifar100", root=str(root), classes=["class3", "class1"]))
    assert sub.class_names == ["class3", "class1"] and len(sub) == 20 and set(sub.labels.tolist()) == {0, 1}
    assert (sub.labels == 0).sum() == (labels == 3).sum()
    with pytest.raises(DataError, match="unknown class 'clas1'.*did you mean class1"):
        load_source(data_cfg(name="cifar100", root=str(root), classes=["clas1"]))


def test_cifar10_batches_and_malformed(tmp_path):
    root = write_cifar10(tmp_path / "c10")
    train, test = load_source(data_cfg(name="cifar10", root=str(root)))
    assert len(train) == 50 and len(test) == 10 and train.class_names[3] == "c3"
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(DataError, match="test_batch: malformed CIFAR pickle"):
        load_source(data_cfg(name="cifar10", root=str(root)))
    (root / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a CIFAR pickle"):
        load_source(data_cfg(name="cifar10", root=str(root)))


def test_folder_modes_sizes_and_skips(tmp_path):
    root = tmp_path / "imgs"
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 255
    write_png(root / "red" / "a.png", rgb)
    write_png(root / "red" / "b.jpg", rgb)
    Image.fromarray(rgb).convert("CMYK").save(root / "red" / "c.tif")
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent: composited over white
    write_png(root / "red" / "d.png", rgba)
    Image.fromarray(rgb).convert("P").save(root / "red" / "e.png")
    grey16 = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 600)
    (root / "grey").mkdir()
    Image.fromarray(grey16).save(root / "grey" / "f.png")
    assert Image.open(root / "grey" / "f.png").mode.startswith("I")
    write_png(root / "grey" / "g.png", np.full((20, 30), 128, np.uint8))
    (root / "grey" / "notes.txt").write_text("not an image")
    (root / "grey" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable file\(s\)"):
        arrays = load_folder(root)
    assert arrays.class_names == ["grey", "red"] and arrays.images.shape == (7, 3, 20, 30)
    red = arrays.images[arrays.labels == 1]
    assert int(red[0, 0].min()) == 255 and int(red[0, 1].max()) == 0  # a.png is pure red
    transparent = arrays.images[[p.endswith("d.png") for p in arrays.paths]][0]
    assert int(transparent.min()) == 255
    sixteen = arrays.images[[p.endswith("f.png") for p in arrays.paths]][0]
    assert int(sixteen.max()) == 255 and int(sixteen.min()) == 0
    with pytest.raises(DataError, match="broken.png|notes.txt"):
        load_folder(root, strict=True)


def test_folder_empty_class_and_sizes(tmp_path):
    root = tmp_path / "imgs"
    write_png(root / "a" / "x.png", np.zeros((8, 8), np.uint8))
    (root / "b").mkdir()
    with pytest.raises(DataError, match="class 'b' has no files"):
        load_folder(root)
    (root / "b" / "junk.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="class 'b' has no readable images"):
        load_folder(root)
    with pytest.raises(DataError, match="no class folders"):
        load_folder(root / "a")


def test_folder_source_with_train_test_and_image_size(tmp_path):
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            for i in range(3):
                write_png(tmp_path / split / c / f"{i}.png", np.full((40, 50, 3), 60 * i, np.uint8))
    train, test = load_source(data_cfg(name="folder", root=str(tmp_path), image_size=[16, 20]))
    assert train.images.shape == (6, 3, 16, 20) and test.images.shape == (6, 3, 16, 20)
    assert train.class_names == test.class_names == ["cat", "dog"]


def test_hdf5_round_trip_and_errors(tmp_path):
    images, labels = tiny_images(10, size=12, channels=3)
    path = tmp_path / "d.h5"
    write_hdf5(path, images, labels, ["x", "y", "z"], group="train")
    write_hdf5(path, images[:4], labels[:4], ["x", "y", "z"], group="test")
    train, test = load_source(data_cfg(name="hdf5", root=str(path)))
    assert train.class_names == ["x", "y", "z"] and np.array_equal(train.images.permute(0, 2, 3, 1).numpy(), images)
    assert len(test) == 4
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((3, 4, 4), np.float32)
        f["labels"] = np.zeros(3, np.int64)
    with pytest.raises(DataError, match="'images' must be uint8"):
        load_hdf5(bad, "train")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataError, match="not a readable HDF5"):
        load_hdf5(tmp_path / "text.h5", "train")


def test_unknown_source():
    with pytest.raises(ConfigError, match="unknown source 'fashon_mnist'.*did you mean fashion_mnist"):
        load_source(data_cfg(name="fashon_mnist"))


def test_to_channels_passes_other_counts_through_and_refuses_undefined_conversions(tmp_path):
    import torch

    from lienzo.data.arrays import to_channels

    rgb_mask = torch.randint(0, 256, (2, 4, 5, 6), dtype=torch.uint8)  # RGB + mask, for the GAN pipeline
    assert to_channels(rgb_mask, 4) is rgb_mask
    for channels in (1, 3):
        with pytest.raises(DataError, match=f"cannot convert 4-channel images to {channels} channels"):
            to_channels(rgb_mask, channels)
    with pytest.raises(DataError, match="cannot convert 2-channel images to 1 channels"):
        to_channels(rgb_mask[:, :2], 1)
    # 1 ↔ 3 stay, bit-exact with PIL's 'L'
    rgb = rgb_mask[:, :3]
    pil = [np.asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).convert("L")) for img in rgb]
    assert np.array_equal(to_channels(rgb, 1)[:, 0].numpy(), np.stack(pil))
    assert torch.equal(to_channels(to_channels(rgb, 1), 3), to_channels(rgb, 1).expand(-1, 3, -1, -1))
    # an HDF5 file of 4-channel images reads unchanged; asking for 3 channels is an error naming both counts
    path = tmp_path / "rgbm.h5"
    write_hdf5(path, rgb_mask.permute(0, 2, 3, 1).numpy(), np.array([0, 1]), ["a", "b"])
    train, _ = load_source(data_cfg(name="hdf5", root=str(path)))
    assert torch.equal(train.images, rgb_mask)
    with pytest.raises(DataError, match="4-channel images to 3 channels"):
        train.to_channels(3)


def test_load_image_keeps_the_mask_of_rgba_files_when_asked_for_4_channels(tmp_path):
    from lienzo.data.images import load_image

    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    path = write_png(tmp_path / "rgbm.png", pixels, "RGBA")
    assert np.array_equal(load_image(path, 4).permute(1, 2, 0).numpy(), pixels)
    assert load_image(write_png(tmp_path / "grey.png", pixels[..., 0]), 4)[3].eq(255).all()  # opaque
    with pytest.raises(ConfigError, match="cannot decode image files to 2 channels"):
        load_image(path, 2)


def test_hdf5_val_group_must_share_the_class_names(tmp_path):
    images, labels = tiny_images(6, size=8, channels=3)
    path = tmp_path / "d.h5"
    write_hdf5(path, images, labels, ["x", "y", "z"], group="train")
    write_hdf5(path, images[:3], labels[:3], ["x", "y", "w"], group="val")
    with pytest.raises(DataError, match="'val' group's class names"):
        load_source(data_cfg(name="hdf5", root=str(path)))
