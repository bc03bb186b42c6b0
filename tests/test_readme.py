"""The README's example runs, and CI runs the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_line = next(block.strip() for block in _blocks("bash") if "pytest" in block)
    assert test_line in (ROOT / ".ci" / "run").read_text()


def test_the_python_example_runs_and_prints_a_finite_nll(capsys):
    (example,) = _blocks("python")
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    nll = float(re.search(r"test IS-NLL: ([0-9.]+) nats", printed).group(1))
    # A trained 64-pixel binary model: below 64·log 2 ≈ 44.4 nats, the cost of coin flips.
    assert 0 < nll < 44.4
