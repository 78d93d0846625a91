"""Transfer learning: pretrained backbones, deep features, SVMs on them, t-SNE maps, fine-tuning."""

from lienzo.transfer.backbones import Backbone, load_backbone
from lienzo.transfer.layers import FeatureExtractor, resolve_layer
from lienzo.transfer.estimators import DeepFeatures, predict_svm
from lienzo.transfer.features import FeatureRunner, extract_features, read_features

__all__ = ["Backbone", "DeepFeatures", "FeatureExtractor", "FeatureRunner", "extract_features", "load_backbone",
           "predict_svm", "read_features", "resolve_layer"]
