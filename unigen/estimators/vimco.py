r"""VIMCO (Mnih & Rezende 2016): the multi-sample bound's gradient with per-sample baselines.

VIMCO estimates the gradient of a *multi-sample* objective, not of :math:`\mathbb{E}[f]`: with
K draws :math:`h_1, \dots, h_K \sim q_\lambda` and f read as a log-weight
(:math:`f(h) = \log p(x, h) - \log q(h \mid x)` for a variational posterior),

.. math::
   \mathcal{L}^K = \mathbb{E}_{h_{1:K} \sim q_\lambda}\bigl[\hat L(h_{1:K})\bigr], \qquad
   \hat L(h_{1:K}) = \log \frac1K \sum_{k=1}^{K} e^{f(h_k)}

(the IWAE bound when f is the log importance weight). Each draw's learning signal gets its own
baseline: :math:`\hat L` with :math:`f(h_j)` replaced by the mean of the other log-weights,
:math:`\hat f_{-j} = \frac{1}{K-1}\sum_{k \ne j} f(h_k)` (the geometric mean of the other
weights), so the paper's estimator (its eq. 10) is

.. math::
   \hat g = \sum_{j=1}^{K} \bigl[\hat L(h_{1:K}) - \hat L(h_{-j}, \hat f_{-j})\bigr]
   \nabla_\lambda \log q_\lambda(h_j) + \sum_{j=1}^{K} \tilde w_j \nabla_\lambda f(h_j),
   \qquad \tilde w_j = \frac{e^{f(h_j)}}{\sum_k e^{f(h_k)}}.

**Unbiased** for :math:`\nabla_\lambda \mathcal{L}^K` (draw j's baseline does not depend on
:math:`h_j`). In the shared signature f does not depend on λ, so the second sum is 0 here; the
surrogate keeps it (through f's own dependence) for callers whose f does.

The signature's one extension: ``n_samples`` is K, the number of draws *inside* the bound
(K ≥ 2), and the estimate is of :math:`\nabla_\lambda \mathcal{L}^K`, which changes with K;
:func:`~unigen.estimators.variance_report` compares it with the exact gradient of
:math:`\mathcal{L}^K` (:meth:`~unigen.estimators.exact.Reference.bound_gradient`). It needs only
draws and :math:`\log q`, so it accepts any family.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, draw, evaluate, log_prob

__all__ = ["vimco", "vimco_surrogate"]


def vimco_surrogate(log_weights: jax.Array, log_q: jax.Array) -> jax.Array:
    r"""Value :math:`\hat L = \log\frac1K\sum_k e^{f_k}`; gradient the VIMCO estimate, given the K
    log-weights :math:`f_k` and :math:`\log q_\lambda(h_k)` (both ``[K]``, the latter carrying the
    gradient in λ)."""
    count = log_weights.shape[0]
    log_count = jnp.log(jnp.asarray(count, log_weights.dtype))
    bound = jax.nn.logsumexp(log_weights) - log_count
    fixed = jax.lax.stop_gradient(log_weights)
    others = (jnp.sum(fixed) - fixed) / (count - 1)  # f^_{-j}
    replaced = jnp.where(jnp.eye(count, dtype=bool), others[:, None], fixed[None, :])  # row j: f_j -> f^_{-j}
    signals = jax.lax.stop_gradient(bound) - (jax.nn.logsumexp(replaced, axis=1) - log_count)
    score_part = jnp.sum(jax.lax.stop_gradient(signals) * log_q)
    return bound + score_part - jax.lax.stop_gradient(score_part)


def vimco(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int) -> Any:
    r"""The VIMCO estimate of :math:`\nabla_\lambda \mathbb{E}[\log\frac1K\sum_k e^{f(h_k)}]`,
    K = ``n_samples`` (module docstring), unbiased.

    Args:
      distribution: ``distribution(params) -> numpyro Distribution``, any family with ``sample``
        and ``log_prob``.
      params, key: as :func:`~unigen.estimators.score_function`.
      f: ``f(h) -> scalar``, the log-weight of one draw.
      n_samples: K ≥ 2, the draws inside the bound.

    Raises:
      ConfigError: ``n_samples < 2``.
    """
    n_samples = check_n_samples(n_samples, 2, "VIMCO's leave-one-out baselines")
    xs = draw(distribution(params), key, n_samples)
    values = evaluate(f, xs)
    return jax.grad(lambda p: vimco_surrogate(values, log_prob(distribution(p), xs)))(params)
