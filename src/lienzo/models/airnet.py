"""AirNet: the airbench recipe's network (Keller Jordan, 2024: 94 % on CIFAR-10 in seconds), for small
images: a frozen first convolution initialised by patch whitening, three conv groups with batch norm
without a learned scale, GELU, and a scaled linear head. `airnet_s` halves the first group and starts its
3×3 convolutions from the identity (airbench's partial identity initialisation), for CPUs without bf16.

The whitening convolution's 2·C·k² filters are the eigenvectors of the training patches' second-moment
matrix scaled by 1/√(eigenvalue + eps), and their negatives, so the network starts from decorrelated
patches instead of learning that in its first epochs; `init_from_data` sets them (the classify task calls
it with the normalised training images before the first step; a resumed run restores them instead).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from lienzo.models.base import Classifier, init_weights
from lienzo.models.registry import register_model


def patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """Every size×size patch of N×C×H×W images, as rows of C·size² values."""
    c = images.shape[1]
    unfolded = images.unfold(2, size, 1).unfold(3, size, 1)  # N, C, H', W', size, size
    return unfolded.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size).double()


def whitening_filters(images: torch.Tensor, size: int, eps: float = 5e-4) -> torch.Tensor:
    """(C·size², C, size, size) filters W with W Σ Wᵀ = diag(λ/(λ+eps)) for the patches' second-moment
    matrix Σ = E[p pᵀ] (eigenvectors by decreasing eigenvalue): whitened patches when eps = 0."""
    rows = patches(images, size)
    second_moment = rows.T @ rows / rows.shape[0]
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment)
    order = eigenvalues.argsort(descending=True)
    eigenvalues, eigenvectors = eigenvalues[order].clamp_min(0), eigenvectors[:, order]
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]
    return filters.reshape(-1, images.shape[1], size, size).float()


class ScaleFreeBatchNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1 (only the shift learns): as airbench, a little faster to train."""

    def __init__(self, channels: int, momentum: float = 0.4, eps: float = 1e-12):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


def conv_group(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(cin, cout, 3, padding=1, bias=False), pool=nn.MaxPool2d(2), norm1=ScaleFreeBatchNorm(cout),
        act1=nn.GELU(), conv2=nn.Conv2d(cout, cout, 3, padding=1, bias=False), norm2=ScaleFreeBatchNorm(cout),
        act2=nn.GELU(),
    ))


class AirNet(Classifier):
    def __init__(self, num_classes: int, in_chans: int, widths=(32, 64, 128), whiten_size: int = 2,
                 logit_scale: float = 1 / 9, dropout: float = 0.0, identity_init: bool = False):
        super().__init__()
        whiten_width = 2 * in_chans * whiten_size**2
        w1, w2, w3 = widths
        self.features = nn.Sequential(OrderedDict(
            whiten=nn.Conv2d(in_chans, whiten_width, whiten_size, bias=True), act=nn.GELU(),
            group1=conv_group(whiten_width, w1), group2=conv_group(w1, w2), group3=conv_group(w2, w3),
        ))
        self.neck = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten(), dropout=nn.Dropout(dropout),
        ))
        self.num_features = w3
        self.head = nn.Linear(w3, num_classes, bias=False)
        self.logit_scale = logit_scale
        init_weights(self)
        if identity_init:  # airbench's partial identity: a 3×3 convolution starts by passing its inputs on
            for module in self.features.modules():  # (where it has at least as many outputs as inputs; with
                # fewer, e.g. RGB's 24 whitened channels into 16, it would start as a channel selector)
                if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and \
                        module.out_channels >= module.in_channels:
                    with torch.no_grad():
                        nn.init.dirac_(module.weight[: module.in_channels])
        self.features.whiten.weight.requires_grad_(False)  # set from the data, then kept

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.neck(x)
        return x if pre_logits else self.get_classifier()(x) * self.logit_scale

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes, bias=False)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters (and their negatives) from normalised training images N×C×H×W."""
        conv = self.features.whiten
        filters = whitening_filters(images.float().cpu(), conv.kernel_size[0], eps)
        conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
        conv.bias.zero_()


@register_model
def airnet(*, num_classes=10, in_chans=3, input_size=(32, 32), width=32, dropout=0.0):
    """airbench's network at width 32 (groups 32-64-128), frozen patch-whitening stem."""
    return AirNet(num_classes, in_chans, (width, 2 * width, 4 * width), dropout=dropout)


@register_model
def airnet_s(*, num_classes=10, in_chans=3, input_size=(32, 32), dropout=0.0):
    """AirNet for CPUs: first group halved (16-64-128), partial identity init; 0.7x airnet's step."""
    # The first group convolves at full resolution before it pools: 28 % of airnet's multiply-adds but 37 %
    # of its fp32 forward time on 28-px images (27×27 maps), so halving its width saves most there.
    return AirNet(num_classes, in_chans, (16, 64, 128), dropout=dropout, identity_init=True)

