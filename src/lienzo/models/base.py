"""The face every lienzo classifier has (after timm): features, head, classifier reset, layer groups."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output width of a convolution or pooling: W₂ = (W₁ − F + 2P) / S + 1."""
    return (size - kernel + 2 * padding) // stride + 1


class Classifier(nn.Module):
    """Subclasses build `features` (image → feature map), `neck` (feature map → pre-logit vector of
    `num_features`) and `head` (the last linear layer), and name their layer groups."""

    num_features: int
    head_name = "head"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.neck(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return getattr(self, self.head_name)

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialised last layer for num_classes outputs."""
        setattr(self, self.head_name, nn.Linear(self.num_features, num_classes))

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        """Named groups of layers from input to output, for fine-tuning rates, freezing and plots."""
        groups = OrderedDict()
        for name, module in self.features.named_children():
            if any(True for _ in module.parameters()):
                groups[f"features.{name}"] = module
        for name, module in self.neck.named_children():
            if any(True for _ in module.parameters()):
                groups[f"neck.{name}"] = module
        groups[self.head_name] = self.get_classifier()
        return groups


def init_weights(model: nn.Module) -> nn.Module:
    """He initialisation for convolutions, unit batch norm; linear layers keep PyTorch's default
    (uniform in ±1/√fan_in)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
