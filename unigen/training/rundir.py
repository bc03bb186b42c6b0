"""The run directory of ``unigen train --out DIR``: safe at every instant, one writer at a time.

What it guarantees (the command line's ``train`` calls these in order):

* :func:`write_json` writes ``config.json`` and ``summary.json`` whole or not at all (a temporary
  file, flushed to disk, then renamed over the old one).
* :class:`RunLock`: one writer per directory. ``.unigen.lock`` is locked with ``flock``; a second
  writer is refused naming the pid that holds it; the kernel drops the lock of a process that
  died, so the next run takes it over. Re-entrant within one process (the command line locks,
  then :func:`~unigen.training.fit` locks again).
* :func:`open_run`: locks, then either starts a fresh run (writes ``config.json``) or continues
  one. ``--resume`` on a missing or empty directory, or one without a complete checkpoint,
  starts from step 0 and says so; a resumed run's ``config.json`` is rewritten only when the
  run finishes, so a failed ``--resume`` leaves it as it was. A fresh run that fails before its
  first step removes what it wrote, leaving the directory as it found it.
* :func:`finished_summary`: a run that already finished its steps is not run again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from unigen.errors import ConfigError, StorageError
from unigen.training.checkpoint import MANIFEST

LOCK = ".unigen.lock"
CONFIG = "config.json"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
_TEMPORARY = ".tmp"


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON ``null``), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Writes ``value`` as JSON (non-finite numbers as null) to ``path`` atomically."""
    path = Path(path)
    temporary = path.with_name(path.name + _TEMPORARY)
    text = json.dumps(finite_or_null(value), indent=2) + "\n"
    try:
        with open(temporary, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise StorageError.of(path, error) from None


def read_json_object(path: str | os.PathLike, argument: str) -> dict[str, Any]:
    """The JSON object in ``path``; a one-line ConfigError naming ``argument`` and the file otherwise."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{argument}: {path} not found; expected a directory written by `unigen train`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{argument}: {path} cannot be read as JSON ({error}); expected the file "
                          "`unigen train` wrote") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{argument}: {path} holds {type(value).__name__} {str(value)[:40]}; expected a "
                          "JSON object as `unigen train` writes it")
    return value


class RunLock:
    """An exclusive ``flock`` on ``DIR/.unigen.lock`` holding the writer's pid (re-entrant per process)."""

    _held: dict[str, list] = {}  # realpath -> [file, count]

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / LOCK
        self._key: str | None = None

    def acquire(self) -> None:
        """Takes the lock, or raises ConfigError naming the process that holds it."""
        key = os.path.realpath(self.path)
        if key in RunLock._held:
            RunLock._held[key][1] += 1
            self._key = key
            return
        try:
            file = open(self.path, "a+")
        except OSError as error:
            raise StorageError.of(self.path, error) from None
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise ConfigError(
                f"--out: {self.path.parent} is being written by another process (pid {holder}, holding "
                f"{self.path}); expected one writer at a time: wait for it to end or choose another --out"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        RunLock._held[key] = [file, 1]
        self._key = key

    def release(self) -> None:
        if self._key is None:
            return
        entry = RunLock._held[self._key]
        entry[1] -= 1
        if entry[1] == 0:
            fcntl.flock(entry[0].fileno(), fcntl.LOCK_UN)
            entry[0].close()
            del RunLock._held[self._key]
        self._key = None


@contextlib.contextmanager
def locked(directory: str | os.PathLike) -> Iterator[None]:
    """Holds :class:`RunLock` on ``directory`` (which must exist) for the block."""
    lock = RunLock(directory)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def complete_checkpoint(directory: str | os.PathLike) -> int | None:
    """The newest step in ``DIR/checkpoints`` with its integrity record, or None."""
    steps = [int(p.name) for p in (Path(directory) / CHECKPOINTS).glob("*")
             if p.name.isdigit() and (p / MANIFEST).is_file()]
    return max(steps) if steps else None


def finished_summary(directory: str | os.PathLike, steps: int) -> dict[str, Any] | None:
    """The summary of a run in ``directory`` that already finished ``steps`` steps, or None."""
    directory = Path(directory)
    summary = directory / SUMMARY
    if not summary.is_file():
        return None
    done = complete_checkpoint(directory)
    if done is None or done < steps:
        return None
    return read_json_object(summary, "--resume")


def _ours(path: Path) -> bool:
    """Whether ``path`` is a file or directory a run writes (what --resume may find in --out)."""
    names = (LOCK, CONFIG, SUMMARY, METRICS, CHECKPOINTS, "samples.png")
    return path.name in names or path.name.endswith(_TEMPORARY)


def check_out(out: Path, *, resume: bool) -> None:
    """Refuses an ``--out`` that is a file, a fresh run's ``--out`` that is not empty, or a
    ``--resume`` of a directory holding files but no run (before anything is written or run)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file; expected a directory (new, or a run to --resume)")
    existed = out.exists()
    if resume:
        strange = sorted(p.name for p in out.iterdir() if not _ours(p)) if existed else []
        if strange and not (out / CONFIG).exists():
            raise ConfigError(f"--out: {out} holds {strange[:3]} but no {CONFIG}; expected a run directory of "
                              "`unigen train` (or an empty one) to --resume")
    elif existed and any(out.iterdir()):
        raise ConfigError(f"--out: {out} is not empty; expected a new directory, or --resume to continue the run in it")


@contextlib.contextmanager
def open_run(out: str | os.PathLike, config: Mapping[str, Any], *, resume: bool) -> Iterator[Path]:
    """Locks ``out`` and prepares it for training; see the module docstring.

    Fresh (``resume=False``): ``out`` must be missing or empty; ``config.json`` is written. If the
    block fails before any step was logged or saved, what was written is removed again.
    ``resume=True``: ``out`` may be missing, empty, or hold a run (then its ``config.json`` is
    kept as it is); with no complete checkpoint the run starts from step 0, and says so on stderr.
    """
    out = Path(out)
    check_out(out, resume=resume)
    existed = out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out: {out} cannot be created ({error.strerror}); expected a writable directory") from None
    with locked(out):
        fresh = not (out / CONFIG).exists()
        if resume and complete_checkpoint(out) is None:
            why = "holds no run yet" if fresh else "holds no complete checkpoint"
            print(f"unigen: --resume: {out} {why}; starting from step 0", file=sys.stderr)
        if fresh:
            write_json(out / CONFIG, config)
        try:
            yield out
        except BaseException:
            if fresh and not resume:
                _remove_if_unstarted(out, existed)
            raise


def _remove_if_unstarted(out: Path, existed: bool) -> None:
    """Removes a fresh run's files if it logged no step and saved no checkpoint."""
    metrics = out / METRICS
    if complete_checkpoint(out) is not None or (metrics.exists() and metrics.stat().st_size):
        return
    for name in (CONFIG, METRICS, LOCK):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    if not existed:
        with contextlib.suppress(OSError):
            out.rmdir()


def finish(out: str | os.PathLike, summary: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Writes ``summary.json`` and then ``config.json`` (the settings of the run that finished)."""
    out = Path(out)
    write_json(out / SUMMARY, summary)
    write_json(out / CONFIG, config)
