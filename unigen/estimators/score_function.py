r"""The score-function (log-derivative, REINFORCE) estimator, lecture §2.2.

.. math::
   \nabla_\lambda \mathbb{E}_{q_\lambda(x)}[f(x)]
   = \mathbb{E}_{q_\lambda(x)}\left[f(x)\, \nabla_\lambda \log q_\lambda(x)\right]
   \approx \frac{1}{N} \sum_{i=1}^{N} \bigl(f(x_i) - b\bigr)\, \nabla_\lambda \log q_\lambda(x_i),
   \qquad x_i \sim q_\lambda,

since :math:`\nabla_\lambda q = q\, \nabla_\lambda \log q` and
:math:`\mathbb{E}_q[\nabla_\lambda \log q_\lambda] = \nabla_\lambda \int q_\lambda = 0`: any
baseline :math:`b` that does not depend on the draws :math:`x_1, \dots, x_N` leaves the estimate
unbiased. It needs only draws and :math:`\log q_\lambda`: f may be discrete, non-differentiable
or a black box.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, draw, evaluate, log_prob

__all__ = ["score_function"]


def score_function(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    *,
    baseline: ArrayLike = 0.0,
) -> Any:
    r"""The score-function estimate of :math:`\nabla_\lambda \mathbb{E}_{q_\lambda}[f]`.

    .. math::
       \hat g = \frac{1}{N} \sum_{i=1}^{N} \bigl(f(x_i) - b\bigr)\,
       \nabla_\lambda \log q_\lambda(x_i), \qquad x_i \sim q_\lambda

    Args:
      distribution: ``distribution(params) -> numpyro Distribution``, :math:`q_\lambda`.
      params: :math:`\lambda`, a pytree of floating arrays.
      f: ``f(x) -> scalar`` of one draw.
      key: PRNG key.
      n_samples: N.
      baseline: :math:`b`, a scalar that must not depend on the draws (a constant, a moving
        average of past values, a learned :math:`b_\psi(\text{input})`): unbiased for any such b.

    Returns:
      A pytree like ``params``.
    """
    n_samples = check_n_samples(n_samples)
    xs = draw(distribution(params), key, n_samples)
    centred = jax.lax.stop_gradient(evaluate(f, xs) - jnp.asarray(baseline))
    # The gradient of this surrogate is the estimate: one backward pass, no per-draw Jacobian.
    return jax.grad(lambda p: jnp.mean(centred * log_prob(distribution(p), xs)))(params)
