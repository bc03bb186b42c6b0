r"""Objectives as small immutable expression trees, in the lecture's notation.

The unified view (§3) writes every objective with a handful of pieces: variables
:math:`x, y, z, h, c`; distributions such as :math:`p_\theta(x \mid z, y)`,
:math:`q_\phi(y \mid x)`, :math:`q_\eta(z \mid x, y)`, :math:`p_{data}(x)`, :math:`p(z)`,
:math:`p(y)`; the reversed discriminator :math:`q^r(y \mid x) = q(1 - y \mid x)`; and the
operations :math:`\log`, :math:`\mathbb{E}`, :math:`\mathrm{KL}`, :math:`\mathrm{JSD}`,
:math:`\mathrm{H}`, sums, scalings and the stop-gradient. For example the VAE objective (§3.3)

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)\right]
   - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)\right]

is written::

    p_data = dist("p_data", over="x")
    decoder = dist("p", over="x", given="z", params="theta")
    encoder = dist("q", over="z", given="x", params="eta")
    prior = dist("p", over="z")
    vae = E(p_data, E(encoder, log(decoder)) - KL(encoder, prior))

Nodes are frozen dataclasses: hashable, comparable by structure, never mutated. Distributions
(:class:`Dist`, :class:`Product`) are not scalar terms: they appear only under :func:`E`,
:func:`log`, :func:`KL`, :func:`JSD` and :func:`H`, and multiplying two of them gives their
product. Scalar terms (:class:`Term`) support ``+``, ``-``, unary ``-`` and ``*`` by a number.
``log(q, y=1)`` is the log-density at a fixed value, :math:`\log q_\phi(y=1 \mid x)` (the GAN's
:math:`\log D(x)`). Figure 5 and the lemmas also need the perfect discriminator ``"q_*"``, the
distribution ``"q^r"`` of Lemma 1 (a superscripted name, not the reversed flag), frozen copies
of a group (``params="theta0"``, :math:`\theta_0`) and, for the IWAE,
:func:`importance_weighted_bound`; for the importance-weighted GAN,
:func:`importance_weighted`.

There is no simplifier: the tree is exactly what was written. Printing (``str``, ``.latex()``,
``_repr_latex_``) lives in :mod:`unigen.algebra.printing`.
"""

from __future__ import annotations

import math
import re
import itertools
from dataclasses import dataclass, field, replace
from numbers import Real
from typing import Any

from unigen.algebra.symbols import FROZEN, GREEK, is_identifier
from unigen.errors import ConfigError, UnigenError, describe

__all__ = [
    "Coefficient",
    "Constant",
    "Dist",
    "Distribution",
    "E",
    "Entropy",
    "Expectation",
    "ExpressionError",
    "FROZEN",
    "H",
    "ImportanceWeightedBound",
    "ImportanceWeightedExpectation",
    "JSD",
    "JSDivergence",
    "KL",
    "KLDivergence",
    "LOG2",
    "Log",
    "Neg",
    "Node",
    "PARAMS",
    "Product",
    "Scale",
    "StopGradient",
    "Sum",
    "Term",
    "VARIABLES",
    "Var",
    "children",
    "coefficient",
    "coefficients",
    "constant",
    "dist",
    "free_params",
    "importance_weighted",
    "importance_weighted_bound",
    "log",
    "nodes",
    "reverse",
    "sg",
    "variables",
]

VARIABLES = ("x", "y", "z", "h", "c")
"""The lecture's variable names: data ``x``, the real/fake indicator ``y``, latents ``z``, ``h``,
code ``c``. The vocabulary is open: any identifier is a variable (``x_rec``, ``xt``, ``s``)."""

