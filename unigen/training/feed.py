"""Where :func:`~unigen.training.fit` reads its batches from: a stateless source or any iterable.

A *stateless source* has ``at(step, *, process_index, process_count)`` giving step ``t``'s batch
(this process's slice) as a pure function of ``t`` (e.g. :class:`unigen.data.Batches`): a resumed
run reads exactly the batches the uninterrupted run would have read, which is what makes resume
exact. Any other *iterable* of batches (a list, a generator, a data loader) is read in order, one
batch ``{name: array [B, ...]}`` per step; a run fed that way cannot be resumed, since where the
iterable stood at the checkpoint is not known.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Protocol

import jax
import numpy as np

from unigen.data import first_index
from unigen.errors import ConfigError, DataError, describe


class BatchSource(Protocol):
    """A stateless source of batches (e.g. :class:`unigen.data.Batches`)."""

    def at(self, step: int, *, process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]: ...


class Feed:
    """Stacks the batches of ``count`` consecutive steps into ``{name: [count, B, ...]}``."""

    def __init__(self, batches: BatchSource | Iterable[Mapping[str, Any]], bernoulli: tuple[str, ...] = ()):
        self._bernoulli = bernoulli  # entries whose values must lie in [0, 1]
        self._source = batches if callable(getattr(batches, "at", None)) else None
        self._iterator: Iterator[Mapping[str, Any]] | None = None
        self._read = 0  # batches taken from the iterator so far
        self._peeked: list[dict[str, np.ndarray]] = []  # an iterable's first batch, read by first()
        if self._source is None:
            if isinstance(batches, Mapping) or not isinstance(batches, Iterable):
                raise ConfigError(
                    f"batches: got {describe(batches)}; expected an object with .at(step) (such as "
                    "unigen.data.Batches) or an iterable of batches, each a dict of arrays [B, ...]"
                )
            self._iterator = iter(batches)

    @property
    def stateless(self) -> bool:
        """Whether batch ``t`` is a function of ``t`` (so that a resumed run reads the same ones)."""
        return self._source is not None

    def first(self) -> dict[str, np.ndarray]:
        """Step 0's batch (an iterable's first batch is kept for the first :meth:`take`)."""
        if self._source is not None:
            return self._at(0)
        if not self._peeked and self._read == 0:
            self._peeked.append(self._next(0))
        return self._peeked[0]

    def take(self, start: int, count: int) -> dict[str, np.ndarray]:
        """The batches of steps ``start, ..., start + count - 1``, stacked on a new leading axis."""
        if self._source is not None:
            rows = [self._at(start + i) for i in range(count)]
        else:
            rows = [self._peeked.pop() if self._peeked else self._next(start + i) for i in range(count)]
        return _stack(rows, start)

    def _at(self, step: int) -> dict[str, np.ndarray]:
        row = self._source.at(step, process_index=jax.process_index(), process_count=jax.process_count())
        return _checked(row, step, self._bernoulli)

    def _next(self, step: int) -> dict[str, np.ndarray]:
        try:
            row = next(self._iterator)
        except StopIteration:
            raise DataError(
                f"batches: the iterable ended after {self._read} batches; expected one batch for each "
                f"step (step {step + 1} has none)"
            ) from None
        self._read += 1
        return _checked(row, step, self._bernoulli)


def _checked(row: Any, step: int, bernoulli: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The batch of step ``step`` as arrays, refused as bad data (not a divergence later) when it
    is not a dict of real arrays, holds NaN or Inf, or has values outside [0, 1] in an entry a
    Bernoulli likelihood reads."""
    if not isinstance(row, Mapping) or not row:
        raise DataError(
            f"batches: the batch of step {step + 1} is {describe(row)}; expected a dict of arrays "
            "such as {'x': array [B, ...]}"
        )
    arrays = {}
    for name, value in row.items():
        array = np.asarray(value)
        where = f"batches: {name!r} of the batch of step {step + 1}"
        if array.dtype.kind not in "biuf":
            raise DataError(f"{where} is {describe(value)}; expected a real numeric array [B, ...]")
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                raise DataError(f"{where} has {array.size - np.count_nonzero(finite)} NaN or Inf value(s), the first "
                                f"at index {first_index(~finite)}; expected finite data")
        if name in bernoulli:
            outside = (array < 0) | (array > 1)
            if outside.any():
                raise DataError(f"{where} has {np.count_nonzero(outside)} value(s) outside [0, 1] (the first "
                                f"{array[first_index(outside)]:g} at index {first_index(outside)}); expected values in [0, 1] "
                                "for a Bernoulli likelihood")
        arrays[name] = array
    return arrays


def _stack(rows: list[dict[str, np.ndarray]], start: int) -> dict[str, np.ndarray]:
    first = rows[0]
    for offset, row in enumerate(rows[1:], start=1):
        if row.keys() != first.keys() or any(row[n].shape != first[n].shape for n in first):
            seen = {n: tuple(a.shape) for n, a in row.items()}
            wanted = {n: tuple(a.shape) for n, a in first.items()}
            raise DataError(
                f"batches: the batch of step {start + offset + 1} has arrays {seen}; expected {wanted} "
                f"like the batch of step {start + 1}"
            )
    return {name: np.stack([row[name] for row in rows]) for name in first}
