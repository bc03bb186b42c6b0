"""The transfers of Hu et al. 2018, §4: the importance-weighted GAN (§4.1, Eq. 16) and the
adversary-activated VAE (§4.2, Eq. 17), each declared beside its parent.

Oracles: a hand-written generator loss (the generated samples drawn with the compiler's keys,
``split(key, B)[i]``, scored by log σ(d)); the self-normalized odds computed in NumPy float64;
for the AAVAE, exact enumeration on a finite model (x ∈ {0..4}, z ∈ {0..2}) where the optimal
discriminator q_*(y=1|x) = p_data(x) / (p_data(x) + p_g(x)) and JSD(p_data ‖ p_g) are computed
in NumPy from the tables. The expected printed objectives are typed from the paper and Lemma 2.
"""

import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as numpyro_dist
import pytest

from unigen import cli
from unigen.algebra import E, compile, data, dist, explicit, importance_weighted, log, marginal, sg
from unigen.algebra.expr import ExpressionError
from unigen.algebra.identities import lemma2_as_written
from unigen.errors import ConfigError
from unigen.algorithms.gan import NON_SATURATING_GENERATOR, discriminator, gan, generated, p_y
from unigen.algorithms.gan import bindings as gan_bindings
from unigen.algorithms.iwgan import DECLARATION as IWGAN, LOG_WEIGHT, iwgan
from unigen.algorithms.vae import DECODER, ENCODER, OBJECTIVE as VAE_OBJECTIVE, P_DATA, PRIOR
from unigen.models.gan import gan_model

aavae_module = importlib.import_module("unigen.algorithms.aavae")  # the package re-exports the function
AAVAE = aavae_module.DECLARATION


# --- IWGAN ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gan_setup():
    model = gan_model(2, 2, generator_hidden=(8,), discriminator_hidden=(8,))
    params = gan(model).init(jax.random.key(0))
    batch = {"x": jax.random.normal(jax.random.key(1), (8, 2))}
    return model, params, batch


def _hand_generator(model, params, key, batch, weighted):
    """-Σ_i w̃_i log σ(d(G(z_i))), the draws with the compiler's keys, w̃ = softmax(d) held
    constant (weighted) or 1/B."""
    keys = jax.random.split(key, batch["x"].shape[0])
    fake = jax.vmap(lambda k: model.generator.sample(params["theta"], k, {})["x"])(keys)
    logits = jax.vmap(lambda x: model.discriminator_logit(params["phi"], x))(fake)
    weights = jax.lax.stop_gradient(jax.nn.softmax(logits)) if weighted else jnp.full(logits.shape, 1 / logits.shape[0])
    return -jnp.sum(weights * jax.nn.log_sigmoid(logits))


def _value_and_theta_grad(loss, params, key, batch):
    return jax.jit(jax.value_and_grad(lambda theta: loss({**params, "theta": theta}, key, batch)[0]))(
        params["theta"])


def _close(a, b, tolerance):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tolerance, atol=tolerance)


def test_iwgan_with_one_sample_is_the_non_saturating_generator(gan_setup):
    """k = 1: the weight is 1, and the loss and θ-gradient are −log D(G(z)) of the one draw."""
    model, params, batch = gan_setup
    one = {"x": batch["x"][:1]}
    key = jax.random.key(3)
    weighted = _value_and_theta_grad(iwgan(model).phases[1].loss, params, key, one)
    hand = _value_and_theta_grad(lambda p, k, b: (_hand_generator(model, p, k, b, False),), params, key, one)
    _close(weighted, hand, 1e-5)


def test_iwgan_with_equal_weights_is_the_non_saturating_generator(gan_setup):
    """The node with a constant log-weight (0 · log D) over 8 draws: the GAN generator's loss and
    θ-gradient, to rounding, on the same draws (the GAN's own loss is checked against a
    hand-written one in tests/test_hand_losses.py; with one draw, against the oracle above)."""
    model, params, batch = gan_setup
    equal = importance_weighted(generated, NON_SATURATING_GENERATOR.body, 0.0 * sg(log(discriminator, y=1)))
    loss = compile(equal, gan_bindings(model))
    key = jax.random.key(4)
    _close(_value_and_theta_grad(loss, params, key, batch),
           _value_and_theta_grad(gan(model).phases[1].loss, params, key, batch), 1e-6)


