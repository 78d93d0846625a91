"""Tiny deterministic data in the real file formats, written by the tests themselves."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from lienzo.data.idx import write_idx

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def tiny_images(n: int, size: int = 28, channels: int = 1, classes: int = 3, seed: int = 0):
    """Images whose class is visible: class c has a bright square in column band c."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, size=(n, size, size, channels), dtype=np.uint8)
    band = size // classes
    for i, c in enumerate(labels):
        images[i, size // 4 : 3 * size // 4, c * band : (c + 1) * band] = 220
    return (images[..., 0] if channels == 1 else images), labels.astype(np.uint8)


def write_idx_dataset(root: Path, n_train: int = 60, n_test: int = 30, gz: bool = True, classes: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = tiny_images(n, classes=classes, seed=len(prefix))
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return root


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 20) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    fine = [f"class{i}" for i in range(4)]
    coarse = ["big", "small"]
    for name, n in (("train", n_train), ("test", n_test)):
        images, labels = tiny_images(n, size=32, channels=3, classes=4)
        data = images.transpose(0, 3, 1, 2).reshape(n, -1)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 2).tolist()}, f)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [s.encode() for s in fine], b"coarse_label_names": [s.encode() for s in coarse]}, f)
    return root


def write_cifar10(root: Path, n_per_batch: int = 10) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = [f"c{i}" for i in range(10)]
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels = tiny_images(n_per_batch, size=32, channels=3, classes=10, seed=i)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": images.transpose(0, 3, 1, 2).reshape(n_per_batch, -1), b"labels": labels.tolist()}, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names]}, f)
    return root


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def assert_page_renders(page: Path, tmp_path: Path) -> None:
    """Headless Chromium draws the page (offline) into a screenshot that holds text, tables and plots."""
    import subprocess

    from PIL import Image

    chromium = next((c for c in ("chromium", "chromium-browser")
                     if subprocess.run(["which", c], capture_output=True).returncode == 0), None)
    if chromium is None:
        raise AssertionError("chromium missing: `make test` installs Debian's chromium")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
                    f"--screenshot={shot}", Path(page).resolve().as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file()
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (2400, 1200)
    # the page drew text, tables and the plots: many distinct colours and dark pixels, not a blank page
    assert pixels.std() > 20 and (pixels.mean(2) < 100).mean() > 0.005
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 200


def tiny_classify_config(root: Path, runs: Path, name: str, *extra: str):
    """configs/fashion_basenet.yaml on a tiny IDX folder: two epochs of 60 images, in seconds."""
    from lienzo import load_config

    return load_config("configs/fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=20", "trainer.max_epochs=2", "trainer.progress=false",
        f"run.dir={runs}", f"run.name={name}", "optim.lr=0.05", *extra])
