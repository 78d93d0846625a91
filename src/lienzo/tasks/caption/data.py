"""The caption task's data: image features computed once per (images, backbone, layer) and cached in HDF5,
the vocabulary of the training captions, and loaders of (image feature, caption) pairs.

    path = features_path("cache/features", files, images_root, "vgg16", "fc7", "IMAGENET1K_V1")
    cached_features(files, images_root, path, backbone="vgg16", layer="fc7", weights="IMAGENET1K_V1")
    data = CaptionData(cfg)                             # lienzo.tasks.caption builds it from a config
    data.setup("fit"); data.vocab, data.features.shape, data.splits["test"].references

Features file layout (`cache/features/<images folder>-<backbone>-<layer>-<hash>.h5`, reused by every caption
run over the same images, backbone, weights and layer):

    /features  float32 N×D (float16 for convolutional grids, N×C·H·W)
    /files     str N        (image paths relative to the images root)
    /readable  bool N       (False: the image could not be decoded and has no features)
    attributes: backbone, layer, weights, shape (C[, H, W]: the layer's output per image), images, unreadable, complete

It is written as `<file>.partial-<pid>` and renamed when complete, so a file under its final name is always whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from lienzo.data.captions import CaptionDataset, read_captions
from lienzo.data.vocabulary import Vocabulary, coverage, encode_captions
from lienzo.data.module import EpochSeededSampler, keep_batch, shard_of
from lienzo.errors import ConfigError, DataError

log = logging.getLogger("lienzo")

SPLITS = ("train", "val", "test")


# -- features ----------------------------------------------------------------------------------------

@dataclass
class ImageFeatures:
    """Features of every image of a caption dataset, in memory: `rows[file]` is the file's row."""

    features: torch.Tensor  # N×D, flat (a grid as C·H·W, float16): the model's `prepare` shapes each batch
    rows: dict[str, int]  # images whose features exist (an unreadable image has none)
    shape: tuple[int, ...]  # the layer's output per image: (D,) or (C, H, W)
    backbone: str
    layer: str
    path: Path
    weights: str | None = None



def _stat(path: str | None) -> list:
    """(size, mtime) of a file, or of a run folder's best.ckpt: what changes when the network changes."""
    if not path:
        return []
    p = Path(path).expanduser()
    p = p / "checkpoints" / "best.ckpt" if p.is_dir() else p
    return [p.stat().st_size, int(p.stat().st_mtime)] if p.is_file() else []


def backbone_id(backbone: str) -> str:
    """A lienzo run folder as its absolute path (the same run however it is named); other backbones as given."""
    path = Path(backbone).expanduser()
    return str(path.resolve()) if path.is_dir() else backbone


def features_path(cache: str | Path, files: list[str], images_root: str | Path, backbone: str, layer: str,
                  weights: str | None) -> Path:
    """Where the features of these images at this layer are cached. The name hashes what they depend on: the
    images (folder and file names), the backbone (a run's best.ckpt size and time too), its weights and the
    layer, so caption files over the same images share one file and a retrained backbone gets a new one."""
    facts = [str(Path(images_root).resolve()), sorted(files), backbone_id(backbone), _stat(backbone), str(weights),
             _stat(weights), layer]
    key = hashlib.sha1(json.dumps(facts).encode()).hexdigest()[:10]
    name = Path(backbone).name if Path(backbone).is_dir() else backbone.replace(":", "-").replace("/", "-")
    return Path(cache) / f"{Path(images_root).resolve().name}-{name}-{layer}-{key}.h5"


