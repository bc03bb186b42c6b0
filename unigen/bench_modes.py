"""``unigen bench modes``: mode coverage of GANs, InfoGAN and a VAE on ring8 / grid25.

Each (algorithm, seed) is trained with the same networks and the same step budget, then 2,500
samples are drawn and scored with :func:`unigen.metrics.mode_coverage` (the VEEGAN/PacGAN Table 1
definition: modes captured, high-quality fraction, reverse KL). Results are aggregated over seeds
as mean and standard error (sample standard deviation / sqrt(n), ddof=1; 0 for a single seed).

Shared settings (override by argument): generator / discriminator / InfoGAN Q-network / VAE
encoder and decoder MLPs with hidden widths (64, 64), ReLU; noise / latent dimension 2; batch 100;
Adam(lr=1e-3, b1=0.5) on every parameter group. Algorithms:

* ``gan``: the classic GAN with the non-saturating generator loss;
* ``gan-minimax``: the same with the minimax generator loss;
* ``infogan``: InfoGAN with a categorical code of M values (M = number of modes), weight 1;
* ``vae``: a Gaussian-likelihood VAE (analytic KL); its samples are **draws**
  x ~ p_theta(x|z), z ~ p(z) (not decoder means).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from unigen.errors import ConfigError

MODE_ALGORITHMS = ("gan", "gan-minimax", "infogan", "vae")
MODE_DATA = ("ring8", "grid25")
METRICS = ("modes_captured", "high_quality_fraction", "reverse_kl")
N_SAMPLES = 2500


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


def _config(data: str, algorithm: str, seed: int, hidden: tuple[int, ...], latent_dim: int,
            modes: int) -> dict[str, Any]:
    return {
        "algorithm": "gan" if algorithm.startswith("gan") else algorithm,
        "data": data, "data_dir": None, "binarize": "none", "seed": seed, "data_dim": 2,
        "latent_dim": latent_dim, "hidden": list(hidden), "activation": "relu",
        "likelihood": "gaussian" if algorithm == "vae" else None, "kl": "analytic",
        "generator_loss": "minimax" if algorithm == "gan-minimax" else "non-saturating",
        "form": "classic", "code_values": modes, "information_weight": 1.0,
    }


def draw(model, params, algorithm: str, n: int, seed: int) -> np.ndarray:
    """``n`` samples ``[n, 2]``: generator outputs, or for the VAE draws x ~ p(x|z), z ~ p(z)."""
    import jax

    theta = params["theta"]
    keys = jax.random.split(jax.random.key(seed), n)
    if algorithm == "vae":
        sample = jax.vmap(lambda k: model.joint.sample(theta, k, {})["x"])
    else:
        sample = jax.vmap(lambda k: model.generator.sample(theta, k, {})["x"])
    return np.asarray(jax.jit(sample)(keys))


def train_one(data: str, algorithm: str, seed: int, steps: int, *, hidden: tuple[int, ...] = (64, 64),
              latent_dim: int = 2, batch_size: int = 100, lr: float = 1e-3, b1: float = 0.5,
              steps_per_call: int = 50, n_samples: int = N_SAMPLES) -> dict[str, Any]:
    """Trains one (algorithm, seed); returns its coverage summary and the drawn samples."""
    import optax

    from unigen import cli
    from unigen import data as datasets
    from unigen.metrics import mode_coverage
    from unigen.training import fit

    dataset = datasets.load(data, "train", seed=seed)
    config = _config(data, algorithm, seed, hidden, latent_dim, int(dataset.centres.shape[0]))
    model = cli._model(config)
    trainer = cli._algorithm(config, model)
    batches = datasets.Batches(dataset, batch_size, seed=seed)
    per_call = max(1, math.gcd(steps, steps_per_call))
    result = fit(trainer, batches, steps=steps, optimizer=optax.adam(lr, b1=b1), seed=seed,
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


def run_modes(data: str, algorithms: Sequence[str], seeds: int, steps: int, *, keep_samples: bool = False,
              **settings: Any) -> dict[str, Any]:
    """Trains every (algorithm, seed in 0..seeds-1) on ``data`` for ``steps`` steps and aggregates.

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
    reference = datasets.load(data, "train", seed=0)
    runs, samples = [], {}
    for name in names:
        for seed in range(seeds):
            one = train_one(data, name, seed, steps, **settings)
            runs.append(one["summary"])
            if seed == 0:
                samples[name] = one["samples"]
    results = {}
    for name in names:
        mine = [r for r in runs if r["algorithm"] == name]
        results[name] = {m: aggregate([r[m] for r in mine]) for m in METRICS}
        results[name]["diverged"] = sum(not r["finite"] for r in mine)
    defaults = {"hidden": [64, 64], "latent_dim": 2, "batch_size": 100, "lr": 1e-3, "b1": 0.5, "activation": "relu"}
    defaults.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()})
    record: dict[str, Any] = {
        "data": data, "modes": int(reference.centres.shape[0]), "sigma": float(reference.sigma), "seeds": seeds,
        "steps": steps, "n_samples": settings.get("n_samples", N_SAMPLES), "settings": defaults,
        "vae_samples": "draws x ~ p(x|z), z ~ p(z)", "runs": runs, "results": results,
    }
    if keep_samples:
        record["samples"] = samples
    return record


def save_panels(record: dict[str, Any], centres: np.ndarray, sigma: float, path) -> None:
    """One scatter panel per algorithm (seed 0's samples over the true modes, 3 sigma circles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(record["samples"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), squeeze=False)
    span = float(np.abs(centres).max()) * 1.4 + 3 * sigma
    for ax, name in zip(axes[0], names):
        s = record["samples"][name]
        ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.3)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", color="red", s=20)
        for c in centres:
            ax.add_patch(plt.Circle(c, 3 * sigma, fill=False, ls="--", color="red", lw=0.5))
        r = record["results"][name]
        ax.set_title(f"{record['data']} {name}\nmodes {r['modes_captured']['mean']:.1f}, "
                     f"HQ {100 * r['high_quality_fraction']['mean']:.0f}%", fontsize=9)
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
