"""unigen.algebra.verify: identities on a user's model, and the lecture's four.

A user's models here are small enough for independent oracles: a finite one (x ∈ {0..3},
z ∈ {0..2}, nested parameter groups) whose KL and log-evidence are recomputed with NumPy loops,
and a linear-Gaussian one (z ∈ R², x ∈ R³) whose evidence, posterior and KL have closed forms.
Each true identity must hold to float64 rounding (exact, quadrature) or within the stated number
of standard errors (Monte Carlo), and each false one must be reported as failing, with the error
the oracle predicts. The lecture's identities are then checked by name; the hand-written
finite-space sides of :mod:`unigen.algebra.verify` (oracles) must discriminate too.
"""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unigen.algebra
from unigen.algebra import E, KL, data, dist, implicit, log
from unigen.algebra.identities import _checker
from unigen.errors import ConfigError, DataError

v = importlib.import_module("unigen.algebra.verify")  # the module (unigen.algebra.verify: the function)

NAMES = ("elbo-decomposition", "lemma1", "lemma2", "wake-sleep")
# A wrong identity must miss by far more than rounding; these are order-one differences.
WRONG = 1e-4

# --- a user's finite model: nested params, batch key "pixels" ---------------------------------

K, M = 4, 3
prior = dist("p", over="z")
decoder = dist("p", over="x", given="z", params="theta")
encoder = dist("q", over="z", given="x", params="eta")
marginal = dist("p", over="x", params="theta")
posterior = dist("p", over="z", given="x", params="theta")
pixels = dist("p_data", over="x")
joint = prior * decoder


def _finite_log_joint(params):
    """log p(z) + log p_θ(x|z) indexed [x, z] (the user's model, in jnp)."""
    log_prior = jax.nn.log_softmax(params["prior"]["logits"])
    log_decoder = jax.nn.log_softmax(params["theta"]["dec"]["w"], axis=-1)  # [z, x]
    return log_decoder.T + log_prior[None, :]


FINITE = {
    prior: lambda p, g: nd.CategoricalLogits(p["prior"]["logits"]),
    decoder: lambda p, g: nd.CategoricalLogits(p["theta"]["dec"]["w"][g["z"]]),
    encoder: lambda p, g: nd.CategoricalLogits(p["eta"]["enc"]["w"][g["x"]]),
    marginal: lambda p, g: nd.CategoricalLogits(jax.nn.logsumexp(_finite_log_joint(p), axis=1)),
    posterior: lambda p, g: nd.CategoricalLogits(_finite_log_joint(p)[g["x"]]),
    pixels: data("pixels"),
}


def _finite_params(seed):
    rng = np.random.default_rng(seed)
    return {"theta": {"dec": {"w": rng.normal(size=(M, K)) * 1.5}},
            "eta": {"enc": {"w": rng.normal(size=(K, M)) * 1.5}},
            "prior": {"logits": rng.normal(size=M)}}


def _finite_kl_numpy(params, x):
    """KL(q_η(z|x) ‖ p_θ(z|x)) by NumPy loops (the oracle of a missing term)."""
    def softmax(a):
        e = np.exp(a - a.max())
        return e / e.sum()

    prior_p = softmax(params["prior"]["logits"])
    decoder_p = np.stack([softmax(row) for row in params["theta"]["dec"]["w"]])
    q = softmax(params["eta"]["enc"]["w"][x])
    joint_x = np.array([prior_p[z] * decoder_p[z, x] for z in range(M)])
    post = joint_x / joint_x.sum()
    return float(sum(q[z] * (math.log(q[z]) - math.log(post[z])) for z in range(M)))


BATCH = {"pixels": np.array([0, 2, 3, 2])}
ROWS = (0, 2, 3, 2)
EVIDENCE = E(pixels, log(marginal))  # log p_θ(x), one per row with per_example=True
BOUND = E(pixels, E(encoder, log(joint) - log(encoder)))  # L(θ, η; x)
GAP = E(pixels, KL(encoder, posterior))  # KL(q_η(z|x) ‖ p_θ(z|x))


