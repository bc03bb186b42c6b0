r"""Gradient-estimator variance: Mohamed et al. (2020) Figures 2–3, and the speed of ``variance_report``.

The questions:

1. Do unigen's estimators reproduce the variance curves of "Monte Carlo Gradient Estimation in
   Machine Learning" (Mohamed, Rosca, Figurnov & Mnih, JMLR 2020), Figures 2–3: the variance of
   the μ- and σ-gradient of :math:`\mathbb{E}_{\mathcal{N}(\mu,\sigma^2)}[f]` at μ = σ = 1 for
   :math:`f = (x-k)^2`, :math:`e^{-kx^2}`, :math:`\cos kx`, as k varies, for the score function
   without and with a baseline, with the delta-method control variate, and pathwise? Measured by
   ``variance_report`` (R replicas of N-draw estimates), drawn beside the exact values by
   Gauss–Hermite quadrature (dashed; the moving-average baseline has no exact formula).
2. Speed: scalar gradient samples per second through ``variance_report`` on the Gaussian
   problems (target ≥ 1e7), and the ratio to the same computation in vectorized NumPy
   (``benchmarks/baselines/estimator_numpy.py``; target ≥ 5×), measured in the same run,
   interleaved repeat by repeat; the median of the per-repeat ratios with min/max and IQR, and
   the ratio of the two sides' fastest calls (the least disturbed by the shared machine).

A "scalar gradient sample" is one draw's contribution to one scalar parameter's gradient:
one ``variance_report`` call on a Gaussian problem computes R × N × P of them (P = 2 for
μ, σ; 2D for ``gaussian-sum-squares``). Times are of the compiled call (compilation excluded,
``seconds_per_estimate`` × R); NumPy times include its random draws, as JAX's do. Beside them, the
time JAX takes only to draw the same standard normals (``jax.random.normal``, one key per replica)
bounds what any estimator built on ``jax.random`` can reach.

Run::

    python benchmarks/estimator_variance.py                 # ~10 minutes on 2 cores
    python benchmarks/estimator_variance.py --quick         # a small smoke run (~3 min)
    python benchmarks/estimator_variance.py --replot        # redraw the PNG from the stored JSON
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `benchmarks.` importable

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.baselines import estimator_numpy  # noqa: E402
from unigen.estimators import make_problem, variance_report  # noqa: E402

RESULTS = common.RESULTS
FUNCTIONS = {
    "gaussian-square": ("(x - k)^2", np.linspace(-3.0, 3.0, 13)),
    "gaussian-exp": ("exp(-k x^2)", np.linspace(0.1, 3.0, 12)),
    "gaussian-cos": ("cos(k x)", np.linspace(0.1, 3.0, 12)),
}
FIGURE_ESTIMATORS = ("score", "score-mean-baseline", "leave-one-out", "score-control-variate", "pathwise")
SPEED_PROBLEMS = ("gaussian-square", "gaussian-exp", "gaussian-cos", "gaussian-sum-squares")
SPEED_ESTIMATORS = ("score", "pathwise")


def summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.percentile(array, [25, 50, 75])
    return {"median": float(median), "min": float(array.min()), "max": float(array.max()),
            "q1": float(q1), "q3": float(q3), "n": int(array.size)}


def figures(samples: int, replicas: int, quick: bool) -> list[dict[str, Any]]:
    rows = []
    key = jax.random.key(0)
    for f_index, (name, (formula, ks)) in enumerate(FUNCTIONS.items()):
        ks = ks[::3] if quick else ks
        for k_index, k in enumerate(ks):
            problem = make_problem(name, mu=1.0, sigma=1.0, k=float(k))
            report = variance_report(problem, FIGURE_ESTIMATORS, samples, replicas,
                                     jax.random.fold_in(key, 100 * f_index + k_index), repeats=1)
            for row in report.rows:
                rows.append({"problem": name, "f": formula, "k": float(k), **row})
        print(f"  {name}: {len(ks)} values of k done")
    return rows


def exact_curve(name: str, estimator: str, parameter: str, samples: int, ks: np.ndarray) -> list[float | None]:
    out = []
    for k in ks:
        variance = make_problem(name, mu=1.0, sigma=1.0, k=float(k)).reference.variance(estimator, samples)
        out.append(None if variance is None else float(variance[parameter]))
    return out


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """|measured − quadrature variance| in units of the measurement's standard error, over the rows
    with a reference. Rows whose exact variance is 0 (the control variate on the quadratic f, where
    float32 roundoff of order 1e-14 is all that is measured) are counted apart."""
    z, exact_zero = [], 0
    for r in rows:
        if r["exact_variance"] is None or r["variance_standard_error"] <= 0:
            continue
        if r["exact_variance"] < 1e-20:
            exact_zero += 1
            continue
        z.append(abs(r["variance"] - r["exact_variance"]) / r["variance_standard_error"])
    q50, q90, q99 = np.percentile(z, [50, 90, 99])
    return {"rows": len(z), "median": float(q50), "p90": float(q90), "p99": float(q99), "max": float(max(z)),
            "exact_zero_rows": exact_zero,
            "exact_zero_rows_max_variance": max((r["variance"] for r in rows if r["exact_variance"] is not None
                                                 and r["exact_variance"] < 1e-20), default=None)}


def print_agreement(stats: dict[str, Any]) -> None:
    print(f"  |measured - quadrature| / (its standard error) over {stats['rows']} rows: median {stats['median']:.2f}, "
          f"90% {stats['p90']:.2f}, 99% {stats['p99']:.2f}, max {stats['max']:.2f}; {stats['exact_zero_rows']} rows "
          f"with exact variance 0 measured at most {stats['exact_zero_rows_max_variance']:.2g}")


def plot(rows: list[dict[str, Any]], samples: int, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 11), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for row_index, (name, (formula, grid)) in enumerate(FUNCTIONS.items()):
        fine = np.linspace(grid.min(), grid.max(), 60)
        for column, parameter in enumerate(("mu", "sigma")):
            axes = figure.add_subplot(3, 2, 2 * row_index + column + 1)
            for number, estimator in enumerate(FIGURE_ESTIMATORS):
                color = f"C{number}"
                points = [r for r in rows if r["problem"] == name and r["parameter"] == parameter
                          and r["estimator"] == estimator]
                ks = [r["k"] for r in points]
                variances = np.array([r["variance"] for r in points])
                errors = np.array([r["variance_standard_error"] for r in points])
                positive = variances > 1e-10  # the control variate on the quadratic f: exact, variance 0 (roundoff)
                if positive.any():
                    axes.errorbar(np.array(ks)[positive], variances[positive], yerr=2 * errors[positive], fmt="o",
                                  color=color, markersize=3, capsize=2, linewidth=0.8, label=f"{estimator} (measured)")
                exact = exact_curve(name, estimator, parameter, samples, fine)
                if all(v is not None for v in exact) and max(exact) > 0:
                    values = np.array(exact, np.float64)
                    keep = values > 1e-12
                    axes.plot(fine[keep], values[keep], "--", color=color, linewidth=1)
            axes.set_yscale("log")
            axes.set_xlabel("k")
            axes.set_ylabel(f"variance of the {'μ' if parameter == 'mu' else 'σ'}-gradient (N={samples})")
            note = " (control variate exact: variance 0)" if name == "gaussian-square" else ""
            axes.set_title(f"f = {formula}, μ = σ = 1{note}", fontsize="medium")
            axes.grid(True, alpha=0.3)
            if row_index == 1 and column == 0:  # every estimator has points here
                axes.legend(fontsize="x-small")
    figure.suptitle("Estimator variance vs k (markers ±2 SE: measured; dashed: Gauss–Hermite quadrature)",
                    fontsize="medium")
    figure.savefig(path, format="png")


FLOOR_CHUNK_DRAWS = 2**20  # about what variance_report's CPU chunks hold (688 replicas x N=1000 here)


def rng_floor(shape: tuple[int, ...]) -> Any:
    """A jitted call that only draws the standard normals of one ``variance_report`` call (one key
    per replica, as the estimators draw them, in chunks of about ``FLOOR_CHUNK_DRAWS`` draws as
    ``variance_report`` runs them on the CPU) and sums them: the JAX time no estimator can beat."""
    replicas, rest = shape[0], shape[1:]
    chunk = max(1, min(replicas, FLOOR_CHUNK_DRAWS // int(np.prod(rest))))

    @jax.jit
    def draw(key: jax.Array) -> jax.Array:
        sums = jax.lax.map(lambda k: jax.random.normal(k, rest).sum(), jax.random.split(key, replicas),
                           batch_size=chunk)
        return sums.sum()

    return draw


def speed(repeats: int, samples: int, replicas: int, dim: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    key = jax.random.key(1)
    for problem_name in SPEED_PROBLEMS:
        is_sum = problem_name == "gaussian-sum-squares"
        problem = make_problem(problem_name, dim=dim) if is_sum else make_problem(problem_name, k=1.0)
        mu, sigma = (0.0, 1.0) if is_sum else (1.0, 1.0)
        # sum-squares: R x N x D numbers per call; keep the memory of one call about the same.
        r = max(2, replicas // dim) if is_sum else replicas
        params = 2 * (dim if is_sum else 1)
        floor = rng_floor((r, samples, dim) if is_sum else (r, samples))
        jax.block_until_ready(floor(key))
        for estimator in SPEED_ESTIMATORS:
            jax_seconds, numpy_seconds, ratios, floor_seconds = [], [], [], []
            estimator_numpy.estimate(problem_name, estimator, mu=mu, sigma=sigma, k=1.0, dim=dim,
                                     n_samples=samples, replicas=r, rng=rng)  # warm-up
            for repeat in range(repeats):
                order = ("jax", "numpy") if repeat % 2 == 0 else ("numpy", "jax")
                timing = {}
                for side in order:
                    if side == "jax":
                        report = variance_report(problem, [estimator], samples, r,
                                                 jax.random.fold_in(key, repeat), repeats=1)
                        timing["jax"] = report.rows[0]["seconds_per_estimate"] * r
                    else:
                        began = time.perf_counter()
                        estimator_numpy.estimate(problem_name, estimator, mu=mu, sigma=sigma, k=1.0, dim=dim,
                                                 n_samples=samples, replicas=r, rng=rng)
                        timing["numpy"] = time.perf_counter() - began
                began = time.perf_counter()
                jax.block_until_ready(floor(jax.random.fold_in(key, 1000 + repeat)))
                floor_seconds.append(time.perf_counter() - began)
                jax_seconds.append(timing["jax"])
                numpy_seconds.append(timing["numpy"])
                ratios.append(timing["numpy"] / timing["jax"])
            count = r * samples * params
            out[f"{problem_name}/{estimator}"] = {
                "replicas": r, "samples": samples, "scalar_parameters": params,
                "scalar_gradient_samples_per_call": count,
                "jax_seconds": summary(jax_seconds), "numpy_seconds": summary(numpy_seconds),
                "jax_samples_per_second": summary([count / s for s in jax_seconds]),
                "numpy_samples_per_second": summary([count / s for s in numpy_seconds]),
                "ratio_numpy_over_jax": summary(ratios),
                # The fastest call of each side: the comparison with the least interference from the
                # shared machine (NumPy's big temporaries are the more exposed to it).
                "ratio_best_numpy_over_best_jax": min(numpy_seconds) / min(jax_seconds),
                "jax_normal_draws_only_seconds": summary(floor_seconds),
                "jax_normal_draws_only_samples_per_second": summary([count / s for s in floor_seconds]),
                "ratio_numpy_over_jax_draws_only": summary([n / f for n, f in zip(numpy_seconds, floor_seconds)]),
            }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__)
    parser.add_argument("--samples", type=int, default=10, help="N for the figures (default 10)")
    parser.add_argument("--replicas", type=int, default=20000, help="R for the figures (default 20000)")
    parser.add_argument("--speed-samples", type=int, default=1000, help="N for the speed runs (default 1000)")
    parser.add_argument("--speed-replicas", type=int, default=10000, help="R for the speed runs (default 10000)")
    parser.add_argument("--dim", type=int, default=10, help="D of gaussian-sum-squares in the speed runs")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timed repeats (default 7)")
    parser.add_argument("--quick", action="store_true", help="a quarter of the k grid, fewer replicas and repeats")
    parser.add_argument("--json", type=Path, default=RESULTS / "estimator_variance.json")
    parser.add_argument("--png", type=Path, default=RESULTS / "estimator_variance.png")
    parser.add_argument("--replot", action="store_true", help="redraw --png from the rows in --json; measure nothing")
    args = parser.parse_args(argv)
    if args.replot:
        stored = json.loads(args.json.read_text())
        plot(stored["figures"], stored["config"]["figures"]["samples"], args.png)
        stored.pop("largest_variance_error_in_standard_errors", None)
        stored["variance_agreement_in_standard_errors"] = agreement(stored["figures"])
        print_agreement(stored["variance_agreement_in_standard_errors"])
        args.json.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"wrote {args.png} (and the agreement summary in {args.json}) from the stored rows")
        return stored
    if args.quick:
        args.replicas, args.speed_replicas, args.repeats = 2000, 2000, 3
    load_before = os.getloadavg()
    began = time.perf_counter()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, numpy {np.__version__}, {os.cpu_count()} cores, "
          f"load average {load_before[0]:.2f}")

    print(f"figures: N={args.samples}, R={args.replicas}")
    rows = figures(args.samples, args.replicas, args.quick)
    args.png.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, args.samples, args.png)
    stats = agreement(rows)
    print_agreement(stats)
    print(f"  {'problem':<16} {'k':>5} {'param':<6} " + " ".join(f"{e:>22}" for e in FIGURE_ESTIMATORS))
    for name in FUNCTIONS:
        for k in sorted({r["k"] for r in rows if r["problem"] == name}):
            for parameter in ("mu", "sigma"):
                cells = []
                for estimator in FIGURE_ESTIMATORS:
                    r = next(r for r in rows if r["problem"] == name and r["k"] == k and r["parameter"] == parameter
                             and r["estimator"] == estimator)
                    exact = "-" if r["exact_variance"] is None else f"{r['exact_variance']:.3g}"
                    cells.append(f"{r['variance']:.3g} ({exact})")
                print(f"  {name:<16} {k:5.2f} {parameter:<6} " + " ".join(f"{c:>22}" for c in cells))

    print(f"\nspeed: N={args.speed_samples}, R={args.speed_replicas} (sum-squares: R/D, D={args.dim}), "
          f"{args.repeats} interleaved repeats")
    timings = speed(args.repeats, args.speed_samples, args.speed_replicas, args.dim)
    print(f"  {'problem/estimator':<32} {'JAX samples/s':>14} {'NumPy samples/s':>16} {'NumPy/JAX':>10} "
          f"{'min-max':>12} {'IQR':>12} {'best/best':>10} {'NumPy/(JAX draws only)':>23}")
    for name, t in timings.items():
        ratio = t["ratio_numpy_over_jax"]
        print(f"  {name:<32} {t['jax_samples_per_second']['median']:14.3g} "
              f"{t['numpy_samples_per_second']['median']:16.3g} {ratio['median']:10.2f} "
              f"{ratio['min']:5.2f}-{ratio['max']:<6.2f} {ratio['q1']:5.2f}-{ratio['q3']:<6.2f} "
              f"{t['ratio_best_numpy_over_best_jax']:10.2f} "
              f"{t['ratio_numpy_over_jax_draws_only']['median']:23.2f}")
    print("  (best/best: NumPy's fastest call over JAX's fastest, the least disturbed comparison)")
    print("  (NumPy/(JAX draws only): NumPy's whole computation over the time JAX takes only to draw the same\n"
          "   normals with jax.random (threefry): the most any JAX estimator using jax.random could reach)")
    slowest = min(t["jax_samples_per_second"]["median"] for t in timings.values())
    lowest_ratio = min(t["ratio_numpy_over_jax"]["median"] for t in timings.values())
    lowest_best = min(t["ratio_best_numpy_over_best_jax"] for t in timings.values())
    targets = {
        ">= 1e7 scalar gradient samples/s": {"measured": slowest, "target": 1e7, "met": slowest >= 1e7},
        ">= 5x NumPy": {"measured": lowest_ratio, "target": 5.0, "met": lowest_ratio >= 5.0},
        ">= 5x NumPy (best/best)": {"measured": lowest_best, "target": 5.0, "met": lowest_best >= 5.0},
    }
    print("\ntargets (worst case over the Gaussian problems and estimators):")
    for name, t in targets.items():
        print(f"  {name:<34} measured {t['measured']:.3g}  {'MET' if t['met'] else 'NOT MET'}")
    load_after = common.print_load(load_before, began)
    result = {
        "benchmark": "estimator_variance",
        "config": {"figures": {"samples": args.samples, "replicas": args.replicas, "mu": 1.0, "sigma": 1.0,
                               "estimators": list(FIGURE_ESTIMATORS),
                               "k": {name: [float(k) for k in (grid[::3] if args.quick else grid)]
                                     for name, (_, grid) in FUNCTIONS.items()}},
                   "speed": {"samples": args.speed_samples, "replicas": args.speed_replicas, "dim": args.dim,
                             "repeats": args.repeats, "estimators": list(SPEED_ESTIMATORS)}},
        "machine": {"jax": jax.__version__, "numpy": np.__version__, "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "baseline": "benchmarks/baselines/estimator_numpy.py (estimate)",
        "figures": rows,
        "variance_agreement_in_standard_errors": stats,
        "speed": timings,
        "targets": targets,
    }
    return common.write_report(args.json, result, args.png)


if __name__ == "__main__":
    main()
