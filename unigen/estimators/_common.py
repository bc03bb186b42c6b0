"""Shared plumbing of the estimators: drawing samples and checking arguments.

Every estimator in :mod:`unigen.estimators` has the signature

    estimator(distribution, params, f, key, n_samples, **options) -> gradient

* ``distribution(params) -> numpyro Distribution``: the family :math:`q_\\lambda`; its
  ``log_prob`` of one draw must be a scalar (use ``.to_event`` for vectors).
* ``params``: :math:`\\lambda`, any pytree of floating arrays.
* ``f(x) -> scalar``: the integrand, of one draw ``x`` (it does not depend on ``params``).
* ``key``: a PRNG key; ``n_samples``: N, the number of draws averaged.
* ``gradient``: a pytree like ``params``, the estimate of
  :math:`\\nabla_\\lambda \\mathbb{E}_{q_\\lambda}[f(x)]`.

They are pure and jit/vmap-able: ``jax.vmap(lambda k: score_function(q, lam, f, k, N))(keys)``
draws independent replicas.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp

from unigen.errors import ConfigError, describe

Distribution = Any
DistributionFn = Callable[[Any], Distribution]
Integrand = Callable[[jax.Array], jax.Array]


def check_n_samples(n_samples: object, minimum: int = 1, who: str = "") -> int:
    """``n_samples`` as an int if it is an integer >= ``minimum``, else :class:`ConfigError`."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < minimum:
        needs = f" ({who} needs at least {minimum})" if who else ""
        raise ConfigError(f"n_samples: expected an integer >= {minimum}{needs}, got {describe(n_samples)}")
    return int(n_samples)


def draw(distribution: Distribution, key: jax.Array, n_samples: int) -> jax.Array:
    """``n_samples`` independent draws, stacked on a leading axis, with no gradient path.

    numpyro's discrete samplers broadcast a ``[N, ...]`` uniform against ``[...]`` probabilities,
    which ``jax_numpy_rank_promotion="raise"`` refuses; the draw runs with rank promotion allowed
    (it changes no number).
    """
    with jax.numpy_rank_promotion("allow"):
        return jax.lax.stop_gradient(distribution.sample(key, (n_samples,)))


def reparameterized_draw(distribution: Distribution, key: jax.Array, n_samples: int) -> jax.Array:
    """``n_samples`` pathwise draws :math:`x = T(\\lambda, \\epsilon)`; ConfigError if none exists."""
    if not getattr(distribution, "has_rsample", False):
        raise ConfigError(
            f"distribution: expected a reparameterizable distribution (has_rsample=True) for a pathwise "
            f"estimator, got {type(distribution).__name__}"
        )
    with jax.numpy_rank_promotion("allow"):
        return distribution.rsample(key, (n_samples,))


def log_prob(distribution: Distribution, x: jax.Array) -> jax.Array:
    """``distribution.log_prob(x)`` summed to one number per draw (batch of draws on axis 0)."""
    with jax.numpy_rank_promotion("allow"):
        values = distribution.log_prob(x)
    return values.reshape(values.shape[:1] + (-1,)).sum(axis=1) if values.ndim > 1 else values


def evaluate(f: Integrand, xs: jax.Array) -> jax.Array:
    """``f`` of each draw, ``[N]``; :class:`ConfigError` unless ``f`` returns one number per draw."""
    values = jax.vmap(f)(xs)
    if values.shape != xs.shape[:1]:
        raise ConfigError(
            f"f: expected one scalar per draw (shape ({xs.shape[0]},) over {xs.shape[0]} draws), "
            f"got shape {tuple(values.shape)}"
        )
    return values


def per_sample_scores(distribution_fn: DistributionFn, params: Any, xs: jax.Array) -> Any:
    """:math:`\\nabla_\\lambda \\log q_\\lambda(x_i)` for each draw: a pytree like ``params``
    with a leading ``[N]`` axis."""

    def one(x: jax.Array) -> Any:
        return jax.grad(lambda p: log_prob(distribution_fn(p), x[None])[0])(params)

    return jax.vmap(one)(xs)


def zeros_like_float(params: Any) -> Any:
    return jax.tree.map(jnp.zeros_like, params)


def fit_by_adam(gradient_fn: Callable[[Any, jax.Array], Any], init: Any, key: jax.Array, steps: int,
                learning_rate: float) -> Any:
    """``steps`` Adam steps on the pytree ``init`` with ``gradient_fn(current, key) -> gradient``,
    one fresh key per step (a ``lax.scan``, jit-able); returns the trained pytree."""
    import optax

    optimizer = optax.adam(learning_rate)

    def step(carry: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], None]:
        current, opt_state = carry
        gradient = gradient_fn(current, k)
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
            updates, opt_state = optimizer.update(gradient, opt_state, current)
        return (optax.apply_updates(current, updates), opt_state), None

    (trained, _), _ = jax.lax.scan(step, (init, optimizer.init(init)), jax.random.split(key, int(steps)))
    return trained
