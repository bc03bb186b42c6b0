"""The discrete estimators as estimator objects of compile (unigen.algebra.discrete_estimators).

Oracle: exact enumeration. A tiny Bernoulli latent model (and a categorical one, below), x ∈ R^2 (a batch of 3 examples),
h ∈ {0,1}^2, q_φ(h|x) = Bernoulli(W x + c), p_θ(h) = Bernoulli(a), p_θ(x|h) = Bernoulli(V h + d)
on binary x; the objective is the ELBO E_pdata E_q[log p_θ(h) p_θ(x|h) − log q_φ(h|x)], whose
body depends on θ and (through log q) on φ directly. ``estimator={q: "enumerate"}`` sums the 4
states exactly, so its gradient is the exact gradient. Each unbiased adapter's gradient is
averaged over R replicas (independent keys, vmapped): every coordinate (φ and θ) must lie within
Z standard errors of the exact one. Z = 4.5 over 14 coordinates: a correct estimator fails with
probability < 1e-4 per seed; the fixed seed makes the test deterministic, and the power check
(the standard errors are small beside the gradient) and the straight-through estimator, which
this bound rejects (its bias is printed), show the test can fail.
"""

from __future__ import annotations

import functools
import itertools
import re

import jax
import jax.numpy as jnp
import numpyro.distributions as numpyro_dist
import pytest

from unigen import distributions
from unigen.algebra import (ARM, VIMCO, Concrete, DisARM, E, MuProp, Rebar, Relax, ScoreFunction, StraightThrough,
                            compile, dist, importance_weighted_bound, log, sg)
from unigen.errors import ConfigError
from unigen.estimators import rebar_init, relax_init

R, Z, N = 1000, 4.5, 2
p_data = dist("p_data", over="x")
q = dist("q", over="h", given="x", params="phi")
prior = dist("p", over="h", params="theta")
likelihood = dist("p", over="x", given="h", params="theta")
ELBO = E(p_data, E(q, log(prior) + log(likelihood) - log(q)))
BATCH = {"x": jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}


def _bindings(latent=distributions.bernoulli_logits):
    return {
        q: lambda params, given: latent(params["phi"]["w"] @ given["x"] + params["phi"]["c"]),
        prior: lambda params, given: distributions.bernoulli_logits(params["theta"]["a"]),
        likelihood: lambda params, given: distributions.bernoulli_logits(
            params["theta"]["v"] @ given["h"] + params["theta"]["d"]),
    }


def _params():
    k = jax.random.split(jax.random.key(3), 5)
    return {"phi": {"w": jax.random.normal(k[0], (2, 2)), "c": jax.random.normal(k[1], (2,))},
            "theta": {"a": jax.random.normal(k[2], (2,)), "v": 2.0 * jax.random.normal(k[3], (2, 2)),
                      "d": jax.random.normal(k[4], (2,))}}


def _flat(tree):
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


@functools.cache
def _exact(model="bernoulli"):
    """The exact loss (minus the ELBO) and its gradient at the model's parameters, by enumeration."""
    bindings, params = MODELS[model]
    loss = compile(ELBO, bindings(), estimator={q: "enumerate"})
    value, gradient = jax.jit(jax.value_and_grad(lambda p: loss(p, jax.random.key(0), BATCH)[0]))(params())
    return value, _flat(gradient)


def _replicas(estimator, params, model="bernoulli"):
    """Mean and standard error of the φ and θ gradient of the loss (the parameters of the
    estimator itself, if any, left out) over R keys, and the R values of the objective's loss."""
    loss = compile(ELBO, MODELS[model][0](), estimator={q: estimator}, n_samples=N)

    def one(key):
        (total, metrics), gradient = jax.value_and_grad(lambda p: loss(p, key, BATCH), has_aux=True)(params)
        value = total - metrics.get(f"{estimator.name}_variance", 0.0)  # the auxiliary loss is added to it
        return value, _flat({"phi": {k: gradient["phi"][k] for k in ("w", "c")}, "theta": gradient["theta"]})

    values, grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(11), R))
    return jnp.mean(grads, axis=0), jnp.std(grads, axis=0) / R**0.5, values


