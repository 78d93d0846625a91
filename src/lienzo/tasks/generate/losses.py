"""The GAN objectives: WGAN-GP's critic loss and gradient penalty, the non-saturating and hinge losses."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("lienzo")

# -- losses ------------------------------------------------------------------------------------------

def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = ε·real + (1 − ε)·fake, one ε per sample.

    The gradient's norm is taken in fp32 whatever the autocast precision: in bf16 the squared sum over a
    64×64×4 image would lose the digits that make (‖g‖ − 1)² small."""
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grads.float().flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def critic_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic's loss (lower is better for the critic) for real and generated samples' scores."""
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    if kind == "wgan-gp":
        return fake_scores.mean() - real_scores.mean()
    if kind == "hinge":
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()  # ns: −log σ(D(x)) − log(1 − σ(D(G(z))))


def generator_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    fake_scores = fake_scores.float()
    if kind == "ns":
        return F.softplus(-fake_scores).mean()  # −log σ(D(G(z)))
    return -fake_scores.mean()  # wgan-gp and hinge
