"""Pretrained backbones by name, with their weights and preprocessing from local files only.

    backbone = load_backbone("vgg19", weights="IMAGENET1K_V1")          # torch hub cache
    backbone = load_backbone("resnet50", weights="/models/r50.safetensors")
    backbone = load_backbone("runs/fashion_fast")                        # a model lienzo trained
    extractor = FeatureExtractor(backbone, "fc7")

Weights sources, in order: a lienzo run folder; a local `.pth`/`.pt`/`.safetensors` file; a torchvision
weights name (`IMAGENET1K_V1`, `DEFAULT`) looked up in `$TORCH_HOME/hub/checkpoints/` under the file name
torchvision would download. Nothing is ever downloaded: a missing file is an error naming the file and
the folder it goes in. Preprocessing (resize, crop, mean/std) and class names come with the weights.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..data.arrays import to_channels
from ..data.transforms import Normalizer
from ..errors import ConfigError, ModelError, did_you_mean

log = logging.getLogger("lienzo")

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TORCHVISION_BACKBONES = ("alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
                         "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

# Layer aliases per family: the names the thesis and the lectures use. "penultimate" is the input of the
# last linear layer everywhere (fc7 for AlexNet/VGG, the pooled vector for ResNets).
_ALIASES = {
    "alexnet": {"pool5": "features", "fc6": "classifier.2", "fc7": "classifier.5", "fc8": "classifier.6"},
    "vgg": {"pool5": "features", "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"},
    "resnet": {"pool5": "avgpool", "fc": "fc"},
}


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
        self._normalizer = Normalizer(self.mean, self.std)  # the same fused, cached op training uses

    def to_dict(self) -> dict:
        return asdict(self)

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
class Backbone:
    """A network, where its weights came from, how to feed it, and its class names (if it has a head)."""

    name: str
    model: nn.Module
    weights: str
    preprocess: Preprocess
    class_names: list[str] | None = None
    family: str = ""
    notes: list[str] = field(default_factory=list)
    spec: dict = field(default_factory=dict)  # load_backbone's arguments: how to load this backbone again


TIMM_PREFIX = "timm:"


def _timm_model(arch: str) -> tuple[nn.Module, Preprocess]:
    """A timm model by name, randomly initialised (weights come from a local file), and its preprocessing
    from timm's own configuration of it (mean/std, input size, crop fraction, interpolation)."""
    try:
        import timm
    except ImportError:
        raise ConfigError(f"{arch}: timm is not installed (pip install 'lienzo[timm]')") from None
    name = arch[len(TIMM_PREFIX):]
    if not timm.is_model(name):
        known = timm.list_models()
        raise ConfigError(f"{arch}: timm has no model '{name}'{did_you_mean(name, known)}")
    model = timm.create_model(name, pretrained=False)
    cfg = timm.data.resolve_model_data_config(model)
    size = int(cfg["input_size"][-1])
    resize = int(math.floor(size / cfg.get("crop_pct", 1.0)))
    interpolation = cfg.get("interpolation", "bilinear")
    preprocess = Preprocess(list(cfg["mean"]), list(cfg["std"]), int(cfg["input_size"][0]), resize, size,
                            interpolation=interpolation if interpolation in ("bilinear", "bicubic") else "bilinear")
    return model, preprocess


def _family(name: str) -> str:
    if name.startswith(TIMM_PREFIX):
        return "timm"
    for family in ("alexnet", "vgg", "resnet"):
        if name.startswith(family):
            return family
    return ""


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_weights(arch: str, weights_name: str):
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise ConfigError(f"model.weights: torchvision has no weights for '{arch}'") from None
    if weights_name not in enum.__members__:
        raise ConfigError(f"model.weights: '{weights_name}' is not a weights name of {arch}"
                          f"{did_you_mean(weights_name, list(enum.__members__))}; known: {', '.join(enum.__members__)}")
    return enum[weights_name]


