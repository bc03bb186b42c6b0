"""Callbacks of :func:`~unigen.training.fit`: a function run every ``n`` steps.

A callback receives ``(step, state, metrics)``: the number of steps taken, the
:class:`~unigen.training.TrainState` after them and the latest step's metrics as Python floats
(``{"phase/name": value}``). It may return a dict of numbers (an evaluation, a custom metric),
which is written into that step's row of ``metrics.jsonl`` and of ``FitResult.history``; or
None. The state is donated to the next step: copy (``jax.device_get``) what you keep.

    def evaluate(step, state, metrics):
        return {"test/elbo": float(test_elbo(model, state.params, test_x, key))}

    fit(..., callbacks=[every(500, evaluate)])
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from unigen.errors import ConfigError, describe
from unigen.training.logging import to_python


class Callback(NamedTuple):
    """``fn(step, state, metrics) -> dict of numbers | None``, run every ``every`` steps.

    With ``K`` steps fused per call, ``fn`` runs after the call in which the step count reached
    a multiple of ``every`` (exactly every ``every`` steps when ``K`` divides it).
    """

    every: int
    fn: Callable[[int, Any, Mapping[str, float]], Mapping[str, Any] | None]


def every(n: int, fn: Callable[[int, Any, Mapping[str, float]], Mapping[str, Any] | None]) -> Callback:
    """The callback that runs ``fn(step, state, metrics)`` every ``n`` steps."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"every: n is {n!r}; expected a positive integer number of steps")
    if not callable(fn):
        raise ConfigError(f"every: fn is {describe(fn)}; expected a function (step, state, metrics) -> dict or None")
    return Callback(n, fn)


def checked(callbacks: Any) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple of :class:`Callback`, or a one-line ConfigError."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise ConfigError(f"callbacks: got {describe(callbacks)}; expected a list of every(n, fn)")
    for item in callbacks:
        if not isinstance(item, Callback):
            raise ConfigError(f"callbacks: an item is {describe(item)}; expected every(n, fn)")
    return tuple(every(item.every, item.fn) for item in callbacks)


def due(callbacks: tuple[Callback, ...], before: int, after: int) -> tuple[Callback, ...]:
    """The callbacks whose period's multiple lies in the steps ``(before, after]``."""
    return tuple(c for c in callbacks if after // c.every > before // c.every)


def run(callbacks: tuple[Callback, ...], step: int, state: Any, metrics: Mapping[str, float]) -> dict[str, Any]:
    """Runs ``callbacks`` and merges what they return (numbers, as :func:`~unigen.training.logging.to_python` writes them)."""
    merged: dict[str, Any] = {}
    for callback in callbacks:
        returned = callback.fn(step, state, dict(metrics))
        if returned is None:
            continue
        if not isinstance(returned, Mapping):
            raise ConfigError(
                f"callbacks: {_name(callback.fn)} returned {describe(returned)} at step {step}; "
                "expected a dict of numbers or None"
            )
        for name, value in returned.items():
            merged[str(name)] = _number(value, callback, name, step)
    return merged


def _number(value: Any, callback: Callback, name: Any, step: int) -> Any:
    array = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    if array is None or array.shape != () or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise ConfigError(
            f"callbacks: {_name(callback.fn)} returned {name!r}: {describe(value)} at step {step}; "
            "expected a number"
        )
    number = array.item()
    if isinstance(number, numbers.Integral) and not isinstance(number, bool):
        return int(number)
    return to_python(number)


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
