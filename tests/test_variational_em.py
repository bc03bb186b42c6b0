"""Variational EM against exact enumeration: classic EM's monotonicity, an unbiased
score-function E-step for every baseline, and an unbiased M-step.

The models are the tiny Helmholtz machines of test_wake_sleep.py (3 visible, 3 hidden units),
whose bound and its gradients are finite sums; the bound of 4 standard errors over replicas is
explained there.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from test_sbn import oracle_log_marginal, random_params
from test_wake_sleep import MODEL, STATES, X, assert_unbiased, replicas

from unigen.algorithms.variational_em import BASELINES, variational_em
from unigen.errors import ConfigError
from unigen.models import helmholtz_machine, sigmoid_belief_net
from unigen.training.trainer import make_trainer


def exact_bound(theta, phi):
    """The bound averaged over X, by enumerating the 8 hidden states."""
    def one(x):
        def term(h):
            log_q = MODEL.inference.log_prob(phi, {"z": h}, {"x": x})
            log_p = MODEL.joint.log_prob(theta, {"x": x, "z": h}, {})
            return jnp.exp(log_q) * (log_p - log_q)

        return jnp.sum(jax.vmap(term)(jnp.asarray(STATES)))

    return jnp.mean(jax.vmap(one)(jnp.asarray(X)))


@pytest.mark.parametrize("baseline", BASELINES)
def test_score_function_e_step_is_unbiased_for_every_baseline(baseline):
    """The E-step gradient in φ (recognition weights and biases) has the exact ∇φ of the bound
    as its mean, with no baseline, the leave-one-out batch mean, and NVIL's learned input-
    dependent baseline (randomly initialized, so not zero; without the variance normalization,
    which rescales the gradient). 2,000 replicas, batch of 3 examples, 2 draws each."""
    theta, phi = random_params(MODEL, seed=8, scale=1.0)
    algorithm = variational_em(MODEL, baseline=baseline, n_samples=2, normalize=False,
                               baseline_hidden=4)
    params = algorithm.init(jax.random.key(1))
    params = {"theta": theta, "phi": {**params["phi"], **phi}}
    if baseline == "nvil":
        assert set(params["phi"]) == {"weights", "biases", "nvil_baseline"}
    exact = jax.jit(jax.grad(lambda w, b: -exact_bound(theta, {"weights": w, "biases": b}),
                             argnums=(0, 1)))(phi["weights"], phi["biases"])
    exact = ravel_pytree({"weights": exact[0], "biases": exact[1]})[0]
    phase = algorithm.phases[0]
    assert (phase.name, phase.groups) == ("e_step", ("phi",))

    keys = jax.random.split(jax.random.key(2), 2000)

    def one(key):
        grads = jax.grad(lambda p: phase.loss({**params, "phi": p}, key, {"x": X})[0])(params["phi"])
        return ravel_pytree({"weights": grads["weights"], "biases": grads["biases"]})[0]

    grads = jax.jit(jax.vmap(one))(keys)
    assert_unbiased(grads, exact, f"e_step gradient ({baseline})")


@pytest.mark.parametrize("estimator", ["muprop", "disarm", "rebar", "relax"])
def test_discrete_estimator_e_step_is_unbiased(estimator):
    """``variational_em(model, estimator=...)``: the E-step with that estimator object on q_φ has
    the exact ∇φ of the bound (by enumeration) as its mean, in the recognition weights and biases;
    2,000 replicas. REBAR and RELAX start from their initial control variates (η = 1, λ = 0.5;
    RELAX's network with a non-zero output layer, so that it is not REBAR)."""
    theta, phi = random_params(MODEL, seed=8, scale=1.0)
    algorithm = variational_em(MODEL, estimator=estimator, n_samples=2)
    initial = algorithm.init(jax.random.key(1))
    if estimator == "relax":
        network = initial["phi"]["relax"]["network"]
        initial["phi"]["relax"]["network"] = {**network, "output_weights": jnp.ones_like(network["output_weights"])}
    params = {"theta": theta, "phi": {**initial["phi"], **phi}}
    assert jax.tree.structure(initial) == jax.tree.structure(params)
    exact = jax.jit(jax.grad(lambda p: -exact_bound(theta, p)))(phi)
    phase = algorithm.phases[0]

    def one(key):
        grads = jax.grad(lambda p: phase.loss({**params, "phi": p}, key, {"x": X})[0])(params["phi"])
        return ravel_pytree({name: grads[name] for name in phi})[0]

    grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(2), 2000))
    assert_unbiased(grads, ravel_pytree(exact)[0], f"e_step gradient ({estimator})")