def _categorical_bindings():
    """h one-hot over K = 3 categories: q_φ(h|x) = Cat(W x + c), p_θ(h) = Cat(a), p_θ(x|h) = Bernoulli(V h + d)."""
    return {**_bindings(distributions.one_hot_categorical),
            prior: lambda params, given: distributions.one_hot_categorical(params["theta"]["a"])}


def _categorical_params():
    k = jax.random.split(jax.random.key(6), 5)
    return {"phi": {"w": jax.random.normal(k[0], (3, 2)), "c": jax.random.normal(k[1], (3,))},
            "theta": {"a": jax.random.normal(k[2], (3,)), "v": 2.0 * jax.random.normal(k[3], (2, 3)),
                      "d": jax.random.normal(k[4], (2,))}}


MODELS = {"bernoulli": (_bindings, _params), "categorical": (_categorical_bindings, _categorical_params)}


def _rebar_params(params=_params):
    return dict(params(), phi=dict(params()["phi"], rebar=rebar_init(eta=0.7, temperature=0.3)))


def _relax_params(params=_params, dim=2):
    phi = dict(params()["phi"], relax=relax_init(jax.random.key(5), dim))
    phi["relax"]["network"]["output_weights"] = jnp.ones((16,))  # a non-zero network: RELAX ≠ REBAR
    return dict(params(), phi=phi)


UNBIASED = {
    "muprop": (MuProp, _params),
    "arm": (ARM, _params),
    "disarm": (DisARM, _params),
    "rebar": (lambda: Rebar(lambda params: params["phi"]["rebar"]), _rebar_params),
    "relax": (lambda: Relax(lambda params: params["phi"]["relax"]), _relax_params),
}
CATEGORICAL_UNBIASED = {
    "score": (lambda: ScoreFunction("mean"), _categorical_params),
    "muprop": (MuProp, _categorical_params),
    "rebar": (UNBIASED["rebar"][0], lambda: _rebar_params(_categorical_params)),
    "relax": (UNBIASED["relax"][0], lambda: _relax_params(_categorical_params, 3)),
}
CASES = [("bernoulli", name) for name in sorted(UNBIASED)] + [("categorical", name) for name in sorted(CATEGORICAL_UNBIASED)]


@pytest.mark.parametrize("model, name", CASES)
def test_unbiased_adapters_match_the_exact_gradient_and_value(model, name):
    make, params_of = (UNBIASED if model == "bernoulli" else CATEGORICAL_UNBIASED)[name]
    params = params_of()
    exact_value, exact = _exact(model)
    mean, error, values = _replicas(make(), params, model)
    # the surrogate's value is the N-draw estimate: on average, minus the exact ELBO
    assert abs(float(jnp.mean(values) - exact_value)) < Z * float(jnp.std(values)) / R**0.5
    z = jnp.abs(mean - exact) / error
    print(f"{model} {name}: max |mean - exact| / SE = {float(jnp.max(z)):.2f}, max SE = {float(jnp.max(error)):.4f}, "
          f"max |exact| = {float(jnp.max(jnp.abs(exact))):.3f}")
    assert float(jnp.max(error)) < 0.1 * float(jnp.max(jnp.abs(exact)))  # power: the bound is tight
    assert float(jnp.max(z)) < Z, (name, mean, exact, error)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("make", [lambda: Concrete(temperature=0.5), lambda: StraightThrough(temperature=1.0)],
                         ids=["concrete", "straight-through"])
def test_relaxed_adapters_are_biased_and_their_bias_is_printed(model, make):
    """Concrete (τ = 0.5) and straight-through (τ = 1) on both latents: the bias of the mean
    gradient against the exact one is printed, and the bound above rejects them."""
    estimator = make()
    _, exact = _exact(model)
    mean, error, _ = _replicas(estimator, MODELS[model][1](), model)
    bias = mean - exact
    print(f"{model} {estimator.name} (tau={estimator.temperature}) bias per coordinate (phi c, w; theta a, d, v): "
          f"{[round(float(b), 3) for b in bias]}")
    print(f"  |bias| / SE max = {float(jnp.max(jnp.abs(bias) / error)):.1f}, "
          f"|bias| / |exact| = {float(jnp.linalg.norm(bias) / jnp.linalg.norm(exact)):.3f}")
    assert float(jnp.max(jnp.abs(bias) / error)) > Z  # the test above would reject it


