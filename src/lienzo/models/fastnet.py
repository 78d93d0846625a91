"""FastNet: a compact residual network for small images, chosen for the Fashion-MNIST speed target.

The layout of the DAWNBench-winning CIFAR-10 ResNet-9 (Page, 2018: prep conv, three pooled stages,
residual blocks after the first and third) at a configurable width, which keeps most of the
accuracy at a fraction of the compute: the point on a 2-core CPU, where every FLOP shows.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from lienzo.models.base import Classifier, init_weights
from lienzo.models.registry import register_model


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FastNet(Classifier):
    def __init__(self, num_classes: int, in_chans: int, width: int = 32, dropout: float = 0.0):
        super().__init__()
        w = width
        self.features = nn.Sequential(OrderedDict(
            prep=conv_bn(in_chans, w),
            layer1=nn.Sequential(conv_bn(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w)),
            layer2=nn.Sequential(conv_bn(2 * w, 4 * w), nn.MaxPool2d(2)),
            layer3=nn.Sequential(conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), Residual(8 * w)),
        ))
        self.neck = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten(), dropout=nn.Dropout(dropout),
        ))
        self.num_features = 8 * w
        self.head = nn.Linear(8 * w, num_classes)
        init_weights(self)


@register_model
def fastnet(*, num_classes=10, in_chans=3, input_size=(32, 32), width=32, dropout=0.0):
    """FastNet, width 32 (channels 32-64-128-256)."""
    return FastNet(num_classes, in_chans, width, dropout)


@register_model
def fastnet_s(*, num_classes=10, in_chans=3, input_size=(32, 32), width=16, dropout=0.0):
    """FastNet at half width (channels 16-32-64-128)."""
    return FastNet(num_classes, in_chans, width, dropout)
