r"""The one trainer: runs any :class:`~unigen.core.Algorithm`'s phases on batches.

Each step runs the algorithm's phases in order; phase ``i`` draws its randomness from
``fold_in(fold_in(key, step), i)`` and updates only its own parameter group(s), each group with
its own optax optimizer. Two levels of API:

* :func:`make_trainer` → :class:`Trainer` ``(init, step)``: pure and jit-compiled, for people
  writing their own loops. ``step`` runs one step on a batch ``[B, ...]``, or ``K =
  steps_per_call`` steps in one ``lax.scan`` call on batches stacked ``[K, B, ...]``, donating
  the old state, with the batch split over the ``"data"`` axis of a device mesh and the state
  replicated.
* :func:`fit`: the loop around it: batches from a stateless source (batch ``t`` is a function of
  the seed and ``t``) or any iterable, NaN/Inf checks naming the step and phase,
  ``metrics.jsonl``, callbacks every ``n`` steps, orbax checkpoints every ``N`` steps and at the
  end, a progress bar on a terminal, and ``resume`` that reproduces the uninterrupted run exactly
  (stateless sources only).
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from unigen.core import Algorithm, Batch, Metrics, Params
from unigen.errors import ArgumentTypeError, ConfigError, DonatedStateError, RunInterrupted, StorageError, TrainingDiverged, describe
from unigen.training import hosts, parallel, rundir
from unigen.training import callbacks as callbacks_
from unigen.training.callbacks import Callback
from unigen.training.checkpoint import Checkpoints, remove_incomplete
from unigen.training.feed import BatchSource, Feed
from unigen.training.interrupts import Interrupts
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
    """``init(key) -> state`` and the jit-compiled ``step(state, batch) -> (state, metrics)``.

    With ``steps_per_call == 1``, ``step`` takes one batch ``{name: [B, ...]}`` and returns
    scalar metrics keyed ``"phase/name"``. With ``K > 1`` it runs K steps on batches stacked
    ``[K, B, ...]`` (anything else is refused) and the metrics come back stacked ``[K]``. The
    state passed in is donated (its buffers are reused): use the state returned; passing the old
    one again raises :class:`~unigen.errors.DonatedStateError`. ``update`` is the same single
    step, pure and not compiled, on ``[B, ...]``.
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
    for given in optimizer.values() if isinstance(optimizer, Mapping) else (optimizer,):
        if not isinstance(given, optax.GradientTransformation):
            raise ConfigError(
                f"optimizer: got {describe(given)}; expected an optax GradientTransformation such as "
                "make_optimizer('adam', 1e-3), or a dict {group: optimizer}"
            )
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

    Made again from the same ``algorithm`` and ``optimizer`` objects (with the same
    ``steps_per_call`` and mesh), it returns the same trainer, whose programs are then traced,
    lowered and compiled once: :func:`unigen.training.memory.check_step` traces the step that
    :func:`fit` then runs.
    """
    if not isinstance(steps_per_call, int) or steps_per_call < 1:
        raise ConfigError(f"steps_per_call: expected a positive integer, got {steps_per_call!r}")
    if not (callable(getattr(algorithm, "init", None)) and isinstance(getattr(algorithm, "phases", None), tuple)):
        raise ArgumentTypeError(f"algorithm: got {describe(algorithm)}; expected a unigen.Algorithm (init, phases), "
                                "such as unigen.algorithms.vae.vae(model)")
    if not algorithm.phases:
        raise ConfigError("algorithm: has no phases; expected at least one Phase")
    optimizers = _optimizers_for(algorithm, optimizer)
    mesh = parallel.data_mesh() if mesh is None else mesh
    for made in _RECENT:
        if made[0] is algorithm and _same_optimizer(made[1], optimizer) and made[2] == (steps_per_call, mesh):
            return made[3]

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
                if phase.uses_step:
                    return phase.loss({**params, **trained}, phase_key, batch, state.step)
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

    calls: dict[int, Callable] = {}
    _CALLS[update] = calls
    if steps_per_call == 1:
        plain = jax.jit(
            update,
            in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh, stacked=False)),
            out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
            donate_argnums=0,
        )
        step = _refusing_donated(plain, init)
    else:
        calls[steps_per_call] = _stacked_call(update, mesh, steps_per_call)
        step = _refusing_donated(calls[steps_per_call], init, steps_per_call)
    trainer = Trainer(jax.jit(init), step, update, mesh, steps_per_call)  # one compiled init, not op by op
    made_from = dict(optimizer) if isinstance(optimizer, Mapping) else optimizer  # a dict changed later is new
    _RECENT.insert(0, (algorithm, made_from, (steps_per_call, mesh), trainer))
    del _RECENT[_RECENT_SIZE:]
    return trainer


_RECENT: list[tuple[Any, Any, tuple[int, Any], Trainer]] = []
"""The last trainers made, newest first, with what they were made from (see :func:`make_trainer`)."""
_RECENT_SIZE = 4
_CALLS: "weakref.WeakKeyDictionary[Callable, dict[int, Callable]]" = weakref.WeakKeyDictionary()
"""Each trainer's compiled calls of ``count`` steps, keyed by its ``update``."""


