"""The VAE model, the ELBO and the IWAE bound against closed forms.

The main oracle is a linear-Gaussian model with an exact marginal likelihood:
z ~ N(0, I_L), x | z ~ N(W z + b, s^2 I_D), so p(x) = N(x; b, W W^T + s^2 I) and the posterior is
p(z | x) = N(mu, Sigma), Sigma = (I + W^T W / s^2)^-1, mu = Sigma W^T (x - b) / s^2.
It is built by hand through the Joint/Inference protocols (with a full-covariance linear-Gaussian
q(z | x) = N(A x + c, C C^T)), and also as `vae_model(..., hidden=(), likelihood="gaussian")` with
hand-set weights (orthogonal columns of W make the exact posterior diagonal).

Statistical checks use fixed seeds and a tolerance of 4 standard errors of the Monte-Carlo mean
(the standard error estimated from the same draws): a false failure has probability < 1e-4.
"""

from __future__ import annotations

import importlib
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from jax.scipy import stats
from jax.test_util import check_grads

from unigen import distributions
from unigen.algorithms.iwae import iwae, iwae_bound, log_importance_weights
from unigen.algorithms.vae import elbo, elbo_terms, vae
from unigen.core import Algorithm, Inference, Joint
from unigen.errors import ConfigError, DataError
from unigen.models.vae import VAEModel, vae_model
from unigen.nets import mlp

# ---------------------------------------------------------------------------------------------
# The linear-Gaussian model, by hand, through the protocols


def linear_gaussian_model(data_dim: int, latent_dim: int) -> VAEModel:
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I); q(z|x) = N(A x + c, C C^T), C lower-triangular.

    theta = {"W": [D, L], "b": [D], "log_s": []}; eta = {"A": [L, D], "c": [L], "C": [L, L]}.
    """

    def prior(theta):
        dtype = theta["b"].dtype
        return dist.MultivariateNormal(
            jnp.zeros(latent_dim, dtype), scale_tril=jnp.eye(latent_dim, dtype=dtype)
        )

    def decoder_distribution(theta, z):
        return distributions.diagonal_normal(theta["W"] @ z + theta["b"], jnp.exp(theta["log_s"]))

    def encoder_distribution(eta, x):
        return dist.MultivariateNormal(eta["A"] @ x + eta["c"], scale_tril=eta["C"])

    def joint_init(key):
        return {
            "W": jax.random.normal(key, (data_dim, latent_dim)),
            "b": jnp.zeros(data_dim),
            "log_s": jnp.zeros(()),
        }

    def joint_sample(theta, key, given):
        key_z, key_x = jax.random.split(key)
        z = given["z"] if "z" in given else prior(theta).rsample(key_z)
        x = decoder_distribution(theta, z).rsample(key_x)
        return {"x": x} if "z" in given else {"z": z, "x": x}

    def joint_log_prob(theta, values, given):
        if "z" in given:
            return decoder_distribution(theta, given["z"]).log_prob(values["x"])
        z, x = values["z"], values["x"]
        return prior(theta).log_prob(z) + decoder_distribution(theta, z).log_prob(x)

    def inference_init(key):
        return {
            "A": jnp.zeros((latent_dim, data_dim)),
            "c": jnp.zeros(latent_dim),
            "C": jnp.eye(latent_dim),
        }

    def inference_sample(eta, key, given):
        return {"z": encoder_distribution(eta, given["x"]).rsample(key)}

    def inference_log_prob(eta, values, given):
        return encoder_distribution(eta, given["x"]).log_prob(values["z"])

    return VAEModel(
        joint=Joint(joint_init, joint_sample, joint_log_prob),
        inference=Inference(inference_init, inference_sample, inference_log_prob),
        prior=prior,
        decoder_distribution=decoder_distribution,
        encoder_distribution=encoder_distribution,
        decode_mean=lambda theta, z: theta["W"] @ z + theta["b"],
        data_dim=data_dim,
        latent_dim=latent_dim,
    )


def linear_gaussian_case(seed: int = 0, data_dim: int = 3, latent_dim: int = 2, s: float = 0.5):
    """Random W, b, one x drawn from the model, and the exact posterior as q's parameters."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(data_dim, latent_dim))
    b = rng.normal(size=data_dim)
    z = rng.normal(size=latent_dim)
    x = W @ z + b + s * rng.normal(size=data_dim)
    theta = {"W": W, "b": b, "log_s": np.log(s)}
    return theta, x


