r"""Estimator objects: how :func:`~unigen.algebra.compile` estimates one expectation.

``compile(expr, bindings, estimator={q: est})`` hands the expectation :math:`\mathbb{E}_q[f]`
over the explicit distribution ``q`` to ``est``, an :class:`Estimator`. The compiler calls

.. code-block:: python

    surrogate, records = est(built, f, key, n, context)

with

* ``built``: the numpyro distribution of ``q`` for this example (what its binding returned);
* ``f(value, key) -> (scalar, records)``: the body of the expectation at one value of q's
  variable (a scalar whose gradient flows into whatever the body depends on);
* ``key``: this expectation's key; by the compiler's convention draw s uses
  ``split(key, n)[s]`` and its body ``fold_in(split(key, n)[s], 1)`` (:func:`draws` gives both);
* ``n``: the number of draws the compiler would use here (``n_samples`` inside a data
  expectation, the batch size outside one);
* ``context``: an :class:`EstimatorContext`: all the parameter groups, the conditioning values
  of ``q`` (``given``, e.g. ``{"x": row}``), the :class:`~unigen.algebra.expr.Dist` itself (for
  messages), and ``batch_axis``, the ``jax.vmap`` axis name of the enclosing data expectation
  (``None`` outside one): ``jax.lax.psum(v, context.batch_axis)`` sums ``v`` over the examples
  of the batch, so a baseline may use the *other* examples' learning signals.

It returns a scalar ``surrogate`` whose **value** is the Monte Carlo estimate of
:math:`\mathbb{E}_q[f]` and whose **gradient** (in every parameter group) is the estimator's,
and ``records``: the body's records averaged the way the estimate is, plus any auxiliary
losses under :func:`auxiliary` names. An auxiliary loss (NVIL's regression of its baseline) is
*minimized* whatever sign the expectation has in the objective: the compiler does not put it
inside the expression but carries it to the top (records are summed across the terms of a sum,
averaged over data and draws, never scaled or negated) and adds it to the final loss, reporting
it as a metric under its name (``"baseline_loss"``).

An estimator may refuse a distribution it does not apply to: :meth:`Estimator.check` runs
before each call with the built distribution; the default refuses a distribution outside
``families`` (a tuple of numpyro classes, ``None`` = any) with a one-line
:class:`~unigen.errors.ConfigError` naming the Dist, the estimator, the family seen and those
expected. A Bernoulli-only estimator (ARM, DisARM) sets ``families = (BernoulliLogits,
BernoulliProbs)``.

:class:`ScoreFunction` is the score-function (REINFORCE, §2.2) estimator with the baselines
``"none"``, ``"mean"`` (the leave-one-out mean over the other draws of the whole batch) and
``"nvil"`` (Mnih & Gregor 2014: a learned input-dependent baseline :math:`b_\psi(x)`, trained
by regression, plus the leave-one-out mean, optionally with variance normalization).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from unigen.algebra.expr import Dist
from unigen.core import Params, PRNGKey
from unigen.errors import ConfigError, describe

__all__ = ["AUXILIARY", "BASELINES", "Estimator", "EstimatorContext", "ScoreFunction",
           "auxiliary", "draws", "log_prob"]

AUXILIARY = "auxiliary/"
"""The records prefix of an auxiliary loss: ``records[AUXILIARY + name]`` is added to the final
loss and reported as the metric ``name``."""

BASELINES = ("none", "mean", "nvil")
"""The baselines of :class:`ScoreFunction`."""

Body = Callable[[Any, PRNGKey], tuple[jax.Array, dict[str, jax.Array]]]


class EstimatorContext(NamedTuple):
    """What an estimator may read besides the distribution and the body.

    Attributes:
      params: the dict of every parameter group.
      given: the conditioning values of the distribution (``{"x": row}`` for q(z|x)).
      dist: the algebra's distribution being expected over (for messages).
      batch_axis: the ``jax.vmap`` axis name of the enclosing data expectation, for
        ``jax.lax.psum``/``pmean`` across the batch's examples; ``None`` outside one.
    """

    params: Params
    given: Mapping[str, Any]
    dist: Dist
    batch_axis: str | None = None


class Estimator:
    """Base class of an estimator object (see the module docstring for the protocol).

    Subclasses implement :meth:`__call__` and may set ``families`` or override :meth:`check`.
    """

    name = "estimator"
    families: tuple[type, ...] | None = None

    def check(self, dist: Dist, built: Any) -> None:
        """Refuse a distribution this estimator does not apply to (one-line ConfigError)."""
        if self.families is not None and not isinstance(built, self.families):
            expected = ", ".join(f.__name__ for f in self.families)
            raise ConfigError(
                f"estimator for {dist}: {self.name} got a {type(built).__name__}, expected one "
                f"of {expected}"
            )

    def __call__(self, q: Any, f: Body, key: PRNGKey, n: int,
                 context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        raise NotImplementedError


def auxiliary(name: str, value: jax.Array) -> dict[str, jax.Array]:
    """``{AUXILIARY + name: value}``: an auxiliary loss to minimize, reported as ``name``."""
    return {AUXILIARY + name: value}


def log_prob(q: Any, value: Any) -> Any:
    """``q.log_prob(value)`` under standard dtype promotion (numpyro mixes bools and ints
    inside Bernoulli/Categorical ``log_prob``, which strict promotion refuses)."""
    with jax.numpy_dtype_promotion("standard"):
        return q.log_prob(value)


def draw(q: Any, key: PRNGKey, reparameterized: bool = False) -> Any:
    """One draw of ``q`` (``rsample`` when ``reparameterized``), under standard promotion."""
    with jax.numpy_dtype_promotion("standard"):
        return q.rsample(key) if reparameterized else q.sample(key)


def draws(q: Any, key: PRNGKey, n: int) -> tuple[Any, jax.Array]:
    """``n`` draws of ``q`` without gradient, draw s with ``split(key, n)[s]``, and the keys of
    their bodies, ``fold_in(split(key, n)[s], 1)``: the compiler's convention."""
    keys = jax.random.split(key, n)
    values = jax.lax.stop_gradient(jax.vmap(lambda k: draw(q, k))(keys))
    return values, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)


