"""The identities as printable rewrites (issue part 5): names, senses, statements, derivations.

Every derivation step is evaluated here by an independent, exact evaluator of expressions on
finite spaces (plain NumPy loops over x ∈ {0..K−1}, z ∈ {0..M−1}, y ∈ {0, 1}, written for this
test and sharing no code with :mod:`unigen.algebra.verify`): consecutive steps related by ``=``
must have equal values, and each identity's ``left + constant = right`` must hold in value where
its sense says so. Gradient claims are verify's job (tests/test_algebra_verify.py); here the
constants are checked not to depend on the groups whose gradients are claimed equal.
"""

import importlib
import itertools
import math

import numpy as np
import pytest

from unigen.algebra import identities as ids
from unigen.algebra.expr import (
    Constant,
    Dist,
    Entropy,
    Expectation,
    JSDivergence,
    KLDivergence,
    Log,
    Neg,
    Product,
    Scale,
    StopGradient,
    Sum,
    free_params,
)
from unigen.algorithms.gan import DISCRIMINATOR as GAN_DISCRIMINATOR
from unigen.algorithms.wake_sleep import SLEEP, WAKE

verify = importlib.import_module("unigen.algebra.verify")  # the module, not the function

K, M = 4, 3
SIZES = {"x": K, "z": M, "y": 2}
COMPONENTS = {"elbo-decomposition": 2, "lemma1": 1, "lemma2": 1, "wake-sleep": 2}


# --- an exact evaluator of expressions on finite spaces (test oracle) -----------------------