def test_elbo_decomposition_holds_exactly_on_a_users_finite_model():
    """(a), (b), (e): nested groups, batch key "pixels"; every row, values and gradients."""
    result = unigen.algebra.verify(EVIDENCE, BOUND + GAP, FINITE, _finite_params(0), BATCH,
                                   wrt=("theta", "eta"), per_example=True)
    assert result.holds, result
    assert result.method == "exact"
    assert result.max_abs_error_value < 1e-12 and result.max_abs_error_grad < 1e-12
    assert result.sense == "values and gradients w.r.t. θ, η, for every row of the batch"


def test_a_false_identity_fails_by_the_missing_kl():
    """(d): log p(x) = L without the KL misses by max_x KL(q ‖ p(z|x)) (NumPy oracle), and its
    η-gradient is the KL's, which is not zero."""
    params = _finite_params(1)
    result = unigen.algebra.verify(EVIDENCE, BOUND, FINITE, params, BATCH, wrt="eta",
                                   per_example=True)
    expected = max(_finite_kl_numpy(params, x) for x in ROWS)
    assert not result.holds
    assert expected > 0.05
    assert abs(result.max_abs_error_value - expected) < 1e-12

    def kl_rows(eta):
        log_q = jax.nn.log_softmax(eta["enc"]["w"], axis=-1)
        log_post = jax.nn.log_softmax(_finite_log_joint({**params, "eta": eta}), axis=1)
        kl = jnp.sum(jnp.exp(log_q) * (log_q - log_post), axis=1)
        return kl[jnp.asarray(ROWS)]

    with jax.enable_x64(True):
        eta = jax.tree.map(jnp.asarray, params["eta"])
        grad = float(jnp.max(jnp.abs(jax.jacrev(kl_rows)(eta)["enc"]["w"])))
    assert grad > WRONG
    assert abs(result.max_abs_error_grad - grad) < 1e-12


def test_on_average_is_weaker_than_per_example():
    """E_data[log p(x)] = E_data[L] + E_data[KL] holds on the batch mean, and the mean is what is
    compared without per_example: the error is the mean KL, not its maximum."""
    params = _finite_params(2)
    result = unigen.algebra.verify(EVIDENCE, BOUND, FINITE, params, BATCH)
    expected = np.mean([_finite_kl_numpy(params, x) for x in ROWS])
    assert abs(result.max_abs_error_value - expected) < 1e-12 and not result.holds


def test_up_to_constant_compares_gradients_only():
    """log p(x) − log 2 equals log p(x) up to a constant; log p(x) and L do not."""
    params = _finite_params(3)
    shifted = EVIDENCE - unigen.algebra.constant("log 2", math.log(2.0))
    same = unigen.algebra.verify(EVIDENCE, shifted, FINITE, params, BATCH, wrt=("theta", "eta"),
                                 up_to_constant=True)
    assert same.holds and abs(same.max_abs_error_value - math.log(2.0)) < 1e-12
    assert same.tolerance_value == math.inf
    assert "values up to a constant" in same.sense
    other = unigen.algebra.verify(EVIDENCE, BOUND, FINITE, params, BATCH, wrt="eta",
                                  up_to_constant=True)
    assert not other.holds


# --- a user's linear-Gaussian model: quadrature and Monte Carlo against closed forms ----------

D = 3  # x ∈ R^3, z ∈ R^2


def _gaussian_params(seed):
    rng = np.random.default_rng(seed)
    return {"theta": {"dec": {"w": rng.normal(size=(D, 2)), "b": rng.normal(size=D)},
                      "log_sigma": np.array(-0.3)},
            "eta": {"enc": {"a": rng.normal(size=(2, D)) * 0.3, "c": rng.normal(size=2) * 0.3,
                            "log_s": rng.normal(size=2) * 0.2 - 0.5}}}


