"""Classifiers registered by name. Importing this package registers every family."""

from . import alexnet, basenet, fastnet, resnet, vgg  # noqa: F401  (registration)
from .base import Classifier, conv_out
from .registry import create_model, list_models, register_model

__all__ = ["Classifier", "conv_out", "create_model", "list_models", "register_model"]
