"""``unigen bench modes``: mode coverage of GANs, InfoGAN and a VAE on ring8 / grid25.

Each (algorithm, seed) is trained with the same networks and the same step budget, then 2,500
samples are drawn and scored with :func:`unigen.metrics.mode_coverage` (the VEEGAN/PacGAN Table 1
definition: modes captured, high-quality fraction, reverse KL). Results are aggregated over seeds
as mean and standard error (sample standard deviation / sqrt(n), ddof=1; 0 for a single seed).

Shared settings (:data:`SETTINGS`, override by argument): generator / discriminator / InfoGAN
Q-network / VAE encoder and decoder MLPs with hidden widths (128, 128, 128), ReLU; noise / latent
dimension 2; 100 data rows per step; Adam(lr=1e-3, b1=0.5) on every parameter group, its step
size decayed by a cosine to 1% of it over the run; :data:`STEPS` = 40,000 steps. Algorithms:

* ``gan``: the classic GAN with the non-saturating generator loss;
* ``gan-minimax``: the same with the minimax generator loss;
* ``gan-r1``: ``gan`` with the R1 gradient penalty γ = 1 on the discriminator
  (:func:`unigen.algorithms.gan.gradient_penalty`);
* ``pacgan``: ``gan`` with a packed discriminator, m = 4 (PacGAN4): the 100 rows of a step are 25
  packed data examples, against 25 packs of 4 generated points;
* ``infogan``: InfoGAN with a categorical code of M values (M = number of modes), weight 1;
* ``vae``: a Gaussian-likelihood VAE (analytic KL); its samples are **draws**
  x ~ p_theta(x|z), z ~ p(z) (not decoder means).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from unigen.errors import ConfigError

MODE_ALGORITHMS = ("gan", "gan-minimax", "gan-r1", "pacgan", "infogan", "vae")
MODE_DATA = ("ring8", "grid25")
METRICS = ("modes_captured", "high_quality_fraction", "reverse_kl")
N_SAMPLES = 2500
STEPS = 40_000
SETTINGS: dict[str, Any] = {
    "hidden": (128, 128, 128), "latent_dim": 2, "batch_size": 100, "lr": 1e-3, "b1": 0.5, "lr_final": 0.01,
    "gradient_penalty": 1.0, "pack": 4,
}
"""The shared settings; ``gradient_penalty`` is used by ``gan-r1`` only, ``pack`` by ``pacgan`` only."""


def check_algorithms(algorithms: Sequence[str]) -> list[str]:
    """The algorithm names, checked; a bad or empty list raises ConfigError naming the valid ones."""
    names = [a.strip() for a in algorithms if a.strip()]
    bad = [a for a in names if a not in MODE_ALGORITHMS]
    if bad or not names:
        raise ConfigError(f"--algorithms: expected comma-separated names from {','.join(MODE_ALGORITHMS)}, "
                          f"got {','.join(bad) if bad else 'none'}")
    return names


def aggregate(values: Sequence[float]) -> dict[str, float]:
    """Mean and standard error (ddof=1 standard deviation / sqrt(n); 0 for n = 1)."""
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "se": se}


ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "gan": ("gan", {}),
    "gan-minimax": ("gan", {"generator_loss": "minimax"}),
    "gan-r1": ("gan", {}),  # + gradient_penalty
    "pacgan": ("gan", {}),  # + pack
    "infogan": ("infogan", {"information_weight": 1.0}),
    "vae": ("vae", {"likelihood": "gaussian", "kl": "analytic"}),
}
"""Each row's recipe of :mod:`unigen.recipes` and the options that make it that row."""


def _config(algorithm: str, modes: int, hidden: Sequence[int], latent_dim: int, gradient_penalty: float,
            pack: int) -> dict[str, Any]:
    """The recipe config of one row on 2-D data with ``modes`` modes."""
    from unigen import recipes

    name, options = ROWS[algorithm]
    options = {**options, "hidden": tuple(hidden), "latent_dim": latent_dim, "activation": "relu"}
    if name == "gan":
        options.update(gradient_penalty=gradient_penalty if algorithm == "gan-r1" else 0.0,
                       pack=pack if algorithm == "pacgan" else 1)
    if name == "infogan":
        options["code_values"] = modes
    return {"algorithm": name, **recipes.recipe(name).read(options), "data_dim": 2, "image_shape": None}


