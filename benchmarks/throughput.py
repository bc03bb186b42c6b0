r"""The throughput race: unigen against the PyTorch and Flax examples VAEs and a plain-JAX step.

The question: on this machine, is unigen the fastest way to train the VAE? Every row trains the
same network, the PyTorch-examples VAE (784-400-20, ReLU, Bernoulli decoder, analytic KL, one
reparameterized draw per example), on binarized MNIST (TFDS ``binarized_mnist``, train split),
batch 128, Adam 1e-3, each with its own code for the model, the loss and the step:

* ``torch examples VAE``: ``benchmarks/baselines/torch_vae.py`` (the example's model, summed
  loss, ``torch.optim.Adam`` and loop, ``loss.item()`` every step), torch on the CPU with
  ``torch.set_num_threads(--torch-threads)`` (default 2, the machine's cores), and the same with
  1 thread for reference. ``OMP_WAIT_POLICY=PASSIVE`` is set unless given: with torch's default
  spin-waiting, 2 threads on this shared, oversubscribed machine ran at 263-386 images/s
  against 3,300-3,800 with passive waiting (standalone runs, load average 11).
* ``flax examples VAE (jit)``: ``benchmarks/baselines/flax_vae.py`` (Linen, its loss, a
  ``TrainState`` with ``optax.adam``), the step under ``jax.jit`` as a user writes it (no
  donation), the key split on the host before every step as the example's loop does; hidden
  width 400 instead of the example's 500, so the network is the same as the others'.
* ``plain JAX``: ``benchmarks/baselines/plain_jax_vae.py``, one jitted step with the state
  donated, and the same with 50 steps per call (``lax.scan``).
* ``unigen``: ``make_trainer(vae(model), adam)`` at 1 and at 50 steps per call, the real
  ``trainer.step`` (built by ``benchmarks/vae_throughput.py``, variants ``a``-``d``).
* ``gan: ...`` (unless ``--no-gan``): the GAN of ``unigen bench modes`` on grid25 (generator and
  discriminator 2-128-128-128, ReLU, non-saturating, Adam 1e-3 with b1 = 0.5, 100 points per
  step) in torch (``baselines/torch_gan.py``), plain JAX (``baselines/plain_jax_gan.py``, 1 and
  50 steps per call) and unigen's trainer (1 and 50 steps per call); "images" are points. The
  FLOP floor is the VAE's and is not applied to these rows (their 100x128x128 matmuls are far
  from any matmul-bound regime).
* ``sbn: ...`` (unless ``--no-gan``): the SBN-200 Helmholtz machine (``helmholtz_machine(784,
  (200,))``) trained by wake-sleep, Adam 1e-3, on the VAE's batches: torch
  (``baselines/torch_sbn.py``), plain JAX (``baselines/plain_jax_sbn.py``) and unigen's
  ``wake_sleep`` in its trainer, 1 and 50 steps per call; no floor either.

Timing and the floor are those of ``benchmarks/vae_throughput.py`` (imported, not repeated
here): all batches are on the device (or in torch tensors) before the clock starts, one untimed
pass per row compiles and warms up, then every repeat times ``--steps`` steps of every row in a
rotating order; the matmul rate at the step's 11 matmul shapes is measured inside every repeat
and defines that repeat's FLOP floor (3.28 MFLOP of matmuls per image: images/s at the floor =
GFLOP/s ÷ FLOPs per image). Reported: the median over repeats with its min/max and IQR, the
fraction of the floor (median of per-repeat fractions) and ratios (medians of per-repeat
ratios). For reference the same 11 matmuls are also timed in torch (its BLAS may be faster or
slower than XLA's at these shapes).

Targets (issue [10]): unigen's fused step >= 80% of the floor, >= 70% at one step per call;
>= 2.2x the PyTorch example; >= 1.5x the jitted Flax example; never below 0.97x its plain-JAX
counterpart. ``--profile`` adds rows that take the plain-JAX step apart (no optimizer update,
SGD instead of Adam, one normal draw for the batch instead of per-example keys, the forward
pass alone) and ``step_ablation.py``'s rows (the plain-JAX step plus one of unigen's features at
a time, unigen without its per-group Adam states or its metrics) so that a gap can be placed.

Run under ``nice`` on a shared machine (the load average is printed)::

    nice -n 5 python benchmarks/throughput.py --profile          # ~6-15 min on 2 shared cores
    nice -n 5 python benchmarks/throughput.py --quick --json /tmp/t.json
"""

