"""The GAN networks (registry kind "gan"): shapes, block counts, sizes, spectral norm, the peer's
architecture and initialisation, and `lienzo summary` on them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from lienzo.cli import main
from lienzo.errors import ModelError
from lienzo.models import create_model, list_models
from lienzo.models.gan import GAN, ResBlock
from lienzo.models.summary import format_summary, summary

GANS = list_models(kind="gan")
PEER = Path(__file__).resolve().parents[3] / "shared" / "peers" / "torch_wgan_gp.py"


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_gan_registry():
    assert GANS == ["dcgan", "wgan_resnet"]
    gan = create_model("wgan_resnet", channels=4, image_size=64)  # the kind's defaults fill the rest
    assert isinstance(gan, GAN)
    assert (gan.channels, gan.image_size, gan.maps, gan.z_dim) == (4, 64, 128, 128)
    assert (create_model("dcgan").maps, create_model("dcgan").z_dim) == (64, 100)


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("channels, size", [(1, 32), (3, 32), (4, 32), (1, 64), (3, 64), (4, 64)])
def test_shapes_and_value_range(name, channels, size):
    torch.manual_seed(0)
    gan = create_model(name, channels=channels, image_size=size, maps=8, z_dim=16)
    z = gan.sample_noise(3)
    images = gan.generator(z)
    assert z.shape == (3, 16) and images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1 and images.std() > 0.01  # tanh, and not a constant image
    assert torch.equal(gan(z), images)  # forward is the generator
    scores = gan.critic(images)
    assert scores.shape == (3,) and scores.dtype == torch.float32
    assert scores.unique().numel() == 3  # raw scores per image, not one value or a squashed probability


@pytest.mark.parametrize("size, ups", [(8, 1), (16, 2), (32, 3), (64, 4), (128, 5)])
def test_block_counts_follow_the_image_size(size, ups):
    gan = create_model("wgan_resnet", image_size=size, maps=4)
    up_blocks = [m for m in gan.generator.modules() if isinstance(m, ResBlock) and m.resample == "up"]
    downs = [m for m in gan.critic.modules() if getattr(m, "resample", None) == "down"]
    residual = [m for m in gan.critic.blocks]
    assert len(up_blocks) == ups
    assert len(downs) == ups - 1 and len(residual) == ups - 1 + 2 + (ups == 1)  # to 8×8, then two more
    dc = create_model("dcgan", image_size=size, maps=4)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in dc.generator.modules()) == ups + 1
    assert sum(isinstance(m, nn.Conv2d) for m in dc.critic.modules()) == ups + 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in dc.critic.modules())


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("size", [0, 4, 30, 48, 224])
def test_a_size_not_4_times_a_power_of_two_is_a_model_error(name, size):
    with pytest.raises(ModelError, match=rf"{name} cannot make {size}×{size} images: .*4·2\^n \(8, 16, 32, 64"):
        create_model(name, image_size=size)


def test_bad_counts_are_model_errors():
    with pytest.raises(ModelError, match="wgan_resnet: channels must be a whole number ≥ 1, got 0"):
        create_model("wgan_resnet", channels=0)
    with pytest.raises(ModelError, match="dcgan: maps must be"):
        create_model("dcgan", maps=-2)
    with pytest.raises(ModelError, match="wgan_resnet takes no num_classes"):
        create_model("wgan_resnet", num_classes=10)


@pytest.mark.parametrize("name", GANS)
def test_spectral_norm_wraps_every_critic_layer_and_bounds_it(name):
    torch.manual_seed(0)
    gan = create_model(name, maps=8, spectral_norm=True)
    layers = [m for m in gan.critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(is_parametrized(m, "weight") for m in layers)
    assert not any(is_parametrized(m) for m in gan.generator.modules())
    assert not any(is_parametrized(m) for m in create_model(name, maps=8).critic.modules())
    for _ in range(30):  # each training-mode forward refines the power iteration
        gan.critic(torch.randn(2, 3, 32, 32))
    for layer in layers:
        largest = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert largest == pytest.approx(1.0, abs=0.02)


def test_wgan_resnet_parameter_count_by_hand():
    gan = create_model("wgan_resnet", channels=3, image_size=32, maps=128)
    conv3, conv1, bn = 128 * 128 * 9 + 128, 128 * 128 + 128, 2 * 128
    up_block = 2 * bn + 2 * conv3 + conv1
    generator = (128 * 2048 + 2048) + 3 * up_block + bn + (128 * 3 * 9 + 3)
    first = (3 * 128 * 9 + 128) + conv3 + (3 * 128 + 128)
    critic = first + (2 * conv3 + conv1) + 2 * (2 * conv3) + 129
    assert (_count(gan.generator), _count(gan.critic)) == (generator, critic) == (1_204_483, 1_053_825)


def _peer():
    if not PEER.is_file():
        pytest.skip(f"the peer loop {PEER} is not on this machine")
    spec = importlib.util.spec_from_file_location("torch_wgan_gp", PEER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PEER_NAMES = {"c1": "conv1", "c2": "conv2", "b1": "norm1", "b2": "norm2", "sc": "shortcut", "out.0": "to_image.norm",
              "out.2": "to_image.conv"}


def _ours(key: str) -> str:
    """A peer tensor's name ("generator.blocks.0.c1.weight") in lienzo's ("generator.blocks.0.conv1.weight")."""
    for theirs, mine in PEER_NAMES.items():
        key = key.replace(f".{theirs}.", f".{mine}.")
    return key


@pytest.mark.parametrize("size, channels", [(32, 3), (64, 4)])
def test_the_peer_loop_networks_seed_for_seed(size, channels):
    """Same seed → the peer's starting weights exactly, and the same functions: the generator everywhere,
    the critic on non-negative images (the peer applies a ReLU to the input image where the paper's first
    critic block has none)."""
    peer = _peer()
    torch.manual_seed(0)
    generator, critic = peer.Generator(size, channels, 8), peer.Critic(size, channels, 8)
    torch.manual_seed(0)
    gan = create_model("wgan_resnet", channels=channels, image_size=size, maps=8)
    theirs = {_ours(k): v for k, v in {**{f"generator.{k}": v for k, v in generator.state_dict().items()},
                                      **{f"critic.{k}": v for k, v in critic.state_dict().items()}}.items()}
    mine = gan.state_dict()
    assert sorted(theirs) == sorted(mine)
    assert all(torch.equal(theirs[k], mine[k]) for k in mine)
    z = torch.randn(5, 128)
    assert torch.allclose(gan.generator(z), generator(z), atol=1e-6)
    x = torch.rand(5, channels, size, size)
    assert torch.allclose(gan.critic(x), critic(x), atol=1e-5)
    assert not torch.allclose(gan.critic(x - 1), critic(x - 1), atol=1e-3)
    full = create_model("wgan_resnet", channels=channels, image_size=size, maps=128)
    assert _count(full) == _count(peer.Generator(size, channels, 128)) + _count(peer.Critic(size, channels, 128))


@pytest.mark.parametrize("name", GANS)
def test_backward_through_critic_of_generator(name):
    torch.manual_seed(0)
    gan = create_model(name, channels=4, maps=8, z_dim=16)
    gan.critic(gan.generator(gan.sample_noise(4))).mean().backward()
    for part in (gan.generator, gan.critic):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_sample_noise_is_standard_normal_and_seeded():
    gan = create_model("dcgan", maps=4, z_dim=10)
    first = gan.sample_noise(2000, generator=torch.Generator().manual_seed(7))
    again = gan.sample_noise(2000, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    assert torch.equal(first, torch.randn(2000, 10, generator=torch.Generator().manual_seed(7)))
    assert first.shape == (2000, 10) and first.device.type == "cpu"
    assert abs(float(first.mean())) < 0.03 and float(first.std()) == pytest.approx(1.0, abs=0.03)


def test_dcgan_starts_from_radfords_initialisation():
    torch.manual_seed(0)
    gan = create_model("dcgan", image_size=64, maps=32)
    convs = [m for m in gan.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert float(weights.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(weights.std()) == pytest.approx(0.02, rel=0.02)
    norms = torch.cat([m.weight.detach() for m in gan.generator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert float(norms.mean()) == pytest.approx(1.0, abs=0.01) and float(norms.std()) == pytest.approx(0.02, rel=0.2)


def test_summary_counts_both_networks():
    info = summary("wgan_resnet")  # the kind's default: 3×32×32
    generator, critic = info["networks"]
    assert (info["kind"], info["input"], info["z_dim"], info["maps"]) == ("gan", [3, 32, 32], 128, 128)
    assert (generator["network"], generator["input"], critic["network"], critic["input"]) == \
        ("generator", [128], "critic", [3, 32, 32])
    assert (generator["parameters"], critic["parameters"], info["parameters"]) == (1_204_483, 1_053_825, 2_258_308)
    # multiply-adds: each up-block's two 3×3 and one 1×1 convolution at its output side r: 128·128·19·r²
    assert generator["macs"] == 128 * 2048 + 128 * 128 * 19 * (8 ** 2 + 16 ** 2 + 32 ** 2) + 128 * 3 * 9 * 32 ** 2
    assert critic["macs"] == (3 * 128 * 9 * 32 ** 2 + 128 * 128 * 9 * 32 ** 2 + 3 * 128 * 16 ** 2  # first block
                              + 2 * 128 * 128 * 9 * 16 ** 2 + 128 * 128 * 8 ** 2  # down-block
                              + 4 * 128 * 128 * 9 * 8 ** 2 + 128)  # two blocks at 8×8, the linear head
    shapes = {row["layer"]: row["output"] for net in info["networks"] for row in net["layers"]}
    assert shapes["generator.fc"] == [2048] and shapes["generator.blocks.2.conv2"] == [128, 32, 32]
    assert shapes["generator.to_image.tanh"] == [3, 32, 32] and shapes["critic.blocks.1.shortcut"] == [128, 8, 8]
    assert shapes["critic.fc"] == [1]
    assert sum(row["parameters"] for row in generator["layers"]) == generator["parameters"]
    text = format_summary(info)
    assert "generator  input 128" in text and "critic  input 3×32×32" in text and "2,258,308" in text


def test_summary_cli_on_gans(capsys):
    assert main(["summary", "dcgan", "--input", "4,64,64", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    generator, critic = info["networks"]
    assert generator["layers"][-2]["output"] == [4, 64, 64] and critic["layers"][-1]["output"] == [1, 1, 1]
    # 100→512 (4×4), 512→256, 256→128, 128→64 transposed 4×4 convolutions, 64→4; four batch norms
    assert generator["parameters"] == 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 4 * 16 \
        + 2 * (512 + 256 + 128 + 64)
    for args, message in [(["--num-classes", "3"], "dcgan is a GAN: it takes no number of classes"),
                          (["--input", "3,32,64"], "dcgan makes square images"),
                          (["--input", "3,48,48"], "dcgan cannot make 48×48 images")]:
        assert main(["summary", "dcgan", *args]) == 2
        assert message in capsys.readouterr().err
