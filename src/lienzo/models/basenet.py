"""The CIFAR-100 practice's BaseNet, its improved BaseNetPlus, and LeNet-5."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from lienzo.errors import ModelError
from lienzo.models.base import Classifier, conv_out, init_weights
from lienzo.models.registry import register_model


def _check_size(name: str, input_size, h: int, w: int, least: int) -> None:
    """A user mistake (images too small for the layout), not a bug: one clear ModelError line."""
    if h < 1 or w < 1:
        raise ModelError(f"input {tuple(input_size)} is too small for {name} (needs at least {least}×{least})")


class BaseNet(Classifier):
    """Exactly the practice's network: conv 5×5×6 valid, ReLU, max-pool 2; conv 5×5×16 valid, ReLU,
    max-pool 2; flatten; dense 50, ReLU; dense K."""

    def __init__(self, num_classes: int, in_chans: int, input_size: tuple[int, int]):
        super().__init__()
        h, w = (conv_out(conv_out(conv_out(conv_out(s, 5), 2, 2), 5), 2, 2) for s in input_size)
        _check_size("BaseNet", input_size, h, w, 16)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_chans, 6, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 16, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        ))
        self.neck = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(16 * h * w, 50), relu3=nn.ReLU()))
        self.num_features = 50
        self.head = nn.Linear(50, num_classes)


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class BaseNetPlus(Classifier):
    """The practice's improvement ladder applied to BaseNet: deeper (two 3×3 convolutions per stage,
    three stages), batch norm after every convolution, dropout before the classifier."""

    def __init__(self, num_classes: int, in_chans: int, input_size: tuple[int, int], dropout: float = 0.3,
                 widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        stages, cin = OrderedDict(), in_chans
        for i, width in enumerate(widths, 1):
            layers = _conv_bn(cin, width) + _conv_bn(width, width) + [nn.MaxPool2d(2)]
            stages[f"stage{i}"] = nn.Sequential(*layers)
            cin = width
        self.features = nn.Sequential(stages)
        self.neck = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
            fc1=nn.Linear(cin, 256), relu=nn.ReLU(inplace=True), dropout=nn.Dropout(dropout),
        ))
        self.num_features = 256
        self.head = nn.Linear(256, num_classes)
        init_weights(self)


class LeNet5(Classifier):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling: conv 5×5×6, pool, conv 5×5×16, pool,
    dense 120, dense 84, dense K. Inputs under 32 px are zero-padded in the first convolution,
    as MNIST's 28×28 digits were placed in a 32×32 field."""

    def __init__(self, num_classes: int, in_chans: int, input_size: tuple[int, int]):
        super().__init__()
        pad = 2 if min(input_size) < 32 else 0
        h, w = (conv_out(conv_out(conv_out(conv_out(s, 5, 1, pad), 2, 2), 5), 2, 2) for s in input_size)
        _check_size("LeNet-5", input_size, h, w, 12)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_chans, 6, 5, padding=pad), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 16, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        ))
        self.neck = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(), fc1=nn.Linear(16 * h * w, 120), relu3=nn.ReLU(), fc2=nn.Linear(120, 84), relu4=nn.ReLU(),
        ))
        self.num_features = 84
        self.head = nn.Linear(84, num_classes)


class MnistCNN(Classifier):
    """The lecture's Keras MNIST example (keras/examples/mnist_cnn.py): conv 3×3×32, conv 3×3×64,
    max-pool 2, dropout 0.25, dense 128, dropout 0.5, dense K."""

    def __init__(self, num_classes: int, in_chans: int, input_size: tuple[int, int], dropout: float = 0.5):
        super().__init__()
        h, w = (conv_out(conv_out(conv_out(s, 3), 3), 2, 2) for s in input_size)
        _check_size("the MNIST CNN", input_size, h, w, 6)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_chans, 32, 3), relu1=nn.ReLU(), conv2=nn.Conv2d(32, 64, 3), relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2), drop1=nn.Dropout(0.25),
        ))
        self.neck = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(), fc1=nn.Linear(64 * h * w, 128), relu3=nn.ReLU(), drop2=nn.Dropout(dropout),
        ))
        self.num_features = 128
        self.head = nn.Linear(128, num_classes)


@register_model
def mnist_cnn(*, num_classes=10, in_chans=1, input_size=(28, 28), dropout=0.5):
    """The lecture's Keras MNIST CNN (two 3×3 convolutions, dense 128, dropout)."""
    return MnistCNN(num_classes, in_chans, input_size, dropout)


@register_model
def basenet(*, num_classes=10, in_chans=3, input_size=(32, 32)):
    """The CIFAR-100 practice's BaseNet (two 5×5 convolutions, dense 50)."""
    return BaseNet(num_classes, in_chans, input_size)


@register_model
def basenet_plus(*, num_classes=10, in_chans=3, input_size=(32, 32), dropout=0.3):
    """BaseNet improved: three stages of two 3×3 conv + batch norm, dropout."""
    return BaseNetPlus(num_classes, in_chans, input_size, dropout=dropout)


@register_model
def lenet5(*, num_classes=10, in_chans=3, input_size=(32, 32)):
    """LeNet-5 (LeCun et al., 1998)."""
    return LeNet5(num_classes, in_chans, input_size)