def test_rebar_variance_loss_trains_only_its_own_parameters():
    """The auxiliary "rebar_variance" is reported, its gradient reaches η and log λ and is
    ∇‖ĝ_l‖² (checked against a finite difference of the reported value at the same key), and the
    ELBO's θ-gradient is the same as with other η, λ (fixed, same key, hence the same draws): the
    control variate, which evaluates the body again, never reaches θ's gradient."""
    params = _rebar_params()
    learned = compile(ELBO, _bindings(), estimator={q: Rebar(lambda p: p["phi"]["rebar"])}, n_samples=N)
    fixed = compile(ELBO, _bindings(), estimator={q: Rebar(eta=0.2, temperature=0.9)}, n_samples=N)
    key = jax.random.key(4)
    learned_loss = jax.jit(lambda p: learned(p, key, BATCH))
    (_, metrics), gradient = jax.jit(jax.value_and_grad(learned_loss, has_aux=True))(params)
    assert "rebar_variance" in metrics and float(metrics["rebar_variance"]) > 0
    reference = jax.jit(jax.grad(lambda p: fixed(p, key, BATCH)[0]))(_params())
    assert jnp.allclose(_flat(gradient["theta"]), _flat(reference["theta"]), rtol=1e-5, atol=1e-6)
    assert not jnp.allclose(_flat(gradient["phi"]["w"]), _flat(reference["phi"]["w"]), rtol=1e-3)  # φ's differs
    step = 1e-2
    def variance(eta):
        moved = dict(params, phi=dict(params["phi"], rebar=dict(params["phi"]["rebar"], eta=eta)))
        return float(learned_loss(moved)[1]["rebar_variance"])
    difference = (variance(0.7 + step) - variance(0.7 - step)) / (2 * step)
    assert abs(float(gradient["phi"]["rebar"]["eta"]) - difference) < 0.02 * abs(difference) + 1e-3


@pytest.mark.parametrize("estimator", [MuProp(), DisARM(), Rebar(), StraightThrough()])
def test_a_gaussian_latent_is_refused_in_one_line(estimator):
    loss = compile(ELBO, _bindings(lambda loc: numpyro_dist.Normal(loc, 1.0).to_event(1)), estimator={q: estimator})
    with pytest.raises(ConfigError) as error:
        loss(_params(), jax.random.key(0), BATCH)
    message = str(error.value)
    assert "\n" not in message and "Normal" in message and "Bernoulli" in message and estimator.name in message


@pytest.mark.parametrize("estimator", [ARM(), DisARM()])
def test_arm_and_disarm_refuse_a_categorical_latent_in_one_line(estimator):
    loss = compile(ELBO, _categorical_bindings(), estimator={q: estimator})
    with pytest.raises(ConfigError) as error:
        loss(_categorical_params(), jax.random.key(0), BATCH)
    message = str(error.value)
    assert "\n" not in message and "got a categorical" in message and "Bernoulli" in message
    assert f"{estimator.name} has no categorical form" in message


@pytest.mark.parametrize("estimator", [MuProp(), Rebar(), StraightThrough(), Concrete()])
def test_a_categorical_over_integer_indices_is_refused_with_the_one_hot_form_named(estimator):
    """numpyro's Categorical has integer values, where no relaxed body can be evaluated."""
    bindings = dict(_categorical_bindings())
    bindings[q] = lambda params, given: numpyro_dist.CategoricalLogits(params["phi"]["w"] @ given["x"] + params["phi"]["c"])
    loss = compile(ELBO, bindings, estimator={q: estimator})
    with pytest.raises(ConfigError) as error:
        loss(_categorical_params(), jax.random.key(0), BATCH)
    message = str(error.value)
    assert "\n" not in message and estimator.name in message and "CategoricalLogits" in message
    assert "one_hot_categorical" in message


@pytest.mark.parametrize("estimator", [Rebar(), Relax(lambda params: params)])
def test_rebar_and_relax_refuse_a_body_holding_the_latent_constant(estimator):
    """sg[log q(h|x)] in the body: jax's derivative in h misses it, and the control variate's
    correction is biased (variational EM's E-step declares its objective so); refused at compile."""
    held = E(p_data, E(q, log(prior) + log(likelihood) - sg(log(q))))
    with pytest.raises(ConfigError) as error:
        compile(held, _bindings(), estimator={q: estimator})
    message = str(error.value)
    assert "\n" not in message and estimator.name in message and "sg[" in message
    compile(held, _bindings(), estimator={q: MuProp()})  # unbiased for any slope: accepted


