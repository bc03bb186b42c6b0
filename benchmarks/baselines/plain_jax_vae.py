r"""A hand-written VAE training step in plain JAX + optax: the baseline unigen is timed against.

The PyTorch-examples VAE (784-400-20): the encoder ``x -> relu(x W1 + b1) -> [mean, log_var]``
(400 hidden units, 20 latents), the decoder ``z -> relu(z W3 + b3) -> logits`` (400 hidden units,
784 Bernoulli log-odds). One training step maximizes the batch mean of

.. math::  \mathcal{L}(x) = \log p_\theta(x \mid z) - \mathrm{KL}(q(z \mid x) \,\|\, \mathcal{N}(0, I)),
   \qquad z = \mu(x) + \exp(\tfrac12 \log\sigma^2(x)) \odot \epsilon,

with the KL in closed form and one reparameterized draw per example, each example with its own
key (``jax.random.split(key, B)``, ``key = fold_in(run_key, step)``), the way unigen draws them.

Written the way one writes a fast JAX step by hand, not as a strawman: parameters are a flat dict
of arrays, the whole batch goes through each layer as one matmul, the step is one ``jax.jit`` with
the training state donated, and it returns only the loss. Nothing here imports unigen.

Usage::

    state = init(jax.random.key(0), optax.adam(1e-3))
    step = make_step(optax.adam(1e-3))          # jitted, donates ``state``
    state, loss = step(state, x)                # x: float32 [B, 784]
    run = make_scan_step(optax.adam(1e-3))      # K steps in one call with lax.scan
    state, losses = run(state, xs)              # xs: float32 [K, B, 784]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

DATA_DIM = 784
HIDDEN = 400
LATENT_DIM = 20

# (name, fan_in, fan_out) of the four dense layers.
LAYERS = (
    ("encoder_hidden", DATA_DIM, HIDDEN),
    ("encoder_out", HIDDEN, 2 * LATENT_DIM),
    ("decoder_hidden", LATENT_DIM, HIDDEN),
    ("decoder_out", HIDDEN, DATA_DIM),
)


class State(NamedTuple):
    """Everything a step changes: parameters, Adam state, step count, run key (raw key data)."""

    params: dict[str, jax.Array]
    opt_state: optax.OptState
    step: jax.Array  # int32 scalar
    key: jax.Array  # uint32 key data


def init_params(key: jax.Array) -> dict[str, jax.Array]:
    """LeCun-normal weights and zero biases (the same initializers as ``flax.nnx.Linear``)."""
    initializer = jax.nn.initializers.lecun_normal()
    params = {}
    for layer_key, (name, fan_in, fan_out) in zip(jax.random.split(key, len(LAYERS)), LAYERS):
        params[f"{name}/w"] = initializer(layer_key, (fan_in, fan_out), jnp.float32)
        params[f"{name}/b"] = jnp.zeros((fan_out,), jnp.float32)
    return params


def init(key: jax.Array, optimizer: optax.GradientTransformation) -> State:
    """The initial training state."""
    params_key, run_key = jax.random.split(key)
    params = init_params(params_key)
    return State(params, optimizer.init(params), jnp.zeros((), jnp.int32), jax.random.key_data(run_key))


def _dense(params: dict[str, jax.Array], name: str, h: jax.Array) -> jax.Array:
    return h @ params[f"{name}/w"] + params[f"{name}/b"]


def example_noise(key: jax.Array, batch: int) -> jax.Array:
    """``[batch, 20]`` standard normals, example i's from ``jax.random.split(key, batch)[i]``."""
    keys = jax.random.split(key, batch)
    return jax.vmap(lambda k: jax.random.normal(k, (LATENT_DIM,), jnp.float32))(keys)


def elbo_terms(params: dict[str, jax.Array], epsilon: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per example ``(log p(x | z), KL(q(z | x) || p(z)))``, ``[B]`` each, with ``z = mean + sd * epsilon``."""
    h = jax.nn.relu(_dense(params, "encoder_hidden", x))
    mean, log_var = jnp.split(_dense(params, "encoder_out", h), 2, axis=-1)
    z = mean + jnp.exp(0.5 * log_var) * epsilon
    logits = _dense(params, "decoder_out", jax.nn.relu(_dense(params, "decoder_hidden", z)))
    # log Bernoulli(x | sigmoid(logits)) = x * logits - softplus(logits), summed over pixels.
    reconstruction = jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)
    return reconstruction, kl


def negative_elbo(params: dict[str, jax.Array], key: jax.Array, x: jax.Array) -> jax.Array:
    """The batch mean of -ELBO for ``x`` of shape ``[B, 784]`` in {0, 1} (or [0, 1])."""
    reconstruction, kl = elbo_terms(params, example_noise(key, x.shape[0]), x)
    return jnp.mean(kl - reconstruction)


def update(optimizer: optax.GradientTransformation, state: State, x: jax.Array) -> tuple[State, jax.Array]:
    """One Adam step on the batch ``x`` (pure, not compiled)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    loss, grads = jax.value_and_grad(negative_elbo)(state.params, key, x)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return State(params, opt_state, state.step + 1, state.key), loss


def make_step(optimizer: optax.GradientTransformation):
    """``step(state, x[B, D]) -> (state, loss)``, jitted, donating ``state``."""
    return jax.jit(lambda state, x: update(optimizer, state, x), donate_argnums=0)


def make_scan_step(optimizer: optax.GradientTransformation):
    """``run(state, xs[K, B, D]) -> (state, losses[K])``: K steps in one call, donating ``state``."""
    return jax.jit(
        lambda state, xs: jax.lax.scan(lambda s, x: update(optimizer, s, x), state, xs),
        donate_argnums=0,
    )
