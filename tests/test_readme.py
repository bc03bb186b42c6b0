"""The README's example runs, and CI runs the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language, section=None):
    """The ``language`` code blocks of README, or of the section under ``## section``."""
    text = README
    if section is not None:
        text = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_line = next(block.strip() for block in _blocks("bash") if "pytest" in block)
    assert test_line in (ROOT / ".ci" / "run").read_text()


def test_the_python_examples_run_and_print_a_finite_nll_and_the_objective(capsys):
    first, second = _blocks("python", "Python")
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


def test_declare_your_own_model_examples_run_in_order(capsys):
    """The section's blocks, in one interpreter: the β-VAE prints as β and its annealed β
    reaches the trainer (the loss at step 500 is −(ELBO₁ − 3·KL) with β = 4, at step 1 it is
    −(ELBO₁ + KL) with β = 0: both identities hold only if the step reached the schedule); the
    adversarial autoencoder prints its three phases and learns to reconstruct (its log-likelihood
    term rises by more than 10 nats: measured −45.6 -> −17.4)."""
    import numpy as np

    blocks = _blocks("python", "Declare your own model")
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "elbo: max_{θ,η} E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − β · KL(q_η(z|x) ‖ p(z))]" in printed
    history = namespace["result"].history
    for row, beta in ((history[0], 0.0), (history[-1], 4.0)):
        expected = -(row["elbo/elbo_beta1"] + (1.0 - beta) * row["elbo/kl"])
        np.testing.assert_allclose(row["elbo/loss"], expected, rtol=1e-4, atol=1e-4)
    exec(compile(blocks[1], "README.md", "exec"), namespace)  # verify on the β-VAE
    assert namespace["check"].holds and namespace["check"].method == "quadrature"
    assert not namespace["wrong"].holds and namespace["wrong"].max_abs_error_value > 1.0
    capsys.readouterr()
    for block in blocks[2:]:
        exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "regularization: max_{η} E_{p_data(x)}[E_{q_η(code|x)}[log q_φ(y=1|code)]]" in printed
    aae = namespace["aae_result"].history
    first = aae[0]["reconstruction/objective"]
    last = np.mean([row["reconstruction/objective"] for row in aae[-100:]])
    assert last > first + 10.0
