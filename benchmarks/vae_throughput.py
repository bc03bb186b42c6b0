r"""VAE training throughput: unigen's trainer against a hand-written plain-JAX step and the FLOP floor.

The question: what does unigen's generality (phases, per-group optimizers, single-example model
functions under ``vmap``, numpyro distributions, NNX networks, sharding annotations, a metrics
dict) cost per training step, against a plain-JAX step written by hand for this one model, and
how close does a fused multi-step call come to what this machine's matmuls allow?

Setup: binarized MNIST (TFDS ``binarized_mnist``, train split), batch 128, the PyTorch-examples
VAE (encoder 784-400-(20+20), decoder 20-400-784, ReLU, Bernoulli log-odds, analytic KL, one
reparameterized draw per example), Adam 1e-3. (The baseline's encoder outputs the log-variance,
as the PyTorch example does; unigen's outputs the log standard deviation: one elementwise
multiply apart.) Variants, all timed in the same run:

* ``a``  unigen ``make_trainer(vae(model), adam, steps_per_call=1)``, the real ``trainer.step``;
  its loss is the VAE objective compiled by the algebra (``unigen.algebra.compile``).
* ``b``  the same with ``steps_per_call=50`` (``lax.scan`` over 50 stacked batches per call).
* ``c``  the baseline: ``benchmarks/baselines/plain_jax_vae.py``, one jitted step, state donated.
* ``d``  the baseline with 50 steps per call (``lax.scan``), the plain-JAX counterpart of ``b``.
* ``e``  diagnostic: unigen's VAE loss (``vae(model).phases[0].loss``) in a plain jitted step
  (the baseline's loop: one optax state over all parameters, loss only out, no shardings).
* ``f``  diagnostic: the baseline's loss inside unigen's trainer (one phase, one group).
* ``h``  ``a`` with the hand-written loss of issue [1] (``unigen.algorithms.vae.reference_loss``)
  in place of the compiled one: ``a/h`` is what compiling the objective costs.
``e`` and ``f`` split a gap between ``a`` and ``c`` into the part due to the model code (the
loss) and the part due to the step around it (the trainer). They found that unigen's ELBO called
the encoder twice (once to draw, once for the KL), which XLA compiled to 14 matmuls instead of 11
(the backward passes are not merged): a/c was 0.81. The ELBO now builds the encoder's
distribution once; ``tests/test_vae.py`` counts the dots so that it stays that way. Later, with
the same 11 dots, XLA's cost analysis still gave unigen's one-step program 49.20 MB accessed
against the baseline's 47.53: the one draw per example kept a sample axis of length 1
(``[B, 1, 784]``, ``[B, 1, 400]``), for which XLA transposed the activations before the weight
gradients. The compiler now draws once without that axis (exactly the mean of one draw):
48.00 MB; ``tests/test_vae.py`` checks that no ``[B, 1, D]`` array is left. It averages the
metrics together with the loss (``step_ablation.py``): 47.51 MB.

Timing: every batch of a repeat is put on the device before the clock starts (the same host
arrays for every variant: ``[1, B, D]`` per call with the trainer's batch sharding for ``a`` and
``f``, ``[B, D]`` for ``c`` and ``e``, ``[50, B, D]`` for ``b`` and ``d``); every variant runs one
untimed pass first (compilation and warm-up); then each repeat times ``--steps`` steps of every
variant, in a rotating order, ending with ``jax.block_until_ready`` on the state. The matmul
rates that define the floor are measured inside the same repeats. Reported: the median over the
repeats and the min/max and interquartile range; ratios are medians of the per-repeat ratios
(variants timed back to back within one repeat).

The FLOP floor. The step's matmul FLOPs are counted analytically: a forward matmul
``[m, k] @ [k, n]`` costs ``2·m·k·n``; its backward costs two more of the same size (the weight
gradient ``aᵀ g`` and the input gradient ``g Wᵀ``), so the usual rule is 3× the forward
FLOPs, *except* the first encoder layer, whose input is the data and needs no gradient (2×).
For batch 128 that is 11 matmuls and 3.28 MFLOP per image; elementwise work (activations,
sampling, Adam on 652k parameters) is left out of the floor and shown by XLA's own
``cost_analysis()`` count, which is printed next to it. The machine's rate is measured on those
11 matmuls at their exact shapes and contraction layouts in one jitted call
(the median over the repeats of FLOPs / time), and for reference on each shape alone and on one 2048³ square
matmul. Floor images/s = measured GFLOP/s at the step's shapes / matmul FLOPs per image.

Targets: ``a >= 0.95 × c``, ``b >= 0.75 × floor`` and ``a >= 0.97 × h``.

Run::

    python benchmarks/vae_throughput.py                     # ~1-1.5 minutes on 2 cores
    python benchmarks/vae_throughput.py --repeats 9 --steps 300 --json /tmp/t.json
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `benchmarks.` importable

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.baselines import plain_jax_vae as baseline  # noqa: E402
from unigen import data  # noqa: E402
from unigen.algorithms.vae import reference_loss, vae  # noqa: E402
from unigen.core import Algorithm, Phase  # noqa: E402
from unigen.models.vae import vae_model  # noqa: E402
from unigen.training import make_optimizer, make_trainer, parallel  # noqa: E402

DEFAULT_JSON = common.RESULTS / "vae_throughput.json"
BATCH = 128
LEARNING_RATE = 1e-3
SQUARE = 2048

VARIANTS = {
    "a": "unigen trainer, 1 step/call",
    "b": "unigen trainer, {k} steps/call",
    "c": "plain JAX step (baseline)",
    "d": "plain JAX, {k} steps/call (scan)",
    "e": "diag: unigen loss, plain jit step",
    "f": "diag: plain loss, unigen trainer",
    "h": "unigen trainer, hand-written loss",
}


# ----------------------------------------------------------------------------------------------
# FLOPs


def step_matmuls(batch: int) -> list[dict[str, Any]]:
    """The matmuls of one training step: name, (m, k, n), contraction layout, FLOPs = 2·m·k·n.

    ``layout`` is how the operands are contracted, as in the backward pass:
    ``"nn"``: ``a[m,k] @ b[k,n]`` (forward), ``"tn"``: ``a[k,m]ᵀ @ b[k,n]`` (weight gradient,
    contracting the batch axis), ``"nt"``: ``a[m,k] @ b[n,k]ᵀ`` (input gradient ``g Wᵀ``).
    """
    out = []
    for index, (name, fan_in, fan_out) in enumerate(baseline.LAYERS):
        out.append({"name": f"{name} forward", "mkn": (batch, fan_in, fan_out), "layout": "nn"})
        out.append({"name": f"{name} dW", "mkn": (fan_in, batch, fan_out), "layout": "tn"})
        if index > 0:  # the first layer's input is the data: no input gradient
            out.append({"name": f"{name} dx", "mkn": (batch, fan_out, fan_in), "layout": "nt"})
    for row in out:
        m, k, n = row["mkn"]
        row["flops"] = 2 * m * k * n
    return out


def _operands(key: jax.Array, mkn: tuple[int, int, int], layout: str) -> tuple[jax.Array, jax.Array]:
    m, k, n = mkn
    shape_a = {"nn": (m, k), "tn": (k, m), "nt": (m, k)}[layout]
    shape_b = {"nn": (k, n), "tn": (k, n), "nt": (n, k)}[layout]
    key_a, key_b = jax.random.split(key)
    return (jax.random.normal(key_a, shape_a, jnp.float32), jax.random.normal(key_b, shape_b, jnp.float32))


_DIMS = {"nn": (((1,), (0,)), ((), ())), "tn": (((0,), (0,)), ((), ())), "nt": (((1,), (1,)), ((), ()))}


def _contract(a: jax.Array, b: jax.Array, layout: str) -> jax.Array:
    return jax.lax.dot_general(a, b, _DIMS[layout], precision=jax.lax.Precision.DEFAULT)


class MatmulProbe:
    """Jitted matmuls at the step's shapes (all 11 in one call, and each alone) and a square one."""

    def __init__(self, batch: int, calls: int):
        self.rows = step_matmuls(batch)
        self.calls = calls
        keys = jax.random.split(jax.random.key(1), len(self.rows) + 1)
        self.operands = [_operands(k, r["mkn"], r["layout"]) for k, r in zip(keys, self.rows)]
        layouts = [r["layout"] for r in self.rows]
        self.all_fn = jax.jit(lambda ops: [_contract(a, b, l) for (a, b), l in zip(ops, layouts)])
        self.one_fns = [jax.jit(lambda a, b, l=l: _contract(a, b, l)) for l in layouts]
        self.square = _operands(keys[-1], (SQUARE, SQUARE, SQUARE), "nn")
        self.square_fn = jax.jit(lambda a, b: a @ b)
        self.total_flops = sum(r["flops"] for r in self.rows)

    def warm_up(self) -> None:
        jax.block_until_ready(self.all_fn(self.operands))
        for fn, (a, b) in zip(self.one_fns, self.operands):
            jax.block_until_ready(fn(a, b))
        jax.block_until_ready(self.square_fn(*self.square))

    def _rate(self, fn: Callable[[], Any], flops: int, calls: int) -> float:
        began = time.perf_counter()
        for _ in range(calls):
            out = fn()
        jax.block_until_ready(out)
        return flops * calls / (time.perf_counter() - began) / 1e9

    def measure(self) -> dict[str, Any]:
        """GFLOP/s of the step's matmul set, of each shape alone, and of the square matmul."""
        step_set = self._rate(lambda: self.all_fn(self.operands), self.total_flops, self.calls)
        each = [
            self._rate(lambda fn=fn, a=a, b=b: fn(a, b), r["flops"], self.calls)
            for fn, (a, b), r in zip(self.one_fns, self.operands, self.rows)
        ]
        square = self._rate(lambda: self.square_fn(*self.square), 2 * SQUARE**3, 2)
        return {"step_set": step_set, "each": each, "square": square}


