"""Pretrained weights into lienzo's own networks, and networks built from configs and run folders."""

import pytest
import torch
import torchvision

from lienzo.config import load_config
from lienzo.errors import ConfigError, ModelError
from lienzo.models import list_models
from lienzo.models.build import build_model, load_run_network
from lienzo.models.pretrained import classifier_name, load_pretrained


def _torchvision_file(tmp_path, arch, seed=0):
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None).eval()
    path = tmp_path / f"{arch}.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _cfg(arch, pretrained=None, *more):
    return load_config(None, [f"model.arch={arch}"] + ([f"model.pretrained={pretrained}"] if pretrained else [])
                       + list(more))


@pytest.mark.parametrize("arch", ["alexnet", "vgg11_bn", "resnet18"])
def test_one_name_builds_one_network_with_and_without_weights(tmp_path, arch):
    reference, path = _torchvision_file(tmp_path, arch)
    plain = build_model(_cfg(arch), 10, (1, 32, 32))
    weighted = build_model(_cfg(arch, path), 10, (1, 32, 32))
    assert type(plain) is type(weighted) and type(weighted).__module__.startswith("lienzo.models")
    # torchvision's weights, renamed to lienzo's modules, compute what torchvision's network computes
    net = load_pretrained(arch, str(path))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(net.model(x), reference(x), atol=1e-4)
    assert classifier_name(weighted) == {"alexnet": "fc8", "vgg11_bn": "fc8", "resnet18": "fc"}[arch]
    assert weighted.get_classifier().out_features == 10 and weighted.lienzo_new_layers == [classifier_name(weighted)]


def test_architectures_torchvision_has_weights_for_exist_without_weights_too():
    assert {"vgg13", "vgg13_bn", "resnet101", "resnet152"} <= set(list_models(kind="classifier"))


def test_class_names_come_only_with_imagenet_weights(tmp_path, monkeypatch):
    _, path = _torchvision_file(tmp_path, "resnet18")
    assert load_pretrained("resnet18", str(path)).class_names is None  # a 1000-class file of unknown classes
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(path.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    named = load_pretrained("resnet18", "IMAGENET1K_V1")
    assert len(named.class_names) == 1000 and named.class_names[0] == "tench"
    assert load_pretrained("resnet18", "IMAGENET1K_V1", num_classes=7).class_names is None


def test_weights_of_another_architecture_name_first_keys_and_counts(tmp_path):
    _, path = _torchvision_file(tmp_path, "resnet18")
    with pytest.raises(ModelError) as caught:
        load_pretrained("resnet34", str(path))
    message = str(caught.value)
    assert "weights do not match ResNet (missing 80 (layer1.2.conv1.weight, ...), unexpected 0)" in message
    _, vgg = _torchvision_file(tmp_path, "vgg11")
    with pytest.raises(ModelError, match=r"missing 102 \(conv1\.weight, \.\.\.\), unexpected 22 "
                                         r"\(features\.0\.weight, \.\.\.\)\)$"):
        load_pretrained("resnet18", str(vgg))


def test_pretrained_weights_need_the_imagenet_layout(tmp_path):
    _, path = _torchvision_file(tmp_path, "resnet18")
    with pytest.raises(ConfigError, match="variant=small does not fit"):
        build_model(_cfg("resnet18", path, "model.variant=small"), 10, (1, 28, 28))
    with pytest.raises(ConfigError, match="has no pretrained weights lienzo can load"):
        load_pretrained("basenet", str(path))


def _fake_run(folder, arch, state, class_names, input_shape, old_format=False, pretrained=None):
    """A run folder holding only what build needs: config and data facts in hyper_parameters, model.* tensors."""
    cfg = _cfg(arch, pretrained)
    info = {"class_names": class_names, "input_shape": list(input_shape), "mean": [0.5] * input_shape[0],
            "std": [0.25] * input_shape[0]}
    hp = {"config": cfg.to_dict(), **(info if old_format else {"info": info})}
    (folder / "checkpoints").mkdir(parents=True)
    torch.save({"hyper_parameters": hp, "state_dict": {f"model.{k}": v for k, v in state.items()}},
               folder / "checkpoints" / "best.ckpt")
    return folder


@pytest.mark.parametrize("old_format", [False, True])
def test_a_run_folder_as_pretrained_weights(tmp_path, old_format):
    torch.manual_seed(0)
    source = build_model(_cfg("basenet"), 3, (1, 28, 28))
    run = _fake_run(tmp_path / "source", "basenet", source.state_dict(), ["a", "b", "c"], (1, 28, 28), old_format)
    model = build_model(_cfg("basenet", run), 5, (3, 28, 28))
    assert model.head.out_features == 5 and model.features.conv1.in_channels == 3
    assert torch.equal(model.neck.fc1.weight, source.neck.fc1.weight)
    assert torch.allclose(model.features.conv1.weight, source.features.conv1.weight.repeat(1, 3, 1, 1) / 3)
    shell = build_model(_cfg("basenet", run), 5, (3, 28, 28), load_weights=False)
    assert {k: v.shape for k, v in shell.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match="is a basenet, but model.arch is lenet5"):
        build_model(_cfg("lenet5", run), 5, (3, 28, 28))
    loaded = load_run_network(run)
    assert loaded.class_names == ["a", "b", "c"] and loaded.input_shape == (1, 28, 28) and loaded.mean == [0.5]
    assert torch.equal(loaded.model.head.weight, source.head.weight) and not loaded.model.training


def test_runs_saved_with_torchvision_module_names_still_load(tmp_path):
    """Before lienzo built VGG/AlexNet itself, a fine-tuned vgg11 run held torchvision's names (features.0...)."""
    torch.manual_seed(0)
    tv = torchvision.models.vgg11(weights=None, num_classes=4).eval()
    tv.features[0] = torch.nn.Conv2d(1, 64, 3, padding=1)
    run = _fake_run(tmp_path / "old", "vgg11", tv.state_dict(), list("abcd"), (1, 64, 64), pretrained="IMAGENET1K_V1")
    loaded = load_run_network(run)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), tv(x), atol=1e-5)
