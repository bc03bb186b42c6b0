r"""The PyTorch examples VAE (``pytorch/examples``, ``vae/main.py``), re-written here for timing.

Its model, loss and optimizer, as that example has them: the encoder ``fc1`` 784→400 (ReLU) with
two heads ``fc21``/``fc22`` 400→20 for the mean and the log-variance, the decoder ``fc3`` 20→400
(ReLU) and ``fc4`` 400→784 followed by a sigmoid; the loss is the summed binary cross-entropy of
the reconstruction plus the closed-form KL to N(0, I),

.. math::  \ell(x) = -\sum_i \big[x_i \log \hat x_i + (1 - x_i) \log(1 - \hat x_i)\big]
   - \tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big),

summed over the batch, one reparameterized draw per example; ``torch.optim.Adam(lr=1e-3)``, and a
training step of ``zero_grad``, forward, ``backward``, ``loss.item()``, ``step`` as the example's
loop does. torch's own default initialization (``nn.Linear``). Nothing here imports unigen or JAX.

Usage::

    torch.set_num_threads(2)
    model, optimizer = build(seed=0)
    loss = train_step(model, optimizer, x)      # x: float32 tensor [B, 784] in {0, 1}
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DATA_DIM = 784
HIDDEN = 400
LATENT_DIM = 20


class ExamplesVAE(nn.Module):
    """784-400-20 encoder with mean and log-variance heads, 20-400-784 decoder with a sigmoid."""

    def __init__(self, hidden: int = HIDDEN, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.fc1 = nn.Linear(DATA_DIM, hidden)
        self.fc21 = nn.Linear(hidden, latent_dim)
        self.fc22 = nn.Linear(hidden, latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden)
        self.fc4 = nn.Linear(hidden, DATA_DIM)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.relu(self.fc1(x))
        return self.fc21(hidden), self.fc22(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.encode(x.view(-1, DATA_DIM))
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        return self.decode(z), mean, log_var


def negative_elbo_sum(reconstruction: torch.Tensor, x: torch.Tensor, mean: torch.Tensor,
                      log_var: torch.Tensor) -> torch.Tensor:
    """Summed BCE plus the closed-form KL, over the whole batch (the example's ``loss_function``)."""
    bce = F.binary_cross_entropy(reconstruction, x.view(-1, DATA_DIM), reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    return bce + kl


def build(seed: int = 0, learning_rate: float = 1e-3) -> tuple[ExamplesVAE, torch.optim.Adam]:
    """The model (torch's default initialization, seeded) and its Adam optimizer."""
    torch.manual_seed(seed)
    model = ExamplesVAE()
    model.train()
    return model, torch.optim.Adam(model.parameters(), lr=learning_rate)


def train_step(model: ExamplesVAE, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> float:
    """One Adam step on the batch ``x``; returns the summed loss as the example's loop reads it."""
    optimizer.zero_grad()
    reconstruction, mean, log_var = model(x)
    loss = negative_elbo_sum(reconstruction, x, mean, log_var)
    loss.backward()
    value = loss.item()
    optimizer.step()
    return value