def _same_optimizer(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(a[g] is b[g] for g in a)
    return a is b


def steps_call(trainer: Trainer, count: int) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """``trainer``'s jit-compiled call of ``count`` steps on batches stacked ``[count, B, ...]``
    (the state donated, the metrics stacked ``[count]``), made once per count: the calls
    :func:`fit` runs (``K = steps_per_call`` steps, and a shorter last call when K does not
    divide the steps)."""
    calls = _CALLS.setdefault(trainer.update, {})
    if count not in calls:
        calls[count] = _stacked_call(trainer.update, trainer.mesh, count)
    return calls[count]


def _stacked_call(update: Callable, mesh: jax.sharding.Mesh, count: int) -> Callable:
    """``count`` steps in one jit-compiled call on batches ``[count, B, ...]``, donating the state;
    the metrics come back stacked ``[count]``."""

    def run(state: TrainState, batches: Batch) -> tuple[TrainState, Metrics]:
        if count == 1:  # no loop for one step
            state, metrics = update(state, jax.tree.map(lambda a: a[0], batches))
            return state, jax.tree.map(lambda m: m[None], metrics)
        return jax.lax.scan(update, state, batches)

    replicated = parallel.replicated(mesh)
    return jax.jit(
        run,
        in_shardings=(replicated, parallel.batch_sharding(mesh, stacked=True)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


def _refusing_donated(call: Callable, init: Callable, steps_per_call: int | None = None) -> Callable:
    """``call`` with the checks a compiled step cannot make in words: a state of the structure
    ``init`` returns, batches stacked ``[K, B, ...]`` when ``K = steps_per_call > 1``, and a
    state not already donated. ``step.lower(state, batches)`` makes the same checks, then lowers
    the compiled call (``.compile()``, ``cost_analysis()``, ``as_text()``), as ``jax.jit``'s does."""
    expected: list[Any] = []  # the structure of init's state, found once (from shapes only)

    def check(state: TrainState, batches: Batch) -> None:
        if not expected:
            expected.append(jax.tree.structure(jax.eval_shape(init, jax.random.key(0))))
        if not isinstance(state, TrainState) or jax.tree.structure(state) != expected[0]:
            groups = sorted(state.params) if isinstance(state, TrainState) and isinstance(state.params, Mapping) else None
            raise ArgumentTypeError(
                f"state: got {describe(state) if groups is None else f'a TrainState with parameter groups {groups}'} "
                f"of another structure; expected the state trainer.init returns (or the last step returned)"
            )
        if steps_per_call is not None:
            for name, value in (batches.items() if isinstance(batches, Mapping) else ()):
                shape = tuple(getattr(value, "shape", ()))
                if not shape or shape[0] != steps_per_call:
                    raise ConfigError(
                        f"batches: {name!r} has shape {shape}; expected [K, B, ...] = "
                        f"[{steps_per_call}, B, ...], the batches of the {steps_per_call} steps of one call "
                        f"(steps_per_call={steps_per_call}) stacked on a leading axis"
                    )

    def step(state: TrainState, batches: Batch) -> tuple[TrainState, Metrics]:
        check(state, batches)
        try:
            return call(state, batches)
        except (RuntimeError, ValueError):  # XLA's words for it vary: "deleted", "deleted or donated"
            if any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree.leaves(state)):
                raise DonatedStateError(
                    "state: was donated to a previous step call, which consumed its buffers; expected "
                    "the state that call returned (state, metrics = trainer.step(state, batch)); keep a "
                    "copy with jax.tree.map(jnp.copy, state) before the call to reuse an old state"
                ) from None
            raise

    def lower(state: TrainState, batches: Batch) -> Any:
        check(state, batches)
        return call.lower(state, batches)

    step.lower = lower  # type: ignore[attr-defined]
    return step


class FitResult(NamedTuple):
    """The outcome of :func:`fit`."""

    state: TrainState
    history: list[dict[str, Any]]  # the rows of metrics.jsonl: a resumed run's kept rows, then this session's
    steps: int
    wall_seconds: float
    examples_per_second: float  # steady state: the first (compiling) call is not counted


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
    batches: BatchSource | Iterable[Mapping[str, Any]],
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
    callbacks: Sequence[Callback] | None = None,
) -> FitResult:
    """Trains ``algorithm`` for ``steps`` steps; see the module docstring.

    Args:
      algorithm: what to train.
      batches: a stateless source, ``batches.at(t, process_index=, process_count=)`` giving
        step ``t``'s batch (this process's slice) as a pure function of ``t`` (e.g.
        :class:`unigen.data.Batches`), which is what makes resume exact; or any iterable of
        batches ``{name: array [B, ...]}``, one per step, read in order (such a run cannot be
        resumed: ``resume=True`` is refused).
      steps: the total number of steps (a resumed run continues up to the same total).
      optimizer: as in :func:`make_trainer`.
      seed: seeds the parameters and every step's randomness.
      steps_per_call: steps fused per compiled call.
      out_dir: where ``metrics.jsonl`` and ``checkpoints/`` go (None: nothing is written).
      checkpoint_every: save every this many steps (rounded up to whole calls), and at the end.
      resume: continue from the newest complete checkpoint in ``out_dir/checkpoints`` (step
        directories a killed save left incomplete are deleted; with no complete checkpoint the
        run starts from step 0). ``metrics.jsonl`` is cut back to the restored step, and the
        rows kept start :attr:`FitResult.history`.
      log_every: write every this many steps' metrics (and the last step's) to the log.
      progress: show a progress bar (None: only on a terminal).
      mesh: the device mesh (default: all devices on a ``"data"`` axis).
      callbacks: :func:`~unigen.training.every` ``(n, fn)`` items: ``fn(step, state, metrics)``
        runs every ``n`` steps; a dict of numbers it returns joins that step's logged row.

    While it runs, ``out_dir`` is locked (:class:`~unigen.training.rundir.RunLock`): a second
    writer is refused. With several processes (``jax.distributed``) process 0 alone locks and
    writes ``out_dir``; the others only read its checkpoints on ``resume``. SIGINT and SIGTERM stop the run at the next step boundary after saving a
    checkpoint there (when checkpoints are on); a second signal stops it at once.

    Raises:
      TrainingDiverged: a loss became NaN or Inf, or the parameters or optimizer state did
        before a checkpoint; names the step, the phase or array, and the last good checkpoint.
      RunInterrupted: SIGINT or SIGTERM (a ``KeyboardInterrupt``); says what was saved.
      CheckpointError: ``resume`` found a checkpoint that is corrupt or belongs to another run.
      ConfigError: bad ``steps``, ``checkpoint_every``, batch size for the devices, a locked
        ``out_dir``, ...
    """
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps: expected a positive integer, got {steps!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ConfigError(f"checkpoint_every: expected a positive integer or None, got {checkpoint_every!r}")
    if resume and out_dir is None:
        raise ConfigError("resume: needs out_dir, the directory of the run to continue")
    feed = Feed(batches, tuple(getattr(algorithm, "bernoulli", ())))
    if resume and not feed.stateless:
        raise ConfigError(
            f"resume: needs batches with .at(step) (a stateless source such as unigen.data.Batches), got "
            f"{type(batches).__name__}, an iterable whose position at the checkpoint cannot be restored"
        )
    callbacks = callbacks_.checked(callbacks)
    trainer = make_trainer(algorithm, optimizer, steps_per_call=steps_per_call, mesh=mesh)
    first = feed.first()
    global_size = next(iter(first.values())).shape[0] * jax.process_count()
    parallel.check_batch_size(global_size, trainer.mesh)

    state = trainer.init(jax.random.key(seed))
    writer = out_dir is not None and jax.process_index() == 0  # the other processes write nothing
    if writer:
        out_dir = Path(out_dir)
        if not resume and any((out_dir / name).exists() for name in ("metrics.jsonl", "checkpoints")):
            raise ConfigError(
                f"out_dir: {out_dir} already holds a run (metrics.jsonl or checkpoints/); expected "
                "an empty or new directory, or resume=True to continue that run"
            )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError.of(out_dir, error) from None
    elif out_dir is not None:
        out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:
        if writer:
            stack.enter_context(rundir.locked(out_dir))
        checkpoints = None
        if out_dir is not None and (checkpoint_every is not None or resume):
            # A fresh run opens orbax's manager after its first call's metrics (record), not before.
            checkpoints = Checkpoints(out_dir / "checkpoints", discard_incomplete=writer, open_now=resume)
            stack.callback(checkpoints.close)
        good = checkpoints.latest_step() if resume else None  # the newest checkpoint known to be good
        if good is not None:
            state = jax.device_put(checkpoints.restore(state, good), parallel.replicated(trainer.mesh))
        log = None
        if writer:
            log = stack.enter_context(MetricsLog(out_dir / "metrics.jsonl", resume_step=int(state.step) if resume else None))
        return _loop(trainer, state, feed, algorithm, steps, checkpoints, good, checkpoint_every,
                     log, log_every, callbacks, progress, global_size)


def _loop(trainer, state, feed, algorithm, steps, checkpoints, good, checkpoint_every, log, log_every,
          callbacks, progress, global_size) -> FitResult:
    """:func:`fit`'s loop from ``state`` (restored or new) up to ``steps``, with the run's files open."""
    sharding = parallel.batch_sharding(trainer.mesh, stacked=True)
    start = int(state.step)
    phase_names = tuple(p.name for p in algorithm.phases)
    history: list[dict[str, Any]] = list(log.kept) if log is not None else []
    bar = progress_bar(steps, start, progress)
    began = time.perf_counter()
    clock = {"steady_began": None, "steady_steps": 0}
    step = start
    last = {"good": good}

    def kept() -> str:
        found = last["good"]
        return f"the last good checkpoint is step {found}" if found is not None else "there is no good checkpoint"

    def record(first_step: int, count: int, metrics: Metrics, state: TrainState | None = None,
               due: tuple[Callback, ...] = ()) -> None:
        # Checks and logs one call's metrics. It runs one call late, after the next call has
        # been dispatched, so that reading the metrics does not stall the device; at once
        # (with the state after the call) when callbacks are due or a checkpoint follows.
        metrics = jax.device_get(metrics)
        bad = _first_bad(metrics, phase_names)
        if bad is not None:
            offset, phase = bad
            raise TrainingDiverged(
                f"loss of phase {phase!r} is {metrics[f'{phase}/loss'][offset]} at step "
                f"{first_step + offset + 1} (of {steps}); training stopped, {kept()}"
            )
        if clock["steady_began"] is None:
            clock["steady_began"] = time.perf_counter()
        else:
            clock["steady_steps"] += count
        rows = {}
        for offset in range(count):
            done = first_step + offset + 1
            if done % log_every == 0 or done == steps:
                rows[done] = {"step": done, **{k: to_python(v[offset]) for k, v in metrics.items()}}
        if due:
            done = first_step + count
            latest = {k: to_python(v[-1]) for k, v in metrics.items()}
            rows.setdefault(done, {"step": done, **latest}).update(callbacks_.run(due, done, state, latest))
        for row in rows.values():
            row["wall_seconds"] = round(time.perf_counter() - began, 4)
            history.append(row)
            if log is not None:
                log.write(row)
        bar.update(count)
        bar.set_postfix({k: f"{float(v[-1]):.4g}" for k, v in metrics.items() if k.endswith("/loss")})
        if checkpoints is not None:
            checkpoints.open()  # once: a directory orbax cannot open fails here, before any save

    def save(step: int, state: TrainState) -> None:
        where = _first_nonfinite(state)
        if where is not None:
            raise TrainingDiverged(
                f"{where} is not finite after step {step} (of {steps}); training stopped without "
                f"saving it, {kept()}"
            )
        try:
            checkpoints.save(step, state)
        except StorageError as error:
            raise StorageError(f"{error}; {kept()}") from None
        last["good"] = step

    pending = None
    started: set[int] = set()  # the step counts of the calls run so far
    with Interrupts() as interrupts:
        try:
            while step < steps:
                count = min(trainer.steps_per_call, steps - step)
                call, batch = steps_call(trainer, count), parallel.global_batch(feed.take(step, count), sharding)
                if count not in started and jax.process_count() > 1:  # several processes: compile, then
                    call.lower(state, batch).compile()  # meet before the first collective (gloo waits 30 s)
                    hosts.wait_for_all(f"the first call of {count} step(s)")
                started.add(count)
                state, metrics = call(state, batch)
                if pending is not None:
                    record(*pending)
                pending = (step, count, metrics)
                step += count
                due = callbacks_.due(callbacks, step - count, step)
                saving = checkpoints is not None and (
                    step == steps or (checkpoint_every and step - (last["good"] or 0) >= checkpoint_every)
                )
                if due or saving:
                    record(*pending, state=state, due=due)
                    pending = None
                if saving:
                    save(step, state)
                if interrupts.received is not None:
                    break  # at a step boundary: the state is whole; save it below
            if pending is not None:
                record(*pending)
            if interrupts.received is not None:
                name = signal.Signals(interrupts.received).name
                if checkpoints is not None and step != last["good"]:
                    save(step, state)
                saved = f"checkpoint step {step} saved" if checkpoints is not None else "nothing saved (no checkpoints)"
                raise RunInterrupted(interrupts.received, f"{name}: stopped after step {step} of {steps}; {saved}")
        except RunInterrupted as interrupted:
            if interrupts.hard:  # the second signal: say what stands, and leave no half-written save
                if checkpoints is not None and jax.process_index() == 0:
                    checkpoints.close()
                    remove_incomplete(checkpoints.directory)
                raise RunInterrupted(interrupted.signal_number, f"{interrupted}; {kept()}") from None
            raise
        finally:
            bar.close()
    jax.block_until_ready(state)
    wall = time.perf_counter() - began
    steady = clock["steady_began"]
    elapsed = time.perf_counter() - steady if steady is not None else 0.0
    rate = clock["steady_steps"] * global_size / elapsed if clock["steady_steps"] and elapsed > 0 else float("nan")
    return FitResult(state, history, step - start, wall, rate)


@jax.jit
def _finite_flags(tree: Any) -> Any:
    return jax.tree.map(lambda leaf: jnp.all(jnp.isfinite(leaf)), tree)


def _first_nonfinite(state: TrainState) -> str | None:
    """The first parameter or optimizer-state array holding NaN or Inf, by path, or None."""
    flags = jax.device_get(_finite_flags({"params": state.params, "opt_state": state.opt_state}))
    for path, finite in jax.tree_util.tree_flatten_with_path(flags)[0]:
        if not finite:
            return "array " + jax.tree_util.keystr(path)
    return None
