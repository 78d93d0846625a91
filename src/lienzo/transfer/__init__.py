"""Transfer learning: pretrained backbones, deep features, SVMs on them, t-SNE maps, fine-tuning."""

from .backbones import Backbone, FeatureExtractor, load_backbone, resolve_layer
from .features import extract_features, read_features

__all__ = ["Backbone", "FeatureExtractor", "extract_features", "load_backbone", "read_features", "resolve_layer"]
