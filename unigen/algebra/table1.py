r"""The paper's Table 1 (Hu et al. 2018): ADA | GANs / InfoGAN | VAEs, rendered from declarations.

Beside the lecture's Figure 5 (:mod:`unigen.algebra.table`), the paper's Table 1 lists, for each
approach, what x, y and z stand for, its :math:`p_\theta(x \mid y)`, :math:`q_\phi(y \mid x)` and
:math:`q_\eta(z \mid x, y)`, and the KL it minimizes, marking each component **[G]** when it is
part of the generative process of the unified view and **[I]** when it is part of inference.
Here the marks are derived, not typed: the first argument of a KL to minimize is the inference
side (the variational distribution), the second the generative side's posterior, so a component
is [I] when it is a factor of the KL's first argument and [G] otherwise. The GAN's generator
:math:`p_\theta(x \mid y)` comes out [I] and its discriminator [G] (generation as inference,
§3.2), the VAE's decoder [G] and its inference networks [I]. E.g. the ADA column::

    | x | features |
    | y | domain indicator |
    | z | data examples |
    | p_θ(x|y) | p_θ(x|y) [I] |
    | q_φ(y|x) | q_φ(y|x) [G] |
    | q_η(z|x,y) | — |
    | KL to minimize | min_θ KL(p_θ(x|y) ‖ q^r(x|y)) |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from unigen.algebra.declaration import Declaration, Figure5
from unigen.algebra.expr import Dist, Distribution, Product
from unigen.algebra.table import PERFECT, declared_columns, kl_cell, latex_table, markdown_table

__all__ = ["COLUMNS", "ROWS", "role", "table1"]

COLUMNS = ("ada", "gan", "infogan", "vae")
"""The paper's columns: ADA, GANs / InfoGAN, VAEs."""

ROWS = ("x", "y", "z", "p_θ(x|y)", "q_φ(y|x)", "q_η(z|x,y)", "KL to minimize")
"""The row labels, as in the paper's Table 1 (its "Components" column)."""

_LATEX_ROWS = ("$x$", "$y$", "$z$", r"$p_\theta(x \mid y)$", r"$q_\phi(y \mid x)$",
               r"$q_\eta(z \mid x, y)$", "KL to minimize")
_MISSING = {False: "—", True: "--"}


def table1(declarations: Sequence[Declaration | str] | None = None, latex: bool = False) -> str:
    """The paper's Table 1 as Markdown, or a LaTeX tabular with ``latex=True``.

    Args:
      declarations: the columns, as declarations or registered names; ``None`` gives
        :data:`COLUMNS`. Any declaration with Figure-5 fields can be a column (``"aae"``,
        ``"vae-gan"``); its ``variables`` give the x, y, z rows.
      latex: render a LaTeX ``tabular`` (formulas in ``$...$``, marks in bold).

    Raises:
      ConfigError: an unknown name, or a declaration without Figure-5 fields.
    """
    columns = declared_columns(declarations, COLUMNS)
    cells = [[_cell(index, column.figure5, latex) for column in columns] for index in range(len(ROWS))]
    titles = [column.title for column in columns]
    labels = _LATEX_ROWS if latex else ROWS
    return latex_table(titles, labels, cells) if latex else markdown_table(titles, labels, cells)


def role(component: Distribution, figure5: Figure5) -> str:
    """``"I"`` when ``component`` (reversed or not, compared as printed) is a factor of the first
    argument of a KL to minimize, ``"G"`` otherwise, ``""`` when there is no KL."""
    if not figure5.kls:
        return ""
    first = {_plain(f) for kl in figure5.kls
             for f in (kl.a.factors if isinstance(kl.a, Product) else (kl.a,))}
    return "I" if _plain(component) in first else "G"


def _plain(d: Distribution) -> str:
    return str(replace(d, reversed=False) if isinstance(d, Dist) else d)


def _cell(index: int, figure5: Figure5, latex: bool) -> str:
    if index < 3:
        meanings = dict(figure5.variables)
        return meanings.get(ROWS[index], _MISSING[latex])
    if index == 6:
        if not figure5.kls:
            return _MISSING[latex]
        return " and ".join(kl_cell(kl, figure5.wrt, latex) for kl in figure5.kls)
    component = (figure5.generative, figure5.discriminator, figure5.inference)[index - 3]
    if component is None:
        return _MISSING[latex]
    text = f"${component.latex()}$" if latex else str(component)
    if isinstance(component, Dist) and component.name == PERFECT:
        text += ", perfect, degenerate"
    mark = role(component, figure5)
    if mark:
        text += f" \\textbf{{[{mark}]}}" if latex else f" [{mark}]"
    return text
