"""Networks: Flax NNX modules that enter the core only as pytrees.

A :class:`Network` is ``(init, apply)``: ``init(key)`` builds the NNX module, splits it with
``nnx.split`` and returns its state as a plain nested dict; ``apply(params, x)`` merges that dict
back into the module (``nnx.merge``, at trace time only under ``jit``) and calls it. The core, the
optimizers and the checkpoints see nothing but the nested dict.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from unigen.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
}


class Network(NamedTuple):
    """A network as pure functions over a nested-dict parameter pytree."""

    init: Callable[[jax.Array], dict]
    apply: Callable[[dict, jax.Array], jax.Array]


class MLP(nnx.Module):
    """A multilayer perceptron; the activation is applied between layers, not after the last."""

    def __init__(self, sizes: Sequence[int], activation: str, *, rngs: nnx.Rngs):
        self.activation = activation
        self.depth = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            setattr(self, f"linear{i}", nnx.Linear(fan_in, fan_out, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for i in range(self.depth):
            x = getattr(self, f"linear{i}")(x)
            if i < self.depth - 1:
                x = act(x)
        return x


def pure(build: Callable[[nnx.Rngs], nnx.Module]) -> Network:
    """Turns an NNX module constructor ``build(rngs)`` into a :class:`Network`."""
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: build(nnx.Rngs(0))))

    def init(key: jax.Array) -> dict:
        _, state = nnx.split(build(nnx.Rngs(params=key)))
        return nnx.to_pure_dict(state)

    def apply(params: dict, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params)(x)

    return Network(init, apply)


def mlp(sizes: Sequence[int], activation: str = "tanh") -> Network:
    """An MLP with layer widths ``sizes`` (input first, output last) as a :class:`Network`."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ConfigError(f"sizes: expected at least two positive widths, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return pure(lambda rngs: MLP(sizes, activation, rngs=rngs))
