"""The paper's Table 1 (Hu et al. 2018: ADA | GANs / InfoGAN | VAEs) rendered from the declarations.

Expected cells are typed from the paper's Table 1: what x, y, z stand for, the three components
with the paper's [G] (generative process) / [I] (inference) marks, and the KL to minimize (the
paper writes "same as GANs" for ADA; here the KL itself). The marks are derived by the renderer
from the KLs, so a wrong rule fails here.
"""

import re

import pytest

from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log
from unigen.algebra.table1 import ROWS, role, table1
from unigen.errors import ConfigError

EXPECTED = {  # row -> (ADA, GAN, InfoGAN, VAE)
    "x": ("features", "data/generations", "data/generations", "data/generations"),
    "y": ("domain indicator", "real/fake indicator", "real/fake indicator", "real/fake indicator (degenerate)"),
    "z": ("data examples", "code vector", "code vector", "code vector"),
    "p_θ(x|y)": ("p_θ(x|y) [I]", "p_θ(x|y) [I]", "p_θ(x|y) [I]", "p_θ(x|z,y) [G]"),
    "q_φ(y|x)": ("q_φ(y|x) [G]", "q_φ(y|x) [G]", "q_φ(y|x) [G]", "q_*(y|x), perfect, degenerate [I]"),
    "q_η(z|x,y)": ("—", "—", "q_η(z|x,y) [G]", "q_η(z|x,y) [I]"),
    "KL to minimize": (
        "min_θ KL(p_θ(x|y) ‖ q^r(x|y))",
        "min_θ KL(p_θ(x|y) ‖ q^r(x|y))",
        "min_θ KL(p_θ(x|y) ‖ q^r(x|z,y))",
        "min_θ KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))",
    ),
}


def _cells(text):
    rows = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in text.splitlines()]
    return rows[0], {row[0]: tuple(row[1:]) for row in rows[2:]}


def test_table1_markdown_has_the_papers_cells_and_marks():
    header, body = _cells(table1())
    assert header == ["", "ADA", "GAN", "InfoGAN", "VAE"]
    assert list(body) == list(ROWS)
    assert body == EXPECTED


def test_table1_latex_parses_with_mathtext_and_bolds_the_marks():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    text = table1(latex=True)
    assert text.startswith("\\begin{tabular}{lllll}") and text.endswith("\\end{tabular}")
    assert text.count("\\textbf{[G]}") == 5 and text.count("\\textbf{[I]}") == 5
    parser = mathtext.MathTextParser("path")
    formulas = re.findall(r"\$([^$]+)\$", text)
    assert len(formulas) >= 7 + 3 + 4  # row labels, components, KLs
    for formula in formulas:
        parser.parse(f"${formula}$")


def test_marks_follow_the_side_of_the_kl_and_other_columns_render():
    a = dist("q", over="z", given="x", params="eta")
    b = dist("p", over="z", given="x", params="theta")
    figure = Figure5(b, None, a, KL(a, b), "theta")
    assert (role(a, figure), role(b, figure)) == ("I", "G")
    assert role(a, figure._replace(kl=None)) == ""
    _, body = _cells(table1(["aae", "vae-gan"]))
    assert body["p_θ(x|y)"] == ("p_η(z|y) [I]", "p_θ(x|y) [I]")
    assert body["KL to minimize"][1] == ("min_θ KL(p_θ(x|y) ‖ q^r(x|y)) and "
                                         "min_θ KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))")
    bare = Declaration("bare", "Bare", "§0", (PhaseObjective("p", "theta", E(b, log(b))),))
    with pytest.raises(ConfigError, match="'bare', which has no Figure-5 fields"):
        table1([bare])
