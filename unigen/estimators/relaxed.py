r"""The Concrete / Gumbel-softmax relaxation of discrete draws (Maddison et al. 2017; Jang et al. 2017).

A Bernoulli draw :math:`b = \mathbb{1}[l + L > 0]`, :math:`L \sim \mathrm{Logistic}(0, 1)`, is
replaced by the *binary Concrete* draw

.. math::  z = \sigma\bigl((l + L) / \tau\bigr) \in (0, 1),

and a categorical draw :math:`\mathrm{onehot}(\arg\max_c (l_c + G_c))`, :math:`G_c` Gumbel, by
:math:`z = \mathrm{softmax}((l + G) / \tau)` on the simplex. z is a differentiable path of the
logits, so the pathwise estimator applies to :math:`\mathbb{E}[f(z)]`:

.. math::
   \hat g = \frac{1}{N} \sum_i \nabla_l f\bigl(z(l, L_i)\bigr).

This is the gradient of a *different* objective, :math:`\mathbb{E}[f(z)] \ne \mathbb{E}[f(b)]`:
the estimator is **biased** for :math:`\nabla_l \mathbb{E}[f(b)]` (the bias vanishes as
:math:`\tau \to 0` while the variance grows). f must accept relaxed values (numbers in [0, 1],
or points of the simplex). :func:`~unigen.estimators.variance_report` reports the bias against
the exact gradient by enumeration.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.errors import ConfigError, describe
from unigen.estimators import _discrete
from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, evaluate

__all__ = ["concrete", "concrete_surrogate", "relaxed_draw"]


def relaxed_draw(distribution: Any, key: jax.Array, n_samples: int, temperature: float) -> jax.Array:
    """``n_samples`` Concrete draws of a Bernoulli or categorical distribution (numpyro's, or
    :class:`unigen.distributions.OneHotCategorical`), pathwise in its logits: ``[N, *event]`` in
    (0, 1) for Bernoulli, ``[N, *batch, K]`` on the simplex for categorical."""
    family = _discrete.family_of(distribution)
    if family not in _discrete.DISCRETE:
        raise ConfigError(
            f"distribution: expected a Bernoulli or categorical distribution for the Concrete relaxation, "
            f"got {family}"
        )
    logits = _discrete.base_distribution(distribution).logits
    if family == _discrete.BERNOULLI:
        noise = jax.random.logistic(key, (n_samples,) + logits.shape, logits.dtype)
        return jax.nn.sigmoid((logits[None] + noise) / temperature)
    noise = jax.random.gumbel(key, (n_samples,) + logits.shape, logits.dtype)
    return jax.nn.softmax((logits[None] + noise) / temperature, axis=-1)


def concrete_surrogate(f: Integrand, family: str, logits: jax.Array, u: jax.Array,
                       temperature: float) -> jax.Array:
    r""":math:`\frac1N \sum_i f(z_i)` at the relaxed draws :math:`z_i = \sigma(z(l, u_i)/\tau)` (or
    the softmax), :math:`z(l, u)` the noisy logits of :mod:`~unigen.estimators._discrete`: its
    gradient in the logits is the Concrete estimate; ``u`` is ``[N, *logits.shape]``."""
    return jnp.mean(evaluate(f, _discrete.soft(family, _discrete.relaxed_logits(family, logits, u), temperature)))


def concrete(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    *,
    temperature: float = 0.5,
) -> Any:
    r"""The (biased) Concrete / Gumbel-softmax estimate
    :math:`\frac{1}{N}\sum_i \nabla_\lambda f(z_i)`, :math:`z_i` relaxed draws at temperature τ.

    Args:
      distribution: ``distribution(params)`` — numpyro Bernoulli or Categorical (optionally
        ``.to_event``), parameterized so that its logits depend on ``params``.
      params, f, key, n_samples: as :func:`~unigen.estimators.score_function`; f must accept
        relaxed values.
      temperature: τ > 0.

    Returns:
      A pytree like ``params``.
    """
    n_samples = check_n_samples(n_samples)
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ConfigError(f"temperature: expected a positive number, got {describe(temperature)}")
    return jax.grad(
        lambda p: jnp.mean(evaluate(f, relaxed_draw(distribution(p), key, n_samples, temperature)))
    )(params)
