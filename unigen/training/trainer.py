r"""The one trainer: runs any :class:`~unigen.core.Algorithm`'s phases on batches.

Each step runs the algorithm's phases in order; phase ``i`` draws its randomness from
``fold_in(fold_in(key, step), i)`` and updates only its own parameter group(s), each group with
its own optax optimizer. Two levels of API:

* :func:`make_trainer` → :class:`Trainer` ``(init, step)``: pure and jit-compiled, for people
  writing their own loops. ``step`` runs ``K = steps_per_call`` steps in one ``lax.scan`` call on
  batches stacked ``[K, B, ...]``, donating the old state, with the batch split over the
  ``"data"`` axis of a device mesh and the state replicated.
* :func:`fit`: the loop around it: stateless data (batch ``t`` is a function of the seed and
  ``t``), NaN/Inf checks naming the step and phase, ``metrics.jsonl``, orbax checkpoints every
  ``N`` steps and at the end, a progress bar on a terminal, and ``resume`` that reproduces the
  uninterrupted run exactly.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from unigen.core import Algorithm, Batch, Metrics, Params
from unigen.errors import ConfigError, TrainingDiverged
from unigen.training import parallel
from unigen.training.checkpoint import Checkpoints
from unigen.training.logging import MetricsLog, progress_bar, to_python

OPTIMIZERS: dict[str, Callable[[float], optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "adagrad": optax.adagrad,
    "adam": optax.adam,
}


def make_optimizer(name: str, learning_rate: float, *, b1: float | None = None) -> optax.GradientTransformation:
    """The optax optimizer ``name`` (``sgd``, ``adagrad`` or ``adam``; the lecture names SGD or Adagrad).

    ``b1`` is Adam's first-moment decay (None: optax's default 0.9); only ``adam`` takes it.
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {name!r}")
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError(f"learning_rate: expected a positive finite number, got {learning_rate!r}")
    if b1 is None:
        return OPTIMIZERS[name](learning_rate)
    if name != "adam":
        raise ConfigError(f"b1: expected only with the adam optimizer, got b1={b1!r} with {name!r}")
    if isinstance(b1, bool) or not isinstance(b1, (int, float)) or not 0 <= b1 < 1:
        raise ConfigError(f"b1: expected a number in [0, 1), got {b1!r}")
    return optax.adam(learning_rate, b1=b1)


class TrainState(NamedTuple):
    """Everything a step changes, as one pytree: what a checkpoint holds."""

    params: dict[str, Params]
    opt_state: dict[str, Any]
    step: jax.Array  # int32 scalar: the number of steps taken
    key: jax.Array  # uint32 key data of the run's base key (fixed)


class Trainer(NamedTuple):
    """``init(key) -> state`` and the jit-compiled ``step(state, batches) -> (state, metrics)``.

    ``batches`` leaves are stacked ``[K, B, ...]``; the metrics come back stacked ``[K]``, keyed
    ``"phase/name"``. ``update`` is the same single step, pure and not compiled, on ``[B, ...]``.
    """

    init: Callable[[jax.Array], TrainState]
    step: Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
    update: Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
    mesh: jax.sharding.Mesh
    steps_per_call: int


def _optimizers_for(
    algorithm: Algorithm,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
) -> dict[str, optax.GradientTransformation]:
    groups = algorithm.groups
    if isinstance(optimizer, Mapping):
        missing = [g for g in groups if g not in optimizer]
        if missing:
            raise ConfigError(
                f"optimizer: no optimizer for parameter group(s) {missing}; expected one for each "
                f"of {list(groups)}"
            )
        return {g: optimizer[g] for g in groups}
    return {g: optimizer for g in groups}


