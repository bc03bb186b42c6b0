r"""A hand-written wake-sleep step for the SBN-200 in plain JAX + optax: the SBN baseline of the race.

The Helmholtz machine ``helmholtz_machine(784, (200,))``: generative p(h) = Bernoulli(sigmoid(a))
over 200 units and p(x | h) = Bernoulli(sigmoid(W h + b)) over 784 pixels (θ = a, W, b);
recognition q(h | x) = Bernoulli(sigmoid(V x + c)) (λ = V, c); weights N(0, 0.1²), biases 0.
One step is the wake phase in θ, then the sleep phase in λ, each with its own Adam state:

.. math::  \mathcal{L}_{wake} = -\tfrac1B \sum_b \log p_\theta(x_b, h_b),\ h_b \sim q_\lambda(h \mid x_b);
   \qquad \mathcal{L}_{sleep} = -\tfrac1B \sum_b \log q_\lambda(h_b \mid x_b),\ (h_b, x_b) \sim p_\theta,

one draw per example with its own key, phase ``i`` of step ``t`` keyed by
``fold_in(fold_in(run_key, t), i)``. Jitted with the state donated; ``make_scan_step`` runs K steps
in one call. Nothing here imports unigen.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from benchmarks.baselines import steps

DATA_DIM = 784
HIDDEN = 200
INIT_SCALE = 0.1


class State(NamedTuple):
    theta: dict
    lam: dict
    theta_opt: optax.OptState
    lam_opt: optax.OptState
    step: jax.Array
    key: jax.Array


def init(key: jax.Array, optimizer: optax.GradientTransformation) -> State:
    w_key, v_key, run_key = jax.random.split(key, 3)
    theta = {"prior": jnp.zeros((HIDDEN,), jnp.float32),
             "w": INIT_SCALE * jax.random.normal(w_key, (HIDDEN, DATA_DIM), jnp.float32),
             "b": jnp.zeros((DATA_DIM,), jnp.float32)}
    lam = {"v": INIT_SCALE * jax.random.normal(v_key, (DATA_DIM, HIDDEN), jnp.float32),
           "c": jnp.zeros((HIDDEN,), jnp.float32)}
    return State(theta, lam, optimizer.init(theta), optimizer.init(lam), jnp.zeros((), jnp.int32),
                 jax.random.key_data(run_key))


def bernoulli_log_prob(logits: jax.Array, values: jax.Array) -> jax.Array:
    """``sum_i log Bernoulli(values_i | sigmoid(logits_i))`` over the last axis."""
    return jnp.sum(values * logits - jax.nn.softplus(logits), axis=-1)


def _bits(keys: jax.Array, logits: jax.Array) -> jax.Array:
    return jax.vmap(lambda k, l: jax.random.bernoulli(k, jax.nn.sigmoid(l)).astype(jnp.float32))(keys, logits)


def wake_loss(theta: dict, lam: dict, key: jax.Array, x: jax.Array) -> jax.Array:
    h = jax.lax.stop_gradient(_bits(jax.random.split(key, x.shape[0]), x @ lam["v"] + lam["c"]))
    log_joint = (bernoulli_log_prob(jnp.broadcast_to(theta["prior"], h.shape), h)
                 + bernoulli_log_prob(h @ theta["w"] + theta["b"], x))
    return -jnp.mean(log_joint)


def sleep_loss(lam: dict, theta: dict, key: jax.Array, rows: int) -> jax.Array:
    keys = jax.random.split(key, rows)

    def dream(k):
        k_h, k_x = jax.random.split(k)
        h = jax.random.bernoulli(k_h, jax.nn.sigmoid(theta["prior"])).astype(jnp.float32)
        x = jax.random.bernoulli(k_x, jax.nn.sigmoid(h @ theta["w"] + theta["b"])).astype(jnp.float32)
        return h, x

    h, x = jax.lax.stop_gradient(jax.vmap(dream)(keys))
    return -jnp.mean(bernoulli_log_prob(x @ lam["v"] + lam["c"], h))


def update(optimizer: optax.GradientTransformation, state: State, x: jax.Array) -> tuple[State, jax.Array]:
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    theta, theta_opt, w_loss = steps.descend(optimizer, wake_loss, state.theta, state.theta_opt, state.lam,
                                             jax.random.fold_in(step_key, 0), x)
    lam, lam_opt, s_loss = steps.descend(optimizer, sleep_loss, state.lam, state.lam_opt, theta,
                                         jax.random.fold_in(step_key, 1), x.shape[0])
    return State(theta, lam, theta_opt, lam_opt, state.step + 1, state.key), jnp.stack([w_loss, s_loss])


def make_step(optimizer: optax.GradientTransformation):
    """``step(state, x[B, 784]) -> (state, [wake_loss, sleep_loss])``, jitted, donating ``state``."""
    return steps.jitted_step(update, optimizer)


def make_scan_step(optimizer: optax.GradientTransformation):
    """``run(state, xs[K, B, 784]) -> (state, losses[K, 2])``: K steps in one call."""
    return steps.jitted_scan(update, optimizer)
