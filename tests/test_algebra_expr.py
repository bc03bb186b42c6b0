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
    Constant,
    ImportanceWeightedBound,
    Log,
    Neg,
    Scale,
    Sum,
    Var,
    coefficient,
    coefficients,
    constant,
    dist,
    free_params,
    importance_weighted_bound,
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


def test_the_vae_algorithm_declares_this_objective():
    assert str(OBJECTIVE) == str(VAE) and OBJECTIVE.latex() == VAE.latex()


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
    assert str(dist("p", over="x", params="θ")) == str(dist("p", over=("x",), params="theta"))


def test_distributions_are_distinct_unless_derived():
    """Two dist() calls that print alike are two distributions (two binding keys); fixed(),
    reverse() and replace() keep the identity."""
    generator = dist("p", over="x", given="z", params="theta")
    assert str(generator) == str(decoder) and generator != decoder
    assert len({generator: 1, decoder: 2}) == 2
    family = dist("p", over="x", given="y", params="theta")
    assert family.fixed(y=0) == family.fixed(y=0) != dist("p", over="x", given="y=0", params="theta")
    assert str(family.fixed(y=0)) == "p_θ(x|y=0)"
    assert reverse(reverse(discriminator)) == discriminator
    assert dataclasses.replace(decoder) == decoder
    with pytest.raises(ConfigError, match="fixed of p_θ"):
        family.fixed(z=1)


def test_open_vocabulary_prints_greek_and_subscripts():
    """Any identifier is a variable or a group: psi -> ψ, x_rec -> x_rec, theta0 -> θ₀,
    several groups -> a list, a named coefficient -> its symbol."""
    d = dist("p", over="x_rec", given="z", params="psi")
    assert str(d) == "p_ψ(x_rec|z)" and d.latex() == r"p_\psi(x_{rec} \mid z)"
    both = dist("q", over="s", given="xt", params="theta,phi")
    assert both.groups == ("theta", "phi") and str(both) == "q_{θ,φ}(s|xt)"
    assert both.latex() == r"q_{\theta,\phi}(s \mid \mathrm{xt})"
    assert free_params(log(both)) == {"theta", "phi"}
    assert str(dist("p", over="x", params="theta0")) == "p_θ₀(x)"
    assert str(dist("p", over="x", params="enc")) == "p_enc(x)"
    assert dist("p", over="x", params="enc").latex() == r"p_{\mathrm{enc}}(x)"
    beta = coefficient("beta", 4.0)
    scaled = beta * KL(encoder, prior)
    assert str(scaled) == "β · KL(q_η(z|x) ‖ p(z))"
    assert scaled.latex() == r"\beta \cdot \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)"
    assert str(KL(encoder, prior) * beta) == str(scaled) and coefficients(scaled - VAE) == (beta,)


def test_vae_latex_is_valid_mathtext():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    for expr in (VAE, GAN_GENERATOR, sg(2 * (VAE - LOG2)), H(prior)):
        parser.parse(f"${expr.latex()}$")


def test_log_at_fixed_values():
    """The GAN's log D(x) = log q_φ(y=1|x) and log(1 − D(x)) = log q_φ(y=0|x)."""
    real = log(discriminator, y=1)
    assert real.at == (Var("y", 1),) and real.dist == discriminator
    assert str(real) == "log q_φ(y=1|x)"
    assert real.latex() == r"\log q_\phi(y=1 \mid x)"
    assert str(log(reverse(discriminator), y=0)) == "log q^r_φ(y=0|x)"
    assert log(discriminator, y=1) != log(discriminator, y=0) != log(discriminator)
    assert log(discriminator) == Log(discriminator) and log(discriminator).at == ()
    joint = dist("q", over="z", given="x,y", params="eta") * discriminator
    assert str(log(joint, y=0)) == "log q_η(z|x,y=0)q_φ(y=0|x)"  # y is fixed in every factor
    assert free_params(real) == {"phi"} and variables(real) == {"x", "y"}


