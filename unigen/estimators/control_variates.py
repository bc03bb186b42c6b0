r"""The score-function estimator with a delta-method control variate (Mohamed et al. 2020, §7).

Take the second-order Taylor expansion of f around the mean :math:`a = \mathbb{E}_q[x]` of the
distribution (held fixed while differentiating),

.. math::
   \tilde f(x) = f(a) + \nabla f(a)^\top (x - a) + \tfrac12 (x - a)^\top H_f(a)\, (x - a),

whose expectation is known from the mean :math:`m_\lambda` and the per-coordinate variances
:math:`v_\lambda` of :math:`q_\lambda` (coordinates independent):

.. math::
   \mathbb{E}_{q_\lambda}[\tilde f] = f(a) + \nabla f(a)^\top (m_\lambda - a)
   + \tfrac12 \Bigl(\textstyle\sum_d H_{dd}\, v_{\lambda,d} + (m_\lambda - a)^\top H (m_\lambda - a)\Bigr).

Then, exactly as for any control variate,

.. math::
   \nabla_\lambda \mathbb{E}_q[f] = \mathbb{E}_q\bigl[(f - \tilde f)\, \nabla_\lambda \log q_\lambda\bigr]
   + \nabla_\lambda \mathbb{E}_{q_\lambda}[\tilde f],

estimated by N draws in the first term and autodiff of the closed form in the second. Unbiased
for any f; exact (zero variance) when f is quadratic. Needs f twice differentiable and a
distribution with ``mean`` and ``variance`` (numpyro's Normal, Bernoulli, ...).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, draw, evaluate, log_prob

__all__ = ["delta_method_control_variate", "taylor_expectation"]


def taylor_expectation(f: Integrand, distribution: Any, anchor: jax.Array) -> jax.Array:
    r""":math:`\mathbb{E}_q[\tilde f]` for the expansion of f at ``anchor`` (closed form above)."""
    shape = anchor.shape
    flat_f = lambda v: f(v.reshape(shape))  # noqa: E731
    a = anchor.reshape(-1)
    value, gradient = jax.value_and_grad(flat_f)(a)
    hessian = jax.hessian(flat_f)(a)
    mean = jnp.broadcast_to(distribution.mean, shape).reshape(-1).astype(a.dtype)
    variance = jnp.broadcast_to(distribution.variance, shape).reshape(-1).astype(a.dtype)
    shift = mean - a
    return value + gradient @ shift + 0.5 * (jnp.diagonal(hessian) @ variance + shift @ hessian @ shift)


def delta_method_control_variate(
    distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int
) -> Any:
    r"""Score function with the delta-method control variate :math:`\tilde f`.

    .. math::
       \hat g = \frac{1}{N}\sum_i \bigl(f(x_i) - \tilde f(x_i)\bigr)\nabla_\lambda \log q_\lambda(x_i)
       + \nabla_\lambda \mathbb{E}_{q_\lambda}[\tilde f]

    Args:
      distribution: ``distribution(params) -> numpyro Distribution`` with ``mean`` and
        ``variance`` and independent coordinates.
      params, f, key, n_samples: as :func:`~unigen.estimators.score_function`; f twice
        differentiable in x.

    Returns:
      A pytree like ``params``.
    """
    n_samples = check_n_samples(n_samples)
    q = distribution(params)
    xs = draw(q, key, n_samples)
    anchor = jax.lax.stop_gradient(jnp.broadcast_to(q.mean, xs.shape[1:]).astype(xs.dtype))
    shape = anchor.shape
    a = anchor.reshape(-1)
    flat_f = lambda v: f(v.reshape(shape))  # noqa: E731
    value, gradient = jax.value_and_grad(flat_f)(a)
    hessian = jax.hessian(flat_f)(a)
    deltas = xs.reshape(n_samples, -1) - a[None]
    quadratic = value + deltas @ gradient + 0.5 * jnp.sum((deltas @ hessian) * deltas, axis=1)
    residual = jax.lax.stop_gradient(evaluate(f, xs) - quadratic)

    def surrogate(p: Any) -> jax.Array:
        return jnp.mean(residual * log_prob(distribution(p), xs)) + taylor_expectation(f, distribution(p), anchor)

    return jax.grad(surrogate)(params)