def build(algorithm: str, modes: int, *, hidden: Sequence[int] = SETTINGS["hidden"], latent_dim: int = 2,
          gradient_penalty: float = SETTINGS["gradient_penalty"], pack: int = SETTINGS["pack"]):
    """``(model, algorithm)`` of one row for 2-D data with ``modes`` modes, from its recipe
    (:data:`ROWS`); every network has hidden widths ``hidden``. ``gradient_penalty`` is used by
    the ``gan-r1`` row only and ``pack`` by the ``pacgan`` row only."""
    from unigen import recipes

    check_algorithms([algorithm])
    config = _config(algorithm, modes, hidden, latent_dim, gradient_penalty, pack)
    return recipes.recipe(config["algorithm"]).build(config)


def draw(model, params, algorithm: str, n: int, seed: int) -> np.ndarray:
    """``n`` samples ``[n, 2]`` by the row's recipe: generator outputs, or for the VAE draws
    x ~ p(x|z), z ~ p(z)."""
    from unigen import recipes

    found = recipes.recipe(ROWS[algorithm][0])
    return np.asarray(found.draw(model, params, {"image_shape": None}, n, seed))


def train_one(data: str, algorithm: str, seed: int, steps: int = STEPS, *, steps_per_call: int = 50,
              n_samples: int = N_SAMPLES, **settings: Any) -> dict[str, Any]:
    """Trains one (algorithm, seed); returns its coverage summary and the drawn samples.

    ``settings`` override :data:`SETTINGS`: networks as :func:`build`; Adam(``lr``, ``b1``) on
    every parameter group, its step size decayed over ``steps`` by a cosine to ``lr_final``·``lr``
    (``lr_final=None``: constant); ``batch_size`` data rows per step.
    """
    import optax

    from unigen import data as datasets
    from unigen.metrics import mode_coverage
    from unigen.training import fit

    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"settings: unknown {unknown}; expected some of {sorted(SETTINGS)}")
    options = {**SETTINGS, **settings}
    dataset = datasets.load(data, "train", seed=seed)
    model, trainer = build(algorithm, int(dataset.centres.shape[0]), hidden=options["hidden"],
                           latent_dim=options["latent_dim"], gradient_penalty=options["gradient_penalty"],
                           pack=options["pack"])
    if algorithm == "pacgan" and options["batch_size"] % options["pack"]:
        raise ConfigError(f"batch_size {options['batch_size']} is not a multiple of pack {options['pack']}")
    batches = datasets.Batches(dataset, options["batch_size"], seed=seed)
    per_call = max(1, math.gcd(steps, steps_per_call))
    lr, final = options["lr"], options["lr_final"]
    rate = lr if final is None else optax.cosine_decay_schedule(lr, steps, alpha=final)
    result = fit(trainer, batches, steps=steps, optimizer=optax.adam(rate, b1=options["b1"]), seed=seed,
                 steps_per_call=per_call, progress=False)
    samples = draw(model, result.state.params, algorithm, n_samples, seed + 1)
    finite = bool(np.all(np.isfinite(samples)))
    summary: dict[str, Any] = {"algorithm": algorithm, "seed": seed, "steps": int(result.state.step),
                               "wall_seconds": result.wall_seconds, "finite": finite}
    if finite:
        cov = mode_coverage(samples, dataset.centres, dataset.sigma)
        summary.update(modes_captured=int(cov.modes_captured), high_quality_fraction=float(cov.high_quality_fraction),
                       reverse_kl=float(cov.reverse_kl))
    else:  # a diverged run covers nothing: counted as 0 modes, 0 high quality, KL undefined
        summary.update(modes_captured=0, high_quality_fraction=0.0, reverse_kl=float("nan"))
    return {"summary": summary, "samples": samples}


