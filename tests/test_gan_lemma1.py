r"""Lemma 1 (§3.2) at the level of training (issue [4], part 3).

One dimension, an affine generator :math:`x = G_\theta(z) = w z + b`, :math:`z \sim N(0, 1)`, so
:math:`p_{g_\theta} = N(b, w^2)` has a density the oracle can write; the data is a two-Gaussian
mixture; the discriminator is a tanh MLP, untrained (at its initialization) or trained against
the generator. Lemma 1, in the convention of :mod:`unigen.algebra.verify` (:math:`p(y)` uniform,
:math:`p_{\theta_0}(x) = \tfrac12 (p_{g_{\theta_0}}(x) + p_{data}(x))`,
:math:`q^r(x \mid y) \propto q^r_{\phi_0}(y \mid x)\, p_{\theta_0}(x)`, both frozen at
:math:`(\theta_0, \phi_0)`), says that at :math:`\theta = \theta_0`, for any :math:`\phi_0`,

.. math::
   \nabla_\theta \left(-\mathbb{E}_{p_\theta(x|y)p(y)}[\log q^r_{\phi_0}(y|x)]\right)
   = \nabla_\theta \left(\mathbb{E}_{p(y)}[\mathrm{KL}(p_\theta(x|y) \,\|\, q^r(x|y))]
   - \mathrm{JSD}(p_{g_\theta} \,\|\, p_{data})\right),

where, p(y) being uniform, the KL term is
:math:`\tfrac12 \mathrm{KL}(p_{g_\theta} \| q^r(x|y=0)) + \tfrac12 \mathrm{KL}(p_{data} \|
q^r(x|y=1))` and the second half does not depend on θ.

* Left: the generator's actual gradient, that of the variational-EM generator loss of
  :func:`unigen.algorithms.gan.gan` (checked against the compiled loss, see below), in
  expectation over z by the trapezoid rule on a dense grid (z ∈ [−10, 10], step 10⁻³) through
  the model's own :math:`G_\theta` and :math:`d_\phi` (pathwise, as the trainer differentiates
  it). (Gauss–Hermite converges slowly here: the tanh discriminator has complex poles near the
  real axis, and 100 nodes are off by 1e-3 relative; the grid is exponentially accurate.)
* Right: the KLs and the JSD as integrals over a dense grid (x ∈ [−14, 14], step 10⁻³), from the
  closed-form Gaussian densities, differentiated by autodiff.

Both in float64; they agree to 1e-3 relative (measured: 3e-15 untrained, 7e-16 trained). The
compiled loss's own gradient (Monte Carlo over its generated examples) is checked against the
left side within 4 standard errors, and a wrong right side (without the JSD) is off by 45–124%.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.stats import norm

from unigen.core import Algorithm
from unigen.models.gan import affine_generator_params, gan_model
from unigen.training.trainer import make_trainer

gan_module = importlib.import_module("unigen.algorithms.gan")

MEANS, SCALES = (-1.0, 1.5), (0.5, 0.7)  # p_data = ½ N(−1, 0.5²) + ½ N(1.5, 0.7²)
LOC0, SCALE0 = 0.7, 1.3  # θ0: p_g = N(0.7, 1.3²)
GRID = np.linspace(-14.0, 14.0, 28001)  # x, for the densities
Z_GRID = np.linspace(-10.0, 10.0, 20001)  # z, for the pathwise expectation


def _log_data(x):
    parts = jnp.stack([norm.logpdf(x, m, s) for m, s in zip(MEANS, SCALES)])
    return jax.nn.logsumexp(parts, axis=0) - jnp.log(2.0)


def _sample_data(rng, shape):
    component = rng.integers(0, 2, size=shape)
    return np.asarray(MEANS)[component] + np.asarray(SCALES)[component] * rng.standard_normal(shape)


def _model():
    return gan_model(1, 1, generator_hidden=(), discriminator_hidden=(16,), activation="tanh")


def _theta0(dtype):
    return affine_generator_params(jnp.full((1,), LOC0, dtype), jnp.full((1, 1), SCALE0, dtype))


def _discriminator(model, trained):
    """φ0 at its initialization, or after 300 Adam steps of the discriminator phase against θ0."""
    algorithm = gan_module.gan(model, form="variational-em")
    params = algorithm.init(jax.random.key(3))
    if not trained:
        return params["phi"]
    only = Algorithm(lambda k: {**params, "theta": _theta0(jnp.float32)}, algorithm.phases[:1],
                     algorithm.objective)
    trainer = make_trainer(only, optax.adam(1e-2), steps_per_call=100)
    state = trainer.init(jax.random.key(4))
    rng = np.random.default_rng(0)
    for _ in range(3):
        state, _ = trainer.step(state, {"x": _sample_data(rng, (100, 256, 1)).astype(np.float32)})
    return state.params["phi"]


def _actual_gradient(model, theta, phi):
    """∇_θ E_z[−½ log σ(d_φ(G_θ(z)))] (the θ-dependent half of the variational-EM generator
    loss) by the trapezoid rule over a dense grid of z, pathwise through G_θ."""
    nodes = jnp.asarray(Z_GRID)
    weights = jnp.exp(norm.logpdf(nodes)) * (Z_GRID[1] - Z_GRID[0])

    def loss(theta):
        x = jax.vmap(lambda z: model.generate(theta, z[None]))(nodes)
        logits = jax.vmap(lambda row: model.discriminator_logit(phi, row))(x)
        return -0.5 * jnp.sum(weights * jax.nn.log_sigmoid(logits))

    return jax.grad(loss)(theta)


def _lemma1_right(model, theta, theta0, phi, with_jsd=True):
    """E_{p(y)}[KL(p_θ(x|y) ‖ q^r(x|y))] − JSD(p_{g_θ} ‖ p_data) on the grid."""
    x = jnp.asarray(GRID)
    dx = GRID[1] - GRID[0]

    def log_generator(t):
        layer = t["generator"]["linear0"]
        return norm.logpdf(x, layer["bias"][0], jnp.abs(layer["kernel"][0, 0]))

    def integral(values):
        return jnp.sum(values) * dx

    log_g, log_d = log_generator(theta), _log_data(x)
    log_mixture0 = jnp.logaddexp(log_generator(theta0), log_d) - jnp.log(2.0)
    logits = jax.vmap(lambda row: model.discriminator_logit(phi, row[None]))(x)
    # q^r(y=0|x) = q(y=1|x) = D(x); q^r(y=1|x) = 1 − D(x)
    log_qr = {0: jax.nn.log_sigmoid(logits) + log_mixture0,
              1: jax.nn.log_sigmoid(-logits) + log_mixture0}
    log_qr = {y: v - jnp.log(integral(jnp.exp(v))) for y, v in log_qr.items()}

    def kl(log_p, log_q):
        return integral(jnp.exp(log_p) * (log_p - log_q))

    expected_kl = 0.5 * kl(log_g, log_qr[0]) + 0.5 * kl(log_d, log_qr[1])
    log_m = jnp.logaddexp(log_g, log_d) - jnp.log(2.0)
    jsd = 0.5 * kl(log_g, log_m) + 0.5 * kl(log_d, log_m)
    return expected_kl - jsd if with_jsd else expected_kl


def _relative_error(a, b):
    a, b = (jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(t)]) for t in (a, b))
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
def test_generator_gradient_is_the_kl_minus_jsd_gradient(trained):
    model = _model()
    phi32 = _discriminator(model, trained)
    with jax.enable_x64(True):
        phi = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), phi32)
        theta0 = _theta0(jnp.float64)
        actual = _actual_gradient(model, theta0, phi)
        right = jax.grad(
            lambda t: _lemma1_right(model, t, jax.lax.stop_gradient(theta0), phi))(theta0)
        error = _relative_error(actual, right)
        assert error < 1e-3, error
        # The check has teeth: without the JSD the right side is a different gradient.
        wrong = jax.grad(lambda t: _lemma1_right(model, t, theta0, phi, with_jsd=False))(theta0)
        assert _relative_error(actual, wrong) > 1e-2


def test_compiled_generator_loss_has_the_quadrature_gradient_in_expectation(key):
    """The compiled variational-EM generator loss (the trainer's), 20 keys × 4,096 generated
    examples: its mean θ-gradient is within 4 standard errors of the quadrature gradient (per
    component), and the data half adds nothing."""
    model = _model()
    phi = _discriminator(model, trained=False)
    theta = _theta0(jnp.float32)
    loss = gan_module.gan(model, form="variational-em").phases[1].loss
    batch = {"x": jnp.asarray(_sample_data(np.random.default_rng(1), (4096, 1)), jnp.float32)}
    params = {"theta": theta, "phi": phi}
    grads = jax.jit(jax.vmap(
        lambda k: jax.grad(lambda t: loss({**params, "theta": t}, k, batch)[0])(theta)
    ))(jax.random.split(key, 20))
    with jax.enable_x64(True):
        expected = _actual_gradient(model, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                                                        theta),
                                    jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), phi))
    for draws, exact in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        draws = np.asarray(draws, np.float64)
        mean, error = draws.mean(0), draws.std(0, ddof=1) / np.sqrt(draws.shape[0])
        assert np.all(np.abs(mean - np.asarray(exact)) < 4 * error + 1e-7), (mean, exact, error)
