"""`lienzo features extract`: backbone + layer + data source → an HDF5 file of deep features.

File layout (one group per split the source has):

    /train/features   float32 N×D (chunked: written batch by batch, so N×D need not fit in memory)
    /train/labels     int64 N
    /train/index      int64 N  (position in the source split)
    /train/paths      str N    (image files, for folder sources)
    /class_names      str K
    attributes: backbone, layer, weights, preprocessing (JSON), source (JSON), lienzo_version, dim, complete

Extraction writes `<out>.partial` and renames it to `<out>` only when every split is complete, so a file
under the final name is always whole. An interrupted extraction resumes from `<out>.partial` when it is
run again with the same backbone, layer, weights and source; anything else starts it afresh.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from lienzo import __version__
from lienzo.data.arrays import ImageArrays
from lienzo.data.folders import list_class_folders
from lienzo.data.images import load_image
from lienzo.data.sources import load_source
from lienzo.errors import DataError, RunError
from lienzo.hardware import autocast_dtype, resolve_accelerator, resolve_precision
from lienzo.models.summary import macs_for_precision
from lienzo.transfer.backbones import Backbone, Preprocess, load_backbone
from lienzo.transfer.layers import FeatureExtractor, fold_batch_norm

log = logging.getLogger("lienzo")
COMMIT_SECONDS = 5.0  # how often an extraction records its progress (what a resumed run can skip)


@dataclass
class Features:
    """One split of a features file, in memory."""

    features: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    attrs: dict
    paths: list[str] | None = None


# -- data ----------------------------------------------------------------------------------------

class _FileImages(Dataset):
    """Image files decoded one by one (in DataLoader workers when there are any) and brought to the backbone's
    input size: resized to `size` exactly (lienzo runs), or shorter side resized and centre-cropped."""

    def __init__(self, files: list[Path], labels: list[int], preprocess: Preprocess):
        self.files, self.labels, self.preprocess = files, labels, preprocess

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        p = self.preprocess
        try:
            if p.size:
                image = load_image(self.files[i], p.channels, tuple(p.size))
            else:
                image = load_image(self.files[i], p.channels)
                image = p.geometry(image[None].float(), top=255.0)[0].round().clamp(0, 255).to(torch.uint8)
        except DataError as err:
            return None, i, str(err)
        return image, i, None


def _collate(items):
    good = [(img, i) for img, i, err in items if err is None]
    bad = [err for _, _, err in items if err is not None]
    images = torch.stack([img for img, _ in good]) if good else None
    return images, torch.tensor([i for _, i in good], dtype=torch.long), bad


def _collate_positions(items):
    images, index, _ = _collate(items)
    return images, index, [(i, err) for _, i, err in items if err is not None]


def _folder_splits(data_cfg) -> dict[str, tuple[list[Path], list[int], list[str]]]:
    root = Path(data_cfg.root)
    roots = {"train": root / "train", "test": root / "test"} if (root / "train").is_dir() else {"train": root}
    splits, class_names = {}, None
    for split, folder in roots.items():
        if not folder.is_dir():
            continue
        classes = list_class_folders(folder)
        if class_names is None:
            class_names = [name for name, _ in classes]
        files, labels = [], []
        for name, paths in classes:
            if name not in class_names:
                raise DataError(f"{folder / name}: class '{name}' is not among the training classes")
            files += paths
            labels += [class_names.index(name)] * len(paths)
        splits[split] = (files, labels, class_names)
    return splits


def _batches(data_cfg, preprocess: Preprocess, batch_size: int):
    """{split: (count, class_names, paths or None, iterator of (uint8 images, source indices, errors))}."""
    if isinstance(data_cfg, dict):  # splits already in memory
        return {split: (len(a), a.class_names, a.paths, a.labels.numpy(),
                        lambda start, a=a: _array_batches(a, start, batch_size)) for split, a in data_cfg.items()}
    if data_cfg.name == "folder":
        out = {}
        for split, (files, labels, names) in _folder_splits(data_cfg).items():
            dataset = _FileImages(files, labels, preprocess)
            workers = data_cfg.num_workers
            out[split] = (len(files), names, [str(f) for f in files], np.asarray(labels, dtype=np.int64),
                          lambda start, d=dataset, w=workers: DataLoader(
                              torch.utils.data.Subset(d, range(start, len(d))), batch_size=batch_size,
                              num_workers=w, collate_fn=_collate))
        return out
    train, test = load_source(data_cfg)
    out = {}
    for split, arrays in (("train", train), ("test", test)):
        if arrays is None:
            continue
        out[split] = (len(arrays), arrays.class_names, arrays.paths, arrays.labels.numpy(),
                      lambda start, a=arrays: _array_batches(a, start, batch_size))
    return out


def _array_batches(arrays: ImageArrays, start: int, batch_size: int):
    for i in range(start, len(arrays), batch_size):
        yield arrays.images[i : i + batch_size], torch.arange(i, min(i + batch_size, len(arrays))), []


# -- extraction ----------------------------------------------------------------------------------

class FeatureRunner:
    """uint8 images (any size: the backbone's preprocessing resizes) → float32 features at one layer,
    on the best device, in bf16 where it helps, channels_last: the one path extraction, the scikit-learn
    transformer and SVM predictions share."""

    def __init__(self, backbone: Backbone, layer: str = "penultimate", *, precision: str = "auto",
                 accelerator: str = "auto", channels_last: bool = True, fold_norms: bool = True):
        self.backbone = backbone
        self.extractor = FeatureExtractor(fold_batch_norm(backbone, layer) if fold_norms else backbone, layer).eval()
        self.device = torch.device("cuda" if resolve_accelerator(accelerator) == "gpu" else "cpu")
        input_shape = (backbone.preprocess.channels, *backbone.preprocess.output_size)
        self.dtype = autocast_dtype(resolve_precision(precision, accelerator, macs_for_precision(backbone.model, input_shape)))
        self.channels_last = channels_last
        self.extractor.to(self.device)
        if channels_last:
            self.extractor.to(memory_format=torch.channels_last)

    def __call__(self, images: torch.Tensor, resized: bool = False) -> np.ndarray:
        """`resized`: the images come from decoded files, already at the input size (see Preprocess)."""
        context = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext()
        with torch.inference_mode(), context:
            x = self.backbone.preprocess(images.to(self.device, non_blocking=True), resized=resized)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.extractor(x).float().cpu().numpy()

    def files(self, paths: list, batch_size: int = 64, workers: int | None = None):
        """Yield (features or None, positions of the files read, [(position, error)] of those that could not be)
        over image files, decoded in DataLoader workers."""
        dataset = _FileImages([Path(p) for p in paths], [0] * len(paths), self.backbone.preprocess)
        workers = min(4, os.cpu_count() or 1) if workers is None else workers
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=_collate_positions,
                            num_workers=workers if len(paths) > batch_size else 0)
        for images, index, errors in loader:
            yield (self(images, resized=True) if images is not None else None), index, errors


def extract_features(backbone: str | Backbone, layer: str, data_cfg, out: str | Path, *, weights: str | None = None,
                     batch_size: int = 64, precision: str = "auto", accelerator: str = "auto",
                     channels_last: bool = True, progress: bool = True, overwrite: bool = False) -> Path:
    """Features of every split of `data_cfg`'s source at `layer`, written to `out` (HDF5).

    `data_cfg` is a data config (`data.*`: any source lienzo reads), or ImageArrays already in memory,
    or a {split: ImageArrays} dict."""
    if isinstance(data_cfg, ImageArrays):
        data_cfg = {"train": data_cfg}
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out} exists; choose another --out (features files are never overwritten)")
    if isinstance(backbone, str):
        backbone = load_backbone(backbone, weights)
    runner = FeatureRunner(backbone, layer, precision=precision, accelerator=accelerator, channels_last=channels_last)
    signature = {
        "backbone": backbone.name, "layer": layer, "module": runner.extractor.target, "weights": backbone.weights,
        "spec": json.dumps(backbone.spec),
        "preprocessing": json.dumps(backbone.preprocess.to_dict()),
        "source": json.dumps({k: v for k, v in vars(data_cfg).items()} if not isinstance(data_cfg, dict)
                             else {"arrays": {k: len(v) for k, v in data_cfg.items()}}, default=str),
    }
    splits = _batches(data_cfg, backbone.preprocess, batch_size)
    from_files = getattr(data_cfg, "name", None) == "folder"  # already at the input size: see _FileImages
    strict = bool(getattr(data_cfg, "strict", False))  # data.strict: an unreadable image is an error, as in training
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if partial.exists() and _same_signature(partial, signature) else "w"
    if mode == "a":
        log.info("resuming the interrupted extraction in %s", partial)
    skipped: list[str] = []
    with h5py.File(partial, mode) as f:
        for key, value in signature.items():
            f.attrs[key] = value
        f.attrs["lienzo_version"] = __version__
        f.attrs["complete"] = False
        first_names = next(iter(splits.values()))[1]
        if "class_names" not in f:
            f.create_dataset("class_names", data=np.array(first_names, dtype=h5py.string_dtype()))
        for split, (count, names, paths, labels, batches) in splits.items():
            group = f.require_group(split)
            done = int(group.attrs.get("done", 0))
            if done >= count and group.attrs.get("complete", False):
                continue
            rows = int(group.attrs.get("rows", 0))
            for name in ("features", "labels", "index", "paths"):  # rows past the last commit are redone
                if name in group:
                    group[name].resize(rows, axis=0)
            bar = tqdm(total=count, initial=done, desc=f"features {split}", unit="img", disable=not progress,
                       leave=False)
            last_commit = time.monotonic()
            for images, index, errors in batches(done):
                if errors and strict:
                    raise DataError(f"{errors[0]} (data.strict is true; set it to false to skip unreadable images)")
                skipped += errors
                if images is not None:
                    feats = runner(images, resized=from_files)
                    _append(group, feats, labels[index.numpy()], index.numpy(),
                            [paths[i] for i in index.tolist()] if paths is not None else None)
                done += len(index) + len(errors)
                bar.update(len(index) + len(errors))
                if time.monotonic() - last_commit > COMMIT_SECONDS:
                    _commit(f, group, done)
                    last_commit = time.monotonic()
            _commit(f, group, done)
            bar.close()
            if "features" not in group:
                raise DataError(f"{split}: no image could be read")
            group.attrs["complete"] = True
        dim = next(f[s]["features"].shape[1] for s in splits)
        f.attrs["dim"] = dim
        f.attrs["complete"] = True
    os.replace(partial, out)
    if skipped:
        log.warning("skipped %d unreadable image(s): %s", len(skipped), "; ".join(skipped[:3]))
    log.info("features %s (%s, %s, %d dims) → %s", ", ".join(splits), backbone.name, layer, dim, out)
    return out


def _commit(f: h5py.File, group: h5py.Group, done: int) -> None:
    """Record how far the split got, together with its rows: a resumed extraction starts from here."""
    group.attrs["done"] = done
    group.attrs["rows"] = group["features"].shape[0] if "features" in group else 0
    f.flush()


def _same_signature(path: Path, signature: dict) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return all(f.attrs.get(k) == v for k, v in signature.items())
    except OSError:
        return False


def _append(group: h5py.Group, feats: np.ndarray, labels: np.ndarray, index: np.ndarray, paths) -> None:
    n, d = feats.shape
    if "features" not in group:
        group.create_dataset("features", shape=(0, d), maxshape=(None, d), dtype="float32",
                             chunks=(max(1, min(1024, (1 << 20) // (4 * d))), d))
        group.create_dataset("labels", shape=(0,), maxshape=(None,), dtype="int64", chunks=(4096,))
        group.create_dataset("index", shape=(0,), maxshape=(None,), dtype="int64", chunks=(4096,))
        if paths is not None:
            group.create_dataset("paths", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,))
    start = group["features"].shape[0]
    for name, values in (("features", feats), ("labels", labels), ("index", index), ("paths", paths)):
        if values is None or name not in group:
            continue
        ds = group[name]
        ds.resize(start + n, axis=0)
        ds[start:] = values


# -- reading -------------------------------------------------------------------------------------

def check_finite(features: np.ndarray, path: str | Path, split: str) -> None:
    """Features with NaN or infinite values (a damaged file, a network that diverged) are a DataError that
    says where and how many rows, before scikit-learn fails on them with a traceback."""
    bad = ~np.isfinite(features).all(axis=1) if features.size else np.zeros(len(features), dtype=bool)
    if bad.any():
        raise DataError(f"{path}: split '{split}' has {int(bad.sum())} of {len(features)} rows with NaN or "
                        f"infinite features (first: row {int(bad.argmax())}); extract the features again")


def read_features(path: str | Path, split: str = "train", finite: bool = True) -> Features:
    """One split of a features file; a clear error for files that are not complete features files, and
    (with `finite`) for features that are NaN or infinite."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: features file not found")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"{path}: not an HDF5 file") from None
    with f:
        if not f.attrs.get("complete", False):
            raise DataError(f"{path}: not a complete lienzo features file")
        if split not in f:
            raise DataError(f"{path}: has no '{split}' split (it has: {', '.join(k for k in f if k != 'class_names')})")
        group = f[split]
        if "features" not in group:
            raise DataError(f"{path}: split '{split}' has no features")
        if "labels" not in group:
            raise DataError(f"{path}: split '{split}' has no labels")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["class_names"][()]]
        paths = [p.decode() if isinstance(p, bytes) else str(p) for p in group["paths"][()]] if "paths" in group else None
        features = group["features"][()]
        if finite:
            check_finite(features, path, split)
        return Features(features, group["labels"][()], names, dict(f.attrs), paths)


