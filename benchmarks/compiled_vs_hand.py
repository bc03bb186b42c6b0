r"""Compiled against hand-written: what compiling each algorithm from its declaration costs.

The question (issue [6], part 4): every built-in algorithm's phases are compiled from its
declaration by :func:`unigen.algebra.algorithm`; is the trainer step it gives as fast as the
same step with the losses written by hand? Target: every compiled step >= 0.97x its
hand-written step.

For each algorithm, two trainers, both ``unigen.training.make_trainer(algorithm, Adam(1e-3),
steps_per_call=1)``, the real jit-compiled ``trainer.step`` (state donated):

* **compiled**: the built-in algorithm (``unigen.algorithms.vae(model)``, ...);
* **hand**: ``benchmarks/baselines/hand_losses.py``, the same phases (names, parameter groups,
  PRNG keys, metric names) written by hand in plain JAX over the same model functions;
  ``tests/test_hand_losses.py`` checks each phase's loss, metrics and gradient equal the compiled
  one's to float rounding.

Algorithms, models and data (small but real):

==============  ==========================================================  =================
``vae``         ``vae_model(784, 50, hidden=(200, 200), activation="tanh")`` binarized MNIST,
                (the IWAE paper's network), analytic KL, one draw            batch 100
``iwae``        the same network, k = 5                                      binarized MNIST, 100
``gan``         ``gan_model(2, 2)``, generator and discriminator MLPs         ring8, batch 100
                (128, 128, 128) ReLU, classic form, non-saturating generator
``infogan``     ``infogan_model(2, 2, 8)``, the same MLPs and Q-network,      ring8, batch 100
                8 code values, weight 1
``wake-sleep``  ``helmholtz_machine(784, (200,))`` (SBN-200)                   binarized MNIST, 24
``rws``         the same machine, k = 5, wake-φ and sleep-φ                    binarized MNIST, 24
``vem-none``    the same machine, variational EM: score-function E-step       binarized MNIST, 24
``vem-mean``    (one draw) with baseline none, leave-one-out batch mean or
``vem-nvil``    NVIL (b_ψ(x) a 784-100-1 tanh MLP, normalized), and M-step
==============  ==========================================================  =================

(The GAN sizes are ``unigen.bench_modes.SETTINGS``; the SBN's batch that of
``sbn_likelihood.py``.) Binarized MNIST is TFDS ``binarized_mnist`` (train split) read from
``<repo>/../shared/data/tfds``; ring8 is ``unigen.data.load("ring8")``.

Timing: a pool of distinct batches per algorithm is put on the device (with the trainer's batch
sharding) before any clock starts; each trainer runs one untimed step first (compilation),
whose losses are compared (same initial parameters, same keys: the two first steps must agree
to float rounding), then runs over the whole pool. The number of steps per repeat is
calibrated from a short timed run so that each variant takes about ``--seconds`` per repeat.
Each repeat runs, per algorithm, the two variants **one step each in turn** (compiled, hand,
compiled, hand, ...; which goes first alternates from one repeat to the next), each step timed
from the call to ``jax.block_until_ready`` on its new state, and sums each variant's step
times: on a machine shared with other work (2 cores here, load average 7-10 in the runs
below) a change in load falls on both variants alike, which longer back-to-back runs of one
variant did not achieve (an earlier version timing A B B A blocks of ~0.2 s each gave
per-repeat ratios from 0.34 to 2.5). Reported: steps/s (median over repeats) and the
ratio compiled/hand = hand seconds / compiled seconds, per repeat, as the median with the
min–max and the interquartile range. Also printed: XLA's ``cost_analysis()`` of both compiled
steps (``jax.jit(trainer.update).lower(state, batch).compile()``: FLOPs, bytes accessed and
transcendentals), which say whether the two programs do the same work.

Run::

    python benchmarks/compiled_vs_hand.py --repeats 11 --seconds 0.6   # the defaults; ~7 min on 2 shared cores
    python benchmarks/compiled_vs_hand.py --repeats 7 --seconds 0.1 --algorithms gan,rws \
        --json /tmp/c.json                                   # smoke
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `benchmarks.` importable

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.baselines import hand_losses  # noqa: E402
from unigen import algorithms, data  # noqa: E402
from unigen.core import Algorithm  # noqa: E402
from unigen.models import helmholtz_machine, vae_model  # noqa: E402
from unigen.models.gan import gan_model  # noqa: E402
from unigen.models.infogan import infogan_model  # noqa: E402
from unigen.training import make_optimizer, make_trainer, parallel  # noqa: E402

DEFAULT_JSON = common.RESULTS / "compiled_vs_hand.json"
LEARNING_RATE = 1e-3
POOL = 16  # distinct batches per algorithm, cycled
TARGET = 0.97
HIDDEN = (128, 128, 128)


class Case(NamedTuple):
    """One algorithm: its two Algorithms, the data it trains on and a one-line description."""

    name: str
    compiled: Algorithm
    hand: Algorithm
    data: str
    batch: int
    model: str


def cases(names: list[str]) -> list[Case]:
    """The algorithms of the table, in the order of ``names``."""
    vae_net = vae_model(784, 50, hidden=(200, 200), activation="tanh", likelihood="bernoulli")
    sbn = helmholtz_machine(784, (200,))
    gan_net = gan_model(2, 2, generator_hidden=HIDDEN, discriminator_hidden=HIDDEN)
    info_net = infogan_model(2, 2, 8, generator_hidden=HIDDEN, discriminator_hidden=HIDDEN,
                             inference_hidden=HIDDEN)
    mnist, ring = "binarized_mnist", "ring8"
    vae_text, sbn_text = "784-200-200-50 tanh", "SBN 784-200"
    gan_text = "MLPs 128x3 relu, z 2"
    build: dict[str, Callable[[], Case]] = {
        "vae": lambda: Case("vae", algorithms.vae(vae_net), hand_losses.vae(vae_net), mnist, 100,
                            vae_text),
        "iwae": lambda: Case("iwae", algorithms.iwae(vae_net, 5), hand_losses.iwae(vae_net, 5),
                             mnist, 100, vae_text + ", k=5"),
        "gan": lambda: Case("gan", algorithms.gan(gan_net), hand_losses.gan(gan_net), ring, 100,
                            gan_text + ", non-saturating"),
        "infogan": lambda: Case("infogan", algorithms.infogan(info_net),
                                hand_losses.infogan(info_net), ring, 100, gan_text + ", 8 codes"),
        "wake-sleep": lambda: Case("wake-sleep", algorithms.wake_sleep(sbn),
                                   hand_losses.wake_sleep(sbn), mnist, 24, sbn_text),
        "rws": lambda: Case("rws", algorithms.rws(sbn, k=5), hand_losses.rws(sbn, 5), mnist, 24,
                            sbn_text + ", k=5"),
        **{f"vem-{baseline}": (lambda baseline=baseline: Case(
            f"vem-{baseline}", algorithms.variational_em(sbn, baseline=baseline),
            hand_losses.variational_em(sbn, baseline=baseline), mnist, 24,
            sbn_text + f", score, {baseline}")) for baseline in ("none", "mean", "nvil")},
    }
    return [build[name]() for name in names]


ALGORITHMS = ("vae", "iwae", "gan", "infogan", "wake-sleep", "rws", "vem-none", "vem-mean", "vem-nvil")


# ----------------------------------------------------------------------------------------------
# One trainer and its clock


class Runner:
    """A trainer's compiled step, its (donated, replaced) state and its pool of device batches."""

    def __init__(self, algorithm: Algorithm, pool: np.ndarray):
        self.trainer = make_trainer(algorithm, make_optimizer("adam", LEARNING_RATE))
        sharding = parallel.batch_sharding(self.trainer.mesh, stacked=False)
        self.batches = [{"x": jax.device_put(row, sharding)} for row in pool]
        self.state = self.trainer.init(jax.random.key(0))
        self.cursor = 0
        self.seconds: list[float] = []
        self.last: dict[str, float] = {}

    def cost(self) -> dict[str, float | None]:
        """XLA's cost analysis of one step (FLOPs, bytes accessed, transcendentals)."""
        compiled = jax.jit(self.trainer.update).lower(self.state, self.batches[0]).compile()
        try:
            cost = compiled.cost_analysis()
        except Exception:  # noqa: BLE001 (a backend without a cost model: report None)
            cost = None
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        cost = cost or {}
        return {name: (float(cost[name]) if name in cost else None)
                for name in ("flops", "bytes accessed", "transcendentals")}

    def step_once(self) -> float:
        """Seconds for one step, from the call to the new state being ready."""
        batch = self.batches[self.cursor]
        self.cursor = (self.cursor + 1) % len(self.batches)
        began = time.perf_counter()
        self.state, _ = self.trainer.step(self.state, batch)
        jax.block_until_ready(self.state)
        return time.perf_counter() - began

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` steps, from the first call to the state being ready."""
        state, metrics = self.state, None
        began = time.perf_counter()
        for _ in range(steps):
            state, metrics = self.trainer.step(state, self.batches[self.cursor])
            self.cursor = (self.cursor + 1) % len(self.batches)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - began
        self.state = state
        self.last = {name: float(value) for name, value in metrics.items()}
        return elapsed


def pool_of(name: str, batch: int, data_dir: Path) -> np.ndarray:
    """``[POOL, batch, D]`` training batches of data set ``name``."""
    if name == "binarized_mnist":
        dataset = data.load("tfds:binarized_mnist", "train", data_dir=str(data_dir))
    else:
        dataset = data.load(name, "train")
    return data.Batches(dataset, batch, seed=0).stack(0, POOL)["x"]


def summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, np.float64)
    q1, median, q3 = np.percentile(array, [25, 50, 75])
    return {"median": float(median), "min": float(array.min()), "max": float(array.max()),
            "q1": float(q1), "q3": float(q3), "n": int(array.size)}


def first_step_difference(compiled: dict[str, float], hand: dict[str, float]) -> float:
    """The largest relative difference between the two first steps' losses (``phase/loss``)."""
    losses = [name for name in compiled if name.endswith("/loss")]
    return max(abs(compiled[n] - hand[n]) / max(abs(hand[n]), 1e-30) for n in losses)


# ----------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__)
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats (>= 7)")
    parser.add_argument("--seconds", type=float, default=0.6,
                        help="about how long each variant runs per repeat (sets the steps)")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS),
                        help=f"comma-separated, from {','.join(ALGORITHMS)}")
    parser.add_argument("--data-dir", type=Path, default=common.TFDS_DIR, help="TFDS data directory")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.algorithms.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown or not names:
        parser.error(f"--algorithms: expected names from {','.join(ALGORITHMS)}, got {args.algorithms!r}")
    if args.repeats < 1 or args.seconds <= 0:
        parser.error("--repeats must be >= 1 and --seconds > 0")

    load_before = os.getloadavg()
    began = time.perf_counter()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}, "
          f"{os.cpu_count()} cores, load average {load_before[0]:.2f}; Adam {LEARNING_RATE:g}, "
          f"steps_per_call=1; {args.repeats} repeats, ~{args.seconds:g} s per variant per repeat")

    rows: list[dict[str, Any]] = []
    pairs: list[tuple[Runner, Runner]] = []
    pools: dict[tuple[str, int], np.ndarray] = {}
    for case in cases(names):
        pool = pools.setdefault((case.data, case.batch), pool_of(case.data, case.batch, args.data_dir))
        compiled, hand = Runner(case.compiled, pool), Runner(case.hand, pool)
        costs = {"compiled": compiled.cost(), "hand": hand.cost()}
        compile_began = time.perf_counter()
        compiled.run(1)
        hand.run(1)
        difference = first_step_difference(compiled.last, hand.last)
        compiled.run(POOL)  # warm up on every batch of the pool
        hand.run(POOL)
        probe = max(4, POOL)
        per_step = min(compiled.run(probe), hand.run(probe)) / probe
        steps = max(10, round(args.seconds / per_step))
        rows.append({"algorithm": case.name, "model": case.model, "data": case.data,
                     "batch": case.batch, "phases": [p.name for p in case.compiled.phases],
                     "steps_per_repeat": steps, "cost": costs,
                     "first_step_max_relative_loss_difference": difference,
                     "warm_up_seconds": time.perf_counter() - compile_began})
        pairs.append((compiled, hand))
        print(f"  {case.name:<10} ready: {steps} steps per repeat, first-step losses agree to "
              f"{difference:.1e} (relative)")

    for repeat in range(args.repeats):
        for row, (compiled, hand) in zip(rows, pairs):
            order = (compiled, hand) if repeat % 2 == 0 else (hand, compiled)
            took = {compiled: 0.0, hand: 0.0}
            for _ in range(row["steps_per_repeat"]):  # one step of each in turn
                for runner in order:
                    took[runner] += runner.step_once()
            for runner in (compiled, hand):
                runner.seconds.append(took[runner])

    for row, (compiled, hand) in zip(rows, pairs):
        steps = row["steps_per_repeat"]
        ratios = [h / c for c, h in zip(compiled.seconds, hand.seconds)]
        row.update({
            "compiled_seconds": compiled.seconds, "hand_seconds": hand.seconds,
            "compiled_steps_per_second": summary([steps / s for s in compiled.seconds]),
            "hand_steps_per_second": summary([steps / s for s in hand.seconds]),
            "ratio_compiled_over_hand": summary(ratios), "ratios": ratios,
            "meets_target": summary(ratios)["median"] >= TARGET,
        })
    load_after = os.getloadavg()
    total = time.perf_counter() - began

    # ------------------------------------------------------------------ print
    common.print_header(f"\ncompiled step vs hand-written step, one jit-compiled trainer step each (median of "
                        f"{args.repeats} per-repeat ratios; ratio = hand seconds / compiled seconds)",
                        f"{'algorithm':<11} {'model, data, batch':<46} {'steps':>5} {'compiled/s':>10} {'hand/s':>8} "
                        f"{'ratio':>6} {'min-max':>12} {'IQR':>12} {'FLOPs c/h':>9} {'bytes c/h':>9}")
    for row in rows:
        ratio = row["ratio_compiled_over_hand"]
        cost = row["cost"]

        def relative(name: str) -> str:
            top, bottom = cost["compiled"][name], cost["hand"][name]
            return f"{top / bottom:.3f}" if top is not None and bottom else "n/a"

        where = f"{row['model']}, {row['data']}, {row['batch']}"
        print(f"{row['algorithm']:<11} {where:<46} {row['steps_per_repeat']:>5} "
              f"{row['compiled_steps_per_second']['median']:>10,.0f} "
              f"{row['hand_steps_per_second']['median']:>8,.0f} {ratio['median']:>6.3f} "
              f"{ratio['min']:>5.3f}-{ratio['max']:.3f} {ratio['q1']:>5.3f}-{ratio['q3']:.3f} "
              f"{relative('flops'):>9} {relative('bytes accessed'):>9}")
    print("\nXLA cost analysis of one step (compiled | hand):")
    for row in rows:
        parts = []
        for name in ("flops", "bytes accessed", "transcendentals"):
            top, bottom = row["cost"]["compiled"][name], row["cost"]["hand"][name]
            if top is not None and bottom is not None:
                parts.append(f"{name} {top:,.0f} | {bottom:,.0f}")
        print(f"  {row['algorithm']:<11} " + "; ".join(parts))
    missed = [row["algorithm"] for row in rows if not row["meets_target"]]
    print(f"\ntarget compiled >= {TARGET}x hand: "
          + ("met by every algorithm" if not missed else f"missed by {', '.join(missed)}"))
    print(f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}; {total:.0f} s in all")

    result = {
        "question": "compiled-from-declaration trainer step vs the same step with hand-written losses",
        "command": "python benchmarks/compiled_vs_hand.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "target": TARGET, "repeats": args.repeats, "seconds_per_variant": args.seconds,
        "optimizer": f"adam {LEARNING_RATE:g}", "steps_per_call": 1,
        "jax": jax.__version__, "platform": platform.platform(), "cores": os.cpu_count(),
        "load_average": [load_before[0], load_after[0]], "wall_seconds": total, "rows": rows,
    }
    return common.write_report(args.json, result)


if __name__ == "__main__":
    main()
