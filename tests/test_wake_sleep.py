"""Wake-sleep and reweighted wake-sleep against exact enumeration on tiny Helmholtz machines.

Oracles: every expectation of a 3-visible, 3-hidden-unit machine is a finite sum (64 joint
states), computed with the NumPy probabilities of test_sbn.py; gradients of those exact sums by
autodiff. Monte Carlo losses are checked to be unbiased with a stated bound: over R replicas the
mean is within 4 standard errors of the exact value, coordinate by coordinate (a false failure
per coordinate has probability 6e-5).
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from test_sbn import all_binary, oracle_log_joint, oracle_log_recognition, random_params

from unigen.algebra.declaration import check
from unigen.algorithms import iwae_bound
from unigen.algorithms.rws import DECLARATION as RWS_DECLARATION
from unigen.algorithms.rws import rws
from unigen.algorithms.variational_em import variational_em
from unigen.algorithms.wake_sleep import WAKE, WAKE_LEARNED_PRIOR, wake_sleep
from unigen.core import Algorithm
from unigen.errors import ConfigError
from unigen.models import helmholtz_machine
from unigen.training.trainer import make_trainer

LAYERS = (3,)
MODEL = helmholtz_machine(3, LAYERS)
X = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], np.float32)
STATES = all_binary(3).astype(np.float32)  # hidden states; visible states are the same set


def replicas(loss, params, group, batch, count, seed=0):
    """``count`` independent (loss value, flattened gradient in ``group``) pairs."""
    def one(key):
        value, grads = jax.value_and_grad(
            lambda g: loss({**params, group: g}, key, batch)[0]
        )(params[group])
        return value, ravel_pytree(grads)[0]

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), count))


def assert_unbiased(samples, exact, what):
    samples, exact = np.asarray(samples, np.float64), np.asarray(exact, np.float64)
    mean = samples.mean(axis=0)
    standard_error = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    excess = np.abs(mean - exact) - (4 * standard_error + 1e-5)
    assert np.all(excess <= 0), (what, mean, exact, standard_error)


# --- wake-sleep ---------------------------------------------------------------------------


def test_wake_loss_is_unbiased_for_the_exact_wake_objective():
    """The compiled wake loss estimates -E_{q_λ(h|x) p_data(x)}[log p_θ(x, h)] and its
    θ-gradient; the oracle sums q_λ(h|x) (NumPy) times log p_θ(x, h) over the 8 hidden states."""
    theta, lam = random_params(MODEL, seed=1, scale=1.0)
    params = {"theta": theta, "lambda": lam}
    q = np.array([[np.exp(oracle_log_recognition(lam, LAYERS, x, h)) for h in STATES] for x in X])
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-6)

    def exact_loss(theta):
        log_p = jax.vmap(lambda x: jax.vmap(
            lambda h: MODEL.joint.log_prob(theta, {"x": x, "z": h}, {}))(jnp.asarray(STATES)))(X)
        return -jnp.sum(jnp.asarray(q, jnp.float32) * log_p) / len(X)

    exact_value, exact_grad = jax.jit(jax.value_and_grad(exact_loss))(theta)
    phase = wake_sleep(MODEL).phases[0]
    assert phase.name == "wake" and phase.groups == ("theta",)
    values, grads = replicas(phase.loss, params, "theta", {"x": X}, 2000)
    assert_unbiased(values, exact_value, "wake loss")
    assert_unbiased(grads, ravel_pytree(exact_grad)[0], "wake gradient")


def test_sleep_loss_is_unbiased_for_the_exact_sleep_objective():
    """The compiled sleep loss estimates -E_{p_θ(x|h) p(h)}[log q_λ(h|x)] and its
    λ-gradient; the oracle sums p_θ(x, h) (NumPy) times log q_λ(h|x) over the 64 states."""
    theta, lam = random_params(MODEL, seed=2, scale=1.0)
    params = {"theta": theta, "lambda": lam}
    pairs = [(x, h) for x in STATES for h in STATES]
    p = np.array([np.exp(oracle_log_joint(theta, LAYERS, x, h)) for x, h in pairs])
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-6)
    xs = jnp.asarray(np.array([x for x, _ in pairs]))
    hs = jnp.asarray(np.array([h for _, h in pairs]))

    def exact_loss(lam):
        log_q = jax.vmap(lambda x, h: MODEL.inference.log_prob(lam, {"z": h}, {"x": x}))(xs, hs)
        return -jnp.sum(jnp.asarray(p, jnp.float32) * log_q)

    exact_value, exact_grad = jax.jit(jax.value_and_grad(exact_loss))(lam)
    phase = wake_sleep(MODEL).phases[1]
    assert phase.name == "sleep" and phase.groups == ("lambda",)
    values, grads = replicas(phase.loss, params, "lambda", {"x": X}, 2000)
    assert_unbiased(values, exact_value, "sleep loss")
    assert_unbiased(grads, ravel_pytree(exact_grad)[0], "sleep gradient")


def _hand_sleep_loss(params, key, batch, group="lambda"):
    """The sleep loss written by hand, kept as the compiled phase's oracle: B ancestral dreams,
    dream b with k_b = split(key, B)[b]: h_b ~ p_θ(h) with k_b, x_b ~ p_θ(x|h_b) with
    split(fold_in(k_b, 1), 1)[0] (the compiler's keys); −mean_b log q(h_b|x_b)."""
    keys = jax.random.split(key, batch["x"].shape[0])

    def dream(k):
        h = MODEL.prior(params["theta"]).sample(k)
        x = MODEL.decoder_distribution(params["theta"], h).sample(
            jax.random.split(jax.random.fold_in(k, 1), 1)[0])
        return jax.lax.stop_gradient(h), jax.lax.stop_gradient(x)

    h, x = jax.vmap(dream)(keys)
    log_q = jax.vmap(lambda xb, hb: MODEL.inference.log_prob(params[group], {"z": hb}, {"x": xb}))(x, h)
    return -jnp.mean(log_q)


def _hand_wake_phi_loss(params, key, batch, k):
    """The wake-φ loss written by hand (the compiled phase's oracle): per example b, K draws
    h_i ~ q_φ(h|x_b) with split(split(key, B)[b], K)[i], constant self-normalized weights of
    log p_θ(x_b, h_i) − log q_φ(h_i|x_b); −mean_b Σ_i w̃_i log q_φ(h_i|x_b)."""
    def one(key_b, x_b):
        h = jax.vmap(lambda key_i: MODEL.inference.sample(params["phi"], key_i, {"x": x_b})["z"])(
            jax.random.split(key_b, k))
        h = jax.lax.stop_gradient(h)
        log_p = jax.vmap(lambda h_i: MODEL.joint.log_prob(params["theta"], {"x": x_b, "z": h_i}, {}))(h)
        log_q = jax.vmap(lambda h_i: MODEL.inference.log_prob(params["phi"], {"z": h_i}, {"x": x_b}))(h)
        weights = jax.lax.stop_gradient(jax.nn.softmax(log_p - log_q))
        return jnp.sum(weights * log_q)

    return -jnp.mean(jax.vmap(one)(jax.random.split(key, batch["x"].shape[0]), batch["x"]))


@pytest.mark.parametrize(("phase_index", "group", "oracle"), [
    (1, "phi", lambda p, key, b: _hand_wake_phi_loss(p, key, b, 4)),
    (2, "phi", lambda p, key, b: _hand_sleep_loss(p, key, b, "phi")),
])
def test_compiled_rws_phases_equal_the_hand_written_losses(phase_index, group, oracle):
    """The phases compiled from the RWS declaration (self-normalized posterior, ancestral dreams)
    are the hand-written losses: value and φ-gradient to float rounding, same keys."""
    theta, phi = random_params(MODEL, seed=7, scale=1.0)
    params, key, batch = {"theta": theta, "phi": phi}, jax.random.key(8), {"x": jnp.asarray(X)}
    phase = rws(MODEL, k=4).phases[phase_index]
    value, grad = jax.jit(jax.value_and_grad(
        lambda g: phase.loss({**params, group: g}, key, batch)[0]))(phi)
    expected, expected_grad = jax.jit(jax.value_and_grad(
        lambda g: oracle({**params, group: g}, key, batch)))(phi)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(grad)[0], ravel_pytree(expected_grad)[0], rtol=1e-5,
                               atol=1e-6)


