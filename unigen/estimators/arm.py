r"""Augment-REINFORCE-merge: ARM (Yin & Zhou 2019) and DisARM (Dong, Mnih & Tucker 2020).

For D independent bits :math:`b_d \sim \mathrm{Bernoulli}(\sigma(\theta_d))` write a draw as
:math:`b = \mathbb{1}[u < \sigma(\theta)]`, :math:`u \sim \mathcal{U}(0,1)^D`, and pair it with the
antithetic draw :math:`\tilde b = \mathbb{1}[1 - u < \sigma(\theta)] = \mathbb{1}[u > \sigma(-\theta)]`.

* **ARM** (Yin & Zhou 2019, Theorem 1), augmenting the bits with the uniforms and merging the
  two REINFORCE terms:

  .. math::
     g_{\mathrm{ARM}}(u) = \bigl[f(\mathbb{1}[u > \sigma(-\theta)]) - f(\mathbb{1}[u < \sigma(\theta)])\bigr]
     \bigl(u - \tfrac12\bigr).

* **DisARM** (Dong et al. 2020, eq. 6 and its multivariate form), the ARM estimate with the
  augmenting uniforms integrated out given the pair :math:`(b, \tilde b)`:

  .. math::
     g_{\mathrm{DisARM}}(b, \tilde b)_d = \tfrac12 \bigl(f(b) - f(\tilde b)\bigr)\,
     (-1)^{\tilde b_d}\, \mathbb{1}[b_d \ne \tilde b_d]\, \sigma(|\theta_d|).

Both are **unbiased** for :math:`\nabla_\theta \mathbb{E}[f(b)]`, and DisARM's variance is at
most ARM's (it is ARM's conditional expectation). Each of the N draws evaluates f twice (the pair), as one batch of 2N evaluations.
Both are for binary latents only: a categorical or continuous distribution is refused with a
:class:`~unigen.errors.ConfigError` (the categorical extension, ARSM, is a different estimator).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators import _discrete
from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, evaluate

__all__ = ["FAMILIES", "arm", "arm_surrogate", "disarm", "disarm_surrogate"]

FAMILIES = (_discrete.BERNOULLI,)


def _pair(logits: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:math:`b = 1[u < \\sigma(\\theta)]` and :math:`\\tilde b = 1[u > \\sigma(-\\theta)]`, no gradient."""
    logits = jnp.broadcast_to(jax.lax.stop_gradient(logits), u.shape)
    return (u < jax.nn.sigmoid(logits)).astype(u.dtype), (u > jax.nn.sigmoid(-logits)).astype(u.dtype)


def _pair_values(f: Integrand, b: jax.Array, b_tilde: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f(b_i), f(b̃_i))``, each ``[N]``: the 2N evaluations as one batch (one pass through f)."""
    values = evaluate(f, jnp.concatenate([b, b_tilde]))
    return values[:b.shape[0]], values[b.shape[0]:]


def arm_surrogate(f: Integrand, logits: jax.Array, u: jax.Array) -> jax.Array:
    r"""Value :math:`\frac1{2N}\sum_i (f(b_i) + f(\tilde b_i))`, gradient in the logits
    :math:`\frac1N \sum_i g_{\mathrm{ARM}}(u_i)`; ``u`` is ``[N, *logits.shape]``."""
    b, b_tilde = _pair(logits, u)
    values, values_tilde = _pair_values(f, b, b_tilde)
    weights = jax.lax.stop_gradient(values_tilde - values)
    gradient = jnp.mean(weights.reshape((-1,) + (1,) * logits.ndim) * (u - 0.5), axis=0)
    return _discrete.estimate(0.5 * (values + values_tilde), jnp.sum(gradient * logits))


def disarm_surrogate(f: Integrand, logits: jax.Array, u: jax.Array) -> jax.Array:
    r"""Value :math:`\frac1{2N}\sum_i (f(b_i) + f(\tilde b_i))`, gradient in the logits
    :math:`\frac1N \sum_i g_{\mathrm{DisARM}}(b_i, \tilde b_i)`; ``u`` is ``[N, *logits.shape]``."""
    b, b_tilde = _pair(logits, u)
    values, values_tilde = _pair_values(f, b, b_tilde)
    weights = jax.lax.stop_gradient(0.5 * (values - values_tilde)).reshape((-1,) + (1,) * logits.ndim)
    sign = 1 - 2 * b_tilde  # (-1)^{b~}
    differ = (b != b_tilde).astype(u.dtype)
    magnitude = jax.nn.sigmoid(jnp.abs(jax.lax.stop_gradient(logits)))
    gradient = jnp.mean(weights * sign * differ, axis=0) * magnitude
    return _discrete.estimate(0.5 * (values + values_tilde), jnp.sum(gradient * logits))


def _run(surrogate: Any, who: str, distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array,
         n_samples: int) -> Any:
    n_samples = check_n_samples(n_samples)
    return _discrete.gradient_through_logits(
        distribution, params, who, FAMILIES,
        lambda family, logits: surrogate(f, logits, _discrete.uniform(key, n_samples, logits)))


def arm(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int) -> Any:
    r"""The ARM estimate :math:`\frac1N \sum_i g_{\mathrm{ARM}}(u_i)` (module docstring), unbiased.

    Args:
      distribution: ``distribution(params)`` — a Bernoulli (optionally ``.to_event``) whose
        logits depend on ``params``.
      params, f, key, n_samples: as :func:`~unigen.estimators.score_function`; f is evaluated
        twice per draw.

    Raises:
      ConfigError: a distribution that is not Bernoulli (categorical, Normal, ...).
    """
    return _run(arm_surrogate, "arm", distribution, params, f, key, n_samples)


def disarm(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int) -> Any:
    r"""The DisARM estimate :math:`\frac1N \sum_i g_{\mathrm{DisARM}}(b_i, \tilde b_i)` (module
    docstring), unbiased. Arguments and refusals as :func:`arm`."""
    return _run(disarm_surrogate, "disarm", distribution, params, f, key, n_samples)