def test_iwgan_generator_weights_each_sample_by_its_normalized_odds(gan_setup):
    """Eq. 16: value and θ-gradient are Σ w̃_i log D(x_i) with w̃_i ∝ D(x_i)/(1 − D(x_i)), the
    weights constant; and not the unweighted generator's."""
    model, params, batch = gan_setup
    key = jax.random.key(5)
    weighted = _value_and_theta_grad(iwgan(model).phases[1].loss, params, key, batch)
    hand = _value_and_theta_grad(lambda p, k, b: (_hand_generator(model, p, k, b, True),), params, key, batch)
    _close(weighted, hand, 1e-5)
    # the weights as the paper writes them, D/(1 − D) normalized, in float64
    keys = jax.random.split(key, batch["x"].shape[0])
    fake = jax.vmap(lambda k: model.generator.sample(params["theta"], k, {})["x"])(keys)
    d = np.asarray(jax.vmap(lambda x: jax.nn.sigmoid(model.discriminator_logit(params["phi"], x)))(fake), np.float64)
    odds = d / (1 - d)
    expected = -np.sum(odds / odds.sum() * np.log(d))
    np.testing.assert_allclose(float(weighted[0]), expected, rtol=1e-5)
    plain = _value_and_theta_grad(gan(model).phases[1].loss, params, key, batch)
    assert abs(float(plain[0]) - float(weighted[0])) > 1e-4


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_iwgan_weights_stay_finite_and_normalized_for_extreme_logits(gan_setup, scale):
    """Logits of ±1e4 (D → 1 and D → 0; D/(1 − D) overflows float32), half the samples each
    way: the weights sum to 1 (Σ_i w̃_i log p(y=1) = −log 2 with p(y) uniform), Σ_i w̃_i d_i is
    the float64 softmax average of the logits, and the generator's loss and gradient are finite."""
    model, params, batch = gan_setup
    key = jax.random.key(6)
    keys = jax.random.split(key, batch["x"].shape[0])
    fake = np.asarray(jax.vmap(lambda k: model.generator.sample(params["theta"], k, {})["x"])(keys), np.float64)
    middle = float(np.median(fake[:, 0]))
    shifted = model._replace(discriminator_logit=lambda phi, x: jnp.where(x[0] > middle, scale, -scale) + x[0])
    bindings = gan_bindings(shifted)
    total = compile(importance_weighted(generated, log(p_y, y=1), LOG_WEIGHT), bindings, maximize=False)
    np.testing.assert_allclose(float(jax.jit(total)(params, key, batch)[0]), -np.log(2.0), rtol=1e-6)
    logits = np.where(fake[:, 0] > middle, scale, -scale) + fake[:, 0]
    weights = np.exp(logits - logits.max()) / np.sum(np.exp(logits - logits.max()))
    weighted_logit = compile(importance_weighted(generated, LOG_WEIGHT, LOG_WEIGHT), bindings, maximize=False)
    np.testing.assert_allclose(float(jax.jit(weighted_logit)(params, key, batch)[0]), np.sum(weights * logits),
                               rtol=1e-6)
    value, grad = _value_and_theta_grad(iwgan(shifted).phases[1].loss, params, key, batch)
    assert np.isfinite(float(value)) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))


def test_iwgan_declaration_prints_as_eq16_and_keeps_the_gan_discriminator():
    assert IWGAN.phase("discriminator").objective is gan(gan_model(2, 2)).objective.phase("discriminator").objective
    assert str(IWGAN.phase("generator").objective) == (
        "E_{x_1,…,x_k ~ p_θ(x|y=0)}[Σ_{i=1}^{k} w̃_i log q_φ(y=1|x_i)], w̃_i ∝ q^r_φ(y=0|x_i)/q_φ(y=0|x_i)")
    assert IWGAN.phase("generator").objective.latex() == (
        r"\mathbb{E}_{x_1, \ldots, x_k \sim p_\theta(x \mid y=0)}\left[\sum_{i=1}^{k} \tilde{w}_i \log "
        r"q_\phi(y=1 \mid x_i)\right],\; \tilde{w}_i \propto \frac{q^{r}_\phi(y=0 \mid x_i)}{q_\phi(y=0 \mid x_i)}")


def test_importance_weighted_needs_a_distribution_it_can_draw_pathwise(gan_setup):
    model, params, batch = gan_setup
    over_data = importance_weighted(P_DATA, log(discriminator, y=1), LOG_WEIGHT)
    with pytest.raises(ExpressionError) as error:
        compile(over_data, gan_bindings(model))(params, jax.random.key(0), batch)
    assert "expected an implicit or explicit (reparameterizable) distribution" in str(error.value)
    assert "\n" not in str(error.value)


# --- the marginal binding: each real batch paired with as many generated samples --------------