from __future__ import annotations

import os
import platform
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
from benchmarks import step_ablation  # noqa: E402
from benchmarks import vae_throughput as vt  # noqa: E402
from benchmarks.baselines import flax_vae  # noqa: E402
from benchmarks.baselines import plain_jax_vae  # noqa: E402
from unigen import data  # noqa: E402

DEFAULT_JSON = common.RESULTS / "throughput.json"
PER_CALL = 50
GAN_BATCH = 100
MATMUL_CALLS = 100  # calls per measurement of the matmul rate (one per repeat)
# vae_throughput's variant letter -> the race's row name
UNIGEN_ROWS = {"a": "unigen, 1 step/call", "b": f"unigen, {PER_CALL} steps/call",
               "c": "plain JAX, 1 step/call", "d": f"plain JAX, {PER_CALL} steps/call"}
TORCH = "torch examples VAE"
TORCH_ONE = "torch examples VAE, 1 thread"
FLAX = "flax examples VAE (jit)"


class Row:
    """A named way to run one repeat's steps: ``run()`` does them and returns the seconds."""

    def __init__(self, name: str, run: Callable[[], float]):
        self.name, self.run = name, run
        self.seconds: list[float] = []


def step_row(name: str, step: Callable, state: Any, batches: list[Any]) -> Row:
    """A row that runs ``state, out = step(state, batch)`` over ``batches`` (a JAX step)."""
    box = {"state": state}

    def run() -> float:
        state, out = box["state"], None
        began = time.perf_counter()
        for batch in batches:
            state, out = step(state, batch)
        jax.block_until_ready((state, out))
        box["state"] = state
        return time.perf_counter() - began

    return Row(name, run)


def jax_rows(x: np.ndarray) -> tuple[list[Row], dict[str, Any]]:
    """unigen's and plain JAX's rows, and XLA's count of FLOPs and dots in their one-step programs."""
    variants, compiled = vt.build_variants(x, PER_CALL, "".join(UNIGEN_ROWS))
    return [Row(UNIGEN_ROWS[v.name], v.run) for v in variants], {UNIGEN_ROWS[k]: v for k, v in compiled.items()}


def flax_row(x: np.ndarray) -> Row:
    step = flax_vae.make_step()
    batches = [jax.device_put(batch) for batch in x]
    box = {"state": flax_vae.create_state(jax.random.key(0), hidden=plain_jax_vae.HIDDEN),
           "rng": jax.random.key(1)}

    def run() -> float:
        state, rng = box["state"], box["rng"]
        began = time.perf_counter()
        for batch in batches:
            rng, key = jax.random.split(rng)
            state = step(state, batch, key)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - began
        box["state"], box["rng"] = state, rng
        return elapsed

    return Row(FLAX, run)


def torch_row(x: np.ndarray, threads: int, name: str) -> Row:
    import torch

    from benchmarks.baselines import torch_vae

    model, optimizer = torch_vae.build(seed=0)
    batches = [torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)) for batch in x]

    def run() -> float:
        torch.set_num_threads(threads)  # a process-wide setting: set before every repeat
        began = time.perf_counter()
        for batch in batches:
            torch_vae.train_step(model, optimizer, batch)
        return time.perf_counter() - began

    return Row(name, run)


def torch_matmul_rate(batch: int, calls: int) -> float:
    """GFLOP/s of torch on the step's 11 matmuls (same shapes and contraction layouts)."""
    import torch

    rows = vt.step_matmuls(batch)
    generator = torch.Generator().manual_seed(1)
    ops = []
    for row in rows:
        m, k, n = row["mkn"]
        a_shape = {"nn": (m, k), "tn": (k, m), "nt": (m, k)}[row["layout"]]
        b_shape = {"nn": (k, n), "tn": (k, n), "nt": (n, k)}[row["layout"]]
        ops.append((torch.randn(a_shape, generator=generator), torch.randn(b_shape, generator=generator), row["layout"]))

    def once() -> None:
        for a, b, layout in ops:
            (a.T @ b) if layout == "tn" else (a @ b.T) if layout == "nt" else (a @ b)

    once()
    began = time.perf_counter()
    for _ in range(calls):
        once()
    return sum(r["flops"] for r in rows) * calls / (time.perf_counter() - began) / 1e9


