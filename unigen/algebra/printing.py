r"""Printing expressions in the lecture's notation: Unicode (``str``) and LaTeX (``.latex()``).

Unicode writes subscripts of expectations as ``_{...}``, parameter groups as Greek letters and
the minus sign as U+2212::

    E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − KL(q_η(z|x) ‖ p(z))]

LaTeX is the same tree in math mode (valid for matplotlib's mathtext)::

    \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)
    \right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)\right]

Parentheses appear exactly where the tree needs them to read unambiguously: around a sum that is
negated, scaled or added as a later summand, and around a negation that is scaled or negated.
"""

from __future__ import annotations

from typing import Callable

from unigen.algebra.expr import (
    Coefficient,
    Constant,
    Dist,
    Entropy,
    Expectation,
    ImportanceWeightedBound,
    ImportanceWeightedExpectation,
    JSDivergence,
    KLDivergence,
    Log,
    Neg,
    Node,
    Product,
    Scale,
    StopGradient,
    Sum,
    Var,
)
from unigen.algebra.symbols import symbol

__all__ = ["to_latex", "to_unicode"]

MINUS = "\u2212"


class _Style:
    """The few tokens where Unicode and LaTeX differ."""

    def __init__(self, latex: bool, drawn: str = "") -> None:
        self.latex = latex
        self.drawn = drawn  # a variable written as the i-th draw, x_i (importance weighting)
        self.minus = "-" if latex else MINUS
        self.bar = r" \mid " if latex else "|"
        self.comma = ", " if latex else ","
        self.times = r" \cdot " if latex else " · "

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)" if self.latex else f"({text})"

    def bracket(self, text: str) -> str:
        return rf"\left[{text}\right]" if self.latex else f"[{text}]"

    def operator(self, name: str) -> str:
        if not self.latex:
            return name
        return {"E": r"\mathbb{E}", "log": r"\log"}.get(name, rf"\mathrm{{{name}}}")

    def divergence(self, name: str, a: str, b: str) -> str:
        sep = r" \,\|\, " if self.latex else " ‖ "
        return self.operator(name) + self.paren(a + sep + b)


def to_unicode(node: Node) -> str:
    """The node in Unicode, e.g. ``KL(q_η(z|x) ‖ p(z))``."""
    return _print(node, _Style(latex=False))


def to_latex(node: Node) -> str:
    r"""The node in LaTeX math mode, e.g. ``\mathrm{H}\left(q_\eta(z \mid x)\right)``."""
    return _print(node, _Style(latex=True))


def _number(value: float, style: _Style) -> str:
    text = f"{abs(value):g}"
    return style.minus + text if value < 0 else text


def _var(v: Var, s: _Style | None = None) -> str:
    name = symbol(v.name, latex=bool(s and s.latex))
    return name if v.value is None else f"{name}={v.value}"


def _groups(d: Dist, s: _Style) -> str:
    """``θ`` / ``\\theta``, the frozen copy ``θ₀`` / ``\\theta_0``, several ``θ,φ``."""
    return ",".join(symbol(group, s.latex) for group in d.groups)


def _head(d: Dist, s: _Style) -> str:
    """``q^r_φ``: the base letter, the superscript (``r``) and the subscript."""
    name, _, subscript = d.name.partition("_")
    base, _, superscript = name.partition("^")
    if d.reversed:
        superscript = "r"
    if d.params is not None:
        subscript = _groups(d, s)
    head = base
    if superscript:
        head += "^{" + superscript + "}" if s.latex else "^" + superscript
    if subscript:
        single = len(subscript) == 1 or (subscript.startswith("\\") and subscript[1:].isalpha())
        if s.latex:
            head += "_" + subscript if single else "_{" + subscript + "}"
        else:
            head += "_" + subscript if single or "," not in subscript else "_{" + subscript + "}"
    return head


def _dist(d: Dist, s: _Style, at: dict[str, int] | None = None, drawn: str = "") -> str:
    """``d`` with the variables in ``at`` fixed to values, and the variable ``drawn`` (the
    latent of an importance-weighted bound) written as the i-th draw, ``z_i``."""
    at = at or {}
    drawn = drawn or s.drawn

    def variable(v: Var) -> str:
        if v.name in at:
            return f"{_var(Var(v.name), s)}={at[v.name]}"
        if v.name == drawn and v.value is None:
            return f"{_var(v, s)}_i"
        return _var(v, s)

    args = s.comma.join(variable(v) for v in d.over)
    if d.given:
        args += s.bar + s.comma.join(variable(v) for v in d.given)
    return f"{_head(d, s)}({args})"


def _distribution(node: Node, s: _Style, at: dict[str, int] | None = None,
                  drawn: str = "") -> str:
    factors = node.factors if isinstance(node, Product) else (node,)
    return (" " if s.latex else "").join(_dist(f, s, at, drawn) for f in factors)


def _log(node: Log, s: _Style) -> str:
    at = {v.name: v.value for v in node.at}
    return s.operator("log") + " " + _distribution(node.dist, s, at)  # type: ignore[arg-type]


