r"""Which side of a KL the trained parameters sit on, and what that does to the fit (§3.2–3.3).

Minimizing :math:`\mathrm{KL}(a \,\|\, b) = \mathbb{E}_a[\log a - \log b]` in parameters that
appear in only one argument behaves in one of two ways:

- model in the **first** argument, :math:`\min_\theta \mathrm{KL}(P_\theta \,\|\, Q)`:
  **mode-seeking**. :math:`P_\theta` pays wherever it puts mass that :math:`Q` lacks, so it
  shrinks onto the major modes of :math:`Q` and may drop minor ones (sharp samples). This is the
  GAN generator after Lemma 1:
  :math:`\mathrm{KL}(p_\theta(x \mid y) \,\|\, q^r(x \mid y))`.
- model in the **second** argument, :math:`\min_\theta \mathrm{KL}(Q \,\|\, P_\theta)`:
  **mode-covering**. :math:`P_\theta` pays wherever :math:`Q` has mass that it lacks, so it
  spreads over every mode (blurred samples). This is the VAE after Lemma 2:
  :math:`\mathrm{KL}(q_\eta(z \mid x, y)\, q^r_*(y \mid x) \,\|\, p_\theta(z, y \mid x))`.

Figure 5 sums this up as :math:`\min_\theta \mathrm{KL}(P_\theta \,\|\, Q)` (GANs) against
:math:`\min_\theta \mathrm{KL}(Q \,\|\, P_\theta)` (VAEs).
"""

from __future__ import annotations

from typing import NamedTuple

from unigen.algebra.declaration import Declaration
from unigen.algebra.expr import KLDivergence, free_params
from unigen.algebra.symbols import frozen_of, is_identifier, symbol
from unigen.errors import ConfigError, describe

__all__ = ["BEHAVIOURS", "SIDES", "Direction", "direction", "direction_of"]

SIDES = ("first", "second")
BEHAVIOURS = {"first": "mode-seeking", "second": "mode-covering"}
"""The behaviour of minimizing a KL in parameters on each side."""


class Direction(NamedTuple):
    """Where a parameter group sits in a KL, and what minimizing it in that group does.

    Attributes:
      kl: the KL divergence.
      wrt: the parameter group (``"theta"``).
      side: ``"first"`` or ``"second"``: the argument of the KL that depends on ``wrt``.
      behaviour: ``"mode-seeking"`` (first) or ``"mode-covering"`` (second).
      explanation: one sentence saying why, in the lecture's terms.
    """

    kl: KLDivergence
    wrt: str
    side: str
    behaviour: str
    explanation: str


def direction(kl: KLDivergence, wrt: str = "theta") -> Direction:
    r"""Which side of ``kl`` the group ``wrt`` sits on, and whether minimizing is mode-seeking.

    Args:
      kl: a :class:`~unigen.algebra.expr.KLDivergence`, e.g.
        ``KL(p_θ(x|y), q^r(x|y))``.
      wrt: the trained parameter group, any group name (a frozen copy such as ``"theta0"``
        does not count as ``"theta"``).

    Returns:
      The :class:`Direction`.

    Raises:
      ConfigError: ``kl`` is not a KL, ``wrt`` is not a group, or ``wrt`` appears in both
        arguments or in neither (the direction is then undefined).
    """
    if not isinstance(kl, KLDivergence):
        raise ConfigError(f"kl: got {describe(kl)}, expected a KL(a, b) expression")
    if not is_identifier(wrt) or frozen_of(wrt) is not None:
        raise ConfigError(
            f"wrt: got {describe(wrt)}, expected a trained group name such as 'theta'"
        )
    in_first = wrt in free_params(kl.a)
    in_second = wrt in free_params(kl.b)
    letter = symbol(wrt)
    if in_first and in_second:
        raise ConfigError(
            f"wrt: got {wrt!r}, which appears in both arguments of {kl}; expected a group on "
            "exactly one side (the direction is undefined otherwise)"
        )
    if not (in_first or in_second):
        raise ConfigError(
            f"wrt: got {wrt!r}, which appears in neither argument of {kl}; expected a group on "
            f"exactly one side (the KL depends on {sorted(free_params(kl))})"
        )
    side = "first" if in_first else "second"
    behaviour = BEHAVIOURS[side]
    if in_first:
        explanation = (
            f"{letter} is in the first argument of {kl}: minimizing KL(P_{letter} ‖ Q) in "
            f"{letter} is mode-seeking: the model is penalized where it has mass and the other "
            "side has little, so it concentrates on major modes and may miss minor ones "
            "(the GAN generator after Lemma 1, §3.2)"
        )
    else:
        explanation = (
            f"{letter} is in the second argument of {kl}: minimizing KL(Q ‖ P_{letter}) in "
            f"{letter} is mode-covering: the model is penalized where the other side has mass "
            "and it has little, so it spreads over all modes, blurring them "
            "(the VAE after Lemma 2, §3.3)"
        )
    return Direction(kl, wrt, side, behaviour, explanation)


def direction_of(declaration: Declaration) -> Direction:
    """The :func:`direction` of an algorithm's Figure-5 KL in its Figure-5 ``wrt``.

    Raises:
      ConfigError: the declaration has no Figure-5 KL.
    """
    figure5 = declaration.figure5
    if figure5 is None or figure5.kl is None:
        raise ConfigError(
            f"declaration: got {declaration.name!r}, which has no Figure-5 KL; expected an "
            "algorithm of the lecture's Figure 5 (such as 'gan', 'infogan' or 'vae')"
        )
    if len(figure5.kls) > 1:
        raise ConfigError(
            f"declaration: got {declaration.name!r}, which minimizes {len(figure5.kls)} KLs; "
            "expected one (call direction(kl, wrt) for each of figure5.kls)"
        )
    return direction(figure5.kls[0], figure5.wrt)