def cached_features(files: list[str], images_root: str | Path, path: Path, *, backbone: str, layer: str,
                    weights: str | None, batch_size: int = 64, precision: str = "auto", accelerator: str = "auto",
                    workers: int | None = None, progress: bool = True) -> Path:
    """Features of `files` (relative to `images_root`) at `layer` of `backbone`, written to `path` unless
    a complete file is there already (written as `<path>.partial-<pid>`, renamed when whole). Images that
    cannot be decoded are left out and listed in the file's `unreadable` attribute."""
    if path.is_file():
        return path
    from lienzo.transfer.backbones import load_backbone
    from lienzo.transfer.features import FeatureRunner

    root = Path(images_root)
    runner = FeatureRunner(load_backbone(backbone, weights), layer, precision=precision, accelerator=accelerator)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    bad: list[str] = []
    try:
        with h5py.File(partial, "w") as f:
            bar = tqdm(total=len(files), desc=f"features {backbone} {layer}", unit="img", disable=not progress,
                       leave=False)
            store, good = None, np.zeros(len(files), dtype=bool)
            for feats, index, errors in runner.files([root / name for name in files], batch_size, workers):
                bad += [files[i] for i, _ in errors]
                if feats is not None:
                    shape = tuple(runner.extractor.output_shape)
                    if store is None:
                        dtype = np.float16 if len(shape) == 3 else np.float32
                        store = f.create_dataset("features", (len(files), feats.shape[1]), dtype=dtype,
                                                 chunks=(min(len(files), 64), feats.shape[1]))
                        f.attrs["shape"] = list(shape)
                    store[index.numpy()] = feats.astype(store.dtype)
                    good[index.numpy()] = True
                bar.update(len(index) + len(errors))
            bar.close()
            if store is None:
                raise DataError(f"{root}: none of the {len(files)} images could be read (e.g. {files[0]})")
            f.create_dataset("files", data=np.array(files, dtype=h5py.string_dtype()))
            f.create_dataset("readable", data=good)
            f.attrs.update(backbone=backbone_id(backbone), layer=layer, weights=str(weights), complete=True,
                           images=str(root.resolve()), unreadable=len(bad))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    log.info("cached %d image features (%s, %s) in %s", len(files) - len(bad), backbone, layer, path)
    if bad:
        log.warning("%d image(s) could not be read and have no features, e.g. %s", len(bad), ", ".join(bad[:3]))
    return path


def check_same_network(features: ImageFeatures, info: dict) -> None:
    """Features for a saved run must come from the network (and layer) it was trained on: one error line
    naming both otherwise."""
    given = (list(features.shape), backbone_id(features.backbone), features.layer)
    trained = (list(info["feature_shape"]), info.get("backbone"), info.get("layer"))
    if given[0] != trained[0] or (trained[1] and given[1:] != trained[1:]):
        raise DataError(f"{features.path}: features of {given[1]} {given[2]} {given[0]}; the run was trained on "
                        f"{trained[1]} {trained[2]} {trained[0]}")


def read_image_features(path: str | Path) -> ImageFeatures:
    """A features file (as `cached_features` writes it) in memory, as stored (flat; grids in float16)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False) or "features" not in f or "files" not in f:
                raise DataError(f"{path}: not a complete lienzo caption-features file (features, files)")
            feats = torch.from_numpy(f["features"][:])
            files = [s.decode() if isinstance(s, bytes) else str(s) for s in f["files"][:]]
            readable = f["readable"][:] if "readable" in f else np.ones(len(files), dtype=bool)
            shape = tuple(int(v) for v in f.attrs["shape"])
            backbone, layer = str(f.attrs.get("backbone", "")), str(f.attrs.get("layer", ""))
            weights = f.attrs.get("weights")
            weights = None if weights in (None, "None") else str(weights)
    except OSError as err:
        raise DataError(f"{path}: not an HDF5 file ({err})") from None
    if feats.shape[1] != math.prod(shape):
        raise DataError(f"{path}: features of {feats.shape[1]} values, but its shape attribute says {list(shape)}")
    rows = {name: i for i, name in enumerate(files) if readable[i]}
    return ImageFeatures(feats, rows, shape, backbone, layer, path, weights)


class ImageFiles:
    """The images themselves, for end-to-end fine-tuning (`caption.finetune`): indexed by rows like cached
    features (`files[rows]` → uint8 N×C×H×W at the backbone's input size), decoded when asked for (in
    DataLoader workers when data.num_workers > 0)."""

    def __init__(self, files: list[str], root: Path, backbone: str, layer: str, weights: str | None):
        from lienzo.transfer.backbones import load_backbone
        from lienzo.transfer.features import FeatureRunner, _FileImages

        net = load_backbone(backbone, weights)
        runner = FeatureRunner(net, layer, precision="32", accelerator="cpu", channels_last=False, fold_norms=False)
        self.images = _FileImages([root / f for f in files], [0] * len(files), net.preprocess)
        self.rows = {name: i for i, name in enumerate(files)}
        self.files = files
        first = self.take(torch.tensor([0]))
        runner(first, resized=True)  # one image through the network: the layer's output shape
        self.shape = tuple(int(v) for v in runner.extractor.output_shape)
        self.backbone, self.layer, self.weights = backbone_id(backbone), layer, weights
        self.path = root


    def take(self, rows: torch.Tensor) -> torch.Tensor:
        out = []
        for row in rows.tolist():
            image, _, error = self.images[row]
            if error is not None:
                raise DataError(error)
            out.append(image)
        return torch.stack(out)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        return self.take(torch.as_tensor(rows).reshape(-1))


# -- captions ------------------------------------------------------------------------------------------

@dataclass
class CaptionSplit:
    """One split: its images (rows of the features), and every caption with the image it belongs to."""

    files: list[str]
    image_rows: torch.Tensor  # rows of the features file, one per image
    tokens: torch.Tensor  # captions N×(max_length+2), <start> … <end> <pad>…
    lengths: torch.Tensor  # words + 2
    caption_image: torch.Tensor  # caption → position of its image in this split
    references: list[list[str]]  # raw captions per image (the metrics' references)
    truncated: int

    def __len__(self) -> int:
        return len(self.files)

    def captions_of(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The captions of the images at `positions`: (tokens, lengths, index of their image in `positions`)."""
        wanted = torch.zeros(len(self.files), dtype=torch.long).fill_(-1)
        wanted[positions] = torch.arange(len(positions))
        owner = wanted[self.caption_image]
        keep = owner >= 0
        return self.tokens[keep], self.lengths[keep], owner[keep]


