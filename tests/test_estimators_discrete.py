"""Estimators for discrete latents (issue [9]): unbiasedness against exact enumeration, measured bias.

Oracles:

* the exact ELBO gradient of small Helmholtz machines (6 visible units; H = 2 and 3 hidden units,
  two seeds) by enumeration of the 2^H hidden states (``sbn_problem``'s reference, itself
  checked against autodiff of the enumerated ELBO in ``test_estimators.py``);
* for VIMCO, the gradient of the K-sample bound by autodiff of the sum over all (2^H)^K tuples of
  draws, written out here (independent of ``exact.multi_sample_bound_gradient``);
* for straight-through on one bit, its expectation by numerical integration over the logistic noise;
* for the categorical VAE (``categorical_vae_problem``), the ELBO written out in NumPy float64 over
  every state, differentiated by central finite differences.

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
from unigen.estimators.problems import (_leaf_name, bernoulli_problem, categorical_problem, categorical_vae_problem,
                                       gaussian_problem, make_problem, sbn_problem)
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


def small_categorical_vae(variables=2, categories=3, data_dim=5, seed=0):
    """Random decoder (W, c), recognition logits φ and a binary x, as float32-representable float64."""
    rng = np.random.default_rng(seed)
    as32 = lambda a: np.asarray(np.float32(a), np.float64)  # noqa: E731 - the problem computes in float32
    theta = {"weights": as32(rng.normal(size=(variables * categories, data_dim))),
             "biases": as32(0.5 * rng.normal(size=data_dim))}
    phi = as32(rng.normal(size=(variables, categories)))
    x = (rng.uniform(size=data_dim) < 0.5).astype(np.float64)
    return theta, phi, x


def numpy_categorical_elbo(theta, phi, x, phi_in_f=None):
    """Σ_z q_φ(z) [log p(z) + log p(x|z) − log q_φ'(z)] over the K^n one-hot states, NumPy float64
    (φ' = ``phi_in_f``, default φ: the ELBO), and log p(x)."""
    n, k = phi.shape
    rows = np.arange(n)
    log_q = lambda logits, state: float(np.sum((logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))[rows, state]))  # noqa: E731
    elbo, joint = 0.0, []
    for state in itertools.product(range(k), repeat=n):
        z = np.zeros((n, k))
        z[rows, state] = 1.0
        a = z.reshape(-1) @ theta["weights"] + theta["biases"]
        log_p = -n * np.log(k) + np.sum(-x * np.logaddexp(0.0, -a) - (1 - x) * np.logaddexp(0.0, a))
        joint.append(log_p)
        elbo += np.exp(log_q(phi, state)) * (log_p - log_q(phi if phi_in_f is None else phi_in_f, state))
    return elbo, float(np.logaddexp.reduce(joint))


def test_categorical_vae_reference_is_the_finite_difference_gradient_of_the_elbo():
    theta, phi, x = small_categorical_vae()
    problem = categorical_vae_problem(variables=2, categories=3, params={"theta": theta, "phi": phi}, x=x)
    step = 1e-6
    gradient = np.zeros_like(phi)
    for index in np.ndindex(phi.shape):
        shift = np.zeros_like(phi)
        shift[index] = step
        gradient[index] = (numpy_categorical_elbo(theta, phi + shift, x)[0]
                           - numpy_categorical_elbo(theta, phi - shift, x)[0]) / (2 * step)
    np.testing.assert_allclose(problem.reference.gradient["logits"], gradient, rtol=1e-6, atol=1e-8)
    elbo, log_marginal = numpy_categorical_elbo(theta, phi, x)
    assert problem.settings["elbo"] == pytest.approx(elbo, rel=1e-6)
    assert problem.settings["log_marginal"] == pytest.approx(log_marginal, rel=1e-6)
    assert problem.settings["states"] == 9 and elbo < log_marginal


@pytest.mark.parametrize("name", ["muprop", "rebar", "relax"])
def test_unbiased_on_a_categorical_vae(name, key):
    theta, phi, x = small_categorical_vae(seed=1)
    problem = categorical_vae_problem(variables=2, categories=3, params={"theta": theta, "phi": phi}, x=x)
    found = estimates(UNBIASED[name], problem, jax.random.fold_in(key, 17))
    assert_unbiased(found, problem.reference.gradient, (name, "categorical-vae"))


def test_categorical_vae_offers_the_categorical_estimators_and_refuses_the_rest(key):
    problem = make_problem("categorical-vae", dim=2)
    assert problem.settings["states"] == 16 and problem.params["logits"].shape == (2, 4)
    offered = default_estimators(problem, SAMPLES)
    assert {"score", "leave-one-out", "muprop", "vimco", "rebar", "relax", "straight-through", "concrete"} <= set(offered)
    assert not {"arm", "disarm", "pathwise", "score-control-variate"} & set(offered)
    with pytest.raises(ConfigError, match="'disarm' does not apply to the categorical-vae problem: it expects "
                                          "Bernoulli latents, got a categorical distribution"):
        variance_report(problem, ["disarm"], 2, 10, key)
    with pytest.raises(ConfigError, match="variables: expected at most 4096 states K\\^n to enumerate, got 4\\^7"):
        make_problem("categorical-vae", dim=7)
    with pytest.raises(ConfigError, match="expected unset for the categorical-vae problem"):
        make_problem("categorical-vae", mu=1.0)
    with pytest.raises(ConfigError, match="params: expected shapes"):
        categorical_vae_problem(variables=2, categories=3, params={"theta": small_categorical_vae()[0],
                                                                  "phi": np.zeros((3, 2))}, x=np.zeros(5))


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
