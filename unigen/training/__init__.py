"""Training: one trainer for every algorithm, data parallel, checkpointed."""

from unigen.training.callbacks import Callback, every
from unigen.training.checkpoint import Checkpoints
from unigen.training.trainer import (
    FitResult,
    Trainer,
    TrainState,
    fit,
    make_optimizer,
    make_trainer,
)

__all__ = [
    "Callback",
    "Checkpoints",
    "FitResult",
    "TrainState",
    "Trainer",
    "every",
    "fit",
    "make_optimizer",
    "make_trainer",
]
