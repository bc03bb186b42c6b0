"""The expression tree and its printing: exact strings in the lecture's notation, and errors."""

import dataclasses
import math

import pytest

from unigen.algebra.expr import (
    LOG2,
    E,
    ExpressionError,
    H,
    JSD,
    KL,
    Neg,
    Scale,
    Sum,
    Var,
    constant,
    dist,
    free_params,
    log,
    reverse,
    sg,
    variables,
)
from unigen.algorithms.vae import OBJECTIVE
from unigen.errors import ConfigError, UnigenError

# The lecture's distributions (§2–§3.4).
p_data = dist("p_data", over="x")
decoder = dist("p", over="x", given="z", params="theta")
encoder = dist("q", over="z", given="x", params="eta")
prior = dist("p", over="z")
p_y = dist("p", over="y")
generator = dist("p", over="x", given="y", params="theta")  # p_θ(x|y): data for y=1, G for y=0
discriminator = dist("q", over="y", given="x", params="phi")  # q_φ(y|x)

VAE = E(p_data, E(encoder, log(decoder)) - KL(encoder, prior))
GAN_DISCRIMINATOR = E(p_y * generator, log(discriminator))
GAN_GENERATOR = E(p_y * generator, log(reverse(discriminator)))


def test_vae_objective_prints_in_the_lecture_notation():
    assert str(VAE) == "E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − KL(q_η(z|x) ‖ p(z))]"
    assert VAE.latex() == (
        r"\mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)"
        r"\right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)\right]"
    )
    assert VAE._repr_latex_() == f"${VAE.latex()}$"


def test_vae_inner_objective_matches_the_algorithm_docstring():
    inner = E(encoder, log(decoder)) - KL(encoder, prior)
    assert OBJECTIVE.endswith(" = " + inner.latex())


def test_elbo_both_forms():
    """§2.1: E_q[log p(x,z)] − E_q[log q] and E_q[log p(x|z)] − KL(q ‖ p(z))."""
    q = dist("q", over="z", given="x", params="phi")
    joint = dist("p", over="x,z", params="theta")
    entropy_form = E(q, log(joint)) - E(q, log(q))
    kl_form = E(q, log(decoder)) - KL(q, prior)
    assert str(entropy_form) == "E_{q_φ(z|x)}[log p_θ(x,z)] − E_{q_φ(z|x)}[log q_φ(z|x)]"
    assert entropy_form.latex() == (
        r"\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(x, z)\right]"
        r" - \mathbb{E}_{q_\phi(z \mid x)}\left[\log q_\phi(z \mid x)\right]"
    )
    assert str(kl_form) == "E_{q_φ(z|x)}[log p_θ(x|z)] − KL(q_φ(z|x) ‖ p(z))"
    assert str(E(q, log(joint)) + H(q)) == "E_{q_φ(z|x)}[log p_θ(x,z)] + H(q_φ(z|x))"
    assert free_params(entropy_form) == {"theta", "phi"}


def test_gan_objectives_in_the_unified_form():
    """§3.1: max_φ E_{p(y)p_θ(x|y)}[log q_φ(y|x)], max_θ E_{p(y)p_θ(x|y)}[log q^r_φ(y|x)]."""
    assert str(GAN_DISCRIMINATOR) == "E_{p(y)p_θ(x|y)}[log q_φ(y|x)]"
    assert str(GAN_GENERATOR) == "E_{p(y)p_θ(x|y)}[log q^r_φ(y|x)]"
    assert GAN_DISCRIMINATOR.latex() == (
        r"\mathbb{E}_{p(y) p_\theta(x \mid y)}\left[\log q_\phi(y \mid x)\right]"
    )
    assert GAN_GENERATOR.latex() == (
        r"\mathbb{E}_{p(y) p_\theta(x \mid y)}\left[\log q^{r}_\phi(y \mid x)\right]"
    )
    assert E((p_y, generator), log(discriminator)) == GAN_DISCRIMINATOR


def test_gan_discriminator_with_fixed_indicator():
    """The classic form: E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)]."""
    fake = dist("p", over="x", given="y=0", params="theta")
    real_label = dist("q", over="y", given="x", params="phi")
    objective = E(p_data, log(real_label)) + E(fake, log(real_label))
    assert str(objective) == "E_{p_data(x)}[log q_φ(y|x)] + E_{p_θ(x|y=0)}[log q_φ(y|x)]"
    jsd = JSD(fake, dist("p", over="x", given="y=1", params="theta"))
    assert str(2 * jsd - 2 * LOG2) == "2 · JSD(p_θ(x|y=0) ‖ p_θ(x|y=1)) − 2 · log 2"
    assert jsd.latex() == (
        r"\mathrm{JSD}\left(p_\theta(x \mid y=0) \,\|\, p_\theta(x \mid y=1)\right)"
    )


