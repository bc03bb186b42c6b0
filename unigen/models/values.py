"""Checking what the model factories and their functions receive: sizes, and the ``Values``
dicts a model's ``sample`` and ``log_prob`` receive (one example).

Every model family validates its inputs the same way: sizes are positive ints
(:func:`positive_int`, :func:`hidden_sizes`), the keys of a ``Values`` dict must be one of the
allowed sets, and each value one example of the expected shape (batching is ``jax.vmap``). A
wrong call names the argument, what it got and what was expected. The algorithms, the metrics and
every model family use these; they live here, below all of them.
"""

from __future__ import annotations

import numbers
from typing import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp

from unigen import nets
from unigen.errors import ConfigError, DataError, describe

__all__ = ["bernoulli_entries", "check_keys", "checked_network", "hidden_sizes", "positive_int", "take"]


def bernoulli_entries(model: object) -> tuple[str, ...]:
    """The batch entries a Bernoulli likelihood of ``model`` reads, whose values must lie in [0, 1]:
    ``("x",)`` when ``model.likelihood`` is ``"bernoulli"`` (a VAE on binary data, a Helmholtz
    machine), else ``()``. Every algorithm of such a model sets it as its
    :attr:`~unigen.core.Algorithm.bernoulli`, and :mod:`unigen.metrics` checks ``x`` by it."""
    return ("x",) if getattr(model, "likelihood", None) == "bernoulli" else ()


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is a positive integer (Python or NumPy), else
    :class:`ConfigError` naming ``name``, the value seen and what was expected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name}: expected a positive int, got {describe(value)}")
    return int(value)


def hidden_sizes(name: str, hidden: object) -> tuple[int, ...]:
    """``hidden`` as a tuple of positive ints (possibly empty), else :class:`ConfigError`
    naming ``name``."""
    widths = tuple(hidden) if isinstance(hidden, Iterable) and not isinstance(hidden, str) else None
    if widths is None or not all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in widths
    ):
        raise ConfigError(f"{name}: expected a sequence of positive ints, got {describe(hidden)}")
    return tuple(int(h) for h in widths)


def checked_network(
    name: str,
    value: object,
    input_name: str,
    input_dim: int,
    expected: Sequence[tuple[int, ...]],
    meaning: str,
) -> nets.Network:
    """``value`` (any form :func:`unigen.nets.network` accepts) as a :class:`~unigen.nets.Network`
    whose output for one ``input_name`` of shape ``[input_dim]`` has one of the ``expected``
    shapes, else :class:`ConfigError` naming the network, the shape seen and the shape expected
    (``meaning`` says what the output is). The shapes come from ``jax.eval_shape``."""
    net = nets.network(name, value)
    shape = nets.output_shape(name, net, (input_dim,))
    if shape not in [tuple(e) for e in expected]:
        wanted = " or ".join(str(tuple(e)) for e in expected)
        raise ConfigError(
            f"{name}: got output shape {shape} for one {input_name} of shape ({input_dim},), "
            f"expected {wanted} ({meaning})"
        )
    return net


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
