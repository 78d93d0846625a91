"""GAN networks, registry kind "gan": the WGAN-GP ResNet of Gulrajani et al. (2017) and the DCGAN baseline.

    gan = create_model("wgan_resnet", channels=4, image_size=64)     # RGB + mask, 64 px
    z = gan.sample_noise(16)                                          # 16 × z_dim, N(0, 1)
    images = gan.generator(z)                                         # 16 × 4 × 64 × 64 in [-1, 1]
    scores = gan.critic(images)                                       # 16 raw scores (no sigmoid)

Every GAN has the same face: `.generator` (z → images, tanh), `.critic` (images → one score each),
`z_dim`, `channels`, `image_size`, `maps` and `sample_noise`. Image sizes are 4·2^n (8, 16, 32, 64, …):
both networks start from, or end at, a 4×4 grid and double or halve it per block.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from lienzo.errors import ModelError
from lienzo.models.registry import register_model


def doublings(name: str, image_size: int) -> int:
    """n in image_size = 4·2^n (n ≥ 1): how many times the networks double or halve the 4×4 grid."""
    n = (image_size // 4).bit_length() - 1 if isinstance(image_size, int) and image_size >= 8 else 0
    if n < 1 or image_size != 4 * 2 ** n:
        raise ModelError(f"{name} cannot make {image_size}×{image_size} images: image_size must be 4·2^n "
                         "(8, 16, 32, 64, 128, 256, …)")
    return n


def _check_positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ModelError(f"{name}: {key} must be a whole number ≥ 1, got {value!r}")


class GAN(nn.Module):
    """A generator and its critic, kept together so they are built, saved and loaded as one model."""

    def __init__(self, generator: nn.Module, critic: nn.Module, *, z_dim: int, channels: int, image_size: int,
                 maps: int):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.z_dim, self.channels, self.image_size, self.maps = z_dim, channels, image_size, maps

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """n × z_dim standard normal noise on `device` (default: the model's). It is drawn on the random
        generator's own device and then moved, so one CPU generator and seed give the same noise for a
        model on any device (fixed noise for sample grids)."""
        if device is None:
            device = next(self.parameters()).device
        source = generator.device if generator is not None else device
        return torch.randn(n, self.z_dim, generator=generator, device=source).to(device)


def spectral_normalise(critic: nn.Module) -> nn.Module:
    """Every convolution and linear layer of the critic with spectral norm (Miyato et al. 2018), an
    alternative to the gradient penalty for keeping the critic Lipschitz."""
    for module in list(critic.modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            _spectral_norm(module)
    return critic


# ---- the WGAN-GP ResNet (Gulrajani et al. 2017, CIFAR-10 model) --------------------------------------

class ResBlock(nn.Module):
    """Residual block of the paper: up (generator, batch norm), down or neither (critic, no normalisation).

    Main path: [BN] ReLU [upsample ×2] conv3×3 [BN] ReLU conv3×3 [avg-pool 2]; the shortcut is a 1×1
    convolution (with the same upsampling or pooling) whenever the shape changes, else the identity.
    Nearest upsampling is the paper's depth-to-space of four copies; pooling before the 1×1 shortcut
    equals the paper's conv-then-pool (both are linear) at a quarter of the work."""

    def __init__(self, cin: int, cout: int, resample: str | None, norm: bool):
        super().__init__()
        self.resample = resample
        # None rather than nn.Identity without normalisation: `lienzo summary` then lists only real layers.
        self.norm1 = nn.BatchNorm2d(cin) if norm else None
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(cout) if norm else None
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (cin != cout or resample) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(x) if self.norm1 is not None else x)
        if self.resample == "up":
            h, x = F.interpolate(h, scale_factor=2), F.interpolate(x, scale_factor=2)
        h = self.conv1(h)
        h = self.conv2(F.relu(self.norm2(h) if self.norm2 is not None else h))
        if self.resample == "down":
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        return h + self.shortcut(x)


