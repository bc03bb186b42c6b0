r"""A hand-written GAN training step in plain JAX + optax: the GAN baseline of the throughput race.

The networks of ``unigen bench modes`` on 2-D data: generator 2-128-128-128-2 and discriminator
2-128-128-128-1 (log-odds), ReLU, LeCun-normal weights and zero biases. One step is the
discriminator's update, then the generator's (non-saturating loss), each with its own Adam state:

.. math::  \mathcal{L}_D = \mathbb{E}_{x}[\operatorname{softplus}(-d_\phi(x))]
           + \mathbb{E}_{z}[\operatorname{softplus}(d_\phi(G_\theta(z)))], \qquad
           \mathcal{L}_G = \mathbb{E}_{z}[\operatorname{softplus}(-d_\phi(G_\theta(z)))],

one noise draw per batch row with its own key (``jax.random.split``), phase ``i`` of step ``t``
keyed by ``fold_in(fold_in(run_key, t), i)``, the way unigen draws them. Jitted with the state
donated; ``make_scan_step`` runs K steps in one call. Nothing here imports unigen.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from benchmarks.baselines import steps

DATA_DIM = 2
NOISE_DIM = 2
HIDDEN = (128, 128, 128)


class State(NamedTuple):
    """Both networks' parameters and Adam states, the step count and the run key (key data)."""

    generator: list
    discriminator: list
    generator_opt: optax.OptState
    discriminator_opt: optax.OptState
    step: jax.Array
    key: jax.Array


def init_mlp(key: jax.Array, widths: tuple[int, ...]) -> list[tuple[jax.Array, jax.Array]]:
    initializer = jax.nn.initializers.lecun_normal()
    keys = jax.random.split(key, len(widths) - 1)
    return [(initializer(k, (a, b), jnp.float32), jnp.zeros((b,), jnp.float32))
            for k, a, b in zip(keys, widths[:-1], widths[1:])]


def mlp(layers: list, h: jax.Array) -> jax.Array:
    for w, b in layers[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = layers[-1]
    return h @ w + b


def init(key: jax.Array, optimizer: optax.GradientTransformation) -> State:
    g_key, d_key, run_key = jax.random.split(key, 3)
    generator = init_mlp(g_key, (NOISE_DIM, *HIDDEN, DATA_DIM))
    discriminator = init_mlp(d_key, (DATA_DIM, *HIDDEN, 1))
    return State(generator, discriminator, optimizer.init(generator), optimizer.init(discriminator),
                 jnp.zeros((), jnp.int32), jax.random.key_data(run_key))


def _fake(generator: list, key: jax.Array, rows: int) -> jax.Array:
    keys = jax.random.split(key, rows)
    z = jax.vmap(lambda k: jax.random.normal(k, (NOISE_DIM,), jnp.float32))(keys)
    return mlp(generator, z)


def discriminator_loss(discriminator: list, generator: list, key: jax.Array, x: jax.Array) -> jax.Array:
    fake = _fake(generator, key, x.shape[0])
    return (jnp.mean(jax.nn.softplus(-mlp(discriminator, x)))
            + jnp.mean(jax.nn.softplus(mlp(discriminator, fake))))


def generator_loss(generator: list, discriminator: list, key: jax.Array, rows: int) -> jax.Array:
    return jnp.mean(jax.nn.softplus(-mlp(discriminator, _fake(generator, key, rows))))


def update(optimizer: optax.GradientTransformation, state: State, x: jax.Array) -> tuple[State, jax.Array]:
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    discriminator, d_opt, d_loss = steps.descend(optimizer, discriminator_loss, state.discriminator,
                                                 state.discriminator_opt, state.generator,
                                                 jax.random.fold_in(step_key, 0), x)
    generator, g_opt, g_loss = steps.descend(optimizer, generator_loss, state.generator, state.generator_opt,
                                             discriminator, jax.random.fold_in(step_key, 1), x.shape[0])
    return State(generator, discriminator, g_opt, d_opt, state.step + 1, state.key), jnp.stack([d_loss, g_loss])


def make_step(optimizer: optax.GradientTransformation):
    """``step(state, x[B, 2]) -> (state, [d_loss, g_loss])``, jitted, donating ``state``."""
    return steps.jitted_step(update, optimizer)


def make_scan_step(optimizer: optax.GradientTransformation):
    """``run(state, xs[K, B, 2]) -> (state, losses[K, 2])``: K steps in one call."""
    return steps.jitted_scan(update, optimizer)
