"""The hand-written baselines of benchmarks/compiled_vs_hand.py are honest oracles.

For each built-in algorithm (tiny models, one batch, one key): the hand-written Algorithm of
``benchmarks/baselines/hand_losses.py`` has the compiled algorithm's phases (names, groups),
the same initial parameters, and for every phase the same loss, the same metrics and the same
gradient in the phase's groups, to float rounding (values rtol 1e-6; metrics also atol 1e-6,
for InfoGAN's information bound, a difference of two O(1) terms near 0; gradients rtol 1e-5
with atol 1e-6 for the entries near zero). Gradients are taken at perturbed parameters (the
initial biases are zero), as the trainer takes them: in the phase's groups only. The
variational-EM pairs (the score-function E-step with each baseline, S = 2 draws) are perturbed
by N(0, 1), where the batch standard deviation of the learning signal is 2.4 (measured), so
NVIL's variance normalization divides by it rather than by 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.baselines import hand_losses  # noqa: E402
from unigen import algorithms  # noqa: E402
from unigen.models import helmholtz_machine, vae_model  # noqa: E402
from unigen.models.gan import gan_model  # noqa: E402
from unigen.models.infogan import infogan_model  # noqa: E402

B = 6
VAE = vae_model(5, 2, hidden=(4,), activation="tanh")
SBN = helmholtz_machine(5, (3,))
GAN = gan_model(2, 2, generator_hidden=(4,), discriminator_hidden=(4,), activation="tanh")
INFOGAN = infogan_model(2, 2, 3, generator_hidden=(4,), discriminator_hidden=(4,),
                        inference_hidden=(4,), activation="tanh")

PAIRS = {
    "vae": (lambda: algorithms.vae(VAE), lambda: hand_losses.vae(VAE), "binary"),
    "iwae": (lambda: algorithms.iwae(VAE, 5), lambda: hand_losses.iwae(VAE, 5), "binary"),
    "gan": (lambda: algorithms.gan(GAN), lambda: hand_losses.gan(GAN), "normal"),
    "infogan": (lambda: algorithms.infogan(INFOGAN), lambda: hand_losses.infogan(INFOGAN),
                "normal"),
    "wake-sleep": (lambda: algorithms.wake_sleep(SBN), lambda: hand_losses.wake_sleep(SBN),
                   "binary"),
    "rws": (lambda: algorithms.rws(SBN, k=5), lambda: hand_losses.rws(SBN, 5), "binary"),
    # variational EM, two draws per example, NVIL with its variance normalization
    **{f"vem-{baseline}": (
        lambda baseline=baseline: algorithms.variational_em(SBN, baseline=baseline, n_samples=2,
                                                            baseline_hidden=4),
        lambda baseline=baseline: hand_losses.variational_em(SBN, baseline=baseline, n_samples=2,
                                                             baseline_hidden=4),
        "binary") for baseline in ("none", "mean", "nvil")},
    "vem-exact": (lambda: algorithms.variational_em(SBN, estimator="exact"),
                  lambda: hand_losses.classic_em(SBN), "binary"),
}


def _batch(kind: str, dim: int) -> dict[str, jax.Array]:
    key = jax.random.key(11)
    if kind == "binary":
        return {"x": (jax.random.uniform(key, (B, dim)) < 0.4).astype(jnp.float32)}
    return {"x": jax.random.normal(key, (B, dim))}


def _perturbed(params, key, scale=0.3):
    """``params`` plus N(0, scale²) on every entry, so no gradient is zero by symmetry."""
    flat, unravel = ravel_pytree(params)
    return unravel(flat + scale * jax.random.normal(key, flat.shape, flat.dtype))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_hand_written_phases_equal_the_compiled_ones(name):
    compiled_fn, hand_fn, kind = PAIRS[name]
    compiled, hand = compiled_fn(), hand_fn()
    assert hand.objective is None
    assert [(p.name, p.groups) for p in hand.phases] == [(p.name, p.groups) for p in compiled.phases]
    init_key = jax.random.key(3)
    np.testing.assert_array_equal(ravel_pytree(hand.init(init_key))[0],
                                  ravel_pytree(compiled.init(init_key))[0])
    params = _perturbed(compiled.init(init_key), jax.random.key(4),
                        1.0 if name.startswith("vem") else 0.3)
    data_dim = 2 if name in ("gan", "infogan") else 5
    batch = _batch(kind, data_dim)
    for index, (ours, theirs) in enumerate(zip(hand.phases, compiled.phases)):
        key = jax.random.key(20 + index)

        def value_and_grad(phase):
            def loss(trained):
                return phase.loss({**params, **trained}, key, batch)

            trained = {g: params[g] for g in phase.groups}
            return jax.jit(jax.value_and_grad(loss, has_aux=True))(trained)

        (value, metrics), grad = value_and_grad(ours)
        (expected, expected_metrics), expected_grad = value_and_grad(theirs)
        np.testing.assert_allclose(value, expected, rtol=1e-6, err_msg=f"{name}/{ours.name}")
        assert sorted(metrics) == sorted(expected_metrics), (name, ours.name)
        for metric in metrics:
            np.testing.assert_allclose(metrics[metric], expected_metrics[metric], rtol=1e-6,
                                       atol=1e-6, err_msg=f"{name}/{ours.name}/{metric}")
        flat, expected_flat = ravel_pytree(grad)[0], ravel_pytree(expected_grad)[0]
        assert float(jnp.max(jnp.abs(expected_flat))) > 0, (name, ours.name)
        np.testing.assert_allclose(flat, expected_flat, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}/{ours.name} gradient")
