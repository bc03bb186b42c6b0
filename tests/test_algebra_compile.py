"""compile(expr, bindings): the compiled losses against independent oracles.

Oracles: the hand-written VAE loss of issue [1] (same keys: equal to float rounding); the exact
enumerations of :mod:`unigen.algebra.verify` (float64, written directly in jnp, not through the
algebra); closed forms (Gaussian moments, Bernoulli KL/JSD); and, for the Monte Carlo estimators,
a mean over many keys within 4 standard errors of the exact value.
"""

from __future__ import annotations

import collections
import importlib
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest

from unigen.algebra import E, H, JSD, KL, dist, log, reverse, sg
from unigen.algebra.compiler import compile, data, explicit, implicit, uniform_indicator
from unigen.errors import ConfigError, DataError, UnigenError
from unigen.models.vae import vae_model

vae_module = importlib.import_module("unigen.algorithms.vae")
verify = importlib.import_module("unigen.algebra.verify")

# The VAE's own distributions (distributions are distinct objects: the objectives of
# unigen.algorithms.vae are bound through these very ones).
p_data, decoder, encoder, prior = (vae_module.P_DATA, vae_module.DECODER, vae_module.ENCODER,
                                   vae_module.PRIOR)
p_y = dist("p", over="y")
generator = dist("p", over="x", given="y", params="theta")
discriminator = dist("q", over="y", given="x", params="phi")


def _loss(expr, bindings, params, key=jax.random.key(0), batch=None, **options):
    loss = compile(expr, bindings, maximize=False, **options)
    return jax.jit(loss)(params, key, batch if batch is not None else {})


# ---------------------------------------------------------------------------------------------
# The VAE: the compiled loss is the hand-written one


@pytest.mark.parametrize("kl", ["analytic", "monte_carlo"])
@pytest.mark.parametrize("n_samples", [1, 3])
def test_compiled_vae_equals_the_hand_written_loss(key, kl, n_samples):
    model = vae_model(12, 3, hidden=(8,))
    algorithm = vae_module.vae(model, kl=kl, n_samples=n_samples)
    reference = vae_module.reference_loss(model, kl=kl, n_samples=n_samples)
    params = algorithm.init(key)
    x = (jax.random.uniform(jax.random.fold_in(key, 1), (7, 12)) > 0.5).astype(jnp.float32)
    loss_key = jax.random.fold_in(key, 2)
    compiled = algorithm.phases[0].loss
    value, metrics = jax.jit(compiled)(params, loss_key, {"x": x})
    expected, expected_metrics = jax.jit(reference)(params, loss_key, {"x": x})
    assert set(metrics) == set(expected_metrics) == {"loss", "elbo", "kl", "reconstruction"}
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    for name in expected_metrics:
        np.testing.assert_allclose(metrics[name], expected_metrics[name], rtol=1e-6, atol=1e-6)
    grad = jax.grad(lambda p: compiled(p, loss_key, {"x": x})[0])(params)
    expected_grad = jax.grad(lambda p: reference(p, loss_key, {"x": x})[0])(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 grad, expected_grad)

    # In float64 the two agree to 1e-10: the same estimator, summed in a different order.
    with jax.enable_x64(True):
        params64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x64 = x.astype(jnp.float64)
        value64, _ = jax.jit(compiled)(params64, loss_key, {"x": x64})
        expected64, _ = jax.jit(reference)(params64, loss_key, {"x": x64})
        assert value64.dtype == jnp.float64
        assert abs(float(value64) - float(expected64)) < 1e-10


def test_compiled_vae_gradient_is_the_same_program_as_the_hand_written_one(key):
    """The distribution cache builds the encoder once for E_q and KL(q ‖ p): XLA compiles the
    compiled loss's gradient to the hand loss's program — the same 11 matmuls (4 forward, 7
    backward; tests/test_vae.py counts them), the same instruction counts, FLOPs and bytes."""
    model = vae_model(16, 4, hidden=(8,))
    params = vae_module.init_params(model, key)
    x = jnp.zeros((5, 16), jnp.float32)

    def program(loss):
        grad = jax.jit(jax.grad(lambda p: loss(p, key, {"x": x})[0]))
        compiled = grad.lower(params).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        ops = collections.Counter(re.findall(r"= \S+ (\w[\w-]*)\(", compiled.as_text()))
        return ops, cost.get("flops"), cost.get("bytes accessed")

    ops, flops, memory = program(vae_module.vae(model).phases[0].loss)
    reference_ops, reference_flops, reference_memory = program(vae_module.reference_loss(model))
    assert ops["dot"] == reference_ops["dot"] == 11
    assert ops == reference_ops
    assert flops == reference_flops and memory == reference_memory


