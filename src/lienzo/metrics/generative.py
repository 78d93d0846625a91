"""Inception Score, FID and KID of generated images, computed by torch-fidelity's own functions (so the
numbers are the published code's), with Inception-v3 read from a local file or any lienzo classifier run
as the feature network ("domain" IS/FID, which works offline).

    scorer = make_scorer("inception")              # or "inception:/models/pt_inception-….pth", or "runs/fashion_fast"
    real = score_real(scorer, seeded_subset(test_images, 5000, seed=0))   # uint8 or float in [-1, 1], N×C×H×W
    results = generative_metrics(scorer, fake_batches, real)   # is_mean, is_std, fid, kid_mean, kid_std, count
    bound = metrics_from_features(*score_real(scorer, train_images), real_features=real)   # real vs real

Images with a mask as last channel (RGB + mask: 4, grey + mask: 2) are scored on their picture alone, as the
thesis scored its RGB+mask samples on their RGB. Nothing is downloaded:
missing Inception weights are a DataError naming the file and the folder it goes in.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lienzo.data.arrays import to_channels
from lienzo.data.transforms import Normalizer
from lienzo.errors import ConfigError, DataError, ModelError

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's name for the FID Inception weights
# torch-fidelity's own download of the same weights (same hash suffix) lands in the hub cache under this name
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FEATURES = ("2048", "logits_unbiased")  # what torch-fidelity's FID/KID and IS use
CHANNELS = (1, 2, 3, 4)  # grey, grey + mask, RGB, RGB + mask


# -- the metrics, on features ----------------------------------------------------------------------

def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))), mean and std over `splits` parts, by torch-fidelity's
    `isc_features_to_metric` with its defaults (rows shuffled with seed 2020), so the numbers match its own.

    Uniform predictions give 1; confident predictions spread evenly over K classes give K."""
    from torch_fidelity.defaults import DEFAULTS
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    logits = _matrix(logits, "logits")
    check_count(len(logits), splits)
    out = isc_features_to_metric(logits, splits=splits, shuffle=DEFAULTS["samples_shuffle"],
                                 rng_seed=DEFAULTS["rng_seed"])
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def check_count(n: int, splits: int = 10) -> None:
    """The IS needs at least one image per split: call it before generating n images, not after."""
    if splits < 1:
        raise ConfigError(f"the IS splits must be at least 1 (got {splits})")
    if n < splits:
        raise ConfigError(f"Inception Score: the number of images n (got {n}) must be at least the IS splits "
                          f"({splits}): generate more images or use fewer splits")


def fid(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N×D and M×D), by torch-fidelity's
    `fid_features_to_statistics` and `fid_statistics_to_metric`: ‖μa − μb‖² + tr(Σa + Σb − 2(ΣaΣb)^½).
    Features are float32 as torch-fidelity's extractors give them, so its numbers are reproduced."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    a, b = _feature_pair(features_a, features_b, "FID")
    stats_a, stats_b = fid_features_to_statistics(a), fid_features_to_statistics(b)
    return fid_statistics_to_metric(stats_a, stats_b, verbose=False)[KEY_METRIC_FID]


def kid(features_a: Tensor, features_b: Tensor, subsets: int = 100, subset_size: int = 1000) -> tuple[float, float]:
    """Kernel Inception Distance (unbiased MMD² with the cubic polynomial kernel), mean and std over
    `subsets` random subsets, by torch-fidelity's `kid_features_to_metric` (seed 2020).

    torch-fidelity requires each subset to be drawn from both sets without replacement, so `subset_size` is
    clipped to the smaller set: with fewer than 1000 images KID is computed on subsets of all of them."""
    from torch_fidelity.defaults import DEFAULTS
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    a, b = _feature_pair(features_a, features_b, "KID")
    if subsets < 1 or subset_size < 2:
        raise ConfigError(f"KID needs at least 1 subset of at least 2 images (got {subsets} of {subset_size})")
    size = min(subset_size, len(a), len(b))
    out = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=size, verbose=False,
                                 rng_seed=DEFAULTS["rng_seed"])
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def _matrix(values: Tensor, what: str) -> Tensor:
    """A 2-D float32 CPU tensor: the dtype torch-fidelity's feature extractors hand to its metrics."""
    values = torch.as_tensor(values)
    if values.ndim != 2:
        raise DataError(f"{what} must be a matrix N×D, got shape {tuple(values.shape)}")
    return values.detach().float().cpu()


def _feature_pair(features_a: Tensor, features_b: Tensor, metric: str) -> tuple[Tensor, Tensor]:
    a, b = _matrix(features_a, f"{metric} features"), _matrix(features_b, f"{metric} features")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"{metric}: the two feature sets have {a.shape[1]} and {b.shape[1]} dimensions "
                        "(score both with the same scorer)")
    if min(len(a), len(b)) < 2:
        raise DataError(f"{metric} needs at least 2 images on each side (got {len(a)} and {len(b)})")
    return a, b


# -- images --------------------------------------------------------------------------------------

