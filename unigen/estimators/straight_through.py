r"""The straight-through Gumbel-softmax estimator (Jang, Gu & Poole 2017, §2.2).

The forward pass uses the discrete draw, the backward pass the Concrete relaxation of the same
noise: with :math:`z = l + \text{noise}` (logistic for Bernoulli, Gumbel for categorical, see
:mod:`~unigen.estimators._discrete`), :math:`y = \mathrm{softmax}(z/\tau)` (or
:math:`\sigma(z/\tau)`) and :math:`b = \mathrm{onehot}(\arg\max_c y_c)` (or :math:`H(z)`),

.. math::
   \hat g = \frac1N \sum_{i=1}^{N} \nabla_b f(b_i)^\top \, \nabla_l y_i,

i.e. the gradient of :math:`f(y + \bot(b - y))`: f is evaluated at the hard draw and
differentiated as if it had been evaluated at the relaxed one. This is **biased** for
:math:`\nabla_l \mathbb{E}[f(b)]` for any τ (unlike :func:`~unigen.estimators.concrete`, whose bias
vanishes as τ → 0), and :func:`~unigen.estimators.variance_report` reports the bias against the
exact gradient. f must be differentiable in its (one-hot or binary) argument.
"""

from __future__ import annotations

from typing import Any

import jax

from unigen.errors import ConfigError, describe
from unigen.estimators import _discrete
from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, evaluate

__all__ = ["FAMILIES", "straight_through", "straight_through_surrogate"]

FAMILIES = _discrete.DISCRETE


def straight_through_surrogate(
    f: Integrand, family: str, logits: jax.Array, u: jax.Array, temperature: float
) -> jax.Array:
    r"""Value :math:`\frac1N\sum_i f(b_i)`, gradient in the logits the straight-through estimate;
    ``u`` is ``[N, *logits.shape]``."""
    z = _discrete.relaxed_logits(family, logits, u)
    y = _discrete.soft(family, z, temperature)
    b = _discrete.hard(family, z)
    return jax.numpy.mean(evaluate(f, y + jax.lax.stop_gradient(b - y)))


def straight_through(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    *,
    temperature: float = 1.0,
) -> Any:
    r"""The (biased) straight-through Gumbel-softmax estimate (module docstring).

    Args:
      distribution: ``distribution(params)`` — a Bernoulli or categorical distribution
        (optionally ``.to_event``) whose logits depend on ``params``.
      params, f, key, n_samples: as :func:`~unigen.estimators.score_function`.
      temperature: τ > 0 of the backward pass's relaxation.

    Raises:
      ConfigError: a distribution that is neither Bernoulli nor categorical, or a bad τ.
    """
    n_samples = check_n_samples(n_samples)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"temperature: expected a positive number, got {describe(temperature)}")
    return _discrete.gradient_through_logits(
        distribution, params, "straight-through", FAMILIES,
        lambda family, logits: straight_through_surrogate(
            f, family, logits, _discrete.uniform(key, n_samples, logits), temperature))