def _posterior_moments(p, x):
    w, b = p["theta"]["dec"]["w"], p["theta"]["dec"]["b"]
    sigma2 = jnp.exp(2 * p["theta"]["log_sigma"])
    precision = jnp.eye(2) + w.T @ w / sigma2
    cov = jnp.linalg.inv(precision)
    return cov @ w.T @ (x - b) / sigma2, cov


GAUSSIAN = {
    prior: lambda p, g: nd.Normal(jnp.zeros(2), jnp.ones(2)).to_event(1),
    decoder: lambda p, g: nd.Normal(p["theta"]["dec"]["w"] @ g["z"] + p["theta"]["dec"]["b"],
                                    jnp.exp(p["theta"]["log_sigma"])).to_event(1),
    encoder: lambda p, g: nd.Normal(p["eta"]["enc"]["a"] @ g["x"] + p["eta"]["enc"]["c"],
                                    jnp.exp(p["eta"]["enc"]["log_s"])).to_event(1),
    marginal: lambda p, g: nd.MultivariateNormal(
        p["theta"]["dec"]["b"], p["theta"]["dec"]["w"] @ p["theta"]["dec"]["w"].T
        + jnp.exp(2 * p["theta"]["log_sigma"]) * jnp.eye(D)),
    posterior: lambda p, g: nd.MultivariateNormal(*_posterior_moments(p, g["x"])),
    pixels: data("x"),
}
GAUSSIAN_BATCH = {"x": np.random.default_rng(9).normal(size=(3, D))}


def _gaussian_kl_closed_form(params, x):
    """KL(N(m_q, diag s²) ‖ N(m, S)) in closed form, NumPy float64."""
    enc = params["eta"]["enc"]
    m_q, s2 = enc["a"] @ x + enc["c"], np.exp(2 * enc["log_s"])
    with jax.enable_x64(True):
        m, cov = (np.asarray(a) for a in _posterior_moments(jax.tree.map(jnp.asarray, params), x))
    inverse = np.linalg.inv(cov)
    diff = m - m_q
    return 0.5 * (np.trace(inverse @ np.diag(s2)) + diff @ inverse @ diff - 2
                  + np.log(np.linalg.det(cov)) - np.sum(np.log(s2)))


def test_elbo_decomposition_by_quadrature_on_a_gaussian_latent():
    """(c): Gauss-Hermite is exact for the Gaussian log-densities (quadratic in z)."""
    result = unigen.algebra.verify(EVIDENCE, BOUND + GAP, GAUSSIAN, _gaussian_params(0),
                                   GAUSSIAN_BATCH, wrt=("theta", "eta"), per_example=True,
                                   nodes=4)
    assert result.method == "quadrature" and result.holds, result
    assert result.max_abs_error_value < 1e-10 and result.max_abs_error_grad < 1e-10


def test_quadrature_of_a_false_identity_misses_by_the_closed_form_kl():
    """(c), (d): the error of log p(x) = L is the closed-form Gaussian KL, row by row."""
    params = _gaussian_params(1)
    result = unigen.algebra.verify(EVIDENCE, BOUND, GAUSSIAN, params, GAUSSIAN_BATCH,
                                   per_example=True, method="quadrature", nodes=6)
    expected = max(_gaussian_kl_closed_form(params, x) for x in GAUSSIAN_BATCH["x"])
    assert not result.holds and expected > 0.05
    assert abs(result.max_abs_error_value - expected) < 1e-10


