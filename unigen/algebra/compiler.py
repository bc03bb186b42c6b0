r"""Compile an objective into a pure JAX loss: ``compile(expr, bindings) -> loss``.

An expression of :mod:`unigen.algebra.expr` says *what* is optimized; the bindings say what each
distribution *is* (a function giving a numpyro distribution, a sampler, or the data batch);
:func:`compile` returns ``loss(params, key, batch) -> (scalar, metrics)``, the function the
trainer jit-compiles. How each piece is computed:

==========================================  ====================================================
:math:`\mathbb{E}_{p_{data}(x)}[\cdot]`      the mean over the rows of ``batch["x"]``; row i gets
                                             the key ``jax.random.split(key, B)[i]``
:math:`\mathbb{E}_{p(y)}[\cdot]`, discrete   exact enumeration of the support (``y`` ∈ {0, 1},
                                             categoricals, vectors of ≤ 12 binary units)
:math:`\mathbb{E}_{q(z|x)}[\cdot]`, has      reparameterization: S pathwise draws
``rsample``                                  ``d.rsample(k_s)``, ``k_s = split(key, S)[s]``
discrete, ``estimator="score"``             the score-function estimator (§2.2) with the
                                             leave-one-out baseline over the S draws
``estimator={q: est}``                       an estimator object: ``est``'s surrogate (see
                                             "Estimator objects")
a static ``enumerate_support()``             exact enumeration of the states it lists
                                             (:class:`unigen.distributions.BinaryVectors`,
                                             :class:`~unigen.distributions.OneHotCategorical`)
implicit (sample only, a GAN generator)      draws of the sampler, gradients pathwise through it
importance-weighted bound (IWAE)             :math:`\operatorname{logsumexp}_i \log w_i - \log k`,
                                             k pathwise draws ``split(key, k)[i]`` (discrete:
                                             no gradient in the proposal);
                                             ``estimator={q: VIMCO()}`` on the proposal
                                             q: the same draws without gradient, VIMCO's
                                             gradient in every group
importance-weighted expectation (IWGAN)      :math:`\sum_i \tilde w_i f(x_i)`, the draws as for
                                             :math:`\mathbb{E}`, :math:`\tilde w` = softmax of
                                             the log-weights, held constant
:math:`\mathrm{KL}(a \| b)`                  numpyro's closed form where it has one, else
                                             :math:`\mathbb{E}_a[\log a - \log b]` as above
:math:`\mathrm{H}(a)`                        closed form where numpyro has one, else
                                             :math:`-\mathbb{E}_a[\log a]`
:math:`\mathrm{JSD}(a \| b)`                 :math:`\tfrac12 \mathbb{E}_a[\log a - \log m]
                                             + \tfrac12 \mathbb{E}_b[\log b - \log m]`
``sg[·]``, sums, scalings, constants         ``lax.stop_gradient``, arithmetic
==========================================  ====================================================

Randomness. Every summand of a sum receives the same key (common random numbers: in
:math:`\mathbb{E}_q[f] - \mathrm{KL}(q \| p)` with a Monte Carlo KL, both terms use the same
draws of z, which is what the usual single-sample ELBO estimator does). An expectation's s-th
draw uses ``split(key, S)[s]`` and its body ``fold_in(split(key, S)[s], 1)``; the i-th branch of
an enumeration uses ``fold_in(key, i)``. An expectation over a model distribution outside any
data expectation (the GAN's :math:`\mathbb{E}_{p_\theta(x|y=0)}`) draws as many samples as the
batch has rows, so the model half and the data half weigh the same; inside a data expectation,
or inside a draw of another model expectation (the x of :math:`\mathbb{E}_{p(h)
p_\theta(x|h)}`: one dream per drawn h, not a batch of them), it draws ``n_samples``.

Each distribution is built once per example and reused: the VAE's encoder runs once for both
:math:`\mathbb{E}_{q_\eta(z|x)}` and :math:`\mathrm{KL}(q_\eta(z|x) \| p(z))`, so the compiled
step does exactly the hand-written step's work (``benchmarks/vae_throughput.py`` compares them).

Bindings map each :class:`~unigen.algebra.expr.Dist` of the expression to:

* a function ``fn(params, given) -> numpyro Distribution`` over the one variable the Dist is over
  (``params`` is the dict of all parameter groups, ``given`` a dict of the conditioning values);
  or :func:`explicit` ``(fn)``, the same;
* :func:`implicit` ``(sampler)``, ``sampler(params, key, given) -> value``: sample only;
* :func:`data` ``("x")``: the rows of ``batch["x"]`` (a ``p_data(x)`` without a binding gets it);
  ``data("z", map=G)`` their images ``G(params, row)``, the implicit distribution of features
  :math:`x = G_\theta(z)`, :math:`z \sim p(z \mid y)` of adversarial domain adaptation (§3.1),
  differentiable in ``params``; ``carry={"label": "label"}`` puts each row's companions (its
  label) in scope beside it.
* :func:`marginal` ``(p(x|y) * p(y))``: :math:`p(x) = \mathbb{E}_{p(y)}[p(x \mid y)]`, an
  expectation over it being one over the product, y hidden from the body.

Estimator objects. A value of ``estimator={q: ...}`` may be, instead of a name of
:data:`ESTIMATORS`, an :class:`~unigen.algebra.estimator.Estimator`: the compiler then hands the
expectation over ``q`` to it, calling ``est(built, f, key, n, context)`` with the built numpyro
distribution, the body ``f(value, key) -> (scalar, records)``, the expectation's key, the number
of draws ``n`` it would use, and an :class:`~unigen.algebra.estimator.EstimatorContext`
(``params``, ``given`` — the conditioning values such as x —, the Dist, and ``batch_axis``:
a data expectation is a ``jax.vmap`` with ``axis_name=BATCH_AXIS``, so an estimator inside one
may ``jax.lax.psum``/``pmean`` across the batch's examples). It returns ``(surrogate,
records)``: the surrogate's *value* is the Monte Carlo estimate of :math:`\mathbb{E}_q[f]` and
its *gradient* is the estimator's. Before the call, ``est.check(dist, built)`` may refuse the
distribution (a Bernoulli-only estimator on a Gaussian) with a one-line ConfigError. Auxiliary
losses (NVIL's baseline regression) travel in ``records`` under
:data:`~unigen.algebra.estimator.AUXILIARY` names, outside the expression: summed across
summands, averaged over data and draws (weighted without gradient in an enumeration), never
negated or scaled, and added to the final loss, which therefore minimizes each of them
whatever sign its expectation has in the objective; each is reported as a metric under its
name (``"baseline_loss"``). :class:`~unigen.algebra.estimator.ScoreFunction` (baselines
``"none"``, ``"mean"``, ``"nvil"``) is the built-in one; MuProp, REBAR, RELAX, ARM,
DisARM, straight-through Gumbel or Concrete plug in the same way
(:mod:`unigen.algebra.discrete_estimators`), and VIMCO, the estimator of a multi-sample
bound, is given for the proposal of an importance-weighted bound. With ``algorithm(...)``, the estimator
may also be given per phase, ``{phase name: {q: ...}}``.

A Dist with a fixed conditioning value (``p_θ(x|y=0)``) may be bound on its own; when an
enumeration fixes y, the binding for the fixed value is looked up first, then the one for free y.
The reversed :math:`q^r(y|x) = q(1-y|x)` uses the binding of :math:`q(y|x)`.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as numpyro_dist

from unigen.algebra.expr import (
    Coefficient,
    Constant,
    Dist,
    Distribution,
    Entropy,
    Expectation,
    ExpressionError,
    ImportanceWeightedBound,
    ImportanceWeightedExpectation,
    JSDivergence,
    KLDivergence,
    Log,
    Neg,
    Node,
    Product,
    Scale,
    StopGradient,
    Sum,
    Term,
    Var,
    children as _children,
    coefficients as coefficients_of,
    nodes,
)
from unigen.algebra.estimator import AUXILIARY, Estimator, EstimatorContext
from unigen.algebra.estimator import draw as _draw
from unigen.algebra.estimator import log_prob as _log_prob
from unigen.core import Batch, Metrics, Params, PRNGKey
from unigen.distributions import BernoulliLogits
from unigen.errors import ConfigError, DataError, describe

__all__ = ["BATCH_AXIS", "ESTIMATORS", "KL_METHODS", "MAX_ENUMERATION", "Binding", "compile", "data",
           "explicit", "implicit", "marginal", "self_normalized"]

ESTIMATORS = ("auto", "reparameterized", "score", "enumerate", "draw")
"""How an expectation over an explicit distribution is estimated. ``"auto"``: enumerate a
discrete distribution with at most :data:`MAX_ENUMERATION` states, reparameterize one with
``rsample``, the score function otherwise. ``"draw"``: plain draws with no gradient through the
distribution at all (the same draws as ``"score"``, without its score term): for an expectation
whose distribution's parameters the phase does not train, such as the dreams of the sleep
phase."""

KL_METHODS = ("auto", "monte_carlo")
"""``"auto"``: numpyro's closed form where registered, Monte Carlo otherwise."""

