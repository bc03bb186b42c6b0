"""Exceptions raised for bad input, each naming what was seen and what was expected.

Every error a user can cause is a subclass of :class:`UnigenError` *and* of the builtin
exception a Python user would expect (``ValueError``, ``TypeError``, ...), so both
``except unigen.UnigenError`` and ``except ValueError`` work. The CLI prints these without a
traceback and exits non-zero.
"""

from __future__ import annotations


class UnigenError(Exception):
    """Base class of every error unigen raises on bad input or a failed run."""


class ConfigError(UnigenError, ValueError):
    """An argument has a value outside what is accepted (unknown name, bad size, ...)."""


class ArgumentTypeError(UnigenError, TypeError):
    """An argument of the Python API has the wrong type or structure (a string for an algorithm,
    a state whose parameter groups differ from the trainer's, ...)."""


class DataError(UnigenError, ValueError):
    """A data set is missing, empty, or has the wrong shape, dtype or values."""


class CheckpointError(UnigenError, ValueError):
    """A checkpoint is missing, corrupt, or does not match the run that tries to resume it."""


class TrainingDiverged(UnigenError, FloatingPointError):
    """A loss became NaN or Inf; the message names the step and the phase."""


class StorageError(UnigenError, OSError):
    """A run's file or directory cannot be written (read-only, no space left, not a directory)."""

    @classmethod
    def of(cls, path: object, error: Exception) -> "StorageError":
        """The one-line error for ``error`` met while writing ``path``: its ``strerror``, or the
        system's words for a full or read-only disk found in its message (orbax and tensorstore
        wrap them in long ``ValueError`` texts), or the start of its message."""
        import errno
        import os

        text = str(error)
        said = [os.strerror(number) for number in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOTDIR)
                if os.strerror(number) in text]
        why = getattr(error, "strerror", None) or (said[0] if said else f"{type(error).__name__}: {text[:200]}")
        return cls(f"{path}: cannot be written ({why}); expected a writable directory with free space")


class RunInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM; ``exit_status`` is 128 + the signal's number.

    A ``KeyboardInterrupt``, so that ``except KeyboardInterrupt`` still catches Ctrl-C.
    """

    def __init__(self, signal_number: int, message: str):
        super().__init__(message)
        self.signal_number = signal_number
        self.exit_status = 128 + signal_number


class DonatedStateError(UnigenError, RuntimeError):
    """A training state was used again after a step consumed (donated) its buffers."""


def brief(error: BaseException) -> str:
    """``"TypeName: first line of the message"`` (at most 200 characters of it), for one-line reports."""
    lines = str(error).strip().splitlines()
    return type(error).__name__ + (f": {lines[0][:200]}" if lines else "")


def describe(value: object) -> str:
    """A short description of ``value`` for error messages (shape and dtype for arrays)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"array of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
