r"""The lecture's identities as rewrites of expressions: printable statements and derivations.

Each function returns a :class:`Rewrite`: the two sides and the constant of the identity, in the
algebra's notation, the precise sense in which it holds, and the derivation step by step, so a
notebook can print it line by line::

    rewrite = lemma2()
    for line in rewrite.lines():
        print(line)

:func:`check_identity` (``unigen.algebra.verify(rewrite.name)``, ``unigen algebra verify NAME``)
compiles these very expressions on finite models and checks them exactly with
:func:`unigen.algebra.verify`; the hand-written sides in :mod:`unigen.algebra.verify` are
independent oracles of the same statements. An identity has one or several components, and
component i states

.. math::
   \mathrm{left}_i + \mathrm{constant}_i = \mathrm{right}_i

in the sense given by ``sense`` (equal values, or equal gradients w.r.t. the groups ``wrt`` at a
stated point). ``sense`` is verify's statement, word for word. The encoder is
:math:`q_\eta(z \mid x)`, as in verify and §3.3 (§2.1 calls it :math:`q_\phi`).

A derivation is a chain of :class:`Step`: the first is ``left``, the last is ``right``, and each
is related to the one before by ``=`` (equal values) or ``≃`` (equal up to the identity's
constant, or equal gradients at the stated point; the step's reason says which).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as numpyro_dist

from unigen.algebra.expr import (
    JSD,
    KL,
    Constant,
    Dist,
    E,
    H,
    Term,
    Var,
    dist,
    log,
    reverse,
)
from unigen.algebra.compiler import Binding, data, explicit
from unigen.algebra.verify import IDENTITIES as VERIFIED
from unigen.algebra.verify import (
    Errors,
    Verification,
    checked_sizes,
    lemma1_tables,
    log_data,
    log_gan_generator,
    log_marginal,
    log_mixture0,
    log_posterior,
    measure,
    prepare,
    result,
    substitute,
)
from unigen.errors import ConfigError, describe

__all__ = [
    "IDENTITIES",
    "check_identity",
    "RELATIONS",
    "ZERO",
    "Rewrite",
    "Step",
    "elbo_decomposition",
    "lemma1",
    "lemma2",
    "lemma2_as_written",
    "wake_sleep",
]

RELATIONS = {"=": ("=", "="), "≃": ("≃", r"\simeq")}
"""How a step relates to the one before: ``=`` equal values; ``≃`` equal up to the identity's
constant or in gradient at the stated point (Unicode, LaTeX)."""

ZERO = Constant("0", 0.0)
"""The constant of an identity whose values agree exactly."""


class Step(NamedTuple):
    """One line of a derivation: ``relation expression``, because ``reason``.

    Prints like its expression (``str``, ``.latex()``, ``_repr_latex_``).
    """

    expression: Term
    reason: str
    relation: str = "="

    def __str__(self) -> str:
        return str(self.expression)

    def latex(self) -> str:
        """The expression in LaTeX."""
        return self.expression.latex()

    def _repr_latex_(self) -> str:
        return f"${RELATIONS[self.relation][1]} {self.latex()}$"


class Rewrite(NamedTuple):
    """An identity of the lecture, one entry per component (as in :mod:`unigen.algebra.verify`).

    Attributes:
      name: the identity's name, a key of :data:`unigen.algebra.verify.IDENTITIES`.
      left: the left-hand sides.
      right: the right-hand sides.
      constant: the named constants: ``left + constant = right`` in the stated sense
        (:data:`ZERO` when the values agree exactly).
      sense: in what sense the equality holds (verify's statement).
      wrt: the parameter groups whose gradients agree.
      steps: one derivation per component, from ``left`` to ``right``.
    """

    name: str
    left: tuple[Term, ...]
    right: tuple[Term, ...]
    constant: tuple[Term, ...]
    sense: str
    wrt: tuple[str, ...]
    steps: tuple[tuple[Step, ...], ...]

    def statement(self, component: int = 0, latex: bool = False) -> str:
        """``left + constant = right`` for one component (``left = right`` when it is zero)."""
        left, constant = self.left[component], self.constant[component]
        lhs = left if constant == ZERO else left + constant
        if latex:
            return f"{lhs.latex()} = {self.right[component].latex()}"
        return f"{lhs} = {self.right[component]}"

    def lines(self, latex: bool = False) -> list[str]:
        """The statements, then each derivation: ``relation expression    (reason)``."""
        out = [self.statement(i, latex) for i in range(len(self.left))]
        for chain in self.steps:
            out.append("")
            for i, step in enumerate(chain):
                text = step.latex() if latex else str(step)
                relation = RELATIONS[step.relation][1 if latex else 0]
                out.append(f"{'  ' if i == 0 else relation} {text}    ({step.reason})")
        return out


def _sense(name: str) -> str:
    return VERIFIED[name].sense


# The lecture's distributions (verify's finite models have the same structure).
p_data = dist("p_data", over="x")
p_y = dist("p", over="y")  # uniform
prior = dist("p", over="z")
decoder = dist("p", over="x", given="z", params="theta")
joint = dist("p", over="x,z", params="theta")
marginal = dist("p", over="x", params="theta")
posterior = dist("p", over="z", given="x", params="theta")
encoder = dist("q", over="z", given="x", params="eta")
# Lemma 1 (§3.2) and the GAN half of §3.4.
generative = dist("p", over="x", given="y", params="theta")
generated = dataclasses.replace(generative, given=(Var("y", 0),))  # the same p_θ(x|y) at y=0
real = dataclasses.replace(generative, given=(Var("y", 1),))
discriminator = dist("q", over="y", given="x", params="phi")
mixture0 = dist("p", over="x", params="theta0")
reversed0 = reverse(dist("q", over="y", given="x", params="phi0"))
target = dist("q^r", over="x", given="y")  # q^r(x|y) ∝ q^r_φ0(y|x) p_θ0(x)


def elbo_decomposition() -> Rewrite:
    r"""§2.1: the evidence splits into the KL to the posterior and the bound.

    .. math::
       \log p_\theta(x) = \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p_\theta(z \mid x)\right)
       + \mathcal{L}(\theta, \eta; x),

    and the free energy
    :math:`F = -\log p_\theta(x) + \mathrm{KL}(q_\eta(z \mid x) \,\|\, p_\theta(z \mid x))`
    equals :math:`-\mathcal{L}`. Both hold exactly, in value and in every gradient, for every
    :math:`x` (two components).
    """
    bound = E(encoder, log(joint) - log(encoder))
    gap = KL(encoder, posterior)
    free_energy = -log(marginal) + gap
    evidence = (
        Step(log(marginal), "the evidence"),
        Step(E(encoder, log(marginal)), "q_η(z|x) sums to one over z"),
        Step(E(encoder, log(joint) - log(posterior)),
             "Bayes: p_θ(x) = p_θ(x, z) / p_θ(z|x) for every z"),
        Step(E(encoder, log(encoder) - log(posterior)) + bound,
             "add and subtract log q_η(z|x), split the expectation"),
        Step(gap + bound, "definition of the KL: the bound L(θ, η; x) remains"),
    )
    energy = (
        Step(free_energy, "the free energy"),
        Step(-(gap + bound) + gap, "the first component"),
        Step(-bound, "the KL terms cancel"),
    )
    return Rewrite(
        name="elbo-decomposition",
        left=(log(marginal), free_energy),
        right=(gap + bound, -bound),
        constant=(ZERO, ZERO),
        sense=_sense("elbo-decomposition"),
        wrt=("theta", "eta"),
        steps=(evidence, energy),
    )


def lemma1() -> Rewrite:
    r"""Lemma 1 (§3.2): the GAN generator's step minimizes a KL with the model first.

    With :math:`p(y)` uniform, a starting point :math:`(\theta_0, \phi_0)`, the mixture
    :math:`p_{\theta_0}(x) = \mathbb{E}_{p(y)}[p_{\theta_0}(x \mid y)]` and
    :math:`q^r(x \mid y) = q^r_{\phi_0}(y \mid x)\, p_{\theta_0}(x) / Z_y`,

    .. math::
       \nabla_\theta\left(-\mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_{\phi_0}(y \mid x)
       \right]\right)\Big|_{\theta_0} = \nabla_\theta\left(\mathbb{E}_{p(y)}\left[\mathrm{KL}
       \left(p_\theta(x \mid y) \,\|\, q^r(x \mid y)\right)\right] - \mathrm{JSD}\left(
       p_\theta(x \mid y=0) \,\|\, p_\theta(x \mid y=1)\right)\right)\Big|_{\theta_0}.

    Precisely: it is a θ-gradient identity at :math:`\theta = \theta_0`, for *any*
    discriminator :math:`\phi_0` (not only the optimal one). In value, right = left +
    :math:`\mathbb{E}_{p(y)}[\log Z_y]` + :math:`\mathrm{KL}(p_\theta(x) \,\|\,
    p_{\theta_0}(x))` with :math:`Z_y = \sum_x q^r_{\phi_0}(y \mid x) p_{\theta_0}(x)`; the last
    term and its gradient vanish at :math:`\theta_0`, so there the values are apart by the
    constant :math:`\mathbb{E}_{p(y)}[\log Z_y]` (:math:`-\log 2` at the optimal discriminator).
    The constant is symbolic (:class:`~unigen.algebra.expr.Constant` with value ``None``).
    """
    log_normalizer = E(p_y, Constant("log Z_y", None, r"\log Z_y"))
    expected_kl = E(p_y, KL(generative, target))
    jsd = JSD(generated, real)
    drift = KL(marginal, mixture0)
    left = -E(generative * p_y, log(reversed0))
    right = expected_kl - jsd
    steps = (
        Step(left, "the generator's loss with the discriminator frozen at φ0"),
        Step(-E(generative * p_y, log(target) - log(mixture0)) - log_normalizer,
             "log q^r_φ₀(y|x) = log q^r(x|y) − log p_θ₀(x) + log Z_y, "
             "Z_y = Σ_x q^r_φ₀(y|x) p_θ₀(x)"),
        Step(expected_kl + E(p_y, H(generative)) + E(marginal, log(mixture0)) - log_normalizer,
             "−E_{p_θ(x|y)}[log q^r(x|y)] = KL(p_θ(x|y) ‖ q^r(x|y)) + H(p_θ(x|y)); "
             "E_{p(y)} E_{p_θ(x|y)} = E_{p_θ(x)} with the mixture p_θ(x) = E_{p(y)}[p_θ(x|y)]"),
        Step(expected_kl - jsd - drift - log_normalizer,
             "E_{p_θ(x)}[log p_θ₀(x)] = −H(p_θ(x)) − KL(p_θ(x) ‖ p_θ₀(x)), and for uniform p(y) "
             "JSD(p_θ(x|y=0) ‖ p_θ(x|y=1)) = H(p_θ(x)) − E_{p(y)}[H(p_θ(x|y))]"),
        Step(right,
             "at θ = θ₀, KL(p_θ(x) ‖ p_θ₀(x)) and its θ-gradient vanish and E_{p(y)}[log Z_y] "
             "does not depend on θ: equal θ-gradients at θ0, values apart by E_{p(y)}[log Z_y]",
             "≃"),
    )
    return Rewrite(
        name="lemma1",
        left=(left,),
        right=(right,),
        constant=(log_normalizer,),
        sense=_sense("lemma1"),
        wrt=("theta",),
        steps=(steps,),
    )


def _vae_objective() -> Term:
    return E(p_data, E(encoder, log(decoder)) - KL(encoder, prior))


def lemma2() -> Rewrite:
    r"""Lemma 2 (§3.3): the VAE objective is a negative KL with the model second.

    .. math::
       \mathcal{L}^{vae}_{\theta, \eta} = -\mathrm{KL}\left(q_\eta(z \mid x) p_{data}(x)
       \,\|\, p_\theta(x, z)\right) - \mathrm{H}\left(p_{data}(x)\right)

    Precisely: it holds in value up to the data entropy :math:`\mathrm{H}(p_{data})` (a
    constant), and exactly in the θ- and η-gradients. It is the :math:`y = 0` branch of the
    lecture's statement with the perfect, degenerate discriminator :math:`q_*` (which puts
    :math:`y = 0` on data, so :math:`2 \cdot \mathbb{E}_{p_{\theta_0}(x)}[\ldots]` reduces to
    :math:`\mathbb{E}_{p_{data}(x)}[\ldots]`). The lecture's second line, with the normalized
    posterior :math:`p_\theta(z, y \mid x)` in the KL, holds only up to
    :math:`\mathbb{E}_{p_{data}}[\log p_\theta(x)]`, which depends on θ; the joint
    :math:`p_\theta(x, z)` is what makes the gradients agree. :func:`lemma2_as_written` gives
    the lecture's two lines for display.
    """
    q_joint = encoder * p_data
    right = -KL(q_joint, joint)
    entropy = H(p_data)
    steps = (
        Step(_vae_objective(), "the VAE objective of §3.3"),
        Step(E(p_data, E(encoder, log(decoder) + log(prior) - log(encoder))),
             "KL(q_η(z|x) ‖ p(z)) = E_{q_η(z|x)}[log q_η(z|x) − log p(z)]"),
        Step(E(q_joint, log(joint) - log(q_joint)) + E(p_data, log(p_data)),
             "p_θ(x|z) p(z) = p_θ(x, z); add and subtract log p_data(x)"),
        Step(right - entropy, "definitions of the KL between joints on (x, z) and of H"),
        Step(right, "H(p_data) does not depend on θ or η: equal gradients, values apart by it",
             "≃"),
    )
    return Rewrite(
        name="lemma2",
        left=(_vae_objective(),),
        right=(right,),
        constant=(entropy,),
        sense=_sense("lemma2"),
        wrt=("theta", "eta"),
        steps=(steps,),
    )


def lemma2_as_written() -> tuple[Term, Term]:
    r"""The two lines of Lemma 2 as the lecture prints them (§3.3), for display.

    .. math::
       2 \cdot \mathbb{E}_{p_{\theta_0}(x)}\left[\mathbb{E}_{q_\eta(z \mid x, y) q^{r}_*(y \mid x)}
       \left[\log p_\theta(x \mid z, y)\right] - \mathrm{KL}\left(q_\eta(z \mid x, y)
       q^{r}_*(y \mid x) \,\|\, p(z \mid y) p(y)\right)\right]

    and :math:`2 \cdot \mathbb{E}_{p_{\theta_0}(x)}[-\mathrm{KL}(q_\eta(z \mid x, y)
    q^r_*(y \mid x) \,\|\, p_\theta(z, y \mid x))]`. They are not claimed equal to
    :math:`\mathcal{L}^{vae}` as written: see :func:`lemma2` for the precise statement.
    """
    inference = dist("q", over="z", given="x,y", params="eta") * reverse(
        dist("q_*", over="y", given="x"))
    mixture0 = dist("p", over="x", params="theta0")
    first = 2 * E(mixture0, E(inference, log(dist("p", over="x", given="z,y", params="theta")))
                  - KL(inference, dist("p", over="z", given="y") * p_y))
    second = 2 * E(mixture0, -KL(inference, dist("p", over="z,y", given="x", params="theta")))
    return first, second


def wake_sleep() -> Rewrite:
    r"""§3.4: the VAE extends the wake phase, the GAN discriminator is the sleep phase.

    Component 0: :math:`\nabla_\theta \mathcal{L}^{vae}_{\theta, \eta} = \nabla_\theta
    \mathbb{E}_{q_\eta(z \mid x) p_{data}(x)}[\log p_\theta(x, z)]` (the wake phase with
    :math:`h := z`, :math:`\lambda := \eta`) at every point; the values differ by the encoder
    entropy :math:`\mathbb{E}_{p_{data}(x)}[\mathrm{H}(q_\eta(z \mid x))]`, constant in θ but
    not in η (so no η-gradient claim).

    Component 1: the GAN discriminator objective is the sleep objective
    :math:`\mathbb{E}_{p_\theta(x \mid h) p(h)}[\log q_\lambda(h \mid x)]` with :math:`h := y`
    and :math:`\lambda := \phi`; for uniform :math:`p(y)` it equals
    :math:`\tfrac12 \mathcal{L}_D`, exactly in value and in the φ- and θ-gradients.
    """
    wake = E(encoder * p_data, log(joint))
    encoder_entropy = E(p_data, H(encoder))
    vae = (
        Step(_vae_objective(), "the VAE objective of §3.3"),
        Step(E(p_data, E(encoder, log(decoder) + log(prior)) + H(encoder)),
             "KL(q_η(z|x) ‖ p(z)) = −E_{q_η(z|x)}[log p(z)] − H(q_η(z|x))"),
        Step(wake + encoder_entropy, "p_θ(x|z) p(z) = p_θ(x, z); linearity"),
        Step(wake, "the entropy term does not depend on θ: equal θ-gradients (the wake phase "
             "with h := z, λ := η)", "≃"),
    )
    sleep = E(generative * p_y, log(discriminator))
    classic = E(p_data, log(discriminator, y=1)) + E(generated, log(discriminator, y=0))
    gan = (
        Step(sleep, "the sleep objective E_{p_θ(x|h)p(h)}[log q_λ(h|x)] with h := y, λ := φ"),
        Step(E(p_y, E(generative, log(discriminator))), "iterate the expectation"),
        Step(0.5 * E(real, log(discriminator, y=1)) + 0.5 * E(generated, log(discriminator, y=0)),
             "p(y) uniform on {0, 1}: enumerate y"),
        Step(0.5 * classic, "p_θ(x|y=1) = p_data(x): half the discriminator objective L_D of §3"),
    )
    return Rewrite(
        name="wake-sleep",
        left=(_vae_objective(), sleep),
        right=(wake, 0.5 * classic),
        constant=(-encoder_entropy, ZERO),
        sense=_sense("wake-sleep"),
        wrt=("theta", "phi"),
        steps=(vae, gan),
    )


IDENTITIES: Mapping[str, Rewrite] = {
    rewrite.name: rewrite
    for rewrite in (elbo_decomposition(), lemma1(), lemma2(), wake_sleep())
}
"""Every identity as a :class:`Rewrite`, by the names :mod:`unigen.algebra.verify` uses."""


# ---------------------------------------------------------------------------------------------
# The identities checked on their finite models, as instances of verify.


def _table(log_probs: Callable[[Any, Mapping[str, Any]], Any]) -> Binding:
    """A categorical over a finite space, from its log-probabilities (params, given) -> [n]."""
    return explicit(lambda params, given: numpyro_dist.CategoricalLogits(log_probs(params, given)))


def _bernoulli(logits: Callable[[Any, Mapping[str, Any]], Any]) -> Binding:
    return explicit(lambda params, given: numpyro_dist.BernoulliLogits(logits(params, given)))


def _finite_bindings() -> dict[Dist, Binding]:
    """Every distribution of the identities on the finite models of :mod:`unigen.algebra.verify`
    (the logits tables of its ``latent_point``; ``p_θ(x|y=0)`` is the VAE marginal)."""
    return {
        p_data: _table(lambda p, g: p["data"]),
        p_y: _table(lambda p, g: jnp.zeros(2, dtype=jnp.float64)),
        prior: _table(lambda p, g: p["prior"]),
        decoder: _table(lambda p, g: p["theta"][g["z"]]),
        encoder: _table(lambda p, g: p["eta"][g["x"]]),
        marginal: _table(lambda p, g: log_marginal(p)),
        posterior: _table(lambda p, g: log_posterior(p)[g["x"]]),
        generative: _table(lambda p, g: jnp.stack([log_marginal(p),
                                                   log_data(p)])[g["y"]]),
        discriminator: _bernoulli(lambda p, g: p["phi"][g["x"]]),
    }


def _lemma1_bindings() -> dict[Dist, Binding]:
    """Lemma 1's finite model: ``p_θ(x|y=0) = softmax(θ)`` (a GAN generator), θ0 = sg(θ)."""
    return {
        p_y: _table(lambda p, g: jnp.zeros(2, dtype=jnp.float64)),
        generative: _table(lambda p, g: jnp.stack([log_gan_generator(p),
                                                   log_data(p)])[g["y"]]),
        _unreversed(reversed0): _bernoulli(lambda p, g: p["phi"][g["x"]]),
        mixture0: _table(lambda p, g: log_mixture0(p)),
        target: _table(lambda p, g: lemma1_tables(p)[2][g["y"]]),
    }