def run_modes(data: str, algorithms: Sequence[str], seeds: int, steps: int = STEPS, *, keep_samples: bool = False,
              progress: bool | None = None, **settings: Any) -> dict[str, Any]:
    """Trains every (algorithm, seed in 0..seeds-1) on ``data`` for ``steps`` steps and aggregates.

    ``progress``: a bar over the runs, each finished run's result beside it (None: only on a
    terminal). ``settings`` override :data:`SETTINGS` (see :func:`train_one`).

    Returns ``{"data", "modes", "sigma", "seeds", "steps", "n_samples", "settings", "runs": [per-run
    summaries], "results": {algorithm: {metric: {"mean", "se"}}}}``; with ``keep_samples`` also
    ``"samples": {algorithm: [n, 2] array of seed 0}`` (not JSON).
    """
    from unigen import data as datasets

    if data not in MODE_DATA:
        raise ConfigError(f"--data: expected one of {'|'.join(MODE_DATA)}, got {data!r}")
    names = check_algorithms(algorithms)
    if not (isinstance(seeds, int) and seeds >= 1):
        raise ConfigError(f"--seeds: expected a positive integer, got {seeds!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ConfigError(f"--steps: expected a positive integer, got {steps!r}")
    from unigen.training.logging import progress_bar

    reference = datasets.load(data, "train", seed=0)
    runs, samples = [], {}
    with progress_bar(len(names) * seeds, 0, progress, unit="run") as bar:
        for name in names:
            for seed in range(seeds):
                one = train_one(data, name, seed, steps, **settings)
                runs.append(one["summary"])
                if seed == 0:
                    samples[name] = one["samples"]
                done = one["summary"]
                bar.set_postfix_str(f"{data} {name} seed {seed}: {done['modes_captured']} modes, "
                                    f"HQ {100 * done['high_quality_fraction']:.1f}%")
                bar.update()
    results = {}
    for name in names:
        mine = [r for r in runs if r["algorithm"] == name]
        results[name] = {m: aggregate([r[m] for r in mine]) for m in METRICS}
        results[name]["diverged"] = sum(not r["finite"] for r in mine)
    used = {k: v for k, v in settings.items() if k in SETTINGS}
    defaults = {k: (list(v) if isinstance(v, tuple) else v) for k, v in {**SETTINGS, **used}.items()}
    defaults["activation"] = "relu"
    record: dict[str, Any] = {
        "data": data, "modes": int(reference.centres.shape[0]), "sigma": float(reference.sigma), "seeds": seeds,
        "steps": steps, "n_samples": settings.get("n_samples", N_SAMPLES), "settings": defaults,
        "vae_samples": "draws x ~ p(x|z), z ~ p(z)", "runs": runs, "results": results,
    }
    if keep_samples:
        record["samples"] = samples
    return record


def save_panels(records: Sequence[dict[str, Any]], path) -> None:
    """One row of scatter panels per record (data set), one panel per algorithm: seed 0's samples
    (``record["samples"]``) over the true modes, with their 3 sigma circles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unigen import data as datasets

    names = list(records[0]["samples"])
    fig, axes = plt.subplots(len(records), len(names), figsize=(3.0 * len(names), 3.2 * len(records)),
                             squeeze=False)
    for row, record in zip(axes, records):
        reference = datasets.load(record["data"], "train", seed=0)
        centres, sigma = reference.centres, reference.sigma
        span = float(np.abs(centres).max()) * 1.4 + 3 * sigma
        for ax, name in zip(row, names):
            s = record["samples"][name]
            ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.3)
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", color="red", s=15)
            for c in centres:
                ax.add_patch(plt.Circle(c, 3 * sigma, fill=False, ls="--", color="red", lw=0.5))
            r = record["results"][name]
            ax.set_title(f"{record['data']} {name} (seed 0)\nmean modes {r['modes_captured']['mean']:.1f}, "
                         f"HQ {100 * r['high_quality_fraction']['mean']:.1f}%", fontsize=8)
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
            ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_table(record: dict[str, Any]) -> str:
    lines = [f"{record['data']} ({record['modes']} modes), {record['seeds']} seeds x {record['steps']} steps, "
             f"{record['n_samples']} samples", "| algorithm | modes captured | high quality % | reverse KL |",
             "|---|---:|---:|---:|"]
    for name, r in record["results"].items():
        mc, hq, kl = r["modes_captured"], r["high_quality_fraction"], r["reverse_kl"]
        lines.append(f"| {name} | {mc['mean']:.1f} ± {mc['se']:.1f} | {100 * hq['mean']:.1f} ± {100 * hq['se']:.1f} "
                     f"| {kl['mean']:.2f} ± {kl['se']:.2f} |")
    return "\n".join(lines)
