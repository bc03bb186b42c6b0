r"""MuProp (Gu, Levine, Sutskever & Mnih 2016): a first-order Taylor control variate.

Expand f to first order around the mean-field value :math:`\bar b = \mathbb{E}_{q_\theta}[b]`
(for one stochastic layer the mean-field network's output is the mean itself:
:math:`\sigma(\theta)` for Bernoulli units, :math:`\mathrm{softmax}(\theta)` for a categorical
one-hot draw), held fixed while differentiating:

.. math::
   \tilde f(b) = f(\bar b) + f'(\bar b)^\top (b - \bar b).

Its expectation is known, :math:`\mathbb{E}_{q_\theta}[\tilde f] = f(\bar b) + f'(\bar b)^\top(\mu_\theta - \bar b)`
with :math:`\mu_\theta = \mathbb{E}_{q_\theta}[b]`, so the paper's estimator (its eq. 5, without the
extra learned baseline) is

.. math::
   \hat g = \frac1N \sum_{i=1}^{N} \bigl[f(b_i) - f(\bar b) - f'(\bar b)^\top(b_i - \bar b)\bigr]
   \nabla_\theta \log q_\theta(b_i) + f'(\bar b)^\top \nabla_\theta \mu_\theta,

**unbiased** for any f (the control variate's coefficient does not depend on the draws), exact
when f is linear. It needs f differentiable on the relaxed values (the unit cube, or the simplex).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators import _discrete
from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, evaluate

__all__ = ["FAMILIES", "muprop", "muprop_surrogate"]

FAMILIES = _discrete.DISCRETE


def muprop_surrogate(f: Integrand, family: str, logits: jax.Array, u: jax.Array) -> jax.Array:
    r"""Value :math:`\frac1N\sum_i f(b_i)`, gradient in the logits the MuProp estimate; the draws
    :math:`b_i` are the hard threshold / argmax of the noisy logits of ``u`` (``[N, *logits.shape]``)."""
    b = _discrete.hard(family, _discrete.relaxed_logits(family, logits, u))
    values = evaluate(f, b)
    mean = _discrete.mean(family, logits)
    anchor = jax.lax.stop_gradient(mean)
    at_anchor, slope = jax.value_and_grad(f)(anchor)
    slope = jax.lax.stop_gradient(slope)
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    linear = jax.lax.stop_gradient(at_anchor) + flat(b - anchor[None]) @ slope.reshape(-1)
    residual = jax.lax.stop_gradient(values - linear)
    log_q = jax.vmap(lambda draw: _discrete.log_mass(family, logits, draw))(b)
    return _discrete.estimate(values, jnp.mean(residual * log_q) + jnp.sum(slope * mean))


def muprop(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int) -> Any:
    r"""The MuProp estimate (module docstring), unbiased.

    Args:
      distribution: ``distribution(params)`` — a Bernoulli or categorical distribution
        (optionally ``.to_event``) whose logits depend on ``params``.
      params, f, key, n_samples: as :func:`~unigen.estimators.score_function`; f must also accept
        the mean (probabilities in [0, 1], or a point of the simplex) and be differentiable there.

    Raises:
      ConfigError: a distribution that is neither Bernoulli nor categorical.
    """
    n_samples = check_n_samples(n_samples)
    return _discrete.gradient_through_logits(
        distribution, params, "muprop", FAMILIES,
        lambda family, logits: muprop_surrogate(f, family, logits, _discrete.uniform(key, n_samples, logits)))