def test_monte_carlo_holds_within_k_standard_errors_and_rejects_a_false_identity():
    """Both sides share keys: L + KL is log p(x) draw by draw (zero spread); L alone is not."""
    params = _gaussian_params(2)
    true = unigen.algebra.verify(EVIDENCE, BOUND + GAP, GAUSSIAN, params, GAUSSIAN_BATCH,
                                 wrt="eta", method="monte_carlo", replicas=64)
    assert true.holds and true.method == "monte_carlo" and true.k == 4.0, true
    false = unigen.algebra.verify(EVIDENCE, BOUND, GAUSSIAN, params, GAUSSIAN_BATCH,
                                  method="monte_carlo", replicas=64)
    expected = np.mean([_gaussian_kl_closed_form(params, x) for x in GAUSSIAN_BATCH["x"]])
    assert not false.holds
    # The mean of 64 replicas is within 5 standard errors of the closed form (a fixed seed).
    standard_error = (false.tolerance_value - v.TOLERANCE) / false.k
    assert 0 < standard_error < 0.2 * expected
    assert abs(false.max_abs_error_value - expected) < 5 * standard_error


def test_implicit_samplers_go_to_monte_carlo_and_exact_refuses_them():
    """E_{z ~ sampler}[log N(z; 0, I)] for z = μ + ε has the closed form
    −log(2π) − (|μ|² + 2)/2; the sampler is implicit, so "auto" is Monte Carlo."""
    sampler = dist("p", over="z", params="theta")
    bindings = {sampler: implicit(lambda p, k, g: p["theta"]["mu"] + jax.random.normal(k, (2,))),
                prior: GAUSSIAN[prior]}
    params = {"theta": {"mu": np.array([0.5, -1.0])}}
    closed = -math.log(2 * math.pi) - (0.25 + 1.0 + 2.0) / 2
    rows = {"rows": np.zeros((8, 1))}  # a model expectation outside the data draws 8 samples
    side = E(sampler, log(prior))
    right = unigen.algebra.verify(side, unigen.algebra.constant("c", closed), bindings, params,
                                  rows, replicas=128)
    assert right.method == "monte_carlo" and right.holds, right
    wrong = unigen.algebra.verify(side, unigen.algebra.constant("c", closed + 0.5), bindings,
                                  params, rows, replicas=128)
    assert not wrong.holds and abs(wrong.max_abs_error_value - 0.5) < wrong.tolerance_value
    with pytest.raises(ConfigError, match="method: got 'exact', but .* implicit"):
        unigen.algebra.verify(side, unigen.algebra.constant("c", closed), bindings, params, rows,
                              method="exact")


# --- refusals ----------------------------------------------------------------------------------


