r"""``variance_report``: mean, variance, bias, cost and efficiency of gradient estimators.

For each estimator, ``replicas`` independent N-draw estimates are computed at once
(``jax.vmap`` over ``jax.random.split(key, replicas)``, one jitted call; on the CPU in chunks
whose temporaries fit in cache, :func:`replicas_per_chunk`) and summarized per
parameter coordinate: the mean, the unbiased sample variance, the bias against the exact gradient
where one is known, and the wall time per estimate (median over ``repeats`` timed calls after one
untimed compile call, divided by ``replicas``); efficiency = 1 / (variance × seconds).

Rows are one per estimator and parameter (``mu`` and ``sigma`` for the Gaussian problems; one per
leaf of the encoder for ``vae``). A parameter with several coordinates reports the *average over
its coordinates* of each per-coordinate number (the coordinates of ``gaussian-sum-squares`` and
``bernoulli`` are exchangeable), and ``size`` says how many there were; a problem with
``rows_per_coordinate`` (``categorical`` and ``categorical-vae``, whose softmax gradients sum to zero) has one row per
coordinate, ``logits[0]``, ``logits[1]``, ...

Besides the issue's schema each row carries ``size``, ``standard_error`` (of the mean,
:math:`\sqrt{\mathrm{variance}/R}`), ``exact_variance`` (None where unknown) and
``variance_standard_error``: the Monte Carlo standard error of the sample variance,
:math:`\sqrt{(m_4 - \frac{R-3}{R-1} s^4)/R}` from the sample fourth central moment :math:`m_4`.

Two estimators keep memory between calls, and are measured as they would run in training:
``score-mean-baseline`` (moving average) runs ``warmup`` calls in a ``lax.scan`` at fixed
parameters and reports the last (its time is the scan's per call); ``score-learned-baseline``
first fits its baseline :math:`b_\psi` (200 Adam steps, untimed) and then measures with ψ fixed.
``rebar`` and ``relax`` likewise first tune their control variates (η, log λ, and RELAX's network)
by :data:`CONTROL_VARIATE_STEPS` Adam steps on the variance gradient they return (untimed), then
measure with them fixed; the timed call returns the estimate only.

The discrete-latent estimators (``muprop``, ``rebar``, ``relax``, ``arm``, ``disarm``,
``straight-through``) apply to the problems whose distribution is of a family in
:data:`FAMILIES` (Bernoulli and categorical; Bernoulli only for ARM and DisARM). ``vimco``
estimates the gradient of a different objective, the K-sample bound with K = ``n_samples``, so its
rows' ``exact_gradient`` and ``bias`` are against
:meth:`~unigen.estimators.exact.Reference.bound_gradient` (None where the :math:`M^K` tuples are
too many to enumerate). ARM and DisARM evaluate f twice per draw.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unigen.errors import ConfigError, describe
from unigen.estimators import _discrete, baselines
from unigen.estimators.arm import FAMILIES as ARM_FAMILIES, arm, disarm
from unigen.estimators.control_variates import delta_method_control_variate
from unigen.estimators.leave_one_out import leave_one_out
from unigen.estimators.muprop import FAMILIES as MUPROP_FAMILIES, muprop
from unigen.estimators.pathwise import pathwise
from unigen.estimators.problems import Problem, _leaf_name
from unigen.estimators.rebar import FAMILIES as REBAR_FAMILIES, fit_control_variate, rebar, rebar_init
from unigen.estimators.relax import relax, relax_init
from unigen.estimators.relaxed import concrete
from unigen.estimators.score_function import score_function
from unigen.estimators.straight_through import FAMILIES as STRAIGHT_THROUGH_FAMILIES, straight_through
from unigen.estimators.vimco import vimco

__all__ = [
    "ESTIMATORS", "FAMILIES", "ROW_FIELDS", "Report", "check_applicable", "default_estimators", "format_table",
    "replicas_per_chunk", "save_variance_plot", "sweep_k", "variance_report",
]

ESTIMATORS = (
    "score",
    "score-mean-baseline",
    "score-optimal-baseline",
    "score-learned-baseline",
    "score-control-variate",
    "pathwise",
    "concrete",
    "leave-one-out",
    "muprop",
    "vimco",
    "rebar",
    "relax",
    "arm",
    "disarm",
    "straight-through",
)
FAMILIES = {  # the latent families each discrete-latent estimator accepts (the others accept any)
    "muprop": MUPROP_FAMILIES,
    "rebar": REBAR_FAMILIES,
    "relax": REBAR_FAMILIES,
    "arm": ARM_FAMILIES,
    "disarm": ARM_FAMILIES,
    "straight-through": STRAIGHT_THROUGH_FAMILIES,
}
ROW_FIELDS = (
    "estimator", "parameter", "mean", "variance", "exact_gradient", "bias", "seconds_per_estimate",
    "efficiency", "size", "standard_error", "variance_standard_error", "exact_variance",
)
MOVING_AVERAGE_WARMUP = 10
MOVING_AVERAGE_DECAY = 0.8
LEARNED_BASELINE_STEPS = 200
CONCRETE_TEMPERATURE = 0.5
STRAIGHT_THROUGH_TEMPERATURE = 1.0
CONTROL_VARIATE_STEPS = 200  # Adam steps tuning REBAR's (eta, temperature) and RELAX's network, untimed
CONTROL_VARIATE_LEARNING_RATE = 0.01
CHUNK_BYTES = 16 * 2**20  # temporaries of one vectorized step on the CPU (see replicas_per_chunk)


class Report(NamedTuple):
    """A variance report: ``problem`` name, ``settings`` and ``rows`` (dicts of :data:`ROW_FIELDS`)."""

    problem: str
    settings: dict[str, Any]
    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"problem": self.problem, "settings": self.settings, "rows": self.rows}


def check_applicable(problem: Problem, estimator: str, n_samples: int) -> None:
    """:class:`ConfigError` when ``estimator`` does not apply to ``problem`` (or is unknown)."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimators: expected names from {list(ESTIMATORS)}, got {estimator!r}")
    if estimator == "pathwise" and problem.discrete:
        raise ConfigError(
            f"estimators: 'pathwise' does not apply to the {problem.name} problem: its draws are discrete "
            "(no reparameterization); expected score-function estimators or 'concrete'"
        )
    if estimator == "concrete" and not problem.discrete:
        raise ConfigError(
            f"estimators: 'concrete' does not apply to the {problem.name} problem: the Concrete relaxation "
            "is for discrete (Bernoulli/categorical) draws; expected 'pathwise' for continuous ones"
        )
    if estimator == "score-control-variate" and problem.discrete and _discrete.family_of(
            problem.distribution(problem.params)) == _discrete.CATEGORICAL:
        raise ConfigError(
            f"estimators: 'score-control-variate' does not apply to the {problem.name} problem: the delta "
            "method's closed form assumes independent coordinates, and a one-hot draw's are not"
        )
    if estimator in FAMILIES:
        family = _discrete.family_of(problem.distribution(problem.params))
        if family not in FAMILIES[estimator]:
            raise ConfigError(
                f"estimators: {estimator!r} does not apply to the {problem.name} problem: it expects "
                f"{' or '.join(FAMILIES[estimator])} latents, got a {family} distribution"
            )
    if estimator in ("score-optimal-baseline", "leave-one-out", "vimco") and n_samples < 2:
        raise ConfigError(
            f"samples: {estimator!r} builds each draw's baseline from the other draws; expected at least 2 "
            f"samples, got {n_samples}"
        )


