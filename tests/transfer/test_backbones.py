"""Pretrained backbones from local files only, layer aliases, adaptation to other heads and inputs."""

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from lienzo.errors import ConfigError, ModelError
from lienzo.models.pretrained import TORCHVISION_NAMES
from lienzo.transfer.backbones import load_backbone
from lienzo.transfer.layers import FeatureExtractor


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


def _same(model, state):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_weights_from_local_pth_and_safetensors(tmp_path, resnet18_state):
    pth, st = tmp_path / "r18.pth", tmp_path / "r18.safetensors"
    torch.save({"state_dict": {f"module.{k}": v for k, v in resnet18_state.items()}}, pth)  # DDP-style wrapping
    save_file({k: v.contiguous() for k, v in resnet18_state.items()}, str(st))
    for path in (pth, st):
        backbone = load_backbone("resnet18", str(path))
        assert _same(backbone.model, resnet18_state)
        assert backbone.class_names is None  # 1000 outputs, but nothing says they are ImageNet's classes
        assert not backbone.model.training


def test_weights_name_from_the_torch_hub_cache(tmp_path, monkeypatch, resnet18_state):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(ModelError, match=r"resnet18-f37072fd\.pth in .*hub/checkpoints"):
            load_backbone("resnet18", "IMAGENET1K_V1")
        (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
        torch.save(resnet18_state, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
        backbone = load_backbone("resnet18", "IMAGENET1K_V1")
    finally:
        torch.hub._hub_dir = None  # back to $TORCH_HOME/hub
    assert _same(backbone.model, resnet18_state)
    p = backbone.preprocess
    assert (p.resize, p.crop, p.mean) == (256, 224, [0.485, 0.456, 0.406])
    assert backbone.class_names[-1] == "toilet tissue"
    with pytest.raises(ConfigError, match="not a weights name of resnet18"):
        load_backbone("resnet18", "IMAGENET1K_V9")


def test_mismatched_weights_and_unknown_backbones_are_clear_errors(tmp_path, resnet18_state):
    path = tmp_path / "r18.pth"
    torch.save(resnet18_state, path)
    with pytest.raises(ModelError, match="do not match ResNet"):
        load_backbone("resnet34", str(path))
    with pytest.raises(ModelError, match="not found"):
        load_backbone("resnet18", str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable weights file"):
        load_backbone("resnet18", str(tmp_path / "junk.pth"))
    with pytest.raises(ConfigError, match=r"did you mean resnet50"):
        load_backbone("resnet5O")


def test_a_missing_run_folder_is_said_to_be_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"backbone .*runs/gone: the folder .*runs/gone does not exist"):
        load_backbone(str(tmp_path / "runs" / "gone"))
    (tmp_path / "r18.pth").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file, not a run folder"):
        load_backbone(str(tmp_path / "r18.pth"))


def test_other_class_and_channel_counts_adapt_head_and_first_conv(tmp_path, resnet18_state):
    path = tmp_path / "r18.pth"
    torch.save(resnet18_state, path)
    backbone = load_backbone("resnet18", str(path), num_classes=7, in_chans=1)
    model = backbone.model
    assert model.fc.out_features == 7 and model.fc.in_features == 512
    assert torch.allclose(model.conv1.weight, resnet18_state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(model.layer1[0].conv1.weight, resnet18_state["layer1.0.conv1.weight"])
    assert backbone.class_names is None and backbone.preprocess.channels == 1 and len(backbone.notes) == 2
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 7)


def _stem_l2(m, x):
    return m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))


