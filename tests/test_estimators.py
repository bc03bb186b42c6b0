"""Gradient estimators against exact gradients and exact variances (issue [5]).

Oracles: the issue's closed forms, Gauss–Hermite quadrature with closed-form Gaussian scores,
enumeration of Bernoulli outcomes, direct numerical integration over the logistic noise of the
Concrete relaxation. Statistical tolerances (fixed seeds):

* unbiasedness: |mean of R estimates − exact| ≤ 4 standard errors, SE = sqrt(sample variance / R)
  (the mean of R i.i.d. estimates is close to normal; a true-null miss has probability ~6e-5);
* variance: |sample variance − exact variance| ≤ 4 × its Monte Carlo standard error
  sqrt((m4 − (R−3)/(R−1) s⁴)/R), from the sample fourth central moment m4: the sample variance is
  asymptotically normal with that standard deviation, so 4 of them is the same ~6e-5 bound.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen import ConfigError
from unigen.estimators import (
    baselines,
    concrete,
    delta_method_control_variate,
    leave_one_out,
    make_problem,
    pathwise,
    score_function,
    score_function_optimal_baseline,
    variance_report,
)
from unigen.estimators.exact import closed_form_square, closed_form_sum_squares
from unigen.estimators.problems import (
    bernoulli_problem,
    categorical_problem,
    _leaf_name,
    gaussian_problem,
    sbn_problem,
    sum_squares_problem,
    vae_problem,
)

Z = 4.0  # standard errors


def replicas(estimator, problem, n_samples, count, key, **options):
    """``count`` independent estimates, stacked (one jitted vmap)."""
    run = jax.jit(jax.vmap(lambda k: estimator(problem.distribution, problem.params, problem.f, k, n_samples,
                                               **options)))
    return jax.tree.map(np.asarray, run(jax.random.split(key, count)))


def moving_average(q, params, f, key, n_samples):
    """The moving-average baseline after 5 calls at fixed parameters (the 6th estimate)."""
    def step(state, k):
        gradient, state = baselines.score_function_moving_average(q, params, f, k, n_samples, state, decay=0.8)
        return state, gradient
    _, gradients = jax.lax.scan(step, baselines.moving_average_init(), jax.random.split(key, 6))
    return jax.tree.map(lambda g: g[-1], gradients)


def learned(q, params, f, key, n_samples, *, psi, u):
    return baselines.score_function_learned_baseline(q, params, f, key, n_samples, psi, u)[0]


def assert_unbiased(estimates, exact, z=Z):
    for name, values in estimates.items():
        values = values.reshape(values.shape[0], -1)
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
        target = np.asarray(exact[name], np.float64).reshape(-1)
        assert np.all(np.abs(mean - target) <= z * se + 1e-6), (name, mean, target, se)


def assert_variance(estimates, exact_variance):
    for name, values in estimates.items():
        values = values.reshape(values.shape[0], -1).astype(np.float64)
        count = values.shape[0]
        centred = values - values.mean(axis=0)
        variance = centred.var(axis=0, ddof=1)
        m4 = np.mean(centred**4, axis=0)
        se = np.sqrt(np.maximum(m4 - (count - 3) / (count - 1) * variance**2, 0) / count)
        target = np.asarray(exact_variance[name]).reshape(-1)
        assert np.all(np.abs(variance - target) <= Z * se + 1e-9), (name, variance, target, se)


# --- the exact references against the closed forms ---------------------------------


@pytest.mark.parametrize("mu,k", [(1.0, 1.0), (1.0, -0.5), (0.3, 2.0)])
def test_quadrature_matches_the_closed_forms_of_the_square(mu, k):
    reference = gaussian_problem("square", mu=mu, sigma=1.0, k=k).reference
    closed = closed_form_square(mu - k)
    assert reference.gradient["mu"] == pytest.approx(closed["gradient_mu"], abs=1e-9)
    assert reference.gradient["sigma"] == pytest.approx(closed["gradient_sigma"], abs=1e-9)
    assert reference.variance("score", 1)["mu"] == pytest.approx(closed["score_mu_variance"], rel=1e-9)
    assert reference.variance("pathwise", 1)["sigma"] == pytest.approx(closed["pathwise_sigma_variance"], rel=1e-9)
    assert reference.variance("pathwise", 1)["mu"] == pytest.approx(closed["pathwise_mu_variance"], rel=1e-9)
    assert reference.variance("score", 7)["mu"] == pytest.approx(closed["score_mu_variance"] / 7, rel=1e-9)


@pytest.mark.parametrize("dim", [1, 5, 40])
def test_sum_squares_reference_matches_the_closed_forms(dim):
    reference = sum_squares_problem(dim, mu=0.0, sigma=1.0).reference
    closed = closed_form_sum_squares(dim)
    np.testing.assert_allclose(reference.variance("score", 1)["mu"], closed["score_mu_variance"], rtol=1e-9)
    np.testing.assert_allclose(reference.variance("pathwise", 1)["mu"], closed["pathwise_mu_variance"], rtol=1e-9)
    np.testing.assert_allclose(reference.gradient["mu"], closed["gradient_mu"], atol=1e-9)
    np.testing.assert_allclose(reference.gradient["sigma"], 2.0, rtol=1e-9)  # d/dsigma D(mu^2+sigma^2)/D


def test_quadrature_gradients_match_closed_form_gaussian_integrals():
    # E[exp(-k x^2)] = exp(-k mu^2 / (1 + 2k sigma^2)) / sqrt(1 + 2k sigma^2);
    # E[cos(k x)] = cos(k mu) exp(-k^2 sigma^2 / 2): differentiate by central differences.
    def closed(function, mu, sigma, k):
        if function == "exp":
            return np.exp(-k * mu**2 / (1 + 2 * k * sigma**2)) / np.sqrt(1 + 2 * k * sigma**2)
        return np.cos(k * mu) * np.exp(-(k**2) * sigma**2 / 2)

    h = 1e-5
    for function, k in [("exp", 0.3), ("exp", 3.0), ("cos", 0.5), ("cos", 4.0)]:
        reference = gaussian_problem(function, mu=1.0, sigma=1.0, k=k).reference
        d_mu = (closed(function, 1 + h, 1.0, k) - closed(function, 1 - h, 1.0, k)) / (2 * h)
        d_sigma = (closed(function, 1.0, 1 + h, k) - closed(function, 1.0, 1 - h, k)) / (2 * h)
        assert reference.gradient["mu"] == pytest.approx(d_mu, abs=1e-7)
        assert reference.gradient["sigma"] == pytest.approx(d_sigma, abs=1e-7)


def test_bernoulli_enumeration_matches_the_closed_form_gradient():
    logit, k = 0.3, 0.45
    p = 1 / (1 + np.exp(-logit))
    reference = bernoulli_problem(3, logit=logit, k=k).reference
    np.testing.assert_allclose(reference.gradient["logits"], np.full(3, p * (1 - p) * (1 - 2 * k)), rtol=1e-12)


def test_categorical_enumeration_matches_the_softmax_gradient():
    problem = categorical_problem(5, scale=1.3, k=0.3)
    logits = 1.3 * np.arange(5) / 4
    p = np.exp(logits) / np.exp(logits).sum()
    values = (np.arange(5) / 4 - 0.3) ** 2
    np.testing.assert_allclose(problem.reference.gradient["logits"], p * (values - p @ values), rtol=1e-12)


# --- unbiasedness ------------------------------------------------------------------------------


def test_every_unbiased_estimator_is_unbiased_on_a_gaussian(key):
    problem = gaussian_problem("cos", mu=1.0, sigma=1.0, k=2.0)
    u = problem.baseline_input
    psi = jax.jit(lambda k: baselines.fit_learned_baseline(problem.distribution, problem.params, problem.f, k, 8, u,
                                                           steps=100))(jax.random.key(1))
    for index, (estimator, options) in enumerate([
        (score_function, {}), (score_function, {"baseline": 0.2}), (moving_average, {}),
        (score_function_optimal_baseline, {}), (learned, {"psi": psi, "u": u}),
        (delta_method_control_variate, {}), (pathwise, {}), (leave_one_out, {}),
    ]):
        estimates = replicas(estimator, problem, 8, 4000, jax.random.fold_in(key, index), **options)
        assert_unbiased(estimates, problem.reference.gradient)


def test_score_function_estimators_are_unbiased_on_bernoulli(key):
    problem = bernoulli_problem(3, logit=0.3, k=0.45)
    for index, estimator in enumerate([score_function, score_function_optimal_baseline,
                                       delta_method_control_variate, leave_one_out, moving_average]):
        estimates = replicas(estimator, problem, 6, 4000, jax.random.fold_in(key, index))
        assert_unbiased(estimates, problem.reference.gradient)


def test_categorical_estimators_are_unbiased_and_match_the_exact_variances(key):
    problem = categorical_problem(4, scale=1.0, k=0.45)
    for index, (name, estimator) in enumerate([("score", score_function), ("leave-one-out", leave_one_out),
                                               (None, score_function_optimal_baseline)]):
        estimates = replicas(estimator, problem, 6, 20000, jax.random.fold_in(key, index))
        assert_unbiased(estimates, problem.reference.gradient)
        if name is not None:
            assert_variance(estimates, problem.reference.variance(name, 6))


def _concrete_expected_gradient(logit, k, temperature):
    # d/dl E[(z - k)^2], z = sigmoid((l + L)/t), L = log(u/(1-u)), u ~ U(0,1): midpoint rule in u.
    u = (np.arange(400000) + 0.5) / 400000
    z = 1 / (1 + np.exp(-(logit + np.log(u / (1 - u))) / temperature))
    return np.mean(2 * (z - k) * z * (1 - z) / temperature)


def test_concrete_is_unbiased_for_its_relaxed_objective_and_its_bias_is_reported(key):
    problem = bernoulli_problem(1, logit=0.3, k=0.45)
    relaxed = _concrete_expected_gradient(0.3, 0.45, 0.5)
    estimates = replicas(concrete, problem, 8, 4000, key, temperature=0.5)
    assert_unbiased(estimates, {"logits": np.array([relaxed])})
    exact = float(problem.reference.gradient["logits"][0])
    assert abs(relaxed - exact) > 0.002  # the relaxation really is biased here ...
    row = variance_report(problem, ["concrete"], 8, 4000, key, repeats=1).rows[0]
    assert row["bias"] == pytest.approx(row["mean"] - exact, abs=1e-12)  # ... and the report says so
    assert abs(row["bias"] - (relaxed - exact)) <= Z * row["standard_error"]


def test_constant_f_gives_zero_and_sum_gives_ones(key):
    base = sum_squares_problem(3)
    constant = base._replace(f=lambda x: jnp.asarray(2.5, x.dtype))
    total = base._replace(f=jnp.sum)
    for estimator in (pathwise, leave_one_out, delta_method_control_variate, score_function_optimal_baseline):
        zero = replicas(estimator, constant, 5, 50, key)
        for values in zero.values():
            np.testing.assert_allclose(values, 0.0, atol=1e-4)  # float32 rounding of f - b, b = 2.5
    for estimator in (pathwise, delta_method_control_variate):  # exact for linear f: mu-gradient is ones
        np.testing.assert_allclose(replicas(estimator, total, 5, 50, key)["mu"], 1.0, atol=1e-5)
    zeros = {"mu": np.zeros(3), "sigma": np.zeros(3)}
    ones = {"mu": np.ones(3), "sigma": np.zeros(3)}
    for index, estimator in enumerate((score_function, moving_average)):
        assert_unbiased(replicas(estimator, constant, 5, 3000, jax.random.fold_in(key, index)), zeros)
        assert_unbiased(replicas(estimator, total, 5, 3000, jax.random.fold_in(key, 10 + index)), ones)


# --- variances against the exact ones --------------------------------------------------------


@pytest.mark.parametrize("problem_args", [("cos", 2.0), ("square", 0.0), ("exp", 1.0)])
def test_gaussian_variances_match_quadrature(problem_args, key):
    function, k = problem_args
    problem = gaussian_problem(function, mu=1.0, sigma=1.0, k=k)
    for index, (name, estimator) in enumerate([("score", score_function), ("pathwise", pathwise),
                                               ("leave-one-out", leave_one_out),
                                               ("score-control-variate", delta_method_control_variate)]):
        estimates = replicas(estimator, problem, 5, 20000, jax.random.fold_in(key, index))
        exact = problem.reference.variance(name, 5)
        if name == "score-control-variate" and function == "square":
            for values in estimates.values():  # quadratic f: the control variate is exact
                assert np.var(values) < 1e-8
            continue
        assert_variance(estimates, exact)


def test_sum_squares_and_bernoulli_variances_match_the_references(key):
    problem = sum_squares_problem(6, mu=0.0, sigma=1.0)
    for index, (name, estimator) in enumerate([("score", score_function), ("pathwise", pathwise),
                                               ("leave-one-out", leave_one_out)]):
        assert_variance(replicas(estimator, problem, 4, 20000, jax.random.fold_in(key, index)),
                        problem.reference.variance(name, 4))
    problem = bernoulli_problem(3, logit=-0.7, k=0.45)
    for index, (name, estimator) in enumerate([("score", score_function), ("leave-one-out", leave_one_out)]):
        assert_variance(replicas(estimator, problem, 4, 20000, jax.random.fold_in(key, 20 + index)),
                        problem.reference.variance(name, 4))


def test_variance_report_rows_agree_with_the_references(key):
    problem = gaussian_problem("cos", mu=1.0, sigma=1.0, k=1.5)
    report = variance_report(problem, ["score", "pathwise"], 4, 20000, key, repeats=1)
    assert [(r["estimator"], r["parameter"]) for r in report.rows] == [
        ("score", "mu"), ("score", "sigma"), ("pathwise", "mu"), ("pathwise", "sigma")]
    for row in report.rows:
        assert abs(row["bias"]) <= Z * row["standard_error"]
        assert abs(row["variance"] - row["exact_variance"]) <= Z * row["variance_standard_error"]
        assert row["efficiency"] == pytest.approx(1 / (row["variance"] * row["seconds_per_estimate"]))
    # At k = 1.5 cos(kx) oscillates enough that the pathwise mu-gradient loses to the score function
    # (Mohamed et al., Figure 3); the measurement shows the ordering the exact variances predict.
    by = {(r["estimator"], r["parameter"]): r for r in report.rows}
    for parameter in ("mu", "sigma"):
        measured = by[("pathwise", parameter)]["variance"] - by[("score", parameter)]["variance"]
        exact = by[("pathwise", parameter)]["exact_variance"] - by[("score", parameter)]["exact_variance"]
        assert np.sign(measured) == np.sign(exact)
    assert by[("pathwise", "mu")]["exact_variance"] > by[("score", "mu")]["exact_variance"]


def test_chunked_replicas_give_the_same_report_as_one_vmap(key, monkeypatch):
    """On the CPU variance_report runs replicas in cache-sized chunks (lax.map): the same keys, so
    the same estimates as one vmap over all replicas, up to float rounding of the summaries."""
    from unigen.estimators import report as report_module

    if jax.default_backend() != "cpu":
        pytest.skip("chunking is the CPU path; elsewhere all replicas run in one vmap")
    problem = gaussian_problem("square", mu=1.0, sigma=1.0, k=1.0)
    names = ["score", "pathwise", "score-mean-baseline"]
    monkeypatch.setattr(report_module, "CHUNK_BYTES", 2**40)  # one chunk: plain vmap
    whole = variance_report(problem, names, 50, 1001, key, repeats=1)
    replica_fn, _ = report_module._estimator_fn(problem, "score", 50, key)
    per_replica = jax.jit(replica_fn).lower(key).compile().memory_analysis().temp_size_in_bytes
    monkeypatch.setattr(report_module, "CHUNK_BYTES", 64 * per_replica)
    chunk = report_module.replicas_per_chunk(replica_fn, key, 1001)
    assert chunk == 64  # 1001 = 15 x 64 + 41: the remainder path runs too
    chunked = variance_report(problem, names, 50, 1001, key, repeats=1)
    assert len(chunked.rows) == len(whole.rows) == 2 * len(names)
    for a, b in zip(whole.rows, chunked.rows):
        assert (a["estimator"], a["parameter"]) == (b["estimator"], b["parameter"])
        for field in ("mean", "variance"):
            assert b[field] == pytest.approx(a[field], rel=1e-5, abs=1e-7)
    assert report_module.replicas_per_chunk(replica_fn, key, 10) == 10  # never more than asked


# --- the VAE problem ------------------------------------------------------------------------------


def test_vae_elbo_gradient_estimates_match_quadrature(key):
    problem = vae_problem(seed=3)
    finer = vae_problem(seed=3, order=32).reference.gradient
    for name, value in problem.reference.gradient.items():  # the quadrature has converged
        np.testing.assert_allclose(value, finer[name], rtol=1e-4, atol=1e-5)
    for index, estimator in enumerate((pathwise, leave_one_out)):
        estimates = replicas(estimator, problem, 8, 2000, jax.random.fold_in(key, index))
        flat = {}
        for path, leaf in jax.tree_util.tree_leaves_with_path(estimates):
            flat[".".join(str(getattr(p, "key", getattr(p, "name", p))) for p in path)] = leaf
        # ~1,100 coordinates: 5 standard errors each (a true-null miss anywhere has probability < 1e-3).
        assert_unbiased(flat, problem.reference.gradient, z=5.0)


# --- the SBN problem ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sbn():
    """A 64-4 Helmholtz machine at its initial parameters (seed 1) and the first test digit."""
    from unigen import data
    from unigen.models.helmholtz import helmholtz_machine

    model = helmholtz_machine(64, (4,), init_scale=0.5)
    key_theta, key_phi = jax.random.split(jax.random.key(1))
    params = {"theta": model.joint.init(key_theta), "phi": model.inference.init(key_phi)}
    x = data.load("digits", "test", binarize="static").x[0]
    return model, params, x, sbn_problem(model=model, params=params, x=x)


def flatten(tree):
    return {_leaf_name(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def test_sbn_reference_is_the_gradient_of_the_enumerated_elbo(sbn):
    # Another route to the same number: differentiate sum_h q_phi(h|x) [log p(x,h) - log q_phi(h|x)]
    # through q's weights and the entropy term (the reference sums f * score at phi_0 instead).
    from unigen.models.sbn import latent_states, log_marginal

    model, params, x, problem = sbn
    with jax.enable_x64(True):
        wide = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)  # noqa: E731
        theta, phi, x64 = wide(params["theta"]), wide(problem.params), jnp.asarray(x, jnp.float64)
        states = jnp.asarray(latent_states(4), jnp.float64)

        def elbo(phi):
            log_q = jax.vmap(lambda h: model.encoder_distribution(phi, x64).log_prob(h))(states)
            log_p = jax.vmap(lambda h: model.joint.log_prob(theta, {"x": x64, "z": h}, {}))(states)
            return jnp.sum(jnp.exp(log_q) * (log_p - log_q))

        gradient = flatten(jax.grad(elbo)(phi))
        assert problem.settings["elbo"] == pytest.approx(float(elbo(phi)), rel=1e-12)
    # log_marginal enumerates in float32
    assert problem.settings["log_marginal"] == pytest.approx(float(log_marginal(model, params["theta"], x)), rel=1e-5)
    assert set(gradient) == set(problem.reference.gradient) == {"weights.0", "biases.0"}
    for name, value in gradient.items():
        np.testing.assert_allclose(problem.reference.gradient[name], np.asarray(value), rtol=1e-9, atol=1e-12)
    assert problem.settings["elbo"] < problem.settings["log_marginal"]


def test_sbn_score_function_estimates_are_unbiased_against_enumeration(sbn, key):
    _, _, _, problem = sbn
    for index, (name, estimator) in enumerate([("score", score_function), ("leave-one-out", leave_one_out)]):
        estimates = flatten(replicas(estimator, problem, 4, 3000, jax.random.fold_in(key, index)))
        # 4 biases at 4 standard errors; the weights have 4 x (ink pixels) ~ 100 non-zero coordinates
        # (the others are exactly 0 = exact): 5 standard errors each, as for the VAE.
        assert_unbiased({"biases.0": estimates["biases.0"]}, problem.reference.gradient)
        assert_unbiased({"weights.0": estimates["weights.0"]}, problem.reference.gradient, z=5.0)
        assert_variance(estimates, problem.reference.variance(name, 4))


def test_sbn_refusals(sbn, key):
    from unigen.models.helmholtz import helmholtz_machine

    _, _, _, problem = sbn
    with pytest.raises(ConfigError, match="'pathwise' does not apply to the sbn problem"):
        variance_report(problem, ["pathwise"], 4, 10, key)
    with pytest.raises(ConfigError, match="at most 12"):
        make_problem("sbn", dim=13)
    with pytest.raises(ConfigError, match="expected unset for the sbn problem"):
        make_problem("sbn", mu=1.0)
    with pytest.raises(ConfigError, match="one hidden layer"):
        sbn_problem(model=helmholtz_machine(64, (3, 2)))


# --- refusals -------------------------------------------------------------------------------------


def test_inapplicable_and_unknown_are_refused(key):
    with pytest.raises(ConfigError, match="pathwise"):
        variance_report(bernoulli_problem(2), ["pathwise"], 4, 10, key)
    with pytest.raises(ConfigError, match="concrete"):
        variance_report(gaussian_problem("cos"), ["concrete"], 4, 10, key)
    with pytest.raises(ConfigError, match="independent coordinates"):
        variance_report(categorical_problem(3), ["score-control-variate"], 4, 10, key)
    with pytest.raises(ConfigError, match="at least 2"):
        variance_report(gaussian_problem("cos"), ["leave-one-out"], 1, 10, key)
    with pytest.raises(ConfigError, match="n_samples"):
        score_function(gaussian_problem("cos").distribution, {"mu": 0.0, "sigma": 1.0}, jnp.cos, key, 0)
    with pytest.raises(ConfigError, match="problem: expected one of"):
        make_problem("gaussian-sine")
    with pytest.raises(ConfigError, match="sigma"):
        make_problem("gaussian-cos", sigma=-1.0)
