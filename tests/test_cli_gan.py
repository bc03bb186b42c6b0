"""``unigen train gan|infogan`` end to end (issue [4], part 7): files, numbers, sampling, errors.

The mode coverage a 2-D run reports is recomputed from its saved checkpoint: the 2,500 points of
``samples.png`` (point i drawn with key ``split(key(seed), 2500)[i]``) scored by
:func:`unigen.metrics.mode_coverage` with the data set's centres and sigma.
"""

import json
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from unigen import cli, data, viz
from unigen.metrics import mode_coverage

QUICK = ["--steps-per-call", "50", "--no-progress"]


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _generated(model, theta, n, seed):
    keys = jax.random.split(jax.random.key(seed), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: model.generator.sample(theta, k, {})["x"]))(keys))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_gan")
    commands = {
        "gan": ["gan", "--data", "ring8", "--steps", "300", "--checkpoint-every", "300"],
        "infogan": ["infogan", "--data", "ring8", "--steps", "50", "--batch-size", "64", "--hidden", "32"],
        "digits": ["gan", "--data", "digits", "--steps", "50", "--batch-size", "50", "--hidden", "32",
                   "--form", "variational-em"],
        "r1": ["gan", "--data", "grid25", "--steps", "50", "--hidden", "16", "--gradient-penalty", "2",
               "--pack", "4", "--b1", "0.5"],
    }
    out = {}
    for name, command in commands.items():
        out[name] = root / name
        assert cli.main(["train", *command, *QUICK, "--out", str(out[name])]) == 0
    return out


def test_gan_run_reports_the_mode_coverage_of_its_checkpoint(runs):
    run = runs["gan"]
    for name in ("config.json", "metrics.jsonl", "summary.json", "samples.png", "checkpoints"):
        assert (run / name).exists(), name
    summary = _summary(run)
    assert summary["steps"] == 300
    rows = _rows(run)
    assert [row["step"] for row in rows] == list(range(1, 301))
    assert summary["losses"] == {"discriminator": rows[-1]["discriminator/loss"],
                                 "generator": rows[-1]["generator/loss"]}
    config, model, params = cli._load_run(run)
    assert (config["generator_loss"], config["form"]) == ("non-saturating", "classic")
    assert (config["hidden"], config["latent_dim"], config["likelihood"]) == ((64, 64), 2, None)
    assert set(params) == {"theta", "phi"}
    ring = data.load("ring8", "test")
    coverage = mode_coverage(_generated(model, params["theta"], 2500, config["seed"]), ring.centres, ring.sigma)
    assert summary["coverage_samples"] == 2500 and summary["modes"] == 8
    assert summary["modes_captured"] == coverage.modes_captured
    assert summary["high_quality_fraction"] == pytest.approx(coverage.high_quality_fraction, abs=1e-12)
    assert summary["reverse_kl"] == pytest.approx(coverage.reverse_kl, rel=1e-9)
    assert 0 <= summary["modes_captured"] <= 8 and 0.0 <= summary["high_quality_fraction"] <= 1.0
    assert 0.0 <= summary["reverse_kl"] <= np.log(8) + 1e-9


def test_infogan_run_resolves_the_code_and_reports_the_information(runs):
    run = runs["infogan"]
    summary = _summary(run)
    config, model, params = cli._load_run(run)
    assert config["code_values"] == 8 and model.code_values == 8  # one code value per ring8 mode
    assert config["information_weight"] == 1.0 and "generator_loss" not in config
    assert set(params) == {"theta", "phi", "eta"}
    assert summary["information"] == _rows(run)[-1]["generator/information"]
    assert summary["information"] <= np.log(8) + 1e-5  # the bound is at most H(p(z)) = log K
    ring = data.load("ring8", "test")
    coverage = mode_coverage(_generated(model, params["theta"], 2500, config["seed"]), ring.centres, ring.sigma)
    assert summary["modes_captured"] == coverage.modes_captured
    assert summary["reverse_kl"] == pytest.approx(coverage.reverse_kl, rel=1e-9)


def test_digits_run_writes_a_sample_grid_and_no_mode_coverage(runs):
    run = runs["digits"]
    summary = _summary(run)
    assert not {"modes_captured", "high_quality_fraction", "reverse_kl", "is_nll"} & set(summary)
    config, model, params = cli._load_run(run)
    assert config["form"] == "variational-em" and config["image_shape"] == [8, 8, 1]
    # A GAN has no Bernoulli likelihood: --binarize auto keeps the grey levels.
    assert len(np.unique(cli._dataset(config, "train").x)) > 2
    assert Image.open(run / "samples.png").size[0] > 0


def test_gradient_penalty_pack_and_b1_reach_the_run(runs):
    """--gradient-penalty, --pack and --b1 are stored, rebuild the same model and penalized
    discriminator, and the penalty is logged (a positive value each step)."""
    run = runs["r1"]
    config, model, params = cli._load_run(run)
    assert (config["gradient_penalty"], config["pack"], config["b1"]) == (2.0, 4, 0.5)
    assert model.pack == 4 and params["phi"]["discriminator"]["linear0"]["kernel"].shape == (8, 16)
    rows = _rows(run)
    assert all(row["discriminator/gradient_penalty"] > 0 for row in rows)
    # the logged loss is the declared objective's loss plus gamma times the penalty
    last = rows[-1]
    assert last["discriminator/loss"] == pytest.approx(-last["discriminator/objective"]
                                                       + 2.0 * last["discriminator/gradient_penalty"], rel=1e-5)


