"""Data parallelism with ``jax.sharding``: the batch is split on a "data" mesh axis, params replicated.

The same code runs on one CPU, several local devices (GPUs, TPU cores, or forced host devices
with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) and several hosts after
``jax.distributed.initialize``: each process hands in its own slice of the global batch and
:func:`global_batch` assembles the global array with ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from unigen.errors import ConfigError

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-dimensional mesh named ``"data"`` over ``devices`` (default: all devices)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of parameters and optimizer state: a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, stacked: bool) -> NamedSharding:
    """The sharding of a batch: its batch axis split over ``"data"``.

    Args:
      mesh: the data mesh.
      stacked: whether the arrays carry a leading steps axis ``[K, B, ...]`` before the batch axis.
    """
    spec = PartitionSpec(None, DATA_AXIS) if stacked else PartitionSpec(DATA_AXIS)
    return NamedSharding(mesh, spec)


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
    """Refuses a global batch size that the devices of ``mesh`` cannot split evenly."""
    n = mesh.size
    if global_batch_size % n:
        raise ConfigError(
            f"batch_size: {global_batch_size} is not divisible by the number of devices ({n}); "
            f"expected a multiple of {n}"
        )


def global_batch(local: Any, sharding: NamedSharding) -> Any:
    """Assembles each process's local slice (NumPy arrays) into global ``jax.Array`` s."""
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), local)
