"""benchmarks/discrete_sbn.py's step plumbing: the fused row runs the same steps as the 1-step row,
the batch's noise has the shapes and range the estimators read, the model's log-mass is Bernoulli's."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import xlogy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import discrete_sbn  # noqa: E402


def test_bernoulli_log_prob_is_the_bernoulli_log_mass():
    logits = jnp.asarray([-30.0, -2.5, 0.0, 0.7, 12.0])
    values = jnp.asarray([1.0, 0.0, 1.0, 0.0, 0.3])  # the last relaxed, as REBAR's control evaluates it
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    v = np.asarray(values, np.float64)
    # oracle: v log p + (1 - v) log(1 - p) from the probabilities, in float64
    expected = float(np.sum(xlogy(v, p) + xlogy(1 - v, 1 - p)))
    assert float(discrete_sbn.bernoulli_log_prob(logits, values)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("model, name", [("linear", "rebar"), ("two-layer", "vimco")])
def test_draw_noise_shapes_and_range(model, name):
    noise = discrete_sbn.draw_noise(model, name, jax.random.key(0), 3)
    shapes = discrete_sbn.noise_shapes(model, name)
    assert {k: v.shape for k, v in noise.items()} == {k: (3,) + s for k, s in shapes.items()}
    every = jnp.concatenate([v.reshape(-1) for v in noise.values()])
    assert float(every.min()) > 0.0 and float(every.max()) < 1.0
    # the kinds are different numbers (one call cut in parts, not one part repeated)
    parts = list(noise.values())
    assert not np.allclose(np.asarray(parts[0]), np.asarray(parts[1]))


def test_fused_steps_equal_the_steps_one_call_each():
    pixel_mean = np.full(discrete_sbn.DATA_DIM, 0.3, np.float32)
    params = discrete_sbn.init("linear", jax.random.key(1), pixel_mean)
    xs = jax.random.bernoulli(jax.random.key(2), 0.3, (3, 4, discrete_sbn.DATA_DIM)).astype(jnp.float32)
    initial, step = discrete_sbn.make_step("linear", "score", 1e-2, 1e-3)
    fused = discrete_sbn.make_fused_steps("linear", "score", 1e-2, 1e-3)
    key = jax.random.key(3)
    one = (params, {}, initial(params, {}))
    for i in range(xs.shape[0]):
        one = step(*one, xs[i], key, i)
    many = fused(params, {}, initial(params, {}), xs, key)
    for a, b in zip(jax.tree.leaves(one[0]), jax.tree.leaves(many[0]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(one[0]), jax.tree.leaves(params)))
    assert moved > 1e-3  # the steps did something (lr 1e-2, 3 steps)