def exact_log_marginal(theta, x) -> float:
    """log N(x; b, W W^T + s^2 I), by jax.scipy.stats in float64 NumPy-equivalent terms."""
    W, b, s = (np.asarray(theta[k], np.float64) for k in ("W", "b", "log_s"))
    s = np.exp(s)
    cov = W @ W.T + s**2 * np.eye(W.shape[0])
    diff = np.asarray(x, np.float64) - b
    _, logdet = np.linalg.slogdet(cov)
    quadratic = diff @ np.linalg.solve(cov, diff)
    return float(-0.5 * (quadratic + logdet + len(diff) * np.log(2 * np.pi)))


def exact_posterior(theta):
    """(A, c, Sigma) with p(z | x) = N(A x + c, Sigma)."""
    W, b, s = (np.asarray(theta[k], np.float64) for k in ("W", "b", "log_s"))
    s = np.exp(s)
    sigma = np.linalg.inv(np.eye(W.shape[1]) + W.T @ W / s**2)
    A = sigma @ W.T / s**2
    return A, -A @ b, sigma


def posterior_eta(theta):
    A, c, sigma = exact_posterior(theta)
    return {"A": A, "c": c, "C": np.linalg.cholesky(sigma)}


def mismatched_eta(theta):
    """q(z | x) with a shifted mean and a 1.6x wider covariance than the exact posterior."""
    A, c, sigma = exact_posterior(theta)
    return {"A": 0.7 * A, "c": c + 0.3, "C": 1.6 * np.linalg.cholesky(sigma)}


def exact_elbo(theta, eta, x) -> float:
    """E_q[log p(x|z)] - KL(q || N(0, I)) for Gaussian q = N(m, S), in closed form."""
    W, b, s = (np.asarray(theta[k], np.float64) for k in ("W", "b", "log_s"))
    s = np.exp(s)
    m = np.asarray(eta["A"]) @ x + np.asarray(eta["c"])
    S = np.asarray(eta["C"]) @ np.asarray(eta["C"]).T
    D, L = W.shape
    residual = x - W @ m - b
    reconstruction = -0.5 * D * np.log(2 * np.pi * s**2) - (
        residual @ residual + np.trace(W @ S @ W.T)
    ) / (2 * s**2)
    kl = 0.5 * (np.trace(S) + m @ m - L - np.linalg.slogdet(S)[1])
    return float(reconstruction - kl)


def as_params(theta, eta, dtype=jnp.float32):
    cast = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)  # noqa: E731
    return {"theta": cast(theta), "eta": cast(eta)}


def mean_and_standard_error(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


LINEAR = linear_gaussian_model(3, 2)
# the modules (the package re-exports the factories under the same names)
vae_module = importlib.import_module("unigen.algorithms.vae")
iwae_module = importlib.import_module("unigen.algorithms.iwae")


# ---------------------------------------------------------------------------------------------
# Leaf log-densities as the model uses them, against jax.scipy.stats


BERNOULLI = vae_model(5, 2, hidden=(4,), activation="tanh", likelihood="bernoulli")
GAUSSIAN = vae_model(2, 2, hidden=(4,), activation="tanh", likelihood="gaussian")


def random_params(model, key, dtype=jnp.float32, seed=0):
    """Parameters of the model's structure drawn from N(0, 0.5^2) (the init's biases are 0).

    The structure comes from ``jax.eval_shape`` of the algorithm's init and the values from NumPy:
    no network is built and nothing is compiled.
    """
    shapes = jax.eval_shape(vae(model).init, key)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(0.5 * rng.normal(size=a.shape), dtype), shapes)


def binary_batch(seed, n, d=5):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 2, (n, d)), jnp.float32)


def over_keys(fn, key, n):
    """``jax.jit(jax.vmap(fn))`` over ``jax.random.split(key, n)``, as float64 NumPy."""
    return np.asarray(jax.jit(jax.vmap(fn))(jax.random.split(key, n)), np.float64)


def test_bernoulli_joint_log_prob_matches_scipy(key):
    model = BERNOULLI
    theta = random_params(model, key)["theta"]
    z = jax.random.normal(jax.random.fold_in(key, 1), (2,))
    x = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])

    @jax.jit
    def compute(theta, z, x):
        logits = mlp([2, 4, 5], "tanh").apply(theta["decoder"], z)
        expected_x = jnp.sum(stats.bernoulli.logpmf(x, jax.nn.sigmoid(logits)))
        expected_z = jnp.sum(stats.norm.logpdf(z))
        return (
            model.joint.log_prob(theta, {"x": x}, {"z": z}),
            expected_x,
            model.joint.log_prob(theta, {"x": x, "z": z}, {}),
            expected_x + expected_z,
            model.decode_mean(theta, z),
            jax.nn.sigmoid(logits),
        )

    conditional, expected_x, joint, expected_joint, mean, probs = compute(theta, z, x)
    np.testing.assert_allclose(conditional, expected_x, rtol=1e-5)
    np.testing.assert_allclose(joint, expected_joint, rtol=1e-5)
    np.testing.assert_allclose(mean, probs, rtol=1e-6)


