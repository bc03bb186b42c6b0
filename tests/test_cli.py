"""The ``unigen`` command end to end: files written, numbers consistent, errors clear."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from unigen import cli, data, viz
from unigen.metrics import is_nll, test_elbo

QUICK = ["--steps", "60", "--batch-size", "50", "--hidden", "32", "--latent-dim", "4", "--eval-k", "20",
         "--steps-per-call", "20", "--checkpoint-every", "20", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", "vae", *QUICK, "--out", str(out)]) == 0
    return out


def test_train_writes_every_file_with_consistent_numbers(run_dir):
    for name in ("config.json", "metrics.jsonl", "summary.json", "samples.png"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= {"losses", "test_elbo", "is_nll", "steps", "images_per_second", "wall_seconds"}
    assert "final_loss" not in summary  # replaced by the per-phase losses
    assert summary["steps"] == 60
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 61))
    assert summary["losses"] == {"elbo": rows[-1]["elbo/loss"]}
    # Recompute the test numbers from the saved checkpoint: the summary must be what it claims.
    config, model, params = cli._load_run(run_dir)
    test_x = data.load("digits", "test", binarize="static").x
    key = jax.random.key(config["seed"] + 1)
    assert summary["test_elbo"] == pytest.approx(test_elbo(model, params, test_x, key), rel=1e-6)
    assert summary["is_nll"] == pytest.approx(is_nll(model, params, test_x, key, k=20), rel=1e-6)
    # The importance-sampled bound is tighter than the ELBO: -IS-NLL >= ELBO up to MC error.
    assert summary["is_nll"] <= -summary["test_elbo"] + 0.5


def test_eval_prints_is_nll_and_elbo_as_json(run_dir, capsys):
    assert cli.main(["eval", str(run_dir), "--k", "10"]) == 0
    printed = json.loads(capsys.readouterr().out)
    config, model, params = cli._load_run(run_dir)
    test_x = data.load("digits", "test", binarize="static").x
    key = jax.random.key(0)
    assert printed["is_nll"] == pytest.approx(is_nll(model, params, test_x, key, k=10), rel=1e-6)
    assert printed["elbo"] == pytest.approx(test_elbo(model, params, test_x, key), rel=1e-6)
    assert printed["examples"] == test_x.shape[0]


def test_sample_draws_from_the_prior_and_decodes(run_dir, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert cli.main(["sample", str(run_dir), "--n", "9", "--out", str(out), "--seed", "4"]) == 0
    # The same draws by hand: z_i ~ N(0, I) with key split(key(4), 9)[i], shown as E[x | z_i].
    _, model, params = cli._load_run(run_dir)
    keys = jax.random.split(jax.random.key(4), 9)
    z = np.stack([np.asarray(jax.random.normal(k, (4,))) for k in keys])
    means = np.stack([np.asarray(model.decode_mean(params["theta"], zi)) for zi in z])
    expected = tmp_path / "expected.png"
    viz.save_image_grid(means, (8, 8, 1), expected)
    np.testing.assert_allclose(np.asarray(Image.open(out), float), np.asarray(Image.open(expected), float), atol=1)


def test_resume_continues_to_more_steps(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert cli.main(["train", "vae", *QUICK[2:], "--steps", "80", "--out", str(copy), "--resume"]) == 0
    assert json.loads((copy / "summary.json").read_text())["steps"] == 80
    steps = [json.loads(line)["step"] for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 81))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "bogus"], r"algorithm: expected one of \['vae', 'iwae', 'wake-sleep', 'rws', 'vem', 'gan', 'infogan', 'pm', 'iwgan', "
                              r"'aavae', 'ada', 'aae', 'vae-gan'\], got 'bogus'"),
        (["train", "vae", "--data", "mnist"], r"name='mnist': unknown data set; expected one of"),
        (["train", "vae", "--data", "tfds:binarized_mnist", "--data-dir", "/no/such/dir"],
         r"data_dir='/no/such/dir': no such directory"),
        (["train", "vae", "--batch-size", "5000"], r"batch_size=5000: split 'train' of digits has 1498 examples"),
        (["train", "vae", "--optimizer", "rmsprop"], r"optimizer: expected one of \['adagrad', 'adam', 'sgd'\], got 'rmsprop'"),
        (["train", "vae", "--lr", "-1"], r"learning_rate: expected a positive finite number, got -1"),
        (["train", "vae", "--steps", "0"], r"--steps: expected a positive integer, got 0"),
        (["train", "vae", "--train-fraction", "0"], r"--train-fraction: expected a number in \(0, 1\], got 0.0"),
        (["train", "vae", "--train-fraction", "0.01", "--batch-size", "20"],
         r"batch_size=20: split 'train' of digits has 15 examples"),  # round(0.01 * 1498)
        (["train", "vae", "--likelihood", "poisson"], r"likelihood: expected one of \['bernoulli', 'gaussian'\]"),
        (["eval", "/no/such/run"], r"/no/such/run/config.json not found"),
    ],
)
def test_bad_input_is_one_line_without_traceback(argv, message, capsys, tmp_path):
    argv = [*argv, "--out", str(tmp_path / "new")] if argv[0] == "train" else argv
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("unigen: error: ") and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "new").exists()  # nothing written for a run that could not start


def test_train_fraction_keeps_the_first_examples_of_the_training_split(tmp_path):
    """--train-fraction 0.01 of the 1,498 training digits is the first 15: one epoch of batches of 5
    is 3 steps, and the config records the fraction (the test split stays whole)."""
    out = tmp_path / "run"
    argv = ["train", "vae", *QUICK[2:], "--epochs", "1", "--batch-size", "5", "--train-fraction", "0.01",
            "--out", str(out)]
    assert cli.main(argv) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
    assert json.loads((out / "config.json").read_text())["train_fraction"] == 0.01


def test_a_finished_run_is_never_overwritten_and_resume_checks_settings(run_dir, capsys):
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert cli.main(["train", "vae", *QUICK, "--out", str(run_dir)]) == 2
    assert "is not empty; expected a new directory, or --resume" in capsys.readouterr().err
    assert cli.main(["train", "vae", *QUICK, "--latent-dim", "3", "--out", str(run_dir), "--resume"]) == 2
    assert "latent_dim (run: 4, now: 3)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_resume_from_a_corrupt_checkpoint_is_refused(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "corrupt"
    shutil.copytree(run_dir, copy)
    for path in (copy / "checkpoints").rglob("*"):
        if path.is_file() and "manifest" in path.name or path.parent.name == "d":
            path.write_bytes(b"not a checkpoint")
    assert cli.main(["train", "vae", *QUICK[2:], "--steps", "80", "--out", str(copy), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "unigen: error: checkpoint" in err and "corrupt" in err


def _unigen(*args, devices=1, **kw):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, "-m", "unigen.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "interrupted"
    process = _unigen("train", "vae", "--steps", "1000000", "--checkpoint-every", "1000000",
                      "--steps-per-call", "1", "--out", str(out))
    deadline = time.time() + 120
    while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").stat().st_size > 2000):
        assert process.poll() is None and time.time() < deadline, process.communicate()[1][-2000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "unigen: interrupted: SIGINT: stopped after step" in err
    saved = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] > 0


@pytest.mark.parametrize(("code", "frozen"), [(0, [True]), (2, [])])
def test_a_successful_command_freezes_its_objects_before_python_shuts_down(code, frozen, monkeypatch):
    """``cli.run`` ends a successful command with ``sys.exit(0)`` after ``gc.freeze()`` (the
    interpreter's last collections then skip every object made so far; atexit handlers, thread
    joins and file flushes still run); an error exit stays ``os._exit(code)`` at once."""
    froze, exited = [], []
    monkeypatch.setattr(cli, "_OWN_PROCESS", [])  # run marks the process as the command's own
    monkeypatch.setattr(cli, "main", lambda: code)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # this process keeps its handlers
    monkeypatch.setattr(cli, "redeliver_lost_signals", lambda: None)
    monkeypatch.setattr(cli.gc, "freeze", lambda: froze.append(True))
    monkeypatch.setattr(cli.os, "dup2", lambda *args: None)
    monkeypatch.setattr(cli.os, "_exit", lambda status: exited.append(status) or sys.exit(status))
    with pytest.raises(SystemExit) as ended:
        cli.run()
    assert ended.value.code == code and froze == frozen and exited == ([code] if code else [])
    assert cli._OWN_PROCESS == [True]


@pytest.mark.parametrize("own", [False, True])
def test_main_freezes_what_importing_jax_made_only_in_the_commands_own_process(own, monkeypatch, capsys):
    froze = []
    monkeypatch.setattr(cli, "_OWN_PROCESS", [True] if own else [])
    monkeypatch.setattr(cli.gc, "freeze", lambda: froze.append(True))
    assert cli.main(["algebra", "show", "vae"]) == 0 and "elbo: max" in capsys.readouterr().out
    assert froze == ([True] if own else [])


@pytest.mark.parametrize("identity", ["elbo-decomposition", "lemma1", "lemma2", "wake-sleep"])
@pytest.mark.parametrize("seed", [0, 5])
def test_algebra_verify_reports_each_identity_holding_exactly(identity, seed, capsys):
    assert cli.main(["algebra", "verify", identity, "--seed", str(seed), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"identity", "holds", "sense", "max_abs_error_value", "max_abs_error_grad", "space"}
    assert record["identity"] == identity and record["holds"] is True
    assert record["max_abs_error_value"] < 1e-9 and record["max_abs_error_grad"] < 1e-9


def test_algebra_verify_refuses_an_unknown_identity(capsys):
    assert cli.main(["algebra", "verify", "lemma3"]) == 2
    err = capsys.readouterr().err
    assert "unknown identity 'lemma3', expected one of ['elbo-decomposition', 'lemma1', 'lemma2', 'wake-sleep']" in err


def test_algebra_direction_reports_opposite_sides_for_gan_and_vae(capsys):
    """Lemma 1 puts the GAN generator first in its KL, Lemma 2 puts the VAE's model second."""
    records = {}
    for name in ("gan", "vae"):
        assert cli.main(["algebra", "direction", name, "--json"]) == 0
        records[name] = json.loads(capsys.readouterr().out)
    assert records["gan"]["side"] == "first" and records["gan"]["behaviour"] == "mode-seeking"
    assert records["vae"]["side"] == "second" and records["vae"]["behaviour"] == "mode-covering"
    assert records["gan"]["kl"] == "KL(p_θ(x|y) ‖ q^r(x|y))"
    assert records["vae"]["kl"] == "KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))"
    assert cli.main(["algebra", "direction", "iwae"]) == 2
    err = capsys.readouterr().err
    listed = err.split("expected one of ", 1)[1]
    assert "has no Figure-5 KL; expected one of [" in err and "'gan'" in listed and "'iwae'" not in listed


