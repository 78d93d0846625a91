import pytest
import torch

from lienzo.errors import ModelError
from lienzo.models import Classifier, create_model, list_models, register_model, registry
from lienzo.models.registry import get_builder, kinds, model_kind
from lienzo.models.summary import summary

CLASSIFIERS = list_models(kind="classifier")
DEEPEST = ("resnet101", "resnet152")  # resnet50's class and blocks, 10-40 s each here: run with -m slow
SIDE = {"alexnet_tv": 64}  # torchvision's AlexNet layout has no small-input variant (63 px at least)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in DEEPEST else n for n in CLASSIFIERS])
def test_forward_backward_and_face(name):
    torch.manual_seed(0)
    side = SIDE.get(name, 28)
    model = create_model(name, num_classes=7, in_chans=1, input_size=(side, side))
    assert isinstance(model, Classifier)
    x = torch.randn(2, 1, side, side)
    logits = model(x)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)  # frozen stems excepted
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
    ("alexnet_tv", (3, 224, 224), 1000, 61_100_840),  # torchvision's alexnet
    ("resnet18", (3, 224, 224), 1000, 11_689_512),
    ("resnet50", (3, 224, 224), 1000, 25_557_032),
    ("resnet101", (3, 224, 224), 1000, 44_549_160),  # torchvision's counts: the same networks
    ("resnet152", (3, 224, 224), 1000, 60_192_808),
    ("vgg13", (3, 224, 224), 1000, 133_047_848),
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


@pytest.mark.parametrize("name", list_models())
def test_description_is_one_complete_sentence(name):
    """`lienzo models` shows a builder's first docstring line: a whole sentence, not one cut mid-phrase."""
    lines = (get_builder(name).__doc__ or "").strip().splitlines()
    assert lines and lines[0].endswith(".") and (len(lines) == 1 or not lines[1].strip())


def test_registry_errors():
    with pytest.raises(ModelError, match="unknown architecture 'resnet81'.*did you mean"):
        create_model("resnet81")
    with pytest.raises(ValueError, match="registered twice"):
        register_model(get_builder("basenet"))
    with pytest.raises(ModelError, match="too small"):
        create_model("basenet", input_size=(8, 8))
    with pytest.raises(ModelError, match=r"too small for LeNet-5 \(needs at least 12×12\)"):
        create_model("lenet5", input_size=(8, 8))
    with pytest.raises(ModelError, match="basenet takes no dropout"):  # a key the user set: one error line
        create_model("basenet", dropout=0.5)
    with pytest.raises(ModelError, match="variant must be auto, small or imagenet"):
        create_model("resnet18", variant="tiny")
    assert list_models("vgg1*") == ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


@pytest.fixture
def scratch_registry():
    """Builders registered by a test are removed again, so other tests' loops never see them."""
    before = {kind: dict(models) for kind, models in registry._MODELS.items()}
    yield
    registry._MODELS.clear()
    registry._MODELS.update(before)


def test_a_bug_inside_a_builder_keeps_its_traceback(scratch_registry):
    @register_model
    def buggy_net(*, num_classes=10, in_chans=3, input_size=(32, 32)):
        """A builder with a programming error in it."""
        return torch.nn.Linear(in_chans, num_classes, bias="no", device=1 / 0)

    with pytest.raises(ZeroDivisionError):  # not turned into a one-line ModelError (exit 2)
        create_model("buggy_net")

    @register_model
    def typo_net(*, num_classes=10, in_chans=3, input_size=(32, 32)):
        """A builder calling a layer with a wrong argument."""
        return torch.nn.Linear(in_chans, num_classes, bais=False)

    with pytest.raises(TypeError, match="bais"):
        create_model("typo_net")


def test_one_registry_per_kind(scratch_registry):
    assert "classifier" in kinds() and set(list_models()) >= set(CLASSIFIERS)

    @register_model(kind="generator")
    def toy_generator(*, latent_dim=8, channels=3):
        """A toy generator."""
        return torch.nn.Linear(latent_dim, channels)

    assert kinds() == sorted({"caption", "classifier", "gan", "generator"})
    assert list_models(kind="generator") == ["toy_generator"]
    assert "toy_generator" not in list_models(kind="classifier") and "toy_generator" in list_models("toy*")
    assert model_kind("toy_generator") == "generator" and model_kind("resnet18") == "classifier"
    generator = create_model("toy_generator", latent_dim=4)  # no classifier defaults forced on another kind
    assert generator.in_features == 4 and generator.out_features == 3
    with pytest.raises(ValueError, match="registered twice"):  # names are unique across kinds
        register_model(kind="generator")(get_builder("basenet"))
    with pytest.raises(ModelError, match="unknown kind of model 'captioner'"):
        list_models(kind="captioner")


def test_stems_follow_input_size():
    small = create_model("resnet18", input_size=(32, 32))
    large = create_model("resnet18", input_size=(224, 224))
    assert small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    assert large.conv1.kernel_size == (7, 7)
    forced = create_model("resnet18", input_size=(32, 32), variant="imagenet")
    assert forced.conv1.kernel_size == (7, 7)