def _estimator_fn(problem: Problem, name: str, n_samples: int, key: jax.Array) -> tuple[Callable, int]:
    """``(replica_fn(key) -> gradient pytree, calls per replica)`` for the estimator ``name``."""
    q, params, f = problem.distribution, problem.params, problem.f
    simple = {
        "score": score_function,
        "score-optimal-baseline": baselines.score_function_optimal_baseline,
        "score-control-variate": delta_method_control_variate,
        "pathwise": pathwise,
        "leave-one-out": leave_one_out,
        "muprop": muprop,
        "vimco": vimco,
        "arm": arm,
        "disarm": disarm,
    }
    if name in simple:
        estimator = simple[name]
        return (lambda k: estimator(q, params, f, k, n_samples)), 1
    if name == "concrete":
        return (lambda k: concrete(q, params, f, k, n_samples, temperature=CONCRETE_TEMPERATURE)), 1
    if name == "straight-through":
        return (lambda k: straight_through(
            q, params, f, k, n_samples, temperature=STRAIGHT_THROUGH_TEMPERATURE)), 1
    if name in ("rebar", "relax"):
        estimator = rebar if name == "rebar" else relax
        init_key, fit_key = jax.random.split(key)
        _, logits = _discrete.check_family(q(params), name, FAMILIES[name])
        control = rebar_init(logits.dtype) if name == "rebar" else relax_init(
            init_key, logits.size, dtype=logits.dtype)
        control = jax.jit(lambda k: fit_control_variate(
            estimator, q, params, f, k, n_samples, control, steps=CONTROL_VARIATE_STEPS,
            learning_rate=CONTROL_VARIATE_LEARNING_RATE))(fit_key)
        return (lambda k: estimator(q, params, f, k, n_samples, control)[0]), 1
    if name == "score-mean-baseline":
        dtype = jnp.result_type(jax.tree.leaves(params)[0])

        def moving(k: jax.Array) -> Any:
            def step(state: Any, ki: jax.Array) -> tuple[Any, Any]:
                gradient, state = baselines.score_function_moving_average(
                    q, params, f, ki, n_samples, state, decay=MOVING_AVERAGE_DECAY)
                return state, gradient

            _, gradients = jax.lax.scan(step, baselines.moving_average_init(dtype),
                                        jax.random.split(k, MOVING_AVERAGE_WARMUP + 1))
            return jax.tree.map(lambda g: g[-1], gradients)

        return moving, MOVING_AVERAGE_WARMUP + 1
    if name == "score-learned-baseline":
        u = problem.baseline_input
        psi = jax.jit(lambda k: baselines.fit_learned_baseline(
            q, params, f, k, n_samples, u, steps=LEARNED_BASELINE_STEPS))(key)
        return (lambda k: baselines.score_function_learned_baseline(q, params, f, k, n_samples, psi, u)[0]), 1
    raise ConfigError(f"estimators: expected names from {list(ESTIMATORS)}, got {name!r}")


