"""Estimators for discrete latents (issue [9]): unbiasedness against exact enumeration, measured bias.

Oracles:

* the exact ELBO gradient of small Helmholtz machines (6 visible units; H = 2 and 3 hidden units,
  two seeds) by enumeration of the 2^H hidden states (``sbn_problem``'s reference, itself
  checked against autodiff of the enumerated ELBO in ``test_estimators.py``);
* for VIMCO, the gradient of the K-sample bound by autodiff of the sum over all (2^H)^K tuples of
  draws, written out here (independent of ``exact.multi_sample_bound_gradient``);
* for straight-through on one bit, its expectation by numerical integration over the logistic noise.

Statistical bound: each coordinate's mean over R independent estimates must lie within Z = 5 standard
errors (SE = sample std / sqrt(R)) of the exact value, plus a float32 floor of 1e-4 × the largest
exact coordinate. The mean of R i.i.d. estimates is close to normal; a true-null miss has
probability 5.7e-7 per coordinate, about 1e-4 over the ~200 coordinates checked here.
"""

import importlib
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen import ConfigError
from unigen.estimators import (
    arm,
    concrete,
    disarm,
    muprop,
    rebar,
    rebar_init,
    relax,
    relax_init,
    straight_through,
    variance_report,
    vimco,
)
from unigen.estimators.problems import _leaf_name, bernoulli_problem, categorical_problem, gaussian_problem, sbn_problem
from unigen.estimators.report import ESTIMATORS, FAMILIES, default_estimators

Z = 5.0
REPLICAS = 2000
SAMPLES = 2


def small_sbn(hidden, seed, data_dim=6):
    """A data_dim-H Helmholtz machine at its initial parameters (weights of scale 1) and a random x."""
    from unigen.models.helmholtz import helmholtz_machine

    model = helmholtz_machine(data_dim, (hidden,), init_scale=1.0)
    key_theta, key_phi, key_x = jax.random.split(jax.random.key(seed), 3)
    params = {"theta": model.joint.init(key_theta), "phi": model.inference.init(key_phi)}
    x = jax.random.bernoulli(key_x, 0.5, (data_dim,)).astype(jnp.float32)
    return model, params, x, sbn_problem(model=model, params=params, x=x)


SBNS = [(2, 0), (3, 1)]  # (hidden units, seed)


@pytest.fixture(scope="module", params=SBNS, ids=[f"H{h}-seed{s}" for h, s in SBNS])
def sbn(request):
    return small_sbn(*request.param)


def with_control(estimator, make_control):
    """The estimate of a control-variate estimator at its initial control parameters."""
    def run(q, params, f, key, n_samples):
        control = make_control(q(params))
        return estimator(q, params, f, key, n_samples, control)[0]
    return run


def flat_logits_size(distribution):
    return distribution.base_dist.logits.size if hasattr(distribution, "base_dist") else distribution.logits.size


UNBIASED = {
    "muprop": muprop,
    "rebar": with_control(rebar, lambda q: rebar_init()),
    "relax": with_control(relax, lambda q: relax_init(jax.random.key(7), flat_logits_size(q))),
    "arm": arm,
    "disarm": disarm,
}


