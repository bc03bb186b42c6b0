"""Several hosts: joining JAX's distributed runtime, and leaving it at once when a process dies.

``unigen train ... --coordinator HOST:PORT --num-processes N --process-id I`` (or the
environment variables of :data:`ENVIRONMENT`) runs one process per host: :func:`join` calls
``jax.distributed.initialize`` (gloo collectives on CPU), after which ``jax.devices()`` holds every
process's devices, each process feeds its own slice of every global batch, and only process 0
writes the run directory. ``--coordinator auto`` lets JAX find the cluster itself (Cloud TPU pod
slices, Slurm, Open MPI).

A process that dies would otherwise leave the others blocked inside a collective until JAX's
heartbeat timeout, and then aborted by the runtime with a C++ stack trace. Instead a survivor ends
within a bounded time with one line on stderr and exit status :data:`EXIT_STATUS`: at once when a
collective fails (:func:`guarded`), else when :class:`Watchdog` sees that another process has not
written its heartbeat counter to the coordination service's key-value store (every second) for
``heartbeat_timeout`` seconds. JAX's own heartbeat timeout is set longer
(:func:`runtime_heartbeat`), so that this line comes first. The one case it cannot cover: when
process 0, which hosts the coordination service, dies, JAX's runtime ends the others at once
itself, with its own message and a stack trace (SIGABRT: status 134 in a shell); jaxlib 0.10.2 has no working hook to
replace it (``missed_heartbeat_callback`` aborts with ``std::bad_cast``).

Before the first run of each compiled step the processes meet at a barrier (:func:`wait_for_all`):
gloo connects them at their first collective and gives up after 30 s.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from unigen.errors import ConfigError, UnigenError

ENVIRONMENT: Mapping[str, str] = {
    "coordinator": "UNIGEN_COORDINATOR",
    "num_processes": "UNIGEN_NUM_PROCESSES",
    "process_id": "UNIGEN_PROCESS_ID",
    "heartbeat_timeout": "UNIGEN_HEARTBEAT_TIMEOUT",
}
"""The environment variable of each option (the command line wins over it)."""

AUTO = "auto"
DEFAULT_HEARTBEAT_TIMEOUT = 60.0
EXIT_STATUS = 1
"""The exit status of a process whose peer died (the run failed; the input was not wrong)."""
_POLL_SECONDS = 1.0
_ALIVE = "unigen/alive/"
_DONE = "unigen/done/"


class Cluster(NamedTuple):
    """How this process joins the others: ``coordinator`` is ``"HOST:PORT"`` or ``"auto"``."""

    coordinator: str
    num_processes: int | None
    process_id: int | None
    heartbeat_timeout: float


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _given(name: str, value: Any, environ: Mapping[str, str]) -> tuple[Any, str]:
    """The option's value and where it came from (its flag, or its environment variable)."""
    if value is not None:
        return value, _flag(name)
    return environ.get(ENVIRONMENT[name]) or None, ENVIRONMENT[name]


