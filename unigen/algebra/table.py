r"""The lecture's Figure 5 (GANs vs VAEs), rendered from the algorithms' declarations.

Each column is one algorithm; its cells are the Figure-5 fields its declaration records
(:class:`~unigen.algebra.declaration.Figure5`) and the direction of its KL
(:func:`unigen.algebra.direction`), e.g. for the GAN::

    |  | GAN |
    |---|---|
    | Generative distribution | p_θ(x\|y) |
    | Discriminator distribution | q_φ(y\|x) |
    | z-inference model | — |
    | KL to minimize | min_θ KL(p_θ(x\|y) ‖ q^r(x\|y)) |
    | Direction | ∼ min_θ KL(P_θ ‖ Q): mode-seeking |

Markdown cells are Unicode (``|`` escaped as ``\|``); the LaTeX tabular puts every formula in
``$...$`` (valid for matplotlib's mathtext) and the words outside.
"""

from __future__ import annotations

from collections.abc import Sequence

from unigen.algebra.declaration import Declaration, Figure5
from unigen.algebra.direction import direction
from unigen.algebra.expr import Dist, KLDivergence, Node
from unigen.algebra.symbols import symbol
from unigen.errors import ConfigError, describe

__all__ = ["DEFAULT_COLUMNS", "ROWS", "table"]

DEFAULT_COLUMNS = ("gan", "infogan", "vae")
"""The algorithms of the lecture's Figure 5: GANs (InfoGAN) and VAEs."""

ROWS = (
    "Generative distribution",
    "Discriminator distribution",
    "z-inference model",
    "KL to minimize",
    "Direction",
)
"""The row labels, as in the lecture's Figure 5 (plus the direction it writes below the KL)."""

PERFECT = "q_*"
"""The name of the perfect discriminator of §3.3 (printed "perfect, degenerate")."""

_MISSING = {False: "—", True: "--"}


def table(
    declarations: Sequence[Declaration | str] | None = None, latex: bool = False
) -> str:
    """The lecture's Figure 5 as a Markdown table, or a LaTeX tabular with ``latex=True``.

    Args:
      declarations: the columns, as declarations or algorithm names; ``None`` gives
        :data:`DEFAULT_COLUMNS` (those registered in
        :data:`unigen.algorithms.declarations.DECLARATIONS`).
      latex: render a LaTeX ``tabular`` instead of Markdown.

    Returns:
      The table as text, rows :data:`ROWS`, one column per algorithm.

    Raises:
      ConfigError: an unknown name, or a declaration without Figure-5 fields.
    """
    columns = declared_columns(declarations, DEFAULT_COLUMNS)
    cells = [[_cell(row, column.figure5, latex) for column in columns] for row in ROWS]
    titles = [column.title for column in columns]
    return latex_table(titles, ROWS, cells) if latex else markdown_table(titles, ROWS, cells)


def declared_columns(
    declarations: Sequence[Declaration | str] | None, default: Sequence[str]
) -> list[Declaration]:
    """The declarations of a table's columns (names looked up in the registry; ``None`` gives
    those of ``default`` that are registered), each checked to have Figure-5 fields.

    Raises:
      ConfigError: an unknown name, none at all, or a declaration without Figure-5 fields.
    """
    from unigen.algorithms import declarations as registry  # algorithms import the algebra

    if declarations is None:
        declarations = [name for name in default if name in registry.DECLARATIONS]
    columns = [registry.declaration(d) if isinstance(d, str) else d for d in declarations]
    if not columns:
        raise ConfigError("declarations: got none, expected at least one algorithm")
    for column in columns:
        if not isinstance(column, Declaration):
            raise ConfigError(
                f"declarations: got {describe(column)}, expected a Declaration or a name"
            )
        if column.figure5 is None:
            raise ConfigError(
                f"declarations: got {column.name!r}, which has no Figure-5 fields; expected "
                f"algorithms such as {list(default)}"
            )
    return columns


def _cell(row: str, figure5: Figure5, latex: bool) -> str:
    """One cell; in LaTeX, formulas are wrapped in ``$...$`` and words are left outside."""

    def formula(node: Node) -> str:
        return f"${node.latex()}$" if latex else str(node)

    if row == ROWS[0]:
        return formula(figure5.generative) if figure5.generative else _MISSING[latex]
    if row == ROWS[1]:
        d = figure5.discriminator
        if d is None:
            return _MISSING[latex]
        perfect = isinstance(d, Dist) and d.name == PERFECT
        return formula(d) + (", perfect, degenerate" if perfect else "")
    if row == ROWS[2]:
        return formula(figure5.inference) if figure5.inference else _MISSING[latex]
    if figure5.kl is None:
        return _MISSING[latex]
    if row == ROWS[3]:
        return "; ".join(kl_cell(kl, figure5.wrt, latex) for kl in figure5.kls)
    return "; ".join(_direction_cell(kl, figure5.wrt, latex) for kl in figure5.kls)


def kl_cell(kl: KLDivergence, wrt: str, latex: bool) -> str:
    """``min_θ KL(a ‖ b)``, in LaTeX wrapped in ``$...$``."""
    if latex:
        return f"$\\min_{{{_greek(wrt, True)}}} {kl.latex()}$"
    return f"min_{_greek(wrt, False)} {kl}"


def _direction_cell(kl: KLDivergence, wrt: str, latex: bool) -> str:
    found = direction(kl, wrt)
    letter = _greek(wrt, latex)
    model, other = (f"P_{letter}", "Q") if found.side == "first" else ("Q", f"P_{letter}")
    if latex:
        return (f"$\\sim \\min_{{{letter}}} \\mathrm{{KL}}\\left({model} \\,\\|\\, {other}\\right)$"
                f": {found.behaviour}")
    return f"∼ min_{letter} KL({model} ‖ {other}): {found.behaviour}"


def _greek(group: str, latex: bool) -> str:
    return symbol(group, latex)


def markdown_table(titles: Sequence[str], labels: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table: a header of ``titles``, then one row per label (``|`` escaped)."""
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    lines = [line([""] + list(titles)), "|" + "|".join("---" for _ in range(len(titles) + 1)) + "|"]
    lines += [line([label] + list(row)) for label, row in zip(labels, cells)]
    return "\n".join(lines)


def latex_table(titles: Sequence[str], labels: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A LaTeX tabular: cells as given (formulas already in ``$...$``), titles and labels escaped."""
    def text(value: str) -> str:
        if "$" in value:  # already LaTeX
            return value
        for char in "&%#_":
            value = value.replace(char, "\\" + char)
        return value

    lines = [
        "\\begin{tabular}{" + "l" * (len(titles) + 1) + "}",
        "\\hline",
        " & ".join([""] + [text(t) for t in titles]) + " \\\\",
        "\\hline",
    ]
    lines += [" & ".join([text(label)] + list(row)) + " \\\\" for label, row in zip(labels, cells)]
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines)
