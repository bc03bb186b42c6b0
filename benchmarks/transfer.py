"""The transfers of Hu et al. 2018 (§4) and ADA (§3.1) against their parents, at the issue's sizes.

    python benchmarks/transfer.py                      # every family, 3 seeds, the budgets below
    python benchmarks/transfer.py --families vae       # one family: vae | gan | ada (the last run: two
    python benchmarks/transfer.py --families gan,ada   #   processes side by side, these two lines)

Budgets (defaults): VAE family 600 steps of batch 100 (1.2 epochs of the whole training split, 12 of
10%, 120 of 1%), encoder and decoder 784-200-20, test IS-NLL with k = 50; GAN family 3,000 steps
on ring8 / grid25 (MLPs 128×2, batch 100, Adam 1e-3, β1 0.5) and 1,500 on MNIST (MLPs 256, 32
noise dimensions, Adam 2e-4, β1 0.5); ADA 1,500 steps (the recipe's defaults).
    python benchmarks/transfer.py --quick              # 2 seeds, a few dozen steps (a smoke run)

Families, each a transfer and its parent trained with the same networks, batch, optimizer, steps
and seeds, through the recipe registry exactly as ``unigen train NAME`` does:

* ``vae``: AAVAE vs VAE (Monte Carlo KL, as the AAVAE's) on ``tfds:binarized_mnist`` trained on
  1%, 10% and 100% of the 50,000 training images (``--train-fraction``; Hu et al.'s Table 3
  setting), test ELBO and IS-NLL on the 10,000 test images (``summary.json``);
* ``gan``: IWGAN vs GAN, mode coverage of 2,500 samples on ring8 and grid25 (``summary.json``), and
  on ``tfds:binarized_mnist`` the inception score of 10,000 generator samples (clipped to [0, 1])
  under a small MNIST classifier trained here (see :func:`mnist_classifier`);
* ``ada``: ADA vs its classifier alone (``--adapt no``) on ``adapt:contrast``, target and source
  test accuracy.

Prints mean ± standard error over the seeds and the paired per-seed differences (transfer −
parent), writes ``benchmarks/results/transfer_FAMILY.json`` and ``transfer_FAMILY.png``. The data
are read from ``$TFDS_DATA_DIR`` (default ``/work/shared/data/tfds``) and ``--mnist-idx``. Not run by
the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from unigen import cli

RESULTS = Path(__file__).parent / "results"
MNIST = "tfds:binarized_mnist"
VAE_OPTIONS = ["--data", MNIST, "--batch-size", "100", "--hidden", "200", "--latent-dim", "20", "--eval-k", "50"]
GAN_OPTIONS = ["--batch-size", "100", "--hidden", "128,128", "--b1", "0.5"]
MNIST_GAN_OPTIONS = ["--data", MNIST, "--batch-size", "100", "--hidden", "256", "--latent-dim", "32",
                     "--lr", "2e-4", "--b1", "0.5"]
IS_SAMPLES = 10_000
"""Generator samples per inception score."""


def settings(fractions: list[float]) -> list[dict]:
    """Every compared pair: family, label, parent, transfer, shared options, the parent's own
    options, the transfer's own options, the metrics compared."""
    vae = [dict(family="vae", label=f"binarized MNIST, {f:g} of train", parent="vae", transfer="aavae",
                options=[*VAE_OPTIONS, "--train-fraction", str(f)], parent_only=["--kl", "monte_carlo"],
                transfer_only=[], metrics=("test_elbo", "is_nll")) for f in fractions]
    gan = [dict(family="gan", label=data, parent="gan", transfer="iwgan", options=["--data", data, *GAN_OPTIONS],
                parent_only=[], transfer_only=[], metrics=("modes_captured", "high_quality_fraction", "reverse_kl"))
           for data in ("ring8", "grid25")]
    gan.append(dict(family="gan", label="binarized MNIST", parent="gan", transfer="iwgan", options=MNIST_GAN_OPTIONS,
                    parent_only=[], transfer_only=[], metrics=("inception_score",), steps_key="mnist_gan"))
    ada = [dict(family="ada", label="adapt:contrast", parent="ada", transfer="ada", options=["--data", "adapt:contrast"],
                parent_only=["--adapt", "no"], transfer_only=[], metrics=("target_accuracy", "source_accuracy"))]
    return vae + gan + ada


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def run(name: str, options: list[str], seed: int, steps: int, out: Path) -> dict:
    argv = ["train", name, *options, "--steps", str(steps), "--seed", str(seed), "--out", str(out),
            "--no-progress", "--steps-per-call", "50", "--checkpoint-every", str(steps)]
    code = cli.main(argv)
    if code != 0:
        raise SystemExit(f"unigen {' '.join(argv)} exited {code}")
    return json.loads((out / "summary.json").read_text())