def _integer(name: str, value: Any, where: str, least: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < least:
        expected = "a positive integer" if least == 1 else f"an integer of at least {least}"
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    return number


def cluster(coordinator: str | None = None, num_processes: Any = None, process_id: Any = None,
            heartbeat_timeout: Any = None, environ: Mapping[str, str] | None = None) -> Cluster | None:
    """The cluster the options (else the environment variables) describe, or None: one process.

    Raises:
      ConfigError: one line naming the flag or variable, the value seen and what was expected.
    """
    environ = os.environ if environ is None else environ
    address, address_from = _given("coordinator", coordinator, environ)
    count, count_from = _given("num_processes", num_processes, environ)
    index, index_from = _given("process_id", process_id, environ)
    timeout, timeout_from = _given("heartbeat_timeout", heartbeat_timeout, environ)
    if address is None:
        for value, where in ((count, count_from), (index, index_from), (timeout, timeout_from)):
            if value is not None:
                raise ConfigError(f"{where}: got {value!r} without --coordinator; expected --coordinator "
                                  "HOST:PORT (or auto) with it")
        return None
    if timeout is None:
        seconds = DEFAULT_HEARTBEAT_TIMEOUT
    else:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = float("nan")
        if not 1 <= seconds <= 3600:
            raise ConfigError(f"{timeout_from}: expected seconds between 1 and 3600, got {timeout!r}")
    if address == AUTO:
        count = None if count is None else _integer("num_processes", count, count_from, 1)
        index = None if index is None else _integer("process_id", index, index_from, 0)
    else:
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{address_from}: expected HOST:PORT (a port 1-65535) or auto, got {address!r}")
        for value, name in ((count, "num_processes"), (index, "process_id")):
            if value is None:
                raise ConfigError(f"{_flag(name)}: missing with --coordinator {address}; expected {_flag(name)} "
                                  f"(or {ENVIRONMENT[name]})")
        count = _integer("num_processes", count, count_from, 1)
        index = _integer("process_id", index, index_from, 0)
    if count is not None and index is not None and index >= count:
        raise ConfigError(f"{index_from}: expected 0 <= process id < {count} (the number of processes), got {index}")
    return Cluster(address, count, index, seconds)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def runtime_heartbeat(heartbeat_timeout: float) -> int:
    """JAX's own heartbeat timeout: later than the watchdog's, so that its clear line comes first."""
    return int(2 * heartbeat_timeout) + 10


def join(settings: Cluster) -> "Watchdog | None":
    """Initializes JAX's distributed runtime (before any JAX computation) and starts the
    :class:`Watchdog`; returns it (None with a single process).

    On CPU the cross-process collectives are gloo's. A coordinator on a loopback address
    (``127.0.0.1``, ``localhost``, ``::1``) is bound there rather than on every interface.

    Raises:
      ConfigError: the runtime could not be joined (the message names the coordinator).
    """
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    options: dict[str, Any] = {
        "heartbeat_timeout_seconds": runtime_heartbeat(settings.heartbeat_timeout),
        "shutdown_timeout_seconds": runtime_heartbeat(settings.heartbeat_timeout),
    }
    if settings.coordinator != AUTO:
        options.update(coordinator_address=settings.coordinator)
        if _is_loopback(settings.coordinator.rpartition(":")[0]):
            options.update(coordinator_bind_address=settings.coordinator)
    if settings.num_processes is not None:
        options.update(num_processes=settings.num_processes)
    if settings.process_id is not None:
        options.update(process_id=settings.process_id)
    try:
        jax.distributed.initialize(**options)
    except Exception as error:  # noqa: BLE001 - JAX raises ValueError, RuntimeError or its own types
        text = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise ConfigError(f"--coordinator: cannot join {settings.coordinator} as process {settings.process_id} of "
                          f"{settings.num_processes} ({text}); expected every process started with the same "
                          "--coordinator and --num-processes and its own --process-id") from None
    if jax.process_count() == 1:
        return None
    return Watchdog(settings.heartbeat_timeout).start()


def _client():
    from jax._src import distributed  # noqa: PLC0415 - the runtime's client has no public name

    return distributed.global_state.client


BARRIER_TIMEOUT = 1800.0
"""Seconds :func:`wait_for_all` waits for the slowest process (a dead one is caught sooner, by the
:class:`Watchdog`)."""
_BARRIERS = [0]  # barriers passed by this process: every process passes the same ones, in order
PAUSE_BEFORE_BARRIER = "UNIGEN_TEST_PAUSE_BEFORE_BARRIER"
"""Test hook: seconds this process sleeps before its first :func:`wait_for_all`, as a process that
compiles slowly would (tests/test_hosts.py)."""


def wait_for_all(what: str, timeout: float = BARRIER_TIMEOUT) -> None:
    """Waits until every process of the run has got here (a barrier of JAX's coordination
    service); nothing with a single process.

    Called before the first run of each compiled step, after compiling it: gloo, the CPU
    collectives, connects the processes at their first collective and gives up after 30 s, so
    processes that finish importing, loading and compiling more than 30 s apart (a loaded
    machine, a slower host) would otherwise fail there. The wait releases the GIL, so the
    :class:`Watchdog` still ends the process when a peer dies meanwhile.

    Raises:
      RuntimeError: the others did not arrive within ``timeout`` seconds (one line naming ``what``).
    """
    import jax

    if jax.process_count() == 1:
        return
    _BARRIERS[0] += 1
    if _BARRIERS[0] == 1 and os.environ.get(PAUSE_BEFORE_BARRIER):
        time.sleep(float(os.environ[PAUSE_BEFORE_BARRIER]))
    try:
        _client().wait_at_barrier(f"unigen/{_BARRIERS[0]}", int(timeout * 1000))
    except Exception as error:  # noqa: BLE001 - JAX's runtime error type is not public
        lines = str(error).strip().splitlines()
        raise RuntimeError(f"process {jax.process_index()} of {jax.process_count()} waited {timeout:g} s for the "
                           f"others before {what}; expected every process there ({lines[0][:200] if lines else ''})") from None


def _by_process(entries: list[tuple[str, str]]) -> dict[int, str]:
    """``[("unigen/alive/1", "7"), ...]`` as ``{1: "7", ...}`` (the key's last part is the process)."""
    return {int(key.rsplit("/", 1)[-1]): value for key, value in entries}


class Watchdog:
    """Ends this process, with one line on stderr, when another process of the run stops."""

    def __init__(self, timeout: float, *, stream=None):
        import jax

        self.timeout = float(timeout)
        self.index, self.count = jax.process_index(), jax.process_count()
        self._stream = stream
        self._client = _client()
        self._beats = 0
        now = time.monotonic()
        self._seen = {peer: (None, now) for peer in range(self.count) if peer != self.index}
        self._reached = now  # the last time the coordination service answered
        self._done: set[int] = set()
        self._finished = False
        self._lock = threading.Lock()

    def start(self) -> "Watchdog":
        threading.Thread(target=self._beat, name="unigen-heartbeat", daemon=True).start()
        threading.Thread(target=self._judge, name="unigen-watchdog", daemon=True).start()
        return self

    def finish(self) -> None:
        """Says that this process is done with collectives: the others stop watching it."""
        self._finished = True
        try:
            self._client.key_value_set(f"{_DONE}{self.index}", "1", allow_overwrite=True)
        except Exception:  # noqa: BLE001 - the coordinator may be gone already; nothing to tell
            pass

    def _beat(self) -> None:
        while True:
            try:
                self._beats += 1
                self._client.key_value_set(f"{_ALIVE}{self.index}", str(self._beats), allow_overwrite=True)
                alive = _by_process(self._client.key_value_dir_get(_ALIVE))
                done = _by_process(self._client.key_value_dir_get(_DONE))
            except Exception:  # noqa: BLE001 - an unreachable service is judged by its silence
                time.sleep(_POLL_SECONDS)
                continue
            now = time.monotonic()
            with self._lock:
                self._reached = now
                self._done |= set(done)
                for peer, (value, since) in self._seen.items():
                    current = alive.get(peer)
                    if current is not None and current != value:
                        self._seen[peer] = (current, now)
            time.sleep(_POLL_SECONDS)

    def silent(self) -> str | None:
        """Why the run cannot go on (a silent peer or coordinator), or None."""
        now = time.monotonic()
        with self._lock:
            if now - self._reached > self.timeout:
                return (f"the coordination service (process 0) has not answered for {now - self._reached:.0f} s "
                        f"(heartbeat timeout {self.timeout:g} s)")
            for peer, (_, since) in sorted(self._seen.items()):
                if peer not in self._done and now - since > self.timeout:
                    return (f"process {peer} of {self.count} has sent no heartbeat for {now - since:.0f} s "
                            f"(heartbeat timeout {self.timeout:g} s)")
        return None

    def _judge(self) -> None:
        while not self._finished:
            time.sleep(_POLL_SECONDS)
            why = self.silent()
            if why is not None and not self._finished:
                self.stop(why)

    def stop(self, why: str) -> None:
        """Prints the one line that ends this process (once, whichever thread comes first) and exits."""
        with self._lock:
            stream = self._stream or sys.stderr
            print(f"unigen: error: process {self.index} of {self.count} stops: {why}; another process died or "
                  "hangs, so the run cannot go on (restart every process with --resume to continue from the "
                  "last checkpoint)", file=stream, flush=True)
            os._exit(EXIT_STATUS)


@contextlib.contextmanager
def guarded(watchdog: Watchdog | None) -> Iterator[None]:
    """Runs the block; in a run of several processes an error of JAX's runtime (a collective that
    failed: how a peer's death shows first on a survivor) ends the process at once with one line.

    Exiting at once (``os._exit``) also skips JAX's shutdown barrier, which would wait for the
    dead process until the runtime's own timeout and then abort with a C++ stack trace.
    """
    try:
        yield
    except (UnigenError, KeyboardInterrupt):
        raise
    except Exception as error:
        if watchdog is None:
            raise
        lines = str(error).strip().splitlines()
        watchdog.stop(f"a collective failed ({type(error).__name__}: {lines[0][:200] if lines else ''})")


def local(tree: Any) -> Any:
    """A fully replicated pytree of global arrays as host NumPy arrays when there are several
    processes (so that process 0 alone can compute with it), else ``tree`` as it is."""
    import jax
    import numpy as np

    return tree if jax.process_count() == 1 else jax.tree.map(np.asarray, tree)


def leave(watchdog: Watchdog | None) -> None:
    """Ends this process's part in the collectives: the watchdog stops, the runtime shuts down (a
    barrier of all processes), so that process 0 computes the summary alone and the others exit."""
    if watchdog is None:
        return
    import jax

    watchdog.finish()
    jax.distributed.shutdown()