def exact_k_bound(theta, phi, k):
    """The k-sample bound averaged over X, by enumerating the 8^k tuples of hidden states."""
    tuples = jnp.asarray(np.array(list(itertools.product(range(len(STATES)), repeat=k))))

    def one(x):
        log_q = jax.vmap(lambda h: MODEL.inference.log_prob(phi, {"z": h}, {"x": x}))(jnp.asarray(STATES))
        log_p = jax.vmap(lambda h: MODEL.joint.log_prob(theta, {"x": x, "z": h}, {}))(jnp.asarray(STATES))
        log_w, log_tuple = (log_p - log_q)[tuples], jnp.sum(log_q[tuples], axis=1)
        return jnp.sum(jnp.exp(log_tuple) * (jax.nn.logsumexp(log_w, axis=1) - np.log(k)))

    return jnp.mean(jax.vmap(one)(jnp.asarray(X)))


def test_vimco_trains_both_steps_on_the_k_sample_bound_unbiasedly():
    """``estimator="vimco"``: the E-step's φ-gradient (VIMCO) and the M-step's θ-gradient have the
    exact gradients of the k = 3 sample bound (by enumeration of the 8^3 tuples) as their means,
    over 2,000 replicas; the phases report the bound, whose mean is the exact one."""
    theta, phi = random_params(MODEL, seed=8, scale=1.0)
    algorithm = variational_em(MODEL, estimator="vimco", k=3)
    params = {"theta": theta, "phi": phi}
    assert jax.tree.structure(algorithm.init(jax.random.key(1))) == jax.tree.structure(params)
    exact_value, exact = jax.jit(jax.value_and_grad(lambda t, p: exact_k_bound(t, p, 3), argnums=(0, 1)))(theta, phi)
    for phase, group, gradient in zip(algorithm.phases, ("phi", "theta"), (exact[1], exact[0])):
        assert phase.groups == (group,)
        values, grads = replicas(phase.loss, params, group, {"x": X}, 2000, seed=3)
        assert_unbiased(grads, -ravel_pytree(gradient)[0], f"{phase.name} gradient (vimco)")
        assert_unbiased(values[:, None], -np.asarray([exact_value]), f"{phase.name} bound (vimco)")
    with pytest.raises(ConfigError, match="k: expected at least 2 with estimator='vimco'"):
        variational_em(MODEL, estimator="vimco", k=1)


def test_baselines_reduce_the_e_step_variance():
    """Measured on this model (2,000 replicas): the summed per-coordinate variance of the
    E-step gradient is 2.4 times lower with the leave-one-out mean than with no baseline; the
    test requires at least 1.5 times (the variance estimates themselves are within ~10%)."""
    theta, phi = random_params(MODEL, seed=8, scale=1.0)
    totals = {}
    for baseline in ("none", "mean"):
        algorithm = variational_em(MODEL, baseline=baseline, n_samples=2)
        params = {"theta": theta, "phi": phi}
        phase = algorithm.phases[0]

        def one(key, phase=phase, params=params):
            grads = jax.grad(lambda p: phase.loss({**params, "phi": p}, key, {"x": X})[0])(phi)
            return ravel_pytree(grads)[0]

        grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), 2000))
        totals[baseline] = float(np.sum(np.var(np.asarray(grads), axis=0)))
    assert totals["none"] > 1.5 * totals["mean"], totals