def estimates(estimator, problem, key, n_samples=SAMPLES, count=REPLICAS):
    run = jax.jit(jax.vmap(lambda k: estimator(problem.distribution, problem.params, problem.f, k, n_samples)))
    tree = run(jax.random.split(key, count))
    return {_leaf_name(path): np.asarray(leaf, np.float64).reshape(count, -1)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def standard_errors_off(values, exact):
    """Per coordinate, |mean − exact| in standard errors (after the float32 floor), and the bias."""
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    target = np.asarray(exact, np.float64).reshape(-1)
    floor = 1e-4 * np.max(np.abs(target)) + 1e-7
    return np.maximum(np.abs(mean - target) - floor, 0.0) / np.maximum(se, 1e-300), mean - target


def assert_unbiased(found, exact, label):
    for name, values in found.items():
        off, _ = standard_errors_off(values, exact[name])
        assert np.all(off <= Z), (label, name, float(off.max()))


@pytest.mark.parametrize("name", sorted(UNBIASED))
def test_unbiased_on_small_sbns(name, sbn, key):
    _, _, _, problem = sbn
    found = estimates(UNBIASED[name], problem, jax.random.fold_in(key, ESTIMATORS.index(name)))
    assert_unbiased(found, problem.reference.gradient, (name, problem.settings["hidden"]))


@pytest.mark.parametrize("name,categories", [("muprop", 3), ("rebar", 4), ("relax", 3)])
def test_unbiased_on_categorical(name, categories, key):
    problem = categorical_problem(categories, scale=1.5)
    found = estimates(UNBIASED[name], problem, jax.random.fold_in(key, categories))
    assert_unbiased(found, problem.reference.gradient, (name, categories))


def brute_force_bound_gradient(model, params, x, hidden, count):
    """∇_φ Σ over all K-tuples of hidden states of Π_k q_φ(h_k|x) · log (1/K) Σ_k w(h_k), in float64,
    with the log-weights f = log p(x, h) − log q_{φ0}(h|x) held fixed at φ0."""
    from unigen.models.sbn import latent_states

    with jax.enable_x64(True):
        wide = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)  # noqa: E731
        theta, phi0, x64 = wide(params["theta"]), wide(params["phi"]), jnp.asarray(x, jnp.float64)
        states = jnp.asarray(latent_states(hidden), jnp.float64)
        log_q0 = jax.vmap(lambda h: model.encoder_distribution(phi0, x64).log_prob(h))(states)
        log_p = jax.vmap(lambda h: model.joint.log_prob(theta, {"x": x64, "z": h}, {}))(states)
        f = log_p - log_q0
        tuples = jnp.asarray(list(itertools.product(range(len(states)), repeat=count)))
        bound = jax.nn.logsumexp(f[tuples], axis=1) - jnp.log(count)

        def expected(phi):
            log_q = jax.vmap(lambda h: model.encoder_distribution(phi, x64).log_prob(h))(states)
            return jnp.sum(jnp.exp(jnp.sum(log_q[tuples], axis=1)) * bound)

        gradient = jax.jit(jax.grad(expected))({"weights": phi0["weights"], "biases": phi0["biases"]})
        return {_leaf_name(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(gradient)}


@pytest.mark.parametrize("hidden,seed,count", [(2, 0, 3)])  # and 64-2, K = 2 in test_estimators_cli.py
def test_vimco_is_unbiased_for_the_multi_sample_bound(hidden, seed, count, key):
    model, params, x, problem = small_sbn(hidden, seed)
    exact = brute_force_bound_gradient(model, params, x, hidden, count)
    reference = problem.reference.bound_gradient(count)
    for name, value in exact.items():
        np.testing.assert_allclose(reference[name].reshape(-1), value.reshape(-1), rtol=1e-9, atol=1e-12)
    found = estimates(vimco, problem, jax.random.fold_in(key, 100 + hidden), n_samples=count)
    assert_unbiased(found, exact, ("vimco", hidden, count))
    # the bound's gradient is not the ELBO's (VIMCO's target changes with K)
    assert not np.allclose(exact["biases.0"], problem.reference.gradient["biases.0"], rtol=1e-3)


@pytest.mark.parametrize("name,estimator", [
    ("straight-through", straight_through),
    ("concrete", concrete),
])
def test_biased_ones_have_their_bias_measured_and_printed(name, estimator, key, capsys):
    # The same check that passes the unbiased estimators detects these two as biased on a small SBN.
    _, _, _, problem = small_sbn(3, 1)
    found = estimates(estimator, problem, jax.random.fold_in(key, 200), count=4000)
    worst = 0.0
    for parameter, values in found.items():
        off, bias = standard_errors_off(values, problem.reference.gradient[parameter])
        worst = max(worst, float(off.max()))
        with capsys.disabled():
            print(f"\n{name} on the 6-3 SBN, {parameter}: bias per coordinate {np.round(bias, 4).tolist()} "
                  f"(largest {float(off.max()):.1f} standard errors)")
    assert worst > Z


def test_straight_through_mean_equals_its_integral_on_one_bit(key):
    # E[ĝ_ST] = ∫ f'(H(l + L)) σ'((l + L)/τ)/τ p(L) dL, L ~ Logistic(0, 1), by the trapezoid rule.
    logit, k, tau = 0.4, 0.45, 0.7
    problem = bernoulli_problem(1, logit=logit, k=k)
    found = estimates(lambda *a: straight_through(*a, temperature=tau), problem, key, n_samples=1, count=20000)
    grid = np.linspace(-40.0, 40.0, 400001)
    sigmoid = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
    z = logit + grid
    density = sigmoid(grid) * sigmoid(-grid)
    slope = 2.0 * ((z > 0).astype(np.float64) - k)
    integrand = slope * sigmoid(z / tau) * sigmoid(-z / tau) / tau * density
    integral = np.trapezoid(integrand, grid) if hasattr(np, "trapezoid") else np.trapz(integrand, grid)
    off, _ = standard_errors_off(found["logits"], np.array([integral]))
    assert off.max() <= Z
    exact = problem.reference.gradient["logits"][0]
    assert abs(integral - exact) > 10 * found["logits"].std() / np.sqrt(20000)  # biased: visibly off


def test_wrong_families_are_refused_with_a_named_error(key):
    normal = gaussian_problem("cos")
    for name, estimator in [("muprop", muprop), ("arm", arm), ("disarm", disarm),
                            ("straight-through", straight_through),
                            ("rebar", lambda *a: rebar(*a, rebar_init())),
                            ("relax", lambda *a: relax(*a, relax_init(key, 1)))]:
        with pytest.raises(ConfigError, match=f"distribution: '{name}' expects .*latents, got a Normal distribution"):
            estimator(normal.distribution, normal.params, normal.f, key, 2)
        with pytest.raises(ConfigError, match=f"'{name}' does not apply to the gaussian-cos problem"):
            variance_report(normal, [name], 2, 10, key)
    categorical = categorical_problem(3)
    for name, estimator in [("arm", arm), ("disarm", disarm)]:
        with pytest.raises(ConfigError, match=f"'{name}' expects Bernoulli latents, got a categorical distribution"):
            estimator(categorical.distribution, categorical.params, categorical.f, key, 2)
    with pytest.raises(ConfigError, match="n_samples: expected an integer >= 2"):
        vimco(categorical.distribution, categorical.params, categorical.f, key, 1)


def test_sbn_offers_every_discrete_estimator_and_each_family_is_declared():
    _, _, _, problem = small_sbn(2, 0)
    offered = default_estimators(problem, SAMPLES)
    assert {"muprop", "vimco", "rebar", "relax", "arm", "disarm", "straight-through"} <= set(offered)
    assert "pathwise" not in offered
    assert "arm" not in default_estimators(categorical_problem(3), SAMPLES)
    assert set(FAMILIES) == {"muprop", "rebar", "relax", "arm", "disarm", "straight-through"}


def test_each_docstring_states_whether_it_is_unbiased():
    for module, claim in [("muprop", "**unbiased**"), ("vimco", "**Unbiased**"), ("rebar", "**unbiased**"),
                          ("relax", "**unbiased**"), ("arm", "**unbiased**"), ("straight_through", "**biased**")]:
        doc = importlib.import_module(f"unigen.estimators.{module}").__doc__
        assert claim in doc and ".. math::" in doc, module
