r"""What an algorithm declares: its phases' objectives and the lecture's Figure-5 fields.

Every algorithm file under :mod:`unigen.algorithms` declares its objective once, as expressions of
:mod:`unigen.algebra.expr`, in a :class:`Declaration`. The declaration is what
``unigen algebra show`` prints, what :func:`unigen.algebra.table` renders as the lecture's
Figure 5, what :func:`unigen.algebra.direction` reads, and (through
:func:`unigen.algebra.compile`) what the trainer runs.
"""

from __future__ import annotations

from typing import NamedTuple

from unigen.algebra.expr import Distribution, KLDivergence, Term, free_params
from unigen.algebra.symbols import frozen_of, is_identifier, symbol
from unigen.errors import ConfigError, describe

__all__ = ["SENSES", "Declaration", "Figure5", "PhaseObjective", "check"]

SENSES = ("max", "min")


class PhaseObjective(NamedTuple):
    r"""One phase's objective: :math:`\max_{params} objective` or :math:`\min_{params}`.

    Attributes:
      name: the phase's name, as the trainer's :class:`~unigen.core.Phase` carries it
        (``"elbo"``, ``"wake"``, ``"discriminator"``, ...).
      params: the parameter group(s) the phase updates, ``"theta"`` or ``("theta", "eta")``.
      objective: the expression optimized.
      sense: ``"max"`` or ``"min"``.
    """

    name: str
    params: str | tuple[str, ...]
    objective: Term
    sense: str = "max"

    @property
    def groups(self) -> tuple[str, ...]:
        """The parameter groups, always as a tuple."""
        return (self.params,) if isinstance(self.params, str) else tuple(self.params)


class Figure5(NamedTuple):
    r"""The lecture's Figure 5 fields (GANs vs VAEs) for one algorithm; ``None`` where the
    figure has no entry.

    Attributes:
      generative: the generative distribution, e.g. :math:`p_\theta(x \mid y)`.
      discriminator: the discriminator distribution, e.g. :math:`q_\phi(y \mid x)`.
      inference: the z-inference model, e.g. :math:`q_\eta(z \mid x, y)`.
      kl: the KL divergence whose minimization in ``wrt`` the algorithm performs, or a tuple of
        them for an algorithm that minimizes several (the VAE/GAN minimizes both directions).
      wrt: the parameter group that KL is minimized in (``"theta"``).
      variables: what x, y and z stand for (the paper's Table 1), as ``((name, meaning), ...)``:
        ``(("x", "features"), ("y", "domain indicator"), ("z", "data examples"))`` for ADA.
    """

    generative: Distribution | None
    discriminator: Distribution | None
    inference: Distribution | None
    kl: KLDivergence | tuple[KLDivergence, ...] | None
    wrt: str = "theta"
    variables: tuple[tuple[str, str], ...] = ()

    @property
    def kls(self) -> tuple[KLDivergence, ...]:
        """The KL(s) to minimize, always as a tuple (empty when there is none)."""
        return () if self.kl is None else self.kl if isinstance(self.kl, tuple) else (self.kl,)


