"""VGG-11/13/16/19 (Simonyan & Zisserman, 2014), with or without batch norm.

ImageNet layout: five poolings, 7×7 adaptive pool, fc6/fc7 of 4096 (VGG-16: 138 M parameters).
Small-input layout (under 64 px): the fifth pooling is dropped, global average pooling, fc of 512.
Modules are `features.conv1_1` ... `features.pool5`, `neck.fc6`/`neck.fc7` and the classifier `fc8`;
torchvision's weights (`features.0`, `classifier.6`, ...) are renamed to these when they load.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from lienzo.models.base import Classifier, init_weights
from lienzo.models.registry import register_model, small_input

CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(cfg: list, in_chans: int, batch_norm: bool, small: bool) -> nn.Sequential:
    """conv{block}_{i} names (conv1_1 ... conv5_4) as in the paper, so layer patterns read naturally."""
    layers, cin, block, index = OrderedDict(), in_chans, 1, 1
    if small:
        cfg = cfg[:-1]
    for item in cfg:
        if item == "M":
            layers[f"pool{block}"] = nn.MaxPool2d(2)
            block, index = block + 1, 1
            continue
        conv = nn.Sequential(nn.Conv2d(cin, item, 3, padding=1), *( [nn.BatchNorm2d(item)] if batch_norm else []), nn.ReLU(inplace=True))
        layers[f"conv{block}_{index}"] = conv
        cin, index = item, index + 1
    return nn.Sequential(layers)


class VGG(Classifier):
    head_name = "fc8"

    def __init__(self, cfg, num_classes, in_chans, input_size, batch_norm=False, dropout=0.5, small=False):
        super().__init__()
        self.features = make_features(cfg, in_chans, batch_norm, small)
        pooled, hidden = (1, 512) if small else (7, 4096)
        self.neck = nn.Sequential(OrderedDict(
            avgpool=nn.AdaptiveAvgPool2d(pooled), flatten=nn.Flatten(),
            fc6=nn.Linear(512 * pooled * pooled, hidden), relu6=nn.ReLU(inplace=True), drop6=nn.Dropout(dropout),
            fc7=nn.Linear(hidden, hidden), relu7=nn.ReLU(inplace=True), drop7=nn.Dropout(dropout),
        ))
        self.num_features = hidden
        self.fc8 = nn.Linear(hidden, num_classes)
        init_weights(self)


def _builder(depth: int, batch_norm: bool):
    def build(*, num_classes=1000, in_chans=3, input_size=(224, 224), dropout=0.5, variant="auto"):
        return VGG(CFGS[f"vgg{depth}"], num_classes, in_chans, input_size, batch_norm, dropout,
                   small=small_input(input_size, variant))

    build.__name__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    build.__doc__ = f"VGG-{depth}{' with batch norm' if batch_norm else ''}."
    return build


for _depth in (11, 13, 16, 19):
    for _bn in (False, True):
        register_model(_builder(_depth, _bn))
