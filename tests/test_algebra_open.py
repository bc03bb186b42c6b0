"""The open algebra: named coefficients and schedules, metrics beyond the objective, distinct
distributions, and declaration -> algorithm (issue [6], parts 1-3)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import optax
import pytest

from unigen.algebra import (
    KL,
    Declaration,
    E,
    PhaseObjective,
    algorithm,
    coefficient,
    compile,
    dist,
    log,
)
from unigen.core import Algorithm
from unigen.errors import ConfigError

p_data = dist("p_data", over="x")
decoder = dist("p", over="x", given="z", params="theta")
encoder = dist("q", over="z", given="x", params="eta")
prior = dist("p", over="z")
RECONSTRUCTION = E(encoder, log(decoder))
DIVERGENCE = KL(encoder, prior)


def _bindings():
    """A linear-Gaussian VAE: q(z|x) = N(a x, s²), p(z) = N(0, 1), p(x|z) = N(w z, 1)."""
    return {
        encoder: lambda p, g: nd.Normal(p["eta"]["a"] * g["x"], jnp.exp(p["eta"]["log_s"])),
        decoder: lambda p, g: nd.Normal(p["theta"]["w"] * g["z"], 1.0),
        prior: lambda p, g: nd.Normal(0.0, 1.0),
    }


PARAMS = {"theta": {"w": jnp.float32(0.7)}, "eta": {"a": jnp.float32(0.4), "log_s": jnp.float32(-0.3)}}
BATCH = {"x": jnp.array([0.5, -1.0, 2.0], jnp.float32)}


def _closed_form_kl():
    """Mean over the batch of KL(N(a x, s²) ‖ N(0, 1)) = ½(m² + s² − 1) − log s."""
    m = PARAMS["eta"]["a"] * BATCH["x"]
    s = jnp.exp(PARAMS["eta"]["log_s"])
    return float(jnp.mean(0.5 * (m**2 + s**2 - 1.0) - jnp.log(s)))


def test_a_named_coefficient_scales_its_term(key):
    """β-VAE: the loss is −(reconstruction − β·KL) with the same draws as the unscaled terms,
    the KL closed form; β prints as β and its default value is used unless overridden."""
    beta = coefficient("beta", 4.0)
    objective = E(p_data, RECONSTRUCTION - beta * DIVERGENCE)
    assert str(objective) == "E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − β · KL(q_η(z|x) ‖ p(z))]"
    metrics = {"reconstruction": E(p_data, RECONSTRUCTION), "kl": E(p_data, DIVERGENCE)}
    loss = compile(objective, _bindings(), metrics=metrics)
    value, out = loss(PARAMS, key, BATCH)
    np.testing.assert_allclose(out["kl"], _closed_form_kl(), rtol=1e-6)
    np.testing.assert_allclose(value, -(out["reconstruction"] - 4.0 * out["kl"]), rtol=1e-6)
    # A value given to compile wins over the default; a traced value at call time wins over both.
    other = compile(objective, _bindings(), metrics=metrics, coefficients={beta: 0.25})
    np.testing.assert_allclose(other(PARAMS, key, BATCH)[0],
                               -(out["reconstruction"] - 0.25 * out["kl"]), rtol=1e-6)
    traced = jax.jit(lambda b: loss(PARAMS, key, BATCH, coefficients={"beta": b})[0])
    np.testing.assert_allclose(traced(jnp.float32(2.0)), -(out["reconstruction"] - 2.0 * out["kl"]),
                               rtol=1e-6)
    assert not loss.uses_step


def test_a_schedule_of_the_step_anneals_the_coefficient(key):
    """KL annealing in one line: β(step) = optax.linear_schedule(0, 1, 10); the loss at step t
    is −(reconstruction − (t/10)·KL)."""
    beta = coefficient("beta", optax.linear_schedule(0.0, 1.0, 10))
    metrics = {"reconstruction": E(p_data, RECONSTRUCTION), "kl": E(p_data, DIVERGENCE)}
    loss = compile(E(p_data, RECONSTRUCTION - beta * DIVERGENCE), _bindings(), metrics=metrics)
    assert loss.uses_step
    step_loss = jax.jit(loss)
    for step in (0, 3, 10, 20):
        value, out = step_loss(PARAMS, key, BATCH, jnp.int32(step))
        weight = min(step, 10) / 10
        np.testing.assert_allclose(value, -(out["reconstruction"] - weight * out["kl"]), rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(ConfigError, match="step: got None, expected the training step"):
        loss(PARAMS, key, BATCH)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda a, b: a + b, r"coefficient beta: got .*fails when called with the step"),
        (lambda t: jnp.ones(3, jnp.int32) * t, r"coefficient beta: got a schedule returning .*numeric scalar"),
        (None, r"coefficient beta: got no value"),
        (jnp.ones(2), r"coefficient beta: got .*expected a number, a scalar array or a schedule"),
    ],
)
def test_bad_coefficients_are_refused_in_one_line(value, message):
    beta = coefficient("beta", value)
    with pytest.raises(ConfigError, match=message) as info:
        compile(E(p_data, RECONSTRUCTION - beta * DIVERGENCE), _bindings())
    assert "\n" not in str(info.value)


def test_a_metric_may_be_any_expression_over_the_same_bindings(key):
    """Training β = 4 while logging the β = 1 ELBO (not a sub-term of the objective): it equals
    reconstruction − KL at the same draws, and carries no gradient."""
    beta = coefficient("beta", 4.0)
    elbo = E(p_data, RECONSTRUCTION - DIVERGENCE)
    loss = compile(E(p_data, RECONSTRUCTION - beta * DIVERGENCE), _bindings(),
                   metrics={"elbo": elbo, "reconstruction": E(p_data, RECONSTRUCTION)})
    _, out = loss(PARAMS, key, BATCH)
    np.testing.assert_allclose(out["elbo"], out["reconstruction"] - _closed_form_kl(), rtol=1e-5)
    only_metric = jax.grad(lambda p: loss(p, key, BATCH)[1]["elbo"])(PARAMS)
    assert all(float(jnp.abs(g)) == 0.0 for g in jax.tree.leaves(only_metric))


def test_distributions_that_print_alike_are_two_binding_keys(key):
    """A generator that prints like the decoder is another distribution: each gets its own
    binding; an unbound one is named with the term it appears in and the look-alike."""
    generator = dist("p", over="x", given="z", params="theta")
    bindings = {**_bindings(), generator: lambda p, g: nd.Normal(-p["theta"]["w"] * g["z"], 1.0)}
    both = E(p_data, E(encoder, log(decoder)) - E(encoder, log(generator)))
    loss = compile(both, bindings)
    # log N(x; wz, 1) − log N(x; −wz, 1) = 2 w x z, and E_q[z] = a x: the batch mean of 2 w a x²
    # (it would be 0 if the two were one binding key).
    w, a, s = PARAMS["theta"]["w"], PARAMS["eta"]["a"], jnp.exp(PARAMS["eta"]["log_s"])
    x = BATCH["x"]
    expected = float(jnp.mean(2 * w * a * x**2))
    # One estimate (one draw per row) has sd = sqrt(Σ (2 w x_i s)²) / B; 4,000 of them: 5 SE.
    bound = 5 * float(jnp.sqrt(jnp.sum((2 * w * x * s) ** 2)) / x.shape[0]) / np.sqrt(4000)
    draws = jax.vmap(lambda k: -loss(PARAMS, k, BATCH)[0])(jax.random.split(key, 4000))
    assert abs(float(jnp.mean(draws)) - expected) < bound
    with pytest.raises(ConfigError) as info:
        compile(E(p_data, E(encoder, log(generator))), _bindings())
    message = str(info.value)
    assert "no binding for p_θ(x|z) (in log p_θ(x|z))" in message
    assert "another distribution that prints alike" in message and "\n" not in message


def test_a_declaration_becomes_an_algorithm(key):
    """algorithm(declaration, bindings, init): one phase per declared phase, the groups and
    sense as declared, the loss the compiled objective, uses_step where a schedule is."""
    beta = coefficient("beta", optax.linear_schedule(0.0, 1.0, 100))
    declared = Declaration(
        "toy-two-phase", "Toy", "test",
        (PhaseObjective("elbo", ("theta", "eta"), E(p_data, RECONSTRUCTION - beta * DIVERGENCE)),
         PhaseObjective("prior_fit", "eta", E(p_data, DIVERGENCE), "min")),
    )
    init = {"theta": lambda k: PARAMS["theta"], "eta": lambda k: PARAMS["eta"]}
    built = algorithm(declared, _bindings(), init)
    assert isinstance(built, Algorithm) and built.objective is declared
    assert [(p.name, p.groups, p.uses_step) for p in built.phases] == [
        ("elbo", ("theta", "eta"), True), ("prior_fit", ("eta",), False)]
    assert built.init(key) == PARAMS
    value, metrics = built.phases[1].loss(PARAMS, key, BATCH)
    np.testing.assert_allclose(value, _closed_form_kl(), rtol=1e-6)  # minimized: +objective
    np.testing.assert_allclose(metrics["objective"], _closed_form_kl(), rtol=1e-6)
    assert str(declared).splitlines() == [
        "Toy (test)",
        "  elbo: max_{θ,η} E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − β · KL(q_η(z|x) ‖ p(z))]",
        "  prior_fit: min_{η} E_{p_data(x)}[KL(q_η(z|x) ‖ p(z))]",
    ]
    assert r"\max_{\theta, \eta}" in declared.latex()
    with pytest.raises(ConfigError, match=r"init of toy-two-phase: got groups \['theta'\]"):
        algorithm(declared, _bindings(), {"theta": init["theta"]})
