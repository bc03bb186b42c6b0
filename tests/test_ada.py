"""Adversarial domain adaptation (Hu et al. 2018 §3.1): its declaration prints as Eq. (3), its
compiled phases equal Eqs. (1)–(2) written out by hand, and with identical domains the adversarial
gradient vanishes at the discriminator the declared discriminator phase converges to.

Oracles: the paper's Eq. (3) typed from the paper; Eqs. (1)–(2) and the source cross-entropy
hand-written below with jax.nn (kept only as oracle); the closed form of the best discriminator
for identical domains (q_φ(y|x) = p(y) = 1/2, objective value -log 2).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen.algebra.compiler import data
from unigen.algorithms import ada as ada_module
from unigen.algorithms.ada import DECLARATION, SOURCE_ONLY, ada, ada_model, split_batch
from unigen.errors import ConfigError, DataError

EQ3 = (
    "  discriminator: max_{φ} E_{p_θ(x|y)p(y)}[log q_φ(y|x)]\n"
    "  features: max_{θ} λ · E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)]\n"
)


def test_the_declaration_prints_as_eq3_with_the_source_classifier():
    text = str(DECLARATION)
    assert EQ3 in text
    assert "  classifier: max_{θ,ψ} E_{p_θ(x|y=1)}[log q_ψ(label|x)]\n" in text
    assert "max_{\\phi}" in DECLARATION.latex()
    assert [p.name for p in SOURCE_ONLY.phases] == ["classifier"]


def _batch(rng, n, d, classes, shift):
    source = rng.normal(size=(n, d)).astype(np.float32)
    target = (rng.normal(size=(n, d)) + shift).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    return {"x": np.concatenate([source, np.eye(classes, dtype=np.float32)[labels], target], axis=1)}, labels


def test_compiled_phases_equal_eqs_1_2_and_the_source_cross_entropy_by_hand():
    model = ada_model(3, 4, feature_dim=5, hidden=(6,))
    algorithm = ada(model)
    params = algorithm.init(jax.random.key(0))
    batch, labels = _batch(np.random.default_rng(0), 7, 3, 4, shift=1.5)
    parts = split_batch(batch, model)
    features = jax.vmap(lambda z: model.extractor.apply(params["theta"], z))
    d = jax.vmap(lambda x: model.discriminator.apply(params["phi"], x)[0])
    source, target = features(parts["source"]), features(parts["target"])
    log_d = jax.nn.log_sigmoid
    eq1 = 0.5 * (jnp.mean(log_d(d(source))) + jnp.mean(log_d(-d(target))))  # max_φ, Eq. (1) / 2
    eq2 = 0.5 * (jnp.mean(log_d(-d(source))) + jnp.mean(log_d(d(target))))  # max_θ, Eq. (2) / 2
    logits = jax.vmap(lambda x: model.classifier.apply(params["psi"], x))(source)
    cross_entropy = -jnp.mean(jax.nn.log_softmax(logits)[np.arange(7), labels])
    losses = {p.name: float(p.loss(params, jax.random.key(1), batch)[0]) for p in algorithm.phases}
    assert losses["discriminator"] == pytest.approx(-float(eq1), rel=1e-5)
    assert losses["features"] == pytest.approx(-float(eq2), rel=1e-5)
    assert losses["classifier"] == pytest.approx(float(cross_entropy), rel=1e-5)
    with pytest.raises(DataError, match=r"batch\['x'\]: expected rows .* of width 10"):
        split_batch({"x": np.zeros((2, 5), np.float32)}, model)


def _feature_gradient_at_the_trained_discriminator(shift):
    """Full-batch gradient ascent on the discriminator phase (logistic, from a random start) for
    a fixed feature extractor; returns (discriminator objective, |θ-gradient of Eq. 3|, |φ|)."""
    model = ada_model(3, 2, feature_dim=2, hidden=())  # a logistic discriminator on tanh features
    algorithm = ada(model)
    params = algorithm.init(jax.random.key(3))
    params["phi"] = jax.tree.map(lambda a: a + 1.0, params["phi"])  # far from the optimum
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(64, 3)).astype(np.float32)
    target = rows + np.float32(shift)
    # identical domains: the same 64 rows in both, so the batch means are the exact expectations
    batch = {"x": np.concatenate([rows, np.eye(2, dtype=np.float32)[rng.integers(0, 2, 64)], target], 1)}
    phases = {p.name: p for p in algorithm.phases}
    key = jax.random.key(0)

    def phi_loss(phi):
        return phases["discriminator"].loss({**params, "phi": phi}, key, batch)[0]

    step = jax.jit(lambda phi: jax.tree.map(lambda a, g: a - 2.0 * g, phi, jax.grad(phi_loss)(phi)))
    phi = params["phi"]
    for _ in range(3000):
        phi = step(phi)
    trained = {**params, "phi": phi}
    grad = jax.grad(lambda theta: phases["features"].loss({**trained, "theta": theta}, key, batch)[0])(
        params["theta"])
    norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad))))
    phi_norm = float(jnp.sqrt(sum(jnp.sum(a**2) for a in jax.tree.leaves(phi))))
    return -float(phi_loss(phi)), norm, phi_norm


def test_identical_domains_give_zero_adversarial_gradient_at_the_optimal_discriminator():
    """With identical domains the best discriminator is q_φ(y|x) = 1/2 (objective -log 2, the
    closed form), reached by the declared discriminator phase; there the θ-gradient of the
    adversarial phase (Eq. 3) is zero. A shifted target keeps both away from it (the test can fail)."""
    value, gradient, phi_norm = _feature_gradient_at_the_trained_discriminator(shift=0.0)
    assert value == pytest.approx(-math.log(2.0), abs=1e-6)
    assert phi_norm < 1e-3  # the logistic weights and bias at 0: D = 1/2 everywhere
    assert gradient < 1e-4
    shifted_value, shifted_gradient, _ = _feature_gradient_at_the_trained_discriminator(shift=1.0)
    assert shifted_value > -math.log(2.0) + 0.05
    assert shifted_gradient > 100 * max(gradient, 1e-6)


def test_the_data_binding_pushes_rows_forward_and_carries_companions():
    """compile's data(key, map=, carry=): E over G(row) with a companion in scope, against the mean."""
    from unigen.algebra import E, compile, dist, log
    from unigen.distributions import BernoulliLogits

    x_of = dist("p", over="x", params="theta")
    bit = dist("q", over="b", given="x")
    loss = compile(E(x_of, log(bit)), {
        x_of: data("z", map=lambda params, z: params["theta"] * z, carry={"b": "b"}),
        bit: lambda params, given: BernoulliLogits(given["x"]),
    })
    z = np.array([0.5, -1.0, 2.0], np.float32)
    b = np.array([1.0, 0.0, 1.0], np.float32)
    value, _ = loss({"theta": jnp.float32(1.5)}, jax.random.key(0), {"z": z, "b": b})
    s = 1.5 * z
    expected = np.mean(b * np.log(1 / (1 + np.exp(-s))) + (1 - b) * np.log(1 / (1 + np.exp(s))))
    assert float(value) == pytest.approx(-expected, rel=1e-5)
    with pytest.raises(DataError, match=r"batch\['b'\]: expected 3 rows"):
        loss({"theta": jnp.float32(1.5)}, jax.random.key(0), {"z": z, "b": b[:2]})
    with pytest.raises(ConfigError, match="map: got"):
        data("z", map=3)
