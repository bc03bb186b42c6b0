r"""The Flax examples VAE (``flax/examples/vae``, Linen), re-written here for timing.

Its model, loss and optimizer as that example has them, with the hidden width a parameter (the
example uses 500; the race uses 400 so that every row trains the same 784-400-20 network): the
encoder ``Dense(hidden)`` + ReLU with two heads ``Dense(latents)`` for the mean and the
log-variance, the decoder ``Dense(hidden)`` + ReLU + ``Dense(784)`` giving Bernoulli logits; the
loss is the batch mean of

.. math::  -\sum_i \big[x_i \log \sigma(l_i) + (1 - x_i) \log(1 - \sigma(l_i))\big]
   - \tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big),

with one reparameterized draw per example from one key per step, ``optax.adam(1e-3)`` inside a
``flax.training.train_state.TrainState``. The training step is ``jax.jit``-compiled the way a
user writes it (no donation), and the loop splits the key on the host before every step, as
the example's loop does. Nothing here imports unigen.

Usage::

    state = create_state(jax.random.key(0), hidden=400)
    step = make_step()                           # jitted
    rng = jax.random.key(1)
    rng, key = jax.random.split(rng)
    state = step(state, x, key)                  # x: float32 [B, 784]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax.training import train_state

DATA_DIM = 784


class Encoder(nn.Module):
    hidden: int
    latents: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(self.hidden, name="fc1")(x))
        return nn.Dense(self.latents, name="fc2_mean")(h), nn.Dense(self.latents, name="fc2_logvar")(h)


class Decoder(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, z):
        return nn.Dense(DATA_DIM, name="fc2")(nn.relu(nn.Dense(self.hidden, name="fc1")(z)))


class VAE(nn.Module):
    hidden: int = 500
    latents: int = 20

    def setup(self):
        self.encoder = Encoder(self.hidden, self.latents)
        self.decoder = Decoder(self.hidden)

    def __call__(self, x, z_rng):
        mean, log_var = self.encoder(x)
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(z_rng, log_var.shape)
        return self.decoder(z), mean, log_var


def bernoulli_cross_entropy(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Per-example ``-sum_i log Bernoulli(x_i | sigmoid(logits_i))``, through log-sigmoid."""
    log_p = nn.log_sigmoid(logits)
    return -jnp.sum(x * log_p + (1.0 - x) * jnp.log(-jnp.expm1(log_p)), axis=-1)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Per-example KL(N(mean, exp(log_var)) || N(0, I))."""
    return -0.5 * jnp.sum(1.0 + log_var - jnp.square(mean) - jnp.exp(log_var), axis=-1)


def create_state(key: jax.Array, *, hidden: int = 500, latents: int = 20,
                 learning_rate: float = 1e-3) -> train_state.TrainState:
    """The example's ``TrainState`` with its initial parameters and ``optax.adam``."""
    model = VAE(hidden, latents)
    init_key, z_key = jax.random.split(key)
    params = model.init(init_key, jnp.ones((1, DATA_DIM), jnp.float32), z_key)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(learning_rate))


def make_step():
    """``step(state, x[B, 784], z_rng) -> state``, one Adam step, ``jax.jit`` without donation."""

    def train_step(state: train_state.TrainState, x: jax.Array, z_rng: jax.Array) -> train_state.TrainState:
        def loss_fn(params):
            logits, mean, log_var = state.apply_fn({"params": params}, x, z_rng)
            return bernoulli_cross_entropy(logits, x).mean() + gaussian_kl(mean, log_var).mean()

        return state.apply_gradients(grads=jax.grad(loss_fn)(state.params))

    return jax.jit(train_step)
