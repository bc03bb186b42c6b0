"""IS-NLL and the test ELBO against the exact log-likelihood of a linear-Gaussian model.

The model (built by hand through the Joint/Inference protocols in test_vae.py) has
p(x) = N(x; b, W W^T + s^2 I) in closed form. With q(z|x) the exact posterior every importance
weight equals p(x), so the IS estimate is exact for every k; with a mismatched q it is an upper
bound on -log p(x) in expectation whose bias shrinks like 1/k.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_vae import (
    LINEAR,
    as_params,
    exact_elbo,
    exact_log_marginal,
    linear_gaussian_case,
    linear_vae_case,
    mismatched_eta,
    posterior_eta,
)

from unigen import metrics
from unigen.algorithms.iwae import iwae_bound
from unigen.algorithms.vae import elbo
from unigen.errors import ConfigError, DataError


def examples(theta, n: int, seed: int = 1) -> np.ndarray:
    """n draws of x from p(x) = N(b, W W^T + s^2 I), float32, [n, D]."""
    W, b, s = np.asarray(theta["W"]), np.asarray(theta["b"]), float(np.exp(theta["log_s"]))
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, W.shape[1]))
    return (z @ W.T + b + s * rng.normal(size=(n, W.shape[0]))).astype(np.float32)


def exact_nll(theta, x) -> float:
    return -float(np.mean([exact_log_marginal(theta, np.asarray(xi, np.float64)) for xi in x]))


@pytest.fixture(scope="module")
def case():
    theta, _ = linear_gaussian_case()
    x = examples(theta, 10)
    return theta, x, exact_nll(theta, x)


def test_is_nll_is_exact_at_the_exact_posterior(key, case):
    theta, x, nll = case
    params = as_params(theta, posterior_eta(theta))
    for k, sample_batch_size in ((1, 100), (30, 30)):
        got = metrics.is_nll(LINEAR, params, x, key, k=k, sample_batch_size=sample_batch_size)
        np.testing.assert_allclose(got, nll, rtol=1e-5)


def test_is_nll_streams_a_large_k_in_blocks_and_stays_exact_at_the_exact_posterior(key, case, monkeypatch):
    """Above LARGE_K draws the weights come in blocks with a running logsumexp; at the exact
    posterior every weight is p(x), so the estimate is exact only if the last, partial block's
    extra draws are left out (k=50 in blocks of 16: 16+16+16+2), in two compiled calls of at most
    3 blocks (between them the process takes signals)."""
    theta, x, nll = case
    monkeypatch.setattr(metrics, "LARGE_K", 16)
    monkeypatch.setattr(metrics, "BLOCKS_PER_CALL", 3)
    got = metrics.is_nll(LINEAR, as_params(theta, posterior_eta(theta)), x, key, k=50, sample_batch_size=8)
    np.testing.assert_allclose(got, nll, rtol=1e-5)


def test_is_nll_converges_with_k_for_a_mismatched_q(key, case):
    """Mismatched q: at k=1 the expected error is the mean KL(q || p(z|x)), 0.87 nats here (closed
    form); at k=1000 the bias is ~0.001 nats and the spread of the 10-example mean over seeds is
    ~0.01 nats, so the tolerance 0.05 is about 5 standard deviations."""
    theta, x, nll = case
    eta = mismatched_eta(theta)
    params = as_params(theta, eta)
    x64 = x.astype(np.float64)
    kl = np.mean([exact_log_marginal(theta, xi) - exact_elbo(theta, eta, xi) for xi in x64])
    assert kl > 0.5
    fine = metrics.is_nll(LINEAR, params, x, key, k=1000, batch_size=5, sample_batch_size=250)
    assert abs(fine - nll) < 0.05, (fine, nll)


def test_chunk_sizes_do_not_change_the_result(key, case):
    """One chunk of 10 with all 30 samples at once vs chunks of 3 (the last padded) with the
    samples 7 at a time (lax.map with a remainder). For test_elbo the same holds: see
    test_test_elbo_is_the_mean_elbo_with_split_keys, which compares chunks of 3 with no chunking."""
    theta, x, _ = case
    params = as_params(theta, mismatched_eta(theta))
    results = [
        metrics.is_nll(LINEAR, params, x, key, k=30, batch_size=b, sample_batch_size=s)
        for b, s in ((10, 30), (3, 7))
    ]
    np.testing.assert_allclose(results, results[0], rtol=1e-5)


def test_is_nll_compiles_once_for_all_chunks(key, case):
    theta, x, _ = case
    params = as_params(theta, mismatched_eta(theta))
    chunk = metrics._log_likelihood_chunk
    before = chunk._cache_size()
    # chunks of 3, 3, 3 and 1 + 2 padding: one program (0 new if an earlier test compiled it)
    metrics.is_nll(LINEAR, params, x, key, k=30, batch_size=3, sample_batch_size=7)
    after = chunk._cache_size()
    assert after - before <= 1
    metrics.is_nll(LINEAR, params, x[:8], key, k=30, batch_size=3, sample_batch_size=7)
    assert chunk._cache_size() == after


def test_test_elbo_is_the_mean_elbo_with_split_keys(key, case):
    theta, x, nll = case
    params = as_params(theta, mismatched_eta(theta))
    got = metrics.test_elbo(LINEAR, params, x, key, batch_size=3, kl="monte_carlo", n_samples=2)
    keys = jax.random.split(key, x.shape[0])
    per_example = jax.jit(
        jax.vmap(lambda k, xi: elbo(LINEAR, params, k, xi, kl="monte_carlo", n_samples=2))
    )(keys, jnp.asarray(x))
    np.testing.assert_allclose(got, float(np.mean(np.asarray(per_example, np.float64))), rtol=1e-5)
    # a lower bound: below -NLL by the mean KL(q || p(z|x)) (0.87 nats here); with 50 draws per
    # example the spread of the mean is ~0.05 nats, so the margin 0.5 is many deviations
    assert metrics.test_elbo(LINEAR, params, x, key, n_samples=50) < -nll - 0.5
    # at the exact posterior, the Monte-Carlo ELBO is log p(x) for every draw
    exact = as_params(theta, posterior_eta(theta))
    np.testing.assert_allclose(
        metrics.test_elbo(LINEAR, exact, x, key, batch_size=3, kl="monte_carlo", n_samples=2),
        -nll,
        rtol=1e-5,
    )


def test_is_nll_is_the_mean_iwae_bound_with_split_keys_for_typed_and_raw_keys(case):
    """Example n's bound uses ``split(key, N)[n]``, whether the key is typed or a raw uint32 key
    of the same data (the chunks get their keys as host key data, wrapped again inside)."""
    theta, x, _ = case
    params = as_params(theta, mismatched_eta(theta))
    raw = jax.random.PRNGKey(3)
    typed = jax.random.wrap_key_data(raw)
    keys = jax.random.split(typed, x.shape[0])
    oracle = -np.mean(np.asarray(jax.jit(jax.vmap(lambda k, xi: iwae_bound(LINEAR, params, k, xi, 30)))(
        keys, jnp.asarray(x)), np.float64))
    for key in (typed, raw):
        np.testing.assert_allclose(metrics.is_nll(LINEAR, params, x, key, k=30, batch_size=3), oracle, rtol=1e-5)
        np.testing.assert_allclose(metrics.test_elbo(LINEAR, params, x, key, batch_size=3),
                                   metrics.test_elbo(LINEAR, params, x, typed, batch_size=4), rtol=1e-6)


def test_is_nll_of_the_vae_factory_on_a_linear_gaussian(key):
    model, params, theta = linear_vae_case(key)
    x = examples(theta, 6, seed=2)
    got = metrics.is_nll(model, params, x, key, k=5, batch_size=4)
    np.testing.assert_allclose(got, exact_nll(theta, x), rtol=1e-5)


def test_integer_data_and_numpy_integer_options_are_accepted(key, case):
    theta, _, _ = case
    params = as_params(theta, posterior_eta(theta))
    x = np.random.default_rng(0).integers(0, 2, (10, 3))
    np.testing.assert_allclose(
        metrics.is_nll(LINEAR, params, x.astype(np.uint8), key, k=np.int64(30), sample_batch_size=30),
        metrics.is_nll(LINEAR, params, x.astype(np.float32), key, k=30, sample_batch_size=30),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"k": 0}, r"k: expected a positive int, got 0"),
        ({"k": -3}, r"k: expected a positive int, got -3"),
        ({"k": 2.5}, r"k: expected a positive int, got 2.5"),
        ({"batch_size": 0}, r"batch_size: expected a positive int, got 0"),
        ({"sample_batch_size": 0}, r"sample_batch_size: expected a positive int, got 0"),
    ],
)
def test_bad_options_raise_config_error(key, case, kwargs, pattern):
    theta, x, _ = case
    params = as_params(theta, posterior_eta(theta))
    with pytest.raises(ConfigError, match=pattern):
        metrics.is_nll(LINEAR, params, x, key, **kwargs)


def test_bad_data_raises_data_error(key, case):
    theta, x, _ = case
    params = as_params(theta, posterior_eta(theta))
    for bad, pattern in [
        (x[0], r"x: expected shape \(N, 3\) with N >= 1, got array of shape \(3,\)"),
        (x[:, :2], r"x: expected shape \(N, 3\) with N >= 1, got array of shape \(10, 2\)"),
        (x[:0], r"x: expected shape \(N, 3\) with N >= 1, got array of shape \(0, 3\)"),
        (np.where(np.arange(3) == 1, np.nan, x), r"x: expected finite values, got 10 NaN/Inf"),
    ]:
        with pytest.raises(DataError, match=pattern):
            metrics.is_nll(LINEAR, params, bad, key, k=2)
        with pytest.raises(DataError, match=pattern):
            metrics.test_elbo(LINEAR, params, bad, key)
    with pytest.raises(ConfigError, match=r"kl: expected one of"):
        metrics.test_elbo(LINEAR, params, x, key, kl="exact")


# --- inception_score -----------------------------------------------------------------------------


def test_inception_score_bounds_and_closed_forms():
    classes = 10
    assert metrics.inception_score(np.full((7, classes), 1.0 / classes)) == pytest.approx(1.0)  # same prediction
    assert metrics.inception_score(np.eye(classes)[np.arange(50) % classes]) == pytest.approx(classes)  # certain, balanced
    # certain but only 2 of 10 classes used, 3:1: exp(H(marginal)) = exp(-(.75 log .75 + .25 log .25))
    labels = np.array([0, 0, 0, 1] * 5)
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert metrics.inception_score(np.eye(classes)[labels]) == pytest.approx(expected)


def test_inception_score_matches_the_definition_on_random_rows():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(4, 0.5), size=30)
    marginal = p.mean(axis=0)
    expected = math.exp(np.mean([sum(pi[c] * math.log(pi[c] / marginal[c]) for c in range(4)) for pi in p]))
    assert metrics.inception_score(p) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("bad", [np.ones((3,)), np.array([[0.5, 0.6]]), np.array([[1.5, -0.5]]), np.array([[np.nan, 1.0]])])
def test_inception_score_refuses_bad_probabilities(bad):
    with pytest.raises(DataError, match="probabilities"):
        metrics.inception_score(bad)
