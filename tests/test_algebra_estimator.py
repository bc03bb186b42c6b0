"""Estimator objects in compile (unigen.algebra.estimator), against hand-written oracles.

The model: q_φ(z|x), three independent Bernoulli units with log-odds W x + c, a body
f(z) = a·z + sg-free in φ, a batch of 4 examples, S = 3 draws each. The oracles recompute the
surrogate by hand from the same draws (the compiler's key convention: example b gets
split(key, B)[b], draw s split(·, S)[s]), and the binary-vector distribution is checked against
the enumeration of its 2^n states by NumPy.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as numpyro_dist
import pytest

from unigen import distributions
from unigen.algebra import E, Estimator, ScoreFunction, algorithm, compile, dist, log
from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.errors import ConfigError

B, S, D, H = 4, 3, 2, 3
p_data = dist("p_data", over="x")
q = dist("q", over="z", given="x", params="phi")
r = dist("r", over="z", params="psi")  # r_ψ(z): the body's density, not q's parameters
OBJECTIVE = E(p_data, E(q, log(r)))


def _bindings():
    return {
        q: lambda params, given: distributions.bernoulli_logits(
            params["phi"]["w"] @ given["x"] + params["phi"]["c"]),
        r: lambda params, given: distributions.bernoulli_logits(params["psi"]),
    }


def _params():
    keys = jax.random.split(jax.random.key(0), 4)
    return {"phi": {"w": jax.random.normal(keys[0], (H, D)), "c": jax.random.normal(keys[1], (H,)),
                    "b": jax.random.normal(keys[2], (D,))},
            "psi": jax.random.normal(keys[3], (H,))}


def _learned(params, given):
    """NVIL's baseline b(x) = b · x (linear, so its gradient is simple to write)."""
    return params["phi"]["b"] @ given["x"]


BATCH = {"x": jax.random.normal(jax.random.key(1), (B, D))}


def _oracle(params, key, baseline, normalize=False):
    """The score-function loss with ``baseline``, by hand over the [B, S] draws."""
    phi, psi = params["phi"], params["psi"]
    x = BATCH["x"]
    logits = x @ phi["w"].T + phi["c"][None]  # [B, H]
    draw_keys = jax.vmap(lambda k: jax.random.split(k, S))(jax.random.split(key, B))  # [B, S]
    z = jax.vmap(jax.vmap(lambda k, l: distributions.bernoulli_logits(l).sample(k),
                          in_axes=(0, None)))(draw_keys, logits)
    z = jax.lax.stop_gradient(z)  # [B, S, H]
    log_q = jnp.sum(z * logits[:, None] - jax.nn.softplus(logits)[:, None], axis=-1)
    f = jnp.sum(z * psi[None, None] - jax.nn.softplus(psi)[None, None], axis=-1)  # log r_ψ(z), [B, S]
    signal = jax.lax.stop_gradient(f)
    others = lambda v: (jnp.sum(v) - v) / (v.size - 1)  # noqa: E731
    penalty = 0.0
    if baseline == "none":
        centred = signal
    elif baseline == "mean":
        centred = signal - others(signal)
    else:
        learned = x @ phi["b"]  # [B]
        residual = signal - jax.lax.stop_gradient(learned)[:, None]
        mean = others(residual)
        centred = residual - mean
        if normalize:
            centred = centred / jnp.maximum(1.0, jnp.std(centred))
        penalty = jnp.mean((signal - jax.lax.stop_gradient(mean) - learned[:, None]) ** 2)
    score = jax.lax.stop_gradient(centred) * (log_q - jax.lax.stop_gradient(log_q))
    return -jnp.mean(f + score) + penalty


@pytest.mark.parametrize(("baseline", "normalize"), [("mean", False), ("nvil", True)])
def test_score_function_estimator_equals_the_hand_written_surrogate(baseline, normalize):
    """Value and gradient (φ: the score term and NVIL's baseline; ψ: the body) equal the oracle;
    the leave-one-out and the normalization run over the whole batch (B·S draws) through the
    data expectation's vmap axis. (No baseline, and NVIL without normalization, are checked
    against variational EM's hand-written E-step in test_hand_losses.py.)"""
    estimator = ScoreFunction(baseline, learned=_learned if baseline == "nvil" else None,
                              normalize=normalize)
    loss = compile(OBJECTIVE, _bindings(), estimator={q: estimator}, n_samples=S)
    params, key = _params(), jax.random.key(7)
    (value, metrics), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, key, BATCH)
    expected, expected_grad = jax.jit(jax.value_and_grad(_oracle), static_argnums=(2, 3))(
        params, key, baseline, normalize)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["loss"], value, rtol=0)
    assert ("baseline_loss" in metrics) == (baseline == "nvil")
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(grad),
                                 jax.tree.leaves(expected_grad)):
        assert float(jnp.max(jnp.abs(want))) > 0 or "b" in str(path), path
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(path))