MAX_ENUMERATION = 4096
"""The largest support enumerated exactly (2^12 states)."""

BATCH_AXIS = "batch"
"""The ``jax.vmap`` axis name of a data expectation (an estimator's ``context.batch_axis``)."""

_LOOP_LIMIT = 16  # supports this small are enumerated in a Python loop (values stay static)

Loss = Callable[..., tuple[jax.Array, Metrics]]
"""``loss(params, key, batch, step=None, *, coefficients=None) -> (scalar, metrics)``."""


class Binding(NamedTuple):
    """What a distribution of the expression is.

    Attributes:
      kind: ``"explicit"`` (``fn(params, given) -> numpyro Distribution``), ``"implicit"``
        (``fn(params, key, given) -> value``), ``"data"`` (rows of ``batch[key]``),
        ``"self_normalized"`` (a posterior by self-normalized importance sampling) or
        ``"marginal"`` (a marginal of ``target``, a product over more variables).
      fn: the function, or ``None`` for data.
      key: the batch key for data.
      carry: for ``"data"``: ``((variable, batch key), ...)``, values of the same row put in scope.
      target: for ``"self_normalized"``: the unnormalized joint the posterior is proportional to;
        for ``"marginal"``: the joint whose other variables are summed out.
      proposal: for ``"self_normalized"``: the distribution drawn from.
      k: for ``"self_normalized"``: the number of draws.
    """

    kind: str
    fn: Callable[..., Any] | None = None
    key: str = "x"
    target: Distribution | None = None
    proposal: Dist | None = None
    k: int = 0
    carry: tuple[tuple[str, str], ...] = ()


def explicit(fn: Callable[[Params, Mapping[str, Any]], numpyro_dist.Distribution]) -> Binding:
    """A distribution with a density: ``fn(params, given)`` returns a numpyro distribution."""
    if not callable(fn):
        raise ConfigError(f"fn: got {describe(fn)}, expected a callable (params, given) -> dist")
    return Binding("explicit", fn)


def implicit(sampler: Callable[[Params, PRNGKey, Mapping[str, Any]], jax.Array]) -> Binding:
    """A distribution known only through samples (a GAN generator): ``sampler(params, key,
    given) -> value`` for one draw, differentiable in ``params`` (pathwise)."""
    if not callable(sampler):
        raise ConfigError(
            f"sampler: got {describe(sampler)}, expected a callable (params, key, given) -> value"
        )
    return Binding("implicit", sampler)


def uniform_indicator(group: str = "phi") -> Binding:
    r"""The uniform :math:`p(y)` over the indicator :math:`y \in \{0, 1\}`: a Bernoulli with logit 0,
    in the dtype of the first array of ``params[group]`` (so that a float64 model's objective stays
    float64 under strict promotion). GAN, ADA, AAE, AAVAE and VAE/GAN bind their ``p(y)`` to it."""
    if not isinstance(group, str) or not group:
        raise ConfigError(f"group: got {describe(group)}, expected a parameter group name such as 'phi'")

    def half(params: Params, given: Mapping[str, Any]) -> numpyro_dist.Distribution:
        return BernoulliLogits(jnp.zeros((), jax.tree.leaves(params[group])[0].dtype))

    return Binding("explicit", half)


def data(
    key: str = "x",
    map: Callable[[Params, jax.Array], Any] | None = None,  # noqa: A002 - the math's word
    carry: Mapping[str, str] | None = None,
) -> Binding:
    r"""The empirical distribution of the batch: the rows of ``batch[key]``.

    Args:
      key: the batch key.
      map: ``map(params, row) -> value``: the distribution is that of ``map(params, row)``, a
        pushforward of the rows (features :math:`x = G_\theta(z)` of data :math:`z`), with
        gradients in ``params``; ``None``: the rows themselves.
      carry: ``{variable: batch key}``: each row's companions in ``batch[batch key]`` (same row
        index) are put in scope as ``variable`` (a source example's label).
    """
    if not isinstance(key, str) or not key:
        raise ConfigError(f"key: got {describe(key)}, expected a batch key such as 'x'")
    if map is not None and not callable(map):
        raise ConfigError(f"map: got {describe(map)}, expected a function (params, row) -> value or None")
    carry = {} if carry is None else carry
    if not isinstance(carry, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in carry.items()):
        raise ConfigError(f"carry: got {describe(carry)}, expected a dict {{variable: batch key}}")
    return Binding("data", fn=map, key=key, carry=tuple(carry.items()))


def self_normalized(target: Distribution, proposal: Dist, k: int) -> Binding:
    r"""A posterior known up to its normalizer, by self-normalized importance sampling.

    An expectation over the bound distribution, :math:`\mathbb{E}_{p_\theta(h \mid x)}[f]`
    with :math:`p_\theta(h \mid x) \propto p_\theta(x, h)` (``target``, e.g.
    ``prior * decoder``), is :math:`\sum_{i=1}^{k} \tilde w_i f(h_i)`, with
    :math:`h_i \sim q(h \mid x)` (``proposal``, drawn with ``split(key, k)[i]``, no gradient)
    and the weights :math:`\tilde w_i = w_i / \sum_j w_j`,
    :math:`w_i = p_\theta(x, h_i) / q(h_i \mid x)`, computed in log space and held constant
    (no gradient): the wake-φ update of reweighted wake-sleep (Bornschein & Bengio 2015).
    Biased for finite k, consistent as k grows. ``target`` and ``proposal`` need bindings of
    their own.
    """
    if not isinstance(target, Distribution):
        raise ConfigError(f"target: got {describe(target)}, expected a distribution (Dist or Product)")
    if not isinstance(proposal, Dist) or len(proposal.over) != 1:
        raise ConfigError(f"proposal: got {describe(proposal)}, expected a Dist over one variable")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k: got {describe(k)}, expected a positive int")
    return Binding("self_normalized", target=target, proposal=proposal, k=k)