@pytest.mark.parametrize("k", [1, 4])
def test_compiled_iwae_equals_the_hand_written_loss_with_fewer_matmuls(key, k):
    """IWAE through compile: the same value and gradient as the hand loss for the same key, and
    the encoder built once per example (the hand loss calls it for the draws and again for
    log q: 14 matmuls in the gradient; compiled: 11)."""
    iwae_module = importlib.import_module("unigen.algorithms.iwae")
    model = vae_model(12, 3, hidden=(8,))
    algorithm = iwae_module.iwae(model, k)
    reference = iwae_module.reference_loss(model, k)
    params = algorithm.init(key)
    batch = {"x": (jax.random.uniform(jax.random.fold_in(key, 1), (5, 12)) > 0.5).astype(jnp.float32)}
    compiled = algorithm.phases[0].loss
    value, metrics = jax.jit(compiled)(params, key, batch)
    expected, expected_metrics = jax.jit(reference)(params, key, batch)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["iwae_bound"], expected_metrics["iwae_bound"], rtol=1e-6)
    grads = [jax.jit(jax.grad(lambda p, f=f: f(p, key, batch)[0]))(params) for f in (compiled, reference)]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), *grads)
    dots = [
        jax.jit(jax.grad(lambda p, f=f: f(p, key, batch)[0])).lower(params).compile().as_text().count(" dot(")
        for f in (compiled, reference)
    ]
    assert dots == [11, 14]


def test_vae_loss_refuses_a_bad_batch(key):
    model = vae_model(12, 3, hidden=(8,))
    algorithm = vae_module.vae(model)
    params = algorithm.init(key)
    with pytest.raises(DataError, match="batch"):
        algorithm.phases[0].loss(params, key, {"x": jnp.zeros((4, 11))})


# ---------------------------------------------------------------------------------------------
# Exact enumeration on the finite spaces of unigen.algebra.verify (float64)


def _categorical(table_fn):
    return explicit(lambda params, given: nd.CategoricalLogits(table_fn(params, given)))