# ----------------------------------------------------------------------------------------------
# --profile: the plain-JAX step taken apart


def profile_rows(x: np.ndarray) -> list[Row]:
    """Plain-JAX steps with one part removed or changed, to place where the time goes."""
    adam = optax.adam(vt.LEARNING_RATE)
    sgd = optax.sgd(vt.LEARNING_RATE)
    batches = [jax.device_put(batch) for batch in x]

    def one_draw_loss(params, key, xb):  # the baseline's loss with one normal draw for the batch
        epsilon = jax.random.normal(key, (xb.shape[0], plain_jax_vae.LATENT_DIM), jnp.float32)
        reconstruction, kl = plain_jax_vae.elbo_terms(params, epsilon, xb)
        return jnp.mean(kl - reconstruction)

    def stepper(loss_fn, optimizer, update=True):
        def step(state, xb):
            key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
            loss, grads = jax.value_and_grad(loss_fn)(state.params, key, xb)
            if not update:  # gradients computed and kept alive, parameters unchanged
                params = jax.tree.map(lambda p, g: p + 0.0 * g, state.params, grads)
                return state._replace(params=params, step=state.step + 1), loss
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            return plain_jax_vae.State(optax.apply_updates(state.params, updates), opt_state,
                                       state.step + 1, state.key), loss

        return jax.jit(step, donate_argnums=0)

    def forward_only(state, xb):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        return state._replace(step=state.step + 1), plain_jax_vae.negative_elbo(state.params, key, xb)

    def row(name, step, optimizer):
        return step_row(name, step, plain_jax_vae.init(jax.random.key(0), optimizer), batches)

    # step_ablation.py's rows: the baseline plus unigen's features one at a time, unigen without some
    ablation = [step_row(f"profile: {name}", step, state, [put(b) for b in x])
                for name, (step, state, put) in step_ablation.programs(1).items() if name not in ("plain", "unigen")]
    return ablation + [
        row("profile: without the Adam update", stepper(plain_jax_vae.negative_elbo, adam, update=False), adam),
        row("profile: SGD in place of Adam", stepper(plain_jax_vae.negative_elbo, sgd), sgd),
        row("profile: one draw, not per-example keys", stepper(one_draw_loss, adam), adam),
        row("profile: forward pass only", jax.jit(forward_only, donate_argnums=0), adam),
    ]


# ----------------------------------------------------------------------------------------------
# The GAN on grid25 and the SBN with wake-sleep


def baseline_rows(prefix: str, x: np.ndarray, torch_networks: tuple, torch_step: Callable, plain: Any,
                  adam: optax.GradientTransformation, algorithm: Any, threads: int) -> list[Row]:
    """``prefix: torch``, ``plain JAX`` and ``unigen`` rows (JAX ones at 1 and 50 steps per call)
    training on the host batches ``x[steps, B, D]``; ``plain`` is a ``baselines/plain_jax_*`` module."""
    import torch

    from unigen.training import make_trainer, parallel

    steps = x.shape[0]
    torch_batches = [torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)) for batch in x]

    def run_torch() -> float:
        torch.set_num_threads(threads)
        began = time.perf_counter()
        for batch in torch_batches:
            torch_step(*torch_networks, batch)
        return time.perf_counter() - began

    rows = [Row(f"{prefix}: torch", run_torch),
            step_row(f"{prefix}: plain JAX, 1 step/call", plain.make_step(adam), plain.init(jax.random.key(0), adam),
                     [jax.device_put(b) for b in x]),
            step_row(f"{prefix}: plain JAX, {PER_CALL} steps/call", plain.make_scan_step(adam),
                     plain.init(jax.random.key(0), adam),
                     [jax.device_put(x[i: i + PER_CALL]) for i in range(0, steps, PER_CALL)])]
    for per_call in (1, PER_CALL):
        trainer = make_trainer(algorithm, adam, steps_per_call=per_call)
        stacked = per_call > 1  # one step per call takes [B, D], K steps [K, B, D]
        sharding = parallel.batch_sharding(trainer.mesh, stacked=stacked)
        batches = [{"x": jax.device_put(x[i: i + per_call] if stacked else x[i], sharding)}
                   for i in range(0, steps, per_call)]
        rows.append(step_row(f"{prefix}: unigen, {per_call} step{'s' if per_call > 1 else ''}/call", trainer.step,
                             trainer.init(jax.random.key(0)), batches))
    return rows


