r"""Baselines for the score-function estimator: moving average, optimal constant, learned.

Every baseline here is a value :math:`b` that does not depend on the draws it multiplies, so

.. math::
   \hat g = \frac{1}{N} \sum_{i=1}^{N} \bigl(f(x_i) - b_i\bigr)\, \nabla_\lambda \log q_\lambda(x_i)

stays unbiased (:math:`\mathbb{E}_q[\nabla_\lambda \log q_\lambda] = 0`) while its variance drops
when :math:`b` tracks f:

* :func:`score_function_moving_average` — :math:`b` is an exponential moving average of f over
  the previous calls (bias-corrected as Adam's moments are), carried in a small state.
* :func:`score_function_optimal_baseline` — the variance-minimizing constant per parameter
  coordinate, :math:`b^*_j = \mathbb{E}[f\, s_j^2] / \mathbb{E}[s_j^2]` with
  :math:`s = \nabla_\lambda \log q_\lambda(x)`, estimated from the *other* N−1 draws of the same
  call (leave-one-out, so the estimate stays unbiased).
* :func:`score_function_learned_baseline` — an input-dependent :math:`b_\psi(u)` (NVIL's
  baseline; u is, e.g., the observation x an encoder is conditioned on), trained by regressing
  f on u: the call also returns :math:`\nabla_\psi \frac{1}{N}\sum_i (f(x_i) - b_\psi(u))^2`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from unigen.errors import ConfigError, describe
from unigen.estimators._common import (
    DistributionFn,
    Integrand,
    check_n_samples,
    draw,
    evaluate,
    fit_by_adam,
    log_prob,
    per_sample_scores,
)

__all__ = [
    "MovingAverage",
    "fit_learned_baseline",
    "learned_baseline_apply",
    "learned_baseline_init",
    "moving_average_init",
    "moving_average_update",
    "optimal_baseline",
    "score_function_learned_baseline",
    "score_function_moving_average",
    "score_function_optimal_baseline",
]


# --- moving average ------------------------------------------------------------------------------


class MovingAverage(NamedTuple):
    """State of an exponential moving average: the decayed sum and the decayed weight.

    The baseline is ``total / weight`` (0 before the first update): the bias-corrected average.
    """

    total: jax.Array
    weight: jax.Array


def moving_average_init(dtype: Any = jnp.float32) -> MovingAverage:
    """The empty moving average (the baseline is 0 until the first update)."""
    return MovingAverage(jnp.zeros((), dtype), jnp.zeros((), dtype))


def moving_average_update(state: MovingAverage, values: jax.Array, decay: float) -> MovingAverage:
    r""":math:`S \leftarrow \beta S + (1-\beta)\,\bar f`, :math:`W \leftarrow \beta W + (1-\beta)`."""
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"decay: expected a number in [0, 1), got {describe(decay)}")
    mean = jnp.mean(values).astype(state.total.dtype)
    rate = jnp.asarray(1.0 - decay, state.total.dtype)
    return MovingAverage(state.total * (1 - rate) + rate * mean, state.weight * (1 - rate) + rate)


def moving_average_value(state: MovingAverage) -> jax.Array:
    return jnp.where(state.weight > 0, state.total / jnp.where(state.weight > 0, state.weight, 1), 0)


def score_function_moving_average(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    state: MovingAverage,
    *,
    decay: float = 0.9,
) -> tuple[Any, MovingAverage]:
    r"""Score function with :math:`b` = the moving average of f over *previous* calls.

    .. math::
       \hat g = \frac{1}{N} \sum_i \bigl(f(x_i) - b_t\bigr) \nabla_\lambda \log q_\lambda(x_i),
       \qquad b_{t+1} = \mathrm{EMA}_\beta(b_t, \bar f_t)

    Returns:
      ``(gradient, new_state)``; the state passed in is the only memory (pure).
    """
    n_samples = check_n_samples(n_samples)
    xs = draw(distribution(params), key, n_samples)
    values = evaluate(f, xs)
    centred = jax.lax.stop_gradient(values - moving_average_value(state).astype(values.dtype))
    gradient = jax.grad(lambda p: jnp.mean(centred * log_prob(distribution(p), xs)))(params)
    return gradient, moving_average_update(state, jax.lax.stop_gradient(values), decay)


# --- the optimal constant, estimated from the other draws -------------------------------------


def optimal_baseline(values: jax.Array, scores: jax.Array) -> jax.Array:
    r"""Leave-one-out estimates of :math:`b^*_j = \mathbb{E}[f s_j^2]/\mathbb{E}[s_j^2]`.

    Args:
      values: ``[N]`` values :math:`f(x_i)`.
      scores: ``[N, ...]`` one score coordinate (or several) per draw.

    Returns:
      ``[N, ...]``: for draw i, :math:`\sum_{k \ne i} f_k s_k^2 / \sum_{k \ne i} s_k^2`.
    """
    squares = scores * scores
    weighted = values.reshape((-1,) + (1,) * (scores.ndim - 1)) * squares
    numerator = jnp.sum(weighted, axis=0, keepdims=True) - weighted
    denominator = jnp.sum(squares, axis=0, keepdims=True) - squares
    safe = jnp.where(denominator > 0, denominator, 1)
    return jnp.where(denominator > 0, numerator / safe, 0)


def score_function_optimal_baseline(
    distribution: DistributionFn, params: Any, f: Integrand, key: jax.Array, n_samples: int
) -> Any:
    r"""Score function with the per-coordinate optimal constant baseline from the other draws.

    .. math::
       \hat g_j = \frac{1}{N} \sum_i \bigl(f(x_i) - \hat b^*_{j,-i}\bigr) s_j(x_i), \qquad
       \hat b^*_{j,-i} = \frac{\sum_{k \ne i} f(x_k)\, s_j(x_k)^2}{\sum_{k \ne i} s_j(x_k)^2}

    Unbiased (draw i's baseline is built from the other draws only). It needs the per-draw
    scores (one backward pass per draw), so it costs more than :func:`score_function`.

    Raises:
      ConfigError: ``n_samples < 2``.
    """
    n_samples = check_n_samples(n_samples, 2, "the optimal baseline from the other draws")
    xs = draw(distribution(params), key, n_samples)
    values = jax.lax.stop_gradient(evaluate(f, xs))
    scores = per_sample_scores(distribution, params, xs)

    def leaf(s: jax.Array) -> jax.Array:
        b = optimal_baseline(values.astype(s.dtype), s)
        return jnp.mean((values.reshape((-1,) + (1,) * (s.ndim - 1)).astype(s.dtype) - b) * s, axis=0)

    return jax.tree.map(leaf, scores)


# --- a learned, input-dependent baseline ----------------------------------------------------


def learned_baseline_init(input_dim: int, dtype: Any = jnp.float32) -> dict[str, jax.Array]:
    r"""Parameters :math:`\psi = (w, c)` of the linear baseline :math:`b_\psi(u) = w^\top u + c`,
    all zero."""
    return {"weight": jnp.zeros((int(input_dim),), dtype), "bias": jnp.zeros((), dtype)}


def learned_baseline_apply(psi: dict[str, jax.Array], baseline_input: jax.Array) -> jax.Array:
    r""":math:`b_\psi(u) = w^\top u + c`."""
    return jnp.dot(psi["weight"], baseline_input) + psi["bias"]


def score_function_learned_baseline(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    baseline_params: Any,
    baseline_input: ArrayLike,
    *,
    baseline_fn: Callable[[Any, jax.Array], jax.Array] = learned_baseline_apply,
) -> tuple[Any, Any]:
    r"""Score function with a learned input-dependent baseline :math:`b_\psi(u)`.

    .. math::
       \hat g = \frac{1}{N} \sum_i \bigl(f(x_i) - b_\psi(u)\bigr) \nabla_\lambda \log q_\lambda(x_i)

    Args:
      baseline_params: :math:`\psi`.
      baseline_input: u, what the baseline sees (e.g. the observation x of an encoder).
      baseline_fn: ``baseline_fn(psi, u) -> scalar``; default the linear
        :func:`learned_baseline_apply`.

    Returns:
      ``(gradient, baseline_gradient)``: the estimate, and
      :math:`\nabla_\psi \frac{1}{N}\sum_i (f(x_i) - b_\psi(u))^2` computed from the same draws,
      for the caller's optimizer to update :math:`\psi` (the next call's baseline).
    """
    n_samples = check_n_samples(n_samples)
    u = jnp.asarray(baseline_input)
    xs = draw(distribution(params), key, n_samples)
    values = jax.lax.stop_gradient(evaluate(f, xs))
    b = jax.lax.stop_gradient(baseline_fn(baseline_params, u))
    centred = values - b.astype(values.dtype)
    gradient = jax.grad(lambda p: jnp.mean(centred * log_prob(distribution(p), xs)))(params)
    baseline_gradient = jax.grad(
        lambda psi: jnp.mean(jnp.square(values - baseline_fn(psi, u).astype(values.dtype)))
    )(baseline_params)
    return gradient, baseline_gradient


def fit_learned_baseline(
    distribution: DistributionFn,
    params: Any,
    f: Integrand,
    key: jax.Array,
    n_samples: int,
    baseline_input: ArrayLike,
    *,
    steps: int = 200,
    learning_rate: float = 0.1,
    baseline_params: Any = None,
    baseline_fn: Callable[[Any, jax.Array], jax.Array] = learned_baseline_apply,
) -> Any:
    r"""Trains :math:`\psi` by Adam on :math:`(f(x) - b_\psi(u))^2` at fixed :math:`\lambda`.

    Returns:
      The trained :math:`\psi` (start: ``baseline_params``, default zeros of the linear baseline).
    """
    u = jnp.asarray(baseline_input)
    psi = learned_baseline_init(u.size, u.dtype) if baseline_params is None else baseline_params

    def gradient(current: Any, k: jax.Array) -> Any:
        return score_function_learned_baseline(
            distribution, params, f, k, n_samples, current, u, baseline_fn=baseline_fn)[1]

    return fit_by_adam(gradient, psi, key, steps, learning_rate)