def test_bernoulli_log_prob_of_grey_levels_is_the_cross_entropy():
    # For x in [0, 1] (grey pixels, --binarize none) the value is x log σ(l) + (1 − x) log σ(−l),
    # finite, and at x ∈ {0, 1} it is the Bernoulli log-mass.
    logits = jnp.array([-3.0, -0.5, 0.0, 2.0, 40.0])
    x = jnp.array([0.0, 0.3, 0.5, 1.0, 0.75])
    expected = np.sum(np.asarray(x) * np.log(1 / (1 + np.exp(-np.asarray(logits, np.float64))))
                      + (1 - np.asarray(x)) * np.log(1 / (1 + np.exp(np.asarray(logits, np.float64)))))
    value = distributions.bernoulli_logits(logits).log_prob(x)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_bernoulli_log_prob_gradient_is_x_minus_sigmoid_everywhere_including_zero():
    """d/dl [x log σ(l) + (1 − x) log σ(−l)] = x − σ(l), also at l = 0 exactly (a clip/abs
    formula gets x there), and the value stays finite at |l| = 1000."""
    logits = jnp.array([-1000.0, -2.0, 0.0, 0.0, 0.5, 1000.0])
    x = jnp.array([0.0, 1.0, 0.0, 1.0, 0.3, 1.0])
    grad = jax.grad(lambda l: distributions.bernoulli_logits(l).log_prob(x))(logits)
    np.testing.assert_allclose(grad, x - jax.nn.sigmoid(logits), atol=1e-7)
    big = distributions.bernoulli_logits(jnp.array([1000.0, -1000.0])).log_prob(jnp.array([0.0, 0.0]))
    np.testing.assert_allclose(big, -1000.0)


def test_bernoulli_draws_have_the_decoder_probabilities(key):
    model = BERNOULLI
    theta = random_params(model, key)["theta"]
    z = jnp.array([0.3, -1.2])
    n = 4000

    @jax.jit
    def compute(keys):
        draws = jax.vmap(lambda k: model.joint.sample(theta, k, {"z": z}))(keys)
        return draws, model.decode_mean(theta, z)

    draws, p = compute(jax.random.split(key, n))
    assert set(draws) == {"x"}
    x = np.asarray(draws["x"])
    assert x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    p = np.asarray(p, np.float64)
    np.testing.assert_array_less(np.abs(x.mean(0) - p), 4 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_ancestral_draws_of_the_gaussian_joint(key):
    """given={} draws z ~ N(0, I) and then x ~ N(mean(z), s^2): check both by their moments."""
    model = GAUSSIAN
    theta = random_params(model, key)["theta"]
    n = 4000

    @jax.jit
    def compute(keys):
        draws = jax.vmap(lambda k: model.joint.sample(theta, k, {}))(keys)
        residual = draws["x"] - jax.vmap(lambda z: model.decode_mean(theta, z))(draws["z"])
        return draws, residual

    draws, residual = compute(jax.random.split(key, n))
    assert set(draws) == {"z", "x"} and draws["z"].shape == (n, 2) and draws["x"].shape == (n, 2)
    z, residual = np.asarray(draws["z"], np.float64), np.asarray(residual, np.float64)
    s = np.exp(np.asarray(theta["log_scale"], np.float64))
    np.testing.assert_array_less(np.abs(z.mean(0)), 4 / np.sqrt(n))
    np.testing.assert_allclose(z.std(0), 1.0, rtol=0.1)
    np.testing.assert_array_less(np.abs(residual.mean(0)), 4 * s / np.sqrt(n))
    np.testing.assert_allclose(residual.std(0), s, rtol=0.1)


def test_gaussian_likelihood_and_encoder_match_scipy(key):
    model = GAUSSIAN
    params = random_params(model, key)
    z = jnp.array([0.4, -0.1])
    x = jnp.array([1.5, -0.7])

    @jax.jit
    def compute(params):
        theta, eta = params["theta"], params["eta"]
        mean = mlp([2, 4, 2], "tanh").apply(theta["decoder"], z)
        # encoder: the first half of its output is the mean, the second the log standard deviation
        out = mlp([2, 4, 4], "tanh").apply(eta["encoder"], x)
        return (
            model.joint.log_prob(theta, {"x": x}, {"z": z}),
            jnp.sum(stats.norm.logpdf(x, mean, jnp.exp(theta["log_scale"]))),
            model.decode_mean(theta, z),
            mean,
            model.inference.log_prob(eta, {"z": z}, {"x": x}),
            jnp.sum(stats.norm.logpdf(z, out[:2], jnp.exp(out[2:]))),
        )

    got_x, expected_x, got_mean, mean, got_z, expected_z = compute(params)
    np.testing.assert_allclose(got_x, expected_x, rtol=1e-5)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-6)
    np.testing.assert_allclose(got_z, expected_z, rtol=1e-5)


