"""unigen: the unified view of deep generative models, in JAX."""

from unigen.core import Algorithm, Inference, Joint, Model, Phase
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
