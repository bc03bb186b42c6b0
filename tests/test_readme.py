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


def test_the_python_examples_run_and_print_a_finite_nll_and_the_objective(capsys):
    first, second = _blocks("python")
    namespace = {}
    exec(compile(first, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    nll = float(re.search(r"test IS-NLL: ([0-9.]+) nats", printed).group(1))
    # A trained 64-pixel binary model: below 64·log 2 ≈ 44.4 nats, the cost of coin flips.
    assert 0 < nll < 44.4

    # The second block compiles the VAE objective by hand: it prints as its comment says, and its
    # loss is the hand-written VAE loss of unigen.algorithms.vae for the same key and batch.
    exec(compile(second, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.strip()
    assert printed == re.search(r"print\(objective\)\s+# (.*)", second).group(1).strip()
    import importlib

    import jax
    import numpy as np

    vae_module = importlib.import_module("unigen.algorithms.vae")
    batch = {"x": namespace["test"].x[:100]}
    expected, _ = vae_module.reference_loss(namespace["model"])(
        namespace["result"].state.params, jax.random.key(2), batch
    )
    np.testing.assert_allclose(namespace["value"], expected, rtol=1e-6)