def marginal(joint: Product) -> Binding:
    r"""A marginal by its joint: :math:`p(x) = \mathbb{E}_{p(y)}[p(x \mid y)]` bound as
    ``marginal(p_x_given_y * p_y)``.

    An expectation over the bound distribution is the expectation over ``joint`` (each factor
    by its own binding: p(y) enumerated, each p(x|y=i) by the binding for its fixed value), with
    the joint's other variables hidden from the body. With uniform p(y), p(x|y=1) the data and
    p(x|y=0) a generator, :math:`\mathbb{E}_{p(x)}[f]` is half the batch mean of f plus half
    its mean over as many generated draws as the batch has rows (the AAVAE's
    :math:`p_{\theta_0}(x)`, Hu et al. 2018, Eq. 17). ``joint``'s factors need bindings of their
    own.
    """
    if not isinstance(joint, Product):
        raise ConfigError(f"joint: got {describe(joint)}, expected a product such as p(x|y) * p(y)")
    return Binding("marginal", target=joint)


# --------------------------------------------------------------------------------------------
# compile


def compile(  # noqa: A001 - the issue's name for it; the builtin stays reachable as builtins.compile
    expr: Term,
    bindings: Mapping[Dist, Binding | Callable[..., Any]],
    *,
    estimator: str | Mapping[Dist, str | Estimator] = "auto",
    n_samples: int = 1,
    kl: str = "auto",
    maximize: bool = True,
    metrics: Mapping[str, Term] | None = None,
    coefficients: Mapping[Coefficient | str, Any] | None = None,
) -> Loss:
    r"""The pure loss of an objective: ``loss(params, key, batch, step=None) -> (scalar, metrics)``.

    Args:
      expr: the objective, a scalar term (see the module docstring for how each node is
        computed).
      bindings: what each distribution of ``expr`` is (see the module docstring).
      estimator: one of :data:`ESTIMATORS` for every explicit distribution expected over, or a
        dict from some of the Dists to one of them or to an estimator object
        (:class:`~unigen.algebra.estimator.Estimator`, see the module docstring; the others
        get ``"auto"``).
      n_samples: S, the draws per expectation over a sampled distribution inside a data
        expectation or inside another expectation's draw (at the top, the batch size).
      kl: ``"auto"`` or ``"monte_carlo"`` (see :data:`KL_METHODS`).
      maximize: the objective is maximized, so the loss is its negation; ``False``: minimized.
      metrics: named terms whose values are reported beside ``"loss"``: sub-terms of
        ``expr`` (computed once, with the objective) or any other term over the same bindings
        (e.g. the β = 1 ELBO while training β = 4), evaluated with the same key (the same draws
        where they share an expectation) and averaged the same way as the objective.
      coefficients: values of the named coefficients of ``expr`` and ``metrics``
        (:func:`~unigen.algebra.expr.coefficient`), by coefficient or name: a number, an array,
        or a schedule ``value(step)`` (an optax schedule). A coefficient not given here uses its
        own default value.

    Returns:
      ``loss(params, key, batch, step=None, *, coefficients=None) -> (scalar, metrics)`` with
      ``params`` the dict of parameter groups; pure and jit-able. The scalar is the
      objective's loss plus the auxiliary losses of the estimator objects (each also a metric). ``step`` (an int scalar, the
      steps taken so far; the trainer passes it) is needed when a coefficient is a schedule;
      ``coefficients`` overrides values at call time (numbers or traced arrays). The loss has
      attributes ``uses_step`` (whether some coefficient is a schedule) and ``objective``
      (``expr``).

    Raises:
      ConfigError: a distribution without a binding (the message names the distribution and
        the term it appears in), an unknown estimator or KL method, a coefficient without a
        value or with a schedule that is not a function of the step.
      ExpressionError: ``expr`` or a metric is not a scalar term.
    """
    _check_compilable(expr)
    watch, extra = _check_metrics(expr, metrics or {})
    every = (expr,) + tuple(extra.values())
    for term in extra.values():
        _check_compilable(term)
    table = _check_bindings(every, bindings)
    methods = _check_estimators(every, estimator)
    _check_bodies(expr, methods)  # the metrics carry no gradient
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ConfigError(f"n_samples: got {describe(n_samples)}, expected a positive int")
    if kl not in KL_METHODS:
        raise ConfigError(f"kl: got {describe(kl)}, expected one of {KL_METHODS}")
    values = _check_coefficients(every, coefficients or {})
    uses_step = any(callable(v) for v in values.values())
    fixed = frozenset(v.name for d in table for v in d.given if v.value is not None)
    options = _Options(table, methods, n_samples, kl, watch, fixed)
    sign = -1.0 if maximize else 1.0

    def loss(params: Params, key: PRNGKey, batch: Batch, step: Any = None, *,
             coefficients: Mapping[str, Any] | None = None) -> tuple[jax.Array, Metrics]:
        scalars = _coefficient_values(values, step, coefficients)
        evaluator = _Evaluator(options, params, batch, scalars)
        value, records = evaluator.term(expr, _Scope(), key)
        total = sign * jnp.asarray(value)
        out = {}
        for name, aux in records.items():  # auxiliary losses are minimized, whatever the sign
            if name.startswith(AUXILIARY):
                total = total + aux
                out[name[len(AUXILIARY):]] = jnp.asarray(aux)
        out["loss"] = total
        for name in watch.values():
            out[name] = jnp.asarray(records[name])
        for name, term in extra.items():
            out[name] = jax.lax.stop_gradient(jnp.asarray(evaluator.term(term, _Scope(), key)[0]))
        return total, out

    loss.uses_step = uses_step  # type: ignore[attr-defined]
    loss.objective = expr  # type: ignore[attr-defined]  # what it was compiled from
    return loss


def _check_compilable(expr: Any) -> None:
    if not isinstance(expr, Term):
        raise ExpressionError(f"expr: got {describe(expr)}, expected a scalar term (E, KL, ...)")
    for node in nodes(expr):
        if not isinstance(node, _SUPPORTED):
            raise ExpressionError(
                f"expr: contains {type(node).__name__} ({node}), which compile does not support"
            )
        if isinstance(node, Constant) and node.value is None:
            raise ExpressionError(f"expr: the symbolic constant {node} has no value to compute")
        if isinstance(node, ImportanceWeightedBound) and node.k is None:
            raise ExpressionError(
                f"expr: {node} has a symbolic k; give the number of draws, "
                "importance_weighted_bound(target, proposal, k=5)"
            )