def mnist_classifier(idx_dir: str, seed: int = 0, held_out: int = 2000, epochs: int = 15):
    """A small MLP (784-256-10, relu) trained on the MNIST IDX images of ``idx_dir``'s test split
    (the only labelled MNIST here), all but the last ``held_out`` of them, each epoch on a fresh
    Bernoulli binarization of the grey levels (the binarization of ``binarized_mnist``). Returns
    ``(predict, info)``: ``predict(x [N, 784]) -> [N, 10]`` class probabilities, ``info`` the
    training size and the held-out accuracy (on one Bernoulli binarization and on grey levels)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from unigen import data, nets

    images = data.load(f"idx:{idx_dir}", "test")
    x, y = images.x.astype(np.float32), np.asarray(images.labels)
    train_x, train_y, test_x, test_y = x[:-held_out], y[:-held_out], x[-held_out:], y[-held_out:]
    net = nets.mlp([x.shape[1], 256, 10], "relu")
    logits = jax.vmap(net.apply, in_axes=(None, 0))
    optimizer = optax.adam(1e-3)

    def loss(params, xb, yb):
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits(params, xb)), yb[:, None], axis=1))

    @jax.jit
    def step(params, state, xb, yb):
        value, grads = jax.value_and_grad(loss)(params, xb, yb)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    rng = np.random.default_rng(seed)
    params = net.init(jax.random.key(seed))
    state = optimizer.init(params)
    for _ in range(epochs):
        binary = (rng.random(train_x.shape) < train_x).astype(np.float32)
        order = rng.permutation(len(train_x))
        for start in range(0, len(order) - 99, 100):
            rows = order[start:start + 100]
            params, state, _ = step(params, state, binary[rows], train_y[rows])
    predict_jit = jax.jit(lambda xb: jax.nn.softmax(logits(params, xb)))

    def predict(xb):
        return np.concatenate([np.asarray(predict_jit(xb[i:i + 1000])) for i in range(0, len(xb), 1000)])

    binary_test = (rng.random(test_x.shape) < test_x).astype(np.float32)
    info = {"train_examples": int(len(train_x)), "held_out_examples": held_out, "epochs": epochs,
            "held_out_accuracy_binarized": float(np.mean(predict(binary_test).argmax(1) == test_y)),
            "held_out_accuracy_grey": float(np.mean(predict(test_x).argmax(1) == test_y))}
    return predict, info


def data_inception_score(predict) -> float:
    """The inception score of the 10,000 ``binarized_mnist`` test images: the data's own, a ceiling."""
    from unigen import data
    from unigen.metrics import inception_score

    return inception_score(predict(data.load(MNIST, "test").x))


def inception_score_of_run(out: Path, predict, seed: int) -> float:
    """The inception score of ``IS_SAMPLES`` generator samples of the run in ``out``."""
    import numpy as np

    from unigen import recipes
    from unigen.metrics import inception_score

    config, model, params = cli._load_run(out)
    samples = np.clip(np.asarray(recipes.recipe(config["algorithm"]).draw(model, params, config, IS_SAMPLES, seed + 7)),
                      0.0, 1.0)
    return inception_score(predict(samples))


