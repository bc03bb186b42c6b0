"""unigen: the unified view of deep generative models, in JAX.

The protocols of :mod:`unigen.core` are imported when first used, so that ``import unigen``
(and the command line's start, where Ctrl-C must stay a one-line exit) does not import JAX.
"""

from __future__ import annotations

from unigen.errors import CheckpointError, ConfigError, DataError, TrainingDiverged, UnigenError

__all__ = [
    "Algorithm",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Inference",
    "Joint",
    "Model",
    "Phase",
    "TrainingDiverged",
    "UnigenError",
]
__version__ = "0.1.0"
_FROM_CORE = ("Algorithm", "Inference", "Joint", "Model", "Phase")


def __getattr__(name: str) -> object:
    if name in _FROM_CORE:
        from unigen import core

        return getattr(core, name)
    raise AttributeError(f"module 'unigen' has no attribute {name!r}")
