r"""The wake-sleep step of ``plain_jax_sbn.py`` in PyTorch, for the SBN rows of the race.

The same SBN-200 Helmholtz machine (generative prior log-odds a[200], W[200, 784], b[784];
recognition V[784, 200], c[200]; weights N(0, 0.1²), biases 0); per step the wake update of θ on
``h ~ q(h | x)`` (drawn without gradient), then the sleep update of λ on dreams ``(h, x) ~ p``,
each with its own ``torch.optim.Adam``, both losses read with ``.item()``. Nothing here imports
unigen or JAX.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

DATA_DIM = 784
HIDDEN = 200
INIT_SCALE = 0.1


def build(seed: int = 0, learning_rate: float = 1e-3):
    """``(theta, lam, theta_adam, lam_adam)``: the two parameter dicts and their optimizers."""
    generator = torch.Generator().manual_seed(seed)
    theta = {"prior": torch.zeros(HIDDEN), "w": INIT_SCALE * torch.randn(HIDDEN, DATA_DIM, generator=generator),
             "b": torch.zeros(DATA_DIM)}
    lam = {"v": INIT_SCALE * torch.randn(DATA_DIM, HIDDEN, generator=generator), "c": torch.zeros(HIDDEN)}
    for tensor in (*theta.values(), *lam.values()):
        tensor.requires_grad_(True)
    return (theta, lam, torch.optim.Adam(theta.values(), lr=learning_rate),
            torch.optim.Adam(lam.values(), lr=learning_rate))


def bernoulli_log_prob(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, values, reduction="none").sum(-1)


def train_step(theta, lam, theta_adam, lam_adam, x: torch.Tensor) -> tuple[float, float]:
    rows = x.shape[0]
    with torch.no_grad():
        h = torch.bernoulli(torch.sigmoid(x @ lam["v"] + lam["c"]))
    theta_adam.zero_grad()
    wake = -(bernoulli_log_prob(theta["prior"].expand(rows, HIDDEN), h)
             + bernoulli_log_prob(h @ theta["w"] + theta["b"], x)).mean()
    wake.backward()
    theta_adam.step()
    with torch.no_grad():
        dream_h = torch.bernoulli(torch.sigmoid(theta["prior"]).expand(rows, HIDDEN))
        dream_x = torch.bernoulli(torch.sigmoid(dream_h @ theta["w"] + theta["b"]))
    lam_adam.zero_grad()
    sleep = -bernoulli_log_prob(dream_x @ lam["v"] + lam["c"], dream_h).mean()
    sleep.backward()
    lam_adam.step()
    return wake.item(), sleep.item()
