"""Pretrained networks from local files only: weights, their preprocessing and class names, head and input
adaptation. Knows nothing of runs (lienzo.models.build does).

    net = load_pretrained("resnet50", "IMAGENET1K_V2")                    # $TORCH_HOME/hub/checkpoints/
    net = load_pretrained("vgg19", "/models/vgg19.pth", num_classes=20, in_chans=1)
    net = load_pretrained("timm:convnext_tiny", "/models/convnext.safetensors")
    net.model, net.preprocess, net.class_names

Architectures: lienzo's own `alexnet_tv`, `vgg11` ... `vgg19_bn` and `resnet18` ... `resnet152`, in the
layout of torchvision's ImageNet weights (torchvision's state dicts are renamed to lienzo's modules as they
load, so a name is one network with or without weights), and timm's models as `timm:<name>`. `alexnet` is
the lecture's layout, which torchvision's AlexNet weights do not fit: giving them to it is an error that
names `alexnet_tv`.
Weights: a local `.pth`/`.pt`/`.bin`/`.safetensors` file, or a torchvision weights name (`IMAGENET1K_V1`,
`DEFAULT`) looked up in `$TORCH_HOME/hub/checkpoints/` under the file name torchvision would download.
Nothing is ever downloaded: a missing file is an error naming the file and the folder it goes in.
Preprocessing (resize, crop, mean/std) comes with the weights, and class names only with weights that
say what their classes are (torchvision's).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lienzo.data.arrays import to_channels
from lienzo.data.transforms import Normalizer
from lienzo.errors import ConfigError, ModelError, did_you_mean
from lienzo.models.registry import create_model

log = logging.getLogger("lienzo")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TIMM_PREFIX = "timm:"
# lienzo's builders that take torchvision's ImageNet weights
TORCHVISION_ARCHS = ("alexnet_tv", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
                     "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
# torchvision's name where lienzo's differs (lienzo's `alexnet` is the lecture's layout, another network)
TORCHVISION_NAMES = {"alexnet_tv": "alexnet"}
# lienzo names whose torchvision namesake is another layout → the lienzo name of that layout
NAMESAKES = {"alexnet": "alexnet_tv"}
WEIGHTS_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


@dataclass
class Preprocess:
    """How images are fed: shorter side resized to `resize`, centre crop `crop` (both None: resize to
    `size` exactly, as lienzo-trained models expect), mean/std on [0, 1] pixels, `channels` in."""

    mean: list[float]
    std: list[float]
    channels: int = 3
    resize: int | None = 256
    crop: int | None = 224
    size: tuple[int, int] | None = None
    interpolation: str = "bilinear"  # or bicubic (timm's models), always antialiased when shrinking

    def __post_init__(self):
        self.mean, self.std = [float(m) for m in self.mean], [float(s) for s in self.std]
        self.size = tuple(int(s) for s in self.size) if self.size else None
        self._normalizer = Normalizer(self.mean, self.std)  # the same fused, cached op training uses

    def to_dict(self) -> dict:
        """Plain JSON values (lists, not tuples): equal to the dict read back from a features file."""
        values = asdict(self)
        values["size"] = list(self.size) if self.size else None
        return values

    def with_channels(self, channels: int) -> Preprocess:
        """The same geometry for `channels` input channels (mean and std averaged over the old ones)."""
        mean, std = sum(self.mean) / len(self.mean), sum(self.std) / len(self.std)
        return Preprocess([mean] * channels, [std] * channels, channels, self.resize, self.crop, self.size,
                          self.interpolation)

    @property
    def output_size(self) -> tuple[int, int]:
        return tuple(self.size) if self.size else (self.crop, self.crop)

    def geometry(self, x: torch.Tensor, top: float = 1.0) -> torch.Tensor:
        """Float N×C×H×W pixels in [0, top] → resized (and centre-cropped) to the network's input size."""
        h, w = x.shape[-2:]
        if self.size:
            if (h, w) == tuple(self.size):
                return x
            x = F.interpolate(x, size=tuple(self.size), mode=self.interpolation, antialias=True, align_corners=False)
        else:
            scale = self.resize / min(h, w)
            new = (max(self.crop, round(h * scale)), max(self.crop, round(w * scale)))
            if new != (h, w):
                x = F.interpolate(x, size=new, mode=self.interpolation, antialias=True, align_corners=False)
            top_row, left = (new[0] - self.crop) // 2, (new[1] - self.crop) // 2
            x = x[..., top_row : top_row + self.crop, left : left + self.crop]
        return x.clamp(0.0, top) if self.interpolation == "bicubic" else x  # bicubic overshoots

    def __call__(self, images: torch.Tensor, resized: bool = False) -> torch.Tensor:
        """uint8 N×C×H×W (any C, H, W) → normalised float N×channels×h×w, on the batch's device.

        `resized=True`: the images were already brought to the input size by `geometry` (decoded files
        are, one by one, since each has its own size), so only channels and normalisation are left."""
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        if x.shape[1] != self.channels:
            x = to_channels(x, self.channels)
        if not resized:
            x = self.geometry(x)
        elif tuple(x.shape[-2:]) != self.output_size:
            raise ValueError(f"images said to be resized are {tuple(x.shape[-2:])}, not {self.output_size}")
        return self._normalizer(x.contiguous())