def test_m_step_is_unbiased_for_the_exact_m_step():
    theta, phi = random_params(MODEL, seed=9, scale=1.0)
    params = {"theta": theta, "phi": phi}
    phase = variational_em(MODEL).phases[1]
    assert (phase.name, phase.groups) == ("m_step", ("theta",))

    def exact_loss(theta):
        # minus the bound: the compiled M-step reports the bound's estimate (its θ-gradient is
        # that of -E_q[log p_θ(x, z)], log q_φ having no θ)
        def one(x):
            log_q = jax.vmap(lambda h: MODEL.inference.log_prob(phi, {"z": h}, {"x": x}))(STATES)
            log_p = jax.vmap(lambda h: MODEL.joint.log_prob(theta, {"x": x, "z": h}, {}))(STATES)
            return -jnp.sum(jnp.exp(log_q) * (log_p - log_q))

        return jnp.mean(jax.vmap(one)(jnp.asarray(X)))

    exact_value, exact_grad = jax.jit(jax.value_and_grad(exact_loss))(theta)
    values, grads = replicas(phase.loss, params, "theta", {"x": X}, 2000)
    assert_unbiased(values, exact_value, "m_step loss")
    assert_unbiased(grads, ravel_pytree(exact_grad)[0], "m_step gradient")


def test_classic_em_never_decreases_the_log_likelihood():
    """Exact E-step by enumeration, M-step by one SGD step (generalized EM): the exact
    log-likelihood of the training set, reported by the step before it updates θ, never
    decreases over 60 steps (up to 1e-5 nats of float32 rounding) and rises by more than 0.5
    nats per example. The first value is checked against the NumPy brute-force oracle."""
    teacher = helmholtz_machine(6, (3,))
    teacher_theta, _ = random_params(teacher, seed=12, scale=2.0)
    keys = jax.random.split(jax.random.key(4), 64)
    data = np.asarray(jax.jit(jax.vmap(lambda k: teacher.joint.sample(teacher_theta, k, {})["x"]))(keys))
    student = sigmoid_belief_net(6, (3,))
    algorithm = variational_em(student, estimator="exact")
    assert [(p.name, p.groups) for p in algorithm.phases] == [("m_step", ("theta",))]
    steps = 60
    trainer = make_trainer(algorithm, optax.sgd(0.2), steps_per_call=steps)
    state = trainer.init(jax.random.key(5))
    initial_theta = jax.device_get(state.params["theta"])
    state, metrics = trainer.step(state, {"x": jnp.asarray(np.broadcast_to(data, (steps,) + data.shape))})
    log_likelihood = np.asarray(metrics["m_step/log_likelihood"], np.float64)
    oracle = np.mean([oracle_log_marginal(initial_theta, (3,), x) for x in data])
    np.testing.assert_allclose(log_likelihood[0], oracle, rtol=1e-5)
    assert np.all(np.diff(log_likelihood) >= -1e-5), np.diff(log_likelihood).min()
    assert log_likelihood[-1] - log_likelihood[0] > 0.5, log_likelihood[[0, -1]]


def test_options_are_checked_by_name():
    with pytest.raises(ConfigError, match=r"baseline: expected one of \['none', 'mean', 'nvil'\], got 'ema'"):
        variational_em(MODEL, baseline="ema")
    with pytest.raises(ConfigError, match=r"estimator: expected one of \['score', 'exact', 'muprop', 'arm', 'disarm', 'rebar', 'relax', 'vimco'\], got 'pathwise'"):
        variational_em(MODEL, estimator="pathwise")
    with pytest.raises(ConfigError, match="baseline: expected 'none' with estimator='exact'"):
        variational_em(MODEL, estimator="exact", baseline="nvil")
    with pytest.raises(ConfigError, match="baseline: expected 'none' with estimator='disarm'"):
        variational_em(MODEL, estimator="disarm", baseline="mean")
    with pytest.raises(ConfigError, match="n_samples: expected a positive int, got 0"):
        variational_em(MODEL, n_samples=0)
    with pytest.raises(ConfigError, match="latent_dim: exact enumeration needs at most 4096"):
        variational_em(helmholtz_machine(3, (8, 5)), estimator="exact")