FINITE = {
    p_data: _categorical(lambda p, g: p["data"]),
    decoder: _categorical(lambda p, g: p["theta"][g["z"]]),
    encoder: _categorical(lambda p, g: p["eta"][g["x"]]),
    prior: _categorical(lambda p, g: p["prior"]),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sizes", [{"x": 5, "z": 3}, {"x": 20, "z": 6}])
def test_enumerated_vae_objective_equals_the_exact_sum(seed, sizes):
    """Every sum enumerated (vmapped over the support: no binding fixes a value here)."""
    with jax.enable_x64(True):
        params = verify.latent_point(jax.random.key(seed), sizes)
        value, _ = _loss(vae_module.OBJECTIVE, FINITE, params)
        np.testing.assert_allclose(value, verify.vae_objective(params), rtol=1e-12, atol=1e-12)
        grad = jax.grad(lambda p: _loss(vae_module.OBJECTIVE, FINITE, p)[0])(params)
        expected = jax.grad(verify.vae_objective)(params)
        for group in ("theta", "eta"):
            np.testing.assert_allclose(grad[group], expected[group], rtol=1e-10, atol=1e-12)


def test_enumerated_wake_and_gan_discriminator_objectives(key):
    """The wake objective E_{q_η(z|x)p_data(x)}[log p_θ(x, z)] (a product expectation) and the
    sleep/GAN discriminator objective E_{p(y)p_θ(x|y)}[log q_φ(y|x)] with p_θ(x|y=0) the model
    marginal and p_θ(x|y=1) = p_data bound separately (a fixed-value binding per branch)."""
    with jax.enable_x64(True):
        params = verify.latent_point(key, {"x": 6, "z": 4})
        wake = E(encoder * p_data, log(decoder) + log(prior))
        value, _ = _loss(wake, FINITE, params)
        np.testing.assert_allclose(value, verify.wake_objective(params), rtol=1e-12)

        half = explicit(lambda p, g: nd.BernoulliProbs(jnp.asarray(0.5, jnp.float64)))
        gan = {
            p_y: half,
            generator.fixed(y=0): _categorical(lambda p, g: verify.log_marginal(p)),
            generator.fixed(y=1): _categorical(lambda p, g: p["data"]),
            discriminator: explicit(lambda p, g: nd.BernoulliLogits(p["phi"][g["x"]])),
        }
        sleep = E(p_y * generator, log(discriminator))
        value, _ = _loss(sleep, gan, params)
        np.testing.assert_allclose(
            value, verify.wake_sleep_left(params)[1], rtol=1e-12, atol=1e-12
        )
        # The reversed discriminator q^r(y|x) = q(1 − y|x) uses q's binding.
        flipped = {**params, "phi": -params["phi"]}
        reversed_value, _ = _loss(E(p_y * generator, log(reverse(discriminator))), gan, params)
        np.testing.assert_allclose(reversed_value, _loss(sleep, gan, flipped)[0], rtol=1e-12)


def test_the_uniform_indicator_is_half_and_half_in_the_dtype_of_its_group(key):
    """``uniform_indicator(group)`` (the p(y) of GAN, ADA, AAE, AAVAE and VAE/GAN): log p(y) = −log 2
    for y = 0 and 1 (closed form), in the dtype of the group's parameters, and the enumerated GAN
    discriminator objective bound through it equals the one bound to a hand-written Bernoulli(1/2)."""
    binding = uniform_indicator("phi")
    for dtype in (jnp.float32, jnp.float64):
        with jax.enable_x64(dtype == jnp.float64):
            prior = binding.fn({"phi": {"w": jnp.ones((2, 3), dtype)}}, {})
            values = prior.log_prob(jnp.asarray([0.0, 1.0], dtype))
            assert values.dtype == dtype
            np.testing.assert_allclose(values, [-math.log(2.0)] * 2, rtol=1e-7)
    with jax.enable_x64(True):
        params = verify.latent_point(key, {"x": 6, "z": 4})
        gan = {
            generator.fixed(y=0): _categorical(lambda p, g: verify.log_marginal(p)),
            generator.fixed(y=1): _categorical(lambda p, g: p["data"]),
            discriminator: explicit(lambda p, g: nd.BernoulliLogits(p["phi"][g["x"]])),
        }
        half = explicit(lambda p, g: nd.BernoulliProbs(jnp.asarray(0.5, jnp.float64)))
        sleep = E(p_y * generator, log(discriminator))
        value, _ = _loss(sleep, {**gan, p_y: binding}, params)
        np.testing.assert_allclose(value, _loss(sleep, {**gan, p_y: half}, params)[0], rtol=1e-12)
    with pytest.raises(ConfigError, match=r"^group: got 3, expected a parameter group name such as 'phi'$"):
        uniform_indicator(3)


def test_log_at_a_fixed_value_if_supported(key):
    """``log q_φ(y=1|x)`` (the classic GAN's log D(x)), when the expression language has it."""
    try:
        node = log(discriminator, y=1)  # type: ignore[call-arg]
    except TypeError:
        pytest.skip("log(d, y=1) not in the expression language yet")
    with jax.enable_x64(True):
        params = verify.latent_point(key, {"x": 5, "z": 2})
        bindings = {
            p_data: _categorical(lambda p, g: p["data"]),
            discriminator: explicit(lambda p, g: nd.BernoulliLogits(p["phi"][g["x"]])),
        }
        value, _ = _loss(E(p_data, node), bindings, params)
        expected = jnp.sum(jax.nn.softmax(params["data"]) * jax.nn.log_sigmoid(params["phi"]))
        np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_jsd_kl_and_entropy_of_bernoullis_are_exact():
    """Enumerated over y ∈ {0, 1}: closed forms for two Bernoullis."""
    a, b = dist("q", over="y"), dist("p", over="y")
    pa, pb = 0.2, 0.7
    bindings = {
        a: explicit(lambda p, g: nd.BernoulliProbs(jnp.asarray(pa))),
        b: explicit(lambda p, g: nd.BernoulliProbs(jnp.asarray(pb))),
    }

    def kl_(p, q):
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    m = 0.5 * (pa + pb)
    value, _ = _loss(JSD(a, b), bindings, {})
    np.testing.assert_allclose(value, 0.5 * kl_(pa, m) + 0.5 * kl_(pb, m), rtol=1e-6)
    value, _ = _loss(KL(a, b), bindings, {}, kl="monte_carlo")  # enumerated: exact
    np.testing.assert_allclose(value, kl_(pa, pb), rtol=1e-6)
    value, _ = _loss(H(a) + sg(KL(b, a)), bindings, {})
    expected = -(pa * math.log(pa) + (1 - pa) * math.log(1 - pa)) + kl_(pb, pa)
    np.testing.assert_allclose(value, expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Monte Carlo estimators: unbiased within 4 standard errors


def _replicas(loss, params, n):
    keys = jax.random.split(jax.random.key(7), n)
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(lambda p, k: loss(p, k, {})[0]),
                                     in_axes=(None, 0)))(params, keys)
    return values, grads