def make_trainer(
    algorithm: Algorithm,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    *,
    steps_per_call: int = 1,
    mesh: jax.sharding.Mesh | None = None,
) -> Trainer:
    """Builds the jit-compiled trainer of ``algorithm``.

    Args:
      algorithm: the phases to run and the ``init`` of their parameter groups.
      optimizer: one optax optimizer used for every group, or a dict ``{group: optimizer}``.
        Each group gets its own optimizer state either way.
      steps_per_call: ``K``, the number of steps fused into one compiled call with ``lax.scan``.
      mesh: the device mesh (default: all devices on a ``"data"`` axis).
    """
    if not isinstance(steps_per_call, int) or steps_per_call < 1:
        raise ConfigError(f"steps_per_call: expected a positive integer, got {steps_per_call!r}")
    if not algorithm.phases:
        raise ConfigError("algorithm: has no phases; expected at least one Phase")
    optimizers = _optimizers_for(algorithm, optimizer)
    mesh = parallel.data_mesh() if mesh is None else mesh

    def init(key: jax.Array) -> TrainState:
        init_key, run_key = jax.random.split(key)
        params = dict(algorithm.init(init_key))
        missing = [g for g in algorithm.groups if g not in params]
        if missing:
            raise ConfigError(
                f"algorithm.init: returned groups {sorted(params)}, but the phases update {missing}"
            )
        opt_state = {g: optimizers[g].init(params[g]) for g in algorithm.groups}
        state = TrainState(params, opt_state, jnp.zeros((), jnp.int32), jax.random.key_data(run_key))
        return jax.device_put(state, parallel.replicated(mesh))

    def update(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        step_key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        params, opt_state = dict(state.params), dict(state.opt_state)
        metrics: Metrics = {}
        for index, phase in enumerate(algorithm.phases):
            phase_key = jax.random.fold_in(step_key, index)
            trained = {g: params[g] for g in phase.groups}

            def loss_of(trained, phase=phase, phase_key=phase_key):
                return phase.loss({**params, **trained}, phase_key, batch)

            (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(trained)
            for g in phase.groups:
                # optax mixes Python floats with int32 step counts internally, which strict
                # dtype promotion (on in unigen's tests) refuses; unigen's own code stays strict.
                with jax.numpy_dtype_promotion("standard"):
                    updates, opt_state[g] = optimizers[g].update(grads[g], opt_state[g], params[g])
                params[g] = optax.apply_updates(params[g], updates)
            metrics.update({f"{phase.name}/{name}": value for name, value in aux.items()})
            metrics[f"{phase.name}/loss"] = loss
        return TrainState(params, opt_state, state.step + 1, state.key), metrics

    def run(state: TrainState, batches: Batch) -> tuple[TrainState, Metrics]:
        if steps_per_call == 1:
            state, metrics = update(state, jax.tree.map(lambda a: a[0], batches))
            return state, jax.tree.map(lambda m: m[None], metrics)
        return jax.lax.scan(update, state, batches)

    replicated = parallel.replicated(mesh)
    step = jax.jit(
        run,
        in_shardings=(replicated, parallel.batch_sharding(mesh, stacked=True)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    return Trainer(jax.jit(init), step, update, mesh, steps_per_call)  # one compiled init, not op by op


class BatchSource(Protocol):
    """What :func:`fit` reads batches from (e.g. :class:`unigen.data.Batches`)."""

    def at(self, step: int, *, process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]: ...


class FitResult(NamedTuple):
    """The outcome of :func:`fit`."""

    state: TrainState
    history: list[dict[str, Any]]  # the rows written to metrics.jsonl (this session's)
    steps: int
    wall_seconds: float
    examples_per_second: float  # steady state: the first (compiling) call is not counted


def _stacked(source: BatchSource, start: int, count: int) -> dict[str, np.ndarray]:
    index, total = jax.process_index(), jax.process_count()
    rows = [source.at(start + i, process_index=index, process_count=total) for i in range(count)]
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def _first_bad(metrics: Mapping[str, np.ndarray], phases: tuple[str, ...]) -> tuple[int, str] | None:
    """The first (offset, phase) whose loss is NaN or Inf, or None."""
    first = None
    for phase in phases:
        loss = np.asarray(metrics[f"{phase}/loss"])
        bad = np.flatnonzero(~np.isfinite(loss))
        if bad.size and (first is None or bad[0] < first[0]):
            first = (int(bad[0]), phase)
    return first


def fit(
    algorithm: Algorithm,
    batches: BatchSource,
    *,
    steps: int,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    seed: int = 0,
    steps_per_call: int = 1,
    out_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    log_every: int = 1,
    progress: bool | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    """Trains ``algorithm`` for ``steps`` steps; see the module docstring.

    Args:
      algorithm: what to train.
      batches: ``batches.at(t, process_index=, process_count=)`` gives step ``t``'s batch
        (this process's slice), a pure function of ``t``, which is what makes resume exact.
      steps: the total number of steps (a resumed run continues up to the same total).
      optimizer: as in :func:`make_trainer`.
      seed: seeds the parameters and every step's randomness.
      steps_per_call: steps fused per compiled call.
      out_dir: where ``metrics.jsonl`` and ``checkpoints/`` go (None: nothing is written).
      checkpoint_every: save every this many steps (rounded up to whole calls), and at the end.
      resume: continue from the newest checkpoint in ``out_dir/checkpoints``.
      log_every: write every this many steps' metrics (and the last step's) to the log.
      progress: show a progress bar (None: only on a terminal).
      mesh: the device mesh (default: all devices on a ``"data"`` axis).

    Raises:
      TrainingDiverged: a loss became NaN or Inf; names the step and the phase. The last
        checkpoint on disk is the last good state.
      CheckpointError: ``resume`` found no usable checkpoint matching this run.
      ConfigError: bad ``steps``, ``checkpoint_every``, batch size for the devices, ...
    """
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps: expected a positive integer, got {steps!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ConfigError(f"checkpoint_every: expected a positive integer or None, got {checkpoint_every!r}")
    if resume and out_dir is None:
        raise ConfigError("resume: needs out_dir, the directory of the run to continue")
    trainer = make_trainer(algorithm, optimizer, steps_per_call=steps_per_call, mesh=mesh)
    first = _stacked(batches, 0, 1)
    global_size = next(iter(first.values())).shape[1] * jax.process_count()
    parallel.check_batch_size(global_size, trainer.mesh)
    sharding = parallel.batch_sharding(trainer.mesh, stacked=True)

    state = trainer.init(jax.random.key(seed))
    checkpoints = log = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        if not resume and any((out_dir / name).exists() for name in ("metrics.jsonl", "checkpoints")):
            raise ConfigError(
                f"out_dir: {out_dir} already holds a run (metrics.jsonl or checkpoints/); expected "
                "an empty or new directory, or resume=True to continue that run"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint_every is not None or resume:
            checkpoints = Checkpoints(out_dir / "checkpoints")
    if resume:
        state = jax.device_put(checkpoints.restore(state), parallel.replicated(trainer.mesh))
    start = int(state.step)
    if out_dir is not None and jax.process_index() == 0:
        log = MetricsLog(out_dir / "metrics.jsonl", resume_step=start if resume else None)

    phase_names = tuple(p.name for p in algorithm.phases)
    history: list[dict[str, Any]] = []
    bar = progress_bar(steps, start, progress)
    began = time.perf_counter()
    clock = {"steady_began": None, "steady_steps": 0}
    step = last_saved = start

    def record(first_step: int, count: int, metrics: Metrics) -> None:
        # Checks and logs one call's metrics. It runs one call late, after the next call has
        # been dispatched, so that reading the metrics does not stall the device.
        metrics = jax.device_get(metrics)
        bad = _first_bad(metrics, phase_names)
        if bad is not None:
            offset, phase = bad
            raise TrainingDiverged(
                f"loss of phase {phase!r} is {metrics[f'{phase}/loss'][offset]} at step "
                f"{first_step + offset + 1} (of {steps}); training stopped, the last checkpoint "
                f"(step {last_saved if checkpoints else 'none'}) is kept intact"
            )
        if clock["steady_began"] is None:
            clock["steady_began"] = time.perf_counter()
        else:
            clock["steady_steps"] += count
        for offset in range(count):
            done = first_step + offset + 1
            if done % log_every == 0 or done == steps:
                row = {"step": done, **{k: to_python(v[offset]) for k, v in metrics.items()}}
                row["wall_seconds"] = round(time.perf_counter() - began, 4)
                history.append(row)
                if log is not None:
                    log.write(row)
        bar.update(count)
        bar.set_postfix({k: f"{float(v[-1]):.4g}" for k, v in metrics.items() if k.endswith("/loss")})

    pending = None
    interrupts = _Interrupts()
    interrupts.install()
    try:
        while step < steps:
            count = min(trainer.steps_per_call, steps - step)
            call = trainer.step if count == trainer.steps_per_call else _short_call(trainer, count)
            state, metrics = call(state, parallel.global_batch(_stacked(batches, step, count), sharding))
            if pending is not None:
                record(*pending)
            pending = (step, count, metrics)
            step += count
            if checkpoints is not None and (
                step == steps or (checkpoint_every and step - last_saved >= checkpoint_every)
            ):
                record(*pending)
                pending = None
                checkpoints.save(step, state)
                last_saved = step
            if interrupts.requested:
                raise KeyboardInterrupt  # at a step boundary: the state is whole, save it below
        if pending is not None:
            record(*pending)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was done. The first Ctrl-C is taken at the next step boundary (see
        # _Interrupts); a second one interrupts at once, and if that came while a call was being
        # dispatched (its buffers donated) the save fails and the last checkpoint stands.
        if checkpoints is not None and step > last_saved:
            try:
                if pending is not None:
                    record(*pending)
                checkpoints.save(step, state)
            except (RuntimeError, ValueError):
                pass
        raise
    finally:
        interrupts.restore()
        bar.close()
        if log is not None:
            log.close()
        if checkpoints is not None:
            checkpoints.close()
    jax.block_until_ready(state)
    wall = time.perf_counter() - began
    steady = clock["steady_began"]
    elapsed = time.perf_counter() - steady if steady is not None else 0.0
    rate = clock["steady_steps"] * global_size / elapsed if clock["steady_steps"] and elapsed > 0 else float("nan")
    return FitResult(state, history, step - start, wall, rate)


def _short_call(trainer: Trainer, count: int) -> Callable:
    """A compiled call of ``count < K`` steps, for a run whose length is not a multiple of K."""
    replicated = parallel.replicated(trainer.mesh)
    return jax.jit(
        lambda state, batches: jax.lax.scan(trainer.update, state, batches),
        in_shardings=(replicated, parallel.batch_sharding(trainer.mesh, stacked=True)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


class _Interrupts:
    """Ctrl-C during :func:`fit`: the first one is noted and taken at the next step boundary,
    where the state is whole and can be checkpointed; a second one interrupts at once.

    Only the main thread can install a signal handler; elsewhere Ctrl-C keeps its default effect.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