def _read_state_dict(path: Path) -> dict:
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


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (name, module)
    if found is None:
        raise ModelError(f"{type(model).__name__} has no linear classifier layer")
    return found


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelError(f"{type(model).__name__} has no convolution")


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def adapt_head(model: nn.Module, num_classes: int) -> str | None:
    """Replace the last linear layer when the class count differs; returns what was done, for the log."""
    name, linear = _last_linear(model)
    if linear.out_features == num_classes:
        return None
    _set_module(model, name, nn.Linear(linear.in_features, num_classes))
    model.lienzo_new_layers = [*getattr(model, "lienzo_new_layers", []), name]  # no pretrained counterpart
    return f"new {name} layer for {num_classes} classes (was {linear.out_features})"


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


def load_backbone(arch: str, weights: str | None = None, num_classes: int | None = None,
                  in_chans: int | None = None) -> Backbone:
    """A backbone by torchvision name (or a lienzo run folder as `arch`), with weights from local files."""
    run = Path(arch) if Path(arch).is_dir() else Path(weights) if weights and Path(weights).is_dir() else None
    if run is not None:
        backbone = _from_run(run, num_classes)
        backbone.spec = {"backbone": str(run.resolve()), "weights": None, "num_classes": num_classes}
        return backbone
    if arch.startswith(TIMM_PREFIX):
        model, preprocess = _timm_model(arch)
    elif arch in TORCHVISION_BACKBONES:
        model, preprocess = torchvision.models.get_model(arch, weights=None), Preprocess(IMAGENET_MEAN, IMAGENET_STD)
    else:
        raise ConfigError(f"backbone '{arch}' is not known{did_you_mean(arch, TORCHVISION_BACKBONES)}; "
                          f"known: {', '.join(TORCHVISION_BACKBONES)}, timm:<name> (with timm installed), "
                          "or a lienzo run folder")
    class_names = None
    source = "random"
    looks_like_file = False
    if weights:
        looks_like_file = any(weights.endswith(ext) for ext in (".pth", ".pt", ".bin", ".safetensors")) or "/" in weights
        if looks_like_file:
            path = Path(weights).expanduser()
            state = _read_state_dict(path)
            source = str(path)
        elif arch.startswith(TIMM_PREFIX):
            raise ModelError(f"{arch}: timm weights come from a local file (.safetensors or .pth, e.g. the "
                             f"model.safetensors of the model's Hugging Face repository), not '{weights}'")
        else:
            entry = torchvision_weights(arch, weights)
            path = hub_checkpoint_dir() / Path(entry.url).name
            if not path.is_file():
                raise ModelError(f"weights {arch} {entry.name} not found: expected the file {path.name} in "
                                 f"{path.parent} (copy it there from {entry.url}, or set TORCH_HOME)")
            state = _read_state_dict(path)
            transform = entry.transforms()
            preprocess = Preprocess(list(transform.mean), list(transform.std), 3, transform.resize_size[0],
                                    transform.crop_size[0])
            class_names = list(entry.meta["categories"])
            source = f"{entry} ({path})"
        head_name, head = _last_linear(model)
        saved_head = state.get(f"{head_name}.weight")
        if saved_head is not None and saved_head.shape[0] != head.out_features:
            adapt_head(model, saved_head.shape[0])  # weights saved for another class count: load them as they are
        _load(model, state, source)
        if class_names is None and _last_linear(model)[1].out_features == 1000:
            class_names = list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    backbone = Backbone(arch, model.eval(), source, preprocess, class_names, _family(arch))
    _adapt(backbone, num_classes, in_chans)
    if weights and looks_like_file:
        weights = str(Path(weights).expanduser().resolve())
    backbone.spec = {"backbone": arch, "weights": weights, "num_classes": num_classes, "in_chans": in_chans}
    return backbone


def load_matching(model: nn.Module, path: str) -> list[str]:
    """Load the tensors of a weights file whose names and shapes fit the model (e.g. all but a head for
    another class count); an error when nothing fits. Returns the names left at their initial values."""
    state = _read_state_dict(Path(path).expanduser())
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


def _load(model: nn.Module, state: dict, source: str):
    try:
        result = model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).split("\n")
        detail = next((line.strip() for line in first[1:] if line.strip()), first[0])
        raise ModelError(f"{source}: weights do not match {type(model).__name__} ({detail[:160]})") from None
    return result


