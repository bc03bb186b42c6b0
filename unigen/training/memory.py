"""Memory a request needs, estimated before anything is compiled or allocated, against the limit.

The estimate is a lower bound read from shapes alone (``jax.eval_shape``, ``jax.make_jaxpr``):
the parameters and optimizer state, their gradients, and the largest single array one step
creates (a ``[B, k, L]`` block of importance samples, a ``[H, L]`` weight matrix, ...). A request
whose lower bound exceeds the limit cannot fit and is refused in one line with both numbers;
one below it may still need more (several arrays are alive at once).

The limit is the smallest of the memory the kernel reports available (``MemAvailable``), the
cgroup's ``memory.max`` less what it uses, and ``RLIMIT_AS``; ``UNIGEN_MEMORY_LIMIT`` (bytes,
e.g. ``2e9``) sets it instead.
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from unigen.errors import ConfigError

LIMIT_VARIABLE = "UNIGEN_MEMORY_LIMIT"


def limit() -> tuple[int, str]:
    """``(bytes, where the number comes from)``: the memory a request may use."""
    given = os.environ.get(LIMIT_VARIABLE)
    if given:
        try:
            return int(float(given)), LIMIT_VARIABLE
        except ValueError:
            raise ConfigError(f"{LIMIT_VARIABLE}: expected a number of bytes such as 2e9, got {given!r}") from None
    found: list[tuple[int, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((int(line.split()[1]) * 1024, "the memory available (MemAvailable)"))
    except (OSError, ValueError, IndexError):
        pass
    try:
        top = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if top != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append((int(top) - used, "the cgroup's memory.max less its use"))
    except (OSError, ValueError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        found.append((soft, "RLIMIT_AS (ulimit -v)"))
    if not found:
        found.append((os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "the physical memory"))
    return min(found)


def size(count: float) -> str:
    """Bytes as ``"12.3 GB"``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000:
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.3g} PB"


def nbytes(shape: Any, dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (a PRNG key counts its key data)."""
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:  # typed keys
        itemsize = 8
    return math.prod(int(d) for d in shape) * itemsize


def tree_bytes(tree: Any) -> int:
    """Bytes of every array of a pytree of arrays or ``jax.ShapeDtypeStruct`` s."""
    return sum(nbytes(leaf.shape, leaf.dtype) for leaf in jax.tree.leaves(tree) if hasattr(leaf, "shape"))


def largest_array(function: Callable[..., Any], *arguments: Any) -> tuple[int, tuple[int, ...]]:
    """``(bytes, shape)`` of the largest array ``function(*arguments)`` creates, from its jaxpr
    (traced on shapes: nothing is computed or compiled). A jit-compiled ``function`` is traced
    by its own ``trace``, whose jaxpr a later call with arguments of the same shapes and
    shardings reuses."""
    closed = function.trace(*arguments).jaxpr if hasattr(function, "trace") else jax.make_jaxpr(function)(*arguments)
    best = (0, ())

    def visit(jaxpr) -> None:
        nonlocal best
        for equation in jaxpr.eqns:
            for variable in equation.outvars:
                aval = variable.aval
                if hasattr(aval, "shape"):
                    found = nbytes(aval.shape, aval.dtype)
                    if found > best[0]:
                        best = (found, tuple(aval.shape))
            for value in equation.params.values():
                for inner in value if isinstance(value, (tuple, list)) else (value,):
                    inner = getattr(inner, "jaxpr", inner)
                    if hasattr(inner, "eqns"):
                        visit(inner)

    visit(closed.jaxpr)
    return best


def check(needed: int, what: str, settings: str) -> None:
    """Refuses a request needing at least ``needed`` bytes when that exceeds :func:`limit`.

    Raises:
      ConfigError: ``"{settings}: {what} needs at least N; expected at most the limit L (...)"``.
    """
    allowed, source = limit()
    if needed > allowed:
        raise ConfigError(f"{settings}: {what} needs at least {size(needed)}; expected at most {size(allowed)}, "
                          f"{source}")


def check_step(algorithm: Any, optimizer: Any, batch: dict[str, jax.ShapeDtypeStruct], settings: str, *,
               steps_per_call: int = 1, steps: int | None = None) -> int:
    """Checks that one training step of ``algorithm`` on ``batch`` (shapes) can fit; returns the
    lower bound in bytes: parameters, optimizer state and gradients, plus the step's largest array.

    It traces the first call :func:`~unigen.training.fit` makes with the same ``algorithm``,
    ``optimizer`` and ``steps_per_call`` (``min(steps_per_call, steps)`` steps on stacked batches),
    through the same trainer (:func:`~unigen.training.make_trainer` returns it again), so that
    ``fit`` does not trace it again. ``batch`` is this process's slice; the step sees the global
    batch of every process.

    Raises:
      ConfigError: the bound exceeds :func:`limit` (the message names ``settings``).
    """
    from unigen.training import parallel
    from unigen.training.trainer import make_trainer, steps_call

    trainer = make_trainer(algorithm, optimizer, steps_per_call=steps_per_call)
    state = jax.eval_shape(trainer.init, jax.random.key(0))
    held = tree_bytes(state) + tree_bytes(state.params)
    check(held, "the parameters, optimizer state and gradients", settings)  # before tracing a step
    count = steps_per_call if steps is None else min(steps_per_call, steps)
    replicated, split = parallel.replicated(trainer.mesh), parallel.batch_sharding(trainer.mesh, stacked=True)
    state = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated, weak_type=s.weak_type), state)
    stacked = {name: jax.ShapeDtypeStruct((count, value.shape[0] * jax.process_count(), *value.shape[1:]), value.dtype,
                                          sharding=split) for name, value in batch.items()}
    largest, shape = largest_array(steps_call(trainer, count), state, stacked)
    needed = held + largest
    check(needed, f"one training step (state and gradients {size(held)}, an array {list(shape)} of "
                  f"{size(largest)})", settings)
    return needed
