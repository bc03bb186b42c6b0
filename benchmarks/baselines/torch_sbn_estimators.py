r"""Plain PyTorch: one training step of the linear SBN-200 by each discrete estimator of the benchmark.

The same model, objective and estimators as ``benchmarks/discrete_sbn.py``, written by hand:
generative prior logits a[200], W[200, 784], b[784]; recognition V[784, 200], c[200]; the ELBO
f(h) = log p(h) + log p(x | h) − log q(h | x) per example; one Adam for (θ, φ). Per estimator:

* ``score``: one draw, the surrogate f(h) + ⊥(f(h))·log q(h | x);
* ``loo``: two draws, the score function with the leave-one-out baseline (f_k − mean_j f_j)·K/(K − 1);
* ``arm``: the antithetic pair, encoder-logit gradient (f(b̃) − f(b))(u − ½) (Yin & Zhou 2019), plus
  the pathwise part of ½(f(b) + f(b̃));
* ``muprop``: one draw, the first-order Taylor control f(μ) + f'(μ)(b − μ) at μ = σ(l) (Gu et al.
  2016): [f(b) − f(μ) − f'(μ)(b − μ)] log q(b) + f'(μ)·σ(l), f'(μ) by autograd through detached parameters;
* ``vimco``: K = 2 draws, the 2-sample bound with the leave-one-out (geometric-mean) per-sample
  learning signals (Mnih & Rezende 2016);
* ``straight-through``: h = σ(z) + ⊥(H(z) − σ(z)), z the logistic-noised logits, τ = 1;
* ``disarm``: one antithetic pair b = 1[u < σ(l)], b̃ = 1[u > σ(−l)], the encoder-logit gradient
  ½(f(b) − f(b̃))(−1)^{b̃}1[b ≠ b̃]σ(|l|) (Dong et al. 2020), plus the pathwise part of ½(f(b) + f(b̃));
* ``rebar``: z = l + log u − log(1 − u), b = H(z), z̃ ~ p(z | b) with fresh v, control
  c(z) = η f(σ(z/λ)) with f read through detached parameters; surrogate [f(b) − c(z̃)|_{⊥l}] log q(b) + c(z) − c(z̃) (Tucker et al. 2017),
  and (η, log λ) trained by a second Adam on ∇‖∇_φ‖² (``create_graph=True``);
* ``relax``: REBAR's control plus a network r(z) = w·tanh(W z + a) + β (16 tanh units, W ~ N(0, 1/200),
  w = β = 0) trained with (η, log λ) (Grathwohl et al. 2018).

Nothing here imports unigen or JAX.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

DATA_DIM = 784
HIDDEN = 200
NAMES = ("score", "loo", "arm", "disarm", "rebar", "relax", "muprop", "vimco", "straight-through")


def build(name: str, pixel_mean: np.ndarray, seed: int = 0, learning_rate: float = 1e-4,
          control_learning_rate: float = 1e-3) -> dict:
    generator = torch.Generator().manual_seed(seed)
    bias = torch.from_numpy(np.log(pixel_mean) - np.log1p(-pixel_mean)).float()
    params = {"prior": torch.zeros(HIDDEN), "w": 0.01 * torch.randn(HIDDEN, DATA_DIM, generator=generator),
              "b": bias, "v": 0.01 * torch.randn(DATA_DIM, HIDDEN, generator=generator), "c": torch.zeros(HIDDEN)}
    for tensor in params.values():
        tensor.requires_grad_(True)
    model = {"name": name, "params": params, "adam": torch.optim.Adam(params.values(), lr=learning_rate)}
    if name in ("rebar", "relax"):
        control = {"eta": torch.tensor(1.0, requires_grad=True),
                   "log_temperature": torch.tensor(float(np.log(0.5)), requires_grad=True)}
        if name == "relax":
            control.update(hidden_weights=torch.randn(16, HIDDEN, generator=generator) / HIDDEN**0.5,
                           hidden_biases=torch.zeros(16), output_weights=torch.zeros(16), output_bias=torch.tensor(0.0))
            for tensor in control.values():
                tensor.requires_grad_(True)
        model["control"] = control
        model["control_adam"] = torch.optim.Adam(control.values(), lr=control_learning_rate)
    return model


def bernoulli_log_prob(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, values, reduction="none").sum(-1)


def log_weight(p: dict, x: torch.Tensor, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """f per example, ``[B]``; ``logits`` are the encoder's (for −log q)."""
    rows = x.shape[0]
    return (bernoulli_log_prob(p["prior"].expand(rows, HIDDEN), h) + bernoulli_log_prob(h @ p["w"] + p["b"], x)
            - bernoulli_log_prob(logits, h))


def _uniform(shape) -> torch.Tensor:
    return torch.rand(shape).clamp_min(torch.finfo(torch.float32).tiny)