def gan_rows(steps: int, threads: int) -> list[Row]:
    """The GAN of ``unigen bench modes`` (2-128-128-128 MLPs, ReLU, non-saturating, Adam 1e-3 with
    b1 = 0.5, 100 points per step) on grid25: torch, plain JAX and unigen's trainer."""
    from benchmarks.baselines import plain_jax_gan, torch_gan
    from unigen import bench_modes

    x = data.Batches(data.load("grid25", "train"), GAN_BATCH, seed=0).stack(0, steps)["x"]  # [steps, 100, 2]
    _, algorithm = bench_modes.build("gan", 25)
    return baseline_rows("gan", x, torch_gan.build(seed=0), torch_gan.train_step, plain_jax_gan,
                         optax.adam(1e-3, b1=0.5), algorithm, threads)


def sbn_rows(x: np.ndarray, threads: int) -> list[Row]:
    """The SBN-200 Helmholtz machine trained by wake-sleep (Adam 1e-3) on the VAE's batches."""
    from benchmarks.baselines import plain_jax_sbn, torch_sbn
    from unigen.algorithms.wake_sleep import wake_sleep
    from unigen.models.helmholtz import helmholtz_machine

    algorithm = wake_sleep(helmholtz_machine(plain_jax_sbn.DATA_DIM, (plain_jax_sbn.HIDDEN,)))
    return baseline_rows("sbn", x, torch_sbn.build(seed=0), torch_sbn.train_step, plain_jax_sbn,
                         optax.adam(vt.LEARNING_RATE), algorithm, threads)


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    # torch's OpenMP threads spin while they wait; on a shared, oversubscribed machine that makes
    # 2 threads ~10x slower than 1 (measured here: 263-386 vs 3,300-3,800 images/s). Passive
    # waiting gives torch its fair speed; it must be set before torch loads OpenMP. XLA's CPU
    # thread pool does not use OpenMP. A value set by the user is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = common.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="7 repeats of 50 steps (default: 10 of 100)")
    parser.add_argument("--repeats", type=int, help="timed repeats per row (at least 7)")
    parser.add_argument("--steps", type=int, help=f"steps per repeat (a multiple of {PER_CALL})")
    parser.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--profile", action="store_true", help="add the plain-JAX ablation rows")
    parser.add_argument("--no-gan", action="store_true", help="leave out the GAN and SBN rows")
    parser.add_argument("--data-dir", type=Path, default=common.TFDS_DIR, help="TFDS data directory")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = parser.parse_args(argv)
    repeats = args.repeats or (7 if args.quick else 10)
    steps = args.steps or (PER_CALL if args.quick else 2 * PER_CALL)
    if repeats < 7:
        parser.error(f"--repeats: expected at least 7, got {repeats}")
    if steps < PER_CALL or steps % PER_CALL:
        parser.error(f"--steps: expected a positive multiple of {PER_CALL}, got {steps}")

    load_before = os.getloadavg()
    began = time.perf_counter()
    dataset = data.load("tfds:binarized_mnist", "train", data_dir=str(args.data_dir))
    x = data.Batches(dataset, vt.BATCH, seed=0).stack(0, steps)["x"]  # [steps, B, 784]
    print(f"data: {dataset.name} train {tuple(dataset.x.shape)}, {steps} batches of {vt.BATCH}; "
          f"jax {jax.__version__} on {jax.default_backend()} x{jax.device_count()}, {os.cpu_count()} cores, "
          f"nice {os.nice(0)}, load average {load_before[0]:.2f}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")

    unigen_and_plain, compiled = jax_rows(x)
    rows = [torch_row(x, args.torch_threads, TORCH), torch_row(x, 1, TORCH_ONE), flax_row(x), *unigen_and_plain]
    if args.profile:
        rows += profile_rows(x)
    if not args.no_gan:
        rows += gan_rows(steps, args.torch_threads) + sbn_rows(x, args.torch_threads)
    probe = vt.MatmulProbe(vt.BATCH, MATMUL_CALLS)
    warm_began = time.perf_counter()
    for row in rows:
        row.run()
    probe.warm_up()
    warm_seconds = time.perf_counter() - warm_began

    rates = []
    for repeat in range(repeats):
        shift = repeat % len(rows)
        for row in rows[shift:] + rows[:shift]:
            row.seconds.append(row.run())
        rates.append(probe.measure()["step_set"])
    torch_gflops = torch_matmul_rate(vt.BATCH, MATMUL_CALLS)

    flops_per_image = sum(r["flops"] for r in vt.step_matmuls(vt.BATCH)) / vt.BATCH
    floor_per_repeat = [g * 1e9 / flops_per_image for g in rates]
    def is_other(name: str) -> bool:  # a GAN or SBN row
        return name.startswith(("gan:", "sbn:"))

    per_repeat = {row.name: [steps * (GAN_BATCH if row.name.startswith("gan:") else vt.BATCH) / s
                             for s in row.seconds] for row in rows}
    out_rows = []
    for row in rows:
        stats = vt.summary(per_repeat[row.name])
        # the floor is the VAE step's matmuls: it is not the GAN's or the SBN's
        fraction = None if is_other(row.name) else vt.summary(
            [v / f for v, f in zip(per_repeat[row.name], floor_per_repeat)])["median"]
        out_rows.append({"name": row.name, "images_per_second": stats["median"],
                         "spread": {k: stats[k] for k in ("min", "max", "q1", "q3")},
                         "fraction_of_floor": fraction, "per_repeat": per_repeat[row.name]})

    def ratio(top: str, bottom: str) -> dict[str, float]:
        return vt.summary([t / b for t, b in zip(per_repeat[top], per_repeat[bottom])])

    fused, single = UNIGEN_ROWS["b"], UNIGEN_ROWS["a"]
    ratios = {f"{top} / {bottom}": ratio(top, bottom) for top, bottom in [
        (fused, TORCH), (single, TORCH), (fused, TORCH_ONE), (fused, FLAX), (single, FLAX),
        (single, UNIGEN_ROWS["c"]), (fused, UNIGEN_ROWS["d"]), (UNIGEN_ROWS["d"], FLAX), (FLAX, TORCH)]}
    for prefix in ("gan", "sbn"):
        fused_row, single_row = f"{prefix}: unigen, {PER_CALL} steps/call", f"{prefix}: unigen, 1 step/call"
        if fused_row in per_repeat:
            ratios.update({f"{top} / {bottom}": ratio(top, bottom) for top, bottom in [
                (fused_row, f"{prefix}: torch"), (single_row, f"{prefix}: torch"),
                (single_row, f"{prefix}: plain JAX, 1 step/call"),
                (fused_row, f"{prefix}: plain JAX, {PER_CALL} steps/call")]})
    # --profile: the share of the plain-JAX step's time that the ablated part takes,
    # 1 - (time without it) / (time with it), per repeat.
    shares = {row.name: vt.summary([1 - full / part for full, part in zip(per_repeat[UNIGEN_ROWS["c"]],
                                                                          per_repeat[row.name])])
              for row in rows if row.name.startswith("profile:")}
    fraction = {r["name"]: r["fraction_of_floor"] for r in out_rows}
    targets = {
        "unigen fused >= 0.80 of floor": (fraction[fused], 0.80),
        "unigen 1 step/call >= 0.70 of floor": (fraction[single], 0.70),
        "unigen fused >= 2.2x torch": (ratios[f"{fused} / {TORCH}"]["median"], 2.2),
        "unigen fused >= 1.5x flax (jit)": (ratios[f"{fused} / {FLAX}"]["median"], 1.5),
        "unigen 1 step/call >= 0.97x plain JAX 1 step/call": (ratios[f"{single} / {UNIGEN_ROWS['c']}"]["median"], 0.97),
        "unigen fused >= 0.97x plain JAX fused": (ratios[f"{fused} / {UNIGEN_ROWS['d']}"]["median"], 0.97),
    }
    floor = vt.summary(floor_per_repeat)
    gflops = vt.summary(rates)

    print(f"\nVAE 784-400-20, batch {vt.BATCH}, Adam {vt.LEARNING_RATE:g}; {repeats} repeats x {steps} steps, "
          f"rotating order; compile + warm-up {warm_seconds:.1f} s")
    header = f"{'row':<36} {'images/s':>9} {'min':>8} {'max':>8} {'IQR':>15} {'of floor':>8}"
    print(header + "\n" + "-" * len(header))
    for r in out_rows:
        s = r["spread"]
        print(f"{r['name']:<36} {vt.fmt(r['images_per_second']):>9} {vt.fmt(s['min']):>8} {vt.fmt(s['max']):>8} "
              f"{vt.fmt(s['q1']) + '-' + vt.fmt(s['q3']):>15} "
              f"{'' if r['fraction_of_floor'] is None else format(r['fraction_of_floor'], '.1%'):>8}")
    print(f"{'FLOP floor (matmuls at step shapes)':<36} {vt.fmt(floor['median']):>9} {vt.fmt(floor['min']):>8} "
          f"{vt.fmt(floor['max']):>8} {vt.fmt(floor['q1']) + '-' + vt.fmt(floor['q3']):>15}")
    print(f"\nfloor: XLA matmuls at the step's 11 shapes {gflops['median']:.1f} GFLOP/s "
          f"[{gflops['min']:.1f}, {gflops['max']:.1f}], {flops_per_image / 1e6:.3f} MFLOP per image; "
          f"torch at the same shapes (after the repeats): {torch_gflops:.1f} GFLOP/s")
    for name, stats in compiled.items():
        print(f"  compiled {name}: {stats['dots']} dot instructions, XLA cost_analysis "
              f"{'n/a' if stats['flops'] is None else format(stats['flops'] / 1e6, '.1f') + ' MFLOP'} and "
              f"{'n/a' if stats['bytes'] is None else format(stats['bytes'] / 1e6, '.2f') + ' MB accessed'} per step")
    print("\nratios (median of per-repeat ratios [min, max]):")
    for name, r in ratios.items():
        print(f"  {name:<58} {r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}]")
    if shares:
        print("\nprofile: 1 - plain/row images/s (median [min, max]): the share of the plain-JAX step's time "
              "taken by what a row leaves out; negative: what a row adds (+feature) costs, as a share")
        for name, r in shares.items():
            print(f"  {name:<40} {r['median']:6.1%} [{r['min']:.1%}, {r['max']:.1%}]")
    print("\ntargets:")
    for name, (measured, target) in targets.items():
        print(f"  {name:<52} {measured:.3f}  {'MET' if measured >= target else 'NOT MET'}")
    load_after = common.print_load(load_before, began, f" ({os.cpu_count()} cores shared with other work)")

    report = {
        "benchmark": "throughput",
        "floor_gflops": gflops["median"],
        "floor_images_per_second": floor,
        "rows": out_rows,
        "ratios": ratios,
        "profile_shares": shares,
        "targets": {name: {"measured": m, "target": t, "met": m >= t} for name, (m, t) in targets.items()},
        "torch_matmul_gflops": torch_gflops,
        "compiled_one_step": compiled,
        "config": {"batch": vt.BATCH, "architecture": "784-400-20 relu, Bernoulli decoder, analytic KL",
                   "optimizer": f"adam {vt.LEARNING_RATE}", "repeats": repeats, "steps_per_repeat": steps,
                   "steps_per_call": PER_CALL, "torch_threads": args.torch_threads,
                   "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "gan_batch": GAN_BATCH,
                   "data": "tfds:binarized_mnist train", "flops_per_image": flops_per_image},
        "machine": {"jax": jax.__version__, "platform": jax.default_backend(), "devices": jax.device_count(),
                    "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "nice": os.nice(0), "load_average_before": load_before, "load_average_after": load_after},
        "warm_up_seconds": warm_seconds,
    }
    try:
        import torch

        report["machine"]["torch"] = torch.__version__
    except ImportError:
        pass
    return common.write_report(args.json, report)


if __name__ == "__main__":
    main()
