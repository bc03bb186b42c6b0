"""The adversarial autoencoder (Makhzani et al.; Hu et al. §3.2) and the VAE/GAN that minimizes
both KL directions (Larsen et al.; Hu et al. §3.4): declarations print as the paper's equations,
compiled phases equal the objectives written out by hand, and the VAE/GAN's two KLs sit on
opposite sides.

Oracles: Eq. (3) with z in place of x typed from the paper; the losses hand-written below with
jax.nn (kept only as oracle), drawing with the keys the compiler documents (branch y=i of an
enumeration uses fold_in(key, i); a model expectation outside the data draws one sample per batch
row, row s with split(key, B)[s]); the VAE's hand-written reference loss; the lecture's KL
directions (GAN first argument, VAE second).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen.algebra.direction import direction, direction_of
from unigen.algorithms.aae import DECLARATION as AAE_DECLARATION
from unigen.algorithms.aae import AAEModel, aae, encode
from unigen.algorithms.vae import reference_loss
from unigen.algorithms.vae_gan import DECLARATION as VAE_GAN_DECLARATION
from unigen.algorithms.vae_gan import VAEGANModel, vae_gan
from unigen.errors import ConfigError
from unigen.models.vae import vae_model
from unigen.nets import mlp

log_sigmoid = jax.nn.log_sigmoid


def test_the_aae_prints_as_eq3_on_codes_and_the_vae_gan_as_the_elbo_and_eq3():
    aae_text = str(AAE_DECLARATION)
    assert "  discriminator: max_{φ} E_{p_η(z|y)p(y)}[log q_φ(y|z)]\n" in aae_text
    assert "  encoder: max_{η} E_{p_η(z|y)p(y)}[log q^r_φ(y|z)]\n" in aae_text
    assert "  reconstruction: max_{θ,η} E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)]]\n" in aae_text
    text = str(VAE_GAN_DECLARATION)
    assert "  elbo: max_{θ,η} E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − KL(q_η(z|x) ‖ p(z))]\n" in text
    assert "  discriminator: max_{φ} E_{p_θ(x|y)p(y)}[log q_φ(y|x)]\n" in text
    assert "  generator: max_{θ} E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)]\n" in text


def test_the_vae_gan_minimizes_both_kl_directions():
    sides = [direction(kl, "theta").side for kl in VAE_GAN_DECLARATION.figure5.kls]
    assert sides == ["first", "second"]  # the GAN's KL(P_θ ‖ Q), then the VAE's KL(Q ‖ P_θ)
    with pytest.raises(ConfigError, match="minimizes 2 KLs; expected one"):
        direction_of(VAE_GAN_DECLARATION)
    assert direction_of(AAE_DECLARATION).side == "first"  # the encoder's codes, mode-seeking


def _binary_batch(n, d, seed=0):
    return {"x": (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float32)}


def _bernoulli_log_prob(logits, x):
    return jnp.sum(x * log_sigmoid(logits) + (1 - x) * log_sigmoid(-logits), axis=-1)


def test_aae_phases_equal_the_objectives_by_hand():
    vae = vae_model(5, 2, hidden=(6,))
    model = AAEModel(vae, mlp([2, 4, 1], "relu"))
    algorithm = aae(model)
    params = algorithm.init(jax.random.key(0))
    batch, key = _binary_batch(6, 5), jax.random.key(7)
    x = jnp.asarray(batch["x"])
    codes = jax.vmap(lambda row: encode(model, params["eta"], row))(x)
    decoded = jax.vmap(lambda z: vae.decoder_distribution(params["theta"], z).base_dist.logits)(codes)
    reconstruction = jnp.mean(_bernoulli_log_prob(decoded, x))
    prior = jax.vmap(lambda k: vae.prior(params["theta"]).sample(k))(jax.random.split(jax.random.fold_in(key, 1), 6))
    critic = jax.vmap(lambda z: model.critic.apply(params["phi"], z)[0])
    critic_objective = 0.5 * jnp.mean(log_sigmoid(-critic(codes))) + 0.5 * jnp.mean(log_sigmoid(critic(prior)))
    encoder_objective = 0.5 * jnp.mean(log_sigmoid(critic(codes))) + 0.5 * jnp.mean(log_sigmoid(-critic(prior)))
    losses = {p.name: float(p.loss(params, key, batch)[0]) for p in algorithm.phases}
    assert losses["reconstruction"] == pytest.approx(-float(reconstruction), rel=1e-5)
    assert losses["discriminator"] == pytest.approx(-float(critic_objective), rel=1e-5)
    assert losses["encoder"] == pytest.approx(-float(encoder_objective), rel=1e-5)


def test_vae_gan_phases_equal_the_vae_reference_and_eq3_by_hand():
    vae = vae_model(5, 2, hidden=(6,))
    model = VAEGANModel(vae, mlp([5, 4, 1], "relu"))
    algorithm = vae_gan(model)
    params = algorithm.init(jax.random.key(1))
    batch, key = _binary_batch(6, 5, seed=1), jax.random.key(3)
    x = jnp.asarray(batch["x"])
    generated = jax.vmap(lambda k: vae.decode_mean(params["theta"], vae.prior(params["theta"]).sample(k)))(
        jax.random.split(jax.random.fold_in(key, 0), 6))
    d = jax.vmap(lambda row: model.discriminator.apply(params["phi"], row)[0])
    discriminator = 0.5 * jnp.mean(log_sigmoid(-d(generated))) + 0.5 * jnp.mean(log_sigmoid(d(x)))
    generator = 0.5 * jnp.mean(log_sigmoid(d(generated))) + 0.5 * jnp.mean(log_sigmoid(-d(x)))
    losses = {p.name: float(p.loss(params, key, batch)[0]) for p in algorithm.phases}
    assert losses["elbo"] == pytest.approx(float(reference_loss(vae)(params, key, batch)[0]), rel=1e-5)
    assert losses["discriminator"] == pytest.approx(-float(discriminator), rel=1e-5)
    assert losses["generator"] == pytest.approx(-float(generator), rel=1e-5)
    # the generator phase moves θ through the generated half only: its θ-gradient is that of the hand form
    phase = {p.name: p for p in algorithm.phases}["generator"]
    compiled = jax.grad(lambda theta: phase.loss({**params, "theta": theta}, key, batch)[0])(params["theta"])

    def by_hand(theta):
        fake = jax.vmap(lambda k: vae.decode_mean(theta, vae.prior(theta).sample(k)))(
            jax.random.split(jax.random.fold_in(key, 0), 6))
        return -0.5 * jnp.mean(log_sigmoid(d(fake)))

    for a, b in zip(jax.tree.leaves(compiled), jax.tree.leaves(jax.grad(by_hand)(params["theta"]))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
