"""Checkpoints with orbax-checkpoint: atomic saves, validated restores.

Orbax writes each step to a temporary directory and renames it when complete, so a run killed
mid-save leaves the previous checkpoint intact. Restores are checked against the structure,
shapes and dtypes of the state the resuming run expects, and any failure to read becomes a
:class:`~unigen.errors.CheckpointError` naming the directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from unigen.errors import CheckpointError


class Checkpoints:
    """The checkpoints of one run, in ``directory`` (one subdirectory per saved step)."""

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
        )
        try:
            self._manager = ocp.CheckpointManager(
                self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler()
            )
        except Exception as error:  # orbax raises many types for an unreadable directory
            raise CheckpointError(
                f"checkpoint directory {self.directory}: cannot be opened ({error}); "
                "expected a directory of orbax checkpoints"
            ) from error

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Saves ``state`` (a pytree of arrays) as step ``step`` and waits until it is on disk."""
        self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
        self._manager.wait_until_finished()

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
        where = self.directory / str(step)
        try:
            stored = self._manager.item_metadata(step)
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {where}: cannot be read ({type(error).__name__}: {error}); "
                "it is corrupt or not an orbax checkpoint"
            ) from error
        _check_matches(stored, like, where)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {where}: cannot be restored ({type(error).__name__}: {error}); "
                "it is corrupt or was written by a different model"
            ) from error

    def close(self) -> None:
        self._manager.close()


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