def _batch_sum(value: jax.Array, axis: str | None) -> jax.Array:
    return value if axis is None else jax.lax.psum(value, axis)


def _batch_count(n: int, axis: str | None) -> int:
    return n if axis is None else n * jax.lax.axis_size(axis)


def _leave_one_out(values: jax.Array, axis: str | None) -> jax.Array:
    """For each entry, the mean of every other entry of ``values`` ([n]) over the whole batch
    (all examples' draws when ``axis`` names the data axis); 0 when there is only one."""
    count = _batch_count(values.shape[0], axis)
    if count == 1:
        return jnp.zeros_like(values)
    return (_batch_sum(jnp.sum(values), axis) - values) / (count - 1)


class ScoreFunction(Estimator):
    r"""The score-function estimator with a baseline.

    With draws :math:`z_s \sim q` (``split(key, n)[s]``, no gradient), learning signals
    :math:`l_s = f(z_s)` and a centred signal :math:`a_s = l_s - b_s`, the surrogate is

    .. math::
       \frac{1}{n}\sum_s f(z_s) + \mathrm{sg}[a_s]\,\left(\log q(z_s) - \mathrm{sg}[\log q(z_s)]
       \right)

    whose value is :math:`\frac1n \sum_s f(z_s)` and whose gradient is
    :math:`\frac1n \sum_s a_s \nabla \log q(z_s) + \nabla f(z_s)`. Baselines:

    * ``"none"``: :math:`b = 0`;
    * ``"mean"``: :math:`b_s` the mean learning signal of every *other* draw of the batch
      (all examples', across the data expectation; only this example's outside one);
    * ``"nvil"``: ``learned(params, given) -> scalar``, :math:`b_\psi(x)`; the residual
      :math:`r_s = l_s - \mathrm{sg}[b_\psi(x)]` is centred by the leave-one-out mean
      :math:`c_s` of the other residuals of the batch, :math:`a_s = r_s - c_s`, and with
      ``normalize`` divided by :math:`\max(1, \hat\sigma)`, :math:`\hat\sigma` the batch standard
      deviation of :math:`a`. :math:`b_\psi` is trained by the auxiliary loss
      ``"baseline_loss"``, :math:`\frac1n \sum_s (l_s - \mathrm{sg}[c_s] - b_\psi(x))^2`.

    Every baseline is independent of the draw it centres, so the estimator is unbiased (up to
    the positive rescaling of ``normalize``).

    Args:
      baseline: one of :data:`BASELINES`.
      learned: NVIL's ``learned(params, given) -> scalar`` (``baseline="nvil"`` only).
      normalize: NVIL's variance normalization (``baseline="nvil"`` only).
    """

    name = "score function"

    def __init__(self, baseline: str = "none", *, learned: Callable[[Params, Mapping[str, Any]],
                 jax.Array] | None = None, normalize: bool = False) -> None:
        if baseline not in BASELINES:
            raise ConfigError(f"baseline: got {describe(baseline)}, expected one of {list(BASELINES)}")
        if (baseline == "nvil") != (learned is not None):
            raise ConfigError(
                f"learned: got {describe(learned)} with baseline {baseline!r}, expected a function "
                "(params, given) -> scalar exactly when baseline='nvil'"
            )
        if learned is not None and not callable(learned):
            raise ConfigError(f"learned: got {describe(learned)}, expected (params, given) -> scalar")
        if not isinstance(normalize, bool) or (normalize and baseline != "nvil"):
            raise ConfigError(
                f"normalize: got {describe(normalize)} with baseline {baseline!r}, expected a bool, "
                "True only with baseline='nvil'"
            )
        self.baseline, self.learned, self.normalize = baseline, learned, normalize
        self.name = f"score function ({baseline})"

    def __call__(self, q: Any, f: Body, key: PRNGKey, n: int,
                 context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        values, body_keys = draws(q, key, n)
        value, records = jax.vmap(f)(values, body_keys)
        log_q = jax.vmap(lambda v: log_prob(q, v))(values)
        signal = jax.lax.stop_gradient(value)
        axis = context.batch_axis
        extra = {}
        if self.baseline == "none":
            centred = signal
        elif self.baseline == "mean":
            centred = signal - _leave_one_out(signal, axis)
        else:
            learned = self.learned(context.params, context.given)
            residual = signal - jax.lax.stop_gradient(learned)
            mean = _leave_one_out(residual, axis)
            centred = residual - mean
            if self.normalize:
                count = _batch_count(n, axis)
                average = _batch_sum(jnp.sum(centred), axis) / count
                spread = jnp.sqrt(_batch_sum(jnp.sum(jnp.square(centred - average)), axis) / count)
                centred = centred / jnp.maximum(1.0, spread)
            extra = auxiliary("baseline_loss", jnp.mean(
                jnp.square(signal - jax.lax.stop_gradient(mean) - learned)))
        centred = jax.lax.stop_gradient(centred)
        surrogate = value + centred * (log_q - jax.lax.stop_gradient(log_q))
        averaged = jax.tree.map(lambda a: jnp.mean(a, axis=0), records)
        return jnp.mean(surrogate), {**averaged, **extra}