def test_fixed_observation_scale(key):
    model = vae_model(
        2, 2, hidden=(4,), activation="tanh", likelihood="gaussian", observation_scale=0.1
    )
    theta = random_params(model, key)["theta"]
    assert set(theta) == {"decoder"}
    z, x = jnp.array([0.4, -0.1]), jnp.array([0.2, 0.3])

    @jax.jit
    def compute(theta):
        mean = model.decode_mean(theta, z)
        expected = jnp.sum(stats.norm.logpdf(x, mean, 0.1))
        return model.joint.log_prob(theta, {"x": x}, {"z": z}), expected

    got, expected = compute(theta)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_encoder_sample_is_pathwise_with_log_std(key):
    """z = mu + sigma * eps: dz/d(mean bias) = 1 and dz/d(log-std bias) = sigma * eps = z - mu."""
    model = GAUSSIAN
    eta = random_params(model, key)["eta"]
    x = jnp.array([0.5, -1.0])
    draw_key = jax.random.fold_in(key, 3)

    def z_of(bias):
        last = {**eta["encoder"]["linear1"], "bias": bias}
        eta_with_bias = {"encoder": {**eta["encoder"], "linear1": last}}
        return model.inference.sample(eta_with_bias, draw_key, {"x": x})["z"]

    @jax.jit
    def compute(bias):
        q = model.encoder_distribution(eta, x)
        return jax.jacobian(z_of)(bias), z_of(bias), q.mean, q.base_dist.scale

    jacobian, z, mu, sigma = compute(eta["encoder"]["linear1"]["bias"])  # jacobian: [L, 2L]
    np.testing.assert_allclose(jacobian[:, :2], np.eye(2), atol=1e-6)
    np.testing.assert_allclose(jacobian[:, 2:], np.diag(np.asarray(z - mu)), rtol=1e-5, atol=1e-6)
    # and the draws have the encoder's mean and standard deviation
    n = 4000
    zs = over_keys(lambda k: model.inference.sample(eta, k, {"x": x})["z"], key, n)
    sigma = np.asarray(sigma, np.float64)
    np.testing.assert_array_less(np.abs(zs.mean(0) - np.asarray(mu)), 4 * sigma / np.sqrt(n))
    np.testing.assert_allclose(zs.std(0), sigma, rtol=0.1)


# ---------------------------------------------------------------------------------------------
# The analytic KL


def test_analytic_kl_matches_closed_form_and_monte_carlo(key):
    model = BERNOULLI
    params = random_params(model, key)
    x = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0])

    @jax.jit
    def compute(params, keys):
        out = mlp([5, 4, 4], "tanh").apply(params["eta"]["encoder"], x)
        analytic = elbo_terms(model, params, keys[0], x, kl="analytic").kl
        mc = jax.vmap(lambda k: elbo_terms(model, params, k, x, kl="monte_carlo").kl)(keys)
        return out, analytic, mc

    out, analytic, mc = compute(params, jax.random.split(key, 20000))
    mu, sigma = np.asarray(out[:2], np.float64), np.exp(np.asarray(out[2:], np.float64))
    closed = 0.5 * np.sum(sigma**2 + mu**2 - 1 - 2 * np.log(sigma))
    np.testing.assert_allclose(analytic, closed, rtol=1e-5)
    # Monte Carlo: the mean of log q(z|x) - log p(z) over draws of q
    mean, se = mean_and_standard_error(mc)
    assert abs(mean - closed) < 4 * se, (mean, se, closed)


def test_analytic_and_monte_carlo_losses_agree_in_expectation(key):
    """Same key -> same draws of z, so the losses differ only by KL_mc - KL_analytic (mean 0)."""
    model = BERNOULLI
    params = random_params(model, key)
    batch = {"x": binary_batch(1, 4)}
    analytic = vae(model, kl="analytic").phases[0].loss
    monte_carlo = vae(model, kl="monte_carlo").phases[0].loss
    difference = over_keys(
        lambda k: analytic(params, k, batch)[0] - monte_carlo(params, k, batch)[0], key, 2000
    )
    mean, se = mean_and_standard_error(difference)
    assert abs(mean) < 4 * se, (mean, se)
    assert se > 0  # the estimators do differ draw by draw


# ---------------------------------------------------------------------------------------------
# Bounds on the linear-Gaussian model with exact log p(x)


