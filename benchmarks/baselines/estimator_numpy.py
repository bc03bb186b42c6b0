r"""Score-function and pathwise gradient estimates in vectorized NumPy: the speed baseline of
``benchmarks/estimator_variance.py``.

The same computation as ``unigen.estimators.variance_report`` on the Gaussian problems: R
replicas of the N-draw estimate of :math:`\nabla_{\mu,\sigma} \mathbb{E}_{\mathcal{N}(\mu,\sigma^2)}[f]`,
then per coordinate the mean, the sample variance and the fourth central moment over the replicas.
Written the way one writes it fast in NumPy, not as a strawman: float32 throughout (as JAX),
``Generator.standard_normal(dtype=float32)`` (ziggurat), all R × N draws in one array, the
scores and derivatives in closed form (:math:`s_\mu = \epsilon/\sigma`,
:math:`s_\sigma = (\epsilon^2-1)/\sigma`; pathwise :math:`f'(x)` and :math:`f'(x)\epsilon`),
reductions along the draw axis. Nothing here imports unigen or JAX.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

F32 = np.float32


def functions(name: str, k: float) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """``(f, f')`` of ``gaussian-square|exp|cos`` and ``gaussian-sum-squares`` (the latter per
    coordinate: f sums over the last axis, f' is elementwise)."""
    k = F32(k)
    if name == "gaussian-square":
        return (lambda x: (x - k) ** 2), (lambda x: F32(2) * (x - k))
    if name == "gaussian-exp":
        return (lambda x: np.exp(-k * x * x)), (lambda x: F32(-2) * k * x * np.exp(-k * x * x))
    if name == "gaussian-cos":
        return (lambda x: np.cos(k * x)), (lambda x: -k * np.sin(k * x))
    if name == "gaussian-sum-squares":
        return (lambda x: np.einsum("...d,...d->...", x, x)), (lambda x: F32(2) * x)
    raise ValueError(f"name: expected a Gaussian problem, got {name!r}")


def summarize(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, unbiased variance and fourth central moment over the replicas (axis 0)."""
    mean = g.mean(axis=0)
    centred = g - mean
    second = np.mean(centred * centred, axis=0)
    return mean, second * g.shape[0] / (g.shape[0] - 1), np.mean(centred**4, axis=0)


def estimate(name: str, estimator: str, *, mu: float, sigma: float, k: float, dim: int, n_samples: int,
             replicas: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, ...]]:
    """``{"mu": summary, "sigma": summary}`` of ``replicas`` N-draw estimates (``score`` or ``pathwise``)."""
    f, df = functions(name, k)
    mu, sigma = F32(mu), F32(sigma)
    shape = (replicas, n_samples, dim) if name == "gaussian-sum-squares" else (replicas, n_samples)
    eps = rng.standard_normal(shape, dtype=F32)
    x = mu + sigma * eps
    if estimator == "score":
        fx = f(x)
        if fx.ndim < eps.ndim:
            fx = fx[..., None]
        g_mu = np.mean(fx * eps, axis=1) / sigma
        g_sigma = np.mean(fx * (eps * eps - F32(1)), axis=1) / sigma
    elif estimator == "pathwise":
        d = df(x)
        g_mu = np.mean(d, axis=1)
        g_sigma = np.mean(d * eps, axis=1)
    else:
        raise ValueError(f"estimator: expected 'score' or 'pathwise', got {estimator!r}")
    return {"mu": summarize(g_mu), "sigma": summarize(g_sigma)}