def build_split(dataset: CaptionDataset, split: str, vocab: Vocabulary, rows: dict[str, int],
                max_length: int) -> CaptionSplit | None:
    images = dataset.split(split)
    if not images:
        return None
    token_lists, owners = [], []
    for position, image in enumerate(images):
        kept = [t for t in image.tokens if t]  # a caption of punctuation alone has no words to learn
        token_lists += kept
        owners += [position] * len(kept)
    tokens, lengths, truncated = encode_captions(vocab, token_lists, max_length)
    files = [image.file for image in images]
    image_rows = torch.tensor([rows[f] for f in files], dtype=torch.long)
    return CaptionSplit(files, image_rows, tokens, lengths, torch.tensor(owners, dtype=torch.long),
                        [list(image.captions) for image in images], truncated)


# -- loaders -------------------------------------------------------------------------------------------

class _Pairs(Dataset):
    """(image features, caption) pairs of the training split, handed out a batch at a time."""

    def __init__(self, features, split: CaptionSplit):
        self.features, self.split = features, split  # cached features (a tensor) or ImageFiles: indexed by rows

    def __len__(self) -> int:
        return len(self.split.tokens)

    def __getitem__(self, index: int):
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices, dtype=torch.long)
        image = self.split.caption_image[index]
        lengths = self.split.lengths[index]
        tokens = self.split.tokens[index, : int(lengths.max())]  # no column of pads only
        return self.features[self.split.image_rows[image]], tokens, lengths, image


class _Images(Dataset):
    """A split's images with all their captions: what validation scores."""

    def __init__(self, features, split: CaptionSplit, count: int | None = None):
        self.features, self.split = features, split
        self.count = min(count or len(split), len(split))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]):
        positions = torch.as_tensor(indices, dtype=torch.long)
        tokens, lengths, owner = self.split.captions_of(positions)
        tokens = tokens[:, : int(lengths.max())]
        return self.features[self.split.image_rows[positions]], positions, tokens, lengths, owner


class _WholeSplit(DistributedSampler):
    """Every index in order on every process: validation scores the whole split on each rank (retrieval
    ranks every caption against every image), and Lightning keeps a DistributedSampler as it is."""

    def __init__(self, dataset):
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False)

    def __iter__(self):
        return iter(range(len(self.dataset)))