def test_linear_gaussian_oracle_is_consistent():
    """The closed forms agree with each other: log p(x) - ELBO(q) = KL(q || p(z|x))."""
    theta, x = linear_gaussian_case()
    eta = mismatched_eta(theta)
    A, c, sigma = exact_posterior(theta)
    m, S = eta["A"] @ x + eta["c"], eta["C"] @ eta["C"].T
    mu = A @ x + c
    inv = np.linalg.inv(sigma)
    kl = 0.5 * (
        np.trace(inv @ S) + (mu - m) @ inv @ (mu - m) - 2
        + np.linalg.slogdet(sigma)[1] - np.linalg.slogdet(S)[1]
    )
    gap = exact_log_marginal(theta, x) - exact_elbo(theta, eta, x)
    np.testing.assert_allclose(gap, kl, rtol=1e-10)
    assert kl > 0.5


IWAE_KS = (1, 4, 16, 64)


@partial(jax.jit, static_argnames="model")
def bound_estimates(model, params, x, keys):
    """Per key: the ELBO by both KL estimators, and L_k for k in IWAE_KS from the first k of the
    same 64 draws (one compiled program shared by the tests below)."""

    def one(key):
        log_w = log_importance_weights(model, params, key, x, IWAE_KS[-1])
        iwae_k = [jax.nn.logsumexp(log_w[:k]) - jnp.log(jnp.float32(k)) for k in IWAE_KS]
        return {
            "elbo_monte_carlo": elbo(model, params, key, x, kl="monte_carlo"),
            "elbo_analytic": elbo(model, params, key, x, kl="analytic"),
            "iwae": jnp.stack(iwae_k),
        }

    return jax.vmap(one)(keys)


def linear_estimates(params, x, key, n=4000):
    out = bound_estimates(LINEAR, params, jnp.asarray(x, jnp.float32), jax.random.split(key, n))
    return {name: np.asarray(value, np.float64) for name, value in out.items()}


def test_elbo_is_below_log_marginal_by_the_posterior_kl(key):
    theta, x = linear_gaussian_case()
    eta = mismatched_eta(theta)
    values = linear_estimates(as_params(theta, eta), x, key)
    log_p = exact_log_marginal(theta, x)
    expected = exact_elbo(theta, eta, x)
    for kl in ("analytic", "monte_carlo"):
        mean, se = mean_and_standard_error(values[f"elbo_{kl}"])
        # the estimator is unbiased for the closed-form ELBO ...
        assert abs(mean - expected) < 4 * se + 1e-4, (kl, mean, se, expected)
        # ... which lies below log p(x) by KL(q || p(z|x)) (> 0.5 nats here): the bound holds by
        # more than 4 standard errors
        assert mean + 4 * se < log_p, (kl, mean, se, log_p)


def test_elbo_equals_log_marginal_at_the_exact_posterior(key):
    theta, x = linear_gaussian_case()
    values = linear_estimates(as_params(theta, posterior_eta(theta)), x, key)
    log_p = exact_log_marginal(theta, x)
    # log p(x, z) - log q(z | x) = log p(x) for every z: the Monte-Carlo ELBO and every IWAE
    # bound have zero variance
    np.testing.assert_allclose(values["elbo_monte_carlo"], log_p, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(values["iwae"], log_p, rtol=1e-5, atol=1e-4)
    # the analytic-KL estimator is not constant in z, but its mean is log p(x)
    mean, se = mean_and_standard_error(values["elbo_analytic"])
    assert abs(mean - log_p) < 4 * se + 1e-4, (mean, se, log_p)


def test_iwae_bound_increases_with_k_toward_log_marginal(key):
    """L_k for k = 1, 4, 16, 64 from the first k of the same 64 draws, over 4000 replicas.

    Each L_k estimate is unbiased for its bound, so the paired differences L_4k - L_k estimate
    the (positive) differences of the bounds with a small standard error.
    """
    theta, x = linear_gaussian_case()
    values = linear_estimates(as_params(theta, mismatched_eta(theta)), x, key)["iwae"]
    log_p = exact_log_marginal(theta, x)
    for i in range(len(IWAE_KS) - 1):
        mean, se = mean_and_standard_error(values[:, i + 1] - values[:, i])
        assert mean > 4 * se, (IWAE_KS[i], IWAE_KS[i + 1], mean, se)
    means = [mean_and_standard_error(values[:, i]) for i in range(len(IWAE_KS))]
    gaps = [log_p - m for m, _ in means]
    # still a lower bound (up to 4 SE), and the gap closes: L_64's gap is under a tenth of L_1's
    assert means[-1][0] < log_p + 4 * means[-1][1], (means, log_p)
    assert gaps[-1] < 0.1 * gaps[0], gaps


def test_iwae_one_sample_and_chunking(key):
    """L_1 is the Monte-Carlo ELBO with the same key; chunking the k draws changes nothing."""
    model = BERNOULLI
    params = random_params(model, key)
    x = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0])

    @jax.jit
    def compute(params, key):
        return (
            iwae_bound(model, params, key, x, 1),
            elbo(model, params, key, x, kl="monte_carlo"),
            # all at once; 3 chunks of 3 draws by lax.map and a remainder of 1
            jnp.stack([iwae_bound(model, params, key, x, 10, batch_size=b) for b in (None, 3)]),
        )

    one, mc, chunked = compute(params, key)
    np.testing.assert_allclose(one, mc, rtol=1e-5)
    np.testing.assert_allclose(chunked, chunked[0], rtol=1e-5)