def test_algebra_show_prints_the_declared_objectives(capsys):
    from unigen.algorithms.vae import OBJECTIVE

    assert cli.main(["algebra", "show", "vae"]) == 0
    out = capsys.readouterr().out
    assert f"elbo: max_{{θ,η}} {OBJECTIVE}" in out
    assert cli.main(["algebra", "show", "vae", "--latex"]) == 0
    out = capsys.readouterr().out
    assert f"elbo: \\max_{{\\theta, \\eta}} {OBJECTIVE.latex()}" in out
    assert cli.main(["algebra", "show", "wake-sleep"]) == 0
    out = capsys.readouterr().out
    assert "max_{λ} E_{p_θ(x|h)p(h)}[log q_λ(h|x)]" in out  # the sleep phase updates λ (§3.4 typo)
    assert cli.main(["algebra", "show", "gann"]) == 2
    err = capsys.readouterr().err
    assert "algorithm: got 'gann', expected one of [" in err and "'gan'" in err


def test_algebra_table_renders_figure5_in_markdown_and_latex(capsys):
    assert cli.main(["algebra", "table"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert rows[0].split("|")[2:5] == [" GAN ", " InfoGAN ", " VAE "]
    kl_row = next(row for row in rows if row.startswith("| KL to minimize"))
    assert "KL(p_θ(x\\|y) ‖ q^r(x\\|y))" in kl_row and "p_θ(z,y\\|x))" in kl_row
    assert cli.main(["algebra", "table", "--latex"]) == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith("\\begin{tabular}") and "\\end{tabular}" in out