def test_compiled_sleep_phase_equals_the_hand_written_loss():
    theta, lam = random_params(MODEL, seed=9, scale=1.0)
    params, key, batch = {"theta": theta, "lambda": lam}, jax.random.key(10), {"x": jnp.asarray(X)}
    phase = wake_sleep(MODEL).phases[1]
    value, grad = jax.value_and_grad(lambda g: phase.loss({**params, "lambda": g}, key, batch)[0])(lam)
    expected, expected_grad = jax.value_and_grad(
        lambda g: _hand_sleep_loss({**params, "lambda": g}, key, batch))(lam)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(grad)[0], ravel_pytree(expected_grad)[0], rtol=1e-5,
                               atol=1e-6)


def test_the_compiled_wake_objective_is_the_declared_one_plus_the_learned_prior():
    assert WAKE_LEARNED_PRIOR.dist == WAKE.dist
    assert str(WAKE_LEARNED_PRIOR.body) == "log p_θ(x|h) + log p_θ(h)"


# --- reweighted wake-sleep ----------------------------------------------------------------


def test_rws_wake_theta_gradient_is_the_importance_weighted_bounds():
    """The wake-θ update Σ_k w̃_k ∇θ log p_θ(x, h_k) is the θ-gradient of the IWAE bound at the
    same draws: compared with unigen.algorithms.iwae.iwae_bound (autodiff of log-sum-exp)."""
    theta, phi = random_params(MODEL, seed=3, scale=1.0)
    params = {"theta": theta, "phi": phi}
    key, k = jax.random.key(4), 7
    phase = rws(MODEL, k=k).phases[0]
    assert phase.name == "wake_theta" and phase.groups == ("theta",)
    (value, metrics), grad = jax.jit(jax.value_and_grad(
        lambda t: phase.loss({"theta": t, "phi": phi}, key, {"x": X}), has_aux=True
    ))(theta)

    def oracle(t):
        keys = jax.random.split(key, len(X))
        bounds = jax.vmap(
            lambda kb, xb: iwae_bound(MODEL, {"theta": t, "eta": phi}, kb, xb, k)
        )(keys, jnp.asarray(X))
        return -jnp.mean(bounds)

    expected_value, expected_grad = jax.jit(jax.value_and_grad(oracle))(theta)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    np.testing.assert_allclose(metrics["iwae_bound"], -expected_value, rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(grad)[0], ravel_pytree(expected_grad)[0],
                               rtol=1e-5, atol=1e-6)