class World:
    """Densities of the named distributions, as functions of an assignment of the variables."""

    def __init__(self, densities, symbols=None):
        self.densities = densities  # (name, params, over names, given names) -> f(assignment)
        self.symbols = symbols or {}  # symbolic constant name -> f(assignment)

    def density(self, d, a):
        if isinstance(d, Product):
            return math.prod(self.density(f, a) for f in d.factors)
        a = {**a, **{v.name: v.value for v in d.given if v.value is not None}}
        if d.reversed:
            a = {**a, "y": 1 - a["y"]}
        key = (d.name, d.params, tuple(v.name for v in d.over), tuple(v.name for v in d.given))
        return self.densities[key](a)

    def support(self, d, a):
        names = sorted(d.over_names)
        for values in itertools.product(*(range(SIZES[n]) for n in names)):
            yield {**a, **dict(zip(names, values))}

    def value(self, node, a=None):
        a = a or {}
        if isinstance(node, Constant):
            return node.value if node.value is not None else self.symbols[node.name](a)
        if isinstance(node, Log):
            return math.log(self.density(node.dist, {**a, **{v.name: v.value for v in node.at}}))
        if isinstance(node, Expectation):
            return sum(self.density(node.dist, b) * self.value(node.body, b)
                       for b in self.support(node.dist, a))
        if isinstance(node, KLDivergence):
            return sum(self.density(node.a, b) * (math.log(self.density(node.a, b))
                                                  - math.log(self.density(node.b, b)))
                       for b in self.support(node.a, a))
        if isinstance(node, JSDivergence):
            total = 0.0
            for b in self.support(node.a, a):
                p, q = self.density(node.a, b), self.density(node.b, b)
                m = 0.5 * (p + q)
                total += 0.5 * p * math.log(p / m) + 0.5 * q * math.log(q / m)
            return total
        if isinstance(node, Entropy):
            return -sum(self.density(node.dist, b) * math.log(self.density(node.dist, b))
                        for b in self.support(node.dist, a))
        if isinstance(node, Sum):
            return sum(self.value(t, a) for t in node.terms)
        if isinstance(node, Neg):
            return -self.value(node.term, a)
        if isinstance(node, Scale):
            return node.factor * self.value(node.term, a)
        if isinstance(node, StopGradient):
            return self.value(node.term, a)
        raise TypeError(node)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _world(seed, *, frozen_equal=True):
    """Random tables for every distribution the identities mention.

    ``p_θ(x)`` is the VAE marginal Σ_z p(z) p_θ(x|z) except in the Lemma-1 world (``gan=True``
    below), where it is the GAN mixture E_{p(y)}[p_θ(x|y)]. θ0 equals θ unless
    ``frozen_equal=False``.
    """
    rng = np.random.default_rng(seed)
    prior = _softmax(rng.normal(size=M) * 1.5)
    decoder = _softmax(rng.normal(size=(M, K)) * 1.5)  # [z, x]
    encoder = _softmax(rng.normal(size=(K, M)) * 1.5)  # [x, z]
    data = _softmax(rng.normal(size=K) * 1.5)
    generated = _softmax(rng.normal(size=K) * 1.5)
    generated0 = generated if frozen_equal else _softmax(rng.normal(size=K) * 1.5)
    d_phi = 1 / (1 + np.exp(-rng.normal(size=K) * 1.5))  # D_φ(x) = q_φ(y=1|x)
    d_phi0 = 1 / (1 + np.exp(-rng.normal(size=K) * 1.5))
    joint = prior[:, None] * decoder  # [z, x]
    marginal = joint.sum(axis=0)
    mixture0 = 0.5 * (generated0 + data)
    reversed0 = np.stack([d_phi0, 1 - d_phi0])  # q^r_φ0(y|x) = q_φ0(1−y|x), [y, x]
    normalizer = (reversed0 * mixture0).sum(axis=1)  # Z_y
    lemma1_target = reversed0 * mixture0 / normalizer[:, None]

    def discriminator(d):
        return lambda a: d[a["x"]] if a["y"] == 1 else 1 - d[a["x"]]

    common = {
        ("p", None, ("z",), ()): lambda a: prior[a["z"]],
        ("p", "theta", ("x",), ("z",)): lambda a: decoder[a["z"], a["x"]],
        ("q", "eta", ("z",), ("x",)): lambda a: encoder[a["x"], a["z"]],
        ("p_data", None, ("x",), ()): lambda a: data[a["x"]],
        ("p", "theta", ("x", "z"), ()): lambda a: joint[a["z"], a["x"]],
        ("p", "theta", ("z",), ("x",)): lambda a: joint[a["z"], a["x"]] / marginal[a["x"]],
        ("p", None, ("y",), ()): lambda a: 0.5,
        ("p", "theta", ("x",), ("y",)): lambda a: (generated if a["y"] == 0 else data)[a["x"]],
        ("q", "phi", ("y",), ("x",)): discriminator(d_phi),
        ("q", "phi0", ("y",), ("x",)): discriminator(d_phi0),
        ("p", "theta0", ("x",), ()): lambda a: mixture0[a["x"]],
        ("q^r", None, ("x",), ("y",)): lambda a: lemma1_target[a["y"], a["x"]],
    }
    vae = World({**common, ("p", "theta", ("x",), ()): lambda a: marginal[a["x"]]})
    gan = World(
        {**common, ("p", "theta", ("x",), ()): lambda a: 0.5 * (generated + data)[a["x"]]},
        {"log Z_y": lambda a: math.log(normalizer[a["y"]])},
    )
    return {"elbo-decomposition": vae, "lemma1": gan, "lemma2": vae, "wake-sleep": vae}


def _for_every_x(world, term):
    """Values of a per-example term at every x (the ELBO identities hold for each x)."""
    return [world.value(term, {"x": x}) for x in range(K)]


# --- names, senses, shapes ----------------------------------------------------------------


def test_names_match_verify():
    assert set(ids.IDENTITIES) == set(verify.IDENTITIES)
    for name, rewrite in ids.IDENTITIES.items():
        assert rewrite.name == name
        assert rewrite.sense == verify.IDENTITIES[name].sense
        assert rewrite.wrt == verify.IDENTITIES[name].wrt
        assert len(rewrite.left) == len(rewrite.right) == len(rewrite.constant)
        assert len(rewrite.left) == len(rewrite.steps) == COMPONENTS[name]


def test_functions_return_the_registered_rewrites():
    assert ids.elbo_decomposition() == ids.IDENTITIES["elbo-decomposition"]
    assert ids.lemma1() == ids.IDENTITIES["lemma1"]
    assert ids.lemma2() == ids.IDENTITIES["lemma2"]
    assert ids.wake_sleep() == ids.IDENTITIES["wake-sleep"]