PARAMS = {"theta": "θ", "phi": "φ", "eta": "η", "lambda": "λ"}
"""The lecture's parameter groups and their Greek letters (λ is the wake-sleep recognition model
of §3.4). The vocabulary is open: any identifier is a group (``psi`` prints ψ, ``enc`` prints enc);
see :mod:`unigen.algebra.symbols`. A group name ending in :data:`FROZEN` (``"theta0"``, θ₀) is a
frozen copy: a distribution may carry it; a phase cannot update it."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(\^[A-Za-z0-9]+)?(_([A-Za-z0-9]+|\*))?")


class ExpressionError(UnigenError, TypeError):
    """An operand has the wrong kind (a distribution where a term is expected, or the converse)."""


class Node:
    """Base of every node; printing is delegated to :mod:`unigen.algebra.printing`."""

    __slots__ = ()

    def __str__(self) -> str:
        from unigen.algebra import printing

        return printing.to_unicode(self)

    def latex(self) -> str:
        """The node in LaTeX (math mode, without the surrounding ``$``)."""
        from unigen.algebra import printing

        return printing.to_latex(self)

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"


# --------------------------------------------------------------------------------------------
# Variables and distributions


@dataclass(frozen=True)
class Var(Node):
    """A variable, free (``y``) or fixed to a value in a conditioning (``y=0``).

    Attributes:
      name: any identifier (``"x"``, ``"x_rec"``, ``"xt"``); :data:`VARIABLES` are the lecture's.
      value: an integer the variable is fixed to, or ``None``.
    """

    name: str
    value: int | None = None

    def __post_init__(self) -> None:
        if not is_identifier(self.name):
            raise ConfigError(
                f"variable: got {describe(self.name)}, expected an identifier such as 'x', "
                "'x_rec' or 'z2'"
            )
        fixed = self.value is not None
        if fixed and (isinstance(self.value, bool) or not isinstance(self.value, int)):
            raise ConfigError(
                f"value of {self.name}: got {describe(self.value)}, expected an int or None"
            )


class Distribution(Node):
    r"""A density or mass function: a :class:`Dist` or a :class:`Product` of them.

    ``a * b`` is the product :math:`a\,b` (a joint, e.g. :math:`p(y) p_\theta(x \mid y)`).
    """

    __slots__ = ()

    @property
    def over_names(self) -> frozenset[str]:
        """Names of the variables the distribution is over."""
        raise NotImplementedError

    def __mul__(self, other: object) -> Product:
        return Product(_factors(self) + _factors(_distribution(other, "right factor")))


_identities = itertools.count(1)


@dataclass(frozen=True)
class Dist(Distribution):
    r"""A named distribution :math:`\mathrm{name}_{params}(over \mid given)`.

    Two distributions are the same only when one was derived from the other (by
    :meth:`fixed`, :func:`reverse`, or ``dataclasses.replace``): each :func:`dist` call makes a
    new one, even if it prints like another. So a VAE-GAN's decoder :math:`p_\theta(x \mid z)`
    and a generator that prints alike are two binding keys, not one.

    Attributes:
      name: ``"p"``, ``"q"``, a subscripted name such as ``"p_data"`` or ``"q_*"`` (the perfect
        discriminator of §3.3), or a superscripted one such as ``"q^r"`` (the distribution
        :math:`q^r(x \mid y) \propto q^r(y \mid x)\, p_{\theta_0}(x)` of Lemma 1).
      over: the variables it is a distribution of (free, no values).
      given: the conditioning variables, possibly fixed (``y=0``).
      params: the parameter group it depends on (any identifier, ``"theta"``, ``"psi"``; a
        frozen copy such as ``"theta0"``), a tuple of groups (``("theta", "phi")``), or ``None``
        for a fixed distribution.
      reversed: the reversed discriminator :math:`q^r(y \mid x) = q(1 - y \mid x)`.
      identity: what makes two distributions that print alike distinct (set by the
        constructor; kept by :meth:`fixed`, :func:`reverse` and ``dataclasses.replace``).
    """

    name: str
    over: tuple[Var, ...]
    given: tuple[Var, ...] = ()
    params: str | tuple[str, ...] | None = None
    reversed: bool = False
    identity: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if not self.identity:
            object.__setattr__(self, "identity", next(_identities))
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"name: got {describe(self.name)}, expected a letter-led name with at most one "
                "superscript and one subscript, such as 'p', 'q', 'p_data', 'q_*' or 'q^r'"
            )
        if not self.over:
            raise ConfigError(f"over of {self.name}: got no variables, expected at least one")
        names = [v.name for v in self.over]
        if len(set(names)) != len(names):
            raise ConfigError(f"over of {self.name}: got {names}, expected distinct variables")
        for v in self.over:
            if v.value is not None:
                raise ConfigError(
                    f"over of {self.name}: got {v.name}={v.value}, expected free variables "
                    "(fix values in given)"
                )
        given = [v.name for v in self.given]
        if len(set(given)) != len(given):
            raise ConfigError(f"given of {self.name}: got {given}, expected distinct variables")
        both = sorted(set(names) & set(given))
        if both:
            raise ConfigError(
                f"given of {self.name}: got {both} in both over and given, expected disjoint sets"
            )
        if self.params is not None:
            groups = (self.params,) if isinstance(self.params, str) else self.params
            if (not isinstance(groups, tuple) or not groups
                    or not all(is_identifier(g) for g in groups) or len(set(groups)) != len(groups)):
                raise ConfigError(
                    f"params of {self.name}: got {describe(self.params)}, expected a group name "
                    "such as 'theta' or 'psi', a tuple of distinct ones, or None"
                )
        if self.params is not None and "_" in self.name:
            raise ConfigError(
                f"params of {self.name}: got {self.params!r} on a subscripted name, expected None"
            )
        if self.reversed and names != ["y"]:
            raise ConfigError(
                f"reversed {self.name}: got a distribution over {names}, expected one over ['y'] "
                "(q^r(y|x) = q(1-y|x) flips the binary indicator)"
            )
        if self.reversed and "^" in self.name:
            raise ConfigError(
                f"reversed {self.name}: got a name that already has a superscript, expected a "
                "plain or subscripted name such as 'q' or 'q_*'"
            )

    @property
    def over_names(self) -> frozenset[str]:
        return frozenset(v.name for v in self.over)

    @property
    def groups(self) -> tuple[str, ...]:
        """The parameter groups it depends on, always as a tuple (empty for a fixed one)."""
        if self.params is None:
            return ()
        return (self.params,) if isinstance(self.params, str) else tuple(self.params)

    def fixed(self, **values: int) -> Dist:
        r"""The same distribution with conditioning variables fixed: ``p.fixed(y=0)`` is
        :math:`p_\theta(x \mid y=0)` when ``p`` is :math:`p_\theta(x \mid y)` (one binding
        key family: a binding of either serves both, the fixed one first)."""
        names = {v.name for v in self.given}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"fixed of {self}: got {unknown}, expected conditioning variables {sorted(names)}"
            )
        given = tuple(
            _fixed(v.name, values[v.name], "fixed") if v.name in values else v for v in self.given
        )
        return replace(self, given=given)


@dataclass(frozen=True)
class Product(Distribution):
    r"""A product of distributions over disjoint variables, :math:`p(y)\,p_\theta(x \mid y)`."""

    factors: tuple[Dist, ...]

    def __post_init__(self) -> None:
        if len(self.factors) < 2:
            raise ConfigError(f"factors: got {len(self.factors)}, expected at least two")
        seen: set[str] = set()
        for factor in self.factors:
            if not isinstance(factor, Dist):
                raise ExpressionError(f"factor: got {describe(factor)}, expected a Dist")
            shared = seen & factor.over_names
            if shared:
                raise ConfigError(
                    f"factors: got {sorted(shared)} in two factors, expected factors over "
                    "disjoint variables"
                )
            seen |= factor.over_names

    @property
    def over_names(self) -> frozenset[str]:
        return frozenset().union(*(f.over_names for f in self.factors))


def dist(
    name: str,
    over: str | tuple[str, ...],
    given: str | tuple[str, ...] = (),
    params: str | tuple[str, ...] | None = None,
) -> Dist:
    r"""A new distribution, e.g. ``dist("p", over="x", given="z,y", params="theta")``.

    Each call makes a distinct distribution (see :class:`Dist`), even when it prints like
    another; derive related ones with :meth:`Dist.fixed` and :func:`reverse`.

    Args:
      name: ``"p"``, ``"q"``, ``"p_data"``, ...
      over: variable names (any identifiers), as ``"x"``, ``"x,z"`` or ``("x", "z")``.
      given: conditioning variables in the same forms; ``"y=0"`` fixes a value.
      params: the parameter group(s) it depends on: ``"theta"``, ``"psi"``, ``"enc"`` (any
        identifier, or a Greek letter ``"θ"``), several as ``"theta,phi"`` or a tuple, a frozen
        copy such as ``"theta0"`` (or ``"θ0"``), or ``None``.

    Returns:
      The :class:`Dist` :math:`\mathrm{name}_{params}(over \mid given)`.
    """
    return Dist(name, _vars(over, "over"), _vars(given, "given"), _groups(params, name))


def _groups(params: Any, name: str) -> str | tuple[str, ...] | None:
    if params is None:
        return None
    letters = {letter: group for group, letter in GREEK.items()}
    parts = params.split(",") if isinstance(params, str) else params
    if not isinstance(parts, (tuple, list)) or not all(isinstance(p, str) for p in parts):
        raise ConfigError(
            f"params of {name}: got {describe(params)}, expected a group name such as 'theta', "
            "'theta,phi', a tuple of names, or None"
        )
    groups = []
    for part in (p.strip() for p in parts):
        stem, digits = part.rstrip("0123456789"), part[len(part.rstrip("0123456789")):]
        groups.append(letters.get(stem, stem) + digits)
    return groups[0] if len(groups) == 1 else tuple(groups)


def reverse(q: Dist) -> Dist:
    r"""The reversed distribution :math:`q^r(y \mid x) = q(1 - y \mid x)` (§3.1)."""
    if not isinstance(q, Dist):
        raise ExpressionError(f"q: got {describe(q)}, expected a Dist over y")
    return replace(q, reversed=not q.reversed)


# --------------------------------------------------------------------------------------------
# Scalar terms


class Term(Node):
    """A scalar-valued expression; supports ``+``, ``-``, unary ``-`` and ``*`` by a number."""

    __slots__ = ()

    def __add__(self, other: object) -> Sum:
        terms = self.terms if isinstance(self, Sum) else (self,)
        return Sum(terms + (_term(other, "right operand of +"),))

    def __radd__(self, other: object) -> Sum:
        return Sum((_term(other, "left operand of +"), self))

    def __sub__(self, other: object) -> Sum:
        return self + Neg(_term(other, "right operand of -"))

    def __rsub__(self, other: object) -> Sum:
        return Sum((_term(other, "left operand of -"), Neg(self)))

    def __neg__(self) -> Neg:
        return Neg(self)

    def __mul__(self, factor: object) -> Scale:
        return Scale(factor, self)  # type: ignore[arg-type]

    __rmul__ = __mul__


@dataclass(frozen=True)
class Constant(Term):
    """A named constant such as :math:`\\log 2`, a plain number, or a symbolic constant.

    Attributes:
      name: how it prints in Unicode.
      value: its numerical value, or ``None`` for a symbolic constant that only prints (such as
        the normalizer :math:`\\log Z_y` of Lemma 1 in :mod:`unigen.algebra.identities`); a
        symbolic constant cannot be compiled.
      latex_name: how it prints in LaTeX (defaults to ``name``).
    """

    name: str
    value: float | None
    latex_name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name: got {describe(self.name)}, expected a non-empty string")
        if self.value is not None and not _is_number(self.value):
            raise ConfigError(
                f"value of {self.name}: got {describe(self.value)}, expected a number or None"
            )


@dataclass(frozen=True)
class Log(Term):
    r"""The log-density of a distribution at its variables, :math:`\log p_\theta(x \mid z)`,
    or with some of them fixed, :math:`\log q_\phi(y=1 \mid x)` (the GAN's :math:`\log D(x)`).

    Attributes:
      dist: the distribution.
      at: values for some of the variables the distribution is over, as ``Var(name, value)``
        in the order of ``dist``'s variables; the others are the free variables of the context.
    """

    dist: Distribution
    at: tuple[Var, ...] = ()

    def __post_init__(self) -> None:
        _distribution(self.dist, "log of")
        if not isinstance(self.at, tuple):
            raise ConfigError(f"at: got {describe(self.at)}, expected a tuple of Var")
        names = []
        for v in self.at:
            if not isinstance(v, Var) or v.value is None:
                raise ConfigError(
                    f"at: got {describe(v)}, expected Var(name, value) with an integer value"
                )
            if v.name not in self.dist.over_names:
                raise ConfigError(
                    f"at: got {v.name}={v.value}, expected one of the variables the "
                    f"distribution is over, {sorted(self.dist.over_names)}"
                )
            names.append(v.name)
        if len(set(names)) != len(names):
            raise ConfigError(f"at: got {names}, expected distinct variables")


@dataclass(frozen=True)
class Expectation(Term):
    r"""The expectation :math:`\mathbb{E}_{dist}[body]`."""

    dist: Distribution
    body: Term

    def __post_init__(self) -> None:
        _distribution(self.dist, "E over")
        _term(self.body, "E body", numbers=False)


@dataclass(frozen=True)
class KLDivergence(Term):
    r""":math:`\mathrm{KL}(a \,\|\, b)`; both sides over the same variables."""

    a: Distribution
    b: Distribution

    def __post_init__(self) -> None:
        _same_support(self.a, self.b, "KL")


@dataclass(frozen=True)
class JSDivergence(Term):
    r""":math:`\mathrm{JSD}(a \,\|\, b)`; both sides over the same variables."""

    a: Distribution
    b: Distribution

    def __post_init__(self) -> None:
        _same_support(self.a, self.b, "JSD")


@dataclass(frozen=True)
class Entropy(Term):
    r"""The entropy :math:`\mathrm{H}(a) = -\mathbb{E}_a[\log a]`."""

    dist: Distribution

    def __post_init__(self) -> None:
        _distribution(self.dist, "H of")


@dataclass(frozen=True)
class ImportanceWeightedBound(Term):
    r"""The importance-weighted bound (Burda et al.; :mod:`unigen.algorithms.iwae`),

    .. math::
       \mathbb{E}_{z_1, \ldots, z_k \sim q_\eta(z \mid x)}\left[\log \frac{1}{k}
       \sum_{i=1}^{k} \frac{p_\theta(x, z_i)}{q_\eta(z_i \mid x)}\right],

    the log of the mean of k importance weights, in expectation over the k independent draws.
    It is one node, not an expectation of a log of a sum, because the algebra has no indexed
    draws. :func:`unigen.algebra.compile` computes it (with a number for k, a target it can take
    the log-density of, e.g. :math:`p(z)\,p_\theta(x \mid z)`, and a reparameterizable
    proposal); :func:`unigen.algorithms.iwae.iwae_bound` is the hand-written estimator.

    Attributes:
      target: the unnormalized target, a joint over the data and the latent, :math:`p_\theta(x, z)`.
      proposal: the proposal over one latent variable, :math:`q_\eta(z \mid x)`.
      k: the number of draws, or ``None`` for the symbol :math:`k`.
    """

    target: Distribution
    proposal: Dist
    k: int | None = None

    def __post_init__(self) -> None:
        _distribution(self.target, "target of the bound")
        if not isinstance(self.proposal, Dist):
            raise ExpressionError(
                f"proposal: got {describe(self.proposal)}, expected a Dist over one latent"
            )
        if len(self.proposal.over) != 1:
            raise ConfigError(
                f"proposal: got a distribution over {sorted(self.proposal.over_names)}, expected "
                "one over a single latent variable"
            )
        if not self.proposal.over_names <= self.target.over_names:
            raise ConfigError(
                f"target: got a distribution over {sorted(self.target.over_names)}, expected one "
                f"over the proposal's variable {sorted(self.proposal.over_names)} too"
            )
        if self.k is not None and (
            isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1
        ):
            raise ConfigError(f"k: got {describe(self.k)}, expected a positive int or None")


@dataclass(frozen=True)
class ImportanceWeightedExpectation(Term):
    r"""An expectation over k draws, each weighted by its self-normalized importance weight
    (Hu et al. 2018, §4.1, Eq. 16: the importance-weighted GAN's generator),

    .. math::
       \mathbb{E}_{x_1, \ldots, x_k \sim p(x)}\left[\sum_{i=1}^{k} \tilde{w}_i\, f(x_i)\right],
       \qquad \tilde{w}_i = \frac{w_i}{\sum_{j=1}^{k} w_j}, \quad \log w_i = g(x_i),

    with ``body`` = f and ``log_weight`` = g. The weights are held constant (no gradient flows
    through them); the draws are pathwise, so the gradient is
    :math:`\sum_i \tilde w_i \nabla f(x_i)`. With equal weights, or one draw, it is the plain
    expectation :math:`\mathbb{E}_{p(x)}[f]` estimated from the same draws.
    :func:`unigen.algebra.compile` draws k = the batch size at the top level (the generated
    samples of the minibatch) and normalizes with a softmax of the log-weights, which is finite
    for any finite log-weight.

    Attributes:
      dist: the distribution drawn from, over one variable (:math:`p_\theta(x \mid y=0)`).
      body: the term averaged, :math:`f`.
      log_weight: the log importance weight :math:`\log w` as a term of the drawn variable, e.g.
        :math:`\log q^r_\phi(y=0 \mid x) - \log q_\phi(y=0 \mid x)`; a difference of two
        log-densities prints as their ratio.
    """

    dist: Dist
    body: Term
    log_weight: Term

    def __post_init__(self) -> None:
        if not isinstance(self.dist, Dist) or len(self.dist.over) != 1:
            raise ExpressionError(
                f"E over: got {describe(self.dist)}, expected a Dist over one variable"
            )
        _term(self.body, "E body", numbers=False)
        _term(self.log_weight, "log_weight", numbers=False)


@dataclass(frozen=True)
class Sum(Term):
    """A sum of terms; ``a - b`` is ``Sum((a, Neg(b)))`` and prints as ``a − b``."""

    terms: tuple[Term, ...]

    def __post_init__(self) -> None:
        if len(self.terms) < 2:
            raise ConfigError(f"terms: got {len(self.terms)}, expected at least two")
        for term in self.terms:
            _term(term, "summand", numbers=False)


@dataclass(frozen=True)
class Neg(Term):
    """The negation :math:`-a`."""

    term: Term

    def __post_init__(self) -> None:
        _term(self.term, "negated operand", numbers=False)


@dataclass(frozen=True)
class Coefficient:
    r"""A named coefficient, such as the β of a β-VAE: prints as its symbol (β), scales a term
    (``beta * KL(q, p)``), and takes its value when the objective is compiled.

    Attributes:
      name: an identifier; Greek names print as the letter (``"beta"`` prints β, see
        :mod:`unigen.algebra.symbols`).
      value: the default value: a number, an array, or a schedule ``value(step)`` of the
        training step (any optax schedule, e.g. ``optax.linear_schedule(0.0, 1.0, 1000)`` for
        KL annealing); ``None`` when it must be given to :func:`unigen.algebra.compile`.
    """

    name: str
    value: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not is_identifier(self.name):
            raise ConfigError(
                f"coefficient name: got {describe(self.name)}, expected an identifier such as "
                "'beta'"
            )
        if self.value is not None and not callable(self.value):
            if _is_number(self.value) and not math.isfinite(float(self.value)):
                raise ConfigError(
                    f"value of {self.name}: got {self.value}, expected a finite number"
                )

    def __str__(self) -> str:
        from unigen.algebra.symbols import symbol

        return symbol(self.name)

    def latex(self) -> str:
        """The symbol in LaTeX (``\\beta``)."""
        from unigen.algebra.symbols import symbol

        return symbol(self.name, latex=True)

    def __mul__(self, term: object) -> Scale:
        return Scale(self, _term(term, "operand of the coefficient", numbers=False))

    __rmul__ = __mul__


def coefficient(name: str, value: Any = None) -> Coefficient:
    r"""A named coefficient: ``beta = coefficient("beta", 4.0)`` prints as β.

    Args:
      name: an identifier (``"beta"``, ``"lambda_kl"``).
      value: its default value: a number, an array, a schedule ``value(step) -> scalar``
        (``optax.linear_schedule(0.0, 1.0, 1000)``), or ``None`` (then
        :func:`unigen.algebra.compile` needs it in ``coefficients=``).
    """
    return Coefficient(name, value)


@dataclass(frozen=True)
class Scale(Term):
    r"""A term scaled by a constant factor, :math:`2 \cdot a`, or by a named coefficient,
    :math:`\beta \cdot a`."""

    factor: float | Coefficient
    term: Term

    def __post_init__(self) -> None:
        if not isinstance(self.factor, Coefficient):
            if not _is_number(self.factor):
                raise ExpressionError(
                    f"factor: got {describe(self.factor)}, expected a real number or a "
                    "coefficient('beta', ...)"
                )
            if not math.isfinite(self.factor):
                raise ConfigError(f"factor: got {self.factor}, expected a finite number")
        _term(self.term, "scaled operand", numbers=False)


@dataclass(frozen=True)
class StopGradient(Term):
    r"""The stop-gradient :math:`\mathrm{sg}[a]`: the value of ``a``, with zero gradient."""

    term: Term

    def __post_init__(self) -> None:
        _term(self.term, "sg of", numbers=False)


# --------------------------------------------------------------------------------------------
# Construction in the lecture's words


def E(over: Distribution | tuple[Dist, ...], body: Term) -> Expectation:
    r""":math:`\mathbb{E}_{over}[body]`; a tuple ``over`` means the product of its factors."""
    if isinstance(over, tuple):
        over = Product(over)
    return Expectation(over, body)


def log(d: Distribution, **at: int) -> Log:
    r""":math:`\log d`, the log-density at the distribution's own variables.

    Keyword arguments fix some of them: ``log(q, y=1)`` is :math:`\log q_\phi(y=1 \mid x)`.

    Args:
      d: the distribution.
      **at: integer values for variables ``d`` is over.

    Returns:
      The :class:`Log` node.
    """
    _distribution(d, "log of")
    fixed = []
    for v in (v for factor in _factors(d) for v in factor.over):
        if v.name in at:
            fixed.append(_fixed(v.name, at[v.name], "log at"))
    unknown = sorted(set(at) - {v.name for v in fixed})
    if unknown:
        raise ConfigError(
            f"log at: got {unknown}, expected variables the distribution is over, "
            f"{sorted(d.over_names)}"
        )
    return Log(d, tuple(fixed))


def importance_weighted_bound(
    target: Distribution, proposal: Dist, k: int | None = None
) -> ImportanceWeightedBound:
    r"""The IWAE bound :math:`\mathbb{E}[\log \frac1k \sum_i p(x, z_i) / q(z_i \mid x)]`.

    Args:
      target: the joint :math:`p_\theta(x, z)`.
      proposal: :math:`q_\eta(z \mid x)`, over the latent the draws index.
      k: the number of draws (``None``: the symbol :math:`k`).
    """
    return ImportanceWeightedBound(target, proposal, k)


def importance_weighted(over: Dist, body: Term, log_weight: Term) -> ImportanceWeightedExpectation:
    r""":math:`\mathbb{E}_{x_1, \ldots, x_k \sim over}[\sum_i \tilde w_i\, body(x_i)]`, the
    draws weighted by self-normalized importance weights :math:`\log w_i` = ``log_weight``
    (see :class:`ImportanceWeightedExpectation`), e.g. the IWGAN generator::

        importance_weighted(generated, log(q, y=1), log(reverse(q), y=0) - log(q, y=0))
    """
    return ImportanceWeightedExpectation(over, body, log_weight)


def KL(a: Distribution, b: Distribution) -> KLDivergence:
    r""":math:`\mathrm{KL}(a \,\|\, b) = \mathbb{E}_a[\log a - \log b]`."""
    return KLDivergence(a, b)


def JSD(a: Distribution, b: Distribution) -> JSDivergence:
    r"""The Jensen-Shannon divergence, with :math:`m = \tfrac12 (a + b)`,

    .. math::
       \mathrm{JSD}(a \,\|\, b) = \tfrac12 \mathrm{KL}(a \,\|\, m)
       + \tfrac12 \mathrm{KL}(b \,\|\, m).
    """
    return JSDivergence(a, b)


def H(a: Distribution) -> Entropy:
    r""":math:`\mathrm{H}(a) = -\mathbb{E}_a[\log a]`."""
    return Entropy(a)


def sg(term: Term) -> StopGradient:
    r""":math:`\mathrm{sg}[term]`, the stop-gradient."""
    return StopGradient(term)


def constant(name: str, value: float, latex_name: str = "") -> Constant:
    """A named constant, e.g. ``constant("log 2", math.log(2), r"\\log 2")``."""
    return Constant(name, value, latex_name)


# --------------------------------------------------------------------------------------------
# Queries


def free_params(expr: Node) -> frozenset[str]:
    """The parameter groups the value of ``expr`` depends on (including under ``sg``).

    Example: the VAE objective gives ``{"theta", "eta"}``.
    """
    return frozenset(g for d in _dists(expr) for g in d.groups)


def coefficients(expr: Node) -> tuple[Coefficient, ...]:
    """The named coefficients ``expr`` is scaled by, in first-use order."""
    seen: dict[str, Coefficient] = {}
    for node in nodes(expr):
        if isinstance(node, Scale) and isinstance(node.factor, Coefficient):
            seen.setdefault(node.factor.name, node.factor)
    return tuple(seen.values())


def variables(expr: Node) -> frozenset[str]:
    """Names of every variable ``expr`` mentions (over, given, fixed or not)."""
    if isinstance(expr, Var):
        return frozenset({expr.name})
    return frozenset(v.name for d in _dists(expr) for v in d.over + d.given)


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of ``node`` (distributions and terms), in printing order."""
    if isinstance(node, Product):
        return node.factors
    if isinstance(node, (Log, Entropy)):
        return (node.dist,)
    if isinstance(node, Expectation):
        return (node.dist, node.body)
    if isinstance(node, (KLDivergence, JSDivergence)):
        return (node.a, node.b)
    if isinstance(node, ImportanceWeightedBound):
        return (node.target, node.proposal)
    if isinstance(node, ImportanceWeightedExpectation):
        return (node.dist, node.body, node.log_weight)
    if isinstance(node, Sum):
        return node.terms
    if isinstance(node, (Neg, Scale, StopGradient)):
        return (node.term,)
    return ()


def _dists(node: Node) -> tuple[Dist, ...]:
    if isinstance(node, Dist):
        return (node,)
    return tuple(d for child in children(node) for d in _dists(child))


def nodes(expr: Node) -> list[Node]:
    """Every node of ``expr``, ``expr`` first, depth first."""
    out = [expr]
    for child in children(expr):
        out.extend(nodes(child))
    return out


# --------------------------------------------------------------------------------------------
# Validation helpers


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _fixed(name: str, value: object, argument: str) -> Var:
    """``Var(name, value)`` for an integer ``value``; :class:`ConfigError` naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{argument} {name}: got {describe(value)}, expected an integer value")
    return Var(name, value)


def _vars(spec: str | tuple[str, ...] | list[str], argument: str) -> tuple[Var, ...]:
    if isinstance(spec, str):
        spec = tuple(part.strip() for part in spec.split(",") if part.strip())
    if not isinstance(spec, (tuple, list)) or not all(isinstance(s, str) for s in spec):
        raise ConfigError(
            f"{argument}: got {describe(spec)}, expected a string like 'x,z' or a tuple of names"
        )
    out = []
    for item in spec:
        name, eq, value = (part.strip() for part in item.partition("="))
        if not eq:
            out.append(Var(name))
        elif re.fullmatch(r"-?[0-9]+", value):
            out.append(Var(name, int(value)))
        else:
            raise ConfigError(f"{argument}: got {item!r}, expected 'name' or 'name=integer'")
    return tuple(out)


def _factors(d: Distribution) -> tuple[Dist, ...]:
    return d.factors if isinstance(d, Product) else (d,)  # type: ignore[return-value]


def _distribution(value: object, argument: str) -> Distribution:
    if not isinstance(value, Distribution):
        raise ExpressionError(
            f"{argument}: got {describe(value)}, expected a distribution (Dist or Product)"
        )
    return value


def _term(value: object, argument: str, numbers: bool = True) -> Term:
    if isinstance(value, Term):
        return value
    if numbers and _is_number(value):
        number = float(value)  # type: ignore[arg-type]
        text = f"{abs(number):g}"
        magnitude = Constant(text, abs(number))
        return Neg(magnitude) if number < 0 else magnitude
    expected = "a term (E, log, KL, ...) or a number" if numbers else "a term (E, log, KL, ...)"
    raise ExpressionError(f"{argument}: got {describe(value)}, expected {expected}")


def _same_support(a: object, b: object, what: str) -> None:
    a = _distribution(a, f"{what} left side")
    b = _distribution(b, f"{what} right side")
    if a.over_names != b.over_names:
        raise ConfigError(
            f"{what} right side: got a distribution over {sorted(b.over_names)}, expected one over "
            f"the left side's variables {sorted(a.over_names)}"
        )


LOG2 = Constant("log 2", math.log(2.0), r"\log 2")
"""The constant :math:`\\log 2` of Lemma 1 (the JSD's offset in the GAN objective)."""