def replicas_per_chunk(replica_fn: Callable, key: jax.Array, replicas: int) -> int:
    """How many replicas one vectorized step computes: all of them off the CPU; on the CPU as many
    as keep the step's temporaries within :data:`CHUNK_BYTES` (from XLA's memory analysis of one
    replica), so that the intermediate arrays stay in cache instead of streaming through memory."""
    if jax.default_backend() != "cpu":
        return replicas
    analysis = jax.jit(replica_fn).lower(key).compile().memory_analysis()
    per_replica = getattr(analysis, "temp_size_in_bytes", 0) or 0
    if per_replica <= 0:
        return replicas
    return int(max(1, min(replicas, CHUNK_BYTES // per_replica)))


def _summaries(replica_fn: Callable, replicas: int, chunk: int) -> Callable[[jax.Array], Any]:
    def run(key: jax.Array) -> Any:
        keys = jax.random.split(key, replicas)
        if chunk >= replicas:
            gradients = jax.vmap(replica_fn)(keys)
        else:  # scan over chunks of `chunk` vmapped replicas (the remainder vmapped at the end)
            gradients = jax.lax.map(replica_fn, keys, batch_size=chunk)

        def summary(g: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            mean = jnp.mean(g, axis=0)
            centred = g - mean[None]
            second = jnp.mean(centred * centred, axis=0)
            fourth = jnp.mean(centred**4, axis=0)
            return mean, second, fourth

        return jax.tree.map(summary, gradients)

    return jax.jit(run)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {describe(value)}")
    return int(value)


def variance_report(
    problem: Problem,
    estimators: Sequence[str],
    n_samples: int,
    replicas: int,
    key: jax.Array,
    *,
    repeats: int = 3,
) -> Report:
    r"""Measures each estimator on ``problem`` over ``replicas`` independent estimates.

    Args:
      problem: a :class:`~unigen.estimators.problems.Problem` (see
        :func:`~unigen.estimators.problems.make_problem`).
      estimators: names from :data:`ESTIMATORS`.
      n_samples: N, draws per estimate.
      replicas: R ≥ 2, independent estimates (vmapped, one compiled call).
      key: PRNG key; estimator i uses ``jax.random.fold_in(key, i)``.
      repeats: timed calls per estimator (after one untimed compile call); the median is reported.

    Returns:
      A :class:`Report`; ``report.to_json()`` is the CLI's JSON object.

    Raises:
      ConfigError: an unknown or inapplicable estimator, or a bad size.
    """
    n_samples = _positive_int("n_samples", n_samples)
    replicas = _positive_int("replicas", replicas)
    repeats = _positive_int("repeats", repeats)
    if replicas < 2:
        raise ConfigError(f"replicas: expected at least 2 (a variance needs two estimates), got {replicas}")
    names = list(estimators)
    if not names:
        raise ConfigError(f"estimators: expected at least one of {list(ESTIMATORS)}, got none")
    for name in names:
        check_applicable(problem, name, n_samples)
    reference = problem.reference
    rows: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        estimator_key = jax.random.fold_in(key, index)
        fit_key, run_key = jax.random.split(estimator_key)
        replica_fn, calls = _estimator_fn(problem, name, n_samples, fit_key)
        run = _summaries(replica_fn, replicas, replicas_per_chunk(replica_fn, run_key, replicas))
        result = jax.block_until_ready(run(run_key))  # compile + first run (untimed)
        times = []
        for repeat in range(repeats):
            began = time.perf_counter()
            jax.block_until_ready(run(jax.random.fold_in(run_key, repeat + 1)))
            times.append(time.perf_counter() - began)
        seconds = statistics.median(times) / (replicas * calls)
        exact_gradient = None if reference is None else (
            reference.bound_gradient(n_samples) if name == "vimco" else reference.gradient)
        exact_variance = None if reference is None else reference.variance(name, n_samples)
        for parameter, mean, second, fourth, exact, exact_var in _parameters(
                result, exact_gradient, exact_variance, problem.rows_per_coordinate):
            variance = second * replicas / (replicas - 1)
            var_se = np.sqrt(np.maximum(fourth - (replicas - 3) / (replicas - 1) * variance**2, 0.0) / replicas)
            average_variance = float(np.mean(variance))
            rows.append({
                "estimator": name,
                "parameter": parameter,
                "mean": float(np.mean(mean)),
                "variance": average_variance,
                "exact_gradient": None if exact is None else float(np.mean(exact)),
                "bias": None if exact is None else float(np.mean(mean - exact)),
                "seconds_per_estimate": seconds,
                "efficiency": (1.0 / (average_variance * seconds)) if average_variance > 0 else None,
                "size": int(mean.size),
                "standard_error": float(np.sqrt(np.mean(variance) / replicas)),
                "variance_standard_error": float(np.sqrt(np.mean(var_se**2)) / np.sqrt(mean.size)),
                "exact_variance": None if exact_var is None else float(np.mean(exact_var)),
            })
    settings = dict(problem.settings)
    settings.update({"samples": n_samples, "replicas": replicas, "repeats": repeats, "estimators": names})
    return Report(problem.name, settings, rows)


def _parameters(result: Any, exact_gradient: Any, exact_variance: Any, per_coordinate: bool) -> list[tuple]:
    """``(name, mean, second, fourth, exact, exact_variance)`` per parameter, or per coordinate
    (``name[i]``) when ``per_coordinate``; arrays in float64, exact ones None when unknown."""
    out = []
    for path, summaries in _leaves(result):
        name = _leaf_name(path)
        arrays = [np.asarray(a, np.float64) for a in summaries]
        exact = None if exact_gradient is None else np.asarray(exact_gradient[name], np.float64)
        exact_var = None if exact_variance is None else np.asarray(exact_variance[name], np.float64)
        if not per_coordinate or arrays[0].ndim == 0:
            out.append((name, *arrays, exact, exact_var))
            continue
        for index in np.ndindex(arrays[0].shape):
            label = f"{name}[{','.join(str(i) for i in index)}]"
            out.append((label, *(a[index] for a in arrays), None if exact is None else exact[index],
                        None if exact_var is None else exact_var[index]))
    return out


def _leaves(result: Any) -> list[tuple[tuple, tuple]]:
    is_summary = lambda node: isinstance(node, tuple) and len(node) == 3 and all(  # noqa: E731
        isinstance(a, jax.Array) for a in node)
    return jax.tree_util.tree_leaves_with_path(result, is_leaf=is_summary)


def format_table(report: Report) -> str:
    """The report as an aligned text table (one line per row)."""
    header = ("estimator", "param", "mean", "exact", "bias", "variance", "exact var", "s/estimate", "efficiency")

    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4g}"

    sweep = any("k" in r for r in report.rows)
    if sweep:
        header = ("k",) + header
    lines = [([number(r.get("k"))] if sweep else []) + [r["estimator"], r["parameter"], number(r["mean"]), number(r["exact_gradient"]), number(r["bias"]),
              number(r["variance"]), number(r["exact_variance"]), number(r["seconds_per_estimate"]),
              number(r["efficiency"])] for r in report.rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    settings = ", ".join(f"{k}={v}" for k, v in report.settings.items() if k != "estimators")
    out = [f"{report.problem}: {settings}", "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def default_estimators(problem: Problem, n_samples: int) -> list[str]:
    """Every estimator of :data:`ESTIMATORS` that applies to ``problem``."""
    out = []
    for name in ESTIMATORS:
        try:
            check_applicable(problem, name, n_samples)
        except ConfigError:
            continue
        out.append(name)
    return out


def sweep_k(
    name: str,
    ks: Sequence[float],
    estimators: Sequence[str] | None,
    n_samples: int,
    replicas: int,
    key: jax.Array,
    *,
    repeats: int = 3,
    **problem_options: Any,
) -> Report:
    """:func:`variance_report` of the problem ``name`` at each k of ``ks`` (the paper's sweep).

    With one k this is one report; with several, the rows of every k are concatenated, each with
    its ``"k"``, and ``settings["k"]`` is the list. ``problem_options`` go to
    :func:`~unigen.estimators.problems.make_problem`.
    """
    from unigen.estimators.problems import make_problem

    ks = list(ks)
    if not ks:
        raise ConfigError("k: expected at least one value, got none")
    reports = []
    for index, k in enumerate(ks):
        problem = make_problem(name, k=k, **problem_options)
        chosen = default_estimators(problem, n_samples) if estimators is None else list(estimators)
        reports.append(variance_report(problem, chosen, n_samples, replicas, jax.random.fold_in(key, index),
                                       repeats=repeats))
    if len(reports) == 1:
        return reports[0]
    rows = [dict(row, k=report.settings["k"]) for report in reports for row in report.rows]
    settings = dict(reports[0].settings, k=[report.settings["k"] for report in reports])
    return Report(reports[0].problem, settings, rows)


def save_variance_plot(report: Report, path: Any) -> Any:
    """Variance of each estimator against k (log scale), one panel per parameter, as in Mohamed
    et al. (2020) Figures 2–3; measured values as markers, exact ones as dashed lines. A report
    without a k sweep plots variance per estimator as points at its single k (or at 0)."""
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    parameters = list(dict.fromkeys(row["parameter"] for row in report.rows))
    figure = Figure(figsize=(4.2 * len(parameters), 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    single_k = report.settings.get("k", 0.0)
    for index, parameter in enumerate(parameters):
        axes = figure.add_subplot(1, len(parameters), index + 1)
        for number, estimator in enumerate(dict.fromkeys(row["estimator"] for row in report.rows)):
            rows = [r for r in report.rows if r["parameter"] == parameter and r["estimator"] == estimator]
            ks = [r.get("k", single_k if not isinstance(single_k, list) else 0.0) for r in rows]
            color = f"C{number}"
            measured = [(k, r["variance"]) for k, r in zip(ks, rows) if r["variance"] and r["variance"] > 0]
            if measured:
                axes.plot(*zip(*measured), "o", color=color, markersize=4, label=f"{estimator} (measured)")
            exact = [(k, r["exact_variance"]) for k, r in zip(ks, rows) if r["exact_variance"]]
            if exact:
                axes.plot(*zip(*exact), "--", color=color, linewidth=1)  # exact
        axes.set_yscale("log")
        axes.set_xlabel("k")
        axes.set_ylabel(f"variance of the {parameter}-gradient")
        axes.set_title(f"{report.problem}: {parameter}", fontsize="medium")
        axes.grid(True, alpha=0.3)
        if index == 0:
            axes.legend(fontsize="x-small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