def _within(samples, exact, sigmas=4.0):
    samples = np.asarray(samples, np.float64)
    error = abs(samples.mean() - exact)
    standard_error = samples.std(ddof=1) / math.sqrt(len(samples))
    assert error < sigmas * standard_error + 1e-6, (samples.mean(), exact, standard_error)


def test_reparameterized_gaussian_expectation_and_gradient():
    r"""E_{N(μ, σ²)}[z²] = μ² + σ²; ∂/∂μ = 2μ, ∂/∂σ = 2σ; one draw per replica."""
    q = dist("q", over="z", params="eta")
    square = dist("p", over="x", given="z")  # log p(x|z) := z² through a custom binding

    class Square(nd.Distribution):
        def __init__(self, z):
            self.z = z
            super().__init__(batch_shape=(), event_shape=())

        def log_prob(self, value):
            return self.z**2

    bindings = {
        q: explicit(lambda p, g: nd.Normal(p["eta"]["mu"], p["eta"]["sigma"])),
        square: explicit(lambda p, g: Square(g["z"])),
    }
    data_binding = {**bindings, p_data: data("x")}
    expr = E(p_data, E(q, log(square)))
    loss = compile(expr, data_binding, maximize=False)
    params = {"eta": {"mu": jnp.float32(0.7), "sigma": jnp.float32(1.3)}}
    keys = jax.random.split(jax.random.key(3), 4000)
    batch = {"x": jnp.zeros((1, 1), jnp.float32)}
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(lambda p, k: loss(p, k, batch)[0]),
                                     in_axes=(None, 0)))(params, keys)
    _within(values, 0.7**2 + 1.3**2)
    _within(grads["eta"]["mu"], 2 * 0.7)
    _within(grads["eta"]["sigma"], 2 * 1.3)


def test_score_function_gradient_is_unbiased_against_enumeration():
    """A vector of 3 Bernoulli units, f(z) = (w·z − 1)²: the score-function estimator (with the
    leave-one-out baseline over 4 draws) averages to the exact gradient by enumeration."""
    q = dist("q", over="h", params="eta")
    f = dist("p", over="x", given="h")
    w = jnp.asarray([1.0, -2.0, 0.5])

    class Quadratic(nd.Distribution):
        def __init__(self, h):
            self.h = h
            super().__init__(batch_shape=(), event_shape=())

        def log_prob(self, value):
            return (jnp.dot(w, self.h) - 1.0) ** 2

    bindings = {
        q: explicit(lambda p, g: nd.BernoulliLogits(p["eta"]).to_event(1)),
        f: explicit(lambda p, g: Quadratic(g["h"])),
    }
    params = {"eta": jnp.asarray([0.3, -0.8, 1.1])}
    expr = E(p_data, E(q, log(f)))
    batch = {"x": jnp.zeros((1, 1))}
    exact_value, _ = _loss(expr, bindings, params, batch=batch, estimator="enumerate")
    exact_grad = jax.grad(
        lambda p: _loss(expr, bindings, p, batch=batch, estimator="enumerate")[0]
    )(params)
    probs = jax.nn.sigmoid(params["eta"])
    states = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], np.float32)
    weights = np.prod(np.where(states == 1, probs, 1 - probs), axis=1)
    np.testing.assert_allclose(exact_value, np.sum(weights * (states @ np.asarray(w) - 1) ** 2),
                               rtol=1e-5)
    loss = compile(expr, bindings, estimator="score", n_samples=4, maximize=False)
    keys = jax.random.split(jax.random.key(11), 20000)
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(lambda p, k: loss(p, k, batch)[0]),
                                     in_axes=(None, 0)))(params, keys)
    _within(values, float(exact_value))
    for i in range(3):
        _within(grads["eta"][:, i], float(exact_grad["eta"][i]))


