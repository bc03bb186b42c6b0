"""Checkpoints with orbax-checkpoint: atomic saves, verified and validated restores.

Orbax writes each step to a temporary directory and renames it when complete, so a run killed
mid-save leaves the previous checkpoint intact. After orbax finishes, unigen records the SHA-256
of every file of the step in ``unigen_sha256.json`` inside it (written atomically); a step counts
as complete only with that record. The run that owns the directory (``discard_incomplete=True``)
first deletes what a killed save left: step directories without their record and orbax's
temporary directories, so that the step can be saved again. A restore first checks the files against the record (so a
corrupt checkpoint is refused before orbax reads it: orbax may otherwise read damaged bytes
without noticing, or fail noisily from background threads), then checks the stored arrays
against the structure, shapes and dtypes the resuming run expects. Every failure is a
:class:`~unigen.errors.CheckpointError` naming the checkpoint.

With several processes (``jax.distributed``) the state is replicated, so process 0 alone saves
it, as host arrays, and every process reads it alone: the other processes write nothing, and a
checkpoint restores on any number of processes and devices.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from unigen.errors import CheckpointError, StorageError
from unigen.training.settled import settled

MANIFEST = "unigen_sha256.json"
ORBAX_TEMPORARY = ".orbax-checkpoint-tmp"
# Test hook: seconds to sleep between orbax's save and the SHA-256 record, so that a test can
# kill a run inside a checkpoint save (tests/test_faults.py).
PAUSE_BEFORE_RECORD = "UNIGEN_TEST_PAUSE_BEFORE_RECORD"


def _orbax():
    """orbax.checkpoint, imported on first use (~0.3 s): a run without checkpoints never pays it."""
    import orbax.checkpoint as ocp  # noqa: PLC0415

    return ocp


class Checkpoints:
    """The checkpoints of one run, in ``directory`` (one subdirectory per saved step)."""

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3, discard_incomplete: bool = False,
                 open_now: bool = True):
        """``open_now=False`` defers importing orbax and opening its manager to :meth:`open` or
        the first use (a fresh run: after its first step, not before it)."""
        self.directory = Path(directory).absolute()
        self._max_to_keep = max_to_keep
        self._opened: Any = None
        self._alone = jax.process_count() > 1  # each process on its own; only process 0 saves
        if discard_incomplete:
            remove_incomplete(self.directory)
        if open_now:
            self.open()

    @property
    def _manager(self) -> Any:
        return self.open()

    def open(self) -> Any:
        """Opens orbax's checkpoint manager on the directory once (later calls return it).

        Raises:
          CheckpointError: the directory cannot be opened as a directory of orbax checkpoints.
        """
        if self._opened is None:
            self._opened = self._open_manager(self._max_to_keep)
        return self._opened

    def _open_manager(self, max_to_keep: int) -> Any:
        ocp = _orbax()
        index = jax.process_index()
        alone = {}
        if self._alone:  # orbax creates no directory for a process on its own: process 0 does
            if index == 0:
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise StorageError.of(self.directory, error) from None
            alone = {"multiprocessing_options": ocp.options.MultiprocessingOptions(
                primary_host=index, active_processes={index})}
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False, create=not self._alone, **alone
        )
        try:
            return ocp.CheckpointManager(
                self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler(**alone)
            )
        except Exception as error:  # orbax raises many types for an unreadable directory
            raise CheckpointError(
                f"checkpoint directory {self.directory}: cannot be opened ({error}); "
                "expected a directory of orbax checkpoints"
            ) from error

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step (one with its SHA-256 record), or None."""
        complete = [step for step in self._manager.all_steps() if (self._step_dir(step) / MANIFEST).exists()]
        return max(complete) if complete else None

    def _step_dir(self, step: int) -> Path:
        return self.directory / str(step)

    def save(self, step: int, state: Any) -> None:
        """Saves ``state`` (a pytree of arrays) as step ``step``, waits, then records its digests."""
        step_dir = self._step_dir(int(step))
        ocp = _orbax()
        if self._alone:
            state = jax.tree.map(np.asarray, state)  # replicated: every process holds all of it
            if jax.process_index() != 0:
                return
        try:
            with settled():  # a failed save leaves no write running and no traceback behind
                self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
                self._manager.wait_until_finished()
        except Exception as error:  # orbax wraps a full or read-only disk in many types
            remove_incomplete(self.directory)  # nothing half-written stays (the complete ones do)
            raise StorageError.of(step_dir, error) from None
        if jax.process_index() == 0:
            if os.environ.get(PAUSE_BEFORE_RECORD):
                time.sleep(float(os.environ[PAUSE_BEFORE_RECORD]))
            temporary = step_dir / (MANIFEST + ".tmp")
            try:
                with open(temporary, "w") as file:
                    file.write(json.dumps(_digests(step_dir), indent=1, sort_keys=True))
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, step_dir / MANIFEST)
            except OSError as error:
                remove_incomplete(self.directory)
                raise StorageError.of(step_dir / MANIFEST, error) from None

    def restore(self, like: Any, step: int | None = None) -> Any:
        """Restores the checkpoint of ``step`` (default: latest) into the structure of ``like``.

        Raises:
          CheckpointError: no checkpoint, a corrupt one, or one whose arrays do not match
            ``like`` in number, shape or dtype (a different model or optimizer).
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(
                f"checkpoint directory {self.directory}: holds no complete checkpoint; "
                "expected at least one saved step to resume from"
            )
        where = self._step_dir(step)
        _verify(where)
        try:
            stored = self._manager.item_metadata(step)
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {where}: cannot be read ({_brief(error)}); "
                "it is corrupt or not an orbax checkpoint"
            ) from error
        _check_matches(stored, like, where)
        ocp = _orbax()
        if self._alone:  # read as host arrays (a NumPy target), which the trainer places on the devices
            abstract = jax.tree.map(lambda leaf: np.zeros(np.shape(leaf), leaf.dtype), like)
        else:
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {where}: cannot be restored ({_brief(error)}); "
                "it is corrupt or was written by a different model"
            ) from error

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()


def remove_incomplete(directory: Path) -> list[Path]:
    """Deletes the step directories of ``directory`` that lack their SHA-256 record and orbax's
    temporary directories (what a killed save leaves); returns what it deleted."""
    removed = []
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            temporary = ORBAX_TEMPORARY in path.name
            incomplete = path.name.isdigit() and not (path / MANIFEST).exists()
            if path.is_dir() and (temporary or incomplete):
                _remove_tree(path)
                removed.append(path)
    return removed


def _remove_tree(path: Path) -> None:
    # A writer thread of an interrupted save may still add a file while the tree is removed
    # ("Directory not empty"): try again a few times.
    for attempt in range(5):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.05 * (attempt + 1))


def _digests(step_dir: Path) -> dict[str, str]:
    """The SHA-256 of every file below ``step_dir`` but the record itself, by relative path."""
    digests = {}
    for path in sorted(step_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(MANIFEST):
            digests[str(path.relative_to(step_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _verify(step_dir: Path) -> None:
    """Refuses a step whose files differ from its SHA-256 record."""
    try:
        recorded = json.loads((step_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"checkpoint {step_dir}: its SHA-256 record {MANIFEST} cannot be read ({error}); "
            "it is corrupt"
        ) from error
    found = _digests(step_dir)
    for name in sorted(set(recorded) | set(found)):
        if recorded.get(name) != found.get(name):
            state = "is missing" if name not in found else "was not saved with it" if name not in recorded else "differs from its recorded SHA-256"
            raise CheckpointError(
                f"checkpoint {step_dir}: file {name} {state}; the checkpoint is corrupt "
                "(expected the files exactly as saved)"
            )


def _brief(error: Exception) -> str:
    """The error's type and the start of its message (orbax's run to kilobytes)."""
    text = str(error).split(" [tensorstore_spec=")[0]
    return f"{type(error).__name__}: {text[:240]}{'...' if len(text) > 240 else ''}"


def _path(path: tuple) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
    return "/".join(parts)


def _check_matches(stored: Any, like: Any, where: Path) -> None:
    tree = getattr(stored, "tree", stored)
    if tree is None:
        raise CheckpointError(f"checkpoint {where}: holds no array metadata; it is corrupt")
    is_array = lambda x: hasattr(x, "shape")  # noqa: E731
    found = {_path(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_array)[0]}
    wanted = {_path(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(like)[0]}
    if set(found) != set(wanted):
        extra, missing = sorted(set(found) - set(wanted)), sorted(set(wanted) - set(found))
        raise CheckpointError(
            f"checkpoint {where}: its arrays do not match the run to resume (only in the "
            f"checkpoint: {extra[:5]}; missing from it: {missing[:5]}); it was written by a "
            "different model or optimizer"
        )
    for name, leaf in wanted.items():
        shape, dtype = tuple(getattr(found[name], "shape", ())), getattr(found[name], "dtype", None)
        expected_shape, expected_dtype = tuple(np.shape(leaf)), np.dtype(leaf.dtype)
        if shape != expected_shape or (dtype is not None and np.dtype(dtype) != expected_dtype):
            raise CheckpointError(
                f"checkpoint {where}: array {name} has shape {shape} and dtype {dtype}, the run "
                f"to resume expects shape {expected_shape} and dtype {expected_dtype}; it was "
                "written by a different model"
            )