def test_an_auxiliary_loss_is_minimized_whatever_the_objectives_sign():
    """Maximizing E[f] or minimizing it: the loss is ∓E[f] + baseline_loss, so the two losses
    sum to twice the baseline loss, and the gradient in the baseline's parameters is the same
    (+∇ of the regression loss) in both."""
    estimator = ScoreFunction("nvil", learned=_learned)
    up = compile(OBJECTIVE, _bindings(), estimator={q: estimator}, n_samples=S)
    down = compile(OBJECTIVE, _bindings(), estimator={q: estimator}, n_samples=S, maximize=False)
    params, key = _params(), jax.random.key(3)
    (a, ma), ga = jax.jit(jax.value_and_grad(up, has_aux=True))(params, key, BATCH)
    (b, mb), gb = jax.jit(jax.value_and_grad(down, has_aux=True))(params, key, BATCH)
    np.testing.assert_allclose(ma["baseline_loss"], mb["baseline_loss"], rtol=0)
    np.testing.assert_allclose(a + b, 2 * ma["baseline_loss"], rtol=1e-6)
    assert float(jnp.max(jnp.abs(ga["phi"]["b"]))) > 0
    np.testing.assert_allclose(ga["phi"]["b"], gb["phi"]["b"], rtol=1e-6)
    np.testing.assert_allclose(ga["psi"], -gb["psi"], rtol=1e-6)  # the objective's part flips


class _BernoulliOnly(Estimator):
    name = "a Bernoulli-only estimator"
    families = (numpyro_dist.Independent,)

    def check(self, dist_, built):
        super().check(dist_, built)
        base = built.base_dist
        if not isinstance(base, (numpyro_dist.BernoulliLogits, numpyro_dist.BernoulliProbs)):
            raise ConfigError(f"estimator for {dist_}: {self.name} got {type(base).__name__}, "
                              "expected Bernoulli units")

    def __call__(self, built, f, key, n, context):  # pragma: no cover - refused before
        raise AssertionError("not reached")


def test_an_estimator_refuses_a_distribution_it_does_not_apply_to_in_one_line():
    gaussian = {q: lambda params, given: distributions.diagonal_normal(
        params["phi"]["w"] @ given["x"], 1.0), r: _bindings()[r]}
    loss = compile(OBJECTIVE, gaussian, estimator={q: _BernoulliOnly()}, n_samples=S)
    with pytest.raises(ConfigError) as error:
        loss(_params(), jax.random.key(0), BATCH)
    message = str(error.value).splitlines()[0]
    assert message == ("estimator for q_φ(z|x): a Bernoulli-only estimator got Normal, expected "
                       "Bernoulli units")
    scalar = {q: lambda params, given: numpyro_dist.Normal(0.0, 1.0), r: _bindings()[r]}
    with pytest.raises(ConfigError) as error:  # the default check(), from ``families``
        compile(OBJECTIVE, scalar, estimator={q: _BernoulliOnly()})(_params(), jax.random.key(0),
                                                                     BATCH)
    # (JAX may append a note on its traceback filtering after the first line)
    assert str(error.value).splitlines()[0] == (
        "estimator for q_φ(z|x): a Bernoulli-only estimator got a Normal, expected one of "
        "Independent")


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ScoreFunction("ema"), "baseline: got 'ema', expected one of ['none', 'mean', 'nvil']"),
    (lambda: ScoreFunction("nvil"), "learned: got None with baseline 'nvil', expected a function"),
    (lambda: ScoreFunction("mean", normalize=True), "normalize: got True with baseline 'mean'"),
    (lambda: compile(OBJECTIVE, _bindings(), estimator={q: object()}),
     "estimator[q_φ(z|x)]: got <object object"),
])
def test_bad_estimators_are_refused_in_one_line(call, message):
    with pytest.raises(ConfigError) as error:
        call()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_algorithm_takes_estimators_per_phase_and_refuses_unknown_phases():
    declared = Declaration("toy", "Toy", "§0", (PhaseObjective("fit", "phi", OBJECTIVE, "max"),),
                           figure5=None)
    init = lambda key: _params()  # noqa: E731
    built = algorithm(declared, _bindings(), init, estimator={"fit": {q: ScoreFunction("mean")}},
                      n_samples=S)
    direct = compile(OBJECTIVE, _bindings(), estimator={q: ScoreFunction("mean")}, n_samples=S)
    key = jax.random.key(5)
    np.testing.assert_allclose(jax.jit(built.phases[0].loss)(_params(), key, BATCH)[0],
                               jax.jit(direct)(_params(), key, BATCH)[0], rtol=0)
    with pytest.raises(ConfigError, match=r"^estimator of toy: got phases \['wake'\], expected "
                                          r"some of \['fit'\]$"):
        algorithm(declared, _bindings(), init, estimator={"wake": "score"})


def test_binary_vectors_are_a_categorical_over_every_state_and_compile_enumerates_them():
    logits = jax.random.normal(jax.random.key(2), (2 ** H,))
    states = np.array(list(itertools.product((0.0, 1.0), repeat=H)), np.float32)
    probs = np.exp(np.asarray(logits, np.float64))
    probs /= probs.sum()
    d = distributions.BinaryVectors(logits)
    np.testing.assert_array_equal(d.enumerate_support(), states)
    np.testing.assert_allclose(np.exp(jax.jit(jax.vmap(d.log_prob))(jnp.asarray(states))), probs,
                               rtol=1e-5)
    exact = dist("q_*", over="z")
    psi = jax.random.normal(jax.random.key(4), (H,))
    loss = compile(E(exact, log(r)), {exact: lambda params, given: distributions.BinaryVectors(logits),
                                      r: _bindings()[r]})
    f = (states * np.asarray(psi, np.float64) - np.logaddexp(0, np.asarray(psi, np.float64))).sum(-1)
    value = jax.jit(loss)({"psi": psi}, jax.random.key(0), BATCH)[0]
    np.testing.assert_allclose(-value, probs @ f, rtol=1e-5)
    with pytest.raises(ConfigError, match=r"^logits: got shape \(6,\), expected \[2\^n\]"):
        distributions.BinaryVectors(jnp.zeros(6))