def figure(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(r, m) for r in records for m in r["metrics"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (record, metric) in zip(axes[0], panels):
        row = record["metrics"][metric]
        names = (record["parent_label"], record["transfer_label"])
        for i, name in enumerate(names):
            values = row[name]["values"]
            ax.scatter([i] * len(values), values, s=12, color="grey", zorder=2)
            ax.errorbar([i], [row[name]["mean"]], yerr=[row[name]["se"]], fmt="o", color="C0", capsize=4, zorder=3)
        ax.set_xticks([0, 1], names)
        ax.set_xlim(-0.6, 1.6)
        ax.set_title(f"{record['label']}\n{metric}", fontsize=8)
    fig.suptitle(f"mean ± s.e. over {records[0]['seeds']} seeds (grey: each seed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, a few dozen steps")
    parser.add_argument("--families", default="vae,gan,ada")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--fractions", default="0.01,0.1,1")
    parser.add_argument("--vae-steps", type=int, default=None)
    parser.add_argument("--gan-steps", type=int, default=None)
    parser.add_argument("--mnist-gan-steps", type=int, default=None)
    parser.add_argument("--ada-steps", type=int, default=None)
    parser.add_argument("--mnist-idx", default="/work/shared/data/mnist_idx")
    parser.add_argument("--suffix", default="", help="appended to the output names")
    args = parser.parse_args()
    os.environ.setdefault("TFDS_DATA_DIR", "/work/shared/data/tfds")
    seeds = args.seeds or (2 if args.quick else 3)
    steps = {"vae": args.vae_steps or (30 if args.quick else 600),
             "gan": args.gan_steps or (50 if args.quick else 3000),
             "mnist_gan": args.mnist_gan_steps or (30 if args.quick else 1500),
             "ada": args.ada_steps or (50 if args.quick else 1500)}
    families = args.families.split(",")
    fractions = [float(f) for f in args.fractions.split(",")]
    for family in families:
        start = time.time()
        load_start = os.getloadavg()
        records, classifier = [], None
        with tempfile.TemporaryDirectory() as tmp:
            for setting in (s for s in settings(fractions) if s["family"] == family):
                n_steps = steps[setting.get("steps_key", family)]
                if "inception_score" in setting["metrics"] and classifier is None:
                    predict, info = mnist_classifier(args.mnist_idx, epochs=2 if args.quick else 15)
                    classifier = {**info, "test_images_inception_score": data_inception_score(predict)}
                    print(f"MNIST classifier: {classifier}", flush=True)
                parent_label = setting["parent"] + (" " + " ".join(setting["parent_only"]) if setting["parent"] ==
                                                    setting["transfer"] else "")
                transfer_label = setting["transfer"]
                per = {parent_label: [], transfer_label: []}
                for seed in range(seeds):
                    for name, label, own in ((setting["parent"], parent_label, setting["parent_only"]),
                                             (setting["transfer"], transfer_label, setting["transfer_only"])):
                        out = Path(tmp) / f"{label.replace(' ', '_')}-{len(records)}-{seed}"
                        summary = run(name, setting["options"] + own, seed, n_steps, out)
                        if "inception_score" in setting["metrics"]:
                            summary["inception_score"] = inception_score_of_run(out, predict, seed)
                        per[label].append(summary)
                rows = {}
                for metric in setting["metrics"]:
                    values = {label: [float(s[metric]) for s in per[label]] for label in per}
                    differences = [t - p for t, p in zip(values[transfer_label], values[parent_label])]
                    rows[metric] = {label: dict(zip(("mean", "se"), mean_se(v)), values=v) for label, v in values.items()}
                    rows[metric]["difference"] = dict(zip(("mean", "se"), mean_se(differences)), values=differences)
                record = {"family": family, "label": setting["label"], "parent": setting["parent"],
                          "transfer": setting["transfer"], "parent_label": parent_label,
                          "transfer_label": transfer_label, "steps": n_steps, "seeds": seeds,
                          "options": setting["options"], "parent_only": setting["parent_only"], "metrics": rows,
                          "wall_seconds_per_run": [s["wall_seconds"] for label in per for s in per[label]]}
                records.append(record)
                print(f"\n{transfer_label} vs {parent_label}, {setting['label']}: {n_steps} steps, {seeds} seeds, "
                      f"options {' '.join(setting['options'])}")
                print(f"| metric | {parent_label} | {transfer_label} | difference (paired) |\n|---|---:|---:|---:|")
                for metric, row in rows.items():
                    cells = [f"{row[n]['mean']:.4g} ± {row[n]['se']:.2g}" for n in (parent_label, transfer_label,
                                                                                    "difference")]
                    print(f"| {metric} | " + " | ".join(cells) + " |", flush=True)
        out = {"family": family, "wall_seconds": time.time() - start, "load_average_start": load_start,
               "load_average_end": os.getloadavg(), "quick": args.quick, "classifier": classifier,
               "records": records}
        path = RESULTS / f"transfer_{family}{args.suffix}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        figure(records, path.with_suffix(".png"))
        print(f"wrote {path} and {path.with_suffix('.png').name} in {out['wall_seconds']:.0f} s "
              f"(load average {load_start[0]:.1f} -> {out['load_average_end'][0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