def write_features(path: str | Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], class_names: list[str],
                   **attrs) -> Path:
    """Write features computed elsewhere in lienzo's layout: splits = {"train": (features, labels), ...}.
    attrs (backbone, layer, weights, ...) identify where they came from; the file is written atomically."""
    path = Path(path)
    if path.exists():
        raise RunError(f"{path} exists (features files are never overwritten)")
    partial = path.with_name(path.name + ".partial")
    with h5py.File(partial, "w") as f:
        f.create_dataset("class_names", data=np.array(class_names, dtype=h5py.string_dtype()))
        dim = None
        for split, (x, y) in splits.items():
            x = np.asarray(x, dtype=np.float32)
            y = np.asarray(y, dtype=np.int64)
            if x.ndim != 2 or len(x) != len(y):
                raise DataError(f"{split}: features must be N×D with N labels, got {x.shape} and {y.shape}")
            group = f.create_group(split)
            group.create_dataset("features", data=x)
            group.create_dataset("labels", data=y)
            group.create_dataset("index", data=np.arange(len(y)))
            group.attrs.update(done=len(y), rows=len(y), complete=True)
            dim = x.shape[1]
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
        f.attrs.update(lienzo_version=__version__, dim=dim or 0, complete=True)
    os.replace(partial, path)
    return path