def test_sample_draws_from_the_generator(runs, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert cli.main(["sample", str(runs["gan"]), "--n", "200", "--out", str(out), "--seed", "3"]) == 0
    _, model, params = cli._load_run(runs["gan"])
    ring = data.load("ring8", "test")
    expected = tmp_path / "expected.png"
    viz.save_mode_scatter(_generated(model, params["theta"], 200, 3), ring.centres, expected, sigma=ring.sigma)
    np.testing.assert_allclose(np.asarray(Image.open(out), float), np.asarray(Image.open(expected), float), atol=1)


def test_minimax_generator_is_the_declared_minimax_objective():
    from unigen import recipes

    gan = recipes.recipe("gan")
    config = {**gan.read({"generator_loss": "minimax"}), "data_dim": 2}
    model, algorithm = gan.build(config)
    assert algorithm.objective.name == "gan-minimax"
    assert [phase.name for phase in algorithm.phases] == ["discriminator", "generator"]


def test_eval_and_a_changed_resume_are_refused(runs, tmp_path, capsys):
    assert cli.main(["eval", str(runs["gan"])]) == 2
    assert "is a gan run, an implicit generator without a likelihood" in capsys.readouterr().err
    copy = tmp_path / "copy"
    shutil.copytree(runs["gan"], copy)
    argv = ["train", "gan", "--data", "ring8", "--steps", "400", "--generator-loss", "minimax", *QUICK,
            "--out", str(copy), "--resume"]
    assert cli.main(argv) == 2
    assert "generator_loss (run: 'non-saturating', now: 'minimax')" in capsys.readouterr().err
    # A run written before --gradient-penalty/--pack/--b1 existed resumes with their defaults.
    legacy = tmp_path / "legacy"
    shutil.copytree(runs["gan"], legacy)
    stored = json.loads((legacy / "config.json").read_text())
    for name in ("gradient_penalty", "pack", "b1"):
        del stored[name]
    (legacy / "config.json").write_text(json.dumps(stored))
    config, model, _ = cli._load_run(legacy)  # eval/sample read such a run with the defaults too
    assert model.pack == 1 and config["gradient_penalty"] == 0.0
    argv = ["train", "gan", "--data", "ring8", "--steps", "350", *QUICK, "--out", str(legacy), "--resume"]
    assert cli.main(argv) == 0
    assert _summary(legacy)["steps"] == 350
    # A GAN run is not a VAE checkpoint for the estimator benchmark's vae problem.
    argv = ["bench", "variance", "--problem", "vae", "--checkpoint", str(runs["gan"])]
    assert cli.main(argv) == 2
    assert "--checkpoint: expected a run of unigen train vae, got a 'gan' run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gan", "--form", "variational-em", "--generator-loss", "minimax"],
         "--generator-loss: expected non-saturating with --form variational-em"),
        (["vae", "--generator-loss", "minimax"], "--generator-loss: expected only with gan, got minimax for vae"),
        (["infogan", "--form", "classic"], "--form: expected only with gan, got classic for infogan"),
        (["gan", "--code-values", "4"], "--code-values: expected only with infogan, got 4 for gan"),
        (["infogan", "--code-values", "1"], "--code-values: expected an integer of at least 2, got 1"),
        (["infogan", "--information-weight", "0"], "--information-weight: expected a positive number, got 0.0"),
        (["gan", "--likelihood", "gaussian"], "--likelihood: expected only with vae, iwae, wake-sleep, rws, vem, "
                                              "aavae, aae, vae-gan, got gaussian for gan"),
        (["gan", "--eval-k=5"], "--eval-k: expected only with vae, iwae, wake-sleep, rws, vem, aavae, "
                                 "vae-gan, got 5 for gan"),
        (["gan", "--layers", "10"], "--layers: expected only with wake-sleep, rws, vem, got 10 for gan"),
        (["gan", "--latent-dim", "0"], "--latent-dim: expected a positive integer, got 0"),
        (["gan", "--gradient-penalty", "-1"], "--gradient-penalty: expected a number >= 0, got -1.0"),
        (["gan", "--pack", "3"], "--pack: expected a positive divisor of --batch-size 100"),
        (["vae", "--pack", "2"], "--pack: expected only with gan, got 2 for vae"),
        (["gan", "--optimizer", "sgd", "--b1", "0.5"], "b1: expected only with the adam optimizer"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, tmp_path, capsys):
    assert cli.main(["train", *argv, "--data", "ring8", "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start


def test_unknown_choices_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "gan", "--generator-loss", "wasserstein"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("unigen: error: --generator-loss: expected one of") and err.count("\n") == 1
    assert "got 'wasserstein' (see unigen train gan --help)" in err