class Declaration(NamedTuple):
    """An algorithm's objective, declared once in the algebra.

    Attributes:
      name: the algorithm's command-line name (``"vae"``, ``"gan"``, ...).
      title: a human title (``"Variational autoencoder"``).
      section: where the lecture states it (``"§2.3, §3.3"``).
      phases: the phase objectives, in the order the trainer runs them.
      figure5: the Figure-5 fields, or ``None`` for algorithms the figure does not cover.
    """

    name: str
    title: str
    section: str
    phases: tuple[PhaseObjective, ...]
    figure5: Figure5 | None = None

    def __str__(self) -> str:
        """The declaration as the lecture writes it: title, section, ``max_{groups} objective``
        per phase, and the Figure-5 fields when it has them."""
        return render(self, latex=False)

    def latex(self) -> str:
        """:meth:`__str__` with every formula in LaTeX."""
        return render(self, latex=True)

    def phase(self, name: str) -> PhaseObjective:
        """The phase called ``name``; :class:`ConfigError` listing the phases otherwise."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        names = [p.name for p in self.phases]
        raise ConfigError(f"phase of {self.name}: got {describe(name)}, expected one of {names}")


_FIGURE5_LABELS = {"generative": "generative distribution", "discriminator": "discriminator",
                   "inference": "z-inference model", "kl": "KL to minimize"}


def render(declaration: Declaration, latex: bool = False) -> str:
    """The text of ``str(declaration)`` (``latex=False``) or ``declaration.latex()``."""
    show = (lambda node: node.latex()) if latex else str  # noqa: E731
    lines = [f"{declaration.title} ({declaration.section})"]
    for phase in declaration.phases:
        groups = ("," if not latex else ", ").join(symbol(g, latex) for g in phase.groups)
        head = f"\\{phase.sense}_{{{groups}}}" if latex else f"{phase.sense}_{{{groups}}}"
        lines.append(f"  {phase.name}: {head} {show(phase.objective)}")
    if declaration.figure5 is not None:
        lines.append("  Figure 5:")
        for field, label in _FIGURE5_LABELS.items():
            value = getattr(declaration.figure5, field)
            if isinstance(value, tuple):
                lines.append(f"    {label}: " + "; ".join(show(v) for v in value))
            elif value is not None:
                lines.append(f"    {label}: {show(value)}")
    return "\n".join(lines)


def check(declaration: Declaration) -> Declaration:
    """``declaration`` unchanged, after checking it is well formed.

    Raises:
      ConfigError: a sense or a group is unknown, a phase updates a group its objective does
        not depend on, two phases share a name, or a Figure-5 field has the wrong kind (the KL's
        ``wrt`` must be a group the KL depends on).
    """
    if not isinstance(declaration, Declaration):
        raise ConfigError(f"declaration: got {describe(declaration)}, expected a Declaration")
    if not declaration.phases:
        raise ConfigError(f"phases of {declaration.name}: got none, expected at least one")
    names = [phase.name for phase in declaration.phases]
    if len(set(names)) != len(names):
        raise ConfigError(f"phases of {declaration.name}: got names {names}, expected distinct")
    for phase in declaration.phases:
        if not isinstance(phase.objective, Term):
            raise ConfigError(
                f"objective of {declaration.name}/{phase.name}: got {describe(phase.objective)}, "
                "expected a scalar term of unigen.algebra"
            )
        if phase.sense not in SENSES:
            raise ConfigError(
                f"sense of {declaration.name}/{phase.name}: got {describe(phase.sense)}, "
                f"expected one of {SENSES}"
            )
        for group in phase.groups:
            if not is_identifier(group) or frozen_of(group) is not None:
                raise ConfigError(
                    f"params of {declaration.name}/{phase.name}: got {describe(group)}, "
                    "expected a trained group name such as 'theta' or 'psi' (not a frozen copy "
                    "such as 'theta0')"
                )
            if group not in free_params(phase.objective):
                raise ConfigError(
                    f"params of {declaration.name}/{phase.name}: got {group!r}, expected groups "
                    f"the objective depends on, {sorted(free_params(phase.objective))}"
                )
    if declaration.figure5 is not None:
        _check_figure5(declaration.name, declaration.figure5)
    return declaration


def _check_figure5(name: str, figure5: Figure5) -> None:
    if not isinstance(figure5, Figure5):
        raise ConfigError(f"figure5 of {name}: got {describe(figure5)}, expected a Figure5")
    for field in ("generative", "discriminator", "inference"):
        value = getattr(figure5, field)
        if value is not None and not isinstance(value, Distribution):
            raise ConfigError(
                f"figure5.{field} of {name}: got {describe(value)}, expected a distribution "
                "or None"
            )
    for kl in figure5.kls:
        if not isinstance(kl, KLDivergence):
            raise ConfigError(
                f"figure5.kl of {name}: got {describe(kl)}, expected a KL(a, b), a tuple of them "
                "or None"
            )
        if figure5.wrt not in free_params(kl):
            raise ConfigError(
                f"figure5.wrt of {name}: got {describe(figure5.wrt)}, expected a group the KL "
                f"depends on, {sorted(free_params(kl))}"
            )
    if not isinstance(figure5.variables, tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
            for pair in figure5.variables):
        raise ConfigError(
            f"figure5.variables of {name}: got {describe(figure5.variables)}, expected "
            "((name, meaning), ...) such as (('x', 'features'),)"
        )