@pytest.mark.parametrize("name", sorted(verify.IDENTITIES))
def test_derivations_run_from_left_to_right(name):
    rewrite = ids.IDENTITIES[name]
    for i, chain in enumerate(rewrite.steps):
        assert chain[0].expression == rewrite.left[i]
        assert chain[-1].expression == rewrite.right[i]
        assert all(step.reason for step in chain)
        relations = [step.relation for step in chain[1:]]
        if rewrite.constant[i] == ids.ZERO:
            assert set(relations) == {"="}
        else:  # exactly one step drops the constant (or holds in gradient only): the last
            assert relations[:-1] == ["="] * (len(relations) - 1) and relations[-1] == "≃"


@pytest.mark.parametrize("name", sorted(verify.IDENTITIES))
def test_constants_do_not_depend_on_the_groups_whose_gradients_agree(name):
    rewrite = ids.IDENTITIES[name]
    for constant in rewrite.constant:
        assert not free_params(constant) & set(rewrite.wrt), (name, str(constant))


# --- printing -----------------------------------------------------------------------------


def test_statements_print_as_the_lecture_writes_them():
    frozen = str(ids.reversed0)  # q^r_φ0(y|x): how a frozen group prints is printing's business
    assert ids.lemma1().statement() == (
        f"−E_{{p_θ(x|y)p(y)}}[log {frozen}] + E_{{p(y)}}[log Z_y] = "
        "E_{p(y)}[KL(p_θ(x|y) ‖ q^r(x|y))] − JSD(p_θ(x|y=0) ‖ p_θ(x|y=1))"
    )
    assert ids.lemma2().statement() == (
        "E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − KL(q_η(z|x) ‖ p(z))] + H(p_data(x)) = "
        "−KL(q_η(z|x)p_data(x) ‖ p_θ(x,z))"
    )
    assert ids.elbo_decomposition().statement() == (
        "log p_θ(x) = KL(q_η(z|x) ‖ p_θ(z|x)) + E_{q_η(z|x)}[log p_θ(x,z) − log q_η(z|x)]"
    )
    assert ids.wake_sleep().statement(1) == (
        "E_{p_θ(x|y)p(y)}[log q_φ(y|x)] = "
        "0.5 · (E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)])"
    )
    assert ids.lemma1().statement(latex=True).startswith(
        r"-\mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_{\phi_0}(y \mid x)\right]"
        r" + \mathbb{E}_{p(y)}\left[\log Z_y\right] = "
    )


def test_wake_sleep_sides_are_the_declared_objectives():
    """§3.4 ties the identities to the declarations: the GAN's L_D and wake-sleep's phases."""
    rewrite = ids.wake_sleep()
    # by printing: the GAN's distributions are its own objects, which print alike
    assert str(rewrite.right[1]) == str(0.5 * GAN_DISCRIMINATOR)
    # the sleep phase with h := y and λ := φ, the wake phase with h := z and λ := η
    assert str(SLEEP).replace("h", "y").replace("λ", "φ") == str(rewrite.left[1])
    assert str(WAKE).replace("h", "z").replace("λ", "η").replace("|z)", ",z)") == (
        str(rewrite.right[0]))


def test_lines_and_latex_are_printable_and_parse_with_mathtext():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    for rewrite in ids.IDENTITIES.values():
        lines = rewrite.lines()
        assert lines[0] == rewrite.statement(0)
        assert sum(line.startswith(("= ", "≃ ")) for line in lines) == sum(
            len(chain) - 1 for chain in rewrite.steps)
        for i in range(len(rewrite.left)):
            parser.parse(f"${rewrite.statement(i, latex=True)}$")
        for chain in rewrite.steps:
            for step in chain:
                assert str(step) == str(step.expression)
                parser.parse(step._repr_latex_())
    for line in ids.lemma2_as_written():
        parser.parse(f"${line.latex()}$")


def test_lemma2_as_written():
    first, second = ids.lemma2_as_written()
    mixture0 = str(ids.mixture0)  # p_θ0(x): how a frozen group prints is printing's business
    assert str(first) == (
        f"2 · E_{{{mixture0}}}[E_{{q_η(z|x,y)q^r_*(y|x)}}[log p_θ(x|z,y)] − "
        "KL(q_η(z|x,y)q^r_*(y|x) ‖ p(z|y)p(y))]"
    )
    assert str(second) == f"2 · E_{{{mixture0}}}[−KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))]"