def test_monte_carlo_kl_is_unbiased_and_shares_the_draws():
    """kl="monte_carlo": the mean of many estimates is the closed form; inside a sum, the KL's
    draws are the expectation's draws (common random numbers), so E_q[log q − log p] − KL_MC is
    exactly zero for every key."""
    q = dist("q", over="z", params="eta")
    p = dist("p", over="z")
    bindings = {
        q: explicit(lambda params, g: nd.Normal(params["eta"], 0.5).to_event(1)),
        p: explicit(lambda params, g: nd.Normal(jnp.zeros(2), 1.0).to_event(1)),
    }
    params = {"eta": jnp.asarray([0.4, -1.0])}
    exact, _ = _loss(KL(q, p), bindings, params)
    expected = float(jnp.sum(0.5 * (0.25 + params["eta"] ** 2 - 1) - jnp.log(0.5)))
    np.testing.assert_allclose(exact, expected, rtol=1e-6)
    batch = {"x": jnp.zeros((2, 1))}
    loss = compile(KL(q, p), bindings, kl="monte_carlo", maximize=False)
    keys = jax.random.split(jax.random.key(5), 5000)
    values = jax.jit(jax.vmap(lambda k: loss(params, k, batch)[0]))(keys)
    _within(values, expected)
    same = compile(E(q, log(q) - log(p)) - KL(q, p), bindings, kl="monte_carlo", maximize=False)
    zeros = jax.jit(jax.vmap(lambda k: same(params, k, batch)[0]))(keys[:50])
    np.testing.assert_allclose(zeros, 0.0, atol=1e-6)


def test_implicit_generator_draws_batch_size_samples_pathwise(key):
    """A GAN half, E_{p_θ(x|y=0)}[log q_φ(y=0|x)] with x = θ + ε: one draw per batch row,
    pathwise gradient; compared with the same draws computed by hand."""
    fake = dist("p", over="x", given="y=0", params="theta")
    d = dist("q", over="y", given="x", params="phi")
    q0 = dist("q", over="y")  # the indicator fixed to 0 by enumerating a point mass

    bindings = {
        fake: implicit(lambda p, k, g: p["theta"] + jax.random.normal(k, ())),
        d: explicit(lambda p, g: nd.BernoulliLogits(p["phi"] * g["x"])),
        q0: explicit(lambda p, g: nd.BernoulliProbs(jnp.asarray(0.0))),
    }
    expr = E(fake, E(q0, log(d)))
    params = {"theta": jnp.float32(0.3), "phi": jnp.float32(-1.5)}
    batch = {"x": jnp.zeros((6, 1))}
    loss = compile(expr, bindings, maximize=False)

    def by_hand(p, k):
        keys = jax.random.split(k, 6)
        x = p["theta"] + jax.vmap(lambda kk: jax.random.normal(kk, ()))(keys)
        return jnp.mean(jax.nn.log_sigmoid(-p["phi"] * x))

    value, _ = jax.jit(loss)(params, key, batch)
    np.testing.assert_allclose(value, by_hand(params, key), rtol=1e-6)
    grad = jax.grad(lambda p: loss(p, key, batch)[0])(params)
    expected = jax.grad(by_hand)(params, key)
    np.testing.assert_allclose(grad["theta"], expected["theta"], rtol=1e-5)
    np.testing.assert_allclose(grad["phi"], expected["phi"], rtol=1e-5)


