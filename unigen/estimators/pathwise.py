r"""The pathwise (reparameterization) estimator, lecture §2.3.

Write the draw as a deterministic, differentiable path of the parameters and parameter-free
noise, :math:`x = T(\lambda, \epsilon)`, :math:`\epsilon \sim p(\epsilon)` (for a Gaussian,
:math:`x = \mu + \sigma \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, 1)`). Then

.. math::
   \nabla_\lambda \mathbb{E}_{q_\lambda(x)}[f(x)]
   = \mathbb{E}_{p(\epsilon)}\left[\nabla_\lambda f\bigl(T(\lambda, \epsilon)\bigr)\right]
   \approx \frac{1}{N} \sum_{i=1}^{N} \nabla_x f(x_i)\, \nabla_\lambda T(\lambda, \epsilon_i).

It needs f differentiable and a reparameterizable :math:`q_\lambda` (numpyro's ``rsample``); it
uses f's gradient, which is why it usually has much lower variance than the score function — and
why it loses when f is sharp or oscillates (large :math:`|f'|`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, evaluate, reparameterized_draw

__all__ = ["pathwise"]


def pathwise(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int) -> Any:
    r"""The pathwise estimate :math:`\frac{1}{N}\sum_i \nabla_\lambda f(T(\lambda, \epsilon_i))`.

    Args:
      distribution: ``distribution(params) -> numpyro Distribution`` with ``has_rsample``.
      params: :math:`\lambda`, a pytree of floating arrays.
      f: ``f(x) -> scalar``, differentiable in x.
      key: PRNG key.
      n_samples: N.

    Returns:
      A pytree like ``params``.

    Raises:
      ConfigError: the distribution has no pathwise sampler (a discrete one).
    """
    n_samples = check_n_samples(n_samples)
    return jax.grad(lambda p: jnp.mean(evaluate(f, reparameterized_draw(distribution(p), key, n_samples))))(params)
