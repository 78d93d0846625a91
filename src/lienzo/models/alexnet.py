"""AlexNet: the lecture's 227×227 layout (Krizhevsky et al., 2012, one tower), a small-input variant, and
the layout of torchvision's ImageNet weights (Krizhevsky, 2014: 64-192-384-256-256 filters).

Modules are `features.conv1` ... `features.pool5`, `neck.fc6`, `neck.fc7` (each followed by its ReLU,
`neck.relu6`/`neck.relu7`) and the classifier `fc8`, whatever the layout; torchvision's weights are
renamed to these when they load (lienzo.models.pretrained).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import ModelError
from .base import Classifier, init_weights
from .registry import register_model, small_input

_RELU = dict(inplace=True)


def _paper_features(in_chans: int) -> nn.Sequential:
    # 227×227: 96@11×11/4 → 55, pool → 27, 256@5×5 → 27, pool → 13, 384, 384, 256 @3×3, pool → 6
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_chans, 96, 11, stride=4), relu1=nn.ReLU(**_RELU), pool1=nn.MaxPool2d(3, 2),
        conv2=nn.Conv2d(96, 256, 5, padding=2), relu2=nn.ReLU(**_RELU), pool2=nn.MaxPool2d(3, 2),
        conv3=nn.Conv2d(256, 384, 3, padding=1), relu3=nn.ReLU(**_RELU),
        conv4=nn.Conv2d(384, 384, 3, padding=1), relu4=nn.ReLU(**_RELU),
        conv5=nn.Conv2d(384, 256, 3, padding=1), relu5=nn.ReLU(**_RELU), pool5=nn.MaxPool2d(3, 2),
    ))


def _torchvision_features(in_chans: int) -> nn.Sequential:
    # 224×224: 64@11×11/4 pad 2 → 55, pool → 27, 192@5×5 → 27, pool → 13, 384, 256, 256 @3×3, pool → 6
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_chans, 64, 11, stride=4, padding=2), relu1=nn.ReLU(**_RELU), pool1=nn.MaxPool2d(3, 2),
        conv2=nn.Conv2d(64, 192, 5, padding=2), relu2=nn.ReLU(**_RELU), pool2=nn.MaxPool2d(3, 2),
        conv3=nn.Conv2d(192, 384, 3, padding=1), relu3=nn.ReLU(**_RELU),
        conv4=nn.Conv2d(384, 256, 3, padding=1), relu4=nn.ReLU(**_RELU),
        conv5=nn.Conv2d(256, 256, 3, padding=1), relu5=nn.ReLU(**_RELU), pool5=nn.MaxPool2d(3, 2),
    ))


def _small_features(in_chans: int) -> nn.Sequential:
    # 28-32 px: 5×5 then 3×3 convolutions, three 2× poolings
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_chans, 64, 5, padding=2), relu1=nn.ReLU(**_RELU), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(64, 192, 5, padding=2), relu2=nn.ReLU(**_RELU), pool2=nn.MaxPool2d(2),
        conv3=nn.Conv2d(192, 384, 3, padding=1), relu3=nn.ReLU(**_RELU),
        conv4=nn.Conv2d(384, 256, 3, padding=1), relu4=nn.ReLU(**_RELU),
        conv5=nn.Conv2d(256, 256, 3, padding=1), relu5=nn.ReLU(**_RELU), pool5=nn.MaxPool2d(2),
    ))


class AlexNet(Classifier):
    head_name = "fc8"

    def __init__(self, num_classes: int, in_chans: int, input_size, dropout: float = 0.5, layout: str = "paper"):
        super().__init__()
        builders = {"paper": (_paper_features, 6, 4096), "torchvision": (_torchvision_features, 6, 4096),
                    "small": (_small_features, 3, 1024)}
        make, pooled, hidden = builders[layout]
        self.features = make(in_chans)
        self.neck = nn.Sequential(OrderedDict(
            avgpool=nn.AdaptiveAvgPool2d(pooled), flatten=nn.Flatten(),
            drop6=nn.Dropout(dropout), fc6=nn.Linear(256 * pooled * pooled, hidden), relu6=nn.ReLU(**_RELU),
            drop7=nn.Dropout(dropout), fc7=nn.Linear(hidden, hidden), relu7=nn.ReLU(**_RELU),
        ))
        self.num_features = hidden
        self.fc8 = nn.Linear(hidden, num_classes)
        init_weights(self)


@register_model
def alexnet(*, num_classes=1000, in_chans=3, input_size=(227, 227), dropout=0.5, variant="auto"):
    """AlexNet: the lecture's 227×227 layout, or a small-input variant under 64 px (variant "torchvision":
    the layout of torchvision's ImageNet weights, which model.pretrained picks by itself)."""
    if variant == "torchvision":
        layout = "torchvision"
    elif variant in ("auto", "small", "imagenet"):
        layout = "small" if small_input(input_size, variant) else "paper"
    else:
        raise ModelError(f"alexnet: model.variant must be auto, small, imagenet or torchvision, got {variant!r}")
    return AlexNet(num_classes, in_chans, input_size, dropout, layout)
