"""Pretrained weights into lienzo's own networks, and networks built from configs and run folders."""

import pytest
import torch

from lienzo.evaluate import load_run
import torchvision

from lienzo import load_config
from lienzo.errors import ConfigError, ModelError
from lienzo.models import list_models
from lienzo.models import create_model
from lienzo.models.build import build_model, load_run_network
from lienzo.models.pretrained import TORCHVISION_ARCHS, TORCHVISION_NAMES, classifier_name, load_pretrained


def _torchvision_file(tmp_path, arch, seed=0):
    """torchvision's network for lienzo's `arch`, randomly initialised, and its weights saved as torchvision does."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(TORCHVISION_NAMES.get(arch, arch), weights=None).eval()
    path = tmp_path / f"{arch}.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _torchvision_format(tmp_path, arch):
    """A weights file with torchvision's names and shapes for `arch`, every tensor zero (a 0-stride view of
    one element, so that even VGG-19's file is a few kilobytes and nothing is initialised)."""
    with torch.device("meta"):
        reference = torchvision.models.get_model(TORCHVISION_NAMES.get(arch, arch), weights=None)
    path = tmp_path / f"{arch}_zeros.pth"
    torch.save({k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in reference.state_dict().items()}, path)
    return path


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _cfg(arch, pretrained=None, *more):
    return load_config(None, [f"model.arch={arch}"] + ([f"model.pretrained={pretrained}"] if pretrained else [])
                       + list(more))


@pytest.mark.filterwarnings("ignore:.*meta parameter")  # loading into meta tensors copies nothing, on purpose
@pytest.mark.parametrize("arch", TORCHVISION_ARCHS)
@pytest.mark.parametrize("shape, more", [((3, 224, 224), []), ((1, 32, 32), ["model.variant=imagenet"])])
def test_one_name_builds_one_network_with_and_without_weights(tmp_path, arch, shape, more):
    """The same tensor names and shapes with and without torchvision's weights, for every name taking them."""
    path = _torchvision_format(tmp_path, arch)
    with torch.device("meta"):  # names and shapes only: seconds for all fourteen networks
        plain = build_model(_cfg(arch, None, *more), 10, shape)
        weighted = build_model(_cfg(arch, path, *more), 10, shape)
    assert type(weighted).__module__.startswith("lienzo.models") and _shapes(plain) == _shapes(weighted)


@pytest.mark.parametrize("arch", ["alexnet_tv", "vgg11_bn", "resnet18"])
def test_torchvision_weights_compute_what_torchvision_computes(tmp_path, arch):
    reference, path = _torchvision_file(tmp_path, arch)
    weighted = build_model(_cfg(arch, path), 10, (1, 32, 32))
    # torchvision's weights, renamed to lienzo's modules, compute what torchvision's network computes
    net = load_pretrained(arch, str(path))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(net.model(x), reference(x), atol=1e-4)
    assert classifier_name(weighted) == {"alexnet_tv": "fc8", "vgg11_bn": "fc8", "resnet18": "fc"}[arch]
    assert weighted.get_classifier().out_features == 10 and weighted.lienzo_new_layers == [classifier_name(weighted)]


@pytest.mark.filterwarnings("ignore:.*meta parameter")
def test_alexnet_is_the_lectures_layout_and_alexnet_tv_torchvisions(tmp_path):
    """One name, one network: the review found alexnet with 58,322,314 parameters without weights and
    57,044,810 (torchvision's layout, picked silently) with them, at 3×224×224 and 10 classes."""
    path = _torchvision_format(tmp_path, "alexnet_tv")
    with torch.device("meta"):
        lecture = build_model(_cfg("alexnet"), 10, (3, 224, 224))
        tv = [build_model(_cfg("alexnet_tv", weights), 10, (3, 224, 224)) for weights in (None, path)]
        lienzo_named = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in tv[0].state_dict().items()}
    assert sum(p.numel() for p in lecture.parameters()) == 58_322_314
    for model in tv:
        assert sum(p.numel() for p in model.parameters()) == 57_044_810
        assert model.features.conv1.out_channels == 64 and model.features.conv1.padding == (2, 2)
    torch.save(lienzo_named, tmp_path / "alexnet_tv_lienzo.pth")  # torchvision's layout under lienzo's names
    hint = r"torchvision's AlexNet weights do not fit alexnet \(the lecture's layout.*use alexnet_tv"
    for weights in (path, "IMAGENET1K_V1", tmp_path / "alexnet_tv_lienzo.pth"):
        with pytest.raises(ConfigError, match=hint), torch.device("meta"):
            build_model(_cfg("alexnet", weights), 10, (3, 224, 224))
    for weights in (None, str(path), "IMAGENET1K_V1"):
        with pytest.raises(ConfigError, match=hint):
            load_pretrained("alexnet", weights)
    with pytest.raises(ModelError, match="alexnet_tv has one layout, torchvision's"):
        build_model(_cfg("alexnet_tv", None, "model.variant=small"), 10, (1, 28, 28))


def test_alexnet_still_loads_its_own_weights_file(tmp_path):
    torch.manual_seed(0)
    source = create_model("alexnet", num_classes=5, input_size=(227, 227))
    torch.save(source.state_dict(), tmp_path / "lecture.pth")
    model = build_model(_cfg("alexnet", tmp_path / "lecture.pth"), 10, (3, 227, 227))
    assert torch.equal(model.neck.fc6.weight, source.neck.fc6.weight)  # all but the 5-class head
    assert model.features.conv1.out_channels == 96 and model.fc8.out_features == 10


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


def test_alexnet_runs_fine_tuned_from_torchvision_weights_load_as_alexnet_tv(tmp_path):
    """Before alexnet_tv, `alexnet` with torchvision's weights was torchvision's layout (and before that
    torchvision's module itself): such runs rebuild as alexnet_tv, the network their checkpoint holds."""
    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None, num_classes=3).eval()
    run = _fake_run(tmp_path / "old", "alexnet", tv.state_dict(), list("abc"), (3, 64, 64), pretrained="IMAGENET1K_V1")
    loaded = load_run_network(run)
    assert loaded.config.model.arch == "alexnet_tv"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), tv(x), atol=1e-5)
        assert torch.allclose(load_run(run).model(x), tv(x), atol=1e-5)  # what evaluate and predict use


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
        assert torch.allclose(load_run(run).model(x), tv(x), atol=1e-5)  # what evaluate and predict use