def _check_coefficients(exprs: tuple[Term, ...], given: Mapping[Any, Any]) -> dict[str, Any]:
    """Each named coefficient's value (number, array or schedule), checked once here."""
    if not isinstance(given, Mapping):
        raise ConfigError(
            f"coefficients: got {describe(given)}, expected a dict coefficient (or name) -> value"
        )
    named = {c.name: c for e in exprs for c in coefficients_of(e)}
    supplied = {}
    for key, value in given.items():
        name = key.name if isinstance(key, Coefficient) else key
        if name not in named:
            raise ConfigError(
                f"coefficients: got {describe(key)}, expected a coefficient of the objective "
                f"or its metrics ({sorted(named)})"
            )
        supplied[name] = value
    out = {}
    for name, c in named.items():
        value = supplied.get(name, c.value)
        if value is None:
            raise ConfigError(
                f"coefficient {name}: got no value, expected a number, an array or a schedule "
                f"of the step, in coefficient({name!r}, value) or compile(..., coefficients=)"
            )
        out[name] = _checked_value(name, value)
    return out


def _checked_value(name: str, value: Any) -> Any:
    if callable(value):
        try:
            result = jax.eval_shape(value, jax.ShapeDtypeStruct((), jnp.int32))
        except Exception as error:  # noqa: BLE001 - any failure means "not a schedule"
            raise ConfigError(
                f"coefficient {name}: got {describe(value)}, which fails when called with the "
                f"step ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                "expected a schedule value(step) -> scalar, such as an optax schedule"
            ) from None
        if getattr(result, "shape", None) != () or not jnp.issubdtype(result.dtype, jnp.number):
            raise ConfigError(
                f"coefficient {name}: got a schedule returning {describe(result)}, expected one "
                "returning a numeric scalar for the step"
            )
        return value
    if isinstance(value, bool) or jnp.ndim(value) != 0:
        raise ConfigError(
            f"coefficient {name}: got {describe(value)}, expected a number, a scalar array or "
            "a schedule of the step"
        )
    return value


