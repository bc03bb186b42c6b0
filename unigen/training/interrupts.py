"""SIGINT and SIGTERM during :func:`~unigen.training.fit`: stop at a step boundary, or at once.

The first signal is noted and taken at the next step boundary, where the state is whole and is
checkpointed before :class:`~unigen.errors.RunInterrupted` is raised. A second signal raises it at
once (a save under way is abandoned; its temporary files are removed on the way out). SIGTERM is
what schedulers send before preempting a job, so a preempted run loses at most one call's steps.
Only the main thread can install signal handlers; elsewhere the signals keep their effect.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from unigen.errors import RunInterrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """Installs the handlers of :data:`SIGNALS` for a ``with`` block and notes what arrived."""

    def __init__(self) -> None:
        self.received: int | None = None  # the first signal's number
        self.hard = False  # a second signal came: stop at once
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is not None:
            self.hard = True
            raise RunInterrupted(number, f"{signal.Signals(number).name} again: stopped at once")
        self.received = number