def test_reverse_is_a_flag_and_an_involution():
    reversed_discriminator = reverse(discriminator)
    assert reversed_discriminator.reversed
    assert reverse(reversed_discriminator) == discriminator
    assert str(reversed_discriminator) == "q^r_φ(y|x)"
    assert reversed_discriminator.latex() == r"q^{r}_\phi(y \mid x)"
    assert str(reverse(dist("q", over="y", given="x"))) == "q^r(y|x)"


def test_lemma_2_product_inside_kl():
    """§3.3: KL(q_η(z|x,y) q^r(y|x) ‖ p_θ(z,y|x)), products on either side of a KL."""
    q = dist("q", over="z", given="x,y", params="eta") * reverse(dist("q", over="y", given="x"))
    posterior = dist("p", over="z,y", given="x", params="theta")
    assert str(KL(q, posterior)) == "KL(q_η(z|x,y)q^r(y|x) ‖ p_θ(z,y|x))"
    assert free_params(KL(q, posterior)) == {"eta", "theta"}


@pytest.mark.parametrize(
    ("build", "unicode", "latex"),
    [
        (lambda a, b, c: a + b + c, "A + B + C", "A + B + C"),
        (lambda a, b, c: a - (b + c), "A − (B + C)", r"A - \left(B + C\right)"),
        (lambda a, b, c: a - (b - c), "A − (B − C)", r"A - \left(B - C\right)"),
        (lambda a, b, c: a + (b - c), "A + (B − C)", r"A + \left(B - C\right)"),
        (lambda a, b, c: a - -b, "A − (−B)", r"A - \left(-B\right)"),
        (lambda a, b, c: -(a + b), "−(A + B)", r"-\left(A + B\right)"),
        (lambda a, b, c: -(-a), "−(−A)", r"-\left(-A\right)"),
        (lambda a, b, c: -a + b, "−A + B", "-A + B"),
        (lambda a, b, c: 2 * (a + b), "2 · (A + B)", r"2 \cdot \left(A + B\right)"),
        (lambda a, b, c: (a - b) * 0.5, "0.5 · (A − B)", r"0.5 \cdot \left(A - B\right)"),
        (lambda a, b, c: 2 * -a, "2 · (−A)", r"2 \cdot \left(-A\right)"),
        (lambda a, b, c: -(2 * a), "−2 · A", r"-2 \cdot A"),
        (lambda a, b, c: -2 * a, "(−2) · A", r"\left(-2\right) \cdot A"),
        (lambda a, b, c: a + 3 * (b + c), "A + 3 · (B + C)", r"A + 3 \cdot \left(B + C\right)"),
        (lambda a, b, c: a - 1, "A − 1", "A - 1"),
        (lambda a, b, c: a + -1.5, "A − 1.5", "A - 1.5"),
        (lambda a, b, c: 1 - a, "1 − A", "1 - A"),
        (lambda a, b, c: sg(a - b) + c, "sg[A − B] + C", r"\mathrm{sg}\left[A - B\right] + C"),
    ],
)
def test_parenthesization(build, unicode, latex):
    a, b, c = constant("A", 1.0), constant("B", 2.0), constant("C", 3.0)
    expr = build(a, b, c)
    assert str(expr) == unicode
    assert expr.latex() == latex


def test_difference_is_a_sum_with_a_negation():
    a, b = constant("A", 1.0), constant("B", 2.0)
    assert a - b == Sum((a, Neg(b)))
    assert a + b + a == Sum((a, b, a))  # a left-nested chain is one flat sum
    assert 2 * a == a * 2 == Scale(2, a)


def test_stop_gradient_printing():
    wake = E(encoder, log(decoder))
    assert str(sg(wake)) == "sg[E_{q_η(z|x)}[log p_θ(x|z)]]"
    assert sg(wake).latex() == (
        r"\mathrm{sg}\left[\mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)\right]\right]"
    )
    assert free_params(sg(wake)) == {"eta", "theta"}  # the value still depends on both


def test_named_constant_and_entropy():
    assert str(LOG2) == "log 2" and LOG2.latex() == r"\log 2"
    assert LOG2.value == pytest.approx(math.log(2))
    assert str(H(prior)) == "H(p(z))" and H(prior).latex() == r"\mathrm{H}\left(p(z)\right)"


def test_wake_sleep_with_lambda_and_h():
    """§3.4: wake E_{q_λ(h|x)p_data(x)}[log p_θ(x|h)], sleep E_{p_θ(x|h)p(h)}[log q_λ(h|x)]."""
    recognition = dist("q", over="h", given="x", params="λ")
    model = dist("p", over="x", given="h", params="theta")
    wake = E(recognition * p_data, log(model))
    sleep = E(model * dist("p", over="h"), log(recognition))
    assert str(wake) == "E_{q_λ(h|x)p_data(x)}[log p_θ(x|h)]"
    assert str(sleep) == "E_{p_θ(x|h)p(h)}[log q_λ(h|x)]"
    assert free_params(wake) == free_params(sleep) == {"lambda", "theta"}