def test_refusals_name_the_argument():
    params = _finite_params(0)
    cases = [
        (dict(wrt="psi"), "wrt: got 'psi', expected a tuple of keys of params"),
        (dict(method="simpson"), "method: got 'simpson', expected one of"),
        (dict(nodes=0), "nodes: got 0, expected an int >= 1"),
        (dict(up_to_constant=True), "wrt: got (), expected groups to compare"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            unigen.algebra.verify(EVIDENCE, BOUND, FINITE, params, BATCH, **options)
    with pytest.raises(ConfigError, match="method: got 'exact', but .*continuous"):
        unigen.algebra.verify(EVIDENCE, BOUND, GAUSSIAN, _gaussian_params(0), GAUSSIAN_BATCH,
                              method="exact")
    with pytest.raises(ConfigError, match="batch: got leading sizes"):
        unigen.algebra.verify(EVIDENCE, BOUND, FINITE, params,
                              {"pixels": np.array([0, 1]), "other": np.zeros(3)},
                              per_example=True)
    with pytest.raises(DataError, match="'pixels'"):
        unigen.algebra.verify(EVIDENCE, BOUND, FINITE, params, {"data": np.array([0])})
    with pytest.raises(unigen.algebra.ExpressionError, match="lhs: got"):
        unigen.algebra.verify(encoder, BOUND, FINITE, params, BATCH)


def test_the_result_prints_readably():
    result = unigen.algebra.verify(EVIDENCE, BOUND + GAP, FINITE, _finite_params(0), BATCH,
                                   wrt="theta", per_example=True)
    lines = str(result).splitlines()
    assert lines[0] == f"{EVIDENCE} = {BOUND + GAP}: holds (exact)"
    assert lines[1] == "  in the sense: values and gradients w.r.t. θ, for every row of the batch"
    assert lines[2].startswith("  max |error|: values ") and "(tolerance 1e-09)" in lines[2]



def _points(identity, seed=0, sizes=None):
    with jax.enable_x64(True):
        return identity.points(jax.random.key(seed), sizes or dict(v.DEFAULT_SIZES))


def _np(params):
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def _np_softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- the lecture's identities, by name (hand-written oracles below) ----------------------------
# --- every identity holds ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_identity_holds_at_default_sizes(name):
    result = v.verify(name)
    assert result.identity == name
    assert result.holds, result
    assert result.max_abs_error_value < 1e-9
    assert result.max_abs_error_grad < 1e-9
    assert result.sense == v.IDENTITIES[name].sense
    assert result.space["x"] == v.DEFAULT_SIZES["x"] and result.space["y"] == 2


@settings(max_examples=3, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(NAMES),
    k=st.sampled_from([2, 7]),
    m=st.sampled_from([2, 4]),
    seed=st.integers(0, 2**31 - 1),
)
def test_identity_holds_for_random_sizes_and_seeds(name, k, m, seed):
    result = v.verify(name, seed=seed, sizes={"x": k, "z": m})
    assert result.holds, result
    assert result.space["x"] == k


# --- each check fails on a wrong identity ------------------------------------------------------


def test_elbo_decomposition_with_kl_reversed_fails():
    def right(params):
        bound = v.elbo(params)
        reversed_kl = v.kl(v.log_posterior(params), v.log_encoder(params))
        return jnp.concatenate([reversed_kl + bound, -bound])

    wrong = v.ELBO_DECOMPOSITION._replace(right=right)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_value > WRONG and result.max_abs_error_grad > WRONG


def test_lemma1_without_jsd_fails():
    def right(params):
        log_p_x_given_y, _, log_qr_x_given_y = v.lemma1_tables(params)
        return jnp.mean(v.kl(log_p_x_given_y, log_qr_x_given_y))

    wrong = v.LEMMA1._replace(right=right)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_grad > WRONG


def test_lemma1_with_kl_reversed_fails():
    def right(params):
        log_p_x_given_y, _, log_qr_x_given_y = v.lemma1_tables(params)
        reversed_kl = jnp.mean(v.kl(log_qr_x_given_y, log_p_x_given_y))
        return reversed_kl - v.jsd(log_p_x_given_y[0], log_p_x_given_y[1])

    wrong = v.LEMMA1._replace(right=right)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_grad > WRONG


def test_lemma1_with_unreversed_discriminator_fails():
    def left(params):
        log_p_x_given_y, _, _ = v.lemma1_tables(params)
        log_p_y = jnp.full((2,), -jnp.log(2.0), dtype=jnp.float64)
        return -v.sleep_objective(log_p_y, log_p_x_given_y, v.log_discriminator(params))

    wrong = v.LEMMA1._replace(left=left)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_grad > WRONG


def test_lemma1_gradients_agree_only_at_theta0():
    # Away from θ0 the gradients differ (by ∇ KL(p_θ(x) ‖ p_θ0(x)) ≠ 0): the lemma is local.
    random_point, _ = _points(v.LEMMA1)
    with jax.enable_x64(True):
        moved = {**random_point,
                 "theta0": random_point["theta"] + jax.random.normal(
                     jax.random.key(1), random_point["theta"].shape, dtype=jnp.float64)}
    result = v.check(v.LEMMA1, moved)
    assert not result.holds
    assert result.max_abs_error_grad > WRONG


@jax.jit
def _lemma1_gap_and_remainder(params):
    gap = v.lemma1_right(params) - v.lemma1_left(params) - v.lemma1_constant(params)
    return gap, v.lemma1_remainder(params)


@pytest.mark.parametrize("seed", [0, 3])
def test_lemma1_values_differ_by_constant_plus_mixture_kl(seed):
    random_point, optimal_point = _points(v.LEMMA1, seed)
    with jax.enable_x64(True):
        # At D* the constant is −log 2.
        assert abs(float(v.lemma1_constant(optimal_point)) + math.log(2.0)) < 1e-12
        # At any θ (θ0 given separately): right = left + constant + KL(p_θ(x) ‖ p_θ0(x)).
        for point in (random_point, optimal_point):
            moved = {**point, "theta0": point["theta"] + 0.7}
            moved["theta0"] = moved["theta0"].at[0].add(-1.3)
            gap, remainder = _lemma1_gap_and_remainder(moved)
            assert float(remainder) > 1e-3
            assert abs(float(gap - remainder)) < 1e-12


def test_lemma2_without_entropy_constant_fails_on_values_only():
    wrong = v.LEMMA2._replace(constant=v.zero)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_value > WRONG
    assert result.max_abs_error_grad < 1e-9  # the constant has no gradient


def test_lemma2_with_normalized_posterior_fails_in_theta():
    # The lecture's second line read literally: −E_{p_data} KL(q_η(z|x) ‖ p_θ(z|x)).
    def right(params):
        per_x = v.kl(v.log_encoder(params), v.log_posterior(params))
        return -jnp.sum(jnp.exp(v.log_data(params)) * per_x)

    wrong = v.LEMMA2._replace(right=right)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_grad > WRONG
    # ... but its η-gradient is right: the missing term E_{p_data}[log p_θ(x)] depends on θ only.
    assert v.check(wrong._replace(wrt=("eta",)), *_points(wrong)).max_abs_error_grad < 1e-9


def test_wake_sleep_with_prior_in_place_of_encoder_fails():
    def right(params):
        weights = jnp.exp(v.log_prior(params)[None, :] + v.log_data(params)[:, None])
        wrong_wake = jnp.sum(weights * v.log_joint(params))
        return jnp.stack([wrong_wake, v.gan_discriminator_objective(params)])

    wrong = v.WAKE_SLEEP._replace(right=right)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_grad > WRONG


def test_wake_sleep_with_reversed_discriminator_in_sleep_fails():
    def left(params):
        log_p_y, log_p_x_given_y = v._gan_joint(params)
        reversed_log_q = v.reversed_discriminator(v.log_discriminator(params))
        sleep = v.sleep_objective(log_p_y, log_p_x_given_y, reversed_log_q)
        return jnp.stack([v.vae_objective(params), sleep])

    wrong = v.WAKE_SLEEP._replace(left=left)
    result = v.check(wrong, *_points(wrong))
    assert not result.holds
    assert result.max_abs_error_value > WRONG and result.max_abs_error_grad > WRONG


def test_wake_sleep_with_unhalved_discriminator_objective_fails():
    def right(params):
        doubled = 2.0 * v.gan_discriminator_objective(params)
        return jnp.stack([v.wake_objective(params), doubled])

    wrong = v.WAKE_SLEEP._replace(right=right)
    assert not v.check(wrong, *_points(wrong)).holds


def test_wake_sleep_has_no_eta_gradient_claim():
    # L^vae − wake = E_{p_data}[H(q_η(z|x))] depends on η: the η-gradients differ.
    result = v.check(v.WAKE_SLEEP._replace(wrt=("eta",)), *_points(v.WAKE_SLEEP))
    assert result.max_abs_error_grad > WRONG


# --- independent NumPy oracles -----------------------------------------------------------------


def test_elbo_sides_against_numpy():
    params = _points(v.ELBO_DECOMPOSITION, seed=5)[0]
    n = _np(params)
    decoder = _np_softmax(n["theta"])  # [z, x]
    prior = _np_softmax(n["prior"])
    encoder = _np_softmax(n["eta"])  # [x, z]
    k, m = encoder.shape
    log_px = np.array([math.log(sum(prior[z] * decoder[z, x] for z in range(m)))
                       for x in range(k)])
    bound = np.array([sum(encoder[x, z] * (math.log(prior[z] * decoder[z, x])
                                           - math.log(encoder[x, z])) for z in range(m))
                      for x in range(k)])
    with jax.enable_x64(True):
        left = np.asarray(jax.jit(v.elbo_decomposition_left)(params))
        right = np.asarray(jax.jit(v.elbo_decomposition_right)(params))
    np.testing.assert_allclose(left[:k], log_px, rtol=0, atol=1e-12)
    np.testing.assert_allclose(right[k:], -bound, rtol=0, atol=1e-12)


def test_lemma1_left_value_and_gradient_against_numpy():
    random_point, _ = _points(v.LEMMA1, seed=2)
    n = _np(random_point)
    p_g, p_data = _np_softmax(n["theta"]), _np_softmax(n["data"])
    d = 1.0 / (1.0 + np.exp(-n["phi"]))
    # q^r(y=0|x) = D(x), q^r(y=1|x) = 1 − D(x).
    value = -0.5 * np.sum(p_g * np.log(d)) - 0.5 * np.sum(p_data * np.log(1.0 - d))
    # ∂/∂θ_j of −½ Σ_x p_g(x) log D(x), with ∂p_g(x)/∂θ_j = p_g(x)(δ_xj − p_g(j)).
    grad = -0.5 * p_g * (np.log(d) - np.sum(p_g * np.log(d)))
    with jax.enable_x64(True):
        got_value, got_grad = jax.jit(jax.value_and_grad(v.lemma1_left))(random_point)
        right_grad = jax.jit(jax.grad(v.lemma1_right))(random_point)["theta"]
        got_value, got_grad = float(got_value), np.asarray(got_grad["theta"])
    assert abs(got_value - value) < 1e-12
    np.testing.assert_allclose(got_grad, grad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(right_grad, grad, rtol=0, atol=1e-12)


def test_lemma2_vae_objective_against_numpy():
    params = _points(v.LEMMA2, seed=7)[1]
    n = _np(params)
    decoder, prior = _np_softmax(n["theta"]), _np_softmax(n["prior"])
    encoder, p_data = _np_softmax(n["eta"]), _np_softmax(n["data"])
    k, m = encoder.shape
    total = 0.0
    for x in range(k):
        for z in range(m):
            total += p_data[x] * encoder[x, z] * (
                math.log(decoder[z, x]) - math.log(encoder[x, z]) + math.log(prior[z]))
    data_entropy = -float(np.sum(p_data * np.log(p_data)))
    with jax.enable_x64(True):
        assert abs(float(v.vae_objective(params)) - total) < 1e-12
        assert abs(float(v.data_entropy(params)) - data_entropy) < 1e-12


# --- errors ------------------------------------------------------------------------------------


def test_unknown_name_is_refused_listing_valid_names():
    with pytest.raises(ConfigError) as info:
        v.verify("lemma3")
    message = str(info.value)
    assert "name" in message and "'lemma3'" in message
    for name in NAMES:
        assert name in message


@pytest.mark.parametrize("sizes", [{"x": 1}, {"z": 2.5}, {"w": 3}, [5, 3], {"x": True}])
def test_bad_sizes_are_refused(sizes):
    with pytest.raises(ConfigError, match="sizes"):
        v.verify("lemma1", sizes=sizes)


def test_check_needs_a_point():
    with pytest.raises(ConfigError, match="points"):
        v.check(v.LEMMA1)


def test_compiled_once_per_identity_and_shape():
    v.verify("lemma2", seed=11, sizes={"x": 3, "z": 2})
    before = _checker.cache_info().misses
    v.verify("lemma2", seed=12, sizes={"x": 3, "z": 2})
    assert _checker.cache_info().misses == before
