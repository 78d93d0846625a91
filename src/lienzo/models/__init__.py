"""Models registered by name, one registry per kind (classifiers, GANs, captioning models). Importing this package registers
every family; building from configs, runs and pretrained weights is in models.build and models.pretrained."""

from lienzo.models import airnet, alexnet, basenet, captioning, fastnet, gan, resnet, vgg  # noqa: F401  (registration)
from lienzo.models.base import Classifier, conv_out
from lienzo.models.registry import create_model, kinds, list_models, register_model

__all__ = ["Classifier", "conv_out", "create_model", "kinds", "list_models", "register_model"]