def linear_vae_case(key):
    """vae_model(hidden=(), gaussian) with weights that make it a linear-Gaussian model whose
    exact posterior is diagonal (orthogonal columns of W), and q set to that posterior."""
    D, L, s = 3, 2, 0.5
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(D, L)))
    W = Q * np.array([1.5, 0.8])
    theta = {"W": W, "b": rng.normal(size=D), "log_s": np.log(s)}
    A, c, sigma = exact_posterior(theta)
    np.testing.assert_allclose(sigma, np.diag(np.diag(sigma)), atol=1e-12)
    model = vae_model(D, L, hidden=(), likelihood="gaussian")
    params = {
        "theta": {
            "decoder": {"linear0": {"kernel": W.T, "bias": theta["b"]}},
            "log_scale": np.full(D, np.log(s)),
        },
        "eta": {"encoder": {"linear0": {
            "kernel": np.concatenate([A.T, np.zeros((D, L))], axis=1),
            "bias": np.concatenate([c, 0.5 * np.log(np.diag(sigma))]),
        }}},
    }
    shapes = jax.eval_shape(vae(model).init, key)
    assert jax.tree.structure(shapes) == jax.tree.structure(params)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    return model, params, theta


def test_vae_factory_is_exact_on_a_linear_gaussian(key):
    model, params, theta = linear_vae_case(key)
    x = np.random.default_rng(4).normal(size=3)
    x32 = jnp.asarray(x, jnp.float32)
    log_p = exact_log_marginal(theta, x)
    values = bound_estimates(model, params, x32, jax.random.split(key, 50))
    np.testing.assert_allclose(values["elbo_monte_carlo"], log_p, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(values["iwae"], log_p, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The algorithms: phases, batch convention, gradients


def test_algorithm_structure_and_objective(key):
    algorithm = vae(BERNOULLI)
    assert isinstance(algorithm, Algorithm)
    assert [p.name for p in algorithm.phases] == ["elbo"]
    assert algorithm.groups == ("theta", "eta")
    params = jax.jit(algorithm.init)(key)
    assert set(params) == {"theta", "eta"}
    assert set(params["theta"]) == {"decoder"} and set(params["eta"]) == {"encoder"}
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(params))
    same = lambda text: "".join(text.split())  # noqa: E731
    assert algorithm.objective is vae_module.DECLARATION
    for doc in (vae.__doc__, vae_module.__doc__):
        assert same(vae_module.OBJECTIVE.latex()) in same(doc)
    per_example = vae_module.RECONSTRUCTION - vae_module.KL_TO_PRIOR
    assert same(per_example.latex()) in same(elbo.__doc__)
    algorithm = iwae(BERNOULLI, 3)
    assert [p.name for p in algorithm.phases] == ["iwae"] and algorithm.groups == ("theta", "eta")
    assert algorithm.objective.phases[0].objective == iwae_module.objective(3)
    assert same(iwae_module.OBJECTIVE.latex()) in same(iwae_module.__doc__)
    per_example = (
        r"\mathcal{L}_k(\theta, \eta; x) = \mathbb{E}_{z_1, \ldots, z_k \sim q_\eta(z \mid x)}"
        r"\left[\log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(x, z_i)}{q_\eta(z_i \mid x)}\right]"
    )
    for doc in (iwae.__doc__, iwae_bound.__doc__, iwae_module.__doc__):
        assert same(per_example) in same(doc)


def test_loss_is_the_mean_of_per_example_bounds_with_split_keys(key):
    """Whole batch == average of two half batches, example i drawn with split(key, B)[i]."""
    model = BERNOULLI
    params = random_params(model, key)
    x = binary_batch(1, 6)
    loss_key = jax.random.fold_in(key, 2)

    @jax.jit
    def compute(params, loss_key, x):
        keys = jax.random.split(loss_key, 6)
        out = {}
        per_example = jax.vmap(lambda k, xi: -elbo(model, params, k, xi, n_samples=2))
        halves = [jnp.mean(per_example(keys[i : i + 3], x[i : i + 3])) for i in (0, 3)]
        out["vae"] = vae(model, n_samples=2).phases[0].loss(params, loss_key, {"x": x}), halves
        bounds = jax.vmap(lambda k, xi: iwae_bound(model, params, k, xi, 4))(keys, x)
        out["iwae"] = iwae(model, 4).phases[0].loss(params, loss_key, {"x": x}), -jnp.mean(bounds)
        return out

    out = compute(params, loss_key, x)
    (loss, metrics), halves = out["vae"]
    np.testing.assert_allclose(loss, 0.5 * (halves[0] + halves[1]), rtol=1e-5)
    assert set(metrics) == {"loss", "elbo", "kl", "reconstruction"}
    np.testing.assert_allclose(metrics["loss"], loss)
    np.testing.assert_allclose(
        metrics["elbo"], metrics["reconstruction"] - metrics["kl"], rtol=1e-6
    )
    (loss, metrics), expected = out["iwae"]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert set(metrics) == {"loss", "iwae_bound"}
    np.testing.assert_allclose(metrics["iwae_bound"], -loss)


def test_theta_and_eta_both_receive_gradient(key):
    model = BERNOULLI
    params = random_params(model, key)
    x = binary_batch(1, 4)
    algorithms = {
        "analytic": vae(model), "monte_carlo": vae(model, kl="monte_carlo"), "iwae": iwae(model, 3)
    }

    @jax.jit
    def gradients(params):
        return {
            name: jax.grad(lambda p: a.phases[0].loss(p, key, {"x": x})[0])(params)
            for name, a in algorithms.items()
        }

    grads = gradients(params)
    for name, g in grads.items():
        for group in ("theta", "eta"):
            for path, leaf in jax.tree_util.tree_leaves_with_path(g[group]):
                assert float(jnp.linalg.norm(leaf)) > 0, (name, group, jax.tree_util.keystr(path))


@pytest.mark.parametrize(
    "likelihood, make",
    [
        ("bernoulli", lambda m: vae(m, n_samples=2)),
        pytest.param("gaussian", lambda m: vae(m, kl="monte_carlo"), marks=pytest.mark.slow),
        pytest.param("bernoulli", lambda m: iwae(m, 3), marks=pytest.mark.slow),
    ],
    ids=["vae-analytic-bernoulli", "vae-monte-carlo-gaussian", "iwae-bernoulli"],
)
def test_loss_gradients_match_finite_differences(key, likelihood, make):
    """Reverse-mode gradients vs central differences, in float64, on a 3-3-2 network."""
    with jax.enable_x64(True):
        model = vae_model(3, 2, hidden=(3,), activation="tanh", likelihood=likelihood)
        algorithm = make(model)
        params = random_params(model, key, jnp.float64)
        x = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], jnp.float64)
        loss_key = jax.random.fold_in(key, 5)
        loss = jax.jit(lambda p: algorithm.phases[0].loss(p, loss_key, {"x": x})[0])
        check_grads(loss, (params,), order=1, modes=("rev",), eps=1e-5, atol=1e-6, rtol=1e-5)