class FirstCriticBlock(nn.Module):
    """The paper's "optimized" first critic block: conv3×3, ReLU, conv3×3, avg-pool; shortcut avg-pool,
    conv1×1. No ReLU on the input image: images in [-1, 1] would lose their negative half."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.resample = "down" if down else None
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x)))
        if self.resample == "down":
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        return h + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """z → linear to maps×4×4 → n residual up-blocks → BN, ReLU, conv3×3 → channels, tanh."""

    def __init__(self, channels: int, maps: int, z_dim: int, ups: int):
        super().__init__()
        self.maps = maps
        self.fc = nn.Linear(z_dim, 4 * 4 * maps)
        self.blocks = nn.Sequential(*[ResBlock(maps, maps, "up", norm=True) for _ in range(ups)])
        self.to_image = nn.Sequential(OrderedDict(
            norm=nn.BatchNorm2d(maps), relu=nn.ReLU(), conv=nn.Conv2d(maps, channels, 3, padding=1), tanh=nn.Tanh(),
        ))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.blocks(self.fc(z).view(-1, self.maps, 4, 4)))


class ResNetCritic(nn.Module):
    """image → first block → down-blocks to 8×8 → two more residual blocks (no normalisation anywhere:
    the gradient penalty is per sample) → ReLU, global mean pool, linear → one score per image."""

    def __init__(self, channels: int, maps: int, downs: int):
        super().__init__()
        layers = [FirstCriticBlock(channels, maps, down=downs >= 1)]
        layers += [ResBlock(maps, maps, "down", norm=False) for _ in range(downs - 1)]
        layers += [ResBlock(maps, maps, None, norm=False) for _ in range(2)]
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(maps, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.blocks(x)).mean((2, 3))).squeeze(1)


@register_model(kind="gan")
def wgan_resnet(*, channels=3, image_size=32, maps=128, z_dim=128, spectral_norm=False):
    """WGAN-GP ResNet generator and critic (Gulrajani et al. 2017), 3/4/5 up-blocks at 32/64/128 px."""
    n = doublings("wgan_resnet", image_size)
    _check_positive("wgan_resnet", channels=channels, maps=maps, z_dim=z_dim)
    # PyTorch's default initialisation, drawn in the peer loop's order (generator first), so that one seed
    # gives the same starting weights as the plain loop this model's speed and numbers are compared with.
    generator = ResNetGenerator(channels, maps, z_dim, ups=n)
    critic = ResNetCritic(channels, maps, downs=n - 1)  # halves down to 8×8, as the paper's 32 px critic
    return GAN(generator, spectral_normalise(critic) if spectral_norm else critic,
               z_dim=z_dim, channels=channels, image_size=image_size, maps=maps)


# ---- DCGAN (Radford et al. 2016) ------------------------------------------------------------------------

class DCGANGenerator(nn.Module):
    """z → transposed conv 4×4 to maps·2^(n−1)×4×4, then n stride-2 transposed convs halving the maps,
    batch norm and ReLU after each but the last, tanh."""

    def __init__(self, channels: int, maps: int, z_dim: int, ups: int):
        super().__init__()
        width = maps * 2 ** (ups - 1)
        layers = [nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU()]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANCritic(nn.Module):
    """image → n stride-2 convs 4×4 doubling the maps from `maps`, LeakyReLU(0.2) after each, no batch
    norm (the gradient penalty is per sample; the convolutions keep their biases instead), then a 4×4
    convolution to one score."""

    def __init__(self, channels: int, maps: int, downs: int):
        super().__init__()
        layers, width = [nn.Conv2d(channels, maps, 4, 2, 1), nn.LeakyReLU(0.2)], maps
        for _ in range(downs - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def _dcgan_init(model: nn.Module) -> nn.Module:
    """Radford et al.'s initialisation: weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return model


@register_model(kind="gan")
def dcgan(*, channels=3, image_size=32, maps=64, z_dim=100, spectral_norm=False):
    """DCGAN generator and critic (Radford et al. 2016), the baseline; no batch norm in the critic."""
    n = doublings("dcgan", image_size)
    _check_positive("dcgan", channels=channels, maps=maps, z_dim=z_dim)
    generator = _dcgan_init(DCGANGenerator(channels, maps, z_dim, ups=n))
    critic = _dcgan_init(DCGANCritic(channels, maps, downs=n))
    return GAN(generator, spectral_normalise(critic) if spectral_norm else critic,
               z_dim=z_dim, channels=channels, image_size=image_size, maps=maps)
