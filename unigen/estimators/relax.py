r"""RELAX (Grathwohl, Choi, Wu, Roeder & Duvenaud 2018): a learned control variate for discrete draws.

With :math:`b = H(z)`, :math:`z \sim p(z \mid \theta)`, :math:`\tilde z \sim p(z \mid b, \theta)` as
in REBAR (:mod:`~unigen.estimators.rebar`) and any differentiable surrogate :math:`c_\phi(z)`, the
paper's discrete estimator (its eq. 8) is

.. math::
   \hat g_{\mathrm{RELAX}} = \bigl[f(b) - c_\phi(\tilde z)\bigr] \nabla_\theta \log p(b \mid \theta)
   + \nabla_\theta c_\phi(z) - \nabla_\theta c_\phi(\tilde z),

**unbiased** for every φ. Following the paper's discrete experiments, here
:math:`c_\phi(z) = \eta\, f(\sigma_\lambda(z)) + r_\rho(z)`: REBAR's relaxation (η = 1 in the paper,
kept learnable as in REBAR) plus a small network :math:`r_\rho` (one tanh hidden layer, output
initialized at 0, so RELAX starts as REBAR). φ = (η, log λ, ρ) is tuned by minimizing the
variance, :math:`\nabla_\phi \mathbb{E}[\hat g^2]`, which :func:`relax` returns from the same draws;
φ is an explicit pytree (:func:`relax_init`). Bernoulli and categorical latents; f must accept
relaxed values.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from unigen.estimators._common import DistributionFn, Integrand
from unigen.estimators.rebar import FAMILIES, Control, estimate_with_variance_gradient, rebar_control, rebar_init
from unigen.models.values import positive_int

__all__ = ["FAMILIES", "relax", "relax_control", "relax_init"]


def relax_init(
    key: jax.Array, dim: int, *, hidden: int = 16, dtype: Any = jnp.float32, temperature: float = 0.5
) -> dict[str, Any]:
    r"""φ = REBAR's :math:`\{\eta, \log\lambda\}` plus :math:`r_\rho`'s weights for inputs of ``dim``
    numbers (the size of one draw's logits): hidden weights :math:`\mathcal{N}(0, 1/\mathrm{dim})`,
    zero biases and a zero output layer."""
    dim, hidden = positive_int("dim", dim), positive_int("hidden", hidden)
    scale = jnp.asarray(1.0 / dim**0.5, dtype)
    return dict(rebar_init(dtype, temperature=temperature), network={
        "hidden_weights": scale * jax.random.normal(key, (hidden, dim), dtype),
        "hidden_biases": jnp.zeros((hidden,), dtype),
        "output_weights": jnp.zeros((hidden,), dtype),
        "output_bias": jnp.zeros((), dtype),
    })


def relax_control(f: Integrand, family: str, control_params: dict[str, Any]) -> Control:
    r""":math:`c_\phi(z) = \eta\, f(\sigma_\lambda(z)) + r_\rho(z)` of one draw's noisy logits z."""
    relaxation = rebar_control(f, family, control_params)
    network = control_params["network"]

    def control(z: jax.Array) -> jax.Array:
        hidden = jnp.tanh(network["hidden_weights"] @ z.reshape(-1) + network["hidden_biases"])
        return relaxation(z) + network["output_weights"] @ hidden + network["output_bias"]

    return control


def relax(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    control_params: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    r"""The RELAX estimate (module docstring), unbiased for any φ.

    Args:
      distribution, params, f, key, n_samples: as :func:`~unigen.estimators.rebar`.
      control_params: φ from :func:`relax_init` (or a previous fit).

    Returns:
      ``(gradient, control_gradient)``: the estimate, a pytree like ``params``, and
      :math:`\nabla_\phi \lVert \hat g \rVert^2` from the same draws.

    Raises:
      ConfigError: a distribution that is neither Bernoulli nor categorical (e.g. a Normal).
    """
    return estimate_with_variance_gradient(distribution, params, f, key, n_samples, control_params, "relax",
                                           relax_control)