def compiled_stats(jitted: Any, *args: Any) -> dict[str, Any]:
    """XLA's FLOP and bytes-accessed counts (``cost_analysis()``, None when the backend gives none)
    and the number of ``dot`` instructions in the optimized HLO of ``jitted`` at ``args``."""
    compiled = jitted.lower(*args).compile()
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 (a missing cost model is not an error of the benchmark)
        cost = None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    flops = float(cost["flops"]) if cost and "flops" in cost else None
    moved = float(cost["bytes accessed"]) if cost and "bytes accessed" in cost else None
    dots = len(re.findall(r"\bdot\(", compiled.as_text()))
    return {"flops": flops, "bytes": moved, "dots": dots}


# ----------------------------------------------------------------------------------------------
# Variants


class Variant:
    """One way of running ``steps`` training steps: a step function, its state and its batches."""

    def __init__(self, name: str, label: str, step: Callable, state: Any, batches: list[Any]):
        self.name, self.label, self.step, self.state, self.batches = name, label, step, state, batches
        self.seconds: list[float] = []
        self.last_loss: float = float("nan")

    def run(self) -> float:
        state, out = self.state, None
        began = time.perf_counter()
        for batch in self.batches:
            state, out = self.step(state, batch)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - began
        self.state = state
        loss = out["elbo/loss"] if isinstance(out, dict) else out
        self.last_loss = float(np.asarray(loss).reshape(-1)[-1])
        return elapsed