def test_nested_model_expectations_draw_one_dream_per_outer_draw(key):
    """The sleep phase E_{p(h)p_θ(x|h)}[log q_λ(h|x)]: B draws of h (the batch size), and for
    each one draw of x (n_samples), not B: compared with the same draws made by hand."""
    h_prior = dist("p", over="h")
    dream = dist("p", over="x", given="h", params="theta")
    recognition = dist("q", over="h", given="x", params="lambda")
    bindings = {
        h_prior: explicit(lambda p, g: nd.Normal(0.0, 1.0)),
        dream: implicit(lambda p, k, g: p["theta"] * g["h"] + jax.random.normal(k, ())),
        recognition: explicit(lambda p, g: nd.Normal(p["lambda"] * g["x"], 1.0)),
    }
    params = {"theta": jnp.float32(0.8), "lambda": jnp.float32(0.3)}
    batch = {"x": jnp.zeros((5, 1))}
    loss = compile(E(h_prior * dream, log(recognition)), bindings, maximize=False)

    def by_hand(p, k):
        keys = jax.random.split(k, 5)
        h = jax.vmap(lambda kk: jax.random.normal(kk, ()))(keys)
        inner = jax.vmap(lambda kk: jax.random.split(jax.random.fold_in(kk, 1), 1)[0])(keys)
        x = p["theta"] * h + jax.vmap(lambda kk: jax.random.normal(kk, ()))(inner)
        return jnp.mean(jax.scipy.stats.norm.logpdf(h, p["lambda"] * x, 1.0))

    value, _ = jax.jit(loss)(params, key, batch)
    np.testing.assert_allclose(value, by_hand(params, key), rtol=1e-6)
    grad = jax.grad(lambda p: loss(p, key, batch)[0])(params)
    expected = jax.grad(by_hand)(params, key)
    for group in params:
        np.testing.assert_allclose(grad[group], expected[group], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Errors: named, at compile time where possible


def test_compile_errors_name_what_is_wrong():
    bindings = {encoder: explicit(lambda p, g: None)}
    with pytest.raises(ConfigError, match=r"no binding for .*p_θ\(x\|z\)"):
        compile(vae_module.OBJECTIVE, bindings)
    full = vae_module.bindings(vae_model(4, 2, hidden=()))
    with pytest.raises(ConfigError, match="estimator"):
        compile(vae_module.OBJECTIVE, full, estimator="magic")
    with pytest.raises(ConfigError, match="n_samples"):
        compile(vae_module.OBJECTIVE, full, n_samples=0)
    with pytest.raises(ConfigError, match="kl"):
        compile(vae_module.OBJECTIVE, full, kl="analytic-please")
    with pytest.raises(UnigenError, match=r"metrics\['h'\]: got .*expected a scalar term"):
        compile(vae_module.OBJECTIVE, full, metrics={"h": encoder})
    with pytest.raises(ConfigError, match="reversed"):
        compile(vae_module.OBJECTIVE, {**full, reverse(discriminator): lambda p, g: None})
    with pytest.raises(UnigenError, match="scalar term"):
        compile(encoder, full)  # type: ignore[arg-type]


def test_log_density_of_an_implicit_distribution_is_refused(key):
    fake = dist("p", over="x", params="theta")
    bindings = {fake: implicit(lambda p, k, g: p["theta"])}
    loss = compile(E(fake, log(fake)), bindings)
    with pytest.raises(UnigenError, match="no density"):
        loss({"theta": jnp.float32(0.0)}, key, {"x": jnp.zeros((2, 1))})


def test_compiled_loss_traces_once(key):
    """A jitted step that retraces every call is a bug: same shapes, one trace."""
    import chex

    model = vae_model(6, 2, hidden=(4,))
    algorithm = vae_module.vae(model)
    params = algorithm.init(key)
    loss = chex.assert_max_traces(algorithm.phases[0].loss, n=1)
    step = jax.jit(loss)
    for i in range(3):
        step(params, jax.random.fold_in(key, i), {"x": jnp.full((3, 6), 0.5 * (i % 2))})
