"""What the plain-JAX GAN and SBN baselines share: one optimizer step of one loss, and the jitted
step wrappers (state donated)."""

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


def descend(optimizer: optax.GradientTransformation, loss: Callable[..., jax.Array], params: Any,
            opt_state: Any, *args: Any) -> tuple[Any, Any, jax.Array]:
    """One step of ``optimizer`` on ``loss(params, *args)``: ``(params, opt_state, loss value)``."""
    value, grads = jax.value_and_grad(loss)(params, *args)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value