def test_marginal_pairs_the_batch_with_as_many_generated_samples(gan_setup):
    """E_{p(x)}[log D(x)] with p(x) = marginal(p(x|y) p(y)), p(x|y=1) the batch and p(x|y=0)
    the generator: half the batch mean plus half the mean over B generated samples (branch y=0
    drawn with fold_in(key, 0), as the compiler enumerates y), by hand."""
    model, params, batch = gan_setup
    mixture = dist("p", over="x", params="theta0")
    conditional = dist("p", over="x", given="y", params="theta0")
    bindings = {**gan_bindings(model), mixture: marginal(conditional * p_y),
                conditional.fixed(y=0): gan_bindings(model)[generated], conditional.fixed(y=1): data("x")}
    key = jax.random.key(7)
    value = jax.jit(compile(E(mixture, log(discriminator, y=1)), bindings, maximize=False))(params, key, batch)[0]
    keys = jax.random.split(jax.random.fold_in(key, 0), batch["x"].shape[0])
    fake = jax.vmap(lambda k: model.generator.sample(params["theta"], k, {})["x"])(keys)
    log_d = jax.vmap(lambda x: jax.nn.log_sigmoid(model.discriminator_logit(params["phi"], x)))
    np.testing.assert_allclose(float(value), 0.5 * float(jnp.mean(log_d(batch["x"]))) + 0.5 * float(jnp.mean(log_d(fake))),
                               rtol=1e-6)


def test_marginal_refuses_a_single_distribution_in_one_line():
    with pytest.raises(ConfigError) as error:
        marginal(p_y)
    assert str(error.value).startswith("joint: got ") and "expected a product such as p(x|y) * p(y)" in str(error.value)


# --- AAVAE ------------------------------------------------------------------------------------

X, Z = 5, 3  # the finite model: x in {0..4}, z in {0..2}


def _finite_point(seed):
    keys = jax.random.split(jax.random.key(seed), 4)
    return {
        "theta": jax.random.normal(keys[0], (Z, X), jnp.float64),   # p_θ(x|z) logits
        "eta": jax.random.normal(keys[1], (X, Z), jnp.float64),     # q_η(z|x) logits
        "prior": jax.random.normal(keys[2], (Z,), jnp.float64),     # p(z) logits
        "data": 2 * jax.random.normal(keys[3], (X,), jnp.float64),  # p_data(x) logits
    }


def _log_generator(params):
    """log p_θ0(x|y=0) = log Σ_z p(z) p_θ0(x|z), θ0 = sg(θ)."""
    theta = jax.lax.stop_gradient(params["theta"])
    joint = jax.nn.log_softmax(params["prior"])[:, None] + jax.nn.log_softmax(theta, axis=1)
    return jax.scipy.special.logsumexp(joint, axis=0)


def _categorical(fn):
    return explicit(lambda params, given: numpyro_dist.CategoricalLogits(fn(params, given)))


def _finite_bindings(discriminator_logit):
    m = aavae_module
    prior = _categorical(lambda p, g: p["prior"])
    encoder = _categorical(lambda p, g: p["eta"][g["x"]])
    decoder = _categorical(lambda p, g: p["theta"][g["z"]])
    data_table = _categorical(lambda p, g: p["data"])
    bernoulli = lambda logit: explicit(lambda p, g: numpyro_dist.BernoulliLogits(logit(p, g)))  # noqa: E731
    return {
        m.mixture0: marginal(m.generative0 * p_y),
        m.generative0.fixed(y=0): _categorical(lambda p, g: _log_generator(p)),
        m.generative0.fixed(y=1): data_table,
        p_y: bernoulli(lambda p, g: jnp.zeros((), jnp.float64)),
        discriminator: bernoulli(discriminator_logit),
        m.inference.fixed(y=0): encoder,
        m.inference.fixed(y=1): prior,
        m.decoder.fixed(y=0): decoder,
        m.decoder.fixed(y=1): explicit(lambda p, g: numpyro_dist.ImproperUniform(numpyro_dist.constraints.real, (), ())),
        m.prior: prior,
        P_DATA: data_table, ENCODER: encoder, DECODER: decoder, PRIOR: prior,
    }


def _optimal_logit(params, given):
    """q_*(y=1|x) = p_data(x) / (p_data(x) + p_θ0(x|y=0)), as a logit, held constant."""
    log_data = jax.nn.log_softmax(params["data"])
    return jax.lax.stop_gradient(log_data - _log_generator(params))[given["x"]]


def _jsd(params):
    p = np.exp(np.asarray(jax.nn.log_softmax(params["data"])))
    q = np.exp(np.asarray(_log_generator(params)))
    m = (p + q) / 2
    return 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))


