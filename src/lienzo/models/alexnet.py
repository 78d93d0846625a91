"""AlexNet under two names, one layout each:

- `alexnet`: the lecture's 227×227 layout (Krizhevsky et al., 2012, one tower: 96-256-384-384-256 filters),
  or a small-input layout under 64 px (`model.variant` forces one). No torchvision weights fit it.
- `alexnet_tv`: torchvision's layout (Krizhevsky, 2014, "one weird trick": 64-192-384-256-256 filters,
  224×224), the one torchvision's ImageNet weights fit, with and without them.

Modules are `features.conv1` ... `features.pool5`, `neck.fc6`, `neck.fc7` (each followed by its ReLU,
`neck.relu6`/`neck.relu7`) and the classifier `fc8` in every layout; torchvision's weights are renamed to
these when they load (lienzo.models.pretrained).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from torch import nn

from lienzo.errors import ModelError
from lienzo.models.base import Classifier, init_weights
from lienzo.models.registry import register_model, small_input


class Layout(NamedTuple):
    """conv1 ... conv5 as (filters, kernel, stride, padding); the max pooling after conv1, conv2 and conv5
    as (kernel, stride); the side of the adaptive pooling before fc6; the width of fc6 and fc7."""

    convs: tuple[tuple[int, int, int, int], ...]
    pool: tuple[int, int]
    pooled: int
    hidden: int


LAYOUTS = {
    # 227×227: 96@11×11/4 → 55, pool → 27, 256@5×5 → 27, pool → 13, 384, 384, 256 @3×3, pool → 6
    "paper": Layout(((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1)), (3, 2), 6, 4096),
    # 224×224: 64@11×11/4 pad 2 → 55, pool → 27, 192@5×5 → 27, pool → 13, 384, 256, 256 @3×3, pool → 6
    "torchvision": Layout(((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)),
                          (3, 2), 6, 4096),
    # 28-32 px: 5×5 then 3×3 convolutions, three 2× poolings
    "small": Layout(((64, 5, 1, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)), (2, 2), 3, 1024),
}
_POOLED_AFTER = (1, 2, 5)  # conv numbers followed by a max pooling


def make_features(layout: Layout, in_chans: int) -> nn.Sequential:
    """conv1, relu1, pool1, ..., conv5, relu5, pool5 as the layout says."""
    layers, channels = OrderedDict(), in_chans
    for number, (filters, kernel, stride, padding) in enumerate(layout.convs, start=1):
        layers[f"conv{number}"] = nn.Conv2d(channels, filters, kernel, stride=stride, padding=padding)
        layers[f"relu{number}"] = nn.ReLU(inplace=True)
        if number in _POOLED_AFTER:
            layers[f"pool{number}"] = nn.MaxPool2d(*layout.pool)
        channels = filters
    return nn.Sequential(layers)


class AlexNet(Classifier):
    head_name = "fc8"

    def __init__(self, num_classes: int, in_chans: int, input_size, dropout: float = 0.5, layout: str = "paper"):
        super().__init__()
        spec = LAYOUTS[layout]
        self.features = make_features(spec, in_chans)
        pooled, hidden, channels = spec.pooled, spec.hidden, spec.convs[-1][0]
        self.neck = nn.Sequential(OrderedDict(
            avgpool=nn.AdaptiveAvgPool2d(pooled), flatten=nn.Flatten(),
            drop6=nn.Dropout(dropout), fc6=nn.Linear(channels * pooled * pooled, hidden), relu6=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout), fc7=nn.Linear(hidden, hidden), relu7=nn.ReLU(inplace=True),
        ))
        self.num_features = hidden
        self.fc8 = nn.Linear(hidden, num_classes)
        init_weights(self)


@register_model
def alexnet(*, num_classes=1000, in_chans=3, input_size=(227, 227), dropout=0.5, variant="auto"):
    """AlexNet in the lecture's 227×227 layout (96-256-384-384-256 filters); a small-input one under 64 px.

    torchvision's ImageNet weights have another layout: they load into `alexnet_tv`."""
    layout = "small" if small_input(input_size, variant) else "paper"
    return AlexNet(num_classes, in_chans, input_size, dropout, layout)


@register_model
def alexnet_tv(*, num_classes=1000, in_chans=3, input_size=(224, 224), dropout=0.5, variant="auto"):
    """AlexNet in torchvision's 224×224 layout (64-192-384-256-256 filters), which its ImageNet weights fit.

    One layout whatever the input size: it needs inputs of at least 63×63 px (smaller images: `alexnet`)."""
    if variant not in ("auto", "imagenet"):
        raise ModelError(f"alexnet_tv has one layout, torchvision's: model.variant must be auto or imagenet, "
                         f"got {variant!r} (for small images use alexnet)")
    return AlexNet(num_classes, in_chans, input_size, dropout, "torchvision")
