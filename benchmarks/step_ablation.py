r"""Where unigen's VAE step loses to its plain-JAX baseline: the baseline plus one unigen feature at a time.

The question: unigen's trainer runs the same network, the same 11 matmuls and the same FLOPs as
``baselines/plain_jax_vae.py`` but was measured slower (0.91-0.94x). Which of the features that
make it general costs what? Each row is the plain-JAX step (its model code, its loss, one jit with
the state donated) with the unigen features named in the row switched on:

* ``phase``: the loss's key is the phase's, ``fold_in(fold_in(run_key, step), 0)``, not
  ``fold_in(run_key, step)`` (one more threefry hash per step);
* ``split``: example i draws from ``split(key_i, 1)[0]`` (the compiler's s-th draw of S = 1),
  not from ``key_i = split(key, B)[i]`` (one more hash per example);
* ``groups``: one Adam state per parameter group (θ: the decoder, η: the encoder), the
  checkpoint layout of unigen's trainer, not one Adam state over all parameters;
* ``metrics``: the step returns unigen's four metrics (``loss``, ``elbo``, ``kl``,
  ``reconstruction``), not the loss alone, their per-example values averaged together as
  unigen's compiler does; ``metrics apart``: one mean per metric, as the compiler did before
  (XLA then computes the reconstruction's pixel sums twice: +0.4 MB accessed per step);
* ``all``: the four together;

and unigen's own trainer (``make_trainer(vae(model), adam)``), as is and without some features:

* ``unigen -groups``: the same loss with θ and η in one parameter group (one Adam state);
* ``unigen -metrics``: the same loss returning no metrics but the loss.

Timing: all rows in one sitting, each repeat times ``--steps`` steps of every row in a rotating
order; wall seconds (``time.perf_counter``) and this process's CPU seconds
(``time.process_time``, which moves less with the other work on a shared machine). Reported:
median over repeats with min/max, and ratios to ``plain`` as medians of per-repeat ratios.
Besides the timings, XLA's counts for each program (fusions, copies, threefry loops; of the
``lax.scan``'s body when fused),
and the features alone: the batch's noise with each key derivation and Adam's update as one state
or two groups, each a jitted call timed in CPU microseconds (the least noisy number here).

On a busy machine, ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``
runs every step on one thread: its CPU seconds are then the step's work, without the thread pool's
waiting, and the ratios move least with the load.

Run::

    nice -n 5 python benchmarks/step_ablation.py                 # 1-3 min on 2 shared cores (49-156 s measured)
    nice -n 5 python benchmarks/step_ablation.py --per-call 50   # the fused (lax.scan) steps
"""

from __future__ import annotations

import os
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
from benchmarks.baselines import plain_jax_vae as plain  # noqa: E402

FEATURES = ("phase", "split", "groups", "metrics")
BATCH = 128
LEARNING_RATE = 1e-3
DEFAULT_JSON = common.RESULTS / "step_ablation.json"


def _noise(key: jax.Array, batch: int, split: bool) -> jax.Array:
    if not split:
        return plain.example_noise(key, batch)
    keys = jax.random.split(key, batch)  # example i: split(key_i, 1)[0], as unigen's compiler draws
    return jax.vmap(lambda k: jax.random.normal(jax.random.split(k, 1)[0], (plain.LATENT_DIM,)))(keys)


def _grouped(params: dict[str, jax.Array]) -> dict[str, dict[str, jax.Array]]:
    return {"theta": {k: v for k, v in params.items() if k.startswith("decoder")},
            "eta": {k: v for k, v in params.items() if k.startswith("encoder")}}