@dataclass
class Pretrained:
    """A network, how to feed it, where its weights came from, and its class names when the weights say."""

    model: nn.Module
    preprocess: Preprocess
    source: str  # "random" without weights
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)  # adaptations made: a new head, another first convolution


# -- weights files ---------------------------------------------------------------------------------

def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def is_weights_file(weights: str) -> bool:
    """A path to a weights file (rather than a torchvision weights name such as IMAGENET1K_V1)."""
    return weights.endswith(WEIGHTS_SUFFIXES) or "/" in weights or weights.startswith(("~", "."))


def torchvision_weights(arch: str, weights_name: str):
    """torchvision's weights entry (file name, transforms, categories) for a lienzo architecture name."""
    refuse_namesake(arch, f"model.weights {weights_name}")
    try:
        enum = torchvision.models.get_model_weights(TORCHVISION_NAMES.get(arch, arch))
    except (ValueError, KeyError):
        raise ConfigError(f"model.weights: torchvision has no weights for '{arch}'") from None
    if weights_name not in enum.__members__:
        raise ConfigError(f"model.weights: '{weights_name}' is not a weights name of {arch}"
                          f"{did_you_mean(weights_name, list(enum.__members__))}; known: {', '.join(enum.__members__)}")
    return enum[weights_name]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .pth/.pt/.bin/.safetensors file (unwrapped from {"state_dict": ...} and DDP's module.)."""
    if not path.is_file():
        raise ModelError(f"weights file {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch and safetensors raise many types on a damaged file
        raise ModelError(f"{path}: not a readable weights file ({type(err).__name__}: {str(err)[:80]})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: holds no state dict of tensors")
    prefix = "module."  # saved from DataParallel/DDP
    return {k.removeprefix(prefix): v for k, v in state.items()}


def _weights_state(arch: str, weights: str):
    """(state dict, where it came from, torchvision's weights entry or None)."""
    if is_weights_file(weights):
        path = Path(weights).expanduser()
        return read_state_dict(path), str(path), None
    if arch.startswith(TIMM_PREFIX):
        raise ModelError(f"{arch}: timm weights come from a local file (.safetensors or .pth, e.g. the "
                         f"model.safetensors of the model's Hugging Face repository), not '{weights}'")
    entry = torchvision_weights(arch, weights)
    path = hub_checkpoint_dir() / Path(entry.url).name
    if not path.is_file():
        raise ModelError(f"weights {arch} {entry.name} not found: expected the file {path.name} in "
                         f"{path.parent} (copy it there from {entry.url}, or set TORCH_HOME)")
    return read_state_dict(path), f"{entry} ({path})", entry


def _parametrised(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules holding parameters or buffers themselves, in the order the model defines them."""
    return [(name, m) for name, m in model.named_modules()
            if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))]


def to_lienzo_names(arch: str, model: nn.Module, state: dict) -> dict:
    """A torchvision state dict of `arch` with its keys renamed to lienzo's modules (features.0 →
    features.conv1_1.0, classifier.6 → fc8, ...); any other state dict is returned as it is."""
    own = model.state_dict()
    if arch not in TORCHVISION_ARCHS or set(state) <= set(own):
        return state
    with torch.device("meta"):  # only the module names and order: nothing is allocated
        reference = torchvision.models.get_model(TORCHVISION_NAMES.get(arch, arch), weights=None)
    if not set(state) <= set(reference.state_dict()):
        return state  # not torchvision's layout either: load_state names what does not fit
    theirs, ours = _parametrised(reference), _parametrised(model)
    if len(theirs) != len(ours) or any(type(a) is not type(b) for (_, a), (_, b) in zip(theirs, ours)):
        return state
    prefixes = {a: b for (a, _), (b, _) in zip(theirs, ours)}
    renamed = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        renamed[f"{prefixes.get(module, module)}.{leaf}"] = value
    return renamed


def refuse_namesake(arch: str, weights: str) -> None:
    """torchvision's weights for a lienzo name whose torchvision namesake is another layout (`alexnet`):
    an error that names the lienzo name of torchvision's layout."""
    if arch in NAMESAKES:
        raise ConfigError(f"{weights}: torchvision's AlexNet weights do not fit {arch} (the lecture's layout, "
                          f"96-256-384-384-256 filters): use {NAMESAKES[arch]} (torchvision's layout, "
                          "64-192-384-256-256 filters)")


def holds_namesake(arch: str, state: dict) -> bool:
    """Whether a state dict (torchvision's names or lienzo's) is the torchvision-layout namesake's of `arch`:
    every tensor but the first convolution's and the classifier's (they follow channels and classes)."""
    if arch not in NAMESAKES:
        return False
    with torch.device("meta"):
        other = create_model(NAMESAKES[arch], num_classes=1000, in_chans=3, input_size=(224, 224))
    state = to_lienzo_names(NAMESAKES[arch], other, state)
    varying = (f"{_first_conv(other)[0]}.", f"{classifier_name(other)}.")
    body = {k: v for k, v in other.state_dict().items() if not k.startswith(varying)}
    return all(k in state and tuple(state[k].shape) == tuple(v.shape) for k, v in body.items())


def _first(keys: list[str]) -> str:
    return f"{len(keys)} ({keys[0]}{', ...' if len(keys) > 1 else ''})" if keys else "0"


def load_state(model: nn.Module, state: dict, source: str, arch: str | None = None) -> None:
    """Load a whole state dict (torchvision's names renamed when `arch` is given); an error names the
    first missing, unexpected and misshapen tensors and how many there are."""
    if arch:
        state = to_lienzo_names(arch, model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        what = f"missing {_first(missing)}, unexpected {_first(unexpected)}"
        if shapes:
            k = shapes[0]
            what += (f", {len(shapes)} of another shape (first {k}: {tuple(state[k].shape)} in the weights, "
                     f"{tuple(own[k].shape)} in the model)")
        raise ModelError(f"{source}: weights do not match {type(model).__name__} ({what})")
    model.load_state_dict(state, strict=False)  # strict in effect: checked above, old files lack num_batches_tracked


def load_matching(model: nn.Module, path: str, arch: str | None = None) -> list[str]:
    """Load the tensors of a weights file whose names and shapes fit the model (e.g. all but a head for
    another class count); an error when nothing fits, or when they are the weights of `arch`'s
    torchvision namesake (see refuse_namesake). Returns the names left at their initial values."""
    state = read_state_dict(Path(path).expanduser())
    if arch and holds_namesake(arch, state):
        refuse_namesake(arch, path)
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ModelError(f"{path}: no tensor in the file fits {type(model).__name__} (other architecture?)")
    model.load_state_dict(fitting, strict=False)
    left = [k for k in own if k not in fitting]
    if left:
        log.info("%s: %d tensors kept their initial values (%s%s)", path, len(left), ", ".join(left[:4]),
                 " ..." if len(left) > 4 else "")
    return left


# -- heads and inputs ------------------------------------------------------------------------------

def classifier_name(model: nn.Module) -> str:
    """The module name of the classifier (last) layer: `get_classifier()` where the model has it (lienzo's
    and timm's models), else torchvision's conventions: `fc`, `head`, or the last layer of `classifier`."""
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        for name, module in model.named_modules():
            if module is head and name:
                return name
    for name in ("fc", "head", "classifier"):
        module = getattr(model, name, None)
        if isinstance(module, nn.Linear):
            return name
        if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Linear):
            return f"{name}.{list(module._modules)[-1]}"
    raise ModelError(f"{type(model).__name__}: no classifier layer found (get_classifier(), fc, head or "
                     "the last layer of classifier)")


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def _replace_head(model: nn.Module, name: str, num_classes: int) -> None:
    if hasattr(model, "reset_classifier"):  # lienzo's and timm's models know their own head
        model.reset_classifier(num_classes)
    else:
        old = model.get_submodule(name)
        _set_module(model, name, nn.Linear(old.in_features, num_classes))


def adapt_head(model: nn.Module, num_classes: int) -> str | None:
    """A new classifier when the class count differs; returns what was done, for the log."""
    name = classifier_name(model)
    old = model.get_submodule(name).out_features
    if old == num_classes:
        return None
    _replace_head(model, name, num_classes)
    model.lienzo_new_layers = [*getattr(model, "lienzo_new_layers", []), name]  # no pretrained counterpart
    return f"new {name} layer for {num_classes} classes (was {old})"


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelError(f"{type(model).__name__} has no convolution")


def adapt_input(model: nn.Module, in_chans: int) -> str | None:
    """Make the first convolution take `in_chans` channels, keeping what the weights know: for one channel
    the RGB filters are summed (a gray image is R = G = B), otherwise they are cycled and rescaled."""
    name, conv = _first_conv(model)
    if conv.in_channels == in_chans:
        return None
    new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None)
    with torch.no_grad():
        weight = conv.weight
        if in_chans == 1:
            new.weight.copy_(weight.sum(1, keepdim=True))
        else:
            index = torch.arange(in_chans) % weight.shape[1]
            new.weight.copy_(weight[:, index] * weight.shape[1] / in_chans)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_module(model, name, new)
    return f"first convolution {name} adapted from {conv.in_channels} to {in_chans} input channels"


def adapt(net: Pretrained, num_classes: int | None, in_chans: int | None, label: str = "") -> Pretrained:
    """A new head for `num_classes` and a first convolution for `in_chans` where they differ (logged and
    noted); class names are dropped when the head changed, preprocessing follows the channels."""
    for note in (adapt_head(net.model, num_classes) if num_classes else None,
                 adapt_input(net.model, in_chans) if in_chans else None):
        if note:
            log.info("%s: %s", label or type(net.model).__name__, note)
            net.notes.append(note)
    if num_classes and net.class_names and len(net.class_names) != num_classes:
        net.class_names = None
    if in_chans and in_chans != net.preprocess.channels:
        net.preprocess = net.preprocess.with_channels(in_chans)
    return net


# -- networks ----------------------------------------------------------------------------------------

def timm_model(arch: str) -> tuple[nn.Module, Preprocess]:
    """A timm model by name, randomly initialised (weights come from a local file), and its preprocessing
    from timm's own configuration of it (mean/std, input size, crop fraction, interpolation)."""
    try:
        import timm
    except ImportError:
        raise ConfigError(f"{arch}: timm is not installed (pip install 'lienzo[timm]')") from None
    name = arch[len(TIMM_PREFIX):]
    if not timm.is_model(name):
        raise ConfigError(f"{arch}: timm has no model '{name}'{did_you_mean(name, timm.list_models())}")
    model = timm.create_model(name, pretrained=False)
    cfg = timm.data.resolve_model_data_config(model)
    size = int(cfg["input_size"][-1])
    resize = int(math.floor(size / cfg.get("crop_pct", 1.0)))
    interpolation = cfg.get("interpolation", "bilinear")
    preprocess = Preprocess(list(cfg["mean"]), list(cfg["std"]), int(cfg["input_size"][0]), resize, size,
                            interpolation=interpolation if interpolation in ("bilinear", "bicubic") else "bilinear")
    return model, preprocess


def _network(arch: str, dropout: float | None) -> tuple[nn.Module, Preprocess]:
    if arch.startswith(TIMM_PREFIX):
        return timm_model(arch)
    if arch in TORCHVISION_ARCHS:  # in the layout of torchvision's ImageNet weights
        model = create_model(arch, num_classes=1000, in_chans=3, input_size=(224, 224), dropout=dropout,
                             variant="imagenet")
        return model, Preprocess(IMAGENET_MEAN, IMAGENET_STD)
    refuse_namesake(arch, f"{arch} as a pretrained network")
    raise ConfigError(f"'{arch}' has no pretrained weights lienzo can load{did_you_mean(arch, TORCHVISION_ARCHS)}; "
                      f"known: {', '.join(TORCHVISION_ARCHS)}, timm:<name> (with timm installed)")


def load_pretrained(arch: str, weights: str | None = None, num_classes: int | None = None,
                    in_chans: int | None = None, dropout: float | None = None) -> Pretrained:
    """`arch` in the layout of its pretrained weights, with `weights` (a local file or a torchvision weights
    name; None: randomly initialised), adapted to `num_classes` and `in_chans`; in eval mode."""
    model, preprocess = _network(arch, dropout)
    class_names, source = None, "random"
    if weights:
        state, source, entry = _weights_state(arch, weights)
        if entry is not None:
            transform = entry.transforms()
            preprocess = Preprocess(list(transform.mean), list(transform.std), 3, transform.resize_size[0],
                                    transform.crop_size[0])
            class_names = list(entry.meta["categories"])  # only these weights say what their classes are
        state = to_lienzo_names(arch, model, state)
        head = classifier_name(model)
        saved = state.get(f"{head}.weight")
        if saved is not None and saved.shape[0] != model.get_submodule(head).out_features:
            _replace_head(model, head, saved.shape[0])  # saved for another class count: load them as they are
        load_state(model, state, source)
    return adapt(Pretrained(model.eval(), preprocess, source, class_names), num_classes, in_chans, arch)