def train_step(model: dict, x: torch.Tensor) -> float:
    p, name = model["params"], model["name"]
    logits = x @ p["v"] + p["c"]
    u = _uniform(logits.shape)
    if name == "score":
        b = (u < torch.sigmoid(logits.detach())).float()
        f = log_weight(p, x, b, logits)
        log_q = bernoulli_log_prob(logits, b)
        loss = -(f + f.detach() * log_q).mean()
    elif name == "disarm":
        fixed = logits.detach()
        b, b_tilde = (u < torch.sigmoid(fixed)).float(), (u > torch.sigmoid(-fixed)).float()
        f, f_tilde = log_weight(p, x, b, logits), log_weight(p, x, b_tilde, logits)
        weights = 0.5 * (f - f_tilde).detach()[:, None]
        gradient = weights * (1 - 2 * b_tilde) * (b != b_tilde).float() * torch.sigmoid(fixed.abs())
        loss = -(0.5 * (f + f_tilde) + (gradient * logits).sum(-1)).mean()
    elif name == "arm":
        fixed = logits.detach()
        b, b_tilde = (u < torch.sigmoid(fixed)).float(), (u > torch.sigmoid(-fixed)).float()
        f, f_tilde = log_weight(p, x, b, logits), log_weight(p, x, b_tilde, logits)
        gradient = (f_tilde - f).detach()[:, None] * (u - 0.5)
        loss = -(0.5 * (f + f_tilde) + (gradient * logits).sum(-1)).mean()
    elif name == "loo":
        loss = -_loo_or_vimco(p, x, logits, torch.cat([u[None], _uniform(logits.shape)[None]]), vimco=False)
    elif name == "vimco":
        loss = -_loo_or_vimco(p, x, logits, torch.cat([u[None], _uniform(logits.shape)[None]]), vimco=True)
    elif name == "muprop":
        loss = -_muprop(p, x, logits, u)
    elif name == "straight-through":
        z = logits + u.log() - torch.log1p(-u)
        soft = torch.sigmoid(z)
        loss = -log_weight(p, x, soft + ((z > 0).float() - soft).detach(), logits).mean()
    elif name in ("rebar", "relax"):
        return _rebar_step(model, x, logits, u)
    else:
        raise ValueError(f"name: expected one of {', '.join(NAMES)}, got {name!r}")
    model["adam"].zero_grad()
    loss.backward()
    model["adam"].step()
    return loss.item()


def _loo_or_vimco(p: dict, x: torch.Tensor, logits: torch.Tensor, u: torch.Tensor, vimco: bool) -> torch.Tensor:
    """The batch mean of the surrogate over K = u.shape[0] draws: the ELBO by the leave-one-out
    baseline, or (``vimco``) the K-sample bound by VIMCO's per-sample signals."""
    b = (u < torch.sigmoid(logits.detach())).float()  # [K, B, H]
    count = b.shape[0]
    f = torch.stack([log_weight(p, x, b[k], logits) for k in range(count)])  # [K, B]
    log_q = torch.stack([bernoulli_log_prob(logits, b[k]) for k in range(count)])
    fixed = f.detach()
    if not vimco:
        centred = (fixed - fixed.mean(0)) * (count / (count - 1))
        return (f.mean(0) + (centred * log_q).mean(0)).mean()
    log_count = float(np.log(count))
    bound = torch.logsumexp(f, 0) - log_count
    others = (fixed.sum(0) - fixed) / (count - 1)  # [K, B]: f̂_{-j}
    signals = torch.stack([bound.detach() - (torch.logsumexp(torch.cat([fixed[:j], others[j:j + 1], fixed[j + 1:]]), 0)
                                             - log_count) for j in range(count)])
    return (bound + (signals * log_q).sum(0)).mean()


def _muprop(p: dict, x: torch.Tensor, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    mean = torch.sigmoid(logits.detach())
    b = (u < mean).float()
    f = log_weight(p, x, b, logits)
    frozen = {k: t.detach() for k, t in p.items()}
    anchor = mean.clone().requires_grad_(True)
    at_anchor = log_weight(frozen, x, anchor, logits.detach())
    (slope,) = torch.autograd.grad(at_anchor.sum(), anchor)
    linear = at_anchor.detach() + ((b - mean) * slope).sum(-1)
    residual = f.detach() - linear
    return (f + residual * bernoulli_log_prob(logits, b) + (slope * torch.sigmoid(logits)).sum(-1)).mean()


def _conditional(logits: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z̃ ~ p(z | b), reparameterized in the logits (Tucker et al. 2017)."""
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p, not_p = log_p.exp(), log_not_p.exp()
    log_u = torch.where(b > 0, torch.log1p(-p * (1 - v)), v.log() + log_not_p)
    log_not_u = torch.where(b > 0, log_p + torch.log1p(-v), torch.log1p(-v * not_p))
    return logits + log_u - log_not_u


def _rebar_step(model: dict, x: torch.Tensor, logits: torch.Tensor, u: torch.Tensor) -> float:
    p, control = model["params"], model["control"]
    v = _uniform(logits.shape)
    temperature = control["log_temperature"].exp()

    frozen = {k: t.detach() for k, t in p.items()}  # the control reads the model without a gradient path
    frozen_logits = logits.detach()

    def relaxed(z: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        value = control["eta"] * log_weight(frozen, x, torch.sigmoid(z / temperature), frozen_logits)
        if "hidden_weights" in control:  # RELAX's network r(z)
            hidden = torch.tanh(z @ control["hidden_weights"].T + control["hidden_biases"])
            value = value + hidden @ control["output_weights"] + control["output_bias"]
        return value

    z = logits + u.log() - torch.log1p(-u)
    b = (z.detach() > 0).float()
    z_tilde = _conditional(logits, b, v)
    fixed = _conditional(logits.detach(), b, v)
    f = log_weight(p, x, b, logits)
    log_q = bernoulli_log_prob(logits, b)
    weights = f.detach() - relaxed(fixed, logits)
    surrogate = f + weights * log_q + relaxed(z, logits) - relaxed(z_tilde, logits)
    loss = -surrogate.mean()
    names = list(p)
    grads = torch.autograd.grad(loss, [p[k] for k in names], create_graph=True)
    square = sum((g * g).sum() for k, g in zip(names, grads) if k in ("v", "c"))
    control_grads = torch.autograd.grad(square, list(control.values()))
    model["adam"].zero_grad()
    for k, g in zip(names, grads):
        p[k].grad = g.detach()
    model["adam"].step()
    model["control_adam"].zero_grad()
    for t, g in zip(control.values(), control_grads):
        t.grad = g
    model["control_adam"].step()
    return loss.item()