def _importance_weighted(node: ImportanceWeightedBound, s: _Style) -> str:
    """``E_{z_1, …, z_k ~ q(z|x)}[log (1/k) Σ_{i=1}^{k} p(x,z_i)/q(z_i|x)]``."""
    (latent,) = (v.name for v in node.proposal.over)
    k = "k" if node.k is None else str(node.k)
    target = _distribution(node.target, s, drawn=latent)
    proposal_i = _dist(node.proposal, s, drawn=latent)
    proposal = _dist(node.proposal, s)
    if s.latex:
        last = k if len(k) == 1 else "{" + k + "}"
        draws = rf"{latent}_1, \ldots, {latent}_{last} \sim {proposal}"
        body = (rf"\log \frac{{1}}{{{k}}} \sum_{{i=1}}^{{{k}}} "
                rf"\frac{{{target}}}{{{proposal_i}}}")
    else:
        draws = f"{latent}_1,…,{latent}_{k} ~ {proposal}"
        body = f"log (1/{k}) Σ_{{i=1}}^{{{k}}} {target}/{proposal_i}"
    return s.operator("E") + "_{" + draws + "}" + s.bracket(body)


def _ratio(log_weight: Node, s: _Style) -> str:
    """``a/b`` for ``log a − log b`` (the importance weight as the paper writes it), else
    ``exp(log_weight)``."""
    terms = log_weight.terms if isinstance(log_weight, Sum) else ()
    if (len(terms) == 2 and isinstance(terms[0], Log) and isinstance(terms[1], Neg)
            and isinstance(terms[1].term, Log)):
        top, bottom = (_log(t, s).split(" ", 1)[1] for t in (terms[0], terms[1].term))
        return rf"\frac{{{top}}}{{{bottom}}}" if s.latex else f"{top}/{bottom}"
    return s.operator("exp") + s.paren(_print(log_weight, s))


def _importance_weighted_expectation(node: ImportanceWeightedExpectation, s: _Style) -> str:
    """``E_{x_1,…,x_k ~ p(x)}[Σ_{i=1}^{k} w̃_i f(x_i)], w̃_i ∝ a(x_i)/b(x_i)``."""
    (variable,) = (v.name for v in node.dist.over)
    inner = _Style(s.latex, drawn=variable)
    name = symbol(variable, s.latex)
    source = _dist(node.dist, s)
    body = _operand(node.body, inner, allow_neg=False)
    weight = _ratio(node.log_weight, inner)
    if s.latex:
        draws = rf"{name}_1, \ldots, {name}_k \sim {source}"
        text = rf"\sum_{{i=1}}^{{k}} \tilde{{w}}_i {body}"
        clause = rf",\; \tilde{{w}}_i \propto {weight}"
    else:
        draws = f"{name}_1,…,{name}_k ~ {source}"
        text = f"Σ_{{i=1}}^{{k}} w\u0303_i {body}"
        clause = f", w\u0303_i ∝ {weight}"
    return s.operator("E") + "_{" + draws + "}" + s.bracket(text) + clause


def _summand(term: Node, s: _Style, first: bool) -> str:
    """One summand with its sign: ``a``, `` + b`` or `` − b``."""
    if isinstance(term, Neg) and not first:
        return f" {s.minus} " + _operand(term.term, s, allow_neg=False)
    if first and not isinstance(term, ImportanceWeightedExpectation):
        text = _print(term, s)
    else:
        text = _operand(term, s, allow_neg=False)
    return text if first else " + " + text


def _operand(term: Node, s: _Style, allow_neg: bool) -> str:
    """``term`` as the operand of a prefix operator or a summand: sums (and, unless
    ``allow_neg``, negations) get parentheses."""
    text = _print(term, s)
    if isinstance(term, (Sum, ImportanceWeightedExpectation)) or (isinstance(term, Neg) and not allow_neg):
        return s.paren(text)
    if isinstance(term, Scale) and not isinstance(term.factor, Coefficient) and term.factor < 0:
        return s.paren(text)
    return text


def _print(node: Node, s: _Style) -> str:
    printer = _PRINTERS.get(type(node))
    if printer is None:
        raise TypeError(f"node: got {type(node).__name__}, expected an unigen.algebra node")
    return printer(node, s)


def _scale(node: Scale, s: _Style) -> str:
    if isinstance(node.factor, Coefficient):
        return symbol(node.factor.name, s.latex) + s.times + _operand(node.term, s, allow_neg=False)
    factor = _number(node.factor, s)
    if node.factor < 0:
        factor = s.paren(factor)
    return factor + s.times + _operand(node.term, s, allow_neg=False)


_PRINTERS: dict[type, Callable[..., str]] = {
    Var: lambda n, s: _var(n, s),
    Dist: lambda n, s: _dist(n, s),
    Product: lambda n, s: _distribution(n, s),
    Constant: lambda n, s: (n.latex_name or n.name) if s.latex else n.name,
    Log: _log,
    ImportanceWeightedBound: _importance_weighted,
    ImportanceWeightedExpectation: _importance_weighted_expectation,
    Expectation: lambda n, s: (
        s.operator("E") + "_{" + _print(n.dist, s) + "}" + s.bracket(_print(n.body, s))
    ),
    KLDivergence: lambda n, s: s.divergence("KL", _print(n.a, s), _print(n.b, s)),
    JSDivergence: lambda n, s: s.divergence("JSD", _print(n.a, s), _print(n.b, s)),
    Entropy: lambda n, s: s.operator("H") + s.paren(_print(n.dist, s)),
    Sum: lambda n, s: "".join(_summand(t, s, i == 0) for i, t in enumerate(n.terms)),
    Neg: lambda n, s: s.minus + _operand(n.term, s, allow_neg=False),
    Scale: _scale,
    StopGradient: lambda n, s: s.operator("sg") + s.bracket(_print(n.term, s)),
}
