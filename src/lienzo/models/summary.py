"""Layer-by-layer output volumes and parameter counts (`lienzo summary`), and the model table (`lienzo models`).

    summary("vgg16", (3, 224, 224))                          # 138,357,544 parameters
    summary("wgan_resnet", settings={"maps": 32})            # the builder's keyword arguments (model.* keys)
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from lienzo.errors import ModelError
from lienzo.models import create_model, list_models
from lienzo.models.registry import KIND_DEFAULTS, get_builder, kinds, model_kind


def default_classes(input_shape) -> int:
    return 1000 if min(input_shape[1:]) >= 64 else 10


def summary(arch: str, input_shape=None, num_classes: int | None = None, settings: dict | None = None) -> dict:
    """Each leaf layer's output shape (C×H×W or features) and parameters, from one forward pass, for the
    kind of model `arch` is (its entry in SUMMARIES); `input_shape` None is the kind's default.
    `settings` are the builder's keyword arguments, as a training config's `model.*` keys give them
    ({"maps": 32} for a GAN, {"variant": "imagenet"} for a classifier; `lienzo summary` checks them).

    Spatial sizes follow W₂ = (W₁ − F + 2P)/S + 1. At 3×224×224 with 1000 classes VGG-16 has
    138,357,544 parameters; AlexNet at 3×227×227 about 62 M.
    """
    kind = model_kind(arch)
    if kind not in SUMMARIES:
        raise ModelError(f"lienzo summary does not describe {kind} models yet ({arch})")
    settings = dict(settings or {})
    info = SUMMARIES[kind](arch, input_shape, num_classes, **settings)
    return {**info, "settings": settings} if settings else info


def _classifier_summary(arch: str, input_shape, num_classes: int | None, **settings) -> dict:
    """A classifier from one image of `input_shape` (default 3×224×224) to its num_classes logits."""
    channels, height, width = input_shape = tuple(input_shape or (3, 224, 224))
    num_classes = num_classes or default_classes(input_shape)
    model = create_model(arch, num_classes=num_classes, in_chans=channels, input_size=(height, width),
                         **settings).eval()
    rows, macs = _trace(model, torch.zeros(1, channels, height, width))
    return {"arch": arch, "kind": "classifier", "input": list(input_shape), "num_classes": num_classes,
            "layers": rows, "parameters": _count(model), "macs": macs,
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def _gan_summary(arch: str, input_shape, num_classes: int | None, **settings) -> dict:
    """A GAN's two networks, each with its own rows, parameters and multiply-adds: the generator from one
    noise vector, the critic from one image of `input_shape` (C×S×S, default the kind's 3×32×32)."""
    if num_classes is not None:
        raise ModelError(f"{arch} is a GAN: it takes no number of classes (leave out --num-classes)")
    side = KIND_DEFAULTS["gan"]["image_size"]
    channels, height, width = tuple(input_shape or (KIND_DEFAULTS["gan"]["channels"], side, side))
    if height != width:
        raise ModelError(f"{arch} makes square images: --input {channels},{height},{width} must have height = width")
    model = create_model(arch, channels=channels, image_size=height, **settings).eval()
    networks = []
    for name, x in (("generator", torch.zeros(1, model.z_dim)), ("critic", torch.zeros(1, channels, height, width))):
        network = getattr(model, name)
        rows, macs = _trace(network, x, prefix=f"{name}.")
        networks.append({"network": name, "input": list(x.shape[1:]), "layers": rows, "parameters": _count(network),
                         "macs": macs})
    return {"arch": arch, "kind": "gan", "input": [channels, height, width], "z_dim": model.z_dim, "maps": model.maps,
            "networks": networks, "parameters": _count(model)}


class _OneCaption(torch.nn.Module):
    """A captioning model fed one image's features and one caption of `length` tokens (what _trace calls)."""

    def __init__(self, net: torch.nn.Module, length: int):
        super().__init__()
        self.net, self.length = net, length

    def forward(self, feats: torch.Tensor):
        tokens = torch.full((1, self.length), 4, dtype=torch.long)
        tokens[0, 0], tokens[0, -1] = 1, 2  # <start> … <end>
        if hasattr(self.net, "embed_sentences"):
            return self.net(feats, tokens, torch.tensor([self.length]))
        return self.net(feats, tokens)


def _caption_summary(arch: str, input_shape, num_classes: int | None, length: int = 16, **settings) -> dict:
    """A captioning model at its defaults (vocabulary 2,500) on one image's features (`input_shape`: D, or
    C,H,W for attention over a grid; default the builder's) and one caption of 16 tokens."""
    if num_classes is not None:
        raise ModelError(f"{arch} is a captioning model: it takes no number of classes (leave out --num-classes)")
    import inspect

    dim = int(input_shape[0]) if input_shape else inspect.signature(get_builder(arch)).parameters["feature_dim"].default
    model = create_model(arch, feature_dim=dim, **settings).eval()
    grid = tuple(input_shape[1:]) if input_shape and len(input_shape) == 3 else ((7, 7) if arch == "attend" else ())
    feats = torch.zeros(1, grid[0] * grid[1], dim) if grid else torch.zeros(1, dim)
    rows, macs = _trace(_OneCaption(model, length), feats)
    for row in rows:
        row["layer"] = row["layer"].removeprefix("net.")
    return {"arch": arch, "kind": "caption", "input": [dim, *grid], "vocabulary": KIND_DEFAULTS["caption"]["vocab_size"],
            "tokens": length, "layers": rows, "parameters": _count(model), "macs": macs}


SUMMARIES = {"classifier": _classifier_summary, "gan": _gan_summary, "caption": _caption_summary}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _trace(model: torch.nn.Module, x: torch.Tensor, prefix: str = "") -> tuple[list[dict], int]:
    """Each leaf module's output shape and own parameters, in call order, and the multiply-adds of
    model(x) for one sample (convolutions, linear layers, matmuls)."""
    rows, hooks = [], []
    for name, module in model.named_modules():
        if next(module.children(), None) is None and name:
            def hook(mod, _inputs, output, name=prefix + name):
                params = sum(p.numel() for p in mod.parameters(recurse=False))
                output = output[0] if isinstance(output, tuple) else output  # recurrent layers: (output, state)
                output = getattr(output, "data", output)  # a PackedSequence: its words × features
                rows.append({"layer": name, "type": type(mod).__name__, "output": list(output.shape[1:]),
                             "parameters": params})

            hooks.append(module.register_forward_hook(hook))
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return rows, counter.get_total_flops() // 2


def macs_per_image(model: torch.nn.Module, input_shape) -> float:
    """Multiply-adds of one forward pass of one image (convolutions, linear layers, matmuls)."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2



def macs_for_precision(model: torch.nn.Module, input_shape) -> float:
    """What `precision: auto` needs: the MACs per image, or a lower bound when the bound already decides.

    Every weight of a convolution or linear layer multiplies at least one input per image, so a model
    with more parameters than the bf16 threshold has at least that many MACs: only small models (where
    the count is cheap anyway) are run through the FLOP counter."""
    from lienzo.hardware import CPU_BF16_MIN_MACS

    params = sum(p.numel() for p in model.parameters())
    return float(params) if params >= CPU_BF16_MIN_MACS else macs_per_image(model, input_shape)


def format_summary(info: dict) -> str:
    """The summary as text, in the layout of its kind of model."""
    return FORMATS[info.get("kind", "classifier")](info)


def _settings_text(info: dict, shown: tuple[str, ...] = ()) -> str:
    """The model.* settings a summary was asked for (but those the title `shown` already), or ''."""
    return "".join(f"  model.{key}={value}" for key, value in info.get("settings", {}).items() if key not in shown)


def _format_classifier(info: dict) -> str:
    title = (f"{info['arch']}  input {'×'.join(map(str, info['input']))}  {info['num_classes']} classes"
             + _settings_text(info))
    return _layer_table(info, title, "multiply-adds per image")


def _format_gan(info: dict) -> str:
    """The generator's table, then the critic's, then the two networks' total."""
    head = (f"{info['arch']}  images {'×'.join(map(str, info['input']))}  z {info['z_dim']}  maps {info['maps']}"
            + _settings_text(info, shown=("maps", "z_dim")))
    tables = [_layer_table(net, f"{net['network']}  input {'×'.join(map(str, net['input']))}",
                           "multiply-adds per sample") for net in info["networks"]]
    return "\n\n".join([head, *tables, f"{'total parameters (generator + critic)':<68}{info['parameters']:>14,}"])


def _layer_table(info: dict, title: str, macs_label: str) -> str:
    lines = [title, f"{'layer':<28}{'type':<20}{'output':>20}{'parameters':>14}", "-" * 82]
    for row in info["layers"]:
        shape = "×".join(map(str, row["output"]))
        lines.append(f"{row['layer']:<28}{row['type']:<20}{shape:>20}{row['parameters']:>14,}")
    lines += ["-" * 82, f"{'total parameters':<68}{info['parameters']:>14,}", f"{macs_label:<68}{info['macs']:>14,}"]
    return "\n".join(lines)


def _format_caption(info: dict) -> str:
    title = (f"{info['arch']}  features {'×'.join(map(str, info['input']))}  vocabulary {info['vocabulary']:,}  "
             f"one caption of {info['tokens']} tokens" + _settings_text(info))
    return _layer_table(info, title, "multiply-adds per caption")


FORMATS = {"classifier": _format_classifier, "gan": _format_gan, "caption": _format_caption}


# The sizes each kind of model is counted at in `lienzo models`: column -> create_model arguments.
# Kinds not named here are counted once, at their builders' defaults.
COUNT_SIZES = {
    "classifier": {"params_32px_10": {"num_classes": 10, "in_chans": 3, "input_size": (32, 32)},
                   "params_224px_1000": {"num_classes": 1000, "in_chans": 3, "input_size": (224, 224)}},
    "gan": {"params_32px_3ch": {"channels": 3, "image_size": 32}, "params_64px_4ch": {"channels": 4, "image_size": 64}},
}

def models_table(pattern: str = "*", kind: str | None = None) -> list[dict]:
    """Every registered model (of one kind, or all kinds in turn) with its parameter counts: a classifier's
    at 3×32×32/10 classes and 3×224×224/1000 classes, other kinds' at their defaults. Built on the meta
    device, so no memory is allocated and nothing is initialised."""
    rows = []
    for each_kind in [kind] if kind is not None else kinds():
        for name in list_models(pattern, kind=each_kind):
            counts = {}
            for column, arguments in COUNT_SIZES.get(each_kind, {"params": {}}).items():
                with torch.device("meta"):
                    model = create_model(name, **arguments)
                counts[column] = sum(p.numel() for p in model.parameters())
            doc = (get_builder(name).__doc__ or "").strip().splitlines()
            rows.append({"kind": each_kind, "name": name, **counts, "description": doc[0] if doc else ""})
    return rows


