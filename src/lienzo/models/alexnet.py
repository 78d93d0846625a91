"""AlexNet: the lecture's 227×227 layout (Krizhevsky et al., 2012, one tower) and a small-input variant.

Module names follow torchvision (`features`, `avgpool`, `classifier`) so `classifier.4` is fc7 in both.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .base import Classifier, init_weights
from .registry import register_model, small_input


class AlexNet(Classifier):
    head_name = "fc8"

    def __init__(self, num_classes: int, in_chans: int, input_size, dropout: float = 0.5, small: bool = False):
        super().__init__()
        if small:  # 28-32 px: 5×5 then 3×3 convolutions, three 2× poolings
            self.features = nn.Sequential(OrderedDict(
                conv1=nn.Conv2d(in_chans, 64, 5, padding=2), relu1=nn.ReLU(inplace=True), pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(64, 192, 5, padding=2), relu2=nn.ReLU(inplace=True), pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(192, 384, 3, padding=1), relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 256, 3, padding=1), relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(256, 256, 3, padding=1), relu5=nn.ReLU(inplace=True), pool5=nn.MaxPool2d(2),
            ))
            pooled, hidden = 3, 1024
        else:  # 227×227: 96@11×11/4 → 55, pool → 27, 256@5×5 → 27, pool → 13, 384, 384, 256 @3×3, pool → 6
            self.features = nn.Sequential(OrderedDict(
                conv1=nn.Conv2d(in_chans, 96, 11, stride=4), relu1=nn.ReLU(inplace=True), pool1=nn.MaxPool2d(3, 2),
                conv2=nn.Conv2d(96, 256, 5, padding=2), relu2=nn.ReLU(inplace=True), pool2=nn.MaxPool2d(3, 2),
                conv3=nn.Conv2d(256, 384, 3, padding=1), relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 384, 3, padding=1), relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(384, 256, 3, padding=1), relu5=nn.ReLU(inplace=True), pool5=nn.MaxPool2d(3, 2),
            ))
            pooled, hidden = 6, 4096
        self.neck = nn.Sequential(OrderedDict(
            avgpool=nn.AdaptiveAvgPool2d(pooled), flatten=nn.Flatten(),
            drop6=nn.Dropout(dropout), fc6=nn.Linear(256 * pooled * pooled, hidden), relu6=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout), fc7=nn.Linear(hidden, hidden), relu7=nn.ReLU(inplace=True),
        ))
        self.num_features = hidden
        self.fc8 = nn.Linear(hidden, num_classes)
        init_weights(self)


@register_model
def alexnet(*, num_classes=1000, in_chans=3, input_size=(227, 227), dropout=0.5, variant="auto"):
    """AlexNet: the lecture's 227×227 layout, or a small-input variant under 64 px."""
    return AlexNet(num_classes, in_chans, input_size, dropout, small=small_input(input_size, variant))
