r"""Declaration → algorithm: compile every phase of a declaration into the trainer's phases.

A :class:`~unigen.algebra.declaration.Declaration` says what each phase optimizes and which
parameter groups it updates; :func:`algorithm` turns it, with the bindings that say what each
distribution is, into the :class:`~unigen.core.Algorithm` that
:func:`unigen.training.make_trainer` and :func:`unigen.training.fit` run. A β-VAE, say::

    beta = coefficient("beta", optax.linear_schedule(0.0, 1.0, 1000))   # KL annealing
    elbo = E(p_data, E(encoder, log(decoder)) - beta * KL(encoder, prior))
    declared = Declaration("beta-vae", "β-VAE", "§2.4",
                           (PhaseObjective("elbo", ("theta", "eta"), elbo, "max"),))
    algo = algorithm(declared, bindings, init)

Every built-in algorithm of :mod:`unigen.algorithms` is built this way, so printing
(``print(algo.objective)``), the Figure-5 table, :func:`~unigen.algebra.direction` and the
trained losses all read the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import jax

from unigen.algebra.compiler import Binding, compile
from unigen.algebra.declaration import Declaration, check
from unigen.algebra.expr import Coefficient, Dist, Term, nodes
from unigen.algebra.expr import coefficients as coefficients_of
from unigen.core import Algorithm, Batch, Params, Phase, PRNGKey
from unigen.errors import ConfigError, describe

__all__ = ["algorithm"]


def algorithm(
    declaration: Declaration,
    bindings: Mapping[Dist, Binding | Callable[..., Any]],
    init: Callable[[PRNGKey], Mapping[str, Params]] | Mapping[str, Callable[[PRNGKey], Params]],
    *,
    estimator: str | Mapping[Dist, Any] | Mapping[str, Any] = "auto",
    n_samples: int = 1,
    kl: str = "auto",
    metrics: Mapping[str, Any] | None = None,
    coefficients: Mapping[Coefficient | str, Any] | None = None,
    prepare: Callable[[Batch], Batch] | None = None,
) -> Algorithm:
    r"""The :class:`~unigen.core.Algorithm` of ``declaration``: one phase per declared phase,
    its loss the phase's objective compiled by :func:`~unigen.algebra.compile` (negated for
    ``"max"``), updating the phase's groups.

    Args:
      declaration: the algorithm's phases and Figure-5 fields (checked with
        :func:`~unigen.algebra.declaration.check`).
      bindings: what each distribution of the objectives is (see :func:`~unigen.algebra.compile`).
      init: ``init(key) -> {group: params}``, or a dict ``{group: init(key)}`` (each group gets
        ``jax.random.split(key, n)[i]`` in the dict's order).
      estimator: as for :func:`~unigen.algebra.compile` (a string, or a dict from Dists to
        strings or estimator objects), for every phase; or ``{phase name: that}`` for some
        phases (the others get ``"auto"``).
      n_samples, kl: as for :func:`~unigen.algebra.compile`, for every phase.
      metrics: named terms to report beside each phase's ``"loss"``: ``{name: term}`` for
        every phase, or ``{phase name: {name: term}}``. Each phase also reports its objective's
        value as ``"objective"`` unless a metric already names it.
      coefficients: values of named coefficients (numbers, arrays or schedules of the step); each
        phase gets those its objective or metrics mention.
      prepare: ``prepare(batch) -> batch`` applied before each phase's loss (checks, reshaping).

    Returns:
      The algorithm; ``objective`` is ``declaration``. A phase whose objective has a
      coefficient with a schedule gets ``uses_step=True`` (the trainer passes the step).

    Raises:
      ConfigError: a malformed declaration, ``init`` or ``metrics``; a distribution without a
        binding (named, with the term it appears in); a coefficient without a value.
    """
    check(declaration)
    init_fn = _init(init, declaration)
    per_phase = _metrics(metrics, declaration)
    if prepare is not None and not callable(prepare):
        raise ConfigError(f"prepare: got {describe(prepare)}, expected a function batch -> batch")
    per_phase_estimator = _per_phase(estimator, declaration)
    phases, used, given = [], set(), set()
    for phase in declaration.phases:
        named = dict(per_phase.get(phase.name, {}))
        if phase.objective not in named.values() and "objective" not in named:
            named["objective"] = phase.objective
        chosen = estimator
        if per_phase_estimator is not None:
            chosen = per_phase_estimator.get(phase.name, "auto")
        elif isinstance(estimator, Mapping):  # each phase gets the entries for its distributions
            present = {n for term in (phase.objective, *named.values()) for n in nodes(term)}
            present |= {replace(n, reversed=False) for n in present if isinstance(n, Dist)}
            chosen = {d: m for d, m in estimator.items() if d in present}
            used |= set(chosen)
        mentioned = {c.name for term in (phase.objective, *named.values()) for c in coefficients_of(term)}
        values = {c: v for c, v in (coefficients or {}).items()
                  if (c.name if isinstance(c, Coefficient) else c) in mentioned}
        given |= set(values)
        compiled = compile(phase.objective, bindings, estimator=chosen, n_samples=n_samples,
                           kl=kl, maximize=phase.sense == "max", metrics=named,
                           coefficients=values)
        phases.append(Phase(phase.name, phase.params, _with_prepare(compiled, prepare),
                            uses_step=compiled.uses_step))
    if isinstance(estimator, Mapping) and per_phase_estimator is None:
        unused = [str(d) for d in estimator if d not in used]
        if unused:
            raise ConfigError(
                f"estimator of {declaration.name}: got {unused}, expected distributions that "
                "some phase's objective or metric mentions"
            )
    unknown = [str(c) for c in (coefficients or {}) if c not in given]
    if unknown:
        raise ConfigError(
            f"coefficients of {declaration.name}: got {unknown}, expected coefficients that some "
            "phase's objective or metric mentions"
        )
    return Algorithm(init=init_fn, phases=tuple(phases), objective=declaration)


def _per_phase(estimator: Any, declaration: Declaration) -> dict[str, Any] | None:
    """``estimator`` by phase name when it is ``{phase name: ...}``, else None."""
    if not isinstance(estimator, Mapping) or not estimator:
        return None
    if not all(isinstance(k, str) for k in estimator):
        return None
    names = [p.name for p in declaration.phases]
    unknown = sorted(set(estimator) - set(names))
    if unknown:
        raise ConfigError(
            f"estimator of {declaration.name}: got phases {unknown}, expected some of {names}"
        )
    return dict(estimator)


def _with_prepare(compiled: Callable[..., Any], prepare: Callable[[Batch], Batch] | None):
    if prepare is None:
        return compiled

    def loss(params: Params, key: PRNGKey, batch: Batch, step: Any = None, **options: Any):
        return compiled(params, key, prepare(batch), step, **options)

    loss.objective = compiled.objective  # type: ignore[attr-defined]
    return loss


def _init(init: Any, declaration: Declaration) -> Callable[[PRNGKey], dict[str, Params]]:
    if callable(init):
        return init
    if not isinstance(init, Mapping) or not all(callable(f) for f in init.values()):
        raise ConfigError(
            f"init of {declaration.name}: got {describe(init)}, expected init(key) -> "
            "{group: params} or a dict {group: init(key)}"
        )
    trained = {g for phase in declaration.phases for g in phase.groups}
    missing = sorted(trained - set(init))
    if missing:
        raise ConfigError(
            f"init of {declaration.name}: got groups {sorted(init)}, expected every group a "
            f"phase updates ({sorted(trained)}; missing {missing})"
        )
    inits = dict(init)

    def init_all(key: PRNGKey) -> dict[str, Params]:
        keys = jax.random.split(key, len(inits))
        return {group: fn(k) for (group, fn), k in zip(inits.items(), keys)}

    return init_all


def _metrics(metrics: Any, declaration: Declaration) -> dict[str, dict[str, Term]]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ConfigError(
            f"metrics of {declaration.name}: got {describe(metrics)}, expected {{name: term}} "
            "or {phase: {name: term}}"
        )
    names = [p.name for p in declaration.phases]
    if metrics and all(isinstance(v, Mapping) for v in metrics.values()):
        unknown = sorted(set(metrics) - set(names))
        if unknown:
            raise ConfigError(
                f"metrics of {declaration.name}: got phases {unknown}, expected some of {names}"
            )
        return {phase: dict(terms) for phase, terms in metrics.items()}
    return {phase: dict(metrics) for phase in names}