def plain_step_around(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """The baseline's step (fold_in key, value_and_grad, one optax update, loss out) around ``loss_fn``."""

    def update(state: tuple, x: jax.Array) -> tuple[tuple, jax.Array]:
        params, opt_state, step, key_data = state
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), step)
        loss, grads = jax.value_and_grad(loss_fn)(params, key, x)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, step + 1, key_data), loss

    return jax.jit(update, donate_argnums=0)


def build_variants(x: np.ndarray, k: int, order: str) -> tuple[list[Variant], dict[str, Any]]:
    """The variants over the host batches ``x`` of shape ``[steps, B, D]``."""
    steps, batch, dim = x.shape
    model = vae_model(dim, 20, hidden=(400,), activation="relu", likelihood="bernoulli")
    algorithm = vae(model, kl="analytic")
    optimizer = make_optimizer("adam", LEARNING_RATE)
    key = jax.random.key(0)
    variants: list[Variant] = []
    extra: dict[str, Any] = {}

    def trainer_variant(name: str, algo: Algorithm, per_call: int) -> Variant:
        trainer = make_trainer(algo, optimizer, steps_per_call=per_call)
        sharding = parallel.batch_sharding(trainer.mesh, stacked=per_call > 1)  # one step per call: [B, D]
        batches = [{"x": jax.device_put(x[i] if per_call == 1 else x[i: i + per_call], sharding)}
                   for i in range(0, steps, per_call)]
        return Variant(name, VARIANTS[name].format(k=k), trainer.step, trainer.init(key), batches)

    def plain_variant(name: str, per_call: int) -> Variant:
        if per_call == 1:
            step, batches = baseline.make_step(optimizer), [jax.device_put(x[i]) for i in range(steps)]
        else:
            step = baseline.make_scan_step(optimizer)
            batches = [jax.device_put(x[i: i + per_call]) for i in range(0, steps, per_call)]
        return Variant(name, VARIANTS[name].format(k=k), step, baseline.init(key, optimizer), batches)

    for name in order:
        if name == "a":
            variants.append(trainer_variant("a", algorithm, 1))
        elif name == "b":
            variants.append(trainer_variant("b", algorithm, k))
        elif name == "c":
            variants.append(plain_variant("c", 1))
        elif name == "d":
            variants.append(plain_variant("d", k))
        elif name == "e":
            unigen_loss = algorithm.phases[0].loss
            params = algorithm.init(key)
            state = (params, optimizer.init(params), jnp.zeros((), jnp.int32), jax.random.key_data(key))
            step = plain_step_around(lambda p, kk, xb: unigen_loss(p, kk, {"x": xb})[0], optimizer)
            variants.append(Variant("e", VARIANTS["e"], step, state, [jax.device_put(x[i]) for i in range(steps)]))
        elif name == "f":
            plain = Algorithm(
                init=lambda kk: {"vae": baseline.init_params(kk)},
                phases=(Phase("elbo", "vae", lambda p, kk, b: (baseline.negative_elbo(p["vae"], kk, b["x"]), {})),),
            )
            variants.append(trainer_variant("f", plain, 1))
        elif name == "h":
            hand = algorithm._replace(phases=(
                Phase("elbo", ("theta", "eta"), reference_loss(model, kl="analytic")),
            ))
            variants.append(trainer_variant("h", hand, 1))
    for variant in variants:
        if variant.name in ("a", "c"):
            extra[variant.name] = compiled_stats(variant.step, variant.state, variant.batches[0])
    return variants, extra