def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] floats → uint8 0..255 as StyleGAN's metrics do (x·127.5 + 128, clamped, truncated): a
    uint8 image taken to [-1, 1] by u/127.5 − 1 comes back exactly. uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    return (images * 127.5 + 128).clamp_(0, 255).to(torch.uint8)


def to_unit(images: Tensor) -> Tensor:
    """uint8 0..255 or float [-1, 1] → float [0, 1] (what a lienzo classifier's Normalizer takes)."""
    if images.dtype == torch.uint8:
        return images.float() / 255
    return (images.float().clamp(-1, 1) + 1) / 2


def rgb_part(images: Tensor) -> Tensor:
    """The picture of N×C×H×W images without their mask: RGB of RGB + mask (4), grey of grey + mask (2) —
    the thesis scored only the RGB; grey (1) and RGB (3) unchanged."""
    channels = images.shape[1]
    return images[:, :3] if channels == 4 else images[:, :1] if channels == 2 else images


def seeded_subset(images: Tensor, n: int, seed: int) -> Tensor:
    """`n` of the images drawn without replacement by a generator seeded with `seed` (all of them when there
    are no more than n), in their original order: a reference set for FID that is the same on every call and
    does not depend on how the file happens to be sorted (the first n of a class-sorted file are one class)."""
    if n >= len(images):
        return images
    picks = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[picks.sort().values]


def _batches(images, batch_size: int):
    """Batches of at most batch_size images from a tensor or from an iterable of tensors."""
    for block in ([images] if isinstance(images, Tensor) else images):
        yield from torch.as_tensor(block).split(batch_size)


def _check(batch: Tensor) -> Tensor:
    if batch.ndim != 4 or batch.shape[1] not in CHANNELS:
        raise DataError(f"images to score must be N×C×H×W with C in {CHANNELS}, got shape {tuple(batch.shape)}")
    if batch.dtype != torch.uint8 and not batch.dtype.is_floating_point:
        raise DataError(f"images to score must be uint8 (0..255) or float in [-1, 1], got {batch.dtype}")
    return batch


# -- scorers -------------------------------------------------------------------------------------

class Scorer:
    """A feature network for the metrics: `name` (goes with the results), and `features(images)` →
    (pooled features N×D for FID/KID, logits N×K for IS).

    `images` are a tensor or an iterable of tensors N×C×H×W, float in [-1, 1] (the generator's range) or
    uint8 0..255 (real data), C = 1, 2, 3 or 4 (a mask last is left out). Subclasses set name, device, batch_size and implement
    `_score(batch)` for one batch on the device; batching, no_grad and input checks live here once."""

    name: str = "scorer"
    device: torch.device = torch.device("cpu")
    batch_size: int = 64

    @torch.no_grad()
    def features(self, images) -> tuple[Tensor, Tensor]:
        """(features N×D, logits N×K), float32 on the CPU, for images as the class docstring says."""
        features, logits = [], []
        for batch in _batches(images, self.batch_size):
            pooled, scores = self._score(_check(batch).to(self.device))
            features.append(pooled.float().cpu())
            logits.append(scores.float().cpu())
        if not features:
            raise DataError(f"{self.name}: no images to score")
        return torch.cat(features), torch.cat(logits)

    def _score(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, device={self.device})"


def inception_weights(weights: str | Path | None = None) -> Path:
    """The local Inception-v3 weights file: `weights` when given, else pt_inception-2015-12-05-6726825d.pth
    (or torch-fidelity's name for it) in $TORCH_HOME/hub/checkpoints/. Missing: a DataError, never a download."""
    from lienzo.models.pretrained import hub_checkpoint_dir

    where = (f"put {INCEPTION_FILE} in {hub_checkpoint_dir()} or pass inception:<file> (get it from pytorch-fid's "
             f"GitHub release, or torch-fidelity's v0.2.0 release as {TORCH_FIDELITY_FILE}); lienzo never downloads")
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise DataError(f"Inception weights file {path} not found: {where}")
        return path
    for name in (INCEPTION_FILE, TORCH_FIDELITY_FILE):
        if (hub_checkpoint_dir() / name).is_file():
            return hub_checkpoint_dir() / name
    raise DataError(f"Inception weights missing: {where}")


