r"""The multi-sample leave-one-out baseline (VIMCO-style; Mnih & Rezende 2016).

With N ≥ 2 draws, each draw's baseline is the mean of f over the *other* draws,

.. math::
   \hat g = \frac{1}{N} \sum_{i=1}^{N} \Bigl(f(x_i) - \frac{1}{N-1}\sum_{k \ne i} f(x_k)\Bigr)
   \nabla_\lambda \log q_\lambda(x_i)
   = \frac{1}{N-1} \sum_{i=1}^{N} \bigl(f(x_i) - \bar f\bigr) \nabla_\lambda \log q_\lambda(x_i),

unbiased because draw i's baseline does not depend on :math:`x_i`. It needs no extra state and
no extra evaluations of f, and is a U-statistic whose variance is known exactly (see
:mod:`unigen.estimators.exact`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, draw, evaluate, log_prob

__all__ = ["leave_one_out"]


def leave_one_out(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int) -> Any:
    r"""The score-function estimate with the leave-one-out baseline (see the module docstring).

    Raises:
      ConfigError: ``n_samples < 2``.
    """
    n_samples = check_n_samples(n_samples, 2, "the leave-one-out baseline")
    xs = draw(distribution(params), key, n_samples)
    values = evaluate(f, xs)
    centred = jax.lax.stop_gradient((values - jnp.mean(values)) * (n_samples / (n_samples - 1)))
    return jax.grad(lambda p: jnp.mean(centred * log_prob(distribution(p), xs)))(params)