def test_rws_wake_phi_gradient_converges_to_the_posterior_fit():
    """Self-normalized weights are biased for finite K but consistent. Here q_φ is far from the
    posterior (few effective samples), so convergence is slow: the max coordinate error against
    the exact -∇φ Σ_x Σ_h p_θ(h|x) log q_φ(h|x) / |X| measured 0.049 / 0.028 (two seeds) at
    K = 1,000, 0.039 / 0.022 at K = 20,000 and 0.014 / 0.004 at K = 200,000. The test uses
    K = 200,000 and a tolerance of 0.03 on every coordinate (the gradient's scale is ~1)."""
    theta, phi = random_params(MODEL, seed=5, scale=1.0)
    posterior = []
    for x in X:
        joint = np.array([oracle_log_joint(theta, LAYERS, x, h) for h in STATES])
        posterior.append(np.exp(joint - np.logaddexp.reduce(joint)))
    posterior = jnp.asarray(np.array(posterior), jnp.float32)

    def exact_loss(phi):
        log_q = jax.vmap(lambda x: jax.vmap(
            lambda h: MODEL.inference.log_prob(phi, {"z": h}, {"x": x}))(jnp.asarray(STATES)))(X)
        return -jnp.sum(posterior * log_q) / len(X)

    exact_grad = ravel_pytree(jax.jit(jax.grad(exact_loss))(phi))[0]
    phase = rws(MODEL, k=200_000, recognition="wake").phases[1]
    assert phase.name == "wake_phi" and phase.groups == ("phi",)
    grad = jax.jit(jax.grad(lambda p: phase.loss({"theta": theta, "phi": p}, jax.random.key(6),
                                                 {"x": X})[0]))(phi)
    np.testing.assert_allclose(ravel_pytree(grad)[0], exact_grad, atol=0.03)


def test_rws_phases_follow_the_recognition_option_and_check_it():
    assert [p.name for p in rws(MODEL).phases] == ["wake_theta", "wake_phi", "sleep_phi"]
    assert [p.name for p in rws(MODEL, recognition="sleep").phases] == ["wake_theta", "sleep_phi"]
    assert [p.groups for p in rws(MODEL).phases] == [("theta",), ("phi",), ("phi",)]
    with pytest.raises(ConfigError, match="recognition: expected one of .*got 'dream'"):
        rws(MODEL, recognition="dream")
    with pytest.raises(ConfigError, match="k: expected a positive int, got 0"):
        rws(MODEL, k=0)


def test_rws_declaration_is_well_formed_and_its_docstring_states_each_phase():
    module = importlib.import_module("unigen.algorithms.rws")
    assert check(RWS_DECLARATION) is RWS_DECLARATION
    assert [p.name for p in RWS_DECLARATION.phases] == [p.name for p in rws(MODEL).phases]
    squeezed = "".join(module.__doc__.split())
    for phase in RWS_DECLARATION.phases:
        assert "".join(phase.objective.latex().split()) in squeezed, phase.name
    assert str(RWS_DECLARATION.phase("sleep_phi").objective) == "E_{p_θ(x|h)p(h)}[log q_φ(h|x)]"


# --- every phase updates only its own parameter group --------------------------------------


ALGORITHMS = {
    "wake-sleep": lambda: wake_sleep(MODEL),
    "rws": lambda: rws(MODEL, k=3),
    "vem-nvil": lambda: variational_em(MODEL, baseline="nvil", baseline_hidden=4),
    "vem-exact": lambda: variational_em(MODEL, estimator="exact"),
}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_phase_updates_only_its_own_parameters(name):
    """One trainer step of each phase alone (SGD): its groups change, every other group is
    bit-identical."""
    algorithm = ALGORITHMS[name]()
    for phase in algorithm.phases:
        trainer = make_trainer(Algorithm(algorithm.init, (phase,)), optax.sgd(0.5))
        state = trainer.init(jax.random.key(0))
        before = jax.device_get(state.params)
        after, _ = jax.jit(trainer.update)(state, {"x": jnp.asarray(X)})
        after = jax.device_get(after.params)
        for group in before:
            old, new = ravel_pytree(before[group])[0], ravel_pytree(after[group])[0]
            if group in phase.groups:
                assert np.any(old != new), (name, phase.name, group)
            else:
                np.testing.assert_array_equal(old, new, err_msg=f"{name}/{phase.name}/{group}")
