r"""Names in the algebra's open vocabulary, and how they print.

Variables (``x``, ``x_rec``, ``xt``), parameter groups (``theta``, ``psi``, ``enc``) and named
coefficients (``beta``) are any identifiers: a letter, then letters, digits or underscores.
Printing maps them to the lecture's symbols:

==============  =================  ======================
name            Unicode            LaTeX
==============  =================  ======================
``theta``       θ                  ``\theta``
``psi``         ψ                  ``\psi``
``theta0``      θ₀                 ``\theta_0``
``x_rec``       x_rec              ``x_{rec}``
``beta_kl``     β_kl               ``\beta_{kl}``
``enc``         enc                ``\mathrm{enc}``
==============  =================  ======================

Greek names are the lower-case letters' English names (``lambda`` for λ, the wake-sleep
recognition model of §3.4); trailing digits become a subscript; a part after ``_`` is a
subscript. A group name ending in :data:`FROZEN` (``"theta0"``, θ₀) is the frozen copy of the
group before it: the value of θ at the start of an update step (§3.2, Lemma 1), never trained.
"""

from __future__ import annotations

import re

__all__ = ["FROZEN", "GREEK", "IDENTIFIER", "frozen_of", "is_identifier", "symbol"]

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "omicron": "ο", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
    "upsilon": "υ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
}
"""Greek letter names and the letters they print as."""

FROZEN = "0"
"""Suffix of a frozen copy of a group: ``"theta0"`` is :math:`\\theta_0`."""

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""What a variable, a parameter group or a coefficient may be called."""

_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SPLIT = re.compile(r"([A-Za-z]+?)([0-9]*)(?:_(.+))?")


def is_identifier(name: object) -> bool:
    """True for a letter-led name of letters, digits and underscores."""
    return isinstance(name, str) and IDENTIFIER.fullmatch(name) is not None


def frozen_of(group: str) -> str | None:
    """The group a frozen copy stands for (``"theta0"`` -> ``"theta"``), or ``None``."""
    if len(group) > len(FROZEN) and group.endswith(FROZEN) and not group[-2].isdigit():
        return group[: -len(FROZEN)]
    return None


def symbol(name: str, latex: bool = False) -> str:
    """How ``name`` prints: ``theta0`` -> ``θ₀`` (``\\theta_0``), ``x_rec`` -> ``x_rec``
    (``x_{rec}``), ``psi`` -> ``ψ``; names that are not identifiers print unchanged."""
    match = _SPLIT.fullmatch(name) if is_identifier(name) else None
    if match is None:
        return name
    stem, digits, rest = match.group(1), match.group(2), match.group(3)
    if latex:
        if stem in GREEK:
            head = "\\" + stem
        else:
            head = stem if len(stem) == 1 else rf"\mathrm{{{stem}}}"
    else:
        head = GREEK.get(stem, stem)
    sub = digits + (("," if digits else "") + rest if rest else "")
    if not sub:
        return head
    if latex:
        if rest and rest in GREEK and not digits:
            sub = "\\" + rest
        return head + ("_" + sub if len(sub) == 1 or sub.startswith("\\") else "_{" + sub + "}")
    if not rest:
        return head + digits.translate(_SUBSCRIPT_DIGITS)
    return head + digits.translate(_SUBSCRIPT_DIGITS) + "_" + GREEK.get(rest, rest)