def _adapt(backbone: Backbone, num_classes: int | None, in_chans: int | None) -> None:
    for note in (adapt_head(backbone.model, num_classes) if num_classes else None,
                 adapt_input(backbone.model, in_chans) if in_chans else None):
        if note:
            log.info("%s: %s", backbone.name, note)
            backbone.notes.append(note)
    if num_classes and backbone.class_names and len(backbone.class_names) != num_classes:
        backbone.class_names = None
    if in_chans and in_chans != backbone.preprocess.channels:
        p = backbone.preprocess
        mean, std = (sum(p.mean) / len(p.mean), sum(p.std) / len(p.std))
        backbone.preprocess = Preprocess([mean] * in_chans, [std] * in_chans, in_chans, p.resize, p.crop, p.size,
                                         p.interpolation)


def _from_run(run: Path, num_classes: int | None) -> Backbone:
    from ..evaluate import load_run

    loaded = load_run(run)
    channels, height, width = loaded.input_shape
    preprocess = Preprocess(list(loaded.mean), list(loaded.std), channels, None, None, (height, width))
    backbone = Backbone(loaded.config.model.arch, loaded.model.eval(), f"lienzo run {run}", preprocess,
                        list(loaded.class_names), _family(loaded.config.model.arch))
    _adapt(backbone, num_classes, None)
    return backbone


def layer_aliases(backbone: Backbone) -> dict[str, str]:
    aliases = dict(_ALIASES.get(backbone.family, {})) if not backbone.weights.startswith("lienzo run") else {}
    aliases["penultimate"] = "<input of the last linear layer>"
    aliases["logits"] = "<the model's output>"
    if "fc7" in aliases:
        aliases["penultimate"] = aliases["fc7"]
    return aliases


def resolve_layer(backbone: Backbone, layer: str) -> str:
    """An alias or a module name → the module name to hook ("" for the model's output)."""
    aliases = layer_aliases(backbone)
    target = aliases.get(layer, layer)
    if target == "<the model's output>":
        return ""
    if target == "<input of the last linear layer>":
        return "<pre:" + _last_linear(backbone.model)[0] + ">"
    names = dict(backbone.model.named_modules())
    if target not in names or target == "":
        known = [n for n in names if n and n.count(".") <= 1]
        raise ConfigError(f"layer '{layer}' does not exist in {backbone.name}{did_you_mean(layer, list(aliases) + known)}; "
                          f"aliases: {', '.join(aliases)}; modules: {', '.join(known[:40])}"
                          + (" ..." if len(known) > 40 else ""))
    return target


def fold_batch_norm(backbone: Backbone, layer: str) -> Backbone:
    """The backbone with every batch norm that follows a convolution folded into it (inference only):
    the same features up to float rounding, ~12 % faster for ResNet-50 on this CPU. The backbone is
    returned unchanged when the network cannot be traced, or when the layer asked for is not a module
    the traced graph calls (a folded batch norm, or a container such as `layer3`)."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.model.modules()):
        return backbone
    from torch.fx.experimental.optimization import fuse

    target = resolve_layer(backbone, layer)
    try:
        folded = fuse(backbone.model.eval())  # a traced copy; the original stays as it is
    except Exception as err:  # noqa: BLE001  (fx raises many types on untraceable code)
        log.debug("batch norm not folded (%s: %s)", type(err).__name__, err)
        return backbone
    called = {node.target for node in folded.graph.nodes if node.op == "call_module"}
    module = target.removeprefix("<pre:").removesuffix(">")
    if module and module not in called:  # the traced graph calls leaf modules only: a hook elsewhere never fires
        return backbone
    return replace(backbone, model=folded)


class _Stop(Exception):
    pass


class FeatureExtractor(nn.Module):
    """backbone + layer → N×D features (the layer's output, flattened). The forward pass stops at the layer."""

    def __init__(self, backbone: Backbone, layer: str = "penultimate"):
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model
        self.layer = layer
        self.target = resolve_layer(backbone, layer)
        self._captured = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.target == "":
            return self.model(x).flatten(1)
        pre = self.target.startswith("<pre:")
        module = self.model.get_submodule(self.target[5:-1] if pre else self.target)

        def capture(_module, inputs, output=None):
            self._captured = (inputs[0] if pre else output)
            raise _Stop

        handle = module.register_forward_pre_hook(capture) if pre else module.register_forward_hook(capture)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        out, self._captured = self._captured, None
        return out.flatten(1)
