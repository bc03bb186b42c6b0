"""Tiny algorithms with closed-form training trajectories, shared by the trainer tests."""

import jax
import jax.numpy as jnp
import numpy as np

from unigen.core import Algorithm, Phase


class ArraySource:
    """Batch ``t`` is rows ``[tB, (t+1)B)`` of ``x`` (cyclic): a stateless batch source."""

    def __init__(self, x: np.ndarray, batch_size: int):
        self.x, self.batch_size = np.asarray(x, np.float32), batch_size

    def at(self, step, *, process_index=0, process_count=1):
        rows = (step * self.batch_size + np.arange(self.batch_size)) % len(self.x)
        local = self.batch_size // process_count
        return {"x": self.x[rows][process_index * local : (process_index + 1) * local]}


def mean_tracking(dim: int = 3) -> Algorithm:
    """Phase "A" moves ``a`` toward the batch mean; phase "B" then moves ``b`` toward the new ``a``.

    With SGD at rate ``lr`` the trajectory is exact: a ← a − lr(a − x̄_t), then b ← b − lr(b − a).
    """

    def loss_a(params, key, batch):
        return 0.5 * jnp.sum((params["a"] - jnp.mean(batch["x"], axis=0)) ** 2), {}

    def loss_b(params, key, batch):
        return 0.5 * jnp.sum((params["b"] - params["a"]) ** 2), {"b0": params["b"][0]}

    init = lambda key: {"a": jnp.zeros(dim), "b": jnp.ones(dim)}  # noqa: E731
    return Algorithm(init, (Phase("A", "a", loss_a), Phase("B", "b", loss_b)))


def mean_tracking_oracle(source: ArraySource, steps: int, lr: float, dim: int = 3):
    a, b = np.zeros(dim), np.ones(dim)
    for t in range(steps):
        a = a - lr * (a - source.at(t)["x"].mean(0))
        b = b - lr * (b - a)
    return a, b


def noisy_regression(dim: int = 4) -> Algorithm:
    """A stochastic loss with per-example keys: mean over the batch of ½‖w − x + ε‖², ε ~ N(0, I).

    Its randomness comes from ``split(key, B)`` per example, as every unigen loss does, so the
    result must not depend on how the batch is split over devices.
    """

    def per_example(w, key, x):
        noise = jax.random.normal(key, x.shape)
        return 0.5 * jnp.sum((w * jnp.tanh(x) - x + noise) ** 2)

    def loss(params, key, batch):
        keys = jax.random.split(key, batch["x"].shape[0])
        values = jax.vmap(per_example, (None, 0, 0))(params["w"], keys, batch["x"])
        return jnp.mean(values), {}

    init = lambda key: {"w": jax.random.normal(key, (dim,))}  # noqa: E731
    return Algorithm(init, (Phase("fit", "w", loss),))