def test_the_refusal_is_needed_rebar_on_a_body_holding_the_latent_constant_is_biased(monkeypatch):
    """With the check above bypassed, REBAR on the sg[log q] body misses the exact φ-gradient by
    more than Z standard errors (it was 10–19 in every φ coordinate when measured), while the
    same draws on the ELBO's body pass the unbiasedness test."""
    from unigen.algebra import compiler

    monkeypatch.setattr(compiler, "_check_bodies", lambda expr, methods: None)
    held = E(p_data, E(q, log(prior) + log(likelihood) - sg(log(q))))
    _, exact = _exact()
    phi_size = _flat(_params()["phi"]).shape[0]
    for objective, biased in ((held, True), (ELBO, False)):
        loss = compile(objective, _bindings(), estimator={q: Rebar()}, n_samples=N)
        grads = jax.jit(jax.vmap(lambda key: _flat(jax.grad(lambda p: loss(p, key, BATCH)[0])(_params()))))(
            jax.random.split(jax.random.key(11), R))
        z = jnp.abs(jnp.mean(grads, axis=0) - exact) / (jnp.std(grads, axis=0) / R**0.5)
        print(f"rebar on {'sg[log q]' if biased else 'log q'}: z per phi coordinate {[round(float(v), 1) for v in z[:phi_size]]}")
        assert (float(jnp.max(z)) > Z) == biased


K = 3
BOUND = E(p_data, importance_weighted_bound(prior * likelihood, q, K))


def _exact_bound(params):
    """The K-sample bound averaged over BATCH, by enumerating the 4^K tuples of h, written out
    with log-sigmoids (not through compile)."""
    states = jnp.asarray(list(itertools.product((0.0, 1.0), repeat=2)))
    tuples = jnp.asarray(list(itertools.product(range(4), repeat=K)))

    def bernoulli(logits, value):
        logits, value = jnp.broadcast_arrays(logits, value)
        return jnp.sum(value * jax.nn.log_sigmoid(logits) + (1 - value) * jax.nn.log_sigmoid(-logits), axis=-1)

    def one(x):
        phi, theta = params["phi"], params["theta"]
        log_q = bernoulli((phi["w"] @ x + phi["c"])[None], states)
        log_p = bernoulli(theta["a"][None], states) + bernoulli(states @ theta["v"].T + theta["d"][None], x[None])
        log_w = (log_p - log_q)[tuples]
        return jnp.sum(jnp.exp(jnp.sum(log_q[tuples], axis=1)) * (jax.nn.logsumexp(log_w, axis=1) - jnp.log(K)))

    return jnp.mean(jax.vmap(one)(BATCH["x"]))


def test_vimco_is_unbiased_for_the_k_sample_bound_in_every_group():
    """``estimator={q: VIMCO()}`` on the proposal of the K = 3 bound: over R replicas the mean
    gradient (φ and θ) is the exact gradient of the bound within Z standard errors, and the mean
    value is the exact bound; without VIMCO the proposal's gradient is not estimated (φ's mean
    gradient is 0, which this bound rejects)."""
    value, gradient = jax.jit(jax.value_and_grad(_exact_bound))(_params())
    exact = _flat(gradient)
    loss = compile(BOUND, _bindings(), estimator={q: VIMCO()})

    def one(key):
        value, gradient = jax.value_and_grad(lambda p: loss(p, key, BATCH)[0])(_params())
        return value, _flat(gradient)

    values, grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(12), R))
    mean, error = jnp.mean(grads, axis=0), jnp.std(grads, axis=0) / R**0.5
    z = jnp.abs(mean + exact) / error  # the loss is minus the bound
    print(f"vimco: max |mean - exact| / SE = {float(jnp.max(z)):.2f}, max SE = {float(jnp.max(error)):.4f}, "
          f"max |exact| = {float(jnp.max(jnp.abs(exact))):.3f}")
    assert float(jnp.max(error)) < 0.1 * float(jnp.max(jnp.abs(exact)))
    assert float(jnp.max(z)) < Z, (mean, exact, error)
    assert abs(float(jnp.mean(values) + value)) < Z * float(jnp.std(values)) / R**0.5
    phi_size = _flat(_params()["phi"]).shape[0]
    assert float(jnp.max(jnp.abs(exact[:phi_size]) / error[:phi_size])) > Z  # "auto" (no φ gradient) is rejected


