"""Training: one trainer for every algorithm, data parallel, checkpointed."""

from unigen.training.checkpoint import Checkpoints
from unigen.training.trainer import (
    FitResult,
    Trainer,
    TrainState,
    fit,
    make_optimizer,
    make_trainer,
)

__all__ = ["Checkpoints", "FitResult", "TrainState", "Trainer", "fit", "make_optimizer", "make_trainer"]