@pytest.mark.parametrize("arch, layer, reference", [  # on torchvision's own network with the same weights
    ("vgg11", "fc7", lambda m, x: m.classifier[:5](torch.flatten(m.avgpool(m.features(x)), 1))),
    ("vgg11", "fc6", lambda m, x: m.classifier[:2](torch.flatten(m.avgpool(m.features(x)), 1))),
    ("vgg11", "pool5", lambda m, x: m.features(x).flatten(1)),
    ("vgg11", "penultimate", lambda m, x: m.classifier[:5](torch.flatten(m.avgpool(m.features(x)), 1))),
    ("alexnet_tv", "pool5", lambda m, x: m.features(x).flatten(1)),
    ("alexnet_tv", "fc6", lambda m, x: m.classifier[:3](torch.flatten(m.avgpool(m.features(x)), 1))),
    ("alexnet_tv", "fc7", lambda m, x: m.classifier[:6](torch.flatten(m.avgpool(m.features(x)), 1))),
    ("alexnet_tv", "fc8", lambda m, x: m(x)),
    ("resnet18", "penultimate", lambda m, x: torch.flatten(m.avgpool(m.layer4(m.layer3(_stem_l2(m, x)))), 1)),
    ("resnet18", "layer2", lambda m, x: _stem_l2(m, x).flatten(1)),
    ("resnet18", "logits", lambda m, x: m(x)),
])
def test_layer_aliases_give_that_layers_activations(tmp_path, arch, layer, reference):
    torch.manual_seed(0)
    tv = torchvision.models.get_model(TORCHVISION_NAMES.get(arch, arch), weights=None).eval()
    torch.save(tv.state_dict(), tmp_path / "w.pth")
    backbone = load_backbone(arch, str(tmp_path / "w.pth"))
    x = torch.randn(2, 3, 224, 224) if arch != "resnet18" else torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got = FeatureExtractor(backbone, layer)(x)
        want = reference(tv, x)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-4)


def test_alexnet_backbone_with_torchvision_weights_is_alexnet_tv(tmp_path):
    # `alexnet` is the lecture's layout; torchvision's AlexNet weights load into alexnet_tv
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / "alexnet.pth")
    with pytest.raises(ConfigError, match=r"backbone alexnet: torchvision's AlexNet weights do not fit alexnet .*"
                                          r"use alexnet_tv"):
        load_backbone("alexnet", str(tmp_path / "alexnet.pth"))
    assert load_backbone("alexnet_tv", str(tmp_path / "alexnet.pth")).family == "alexnet"


def test_unknown_layer_lists_what_exists():
    with pytest.raises(ConfigError, match=r"layer 'fc9' does not exist in vgg16.*aliases: pool5, fc6, fc7, fc8"):
        FeatureExtractor(load_backbone("vgg16"), "fc9")


def test_timm_backbone_from_a_local_file(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=1000).eval()
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    backbone = load_backbone("timm:resnet18", str(path))
    assert _same(backbone.model, reference.state_dict()) and backbone.family == "timm"
    p = backbone.preprocess  # timm's own data config: crop 224 at crop_pct 0.95, bicubic
    assert (p.crop, p.resize, p.interpolation) == (224, 235, "bicubic") and p.mean[0] == pytest.approx(0.485)
    assert backbone.class_names is None  # a local file does not say which 1000 classes its head has
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        want = reference.forward_head(reference.forward_features(x), pre_logits=True)
        assert torch.allclose(FeatureExtractor(backbone, "penultimate")(x), want, atol=1e-5)
    adapted = load_backbone("timm:resnet18", str(path), num_classes=7, in_chans=1)
    assert adapted.model.fc.out_features == 7 and adapted.model.conv1.in_channels == 1
    assert adapted.preprocess.interpolation == "bicubic"
    with pytest.raises(ConfigError, match="timm has no model 'resnet181'"):
        load_backbone("timm:resnet181")
    with pytest.raises(ModelError, match="local file"):
        load_backbone("timm:resnet18", "IMAGENET1K_V1")


def test_batch_norm_folding_keeps_the_features(resnet18_state):
    from lienzo.transfer.features import FeatureRunner
    from lienzo.transfer.layers import fold_batch_norm

    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(resnet18_state)
    for m in model.modules():  # non-trivial statistics, so that folding has something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    from lienzo.transfer.backbones import Backbone, Preprocess

    backbone = Backbone("resnet18", model.eval(), "test", Preprocess([0.5] * 3, [0.25] * 3, 3, 64, 56), None, "resnet")
    folded = fold_batch_norm(backbone, "penultimate")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.model.modules())  # the original is untouched
    x = torch.randint(0, 256, (3, 3, 70, 60), dtype=torch.uint8)
    for layer in ("penultimate", "layer3"):
        fast = FeatureRunner(backbone, layer, precision="32")(x)
        plain = FeatureRunner(backbone, layer, precision="32", fold_norms=False)(x)
        assert fast.shape == plain.shape and abs(fast - plain).max() < 1e-4 * (abs(plain).max() + 1)
    assert fold_batch_norm(backbone, "bn1") is backbone  # asking for a batch norm's output: nothing folded
    assert fold_batch_norm(backbone, "layer3") is backbone  # a container the traced graph never calls
    assert fold_batch_norm(backbone, "layer3.1.conv2") is not backbone
