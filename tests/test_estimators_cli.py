"""``unigen bench variance``: the JSON schema, its numbers against closed forms, refusals."""

import json

import pytest

from unigen import cli
from unigen.estimators.exact import closed_form_square
from unigen.estimators.problems import PROBLEMS
from unigen.estimators.report import ESTIMATORS

SCHEMA = {"estimator", "parameter", "mean", "variance", "exact_gradient", "bias", "seconds_per_estimate", "efficiency"}


def test_json_schema_and_numbers(capsys, tmp_path):
    mu, k = 1.0, 0.5
    code = cli.main(["bench", "variance", "--problem", "gaussian-square", "--mu", str(mu), "--k", str(k),
                     "--estimators", "score,pathwise", "--samples", "4", "--replicas", "4000", "--repeats", "1",
                     "--json", "--out", str(tmp_path)])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"problem", "settings", "rows"}
    assert record["problem"] == "gaussian-square"
    assert record["settings"]["samples"] == 4 and record["settings"]["replicas"] == 4000
    assert [(r["estimator"], r["parameter"]) for r in record["rows"]] == [
        ("score", "mu"), ("score", "sigma"), ("pathwise", "mu"), ("pathwise", "sigma")]
    closed = closed_form_square(mu - k)
    for row in record["rows"]:
        assert SCHEMA <= set(row)
        exact = closed["gradient_mu"] if row["parameter"] == "mu" else closed["gradient_sigma"]
        assert row["exact_gradient"] == pytest.approx(exact, abs=1e-9)
        assert row["bias"] == pytest.approx(row["mean"] - exact, abs=1e-9)
        assert abs(row["bias"]) <= 4 * row["standard_error"]
        assert row["efficiency"] == pytest.approx(1 / (row["variance"] * row["seconds_per_estimate"]))
    score_mu = record["rows"][0]
    assert score_mu["exact_variance"] == pytest.approx(closed["score_mu_variance"] / 4, rel=1e-9)
    assert abs(score_mu["variance"] - score_mu["exact_variance"]) <= 4 * score_mu["variance_standard_error"]
    assert json.loads((tmp_path / "report.json").read_text()) == record
    assert (tmp_path / "variance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_k_sweep_rows_carry_k_and_the_table_prints(capsys):
    assert cli.main(["bench", "variance", "--problem", "gaussian-cos", "--k", "0.5,2", "--estimators", "pathwise",
                     "--samples", "2", "--replicas", "50", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["k", "estimator", "param"]
    assert len(out.splitlines()) == 2 + 2 * 2


@pytest.mark.parametrize("argv,message", [
    (["--problem", "bernoulli", "--estimators", "pathwise"], "'pathwise' does not apply to the bernoulli problem"),
    (["--problem", "gaussian-cos", "--estimators", "concrete"], "'concrete' does not apply"),
    (["--problem", "sbn", "--dim", "13"], "expected at most 12"),
    (["--problem", "gaussian-cos", "--estimators", "reinforce"], "expected names from"),
    (["--problem", "gaussian-cos", "--k", "two"], "--k: expected a number"),
    (["--problem", "gaussian-cos", "--samples", "0"], "n_samples: expected a positive integer"),
    (["--problem", "gaussian-cos", "--checkpoint", "runs/x"], "--checkpoint: expected only with --problem vae"),
    (["--problem", "gaussian-cos", "--estimators", "rebar"], "'rebar' does not apply to the gaussian-cos problem: it "
                                                             "expects Bernoulli or categorical latents, got a Normal"),
    (["--problem", "categorical", "--estimators", "disarm"], "expects Bernoulli latents, got a categorical"),
    (["--problem", "categorical", "--estimators", "vimco", "--samples", "1"], "'vimco' builds each draw's baseline"),
])
def test_refusals_exit_2_with_a_clear_message(argv, message, capsys):
    assert cli.main(["bench", "variance", "--replicas", "10", "--samples", "2", *argv]) == 2  # later flags win
    assert message in capsys.readouterr().err


def test_sbn_json_rows_of_the_discrete_estimators(capsys):
    # Each row's mean against the exact gradient by enumeration (for vimco: of the K-sample bound),
    # within 5 standard errors of the mean over the replicas (4 rows).
    assert cli.main(["bench", "variance", "--problem", "sbn", "--dim", "2", "--estimators", "vimco,disarm",
                     "--samples", "2", "--replicas", "2000", "--repeats", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [(r["estimator"], r["parameter"]) for r in record["rows"]] == [
        (name, parameter) for name in ("vimco", "disarm") for parameter in ("biases.0", "weights.0")]
    by_name = {(r["estimator"], r["parameter"]): r for r in record["rows"]}
    assert by_name[("vimco", "biases.0")]["exact_gradient"] != by_name[("disarm", "biases.0")]["exact_gradient"]
    for row in record["rows"]:
        assert SCHEMA <= set(row)
        assert abs(row["bias"]) <= 5 * row["standard_error"] + 1e-6, row


def test_categorical_vae_json_rows_against_enumeration(capsys):
    # One row per logit (2 latents x 4 categories); each unbiased row's mean within 5 standard errors
    # of the exact gradient by enumeration (checked against finite differences of the ELBO in
    # test_estimators_discrete.py), whose logits sum to zero per latent; score's variance against
    # its exact variance.
    assert cli.main(["bench", "variance", "--problem", "categorical-vae", "--dim", "2", "--estimators",
                     "score,muprop,straight-through", "--samples", "2", "--replicas", "2000", "--repeats", "1",
                     "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["problem"] == "categorical-vae" and record["settings"]["states"] == 16
    logits = [f"logits[{i},{c}]" for i in range(2) for c in range(4)]
    assert [(r["estimator"], r["parameter"]) for r in record["rows"]] == [
        (name, parameter) for name in ("score", "muprop", "straight-through") for parameter in logits]
    exact = [r["exact_gradient"] for r in record["rows"][:8]]
    assert sum(exact[:4]) == pytest.approx(0.0, abs=1e-9) and sum(exact[4:]) == pytest.approx(0.0, abs=1e-9)
    for row in record["rows"]:
        assert SCHEMA <= set(row)
        if row["estimator"] != "straight-through":  # biased: its bias is reported, not bounded
            assert abs(row["bias"]) <= 5 * row["standard_error"] + 1e-6, row
        if row["estimator"] == "score":
            assert abs(row["variance"] - row["exact_variance"]) <= 5 * row["variance_standard_error"], row


def test_cli_help_names_equal_the_registries():
    assert cli.BENCH_PROBLEMS == PROBLEMS
    assert cli.BENCH_ESTIMATORS == ESTIMATORS