def _coefficient_values(values: Mapping[str, Any], step: Any,
                        overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if overrides and name in overrides:
            out[name] = overrides[name]
        elif callable(value):
            if step is None:
                raise ConfigError(
                    f"step: got None, expected the training step: coefficient {name} is a "
                    "schedule of the step (call loss(params, key, batch, step))"
                )
            out[name] = value(step)
        else:
            out[name] = value
    if overrides:
        unknown = sorted(set(overrides) - set(values))
        if unknown:
            raise ConfigError(
                f"coefficients: got {unknown}, expected names of the objective's coefficients "
                f"({sorted(values)})"
            )
    return out


# --------------------------------------------------------------------------------------------
# Checks at compile time

_SUPPORTED = (Constant, Dist, Entropy, Expectation, ImportanceWeightedBound,
              ImportanceWeightedExpectation, JSDivergence, KLDivergence, Log, Neg, Product, Scale,
              StopGradient, Sum, Var)


def _unreversed(d: Dist) -> Dist:
    return replace(d, reversed=False) if d.reversed else d


def _free(d: Dist) -> Dist:
    """``d`` with its fixed conditioning values freed: p(x|y=0) -> p(x|y)."""
    return replace(d, given=tuple(Var(v.name) for v in d.given))


def _check_bindings(exprs: tuple[Term, ...], bindings: Mapping[Dist, Any]) -> dict[Dist, Binding]:
    if not isinstance(bindings, Mapping):
        raise ConfigError(f"bindings: got {describe(bindings)}, expected a dict Dist -> binding")
    table: dict[Dist, Binding] = {}
    for d, b in bindings.items():
        if not isinstance(d, Dist):
            raise ConfigError(f"bindings: got key {describe(d)}, expected a Dist")
        if d.reversed:
            raise ConfigError(
                f"bindings: got the reversed {d}, expected q(y|x): q^r uses q's binding"
            )
        if len(d.over) != 1:
            raise ConfigError(
                f"bindings: got {d} over {len(d.over)} variables, expected one variable "
                "(write a joint as a product of one-variable distributions)"
            )
        if not isinstance(b, Binding) and not callable(b):
            raise ConfigError(
                f"bindings[{d}]: got {describe(b)}, expected explicit(fn), implicit(sampler), "
                "data(key) or a function (params, given) -> numpyro distribution"
            )
        table[d] = b if isinstance(b, Binding) else explicit(b)
    inside = [_binding_term(b) for b in table.values() if b.kind in ("self_normalized", "marginal")]
    for expr in exprs + tuple(inside):
        for term in _terms_with_dists(expr):
            for d in _own_dists(term):
                d = _unreversed(d)
                if d in table:
                    continue
                if d.name == "p_data" and d.params is None:
                    table[d] = data("x")
                    continue
                free = _free(d)
                if free in table or any(_free(k) == free for k in table):
                    continue
                alike = [k for k in table if str(_free(k)) == str(free)]
                hint = (
                    f"; {alike[0]} is bound, but it is another distribution that prints alike "
                    "(distributions are distinct objects: bind this one, or derive it with "
                    ".fixed(...) or reverse(...))" if alike else ""
                )
                raise ConfigError(
                    f"bindings: no binding for {d} (in {term}); bound: "
                    f"{[str(k) for k in table]}{hint}"
                )
    return table


def _binding_term(binding: Binding) -> Term:
    """The distributions a self-normalized or marginal binding evaluates, as a term whose bindings
    to check."""
    if binding.proposal is None:
        return Log(binding.target)  # type: ignore[arg-type]
    return Log(binding.target) + Log(binding.proposal)  # type: ignore[arg-type]


def _own_dists(term: Node) -> list[Dist]:
    """The distributions a term mentions directly (not through a sub-term)."""
    out = []
    for child in _children(term):
        if isinstance(child, Dist):
            out.append(child)
        elif isinstance(child, Product):
            out.extend(child.factors)
    return out


def _terms_with_dists(expr: Term) -> list[Node]:
    """Every node that mentions a distribution directly, innermost last."""
    return [n for n in nodes(expr) if not isinstance(n, (Dist, Product)) and _own_dists(n)]


def _check_estimators(exprs: tuple[Term, ...], estimator: Any) -> dict[Dist, str | Estimator]:
    dists = {_unreversed(n) for e in exprs for n in nodes(e) if isinstance(n, Dist)}
    if isinstance(estimator, str):
        if estimator not in ESTIMATORS:
            raise ConfigError(f"estimator: got {estimator!r}, expected one of {ESTIMATORS}")
        return {d: estimator for d in dists}
    if not isinstance(estimator, Mapping):
        raise ConfigError(
            f"estimator: got {describe(estimator)}, expected one of {ESTIMATORS} or a dict "
            "Dist -> one of them"
        )
    methods = {d: "auto" for d in dists}
    for d, method in estimator.items():
        if not isinstance(d, Dist) or _unreversed(d) not in dists:
            raise ConfigError(
                f"estimator: got key {describe(d)}, expected a Dist of the expression "
                f"({sorted(str(x) for x in dists)})"
            )
        if not isinstance(method, Estimator) and method not in ESTIMATORS:
            raise ConfigError(
                f"estimator[{d}]: got {describe(method)}, expected one of {ESTIMATORS} or an "
                "Estimator object (unigen.algebra.estimator)"
            )
        methods[_unreversed(d)] = method
    return methods


def _mentions(term: Node, name: str) -> bool:
    """Whether ``term`` involves the variable ``name`` (a distribution over or given it)."""
    return any(isinstance(n, Dist) and (name in n.over_names or any(v.name == name for v in n.given))
               for n in nodes(term))


def _check_bodies(expr: Term, methods: Mapping[Dist, str | Estimator]) -> None:
    """Refuse an estimator that differentiates its body in the latent (REBAR, RELAX) over a body
    holding a term of that latent constant (sg[log q(h|x)]): jax's derivative is then not the
    body's, and the control variate's correction is biased."""
    for node in nodes(expr):
        if not isinstance(node, Expectation) or not isinstance(node.dist, Dist):
            continue
        method = methods.get(_unreversed(node.dist))
        if not getattr(method, "differentiates_body", False):
            continue
        (var,) = node.dist.over
        for inner in nodes(node.body):
            if isinstance(inner, StopGradient) and _mentions(inner.term, var.name):
                raise ConfigError(
                    f"estimator for {node.dist}: {method.name} differentiates the body in {var.name}, but "
                    f"{inner} holds a term of {var.name} constant (a biased control variate); expected a body "
                    f"without sg over {var.name}, e.g. log q instead of sg[log q] (same value and gradient)")


def _check_metrics(expr: Term, metrics: Mapping[str, Term]) -> tuple[dict[Node, str], dict[str, Term]]:
    """The metrics that are sub-terms of ``expr`` (recorded while it is evaluated) and the
    others (evaluated after it, with the same key)."""
    if not isinstance(metrics, Mapping):
        raise ConfigError(f"metrics: got {describe(metrics)}, expected a dict name -> term")
    present = set(nodes(expr))
    watch: dict[Node, str] = {}
    extra: dict[str, Term] = {}
    for name, term in metrics.items():
        if not isinstance(name, str) or name == "loss":
            raise ConfigError(f"metrics: got the name {describe(name)}, expected a string other than 'loss'")
        if not isinstance(term, Term):
            raise ExpressionError(f"metrics[{name!r}]: got {describe(term)}, expected a scalar term")
        if term not in present:
            extra[name] = term
            continue
        if term in watch:
            raise ConfigError(f"metrics[{name!r}]: {term} is already reported as {watch[term]!r}")
        watch[term] = name
    return watch, extra


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class _Options:
    bindings: dict[Dist, Binding]
    estimators: dict[Dist, str | Estimator]
    n_samples: int
    kl: str
    watch: dict[Node, str]
    fixed: frozenset[str] = frozenset()  # variables some binding fixes to a value (y in p(x|y=0))


@dataclass(frozen=True)
class _Scope:
    """Values of the variables in scope; ``per_example`` inside a data expectation."""

    values: Mapping[str, Any] = field(default_factory=dict)
    per_example: bool = False
    batch_axis: str | None = None  # the data expectation's vmap axis name, inside one

    def bind(self, name: str, value: Any, per_example: bool | None = None,
             batch_axis: str | None = None) -> _Scope:
        values = dict(self.values)
        values[name] = value
        flag = self.per_example if per_example is None else per_example
        return _Scope(values, flag, batch_axis or self.batch_axis)


Records = dict[str, jax.Array]
Body = Callable[["_Scope", PRNGKey], tuple[Any, Records]]


def _batch_mean(tree: Any) -> Any:
    """Every leaf's mean over its leading (batch) axis; the per-example scalars ``[B]`` of one
    dtype averaged together, as the columns of one ``[B, n]`` array.

    The same numbers as one mean per leaf, but one reduction instead of n: with a separate mean
    for the value and for a metric that is a term of it (the VAE's ``mean_i rec_i`` beside
    ``mean_i (rec_i - kl_i)``, ``rec_i`` a sum over pixels), XLA merges each mean with the sum
    over pixels into one reduction per consumer and writes and reads the ``[B, D]`` summands
    again (``benchmarks/step_ablation.py``: +0.4 MB accessed per step)."""
    leaves, treedef = jax.tree.flatten(tree)
    columns: dict[Any, list[int]] = {}
    for index, leaf in enumerate(leaves):
        if jnp.ndim(leaf) == 1:
            columns.setdefault(jnp.result_type(leaf), []).append(index)
    means = [None if jnp.ndim(leaf) == 1 else jnp.mean(leaf, axis=0) for leaf in leaves]
    for indices in columns.values():
        averaged = jnp.mean(jnp.stack([leaves[i] for i in indices], axis=-1), axis=0)
        for column, index in enumerate(indices):
            means[index] = averaged[column]
    return jax.tree.unflatten(treedef, means)


def _merged(records: Records, more: Records) -> Records:
    """The records of two summands: a metric keeps the first term's value, auxiliary losses
    (:data:`~unigen.algebra.estimator.AUXILIARY`) of both add up."""
    out = {**more, **records}
    for name in records.keys() & more.keys():
        if name.startswith(AUXILIARY):
            out[name] = records[name] + more[name]
    return out


def _weighted(combine: Callable, weights: Any, records: Records) -> Records:
    """Records weighted by an enumeration's probabilities; an auxiliary loss gets no gradient
    through the weights (it trains only what its estimator meant it to)."""
    return {name: combine(jax.lax.stop_gradient(weights) if name.startswith(AUXILIARY) else weights, a)
            for name, a in records.items()}


class _Evaluator:
    """Evaluates one expression for one call of the loss (holds that call's params and batch)."""

    def __init__(self, options: _Options, params: Params, batch: Batch,
                 coefficients: Mapping[str, Any] | None = None) -> None:
        self.options = options
        self.params = params
        self.batch = batch
        self.coefficients = coefficients or {}
        self._cache: dict[tuple, tuple[Any, Any]] = {}

    # -- terms ---------------------------------------------------------------------------------

    def term(self, node: Term, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        value, records = self._term(node, scope, key)
        name = self.options.watch.get(node)
        if name is not None and name not in records:
            records = {**records, name: value}
        return value, records

    def _term(self, node: Term, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        if isinstance(node, Constant):
            if node.value is None:
                raise ExpressionError(
                    f"constant {node}: symbolic (it has no value), so it cannot be computed; "
                    "compile the terms around it"
                )
            return jnp.asarray(node.value, dtype=_float_dtype()), {}
        if isinstance(node, Sum):
            total, records = None, {}
            for term in node.terms:
                value, more = self.term(term, scope, key)
                total = value if total is None else total + value
                records = _merged(records, more)
            return total, records
        if isinstance(node, Neg):
            value, records = self.term(node.term, scope, key)
            return -value, records
        if isinstance(node, Scale):
            value, records = self.term(node.term, scope, key)
            if isinstance(node.factor, Coefficient):
                return jnp.asarray(self.coefficients[node.factor.name], jnp.result_type(value)) * value, records
            return node.factor * value, records
        if isinstance(node, StopGradient):
            value, records = self.term(node.term, scope, key)
            return jax.lax.stop_gradient(value), jax.lax.stop_gradient(records)
        if isinstance(node, Log):
            for v in getattr(node, "at", ()):
                scope = scope.bind(v.name, v.value)
            return self.log_prob(node.dist, scope), {}
        if isinstance(node, Expectation):
            return self.expect(node.dist, lambda s, k: self.term(node.body, s, k), scope, key)
        if isinstance(node, KLDivergence):
            return self.kl(node, scope, key)
        if isinstance(node, Entropy):
            return self.entropy(node, scope, key)
        if isinstance(node, JSDivergence):
            return self.jsd(node, scope, key)
        if isinstance(node, ImportanceWeightedBound):
            return self.importance_weighted(node, scope, key), {}
        if isinstance(node, ImportanceWeightedExpectation):
            return self.weighted_expectation(node, scope, key)
        raise ExpressionError(f"node: got {type(node).__name__}, which compile does not support")

    def kl(self, node: KLDivergence, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        if self.options.kl == "auto":
            closed = self._closed_form(
                (node.a, node.b), scope, lambda a, b: numpyro_dist.kl_divergence(a, b)
            )
            if closed is not None:
                return closed, {}

        def body(s: _Scope, k: PRNGKey) -> tuple[Any, Records]:
            return self.log_prob(node.a, s) - self.log_prob(node.b, s), {}

        return self.expect(node.a, body, scope, key)

    def entropy(self, node: Entropy, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        closed = self._closed_form((node.dist,), scope, lambda d: d.entropy())
        if closed is not None:
            return closed, {}
        return self.expect(node.dist, lambda s, k: (-self.log_prob(node.dist, s), {}), scope, key)

    def jsd(self, node: JSDivergence, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        def log_mixture(s: _Scope) -> Any:
            both = jnp.logaddexp(self.log_prob(node.a, s), self.log_prob(node.b, s))
            return both - math.log(2.0)

        left, _ = self.expect(
            node.a, lambda s, k: (self.log_prob(node.a, s) - log_mixture(s), {}), scope, key
        )
        right, _ = self.expect(
            node.b, lambda s, k: (self.log_prob(node.b, s) - log_mixture(s), {}), scope,
            jax.random.fold_in(key, 1),
        )
        return 0.5 * left + 0.5 * right, {}

    def importance_weighted(self, node: ImportanceWeightedBound, scope: _Scope,
                            key: PRNGKey) -> Any:
        """``logsumexp_i [log target(z_i) − log proposal(z_i)] − log k``, ``z_i`` drawn pathwise
        with ``split(key, k)[i]`` (one draw of the bound's estimator)."""
        (var,) = node.proposal.over
        binding = self.binding(node.proposal, scope)
        built = self.distribution(node.proposal, binding, scope) if binding.kind == "explicit" else None
        if built is None:
            raise ExpressionError(f"{node}: the proposal {node.proposal} needs an explicit binding")
        method = self.options.estimators.get(_unreversed(node.proposal), "auto")
        if isinstance(method, Estimator):
            return self._bound_with(method, node, built, scope, key)
        pathwise = built.has_rsample

        def log_weight(draw_key: PRNGKey) -> Any:
            value = _draw(built, draw_key, pathwise)
            inner = scope.bind(var.name, value if pathwise else jax.lax.stop_gradient(value))
            log_q = self.log_prob(node.proposal, inner)
            # Discrete draws carry no gradient: the bound's gradient in the target's groups is
            # Σ w̃_i ∇ log p(x, z_i) (reweighted wake-sleep's wake-θ); in the proposal's groups
            # it is not estimated (log q is held constant).
            return self.log_prob(node.target, inner) - (log_q if pathwise else jax.lax.stop_gradient(log_q))

        log_w = jax.vmap(log_weight)(jax.random.split(key, node.k))
        return jax.nn.logsumexp(log_w) - math.log(node.k)

    def _bound_with(self, estimator: Estimator, node: ImportanceWeightedBound, built: Any, scope: _Scope,
                    key: PRNGKey) -> Any:
        """The bound by a multi-sample estimator object (VIMCO): the k draws without gradient, their
        log-weights and log-densities with it, handed to ``estimator.bound``."""
        if not getattr(estimator, "multi_sample", False):
            raise ConfigError(
                f"estimator for {node.proposal}: {estimator.name} estimates one expectation, but "
                f"{node.proposal} is the proposal of {node}; expected a multi-sample estimator (VIMCO()) "
                "or 'auto'")
        estimator.check_bound(node.proposal, node.k)
        (var,) = node.proposal.over
        values = jax.lax.stop_gradient(jax.vmap(lambda k: _draw(built, k, False))(jax.random.split(key, node.k)))

        def logs(value: Any) -> tuple[Any, Any]:
            inner = scope.bind(var.name, value)
            log_q = self.log_prob(node.proposal, inner)
            return self.log_prob(node.target, inner) - log_q, log_q

        log_w, log_q = jax.vmap(logs)(values)
        return estimator.bound(log_w, log_q)

    def weighted_expectation(self, node: ImportanceWeightedExpectation, scope: _Scope,
                             key: PRNGKey) -> tuple[Any, Records]:
        """``Σ_i w̃_i body(x_i)``: the draws (and keys) of ``E_{node.dist}`` drawn pathwise, the
        weights ``softmax_i log_weight(x_i)`` held constant (finite for any finite log-weight)."""
        (var,) = node.dist.over
        binding = self.binding(node.dist, scope)
        if binding.kind == "implicit" and not node.dist.reversed:
            given = self.given(node.dist, scope)
            draw = lambda k: binding.fn(self.params, k, given)  # noqa: E731
        elif binding.kind == "explicit" and not node.dist.reversed:
            built = self.distribution(node.dist, binding, scope)
            if not built.has_rsample:
                raise ExpressionError(
                    f"{node}: {node.dist} has no pathwise draws (rsample), expected a "
                    "reparameterizable or implicit distribution")
            draw = lambda k: _draw(built, k, True)  # noqa: E731
        else:
            raise ExpressionError(
                f"{node}: {node.dist} is bound as {binding.kind}, expected an implicit or "
                "explicit (reparameterizable) distribution to draw from")
        keys = jax.random.split(key, self._sample_count(scope))
        values = jax.vmap(draw)(keys)
        body_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)

        def one(value: Any, k: PRNGKey) -> tuple[Any, Records, Any]:
            inner = scope.bind(var.name, value, per_example=True)
            out, records = self.term(node.body, inner, k)
            log_weight, _ = self.term(node.log_weight, inner, jax.random.fold_in(k, 2))
            return out, records, log_weight

        out, records, log_weights = jax.vmap(one)(values, body_keys)
        weights = jax.lax.stop_gradient(jax.nn.softmax(log_weights))
        return jax.tree.map(lambda a: jnp.tensordot(weights, a, axes=1), (out, records))

    def _closed_form(self, dists: tuple[Distribution, ...], scope: _Scope, fn: Callable) -> Any:
        built = []
        for d in dists:
            if not isinstance(d, Dist) or d.reversed:
                return None
            binding = self.binding(d, scope)
            if binding.kind != "explicit":
                return None
            built.append(self.distribution(d, binding, scope))
        try:
            return fn(*built)
        except NotImplementedError:
            return None

    # -- distributions -------------------------------------------------------------------------

    def binding(self, d: Dist, scope: _Scope) -> Binding:
        """The binding of ``d`` with the values fixed in ``scope`` (fixed-value bindings first)."""
        d = _unreversed(d)
        fixed = []
        for v in d.given:
            value = scope.values.get(v.name) if v.value is None else v.value
            static = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            fixed.append(Var(v.name, int(value)) if static else Var(v.name))
        for candidate in (replace(d, given=tuple(fixed)), d, _free(d)):
            if candidate in self.options.bindings:
                return self.options.bindings[candidate]
        raise ConfigError(f"bindings: no binding for {d} with {dict(scope.values)}")

    def given(self, d: Dist, scope: _Scope) -> dict[str, Any]:
        out = {}
        for v in d.given:
            if v.value is not None:
                out[v.name] = v.value
            elif v.name in scope.values:
                out[v.name] = scope.values[v.name]
            else:
                raise ExpressionError(
                    f"{d}: the conditioning variable {v.name} has no value here; expect over "
                    f"a distribution of {v.name} first (in scope: {sorted(scope.values)})"
                )
        return out

    def distribution(self, d: Dist, binding: Binding, scope: _Scope) -> Any:
        """The numpyro distribution of an explicit ``d``, built once per conditioning values."""
        given = self.given(d, scope)
        key = (id(binding), tuple((name, id(value)) for name, value in sorted(given.items())))
        hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        built = binding.fn(self.params, given)
        self._cache[key] = (given, built)  # keeps the values alive, so their ids stay unique
        return built

    def log_prob(self, d: Distribution, scope: _Scope) -> Any:
        if isinstance(d, Product):
            return builtins.sum(self.log_prob(f, scope) for f in d.factors)
        binding = self.binding(d, scope)
        if binding.kind != "explicit":
            raise ExpressionError(
                f"log {d}: its binding is {binding.kind} (sample only or data), which has no "
                "density; bind it with explicit(...) or rewrite the objective"
            )
        (var,) = d.over
        if var.name not in scope.values:
            raise ExpressionError(f"log {d}: {var.name} has no value here")
        value = scope.values[var.name]
        if d.reversed:
            value = 1 - value
        return _log_prob(self.distribution(d, binding, scope), value)

    # -- expectations --------------------------------------------------------------------------

    def expect(self, d: Distribution, body: Body, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        if isinstance(d, Product):
            return self._expect_product(list(d.factors), body, scope, key)
        (var,) = d.over
        binding = self.binding(d, scope)
        if binding.kind == "data":
            return self._expect_data(var.name, binding, body, scope, key)
        if binding.kind == "self_normalized":
            return self._expect_self_normalized(var.name, binding, body, scope, key)
        if binding.kind == "marginal":
            hidden = binding.target.over_names - {var.name}

            def without_hidden(s: _Scope, k: PRNGKey) -> tuple[Any, Records]:
                values = {n: v for n, v in s.values.items() if n not in hidden}
                values.update({n: scope.values[n] for n in hidden if n in scope.values})
                return body(_Scope(values, s.per_example), k)

            return self.expect(binding.target, without_hidden, scope, key)
        if binding.kind == "implicit":
            if d.reversed:
                raise ExpressionError(f"E over {d}: a reversed implicit distribution")
            given = self.given(d, scope)
            draw = lambda k: binding.fn(self.params, k, given)  # noqa: E731
            return self._expect_draws(var.name, draw, body, scope, key)
        built = self.distribution(d, binding, scope)
        method = self.options.estimators.get(_unreversed(d), "auto")
        states = _support(built)
        if method == "auto":
            if states is not None and len(states) <= MAX_ENUMERATION:
                method = "enumerate"
            elif built.has_rsample:
                method = "reparameterized"
            else:
                method = "score"
        flip = (lambda v: 1 - v) if d.reversed else (lambda v: v)
        if method == "enumerate":
            if states is None or len(states) > MAX_ENUMERATION:
                raise ConfigError(
                    f"estimator for {d}: 'enumerate' needs a finite support of at most "
                    f"{MAX_ENUMERATION} states"
                )
            return self._expect_enumerated(var.name, built, states, flip, body, scope, key)
        if method == "reparameterized":
            if not built.has_rsample:
                raise ConfigError(
                    f"estimator for {d}: 'reparameterized' needs a distribution with rsample, "
                    f"got {type(built).__name__}"
                )
            return self._expect_draws(
                var.name, lambda k: flip(_draw(built, k, True)), body, scope, key
            )
        if method == "draw":
            return self._expect_draws(
                var.name, lambda k: flip(jax.lax.stop_gradient(_draw(built, k, False))), body,
                scope, key,
            )
        if isinstance(method, Estimator):
            return self._expect_with(method, d, built, flip, body, scope, key)
        return self._expect_score(var.name, built, flip, body, scope, key)

    def _expect_with(self, estimator: Estimator, d: Dist, built: Any, flip: Callable, body: Body,
                     scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        """An estimator object's surrogate (see :mod:`unigen.algebra.estimator`)."""
        estimator.check(d, built)
        (var,) = d.over
        context = EstimatorContext(self.params, self.given(d, scope), d, scope.batch_axis)

        def f(value: Any, k: PRNGKey) -> tuple[Any, Records]:
            return body(scope.bind(var.name, flip(value), per_example=True), k)

        value, records = estimator(built, f, key, self._sample_count(scope), context)
        if jnp.shape(value) != () or not isinstance(records, Mapping):
            raise ConfigError(
                f"estimator for {d}: {estimator.name} returned {describe(value)} and "
                f"{describe(records)}, expected (scalar surrogate, dict of records)"
            )
        return value, dict(records)

    def _expect_product(self, factors: list[Dist], body: Body, scope: _Scope,
                        key: PRNGKey) -> tuple[Any, Records]:
        """Nested expectations: first a factor none of whose conditioning variables the other
        factors draw, then the rest inside it (p(y) p_θ(x|y): y outside, x inside)."""
        for i, factor in enumerate(factors):
            rest = factors[:i] + factors[i + 1:]
            drawn = {n for f in rest for n in f.over_names}
            if not {v.name for v in factor.given if v.value is None} & drawn:
                if len(rest) == 1:
                    return self.expect(factor, lambda s, k: self.expect(rest[0], body, s, k),
                                       scope, key)
                return self.expect(
                    factor, lambda s, k: self._expect_product(rest, body, s, k), scope, key
                )
        raise ExpressionError(
            f"E over {Product(tuple(factors))}: the factors' conditioning variables form a cycle"
        )

    def _expect_data(self, name: str, binding: Binding, body: Body, scope: _Scope,
                     key: PRNGKey) -> tuple[Any, Records]:
        if scope.per_example:
            raise ExpressionError("E over the data inside another data expectation")
        if binding.key not in self.batch:
            raise DataError(
                f"batch: expected key {binding.key!r} for the data distribution, got "
                f"{sorted(self.batch)}"
            )
        rows = jnp.asarray(self.batch[binding.key])
        if rows.ndim < 1 or rows.shape[0] < 1:
            raise DataError(f"batch[{binding.key!r}]: expected rows, got {describe(rows)}")
        companions = {}
        for variable, batch_key in binding.carry:
            values = self.batch.get(batch_key)
            if values is None or jnp.shape(values)[:1] != rows.shape[:1]:
                raise DataError(
                    f"batch[{batch_key!r}]: expected {rows.shape[0]} rows beside "
                    f"batch[{binding.key!r}], got {describe(values)}")
            companions[variable] = jnp.asarray(values)
        keys = jax.random.split(key, rows.shape[0])

        def one(row: Any, carried: dict[str, Any], k: PRNGKey) -> tuple[Any, Records]:
            inner = scope.bind(name, row if binding.fn is None else binding.fn(self.params, row),
                               per_example=True, batch_axis=BATCH_AXIS)
            for variable, value in carried.items():
                inner = inner.bind(variable, value)
            return body(inner, k)

        out = jax.vmap(one, axis_name=BATCH_AXIS)(rows, companions, keys)
        return _batch_mean(out)

    def _sample_count(self, scope: _Scope) -> int:
        if scope.per_example:
            return self.options.n_samples
        for value in self.batch.values():
            return int(jnp.shape(value)[0])
        raise DataError("batch: got no arrays; a model expectation outside the data needs a size")

    def _expect_draws(self, name: str, draw: Callable[[PRNGKey], Any], body: Body, scope: _Scope,
                      key: PRNGKey) -> tuple[Any, Records]:
        keys = jax.random.split(key, self._sample_count(scope))
        if keys.shape[0] == 1:  # one draw: no [1, ...] axis to average (exactly its mean)
            value = draw(keys[0])
            return body(scope.bind(name, value, per_example=True), jax.random.fold_in(keys[0], 1))
        values = jax.vmap(draw)(keys)
        body_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        out = jax.vmap(lambda v, k: body(scope.bind(name, v, per_example=True), k))(
            values, body_keys
        )
        return jax.tree.map(lambda a: jnp.mean(a, axis=0), out)

    def _expect_self_normalized(self, name: str, binding: Binding, body: Body, scope: _Scope,
                                key: PRNGKey) -> tuple[Any, Records]:
        """``Σ_i w̃_i body(h_i)``, h_i ~ proposal with ``split(key, k)[i]``, weights constant."""
        proposal = binding.proposal
        (var,) = proposal.over
        if var.name != name:
            raise ExpressionError(
                f"self-normalized binding: the proposal {proposal} is over {var.name}, expected "
                f"the posterior's variable {name}"
            )
        built = self.distribution(proposal, self.binding(proposal, scope), scope)
        keys = jax.random.split(key, binding.k)
        values = jax.lax.stop_gradient(jax.vmap(lambda k: _draw(built, k, False))(keys))

        def log_weight(value: Any) -> Any:
            inner = scope.bind(name, value)
            return self.log_prob(binding.target, inner) - self.log_prob(proposal, inner)

        weights = jax.lax.stop_gradient(jax.nn.softmax(jax.vmap(log_weight)(values)))
        body_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        out = jax.vmap(lambda v, k: body(scope.bind(name, v, per_example=True), k))(
            values, body_keys)
        return jax.tree.map(lambda a: jnp.tensordot(weights, a, axes=1), out)

    def _expect_score(self, name: str, built: Any, flip: Callable, body: Body, scope: _Scope,
                      key: PRNGKey) -> tuple[Any, Records]:
        """Score function: value ``mean f``, gradient ``mean[(f - b) ∇log q + ∇f]`` with the
        leave-one-out baseline ``b_s`` = mean of the other draws' f (none for one draw)."""
        keys = jax.random.split(key, self._sample_count(scope))
        values = jax.lax.stop_gradient(jax.vmap(lambda k: _draw(built, k, False))(keys))
        body_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
        f, records = jax.vmap(
            lambda v, k: body(scope.bind(name, flip(v), per_example=True), k)
        )(values, body_keys)
        log_q = jax.vmap(lambda v: _log_prob(built, v))(values)
        count = f.shape[0]
        fixed = jax.lax.stop_gradient(f)
        baseline = (jnp.sum(fixed) - fixed) / (count - 1) if count > 1 else jnp.zeros_like(fixed)
        surrogate = f + (fixed - baseline) * (log_q - jax.lax.stop_gradient(log_q))
        return jnp.mean(surrogate), jax.tree.map(lambda a: jnp.mean(a, axis=0), records)

    def _expect_enumerated(self, name: str, built: Any, states: np.ndarray, flip: Callable,
                           body: Body, scope: _Scope, key: PRNGKey) -> tuple[Any, Records]:
        if states.ndim == 1 and len(states) <= _LOOP_LIMIT and name in self.options.fixed:
            # A small scalar support (y in {0, 1}) that some binding fixes (p(x|y=0) vs
            # p(x|y=1)): a Python loop, so the values stay static and each branch finds its
            # binding. (Otherwise one vmap: it compiles faster than unrolled branches.)
            total = None
            for i, state in enumerate(states.tolist()):
                value = flip(int(state))
                weight = jnp.exp(_log_prob(built, jnp.asarray(state, _state_dtype(built))))
                out = body(scope.bind(name, value), jax.random.fold_in(key, i))
                term = (weight * out[0], _weighted(lambda w, a: w * a, weight, out[1]))
                total = term if total is None else jax.tree.map(jnp.add, total, term)
            return total
        grid = jnp.asarray(states, _state_dtype(built))
        weights = jnp.exp(jax.vmap(lambda v: _log_prob(built, v))(grid))
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(len(states)))
        value, records = jax.vmap(lambda v, k: body(scope.bind(name, flip(v)), k))(grid, keys)
        dot = lambda w, a: jnp.tensordot(w, a, axes=1)  # noqa: E731
        return dot(weights, value), _weighted(dot, weights, records)


def _float_dtype() -> Any:
    return jnp.zeros(()).dtype


def _base(d: Any) -> tuple[Any, int]:
    """The base distribution of ``d`` and the number of event dimensions it reinterprets."""
    if isinstance(d, numpyro_dist.Independent):
        return d.base_dist, d.reinterpreted_batch_ndims
    return d, 0


def _scalar_support(d: Any) -> np.ndarray | None:
    if isinstance(d, (numpyro_dist.BernoulliLogits, numpyro_dist.BernoulliProbs)):
        return np.arange(2)
    if isinstance(d, (numpyro_dist.CategoricalLogits, numpyro_dist.CategoricalProbs)):
        return np.arange(jnp.shape(d.logits if hasattr(d, "logits") else d.probs)[-1])
    return None


def _enumerable(d: Any) -> bool:
    """A distribution (not Bernoulli/Categorical) that lists its own states: numpyro's
    ``has_enumerate_support`` with a static ``enumerate_support()`` of shape ``[N, *event]``
    (:class:`unigen.distributions.BinaryVectors`)."""
    return (not isinstance(d, numpyro_dist.Independent) and _scalar_support(d) is None
            and getattr(d, "has_enumerate_support", False) and d.batch_shape == ())


def _support(d: Any) -> np.ndarray | None:
    """Every state of a discrete distribution as a NumPy array ``[N, *event_shape]``, or None
    (continuous, or more than :data:`MAX_ENUMERATION` states)."""
    if _enumerable(d):
        states = d.enumerate_support(expand=False)
        if not isinstance(states, np.ndarray) or len(states) > MAX_ENUMERATION:
            return None  # states known only when traced, or too many
        return states
    base, ndims = _base(d)
    values = _scalar_support(base)
    if values is None or ndims > 1:
        return None
    if ndims == 0:
        return values if base.batch_shape == () else None
    if len(base.batch_shape) != 1:
        return None
    (size,) = base.batch_shape
    if len(values) ** size > MAX_ENUMERATION:
        return None
    return np.array(list(itertools.product(values.tolist(), repeat=size)))


def _state_dtype(d: Any) -> Any:
    if _enumerable(d):
        return d.enumerate_support(expand=False).dtype
    base, _ = _base(d)
    if isinstance(base, (numpyro_dist.BernoulliLogits, numpyro_dist.BernoulliProbs)):
        return jnp.result_type(base.logits if hasattr(base, "logits") else base.probs)
    return jnp.int32