def plain_with(features: frozenset[str], optimizer: optax.GradientTransformation, per_call: int
               ) -> tuple[Callable, plain.State]:
    """The baseline's jitted step (``per_call`` steps per call) with ``features`` switched on, and
    its initial state."""
    groups = "groups" in features

    def update(state: plain.State, x: jax.Array) -> tuple[plain.State, Any]:
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        if "phase" in features:
            key = jax.random.fold_in(key, 0)

        def loss_of(params):
            flat = {**params["theta"], **params["eta"]} if groups else params
            reconstruction, kl = plain.elbo_terms(flat, _noise(key, x.shape[0], "split" in features), x)
            if "metrics apart" in features:  # one mean per metric, as unigen's compiler took them before
                loss = jnp.mean(kl - reconstruction)
                return loss, {"elbo": -loss, "kl": jnp.mean(kl), "reconstruction": jnp.mean(reconstruction)}
            if "metrics" not in features:
                return jnp.mean(kl - reconstruction), {}
            # the per-example values averaged together, as unigen's compiler does (``_batch_mean``)
            loss, kl, reconstruction = jnp.mean(jnp.stack([kl - reconstruction, kl, reconstruction], -1), 0)
            return loss, {"elbo": -loss, "kl": kl, "reconstruction": reconstruction}

        (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        params, opt_state = dict(state.params), dict(state.opt_state) if groups else state.opt_state
        for name in (("theta", "eta") if groups else (None,)):
            if name is None:
                updates, opt_state = optimizer.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
            else:
                updates, opt_state[name] = optimizer.update(grads[name], opt_state[name], params[name])
                params[name] = optax.apply_updates(params[name], updates)
        out = {"loss": loss, **aux} if aux else loss
        return plain.State(params, opt_state, state.step + 1, state.key), out

    state = plain.init(jax.random.key(0), optimizer)
    if groups:
        params = _grouped(state.params)
        state = state._replace(params=params, opt_state={g: optimizer.init(p) for g, p in params.items()})
    if per_call == 1:
        return jax.jit(update, donate_argnums=0), state
    return jax.jit(lambda s, xs: jax.lax.scan(update, s, xs), donate_argnums=0), state


def unigen_with(without: frozenset[str], optimizer: optax.GradientTransformation, per_call: int
                ) -> tuple[Callable, Any, Callable[[np.ndarray], Any]]:
    """unigen's trainer for the 784-400-20 VAE without the features ``without`` (``groups``,
    ``metrics``): its step, initial state, and how a host batch goes in."""
    from unigen.algorithms.vae import vae
    from unigen.core import Phase
    from unigen.models.vae import vae_model
    from unigen.training import make_trainer, parallel

    algorithm = vae(vae_model(plain.DATA_DIM, plain.LATENT_DIM, hidden=(plain.HIDDEN,), activation="relu"))
    loss = algorithm.phases[0].loss
    if "metrics" in without:
        loss = (lambda inner: lambda p, k, b: (inner(p, k, b)[0], {}))(loss)
    if "groups" in without:
        init = algorithm.init
        algorithm = algorithm._replace(init=lambda k: {"vae": init(k)})
        loss = (lambda inner: lambda p, k, b: inner(p["vae"], k, b))(loss)
    algorithm = algorithm._replace(phases=(Phase("elbo", ("vae",) if "groups" in without else ("theta", "eta"), loss),))
    trainer = make_trainer(algorithm, optimizer, steps_per_call=per_call)
    sharding = parallel.batch_sharding(trainer.mesh, stacked=per_call > 1)
    return trainer.step, trainer.init(jax.random.key(0)), lambda x: {"x": jax.device_put(x, sharding)}


def programs(per_call: int) -> dict[str, tuple[Callable, Any, Callable[[np.ndarray], Any]]]:
    """Every row: ``name -> (step, initial state, host batch -> step input)``."""
    adam = optax.adam(LEARNING_RATE)
    rows = {}
    for name, features in [("plain", ()), *[(f"plain +{f}", (f,)) for f in (*FEATURES, "metrics apart")],
                           ("plain +all", FEATURES)]:
        rows[name] = (*plain_with(frozenset(features), adam, per_call), jax.device_put)
    for name, without in [("unigen", ()), ("unigen -groups", ("groups",)), ("unigen -metrics", ("metrics",))]:
        rows[name] = unigen_with(frozenset(without), adam, per_call)
    return rows


def parts(calls: int = 50) -> dict[str, tuple[Callable, tuple]]:
    """The features alone, each a jitted call: the batch's noise with each key derivation, and
    Adam's update of all 652k parameters as one state and as two groups."""
    key_data, step = jax.random.key_data(jax.random.key(0)), jnp.int32(3)

    def noise(phase: bool, split: bool) -> Callable:
        def draw(key_data, step):
            key = jax.random.fold_in(jax.random.wrap_key_data(key_data), step)
            return _noise(jax.random.fold_in(key, 0) if phase else key, BATCH, split)
        return jax.jit(draw)

    adam = optax.adam(LEARNING_RATE)
    params = plain.init_params(jax.random.key(1))
    grads = jax.tree.map(jnp.ones_like, params)

    def two_groups(grads, opt_state, params):
        grads, params = _grouped(grads), _grouped(params)
        return {g: adam.update(grads[g], opt_state[g], params[g]) for g in ("theta", "eta")}

    return {"noise": (noise(False, False), (key_data, step)),
            "noise, +split": (noise(False, True), (key_data, step)),
            "noise, +phase": (noise(True, False), (key_data, step)),
            "noise, +phase +split": (noise(True, True), (key_data, step)),
            "adam, one state": (jax.jit(adam.update), (grads, adam.init(params), params)),
            "adam, two groups": (jax.jit(two_groups), (grads, {g: adam.init(p) for g, p in _grouped(params).items()},
                                                       params))}


def time_parts(repeats: int, calls: int = 50) -> dict[str, dict[str, float]]:
    """CPU microseconds per call of each of :func:`parts` (blocks of ``calls`` calls, rotating)."""
    built = parts()
    for fn, args in built.values():
        jax.block_until_ready(fn(*args))
    seconds: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(repeats):
        for name, (fn, args) in built.items():
            began = time.process_time()
            for _ in range(calls):
                out = fn(*args)
            jax.block_until_ready(out)
            seconds[name].append(1e6 * (time.process_time() - began) / calls)
    return {name: {"min": min(v), "median": float(np.median(v))} for name, v in seconds.items()}


class Timed:
    """One row's step over its batches: wall and CPU seconds per repeat."""

    def __init__(self, step: Callable, state: Any, batches: list[Any]):
        self.step, self.state, self.batches = step, state, batches
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self) -> tuple[float, float]:
        state, out = self.state, None
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in self.batches:
            state, out = self.step(state, batch)
        jax.block_until_ready((state, out))
        self.state = state
        return time.perf_counter() - wall, time.process_time() - cpu


