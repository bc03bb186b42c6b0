"""``unigen train wake-sleep|rws|vem`` and ``unigen eval`` on their runs, end to end on digits.

The numbers a run reports are recomputed from its checkpoint with the library's own functions
(IS-NLL with the recognition model as proposal; the exact NLL by enumeration for classic EM),
and the exact NLL bounds the IS estimate from below up to its Monte Carlo error.
"""

import json

import jax
import pytest

from unigen import cli, data
from unigen.metrics import is_nll
from unigen.models.sbn import exact_nll

QUICK = ["--steps", "40", "--batch-size", "50", "--eval-k", "20", "--steps-per-call", "20",
         "--checkpoint-every", "40", "--no-progress", "--lr", "0.01"]


def _summary(out):
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_sbn")
    commands = {
        "wake-sleep": ["wake-sleep", "--layers", "10"],
        "vem-exact": ["vem", "--estimator", "exact", "--layers", "8"],
        "vem-relax": ["vem", "--estimator", "relax", "--layers", "8"],
        "vem-vimco": ["vem", "--estimator", "vimco", "--k", "3", "--layers", "8"],
    }
    out = {}
    for name, command in commands.items():
        out[name] = root / name
        assert cli.main(["train", *command, *QUICK, "--out", str(out[name])]) == 0
    return out


def test_wake_sleep_run_reports_the_is_nll_of_its_checkpoint(runs, capsys):
    run = runs["wake-sleep"]
    summary = _summary(run)
    assert summary["steps"] == 40
    config, model, params = cli._load_run(run)
    assert config["layers"] == (10,) and set(params) == {"theta", "lambda"}
    test_x = data.load("digits", "test", binarize="static").x
    key = jax.random.key(config["seed"] + 1)
    expected = is_nll(model, params, test_x, key, k=20, groups=("theta", "lambda"))
    assert summary["is_nll"] == pytest.approx(expected, rel=1e-6)
    # The ELBO (minus the k=1 IS-NLL) is below the k=20 bound, up to Monte Carlo error.
    assert summary["test_elbo"] <= -summary["is_nll"] + 0.5
    # 10 hidden units: the exact NLL is enumerable, and the k=20 IS estimate is above it.
    assert summary["is_nll"] >= exact_nll(model, params["theta"], test_x) - 0.05
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"wake/loss", "sleep/loss"} <= set(rows[-1])
    assert cli.main(["eval", str(run), "--k", "10"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["is_nll"] == pytest.approx(
        is_nll(model, params, test_x, jax.random.key(0), k=10, groups=("theta", "lambda")), rel=1e-6)


def test_classic_em_run_reports_the_exact_nll(runs, capsys):
    run = runs["vem-exact"]
    summary = _summary(run)
    config, model, params = cli._load_run(run)
    assert (config["estimator"], config["baseline"]) == ("exact", "none")
    assert set(params) == {"theta"}
    test_x = data.load("digits", "test", binarize="static").x
    assert summary["is_nll"] == pytest.approx(exact_nll(model, params["theta"], test_x), rel=1e-6)
    assert cli.main(["eval", str(run), "--k", "10"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["exact_nll"] == pytest.approx(summary["is_nll"], rel=1e-6)


@pytest.mark.parametrize(("name", "metric", "extra"), [("vem-relax", "e_step/relax_variance", {"relax"}),
                                                     ("vem-vimco", "e_step/bound", set())])
def test_vem_with_relax_or_vimco_trains_and_reports_the_is_nll_of_its_checkpoint(runs, name, metric, extra):
    """The E-step's own parameters (RELAX's control variate) are saved in φ beside q_φ's and the
    IS-NLL is that of the checkpoint; VIMCO's phases report the k-sample bound, which at the
    end is above the first step's (40 Adam steps on digits)."""
    run = runs[name]
    summary = _summary(run)
    config, model, params = cli._load_run(run)
    assert config["estimator"] == name.split("-")[1] and set(params["phi"]) == {"weights", "biases"} | extra
    test_x = data.load("digits", "test", binarize="static").x
    key = jax.random.key(config["seed"] + 1)
    assert summary["is_nll"] == pytest.approx(is_nll(model, params, test_x, key, k=20, groups=("theta", "phi")),
                                              rel=1e-6)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metric in rows[-1]
    if name == "vem-vimco":
        assert rows[-1]["m_step/bound"] > rows[0]["m_step/bound"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wake-sleep", "--baseline", "nvil"], "--baseline: expected only with vem, got nvil for wake-sleep"),
        (["vae", "--layers", "10"], "--layers: expected only with wake-sleep, rws, vem, got 10 for vae"),
        (["vem", "--estimator", "exact", "--baseline", "mean"], "--baseline: expected none with --estimator exact"),
        (["rws", "--data", "ring8"], "--likelihood: expected bernoulli (binary data) for rws"),
        (["vem", "--estimator", "exact", "--layers", "13"], "latent_dim: exact enumeration needs at most 4096"),
        (["vem", "--estimator", "vimco", "--k", "1"], "--k: expected an integer of at least 2"),
        (["vem", "--k", "3"], "--k: only --estimator vimco draws several samples inside the bound; got --k 3 "
                              "with --estimator score, expected no --k"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, tmp_path, capsys):
    assert cli.main(["train", *argv, "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start