def test_figure5_distributions():
    """q^r(x|y) of Lemma 1, the perfect discriminator q_*(y|x), θ0 and the posterior."""
    lemma1_target = dist("q^r", over="x", given="y")
    assert str(lemma1_target) == "q^r(x|y)" and lemma1_target.latex() == r"q^{r}(x \mid y)"
    assert not lemma1_target.reversed
    perfect = dist("q_*", over="y", given="x")
    assert str(perfect) == "q_*(y|x)" and perfect.latex() == r"q_*(y \mid x)"
    assert str(reverse(perfect)) == "q^r_*(y|x)"
    assert reverse(perfect).latex() == r"q^{r}_*(y \mid x)"
    frozen = reverse(dist("q", over="y", given="x", params="φ0"))
    assert frozen.params == "phi0"
    assert str(frozen) == "q^r_φ₀(y|x)" and frozen.latex() == r"q^{r}_{\phi_0}(y \mid x)"
    mixture0 = dist("p", over="x", params="theta0")
    assert str(mixture0) == "p_θ₀(x)" and mixture0.latex() == r"p_{\theta_0}(x)"
    assert free_params(KL(dist("p", over="x", params="theta"), mixture0)) == {"theta", "theta0"}
    posterior = dist("p", over="z,y", given="x", params="theta")
    assert posterior.latex() == r"p_\theta(z, y \mid x)"
    vae_kl = KL(dist("q", over="z", given="x,y", params="eta") * reverse(perfect), posterior)
    assert str(vae_kl) == "KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))"
    assert str(dist("q^r", over="z", given="x,y", params="eta")) == "q^r_η(z|x,y)"


def test_importance_weighted_bound_prints_like_the_iwae_docstring():
    import importlib

    iwae_module = importlib.import_module("unigen.algorithms.iwae")

    joint = dist("p", over="x,z", params="theta")
    bound = importance_weighted_bound(joint, encoder)
    assert isinstance(bound, ImportanceWeightedBound) and bound.k is None
    assert str(bound) == (
        "E_{z_1,…,z_k ~ q_η(z|x)}[log (1/k) Σ_{i=1}^{k} p_θ(x,z_i)/q_η(z_i|x)]"
    )
    # The IWAE docstrings state "L_k(θ, η; x) = <the bound>".
    same = lambda text: "".join(text.split())  # noqa: E731
    assert same(r"\mathcal{L}_k(\theta, \eta; x) = " + bound.latex()) in same(iwae_module.__doc__)
    assert str(iwae_module.OBJECTIVE) == str(
        E(p_data, importance_weighted_bound(prior * decoder, encoder)))
    assert importance_weighted_bound(joint, encoder, 16).latex().startswith(
        r"\mathbb{E}_{z_1, \ldots, z_{16} \sim q_\eta(z \mid x)}\left[\log \frac{1}{16} "
        r"\sum_{i=1}^{16} \frac{p_\theta(x, z_i)}"
    )
    factored = importance_weighted_bound(decoder * prior, encoder, 2)
    assert str(factored) == (
        "E_{z_1,…,z_2 ~ q_η(z|x)}[log (1/2) Σ_{i=1}^{2} p_θ(x|z_i)p(z_i)/q_η(z_i|x)]"
    )
    assert free_params(bound) == {"theta", "eta"} and variables(bound) == {"x", "z"}
    assert str(E(p_data, bound)).startswith("E_{p_data(x)}[E_{z_1,…,z_k ~ q_η(z|x)}[")


def test_symbolic_constant():
    log_z = Constant("log Z_y", None, r"\log Z_y")
    assert str(E(p_y, log_z)) == "E_{p(y)}[log Z_y]"
    assert E(p_y, log_z).latex() == r"\mathbb{E}_{p(y)}\left[\log Z_y\right]"