def _value_and_grads(loss):
    """``params -> (value, {θ, η}-gradients)`` of a compiled loss, jit-compiled."""
    return jax.jit(lambda params: jax.value_and_grad(
        lambda trained: loss({**params, **trained}, jax.random.key(0), {})[0])(
            {"theta": params["theta"], "eta": params["eta"]}))


def test_aavae_with_the_optimal_discriminator_is_the_vae():
    """Eq. 17 with q_φ held at q_* for the current generator, every sum enumerated (float64), at
    three random points: the VAE loss and its θ, η-gradients exactly; values apart by
    2 JSD(p_data ‖ p_θ0(x|y=0)) (the KL over y), computed in NumPy. A discriminator of ½
    everywhere gives other gradients."""
    with jax.enable_x64(True):
        vae = _value_and_grads(compile(VAE_OBJECTIVE, _finite_bindings(_optimal_logit)))
        adversarial = _value_and_grads(compile(aavae_module.OBJECTIVE, _finite_bindings(_optimal_logit)))
        halves = _value_and_grads(compile(aavae_module.OBJECTIVE,
                                          _finite_bindings(lambda p, g: jnp.zeros((), jnp.float64))))
        for seed in range(3):
            params = _finite_point(seed)
            (vae_value, vae_grads), (value, grads) = vae(params), adversarial(params)
            np.testing.assert_allclose(float(value) - 2 * _jsd(params), float(vae_value), rtol=1e-10, atol=1e-10)
            _close(grads, vae_grads, 1e-10)
            other = halves(params)[1]
            assert max(float(jnp.max(jnp.abs(a - b)))
                       for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(vae_grads))) > 1e-3


def test_aavae_declaration_is_lemma2_with_the_trained_discriminator():
    """`algebra show aavae`'s VAE phase is Lemma 2's first line (the lecture's, with its factor 2,
    which Hu et al.'s Eq. 17 omits) with q^r_* → q^r_φ; the discriminator phase is the GAN's."""
    lemma2 = lemma2_as_written()[0]
    objective = AAVAE.phase("vae").objective
    assert str(objective) == str(lemma2).replace("q^r_*", "q^r_φ")
    assert objective.latex() == lemma2.latex().replace(r"q^{r}_*", r"q^{r}_\phi")
    assert str(objective) == ("2 · E_{p_θ₀(x)}[E_{q_η(z|x,y)q^r_φ(y|x)}[log p_θ(x|z,y)] − "
                              "KL(q_η(z|x,y)q^r_φ(y|x) ‖ p(z|y)p(y))]")
    assert str(AAVAE.phase("discriminator").objective) == (
        "E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)]")
    assert AAVAE.phase("vae").groups == ("theta", "eta")


def test_train_iwgan_and_aavae_write_their_parents_outputs_and_resume(tmp_path):
    """`unigen train iwgan|aavae` through the registry: summary.json with each phase's loss and
    the parent's metrics (mode coverage for the GAN family; test ELBO and IS-NLL for the VAE
    family), samples.png, checkpoints; `--resume` continues a run to more steps."""
    quick = ["--no-progress", "--steps-per-call", "1", "--checkpoint-every", "2", "--hidden", "8"]
    iw = tmp_path / "iwgan"
    common = ["train", "iwgan", "--data", "ring8", "--batch-size", "16", "--out", str(iw), *quick]
    assert cli.main([*common, "--steps", "2"]) == 0
    assert cli.main([*common, "--steps", "4", "--resume"]) == 0
    summary = json.loads((iw / "summary.json").read_text())
    assert set(summary["losses"]) == {"discriminator", "generator"} and summary["steps"] == 4
    assert {"modes_captured", "high_quality_fraction", "reverse_kl"} <= set(summary)
    rows = [json.loads(line) for line in (iw / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    aa = tmp_path / "aavae"
    assert cli.main(["train", "aavae", "--data", "digits", "--batch-size", "20", "--latent-dim", "2", "--eval-k", "4",
                     "--steps", "2", "--out", str(aa), *quick]) == 0
    summary = json.loads((aa / "summary.json").read_text())
    assert set(summary["losses"]) == {"discriminator", "vae"} and summary["steps"] == 2
    assert np.isfinite(summary["is_nll"]) and np.isfinite(summary["test_elbo"])
    rows = [json.loads(line) for line in (aa / "metrics.jsonl").read_text().splitlines()]
    assert "vae/elbo" in rows[-1] and "discriminator/loss" in rows[-1]
    for run in (iw, aa):
        assert (run / "samples.png").exists() and any((run / "checkpoints").iterdir())
