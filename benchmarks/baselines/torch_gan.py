r"""The same GAN as ``plain_jax_gan.py`` in PyTorch, written the way a PyTorch GAN loop usually is.

Generator 2-128-128-128-2 and discriminator 2-128-128-128-1 (log-odds), ReLU, torch's default
``nn.Linear`` initialization; per step: the discriminator's update on ``BCEWithLogits`` of real
(label 1) and detached generated (label 0) points, then the generator's non-saturating update
(generated points labelled 1), each network with its own ``torch.optim.Adam(lr, betas=(b1,
0.999))``, the two losses read with ``.item()``. Nothing here imports unigen or JAX.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DATA_DIM = 2
NOISE_DIM = 2
HIDDEN = (128, 128, 128)


def mlp(widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if index < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build(seed: int = 0, learning_rate: float = 1e-3, b1: float = 0.5):
    """``(generator, discriminator, generator_adam, discriminator_adam)``."""
    torch.manual_seed(seed)
    generator = mlp((NOISE_DIM, *HIDDEN, DATA_DIM))
    discriminator = mlp((DATA_DIM, *HIDDEN, 1))
    return (generator, discriminator,
            torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(b1, 0.999)),
            torch.optim.Adam(discriminator.parameters(), lr=learning_rate, betas=(b1, 0.999)))


def train_step(generator, discriminator, generator_adam, discriminator_adam, x: torch.Tensor) -> tuple[float, float]:
    """One discriminator update, then one generator update, on the real batch ``x`` [B, 2]."""
    rows = x.shape[0]
    ones, zeros = torch.ones(rows, 1), torch.zeros(rows, 1)
    discriminator_adam.zero_grad()
    fake = generator(torch.randn(rows, NOISE_DIM))
    d_loss = (F.binary_cross_entropy_with_logits(discriminator(x), ones)
              + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros))
    d_loss.backward()
    discriminator_adam.step()
    generator_adam.zero_grad()
    g_loss = F.binary_cross_entropy_with_logits(discriminator(generator(torch.randn(rows, NOISE_DIM))), ones)
    g_loss.backward()
    generator_adam.step()
    return d_loss.item(), g_loss.item()