def _unreversed(d: Dist) -> Dist:
    return reverse(d) if d.reversed else d


def _joint_as_product(term: Term) -> Term:
    """``term`` with the joint p_θ(x, z) written p(z) p_θ(x|z), the factors compile binds."""
    return substitute(term, {joint: prior * decoder})


class _Check(NamedTuple):
    """One component of a built-in identity, as verify checks it."""

    lhs: Term
    rhs: Term
    per_example: bool  # for every x (the batch holds every x) rather than in expectation


def _components(name: str) -> tuple[tuple[_Check, ...], dict[Dist, Binding]]:
    rewrite = IDENTITIES[name]
    if name == "lemma1":
        # The symbolic E_{p(y)}[log Z_y], written so it computes: log Z_y = log q^r_φ0(y|x)
        # + log p_θ0(x) − log q^r(x|y) for every x, so any expectation over x gives it.
        log_normalizer = E(p_y, E(target, log(reversed0) + log(mixture0) - log(target)))
        return ((_Check(rewrite.left[0] + log_normalizer, rewrite.right[0], False),),
                _lemma1_bindings())
    per_x = name == "elbo-decomposition"
    bindings = _finite_bindings()
    if per_x:
        bindings[p_data] = data("x")
    checks = []
    for left, constant, right in zip(rewrite.left, rewrite.constant, rewrite.right):
        lhs = left if constant == ZERO else left + constant
        lhs, rhs = _joint_as_product(lhs), _joint_as_product(right)
        if per_x:
            lhs, rhs = E(p_data, lhs), E(p_data, rhs)
        checks.append(_Check(lhs, rhs, per_x))
    return tuple(checks), bindings