def test_free_params_and_variables():
    assert free_params(VAE) == {"theta", "eta"}
    assert free_params(GAN_DISCRIMINATOR) == {"theta", "phi"}
    assert free_params(GAN_GENERATOR) == {"theta", "phi"}
    assert free_params(KL(prior, prior)) == frozenset()
    assert variables(VAE) == {"x", "z"}
    assert variables(GAN_DISCRIMINATOR) == {"x", "y"}
    assert variables(LOG2) == frozenset()


def test_nodes_are_immutable_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VAE.body = LOG2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoder.params = "phi"  # type: ignore[misc]
    rebuilt = E(p_data, E(encoder, log(decoder)) - KL(encoder, prior))
    assert rebuilt == VAE and hash(rebuilt) == hash(VAE)
    assert len({VAE, rebuilt, GAN_DISCRIMINATOR, GAN_GENERATOR}) == 3
    assert dist("p", over="x", params="θ") == dist("p", over=("x",), params="theta")


def test_vae_latex_is_valid_mathtext():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    for expr in (VAE, GAN_GENERATOR, sg(2 * (VAE - LOG2)), H(prior)):
        parser.parse(f"${expr.latex()}$")


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: dist("p", over="w"), ConfigError, "variable: got 'w', expected one of"),
        (lambda: Var("y", 0.5), ConfigError, "value of y: got 0.5, expected an int or None"),
        (lambda: dist("p", over=""), ConfigError, "over of p: got no variables"),
        (lambda: dist("p", over="x,x"), ConfigError, "got ['x', 'x'], expected distinct"),
        (lambda: dist("p", over="y=1"), ConfigError, "over of p: got y=1, expected free variables"),
        (lambda: dist("p", over="x", given="y=a"), ConfigError, "given: got 'y=a', expected"),
        (lambda: dist("p", over="x", given="z,z"), ConfigError, "given of p: got ['z', 'z']"),
        (lambda: dist("p", over="x", given="x"), ConfigError, "got ['x'] in both over and given"),
        (lambda: dist("p", over=3), ConfigError, "over: got 3, expected a string like 'x,z'"),
        (lambda: dist("p", over="x", params="psi"), ConfigError, "params of p: got 'psi'"),
        (lambda: dist("p_data", over="x", params="theta"), ConfigError, "on a subscripted name"),
        (lambda: dist("2p", over="x"), ConfigError, "name: got '2p', expected a letter-led name"),
        (lambda: dist(None, over="x"), ConfigError, "name: got None"),
        (lambda: reverse(encoder), ConfigError, "reversed q: got a distribution over ['z']"),
        (lambda: reverse(LOG2), ExpressionError, "q: got Constant("),
        (lambda: p_y * p_y, ConfigError, "factors: got ['y'] in two factors"),
        (lambda: p_y * LOG2, ExpressionError, "right factor: got Constant("),
        (lambda: KL(encoder, p_data), ConfigError, "KL right side: got a distribution over ['x']"),
        (lambda: JSD(p_y, prior), ConfigError, "JSD right side: got a distribution over ['z']"),
        (lambda: KL(LOG2, prior), ExpressionError, "KL left side: got Constant("),
        (lambda: E(LOG2, log(prior)), ExpressionError, "E over: got Constant("),
        (lambda: E(prior, prior), ExpressionError, "E body: got Dist("),
        (lambda: E(prior, 1.0), ExpressionError, "E body: got 1.0, expected a term"),
        (lambda: log(LOG2), ExpressionError, "log of: got Constant("),
        (lambda: H(VAE), ExpressionError, "H of: got Expectation("),
        (lambda: sg(prior), ExpressionError, "sg of: got Dist("),
        (lambda: VAE + prior, ExpressionError, "right operand of +: got Dist("),
        (lambda: VAE - "x", ExpressionError, "right operand of -: got 'x', expected a term"),
        (lambda: VAE * VAE, ExpressionError, "factor: got Expectation("),
        (lambda: True * VAE, ExpressionError, "factor: got True, expected a real number"),
        (lambda: VAE * math.inf, ConfigError, "factor: got inf, expected a finite number"),
        (lambda: Sum((VAE,)), ConfigError, "terms: got 1, expected at least two"),
        (lambda: Neg(prior), ExpressionError, "negated operand: got Dist("),
        (lambda: constant("", 1.0), ConfigError, "name: got '', expected a non-empty string"),
        (lambda: constant("c", "one"), ConfigError, "value of c: got 'one', expected a number"),
    ],
)
def test_construction_errors(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)
    assert isinstance(info.value, UnigenError)