def test_vimco_and_the_per_expectation_adapters_are_refused_where_they_do_not_apply():
    with pytest.raises(ConfigError, match=r"vimco got an expectation E over q_φ\(h\|x\).*importance_weighted_bound"):
        compile(ELBO, _bindings(), estimator={q: VIMCO()})(_params(), jax.random.key(0), BATCH)
    with pytest.raises(ConfigError, match=r"rebar estimates one expectation, but q_φ\(h\|x\) is the proposal"):
        compile(BOUND, _bindings(), estimator={q: Rebar()})(_params(), jax.random.key(0), BATCH)
    with pytest.raises(ConfigError, match="vimco got a bound of k=1 draws, expected k >= 2"):
        one = E(p_data, importance_weighted_bound(prior * likelihood, q, 1))
        compile(one, _bindings(), estimator={q: VIMCO()})(_params(), jax.random.key(0), BATCH)


def test_one_hot_categorical_matches_numpyro_categorical_and_its_draws_their_probabilities():
    """unigen.distributions.one_hot_categorical against numpyro's CategoricalLogits (the oracle)
    on [2, 3] logits: its 9 enumerated states, their log-probabilities (summing to 1), the
    frequencies of 20,000 draws (within Z standard errors), the cross-entropy at a relaxed point,
    and one-line refusals of bad logits."""
    logits = jnp.array([[0.3, -1.0, 1.2], [0.0, 2.0, -0.5]])
    q_cat = distributions.one_hot_categorical(logits)
    states = q_cat.enumerate_support()
    indices = jnp.asarray(list(itertools.product(range(3), repeat=2)))
    assert states.shape == (9, 2, 3) and jnp.array_equal(jnp.argmax(states, axis=-1), indices)
    oracle = jnp.sum(numpyro_dist.CategoricalLogits(logits).log_prob(indices), axis=-1)
    assert jnp.allclose(q_cat.log_prob(states), oracle, atol=1e-6)
    assert abs(float(jnp.sum(jnp.exp(oracle))) - 1.0) < 1e-5
    draws = q_cat.sample(jax.random.key(0), (20_000,))
    assert jnp.all(jnp.sum(draws, axis=-1) == 1.0)
    frequency, p = jnp.mean(draws, axis=0), jax.nn.softmax(logits, axis=-1)
    assert float(jnp.max(jnp.abs(frequency - p) / jnp.sqrt(p * (1 - p) / 20_000))) < Z
    point = jax.nn.softmax(jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), axis=-1)  # inside the simplex
    assert jnp.allclose(q_cat.log_prob(point), jnp.sum(point * jax.nn.log_softmax(logits, axis=-1)))
    for bad, seen in ((jnp.zeros(1), "(1,)"), (jnp.zeros((2, 2, 3)), "(2, 2, 3)"), (jnp.zeros(3, jnp.int32), "int32")):
        with pytest.raises(ConfigError, match=r"^logits: got .*" + re.escape(seen) + r".*expected floating \[K\] or \[n, K\]"):
            distributions.one_hot_categorical(bad)


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="temperature: got -1"):
        StraightThrough(temperature=-1)
    with pytest.raises(ConfigError, match="parameters: got 3"):
        Relax(3)


def test_the_readme_example_runs_and_prints_what_the_readme_says(capsys):
    """The README's example (Benchmarks, after the discrete estimators): its printed lines."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code, printed = re.search(r"```python\n(import jax, jax.numpy as jnp\nfrom unigen import distributions\n"
                              r"from unigen.algebra import DisARM.*?)```\n\nprints.*?```\n(.*?)```", readme,
                              flags=re.S).groups()
    with jax.numpy_dtype_promotion("standard"):
        exec(code, {})
    assert capsys.readouterr().out == printed
