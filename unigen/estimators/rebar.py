r"""REBAR (Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein 2017): the Concrete relaxation as a
control variate for the score function.

With :math:`z \sim p(z \mid \theta)` the noisy logits (:mod:`~unigen.estimators._discrete`),
:math:`b = H(z)` the discrete draw, :math:`\tilde z \sim p(z \mid b, \theta)` a second,
reparameterized draw of the noisy logits *given* b, and :math:`\sigma_\lambda(z)` the Concrete
relaxation at temperature λ, the single-draw estimator (the paper's eq. 5 with the control variate
scaled by η) is

.. math::
   \hat g = \bigl[f(H(z)) - \eta\, f(\sigma_\lambda(\tilde z))\bigr] \nabla_\theta \log p(b \mid \theta)
   + \eta\, \nabla_\theta f(\sigma_\lambda(z)) - \eta\, \nabla_\theta f(\sigma_\lambda(\tilde z)),

averaged over N draws. It is **unbiased** for every η and λ: :math:`\mathbb{E}[\nabla_\theta c(z)]`
and :math:`\mathbb{E}_b[c(\tilde z)\nabla_\theta \log p(b)] + \mathbb{E}[\nabla_\theta c(\tilde z)]`
are both :math:`\nabla_\theta \mathbb{E}[c(z)]`. η and λ are tuned online by minimizing the
variance, whose gradient is :math:`\nabla_{\eta,\lambda} \mathbb{E}[\hat g^2]` (the mean does not
depend on them): :func:`rebar` returns that gradient from the same draws, and keeps
:math:`(\eta, \log\lambda)` an explicit pytree (:func:`rebar_init`) so everything stays pure.
Bernoulli and categorical latents; f must accept relaxed values.

The estimator for any control variate :math:`c(z)` (:func:`control_variate_surrogate`) is shared with
:mod:`~unigen.estimators.relax`, which adds a learned network to this c.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from unigen.estimators import _discrete
from unigen.estimators._common import DistributionFn, Integrand, check_n_samples, evaluate, fit_by_adam

__all__ = [
    "FAMILIES", "control_variate_surrogate", "estimate_with_variance_gradient", "fit_control_variate", "rebar",
    "rebar_control", "rebar_init",
]

FAMILIES = _discrete.DISCRETE
Control = Callable[[jax.Array], jax.Array]


def rebar_init(dtype: Any = jnp.float32, *, eta: float = 1.0, temperature: float = 0.5) -> dict[str, jax.Array]:
    r"""REBAR's parameters :math:`\{\eta, \log\lambda\}` (the paper starts at η = 1, λ = 0.5)."""
    return {"eta": jnp.asarray(eta, dtype), "log_temperature": jnp.log(jnp.asarray(temperature, dtype))}


def rebar_control(f: Integrand, family: str, control_params: dict[str, jax.Array]) -> Control:
    r""":math:`c(z) = \eta\, f(\sigma_\lambda(z))` of one draw's noisy logits z."""
    temperature = jnp.exp(control_params["log_temperature"])
    return lambda z: control_params["eta"] * f(_discrete.soft(family, z, temperature))


def control_variate_surrogate(
    f: Integrand, family: str, logits: jax.Array, u: jax.Array, v: jax.Array, control: Control
) -> jax.Array:
    r"""Value :math:`\frac1N\sum_i f(b_i)`; gradient in the logits
    :math:`\frac1N\sum_i [f(b_i) - c(\tilde z_i)]\nabla \log p(b_i) + \nabla c(z_i) - \nabla c(\tilde z_i)`.

    ``u``, ``v``: ``[N, *logits.shape]`` uniforms behind z and :math:`\tilde z`. The coefficient
    :math:`c(\tilde z_i)` of the score is computed from stopped logits, so it carries no gradient
    in θ but keeps its dependence on the control variate's own parameters (for their variance
    gradient).
    """
    z = _discrete.relaxed_logits(family, logits, u)
    b = _discrete.hard(family, z)
    z_tilde = _discrete.conditional_relaxed_logits(family, logits, b, v)
    fixed = _discrete.conditional_relaxed_logits(family, jax.lax.stop_gradient(logits), b, v)
    values = evaluate(f, b)
    weights = jax.lax.stop_gradient(values) - jax.vmap(control)(fixed)
    log_q = jax.vmap(lambda draw: _discrete.log_mass(family, logits, draw))(b)
    correction = jnp.mean(weights * log_q + jax.vmap(control)(z) - jax.vmap(control)(z_tilde))
    return _discrete.estimate(values, correction)


def estimate_with_variance_gradient(distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array,
                                    n_samples: int, control_params: Any, who: str,
                                    make_control: Callable[[Integrand, str, Any], Control]) -> tuple[Any, Any]:
    r"""``(gradient, control_gradient)``: the control-variate estimate :math:`\hat g` in ``params``
    and :math:`\nabla_\phi \lVert \hat g \rVert^2` in the control variate's parameters φ."""
    n_samples = check_n_samples(n_samples)
    key_u, key_v = jax.random.split(key)

    def estimate(control_params: Any) -> Any:
        def surrogate(family: str, logits: jax.Array) -> jax.Array:
            u = _discrete.uniform(key_u, n_samples, logits)
            v = _discrete.uniform(key_v, n_samples, logits)
            return control_variate_surrogate(f, family, logits, u, v, make_control(f, family, control_params))

        return _discrete.gradient_through_logits(distribution, params, who, FAMILIES, surrogate)

    def square(control_params: Any) -> tuple[jax.Array, Any]:
        gradient = estimate(control_params)
        return sum(jnp.sum(g * g) for g in jax.tree.leaves(gradient)), gradient

    (_, gradient), control_gradient = jax.value_and_grad(square, has_aux=True)(control_params)
    return gradient, control_gradient


def rebar(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    control_params: dict[str, jax.Array],
) -> tuple[Any, dict[str, jax.Array]]:
    r"""The REBAR estimate (module docstring), unbiased for any η, λ.

    Args:
      distribution: ``distribution(params)`` — a Bernoulli or categorical distribution
        (optionally ``.to_event``) whose logits depend on ``params``.
      params, f, key, n_samples: as :func:`~unigen.estimators.score_function`; f must accept
        relaxed values (numbers in [0, 1], or points of the simplex).
      control_params: :math:`\{\eta, \log\lambda\}` from :func:`rebar_init` (or a previous fit).

    Returns:
      ``(gradient, control_gradient)``: the estimate, a pytree like ``params``, and
      :math:`\nabla_{\eta, \log\lambda} \lVert \hat g \rVert^2` from the same draws, for the
      caller's optimizer (the variance-minimizing tuning of the paper).

    Raises:
      ConfigError: a distribution that is neither Bernoulli nor categorical (e.g. a Normal).
    """
    return estimate_with_variance_gradient(distribution, params, f, key, n_samples, control_params, "rebar",
                                           rebar_control)


def fit_control_variate(estimator: Callable[..., tuple[Any, Any]], distribution: DistributionFn, params: Any,
                        f: Integrand, key: jax.Array, n_samples: int, control_params: Any, *, steps: int = 200,
                        learning_rate: float = 0.01) -> Any:
    r"""Tunes a control variate's parameters (of :func:`rebar` or :func:`~unigen.estimators.relax`)
    by Adam on the variance gradient the estimator returns, at fixed ``params``; returns them."""

    def gradient(current: Any, k: jax.Array) -> Any:
        return estimator(distribution, params, f, k, n_samples, current)[1]

    return fit_by_adam(gradient, control_params, key, steps, learning_rate)