class CaptionData(L.LightningDataModule):
    """Reads the caption file, builds (or, for a saved run, takes) the vocabulary, and holds every image's
    features in memory; computes and caches the features first when they are not cached yet."""

    def __init__(self, cfg, info: dict | None = None):
        super().__init__()
        self.cfg = cfg
        self.info = info
        self.vocab: Vocabulary | None = Vocabulary.from_dict(info["vocab"]) if info and "vocab" in info else None
        self.splits: dict[str, CaptionSplit] = {}
        self.features: ImageFeatures | ImageFiles | None = None  # what the model reads, by rows
        self.dataset: CaptionDataset | None = None
        self.start_epoch = 0

    # -- set-up ---------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.features is not None:
            return
        d, c = self.cfg.data, self.cfg.caption
        if not d.captions:
            raise ConfigError("data.captions: name the caption file (Karpathy's dataset_*.json, Flickr8k.token.txt, "
                              "COCO captions_*.json, or a CSV/JSONL of image,caption)")
        if not Path(d.captions).is_file():
            raise DataError(f"data.captions: {d.captions} not found (the caption file: Karpathy's dataset_*.json, "
                            "Flickr8k.token.txt, COCO captions_*.json or a CSV/JSONL; lienzo downloads nothing)")
        self.dataset = read_captions(d.captions, d.format, split_file=d.split_file, restval=d.restval,
                                     val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=self.cfg.run.seed)
        root = self.images_root
        self._keep(lambda image: any(image.tokens), "without a caption of any word", "their captions are empty")
        if not c.features:  # images are read (features computed, or the network fine-tuned): they must be there
            self._keep(lambda image: (root / image.file).is_file(), "not found", f"data.root is {root}")
        files = sorted({image.file for image in self.dataset.images})
        if c.finetune:  # the network trains too: it reads the images
            self.features = ImageFiles(files, root, c.backbone, c.layer, c.weights)
        else:
            self.features = read_image_features(c.features or cached_features(
                files, root, features_path(c.cache, files, root, c.backbone, c.layer, c.weights), backbone=c.backbone,
                layer=c.layer, weights=c.weights, batch_size=max(16, min(d.batch_size, 128)),
                precision=self.cfg.trainer.precision, accelerator=self.cfg.trainer.accelerator,
                workers=d.num_workers or None, progress=self.cfg.trainer.progress))
            self._check_against_run()
            where = f"{self.features.path} has none (unreadable, or not in that file)"
            self._keep(lambda image: image.file in self.features.rows, "without features", where)
        if self.vocab is None:
            train_tokens = [t for image in self.dataset.split("train") for t in image.tokens]
            if not train_tokens:
                raise DataError(f"{d.captions}: no image is in the training split")
            self.vocab = Vocabulary.build(train_tokens, min_count=c.min_count)
        for split in SPLITS:
            built = build_split(self.dataset, split, self.vocab, self.features.rows, c.max_length)
            if built is not None:
                self.splits[split] = built
        if not self.splits:
            raise DataError(f"{d.captions}: no image with captions is left")
        if "train" in self.splits and self.splits["train"].truncated:
            train = self.splits["train"]
            log.info("%d of %d training captions are longer than caption.max_length=%d words and were cut",
                     train.truncated, len(train.tokens), c.max_length)

    @property
    def images_root(self) -> Path:
        d = self.cfg.data
        return Path(d.root) if d.root else Path(d.captions).parent

    def _keep(self, wanted, what: str, where: str) -> None:
        """Drop the images `wanted` refuses, said once with their count; with data.strict, an error instead."""
        dropped = [image for image in self.dataset.images if not wanted(image)]
        if not dropped:
            return
        message = (f"{len(dropped)} of the {len(self.dataset.images)} images of {self.cfg.data.captions} are "
                   f"{what} (e.g. {dropped[0].file}; {where})")
        if self.cfg.data.strict or len(dropped) == len(self.dataset.images):
            raise DataError(message + ("" if len(dropped) == len(self.dataset.images) else
                                       "; data.strict is true: set it to false to leave them out"))
        log.warning("%s: left out", message)
        self.dataset.images = [image for image in self.dataset.images if wanted(image)]

    def _check_against_run(self) -> None:
        if self.info:
            check_same_network(self.features, self.info)

    # -- facts ---------------------------------------------------------------------------------------
    def summary(self) -> dict:
        train = self.splits.get("train") or next(iter(self.splits.values()))
        words = [t for image in self.dataset.split("train") for t in image.tokens]
        return {
            "images": {s: len(v) for s, v in self.splits.items()},
            "captions": {s: len(v.tokens) for s, v in self.splits.items()},
            "vocabulary": len(self.vocab),
            "coverage": coverage(self.vocab, words),
            "truncated": train.truncated,
        }

    # -- loaders ---------------------------------------------------------------------------------------
    @property
    def inputs(self):
        """What the loaders index by rows: the features tensor, or the image files."""
        return self.features if isinstance(self.features, ImageFiles) else self.features.features

    def train_dataloader(self) -> DataLoader:
        dataset = _Pairs(self.inputs, self.splits["train"])
        sampler = EpochSeededSampler(dataset, seed=self.cfg.run.seed, start_epoch=self.start_epoch,
                                     **shard_of(self.trainer))
        return DataLoader(dataset, batch_size=self.cfg.data.batch_size, sampler=sampler, collate_fn=keep_batch,
                          drop_last=len(dataset) > self.cfg.data.batch_size, num_workers=self.workers,
                          persistent_workers=self.workers > 0)

    @property
    def workers(self) -> int:
        """DataLoader workers: only images need decoding (cached features are already in memory)."""
        return self.cfg.data.num_workers if isinstance(self.features, ImageFiles) else 0

    def val_dataloader(self):
        if "val" not in self.splits:
            return []
        return self.images_loader("val", self.cfg.caption.val_images)

    def images_loader(self, split: str, count: int | None = None) -> DataLoader:
        dataset = _Images(self.inputs, self.splits[split], count)
        return DataLoader(dataset, batch_size=max(self.cfg.data.batch_size, 100), sampler=_WholeSplit(dataset),
                          collate_fn=keep_batch, num_workers=self.workers)