def hlo_counts(step: Callable, state: Any, batch: Any) -> dict[str, int]:
    """Fusions, copies, while loops (threefry on CPU) and dots of the step's compiled computation
    that runs the most fusions: the entry computation for one step per call, the ``lax.scan``'s
    body for several."""
    from benchmarks.step_programs import KINDS, instructions

    hlo = step.lower(state, batch).compile().as_text()
    bodies = [instructions(m.group(1)) for m in re.finditer(r"\{\n(.*?)\n\}", hlo, re.S)]
    counts = max(bodies, key=lambda c: c.get("fusion", 0))
    return {k: counts.get(k, 0) for k in KINDS if k != "call"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__)
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per row (at least 7)")
    parser.add_argument("--steps", type=int, default=100, help="steps per repeat (a multiple of --per-call)")
    parser.add_argument("--per-call", type=int, default=1, help="steps per compiled call (1 or e.g. 50)")
    parser.add_argument("--rows", default="", help="comma-separated row names to keep (default: all)")
    parser.add_argument("--data-dir", type=Path, default=common.TFDS_DIR, help="TFDS data directory")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error(f"--repeats: expected at least 7, got {args.repeats}")
    if args.per_call < 1 or args.steps < args.per_call or args.steps % args.per_call:
        parser.error(f"--steps: expected a positive multiple of --per-call ({args.per_call}), got {args.steps}")
    from unigen import data

    load_before = os.getloadavg()
    began = time.perf_counter()
    x = data.Batches(data.load("tfds:binarized_mnist", "train", data_dir=str(args.data_dir)), BATCH,
                     seed=0).stack(0, args.steps)["x"]
    built = programs(args.per_call)
    if args.rows:
        wanted = [r.strip() for r in args.rows.split(",")]
        unknown = [r for r in wanted if r not in built]
        if unknown:
            parser.error(f"--rows: expected names from {list(built)}, got {unknown}")
        built = {name: built[name] for name in ["plain", *wanted] if name in built}
    rows, counts = {}, {}
    for name, (step, state, put) in built.items():
        shaped = x.reshape(-1, args.per_call, *x.shape[1:]) if args.per_call > 1 else x  # [calls, (K,) B, D]
        batches = [put(b) for b in shaped]
        counts[name] = hlo_counts(step, state, batches[0])
        rows[name] = Timed(step, state, batches)
        rows[name].run()  # compile and warm up
    names = list(rows)
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = rows[name].run()
            rows[name].wall.append(wall)
            rows[name].cpu.append(cpu)

    def summary(values: list[float]) -> dict[str, float]:
        array = np.asarray(values)
        return {"median": float(np.median(array)), "min": float(array.min()), "max": float(array.max())}

    report_rows = {}
    print(f"\nVAE 784-400-20, batch {BATCH}, Adam; {args.per_call} step(s) per call; {args.repeats} repeats x "
          f"{args.steps} steps, rotating order. Ratios: plain's seconds / the row's (per repeat), >1 = faster.")
    header = (f"{'row':<22} {'ms/step':>8} {'wall vs plain [min, max]':>26} {'CPU vs plain [min, max]':>26} "
              f"{'best/best wall, CPU':>20} {'fusion':>6} {'copy':>5} {'while':>5}")
    print(header + "\n" + "-" * len(header))
    for name, row in rows.items():
        wall = summary([p / r for p, r in zip(rows["plain"].wall, row.wall)])
        cpu = summary([p / r for p, r in zip(rows["plain"].cpu, row.cpu)])
        ms = summary([1e3 * s / args.steps for s in row.wall])
        # best/best: plain's fastest repeat over the row's fastest, the pair least disturbed by other work
        best = {"wall": min(rows["plain"].wall) / min(row.wall), "cpu": min(rows["plain"].cpu) / min(row.cpu)}
        report_rows[name] = {"ms_per_step": ms, "wall_ratio_to_plain": wall, "cpu_ratio_to_plain": cpu,
                             "best_over_best": best,
                             "cpu_ms_per_step": summary([1e3 * s / args.steps for s in row.cpu]), **counts[name]}
        print(f"{name:<22} {ms['median']:8.3f} {wall['median']:>8.3f} [{wall['min']:.3f}, {wall['max']:.3f}]"
              f"     {cpu['median']:>8.3f} [{cpu['min']:.3f}, {cpu['max']:.3f}]     "
              f"{best['wall']:>8.3f}, {best['cpu']:.3f}  "
              f"{counts[name]['fusion']:>6} {counts[name]['copy']:>5} {counts[name]['while']:>5}")
    part_costs = time_parts(3 * args.repeats)
    print("\nthe features alone (CPU us per jitted call, min and median over blocks of 50 calls; "
          "the differences are what a feature adds):")
    for name, cost in part_costs.items():
        print(f"  {name:<22} {cost['min']:8.1f} {cost['median']:8.1f}")
    load_after = common.print_load(load_before, began, f" ({os.cpu_count()} cores shared with other work)")
    return common.write_report(args.json, {
        "benchmark": "step_ablation", "per_call": args.per_call, "repeats": args.repeats, "steps": args.steps,
        "rows": report_rows, "parts_cpu_microseconds": part_costs, "load_average_before": load_before, "load_average_after": load_after,
        "jax": jax.__version__})


if __name__ == "__main__":
    main()
