"""The lecture's Figure 5 rendered from the declarations (issue part 7), Markdown and LaTeX.

Expected cells are typed from Figure 5. A stand-in VAE declaration built here (Figure 5's VAE
column) tests the VAE column independently of ``unigen/algorithms/vae.py``; the default table
needs the real one, which the lead pastes there.
"""

import re

import pytest

from unigen.algebra import table
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log, reverse
from unigen.algebra.table import ROWS
from unigen.algorithms.declarations import DECLARATIONS
from unigen.errors import ConfigError

inference = dist("q", over="z", given="x,y", params="eta")
STAND_IN_VAE = Declaration(
    name="vae",
    title="VAE",
    section="§3.3",
    phases=(PhaseObjective("elbo", ("theta", "eta"),
                           E(dist("p_data", over="x"),
                             log(dist("p", over="x", given="z", params="theta")))),),
    figure5=Figure5(
        generative=dist("p", over="x", given="z,y", params="theta"),
        discriminator=dist("q_*", over="y", given="x"),
        inference=inference,
        kl=KL(inference * reverse(dist("q_*", over="y", given="x")),
              dist("p", over="z,y", given="x", params="theta")),
        wrt="theta",
    ),
)

EXPECTED_MARKDOWN = {  # row -> (GAN, InfoGAN, VAE), as Figure 5 reads
    "Generative distribution": ("p_θ(x|y)", "p_θ(x|y)", "p_θ(x|z,y)"),
    "Discriminator distribution": ("q_φ(y|x)", "q_φ(y|x)", "q_*(y|x), perfect, degenerate"),
    "z-inference model": ("—", "q_η(z|x,y)", "q_η(z|x,y)"),
    "KL to minimize": (
        "min_θ KL(p_θ(x|y) ‖ q^r(x|y))",
        "min_θ KL(p_θ(x|y) ‖ q^r(x|z,y))",
        "min_θ KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))",
    ),
    "Direction": (
        "∼ min_θ KL(P_θ ‖ Q): mode-seeking",
        "∼ min_θ KL(P_θ ‖ Q): mode-seeking",
        "∼ min_θ KL(Q ‖ P_θ): mode-covering",
    ),
}


def _markdown_cells(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = re.split(r"(?<!\\)\|", line)[1:-1]
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def test_markdown_figure5():
    rows = _markdown_cells(table([DECLARATIONS["gan"], "infogan", STAND_IN_VAE]))
    assert rows[0] == ["", "GAN", "InfoGAN", "VAE"]
    assert set(rows[1]) == {"---"}
    assert [row[0] for row in rows[2:]] == list(ROWS)
    for row in rows[2:]:
        assert tuple(row[1:]) == EXPECTED_MARKDOWN[row[0]], row[0]


def test_latex_figure5_cells_and_mathtext():
    text = table(["gan", "infogan", STAND_IN_VAE], latex=True)
    lines = text.splitlines()
    assert lines[0] == r"\begin{tabular}{llll}" and lines[-1] == r"\end{tabular}"
    body = {line.split(" & ")[0]: line.removesuffix(r" \\").split(" & ")[1:]
            for line in lines if line.endswith(r" \\")}
    assert body[""] == ["GAN", "InfoGAN", "VAE"]
    assert body["Generative distribution"] == [
        r"$p_\theta(x \mid y)$", r"$p_\theta(x \mid y)$", r"$p_\theta(x \mid z, y)$"]
    assert body["Discriminator distribution"][2] == r"$q_*(y \mid x)$, perfect, degenerate"
    assert body["z-inference model"][0] == "--"
    assert body["KL to minimize"][0] == (
        r"$\min_{\theta} \mathrm{KL}\left(p_\theta(x \mid y) \,\|\, q^{r}(x \mid y)\right)$")
    assert body["Direction"][2] == (
        r"$\sim \min_{\theta} \mathrm{KL}\left(Q \,\|\, P_\theta\right)$: mode-covering")
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    formulas = re.findall(r"\$[^$]+\$", text)
    assert len(formulas) == 14  # 3 columns x 5 rows, less GAN's missing inference model
    for formula in formulas:
        parser.parse(formula)


def test_default_table_is_gan_infogan_vae():
    """Needs the VAE declaration (unigen/algorithms/vae.py)."""
    rows = _markdown_cells(table())
    assert rows[0][1:] == [DECLARATIONS[name].title for name in ("gan", "infogan", "vae")]
    assert rows[-1][1:] == list(EXPECTED_MARKDOWN["Direction"])
    assert "mode-covering" in table(latex=True)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["gna"], "algorithm: got 'gna', expected one of"),
        (["wake-sleep"], "got 'wake-sleep', which has no Figure-5 fields"),
        ([], "declarations: got none"),
        ([3], "declarations: got 3, expected a Declaration or a name"),
    ],
)
def test_table_errors(columns, message):
    with pytest.raises(ConfigError) as info:
        table(columns)
    assert message in str(info.value)