def test_jitted_loss_traces_once(key):
    loss = vae(BERNOULLI).phases[0].loss

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, key, batch):
        return loss(params, key, batch)

    params = random_params(BERNOULLI, key)
    for i in range(3):
        step(params, jax.random.fold_in(key, 10 + i), {"x": binary_batch(i, 4)})


# ---------------------------------------------------------------------------------------------
# Architectures and errors


def test_pytorch_and_iwae_architectures_are_expressible(key):
    def kernels(model, group, net):
        shapes = jax.eval_shape(vae(model).init, key)[group][net]
        return [shapes[f"linear{i}"]["kernel"].shape for i in range(len(shapes))]

    pytorch = vae_model(784, 20, hidden=(400,), activation="relu")
    assert kernels(pytorch, "eta", "encoder") == [(784, 400), (400, 40)]
    assert kernels(pytorch, "theta", "decoder") == [(20, 400), (400, 784)]
    paper = vae_model(784, 50, hidden=(200, 200), activation="tanh")
    assert kernels(paper, "eta", "encoder") == [(784, 200), (200, 200), (200, 100)]
    assert kernels(paper, "theta", "decoder") == [(50, 200), (200, 200), (200, 784)]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"data_dim": 0}, r"data_dim: expected a positive int, got 0"),
        ({"data_dim": 4, "latent_dim": 2.5}, r"latent_dim: expected a positive int"),
        ({"data_dim": 4, "hidden": (8, 0)}, r"hidden: expected a sequence of positive ints"),
        ({"data_dim": 4, "likelihood": "poisson"}, r"likelihood: expected one of .*'poisson'"),
        ({"data_dim": 4, "activation": "swish"}, r"activation: expected one of .*'swish'"),
        ({"data_dim": 4, "observation_scale": 0.1}, r"observation_scale: expected None"),
        (
            {"data_dim": 4, "likelihood": "gaussian", "observation_scale": -1.0},
            r"observation_scale: expected a positive float",
        ),
    ],
)
def test_bad_model_config_raises(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        vae_model(**kwargs)


def test_bad_algorithm_options_raise():
    expected = r"kl: expected one of \['analytic', 'monte_carlo'\], got 'exact'"
    with pytest.raises(ConfigError, match=expected):
        vae(BERNOULLI, kl="exact")
    with pytest.raises(ConfigError, match=r"n_samples: expected a positive int, got 0"):
        vae(BERNOULLI, n_samples=0)
    with pytest.raises(ConfigError, match=r"k: expected a positive int, got 0"):
        iwae(BERNOULLI, 0)


def test_bad_values_raise(key):
    model = BERNOULLI
    params = jax.eval_shape(vae(model).init, key)  # shapes suffice: the checks run at trace time
    loss = vae(model).phases[0].loss
    with pytest.raises(DataError, match=r"batch\['x'\]: expected shape \(B, 5\)"):
        jax.eval_shape(loss, params, key, {"x": jnp.zeros((4, 3))})
    with pytest.raises(DataError, match=r"batch: expected a dict with key 'x'"):
        jax.eval_shape(loss, params, key, {"images": jnp.zeros((4, 5))})
    with pytest.raises(ConfigError, match=r"given: expected keys \[\] or \['z'\], got \['x'\]"):
        jax.eval_shape(model.joint.sample, params["theta"], key, {"x": jnp.zeros(5)})
    with pytest.raises(DataError, match=r"given\['x'\]: expected one example of shape \(5,\)"):
        jax.eval_shape(model.inference.sample, params["eta"], key, {"x": jnp.zeros((2, 5))})
    with pytest.raises(ConfigError, match=r"values: expected keys \[.x., .z.\], got \['x'\]"):
        jax.eval_shape(model.joint.log_prob, params["theta"], {"x": jnp.zeros(5)}, {})


def test_the_elbo_gradient_runs_each_network_once():
    # 784-400-20-style nets with one hidden layer each: 4 forward matmuls, 4 weight gradients and
    # 3 input gradients (none for the data) = 11 dots. Calling the encoder twice (once to draw,
    # once for the KL) compiles to 14: XLA does not merge the duplicated backward pass.
    import re

    model = vae_model(12, 3, hidden=(8,), activation="relu")
    algorithm = vae(model)
    params = jax.eval_shape(algorithm.init, jax.random.key(0))
    batch = {"x": jax.ShapeDtypeStruct((5, 12), jnp.float32)}

    def loss(params, key, batch):
        return algorithm.phases[0].loss(params, key, batch)[0]

    key = jax.eval_shape(lambda: jax.random.key(0))
    hlo = jax.jit(jax.grad(loss)).lower(params, key, batch).compile().as_text()
    assert len(re.findall(r"\bdot\(", hlo)) == 11
    # One draw per example leaves no [B, 1, ...] sample axis: with it XLA transposed activations
    # [B, 1, H] for the weight gradients (the step read 1.2 MB more at 784-400-20, batch 128).
    assert not re.findall(r"f32\[5,1,\d+\]", hlo)


def test_the_metrics_cost_no_second_pass_over_the_reconstruction():
    # The metrics are means over the batch of per-example terms of the loss. Averaged one by one,
    # XLA merged the mean of the reconstruction with its sum over pixels into a reduction of its
    # own and computed the [B, D] summands again (+0.5 MFLOP per step at 784-400-20, batch 128);
    # averaged together (the compiler's _batch_mean), the step costs what the loss alone costs.
    model = vae_model(12, 3, hidden=(8,), activation="relu")
    loss = vae(model).phases[0].loss
    params = jax.eval_shape(vae(model).init, jax.random.key(0))
    batch = {"x": jax.ShapeDtypeStruct((5, 12), jnp.float32)}
    key = jax.eval_shape(lambda: jax.random.key(0))

    def flops(fn):
        cost = jax.jit(fn).lower(params, key, batch).compile().cost_analysis()
        return (cost[0] if isinstance(cost, list) else cost)["flops"]

    with_metrics = flops(jax.value_and_grad(loss, has_aux=True))
    loss_only = flops(jax.value_and_grad(lambda p, k, b: loss(p, k, b)[0]))
    assert with_metrics == pytest.approx(loss_only, rel=1e-3)
