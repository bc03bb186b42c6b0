"""Checking the ``Values`` dicts a model's ``sample`` and ``log_prob`` receive (one example).

Every model family validates its inputs the same way: the keys must be one of the allowed sets,
and each value one example of the expected shape (batching is ``jax.vmap``). A wrong call names
the argument, what it got and what was expected.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

from unigen.errors import ConfigError, DataError, describe

__all__ = ["check_keys", "take"]


def take(name: str, values: Mapping[str, jax.Array], key: str, dim: int) -> jax.Array:
    """``values[key]`` as one example of shape ``[dim]``, or an error naming what was expected."""
    if key not in values:
        raise ConfigError(f"{name}: expected a value for {key!r}, got keys {sorted(values)}")
    value = jnp.asarray(values[key])
    if value.shape != (dim,):
        raise DataError(
            f"{name}[{key!r}]: expected one example of shape ({dim},) (batch with jax.vmap), "
            f"got {describe(value)}"
        )
    return value


def check_keys(name: str, values: Mapping[str, jax.Array], allowed: Sequence[set[str]]) -> None:
    """:class:`ConfigError` unless the keys of ``values`` are one of the ``allowed`` sets."""
    if set(values) not in allowed:
        expected = " or ".join(str(sorted(a)) for a in allowed)
        raise ConfigError(f"{name}: expected keys {expected}, got {sorted(values)}")
