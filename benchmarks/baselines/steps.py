"""The jitted step wrappers the plain-JAX GAN and SBN baselines share (state donated)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax

Update = Callable[[optax.GradientTransformation, Any, jax.Array], tuple[Any, jax.Array]]


def jitted_step(update: Update, optimizer: optax.GradientTransformation):
    """``step(state, x) -> (state, losses)``: one ``update``, jitted, donating ``state``."""
    return jax.jit(lambda state, x: update(optimizer, state, x), donate_argnums=0)


def jitted_scan(update: Update, optimizer: optax.GradientTransformation):
    """``run(state, xs[K, ...]) -> (state, losses[K, ...])``: K updates in one call (``lax.scan``)."""
    return jax.jit(lambda state, xs: jax.lax.scan(lambda s, x: update(optimizer, s, x), state, xs),
                   donate_argnums=0)
