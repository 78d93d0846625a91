import pytest
import torch

from lienzo.errors import ModelError
from lienzo.models import Classifier, create_model, list_models, register_model
from lienzo.models.registry import get_builder
from lienzo.summary import summary

ALL = list_models()


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_and_face(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=1, input_size=(28, 28))
    assert isinstance(model, Classifier)
    x = torch.randn(2, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    features = model.forward_features(x)
    assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(4)
    assert model(x).shape == (2, 4) and model.get_classifier().out_features == 4
    groups = model.layer_groups()
    assert len(groups) >= 3 and list(groups)[-1] == model.head_name
    grouped = {id(p) for g in groups.values() for p in g.parameters()}
    assert grouped == {id(p) for p in model.parameters()}  # every parameter is in a group


@pytest.mark.parametrize("name, shape, classes, expected", [
    ("basenet", (1, 28, 28), 10, 15_932),  # 156 + 2,416 + 12,850 + 510
    ("basenet", (3, 32, 32), 25, 24_197),  # 456 + 2,416 + 20,050 + 1,275
    ("lenet5", (1, 32, 32), 10, 61_706),
    ("vgg16", (3, 224, 224), 1000, 138_357_544),
    ("alexnet", (3, 227, 227), 1000, 62_378_344),
    ("resnet18", (3, 224, 224), 1000, 11_689_512),
    ("resnet50", (3, 224, 224), 1000, 25_557_032),
])
def test_parameter_counts(name, shape, classes, expected):
    with torch.device("meta"):
        model = create_model(name, num_classes=classes, in_chans=shape[0], input_size=shape[1:])
    assert sum(p.numel() for p in model.parameters()) == expected


def test_summary_output_volumes_follow_the_formula():
    info = summary("alexnet", (3, 227, 227))
    shapes = {row["layer"]: row["output"] for row in info["layers"]}
    assert shapes["features.conv1"] == [96, 55, 55]  # (227 - 11) / 4 + 1
    assert shapes["features.pool1"] == [96, 27, 27]  # (55 - 3) / 2 + 1
    assert shapes["features.pool5"] == [256, 6, 6]
    assert info["parameters"] == 62_378_344
    small = summary("basenet", (1, 28, 28))
    assert [r["output"] for r in small["layers"]][:3] == [[6, 24, 24], [6, 24, 24], [6, 12, 12]]


def test_registry_errors():
    with pytest.raises(ModelError, match="unknown architecture 'resnet81'.*did you mean"):
        create_model("resnet81")
    with pytest.raises(ValueError, match="registered twice"):
        register_model(get_builder("basenet"))
    with pytest.raises(ModelError, match="too small"):
        create_model("basenet", input_size=(8, 8))
    assert list_models("vgg1*") == ["vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def test_stems_follow_input_size():
    small = create_model("resnet18", input_size=(32, 32))
    large = create_model("resnet18", input_size=(224, 224))
    assert small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    assert large.conv1.kernel_size == (7, 7)
    forced = create_model("resnet18", input_size=(32, 32), variant="imagenet")
    assert forced.conv1.kernel_size == (7, 7)