@functools.lru_cache(maxsize=None)
def _checker(name: str, sizes: tuple[tuple[str, int], ...]) -> Callable[[Any], Errors]:
    """One jit-compiled ``errors(point)`` over every component (cached per name and sizes)."""
    checks, bindings = _components(name)
    identity = VERIFIED[name]
    with jax.enable_x64(True):
        example = identity.points(jax.random.key(0), dict(sizes))[0]
        batch = {"x": jnp.arange(dict(sizes)["x"])}
        differences = [
            prepare(check.lhs, check.rhs, bindings, example,
                    batch if check.per_example else {}, per_example=check.per_example,
                    method="exact", nodes=1)[1]
            for check in checks]
    return measure("exact", lambda params, key: jnp.concatenate(
        [jnp.ravel(difference(params, key)) for difference in differences]), identity.wrt)


def check_identity(name: str, *, seed: int = 0,
                   sizes: Mapping[str, int] | None = None) -> Verification:
    """Check one of the lecture's identities exactly on its finite model.

    Each component ``left + constant = right`` of :data:`IDENTITIES` ``[name]`` is compiled
    from the expressions printed here (the joint p_θ(x, z) as p(z) p_θ(x|z); Lemma 1's
    E_{p(y)}[log Z_y] in a computable form) and checked by :func:`unigen.algebra.verify` with
    ``method="exact"`` at the identity's points drawn from ``seed``: values and gradients w.r.t.
    the identity's groups, for every x in the ELBO decomposition.

    Args:
      name: one of ``"elbo-decomposition"``, ``"lemma1"``, ``"lemma2"``, ``"wake-sleep"``.
      seed: seed of the random parameter points.
      sizes: sizes of the finite spaces, ``{"x": K, "z": M}`` (each >= 2); default
        ``verify.DEFAULT_SIZES``.

    Returns:
      The :class:`~unigen.algebra.verify.Verification`, errors maximized over the points and
      components, with the identity's sense.

    Raises:
      ConfigError: unknown ``name`` or bad ``sizes``.
    """
    if name not in VERIFIED:
        raise ConfigError(
            f"name: unknown identity {describe(name)}, expected one of "
            f"{sorted(VERIFIED)}")
    checked = checked_sizes(sizes)
    identity = VERIFIED[name]
    errors_at = _checker(name, tuple(sorted(checked.items())))
    value, grad = 0.0, 0.0
    with jax.enable_x64(True):
        for point in identity.points(jax.random.key(seed), checked):
            errors = errors_at(point)
            value, grad = max(value, errors.value), max(grad, errors.grad)
    space = {"x": checked["x"], **({} if name == "lemma1" else {"z": checked["z"]}), "y": 2}
    return result(name, "exact", Errors(value, grad), identity.wrt, sense=identity.sense,
                  space=space)