class InceptionScorer(Scorer):
    """torch-fidelity's FeatureExtractorInceptionV3 (the TensorFlow FID Inception), its 2048-d pool features
    and unbiased logits, as torch-fidelity's FID and IS use them; weights from a local file only.

    Images go in as uint8 (torch-fidelity resizes them to 299 its own way); RGB + mask is scored on its RGB,
    grey (and grey + mask's grey) is repeated to three channels."""

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu", batch_size: int = 64):
        self.name, self.device, self.batch_size = "inception", torch.device(device), int(batch_size)
        self.weights = inception_weights(weights)
        self.extractor = _inception_extractor(self.weights).to(self.device)

    def _score(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        images = rgb_part(to_uint8(batch))
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.extractor(images.contiguous())


def _inception_extractor(path: Path):
    """torch-fidelity's extractor built from `path`. The file is first read as plain tensors
    (weights_only), because torch-fidelity itself unpickles it unrestricted; a file that is not the
    Inception weights is a DataError naming it. With a path given torch-fidelity never reaches its URL."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types on a damaged or foreign file
        raise DataError(f"{path}: not a readable Inception weights file ({type(err).__name__})") from None
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    if fc is None or tuple(fc.shape) != (1008, 2048):
        raise DataError(f"{path}: not the FID Inception-v3 weights ({INCEPTION_FILE}): no 1008×2048 fc.weight")
    del state
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", list(INCEPTION_FEATURES),
                                           feature_extractor_weights_path=str(path))
    except RuntimeError as err:  # load_state_dict: missing or misshapen tensors
        raise DataError(f"{path}: does not fit torch-fidelity's Inception-v3 ({str(err).splitlines()[0]})") from None


class DomainScorer(Scorer):
    """A lienzo classifier run as the feature network: features are its pre-logits
    (`forward_head(forward_features(x), pre_logits=True)`), logits its outputs. Works offline.

    Images are brought to what the run was trained on: channels (RGB + mask → RGB, grey + mask → grey, unless
    the run has as many; RGB → grey by ITU-R 601 luma; grey → RGB by copies), size (bilinear with
    antialiasing), then scaled to [0, 1] and normalised with the run's mean/std, as `lienzo predict` does."""

    def __init__(self, run: str | Path, device: str | torch.device = "cpu", batch_size: int = 256):
        from lienzo.models.build import load_run_network

        require_classifier(run)
        net = load_run_network(run)
        if not hasattr(net.model, "forward_head"):
            raise ModelError(f"{run}: its {net.config.model.arch} has no forward_head, so no pre-logit features")
        self.name = f"domain:{Path(run).resolve().name}"
        self.device, self.batch_size = torch.device(device), int(batch_size)
        self.run, self.model = Path(run), net.model.to(self.device).eval()
        self.input_shape, self.class_names = net.input_shape, net.class_names
        self.normalizer = Normalizer(net.mean, net.std)

    def _score(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        channels, height, width = self.input_shape
        x = to_unit(batch)
        if x.shape[1] != channels:
            x = to_channels(rgb_part(x), channels)
        if tuple(x.shape[2:]) != (height, width):
            x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        maps = self.model.forward_features(self.normalizer(x))
        # forward_head twice (the neck is cheap): some heads scale their logits (AirNet), so the
        # classifier layer applied to the pre-logits would not give them
        return self.model.forward_head(maps, pre_logits=True), self.model.forward_head(maps)


def require_classifier(run: str | Path) -> None:
    """A run of another task (a GAN) has no classifier to score with: say which task it is."""
    from lienzo.runs import read_checkpoint

    checkpoint, _ = read_checkpoint(run, weights=False)
    task = (checkpoint["hyper_parameters"]["config"] or {}).get("task", "classify")
    if task != "classify":
        raise ConfigError(f"{run}: a {task} run; a domain scorer needs a classify run (a trained classifier)")


def make_scorer(spec: str, device: str | torch.device = "cpu") -> Scorer:
    """"inception" (weights from the torch hub cache), "inception:<weights file>", or a classifier run folder."""
    spec = str(spec)
    if spec == "inception":
        return InceptionScorer(device=device)
    if spec.startswith("inception:"):
        return InceptionScorer(spec.removeprefix("inception:"), device=device)
    if Path(spec).is_dir():
        return DomainScorer(spec, device=device)
    raise ConfigError(f"scorer '{spec}': expected 'inception', 'inception:<weights file>' or a lienzo classifier "
                      "run folder (no such folder)")


# -- everything at once --------------------------------------------------------------------------

def score_real(scorer: Scorer, images) -> tuple[Tensor, Tensor]:
    """(features, logits) of real images (a tensor or batches; uint8 or float in [-1, 1]): the `real_features`
    of generative_metrics, and one side of a real-vs-real bound."""
    return scorer.features(images)


def metrics_from_features(features: Tensor, logits: Tensor, real_features=None, *, splits: int = 10,
                          kid_subset_size: int = 1000) -> dict:
    """IS of `logits`; with `real_features` ((features, logits) from score_real, or the features alone)
    also FID and KID against them. Keys: is_mean, is_std, count[, fid, kid_mean, kid_std]."""
    is_mean, is_std = inception_score(logits, splits)
    results = {"is_mean": is_mean, "is_std": is_std, "count": len(logits)}
    if real_features is not None:
        real = real_features[0] if isinstance(real_features, (tuple, list)) else real_features
        results["fid"] = fid(features, real)
        results["kid_mean"], results["kid_std"] = kid(features, real, subset_size=kid_subset_size)
    return results


def generative_metrics(scorer: Scorer, fake, real_features=None, *, splits: int = 10,
                       kid_subset_size: int = 1000) -> dict:
    """IS (and FID, KID when real features are given) of generated images: a tensor or an iterable of
    batches N×C×H×W in [-1, 1] (call check_count first: too few images for the splits is found only here)."""
    features, logits = scorer.features(fake)
    return metrics_from_features(features, logits, real_features, splits=splits, kid_subset_size=kid_subset_size)
