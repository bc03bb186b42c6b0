"""Exact checks of the lecture's identities (unigen.algebra.verify).

Each identity must hold to float64 rounding at random points of several sizes, and each check must
fail on a deliberately wrong identity built from the public building blocks, so the checks are
shown to discriminate. One side of each identity is also recomputed with plain NumPy loops.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unigen.algebra import verify as v
from unigen.errors import ConfigError

NAMES = ("elbo-decomposition", "lemma1", "lemma2", "wake-sleep")
# A wrong identity must miss by far more than rounding; these are order-one differences.
WRONG = 1e-4


def _points(identity: v.Identity, seed: int = 0, sizes=None) -> tuple[v.Params, ...]:
    with jax.enable_x64(True):
        return identity.points(jax.random.key(seed), sizes or dict(v.DEFAULT_SIZES))


def _np(params: v.Params) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def _np_softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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


@settings(max_examples=6, deadline=None, derandomize=True)
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
    before = v._jitted_errors._cache_size()
    v.verify("lemma2", seed=12, sizes={"x": 3, "z": 2})
    assert v._jitted_errors._cache_size() == before
