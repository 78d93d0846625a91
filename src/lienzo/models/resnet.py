"""ResNet-18/34/50/101/152 (He et al., 2015) on torchvision's blocks, with the ImageNet stem (7×7/2 + max-pool)
or the CIFAR stem for small inputs (3×3/1, no max-pool). Module names match torchvision's, so its
state dicts load as they are."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet as TVResNet

from lienzo.models.base import Classifier
from lienzo.models.registry import register_model, small_input


class ResNet(Classifier, TVResNet):
    head_name = "fc"

    def __init__(self, block, layers, num_classes, in_chans, small: bool, dropout: float = 0.0):
        TVResNet.__init__(self, block, layers, num_classes=num_classes)
        if small:
            self.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        elif in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.num_features = 512 * block.expansion

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def layer_groups(self):
        stem = nn.ModuleList([self.conv1, self.bn1])
        return OrderedDict(stem=stem, layer1=self.layer1, layer2=self.layer2, layer3=self.layer3,
                           layer4=self.layer4, fc=self.fc)


def _builder(depth: int, block, layers):
    def build(*, num_classes=1000, in_chans=3, input_size=(224, 224), dropout=0.0, variant="auto"):
        return ResNet(block, layers, num_classes, in_chans, small_input(input_size, variant), dropout)

    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"ResNet-{depth}."
    return build


register_model(_builder(18, BasicBlock, [2, 2, 2, 2]))
register_model(_builder(34, BasicBlock, [3, 4, 6, 3]))
register_model(_builder(50, Bottleneck, [3, 4, 6, 3]))
register_model(_builder(101, Bottleneck, [3, 4, 23, 3]))
register_model(_builder(152, Bottleneck, [3, 8, 36, 3]))
