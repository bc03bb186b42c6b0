"""One GAN run on ring8/grid25 with free settings: how the mode-coverage settings were chosen.

    python benchmarks/mode_coverage_tuning.py --gradient-penalty 1 --steps 40000 --seed 3
    python benchmarks/mode_coverage_tuning.py --pack 4 --batch 400 --d 512,512,512 --steps 10000

Trains :func:`unigen.algorithms.gan.gan` on :func:`unigen.models.gan.gan_model` with the given
widths, Adam(lr, b1) with a cosine decay to ``final``·lr (``--dlr`` gives the discriminator its own
peak rate), then scores 2,500 draws (keys ``split(key(seed + 1), 2500)``, as
:mod:`unigen.bench_modes` does) with :func:`unigen.metrics.mode_coverage`, and prints one JSON line
with the settings, ``modes``, ``hq`` (high-quality fraction), ``rkl`` (reverse KL) and ``sec``.
The lines of the sweep that chose :data:`unigen.bench_modes.SETTINGS` are in
``results/mode_coverage_tuning.jsonl`` (one seed per line, grid25 unless ``data`` says otherwise);
what they show is summarized in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
import optax

from unigen import data as datasets
from unigen.algorithms.gan import gan
from unigen.metrics import mode_coverage
from unigen.models.gan import gan_model
from unigen.training import fit


def _widths(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="grid25")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--g", default="128,128,128", help="generator widths")
    parser.add_argument("--d", default="128,128,128", help="discriminator widths")
    parser.add_argument("--act", default="relu")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dlr", type=float, default=0.0, help="the discriminator's peak rate (0: --lr)")
    parser.add_argument("--final", type=float, default=1e-2, help="final rate as a fraction of the peak (cosine)")
    parser.add_argument("--b1", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=100, help="data rows per step")
    parser.add_argument("--loss", default="non-saturating")
    parser.add_argument("--pack", type=int, default=1)
    parser.add_argument("--latent", type=int, default=2)
    parser.add_argument("--r1", "--gradient-penalty", dest="r1", type=float, default=0.0)
    parser.add_argument("--save", default="", help="also save the 2,500 samples to this .npy file")
    args = parser.parse_args()

    dataset = datasets.load(args.data, "train", seed=args.seed)
    model = gan_model(2, args.latent, generator_hidden=_widths(args.g), discriminator_hidden=_widths(args.d),
                      activation=args.act, pack=args.pack)
    algorithm = gan(model, generator_loss=args.loss, gradient_penalty=args.r1)

    def adam(peak: float) -> optax.GradientTransformation:
        return optax.adam(optax.cosine_decay_schedule(peak, args.steps, alpha=args.final), b1=args.b1)

    optimizer = {"theta": adam(args.lr), "phi": adam(args.dlr)} if args.dlr else adam(args.lr)
    start = time.time()
    result = fit(algorithm, datasets.Batches(dataset, args.batch, seed=args.seed), steps=args.steps,
                 optimizer=optimizer, seed=args.seed, steps_per_call=50, progress=False)
    keys = jax.random.split(jax.random.key(args.seed + 1), 2500)
    theta = result.state.params["theta"]
    samples = np.asarray(jax.jit(jax.vmap(lambda k: model.generator.sample(theta, k, {})["x"]))(keys))
    if args.save:
        np.save(args.save, samples)
    coverage = mode_coverage(samples, dataset.centres, dataset.sigma)
    print(json.dumps({**vars(args), "modes": int(coverage.modes_captured),
                      "hq": round(float(coverage.high_quality_fraction), 4),
                      "rkl": round(float(coverage.reverse_kl), 3), "sec": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