def test_new_nodes_latex_is_valid_mathtext():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    perfect = reverse(dist("q_*", over="y", given="x"))
    for expr in (
        E(dist("p", over="x", given="y=0", params="theta"), log(discriminator, y=0)),
        KL(dist("q", over="z", given="x,y", params="eta") * perfect,
           dist("p", over="z,y", given="x", params="theta")),
        E(dist("p", over="x", params="theta0"), log(reverse(dist("q", over="y", given="x",
                                                                   params="phi0")))),
        KL(generator, dist("q^r", over="x", given="y")),
        E(p_data, importance_weighted_bound(dist("p", over="x,z", params="theta"), encoder, 12)),
        E(p_y, Constant("log Z_y", None, r"\log Z_y")),
    ):
        parser.parse(f"${expr.latex()}$")


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: dist("p", over="2w"), ConfigError, "variable: got '2w', expected an identifier"),
        (lambda: Var("y", 0.5), ConfigError, "value of y: got 0.5, expected an int or None"),
        (lambda: dist("p", over=""), ConfigError, "over of p: got no variables"),
        (lambda: dist("p", over="x,x"), ConfigError, "got ['x', 'x'], expected distinct"),
        (lambda: dist("p", over="y=1"), ConfigError, "over of p: got y=1, expected free variables"),
        (lambda: dist("p", over="x", given="y=a"), ConfigError, "given: got 'y=a', expected"),
        (lambda: dist("p", over="x", given="z,z"), ConfigError, "given of p: got ['z', 'z']"),
        (lambda: dist("p", over="x", given="x"), ConfigError, "got ['x'] in both over and given"),
        (lambda: dist("p", over=3), ConfigError, "over: got 3, expected a string like 'x,z'"),
        (lambda: dist("p", over="x", params="ps i"), ConfigError, "params of p: got 'ps i'"),
        (lambda: dist("p_data", over="x", params="theta"), ConfigError, "on a subscripted name"),
        (lambda: dist("2p", over="x"), ConfigError, "name: got '2p', expected a letter-led name"),
        (lambda: dist("q^*", over="x"), ConfigError, "name: got 'q^*', expected a letter-led"),
        (lambda: dist("q_*", over="y", params="phi"), ConfigError, "on a subscripted name"),
        (lambda: dist("p", over="x", params=("theta", "theta")), ConfigError,
         "got ('theta', 'theta'), expected a group name"),
        (lambda: reverse(dist("q^r", over="y")), ConfigError, "already has a superscript"),
        (lambda: log(discriminator, x=1), ConfigError, "log at: got ['x'], expected variables"),
        (lambda: log(discriminator, y=0.5), ConfigError, "log at y: got 0.5, expected an int"),
        (lambda: log(discriminator, y=True), ConfigError, "log at y: got True, expected an int"),
        (lambda: Log(discriminator, (Var("y"),)), ConfigError, "at: got Var(name='y', value=None)"),
        (lambda: Log(discriminator, (Var("x", 1),)), ConfigError, "at: got x=1, expected one of"),
        (lambda: Log(discriminator, (Var("y", 0), Var("y", 1))), ConfigError, "expected distinct"),
        (lambda: importance_weighted_bound(p_data, encoder), ConfigError, "target: got a distrib"),
        (lambda: importance_weighted_bound(dist("p", over="x,z"), encoder, 0), ConfigError,
         "k: got 0, expected a positive int or None"),
        (lambda: importance_weighted_bound(dist("p", over="x,z"), p_y * prior), ExpressionError,
         "proposal: got Product("),
        (lambda: importance_weighted_bound(dist("p", over="x,z,y"), dist("q", over="z,y")),
         ConfigError, "expected one over a single latent variable"),
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
        (lambda: Constant("c", "one"), ConfigError, "expected a number or None"),
    ],
)
def test_construction_errors(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)
    assert isinstance(info.value, UnigenError)
