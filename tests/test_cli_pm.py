"""``unigen train pm`` and ``unigen eval`` on its run, end to end on ``pm-sources:3``.

The summary's code metrics are recomputed from the run's checkpoint with
:func:`unigen.algorithms.pm.evaluate` on the same test split and its known sources.
"""

import json

import pytest

from unigen import cli
from unigen.algorithms.pm import evaluate
from unigen.models.pm import sources_split

QUICK = ["--steps", "100", "--batch-size", "64", "--lr", "0.02", "--steps-per-call", "100",
         "--checkpoint-every", "100", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_pm") / "pm"
    assert cli.main(["train", "pm", "--data", "pm-sources:3", *QUICK, "--out", str(out)]) == 0
    return out


def test_pm_run_reports_the_code_metrics_of_its_checkpoint(run, capsys):
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 100 and "is_nll" not in summary
    config, model, params = cli._load_run(run)
    # pm's defaults on pm-sources:3: a linear encoder and one code unit per source.
    assert config["hidden"] == () and config["latent_dim"] == 3 and config["binarize"] == "auto"
    assert set(params) == {"eta", "phi"}
    test = sources_split("pm-sources:3", "test")
    expected = evaluate(model, params, test.x, test.sources)
    for name, value in expected.items():
        assert summary[name] == pytest.approx(value, rel=1e-6), name
    assert 0.0 <= summary["max_pairwise_mi"] <= 1.0 and 0.5 <= summary["recovery_accuracy"] <= 1.0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"predictors/loss", "encoder/loss", "encoder/reconstruction"} <= set(rows[-1])
    assert summary["losses"] == pytest.approx({"predictors": rows[-1]["predictors/loss"],
                                               "encoder": rows[-1]["encoder/loss"]})
    assert not (run / "samples.png").exists()  # a code, not a generative model
    capsys.readouterr()
    assert cli.main(["eval", str(run)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "test" and printed["examples"] == 2048
    for name, value in expected.items():
        assert printed[name] == pytest.approx(value, rel=1e-6), name


def test_sampling_a_pm_run_is_refused(run, tmp_path, capsys):
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert "is a pm run, which learns a code, not a generative model" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "pm-sources:1"], "data: expected pm-sources:K with an integer K >= 2, got 'pm-sources:1'"),
        (["--data", "pm-sources:3", "--binarize", "static"],
         "--binarize: expected auto or none for pm-sources:3 (real-valued mixtures), got static"),
        (["--data", "pm-sources:3", "--latent-dim", "1"], "--latent-dim: expected at least 2 code units for pm, got 1"),
        (["--data", "pm-sources:3", "--layers", "10"], "--layers: expected only with wake-sleep, rws, vem"),
    ],
)
def test_bad_pm_options_are_reported(arguments, message, tmp_path, capsys):
    assert cli.main(["train", "pm", *arguments, *QUICK, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_pm_defaults_elsewhere():
    """On other data pm keeps the usual code size (--latent-dim, default 20) and a linear encoder."""
    from unigen import recipes

    pm = recipes.recipe("pm")
    config = {"algorithm": "pm", "data": "digits", "binarize": "auto", **pm.read({})}
    pm.configure(config, None)
    assert config["hidden"] == () and config["latent_dim"] == 20
