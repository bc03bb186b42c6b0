"""Orbax calls that leave nothing running behind them when they fail.

Orbax runs each save in threads, each with its own asyncio event loop, whose coroutines await
tensorstore writes (``asyncio.gather`` over the arrays). When one write fails (a full or
read-only disk), the gather raises at once and orbax closes its loop while the other writes are
still pending in tensorstore's C++ threads. As each of those completes, tensorstore hands its
result to the closed loop (``call_soon_threadsafe``), which raises ``RuntimeError: Event loop is
closed``; tensorstore reports it as an unraisable exception, a traceback on stderr per write,
printed before or after the run's one-line error. Inside :func:`settled`:

* every event loop created (orbax's ``asyncio.new_event_loop()``) first waits, when it is
  closed, for the tasks still pending on it (up to :data:`SETTLE_SECONDS`, then cancels them),
  so that every write's result reaches an open loop and is read;
* if the call fails, the threads orbax started during it are joined before the error goes on, so
  that no writer thread still adds files while the caller removes the save cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import types
from typing import Any, Iterator

SETTLE_SECONDS = 30.0
"""How long a closing loop waits for its pending tasks, and a failed call for orbax's threads."""

_LOCK = threading.Lock()
_INSTALLED: list[Any] = []  # [the policy replaced, depth] while some thread is inside settled()


class _SettlingPolicy(asyncio.AbstractEventLoopPolicy):
    """The policy installed before (``previous``), but its new loops settle before closing."""

    def __init__(self, previous: asyncio.AbstractEventLoopPolicy):
        self.previous = previous

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        return self.previous.get_event_loop()

    def set_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.previous.set_event_loop(loop)

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.previous.new_event_loop()
        close = loop.close

        def settle_then_close(self: asyncio.AbstractEventLoop) -> None:
            try:
                _settle(self)
            finally:
                close()

        with contextlib.suppress(AttributeError):  # a loop of a compiled class keeps its own close
            loop.close = types.MethodType(settle_then_close, loop)  # type: ignore[method-assign]
        return loop

    def get_child_watcher(self) -> Any:  # Python < 3.14
        return self.previous.get_child_watcher()  # type: ignore[attr-defined]

    def set_child_watcher(self, watcher: Any) -> None:  # Python < 3.14
        self.previous.set_child_watcher(watcher)  # type: ignore[attr-defined]


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    """Runs ``loop`` until the tasks pending on it are done (cancelling those still pending after
    :data:`SETTLE_SECONDS`), and reads their exceptions, which the call's own error reports."""
    if loop.is_closed() or loop.is_running():
        return
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    _, late = loop.run_until_complete(asyncio.wait(pending, timeout=SETTLE_SECONDS))
    for task in late:
        task.cancel()
    if late:
        loop.run_until_complete(asyncio.wait(late, timeout=1.0))
    for task in pending:
        if task.done() and not task.cancelled():
            task.exception()  # read: no "Task exception was never retrieved" when it is collected


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """Runs the block (an orbax call) with event loops that settle before closing; if it raises
    an :class:`Exception`, joins the threads of orbax it started before the error goes on."""
    with _LOCK:
        if not _INSTALLED:
            _INSTALLED[:] = [asyncio.get_event_loop_policy(), 0]
            asyncio.set_event_loop_policy(_SettlingPolicy(_INSTALLED[0]))
        _INSTALLED[1] += 1
    before = set(threading.enumerate())
    try:
        yield
    except Exception:
        _join_started(before)
        raise
    finally:
        with _LOCK:
            _INSTALLED[1] -= 1
            if _INSTALLED[1] == 0:
                asyncio.set_event_loop_policy(_INSTALLED[0])
                _INSTALLED.clear()


def _join_started(before: set[threading.Thread]) -> None:
    """Joins the threads of orbax that are alive and were not in ``before``, for at most
    :data:`SETTLE_SECONDS` in all."""
    deadline = time.monotonic() + SETTLE_SECONDS
    for thread in set(threading.enumerate()) - before:
        if type(thread).__module__.startswith("orbax") and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