# ----------------------------------------------------------------------------------------------
# Statistics and report


def summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.percentile(array, [25, 50, 75])
    return {"median": float(median), "min": float(array.min()), "max": float(array.max()),
            "q1": float(q1), "q3": float(q3), "n": int(array.size)}


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__)
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats per variant (>= 5 recommended)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per repeat (a multiple of --steps-per-call)")
    parser.add_argument("--steps-per-call", type=int, default=50, help="K for variants b and d")
    parser.add_argument("--data-dir", type=Path, default=common.TFDS_DIR, help="TFDS data directory")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    parser.add_argument("--variants", default="".join(VARIANTS), help="which variants to run (a subset of abcdefh)")
    parser.add_argument("--matmul-calls", type=int, default=20, help="calls per matmul rate measurement")
    args = parser.parse_args(argv)
    k = args.steps_per_call
    if args.repeats < 1 or args.steps < 1 or k < 1 or args.steps % k:
        parser.error(f"--steps ({args.steps}) must be a positive multiple of --steps-per-call ({k})")
    if not set(args.variants) <= set(VARIANTS):
        parser.error(f"--variants: expected letters from {''.join(VARIANTS)}, got {args.variants!r}")

    load_before = os.getloadavg()
    began = time.perf_counter()
    dataset = data.load("tfds:binarized_mnist", "train", data_dir=str(args.data_dir))
    x = data.Batches(dataset, BATCH, seed=0).stack(0, args.steps)["x"]  # [steps, B, 784]
    print(f"data: {dataset.name} train {tuple(dataset.x.shape)}, {args.steps} batches of {BATCH}; "
          f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}, "
          f"{os.cpu_count()} cores, load average {load_before[0]:.2f}")

    variants, extra = build_variants(x, k, "".join(v for v in VARIANTS if v in args.variants))
    probe = MatmulProbe(BATCH, args.matmul_calls)
    compile_began = time.perf_counter()
    for variant in variants:  # compile and warm up: one untimed pass each
        variant.run()
    probe.warm_up()
    warm_seconds = time.perf_counter() - compile_began

    rates: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            variant.seconds.append(variant.run())
        rates.append(probe.measure())

    images = args.steps * BATCH
    results = {}
    for variant in variants:
        per_repeat = [images / s for s in variant.seconds]
        results[variant.name] = {"label": variant.label, "images_per_second": per_repeat,
                                 "seconds": variant.seconds, **summary(per_repeat),
                                 "final_loss": variant.last_loss}

    matmuls = step_matmuls(BATCH)
    flops_per_step = sum(r["flops"] for r in matmuls)
    flops_per_image = flops_per_step / BATCH
    step_set_rates = [r["step_set"] for r in rates]
    square_rates = [r["square"] for r in rates]
    floor_per_repeat = [g * 1e9 / flops_per_image for g in step_set_rates]
    floor = summary(floor_per_repeat)
    for row, index in zip(matmuls, range(len(matmuls))):
        row["gflops_per_second"] = summary([r["each"][index] for r in rates])

    def paired_ratio(top: str, bottom: str) -> dict[str, float] | None:
        if top not in results or bottom not in results:
            return None
        return summary([t / b for t, b in zip(results[top]["images_per_second"], results[bottom]["images_per_second"])])

    ratios = {f"{t}/{b}": paired_ratio(t, b) for t, b in
              [("a", "c"), ("a", "h"), ("b", "d"), ("e", "c"), ("f", "c"), ("a", "f"), ("a", "e"), ("b", "a"), ("d", "c")]}
    ratios = {name: r for name, r in ratios.items() if r is not None}
    floor_fraction = {name: summary([v / f for v, f in zip(results[name]["images_per_second"], floor_per_repeat)])
                      for name in results}

    # ------------------------------------------------------------------ print
    common.print_header(f"\nVAE 784-400-20 training throughput, batch {BATCH}, Adam {LEARNING_RATE:g}; "
                        f"{args.repeats} repeats x {args.steps} steps; compile+warm-up {warm_seconds:.1f} s",
                        f"{'variant':<40} {'images/s':>9} {'min':>9} {'max':>9} {'IQR':>15} {'vs c':>6} "
                        f"{'of floor':>8} {'last loss':>9}")
    for name, r in results.items():
        vs_c = paired_ratio(name, "c")
        vs_c_text = f"{vs_c['median']:.3f}" if vs_c else ""
        iqr = fmt(r["q1"]) + "-" + fmt(r["q3"])
        print(f"({name}) {r['label']:<36} {fmt(r['median']):>9} {fmt(r['min']):>9} {fmt(r['max']):>9} "
              f"{iqr:>15} {vs_c_text:>6} "
              f"{floor_fraction[name]['median']:>8.1%} {r['final_loss']:>9.2f}")
    floor_iqr = fmt(floor["q1"]) + "-" + fmt(floor["q3"])
    print(f"{'FLOP floor (step-shape matmuls)':<40} {fmt(floor['median']):>9} {fmt(floor['min']):>9} "
          f"{fmt(floor['max']):>9} {floor_iqr:>15}")

    print(f"\nratios (median of per-repeat ratios [min, max]):")
    for name, r in ratios.items():
        print(f"  {name:<5} {r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}]")

    step_set = summary(step_set_rates)
    square = summary(square_rates)
    print(f"\nFLOPs: rule 2·m·k·n per matmul; forward + backward = 3x forward for every weight matmul "
          f"except the first encoder layer (2x: no gradient w.r.t. the data).")
    print(f"  analytic matmul FLOPs per step {flops_per_step / 1e6:.1f} M = {flops_per_image / 1e6:.3f} M per image "
          f"({len(matmuls)} matmuls)")
    for name, stats in extra.items():
        flops = "n/a" if stats["flops"] is None else (
            f"{stats['flops'] / 1e6:.1f} M per step ({stats['flops'] / flops_per_step:.3f} x analytic matmul FLOPs)")
        moved = "n/a" if stats["bytes"] is None else f"{stats['bytes'] / 1e6:.2f} MB"
        print(f"  compiled ({name}) step: {stats['dots']} dot instructions; XLA cost_analysis {flops}, {moved} accessed")
    print(f"  matmul rate at the step's 11 shapes (one jitted call): {step_set['median']:.1f} GFLOP/s "
          f"[{step_set['min']:.1f}, {step_set['max']:.1f}]")
    print(f"  {SQUARE}x{SQUARE} @ {SQUARE}x{SQUARE} float32: {square['median']:.1f} GFLOP/s "
          f"[{square['min']:.1f}, {square['max']:.1f}]")
    print("  per shape, each alone in its own jitted call (median GFLOP/s; the small ones are dispatch-bound):")
    for row in matmuls:
        m, kk, n = row["mkn"]
        print(f"    {row['name']:<24} {row['layout']} {m:>4}x{kk:<4}x{n:<4} {row['gflops_per_second']['median']:7.1f}")

    targets = {}
    if "a/c" in ratios:
        targets["a >= 0.95 c"] = {"measured": ratios["a/c"]["median"], "target": 0.95,
                                  "met": ratios["a/c"]["median"] >= 0.95}
    if "a/h" in ratios:
        targets["a >= 0.97 h"] = {"measured": ratios["a/h"]["median"], "target": 0.97,
                                  "met": ratios["a/h"]["median"] >= 0.97}
    if "b" in results:
        targets["b >= 0.75 floor"] = {"measured": floor_fraction["b"]["median"], "target": 0.75,
                                      "met": floor_fraction["b"]["median"] >= 0.75}
    print("\ntargets:")
    for name, t in targets.items():
        print(f"  {name:<16} measured {t['measured']:.3f}  {'MET' if t['met'] else 'NOT MET'}")
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(other processes share the {os.cpu_count()} cores: timings are noisy); "
          f"total {time.perf_counter() - began:.0f} s")

    report = {
        "benchmark": "vae_throughput",
        "config": {"batch": BATCH, "architecture": "784-400-20 relu, Bernoulli decoder, analytic KL",
                   "optimizer": f"adam {LEARNING_RATE}", "repeats": args.repeats, "steps_per_repeat": args.steps,
                   "steps_per_call_b_d": k, "data": "tfds:binarized_mnist train", "matmul_calls": args.matmul_calls},
        "machine": {"jax": jax.__version__, "platform": jax.devices()[0].platform, "devices": jax.device_count(),
                    "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "baseline": "c: benchmarks/baselines/plain_jax_vae.py (make_step)",
        "variants": results,
        "ratios": ratios,
        "fraction_of_floor": floor_fraction,
        "flops": {"rule": "2*m*k*n per matmul; 3x forward for weight matmuls, 2x for the first layer (no data gradient)",
                  "matmuls": matmuls, "per_step": flops_per_step, "per_image": flops_per_image,
                  "compiled": extra},
        "matmul_gflops_per_second": {"step_shapes": step_set, "square_2048": square,
                                     "per_repeat": rates},
        "floor_images_per_second": floor,
        "targets": targets,
        "warm_up_seconds": warm_seconds,
    }
    return common.write_report(args.json, report)


if __name__ == "__main__":
    main()
