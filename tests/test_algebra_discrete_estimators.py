"""The discrete estimators as estimator objects of compile (unigen.algebra.discrete_estimators).

Oracle: exact enumeration. A tiny Bernoulli latent model, x ∈ R^2 (a batch of 3 examples),
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

import jax
import jax.numpy as jnp
import numpyro.distributions as numpyro_dist
import pytest

from unigen import distributions
from unigen.algebra import ARM, E, DisARM, MuProp, Rebar, Relax, StraightThrough, compile, dist, log
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
def _exact():
    """The exact loss (minus the ELBO) and its gradient at _params(), by enumeration."""
    loss = compile(ELBO, _bindings(), estimator={q: "enumerate"})
    value, gradient = jax.jit(jax.value_and_grad(lambda p: loss(p, jax.random.key(0), BATCH)[0]))(_params())
    return value, _flat(gradient)


def _replicas(estimator, params):
    """Mean and standard error of the φ and θ gradient of the loss (the parameters of the
    estimator itself, if any, left out) over R keys, and the R values of the objective's loss."""
    loss = compile(ELBO, _bindings(), estimator={q: estimator}, n_samples=N)

    def one(key):
        (total, metrics), gradient = jax.value_and_grad(lambda p: loss(p, key, BATCH), has_aux=True)(params)
        value = total - metrics.get(f"{estimator.name}_variance", 0.0)  # the auxiliary loss is added to it
        return value, _flat({"phi": {k: gradient["phi"][k] for k in ("w", "c")}, "theta": gradient["theta"]})

    values, grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(11), R))
    return jnp.mean(grads, axis=0), jnp.std(grads, axis=0) / R**0.5, values


def _rebar_params():
    return dict(_params(), phi=dict(_params()["phi"], rebar=rebar_init(eta=0.7, temperature=0.3)))


def _relax_params():
    phi = dict(_params()["phi"], relax=relax_init(jax.random.key(5), 2))
    phi["relax"]["network"]["output_weights"] = jnp.ones((16,))  # a non-zero network: RELAX ≠ REBAR
    return dict(_params(), phi=phi)


UNBIASED = {
    "muprop": (MuProp, _params),
    "arm": (ARM, _params),
    "disarm": (DisARM, _params),
    "rebar": (lambda: Rebar(lambda params: params["phi"]["rebar"]), _rebar_params),
    "relax": (lambda: Relax(lambda params: params["phi"]["relax"]), _relax_params),
}


@pytest.mark.parametrize("name", sorted(UNBIASED))
def test_unbiased_adapters_match_the_exact_gradient_and_value(name):
    make, params_of = UNBIASED[name]
    params = params_of()
    exact_value, exact = _exact()
    mean, error, values = _replicas(make(), params)
    # the surrogate's value is the N-draw estimate: on average, minus the exact ELBO
    assert abs(float(jnp.mean(values) - exact_value)) < Z * float(jnp.std(values)) / R**0.5
    z = jnp.abs(mean - exact) / error
    print(f"{name}: max |mean - exact| / SE = {float(jnp.max(z)):.2f}, max SE = {float(jnp.max(error)):.4f}, "
          f"max |exact| = {float(jnp.max(jnp.abs(exact))):.3f}")
    assert float(jnp.max(error)) < 0.1 * float(jnp.max(jnp.abs(exact)))  # power: the bound is tight
    assert float(jnp.max(z)) < Z, (name, mean, exact, error)


def test_straight_through_is_biased_and_its_bias_is_printed():
    _, exact = _exact()
    mean, error, _ = _replicas(StraightThrough(temperature=1.0), _params())
    bias = mean - exact
    print(f"straight-through (tau=1) bias per coordinate (phi c, w; theta a, d, v): {[round(float(b), 3) for b in bias]}")
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