# --- exact values of every step -------------------------------------------------------------


def _values(world, name, term):
    return _for_every_x(world, term) if name == "elbo-decomposition" else [world.value(term)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(verify.IDENTITIES))
def test_every_equality_step_holds_exactly(name, seed):
    world = _world(seed)[name]
    rewrite = ids.IDENTITIES[name]
    for chain in rewrite.steps:
        for before, step in zip(chain, chain[1:]):
            if step.relation == "=":
                np.testing.assert_allclose(
                    _values(world, name, step.expression), _values(world, name, before.expression),
                    rtol=0, atol=1e-12, err_msg=f"{name}: {before} = {step}")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(verify.IDENTITIES))
def test_left_plus_constant_equals_right_in_value(name, seed):
    """In value, exactly (Lemma 1 at θ = θ0, where the values are apart by E_{p(y)}[log Z_y])."""
    world = _world(seed)[name]
    rewrite = ids.IDENTITIES[name]
    for left, constant, right in zip(rewrite.left, rewrite.constant, rewrite.right):
        np.testing.assert_allclose(
            np.add(_values(world, name, left), _values(world, name, constant)),
            _values(world, name, right), rtol=0, atol=1e-12)


def test_lemma1_values_away_from_theta0_differ_by_the_mixture_kl():
    """θ ≠ θ0: the '=' steps still hold, and right − left − constant = KL(p_θ(x) ‖ p_θ0(x)) > 0."""
    world = _world(3, frozen_equal=False)["lemma1"]
    rewrite = ids.lemma1()
    chain = rewrite.steps[0]
    for before, step in zip(chain, chain[1:-1]):
        assert world.value(step.expression) == pytest.approx(world.value(before.expression),
                                                             abs=1e-12)
    drift = chain[-2].expression.terms[2].term  # − KL(p_θ(x) ‖ p_θ0(x)) in the 4th step
    assert isinstance(drift, KLDivergence) and isinstance(drift.b, Dist)
    gap = (world.value(rewrite.right[0]) - world.value(rewrite.left[0])
           - world.value(rewrite.constant[0]))
    assert gap == pytest.approx(world.value(drift), abs=1e-12)
    assert gap > 1e-6


def test_the_evaluator_rejects_a_wrong_step():
    """The oracle discriminates: Lemma 1 with the KL reversed, or without the JSD, fails."""
    from unigen.algebra.expr import KL, E

    world = _world(0)["lemma1"]
    rewrite = ids.lemma1()
    expected_kl = rewrite.right[0].terms[0]
    jsd = rewrite.right[0].terms[1]
    generative, target = expected_kl.body.a, expected_kl.body.b
    for wrong in (E(expected_kl.dist, KL(target, generative)) + jsd, expected_kl):
        difference = (world.value(rewrite.left[0]) + world.value(rewrite.constant[0])
                      - world.value(wrong))
        assert abs(difference) > 1e-3


# --- the named checks compile these rewrites ----------------------------------------------------


def test_check_identity_compiles_the_printed_rewrite(monkeypatch):
    """Dropping Lemma 2's constant from the *rewrite* makes the named check fail by exactly
    H(p_data), recomputed here with NumPy at the check's points: the check reads the printed
    expressions, not a hand-written copy."""
    import jax

    rewrite = ids.IDENTITIES["lemma2"]
    monkeypatch.setitem(ids.IDENTITIES, "lemma2", rewrite._replace(constant=(ids.ZERO,)))
    ids._checker.cache_clear()
    try:
        result = ids.check_identity("lemma2", seed=4, sizes={"x": 3, "z": 2})
    finally:
        ids._checker.cache_clear()
    with jax.enable_x64(True):
        points = verify.LEMMA2.points(jax.random.key(4), {"x": 3, "z": 2})
    entropies = []
    for point in points:
        p = _softmax(np.asarray(point["data"], dtype=np.float64))
        entropies.append(-float(np.sum(p * np.log(p))))
    assert not result.holds
    assert result.max_abs_error_value == pytest.approx(max(entropies), abs=1e-12)
    assert result.max_abs_error_grad < 1e-12  # a constant: no gradient
    monkeypatch.undo()
    assert ids.check_identity("lemma2", seed=4, sizes={"x": 3, "z": 2}).holds
