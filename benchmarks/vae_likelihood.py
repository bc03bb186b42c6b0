r"""VAE test likelihood on binarized MNIST within a wall-clock budget, with unigen's ``fit``.

The question: trained by unigen for a fixed wall-clock budget on this machine, how close does a
VAE come to the published likelihood of the same architecture?

Model: the IWAE paper's one-stochastic-layer network (Burda et al. 2016, §5 and Appendix D):
encoder 784-200-200-(50+50) and decoder 50-200-200-784, tanh hidden units, Bernoulli log-odds,
``vae_model(784, 50, hidden=(200, 200), activation="tanh")``, trained with ``vae(model,
kl="analytic")`` (one reparameterized draw per example). Data: TFDS ``binarized_mnist``, the
fixed binarization (train 50,000 / test 10,000). Anchor: 88.71 nats, the IWAE paper's
Appendix D figure for the VAE with k=1 on the fixed binarization after 3,280 epochs. Target here:
test IS-NLL <= 95 nats after at most 30 minutes of training.

How the budget is used:

1. **Calibration**: a short throw-away ``fit`` (``--calibration-steps``) measures this machine's
   steady-state images/s and the compile overhead of one ``fit`` call *now* (the machine is
   shared, so this is measured, not assumed).
2. **Training**: ``fit`` runs in ``n`` calls (each ``resume=True`` from the previous call's orbax
   checkpoint), with the test ELBO measured between calls for the curve. Before each call the
   total number of steps that fills the rest of ``--minutes`` is (re)planned from the rate
   measured so far, compiles included, and the learning rate follows a cosine decay from
   ``--lr`` to ``--lr-final`` over that total (a re-plan moves the remaining part of the curve a
   little; Adam's state does not depend on the schedule, so each resume continues exactly). ``n``
   is at most ``--evals``, at least 2, and small enough that the calls' compile overhead stays
   under 10% of the budget. Only the last call can overrun the budget (if the machine slows down
   during it); the wall time actually spent is what is reported.
3. **Evaluation** (outside the budget, timed): test IS-NLL with ``--k`` importance samples
   (``unigen.metrics.is_nll``), test ELBO over the whole test split, and the ELBO of the first
   10,000 training images (the generalization gap).

Choices (defaults): batch 100, Adam 1e-3 with cosine decay to 1e-4, 50 steps per ``fit`` call.
Larger batches raise images/s on CPU (measured on 2 cores: ~17k at 50, ~32k at 100, ~41k at 200,
~50k at 500) but give fewer updates; at 100 a 25-minute budget is several hundred epochs, far
more passes than the <= 95-nat target needs, so the rest of the budget goes into the final nats.
The paper used batch 20 with a stepwise decay over 3,280 epochs; we cannot afford its epochs.

Outputs: a table on stdout, ``--json`` (settings, calibration, per-epoch training ELBO curve with
wall time, test-ELBO points, final metrics and wall times) and ``--png`` (ELBO against step and
against training wall time).

Run::

    python benchmarks/vae_likelihood.py                    # 25 min training + ~5-7 min k=5000 evaluation
    python benchmarks/vae_likelihood.py --minutes 2 --json /tmp/l.json --png /tmp/l.png
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `benchmarks.` importable

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks import common  # noqa: E402
from unigen import data, metrics  # noqa: E402
from unigen.algorithms.vae import vae  # noqa: E402
from unigen.models.vae import vae_model  # noqa: E402
from unigen.training import fit  # noqa: E402

DEFAULT_JSON = common.RESULTS / "vae_likelihood.json"
DEFAULT_PNG = common.RESULTS / "vae_likelihood.png"
ANCHOR_NATS = 88.71  # IWAE paper, Appendix D: VAE, k=1, one stochastic layer, fixed binarization
ANCHOR_EPOCHS = 3280
TARGET_NATS = 95.0
TARGET_MINUTES = 30.0
CHUNK_OVERHEAD_SHARE = 0.1  # at most this share of the budget goes to per-call compiles (but >= 2 calls)
TRAIN_ELBO_N = 10_000


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = common.parser(__doc__)
    common.add_budget_options(parser, minutes=25.0, batch_size=100, steps_per_call=50)
    parser.add_argument("--k", type=int, default=5000, help="importance samples for the test IS-NLL")
    parser.add_argument("--eval-n", type=int, default=None, help="test examples for the IS-NLL (default: all)")
    parser.add_argument("--evals", type=int, default=10, help="at most this many test-ELBO points during training")
    parser.add_argument("--calibration-steps", type=int, default=3000)
    parser.add_argument("--log-every", type=int, default=10, help="log the training ELBO every this many steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=common.TFDS_DIR, help="TFDS data directory")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="keep fit's metrics.jsonl and checkpoints here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG)
    args = parser.parse_args(argv)
    common.check_budget(parser, args, "k", "evals", "calibration_steps", "log_every")
    return args


def epoch_curve(rows: list[dict[str, Any]], steps_per_epoch: int) -> list[dict[str, float]]:
    """Per-epoch means of the logged training-batch ELBO, with the training wall time at the epoch's end."""
    epochs: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        epochs.setdefault((row["step"] - 1) // steps_per_epoch, []).append(row)
    curve = []
    for epoch, members in sorted(epochs.items()):
        values = [float(r["elbo/elbo"]) for r in members if isinstance(r["elbo/elbo"], (int, float))]
        curve.append({"epoch": epoch + 1, "step": max(r["step"] for r in members),
                      "train_seconds": max(r["train_seconds"] for r in members),
                      "train_elbo": float(np.mean(values)) if values else float("nan"),
                      "logged_batches": len(values)})
    return curve


def plot(path: Path, curve: list[dict[str, float]], points: list[dict[str, float]], final: dict[str, Any]) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, x_key, label in ((axes[0], "step", "training step"), (axes[1], "train_seconds", "training wall time (s)")):
        axis.plot([c[x_key] for c in curve], [c["train_elbo"] for c in curve], lw=1, label="train ELBO (per-epoch mean of logged batches)")
        axis.plot([p[x_key] for p in points], [p["test_elbo"] for p in points], "o-", ms=4, label="test ELBO (10,000 images)")
        axis.axhline(-ANCHOR_NATS, color="k", ls=":", lw=1, label=f"-{ANCHOR_NATS} (IWAE paper VAE NLL)")
        axis.axhline(-final["is_nll"], color="C3", ls="--", lw=1, label=f"-(test IS-NLL, k={final['k']}) = {-final['is_nll']:.2f}")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    # Show the end of training in detail: from 25 nats below the final test ELBO to above the anchor.
    values = [c["train_elbo"] for c in curve] + [p["test_elbo"] for p in points]
    finite = [v for v in values if math.isfinite(v)]
    if finite and math.isfinite(final["test_elbo"]):
        axes[0].set_ylim(min(final["test_elbo"], -final["is_nll"]) - 25, max(max(finite), -ANCHOR_NATS) + 3)
    axes[0].set_ylabel("nats per image")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("VAE 784-200-200-50 tanh on binarized MNIST (unigen fit)")
    common.save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    began = time.perf_counter()
    load_before = os.getloadavg()
    train = data.load("tfds:binarized_mnist", "train", data_dir=str(args.data_dir))
    test = data.load("tfds:binarized_mnist", "test", data_dir=str(args.data_dir))
    model = vae_model(784, 50, hidden=(200, 200), activation="tanh", likelihood="bernoulli")
    algorithm = vae(model, kl="analytic")
    batches = data.Batches(train, args.batch_size, seed=args.seed)
    k, size = args.steps_per_call, args.batch_size
    print(f"data: train {tuple(train.x.shape)}, test {tuple(test.x.shape)}; batch {size}, "
          f"{batches.steps_per_epoch} steps per epoch; jax {jax.__version__}, {os.cpu_count()} cores, "
          f"load average {load_before[0]:.2f}")

    # 1. Calibration: a throw-away run measures steady images/s and one fit call's overhead.
    budget = args.minutes * 60.0
    budget_began = time.perf_counter()
    calibration_steps = max(2, math.ceil(args.calibration_steps / k)) * k
    probe = fit(algorithm, batches, steps=calibration_steps, optimizer=optax.adam(args.lr),
                seed=args.seed + 1, steps_per_call=k, log_every=calibration_steps, progress=False)
    rate = probe.examples_per_second
    steady_seconds = (calibration_steps - k) * size / rate
    call_overhead = max(0.0, probe.wall_seconds - steady_seconds - k * size / rate)
    elbo_began = time.perf_counter()
    metrics.test_elbo(model, probe.state.params, test.x, jax.random.key(0), batch_size=1000)
    eval_overhead = time.perf_counter() - elbo_began  # includes the first compile of test_elbo
    per_chunk = call_overhead + eval_overhead + 0.5  # + checkpoint save and restore
    calibration_seconds = time.perf_counter() - budget_began
    remaining = budget - calibration_seconds
    chunks = int(min(args.evals, max(2, math.floor(CHUNK_OVERHEAD_SHARE * remaining / max(per_chunk, 1e-3)))))
    total_steps = int((remaining - chunks * per_chunk) * rate / size) // k * k
    chunks = max(1, min(chunks, total_steps // k))
    if total_steps < k:
        raise SystemExit(f"--minutes {args.minutes}: leaves {remaining:.0f} s after calibration, not enough for "
                         f"one call of {k} steps at {rate:,.0f} images/s")
    print(f"calibration: {rate:,.0f} images/s steady, {call_overhead:.1f} s compile per fit call, "
          f"{calibration_seconds:.1f} s in all -> planned {total_steps:,} steps "
          f"({total_steps / batches.steps_per_epoch:.1f} epochs) in {chunks} fit calls")

    # 2. Training: `chunks` resumed fit calls. Before each call the total is re-planned from the
    # rate measured so far (compiles included) and the time left, and the cosine schedule is set
    # over that total; Adam's state does not depend on the schedule, so resuming is exact.
    scratch = tempfile.TemporaryDirectory(prefix="vae_likelihood_") if args.out_dir is None else None
    out_dir = Path(scratch.name) / "run" if scratch else args.out_dir
    rows: list[dict[str, Any]] = []
    points: list[dict[str, float]] = []
    plans: list[dict[str, float]] = []
    train_seconds = 0.0
    eval_during_seconds = 0.0
    done = 0
    result = None
    try:
        for index in range(chunks):
            left = chunks - index
            if index > 0:
                time_left = budget - (time.perf_counter() - budget_began) - left * (eval_overhead + 0.5)
                measured = done * size / train_seconds
                total_steps = done + max(left * k, int(time_left * measured / size) // k * k)
            end = total_steps if left == 1 else done + max(k, round((total_steps - done) / left / k) * k)
            schedule = optax.cosine_decay_schedule(args.lr, total_steps, alpha=args.lr_final / args.lr)
            plans.append({"call": index + 1, "start": done, "end": end, "planned_total": total_steps,
                          "lr_at_start": float(schedule(done))})
            result = fit(algorithm, batches, steps=end, optimizer=optax.adam(schedule), seed=args.seed,
                         steps_per_call=k, out_dir=out_dir, checkpoint_every=end if index == 0 else None,
                         resume=index > 0, log_every=args.log_every)
            for row in result.history:
                rows.append({**row, "train_seconds": train_seconds + row["wall_seconds"]})
            train_seconds += result.wall_seconds
            done = end
            eval_began = time.perf_counter()
            test_elbo = metrics.test_elbo(model, result.state.params, test.x, jax.random.key(args.seed + 2),
                                          batch_size=1000)
            eval_during_seconds += time.perf_counter() - eval_began
            points.append({"step": end, "epoch": end / batches.steps_per_epoch, "train_seconds": train_seconds,
                           "test_elbo": test_elbo, "fit_images_per_second": result.examples_per_second,
                           "lr": float(schedule(end))})
            print(f"  step {end:>8,} of {total_steps:,} (epoch {end / batches.steps_per_epoch:7.1f}): "
                  f"test ELBO {test_elbo:9.3f}, {train_seconds:7.1f} s training, "
                  f"{result.examples_per_second:,.0f} images/s, lr {float(schedule(end)):.2e}")
    finally:
        if scratch is not None:
            scratch.cleanup()
    budget_used = time.perf_counter() - budget_began
    params = result.state.params

    # 3. Evaluation.
    test_x = test.x if args.eval_n is None else test.x[: args.eval_n]
    nll_began = time.perf_counter()
    nll = metrics.is_nll(model, params, test_x, jax.random.key(args.seed + 3), k=args.k, batch_size=100,
                         sample_batch_size=100)
    nll_seconds = time.perf_counter() - nll_began
    elbo_began = time.perf_counter()
    final_test_elbo = metrics.test_elbo(model, params, test.x, jax.random.key(args.seed + 4), batch_size=1000)
    train_elbo = metrics.test_elbo(model, params, train.x[:TRAIN_ELBO_N], jax.random.key(args.seed + 5),
                                   batch_size=1000)
    elbo_seconds = time.perf_counter() - elbo_began

    steps_per_epoch = batches.steps_per_epoch
    curve = epoch_curve(rows, steps_per_epoch)
    epochs = total_steps / steps_per_epoch
    final = {"is_nll": nll, "k": args.k, "is_nll_examples": int(test_x.shape[0]), "test_elbo": final_test_elbo,
             "train_elbo_first_10k": train_elbo}
    minutes_trained = train_seconds / 60.0
    target_met = nll <= TARGET_NATS and budget_used / 60.0 <= TARGET_MINUTES

    print(f"\nVAE 784-200-200-50 tanh, binarized MNIST, unigen fit: batch {size}, Adam {args.lr:g} -> "
          f"{args.lr_final:g} (cosine), {k} steps/call, seed {args.seed}")
    table = [
        ("budget (calibration + training)", f"{args.minutes:g} min", f"used {budget_used / 60:.2f} min"),
        ("calibration", f"{calibration_seconds:.1f} s", f"{rate:,.0f} images/s"),
        ("training", f"{train_seconds:.1f} s", f"{total_steps:,} steps, {epochs:.1f} epochs, {len(plans)} fit calls"),
        ("test ELBO during training", f"{eval_during_seconds:.1f} s", f"{len(points)} evaluations"),
        (f"test IS-NLL, k={args.k}", f"{nll:.2f} nats", f"{nll_seconds:.1f} s on {test_x.shape[0]:,} test images"),
        ("test ELBO", f"{final_test_elbo:.2f} nats", f"{elbo_seconds:.1f} s (with train ELBO)"),
        ("train ELBO (first 10k)", f"{train_elbo:.2f} nats", f"train - test {train_elbo - final_test_elbo:+.2f}"),
        ("anchor (IWAE paper, App. D)", f"{ANCHOR_NATS:.2f} nats", f"VAE k=1 after {ANCHOR_EPOCHS:,} epochs"),
        (f"target <= {TARGET_NATS:g} nats in <= {TARGET_MINUTES:g} min", "MET" if target_met else "NOT MET",
         f"{nll:.2f} nats after {minutes_trained:.2f} min of training"),
    ]
    width = max(len(r[0]) for r in table)
    for name, value, note in table:
        print(f"  {name:<{width}}  {value:>14}  {note}")
    load_after = common.print_load(load_before, began, " (shared machine)")

    report = {
        "benchmark": "vae_likelihood",
        "config": {"architecture": "784-200-200-50 tanh encoder/decoder, Bernoulli, analytic KL",
                   "data": "tfds:binarized_mnist (train 50,000 / test 10,000)", "batch_size": size,
                   "optimizer": f"adam, cosine decay {args.lr} -> {args.lr_final} over all steps",
                   "steps_per_call": k, "minutes": args.minutes, "k": args.k, "seed": args.seed,
                   "log_every": args.log_every},
        "machine": {"jax": jax.__version__, "cpu_count": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "calibration": {"seconds": calibration_seconds, "images_per_second": rate,
                        "fit_call_overhead_seconds": call_overhead, "steps": calibration_steps},
        "training": {"steps": total_steps, "epochs": epochs, "fit_calls": len(plans), "wall_seconds": train_seconds,
                     "budget_used_seconds": budget_used, "eval_during_training_seconds": eval_during_seconds},
        "final": {**final, "is_nll_seconds": nll_seconds, "elbo_seconds": elbo_seconds},
        "anchor": {"nats": ANCHOR_NATS, "source": "Burda et al. 2016 (IWAE), Appendix D, VAE k=1, fixed binarization",
                   "epochs": ANCHOR_EPOCHS},
        "target": {"nats": TARGET_NATS, "minutes": TARGET_MINUTES, "met": target_met},
        "plans": plans,
        "test_elbo_points": points,
        "curve": curve,
    }
    plot(args.png, curve, points, final)
    return common.write_report(args.json, report, args.png)


if __name__ == "__main__":
    main()
