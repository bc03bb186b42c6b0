"""``unigen train ada|aae|vae-gan`` end to end: the outputs of their parents, and ``--resume``.

``ada`` trains 4 steps in process and is resumed to 8 steps by ``unigen train ... --resume`` in a
subprocess; the resumed run's summary must equal (apart from its timings) that of an
uninterrupted 8-step run, the oracle. ``aae`` and ``vae-gan`` train 2 steps (in process: the
subprocess path of the command is the ada resume's) and write their parents' outputs (the
trainer's resume is tested at length in ``test_faults.py``).
``algebra show`` and ``algebra table table1`` reach the new declarations through the same registry.
"""

import json
import subprocess
import sys

import pytest
from PIL import Image

from unigen import cli

TINY = ["--batch-size", "50", "--hidden", "8", "--steps-per-call", "2", "--checkpoint-every", "2", "--no-progress"]
RECIPES = {
    "ada": (["--data", "adapt:contrast", "--feature-dim", "4"], {"classifier", "discriminator", "features"},
            {"source_accuracy", "target_accuracy"}),
    "aae": (["--latent-dim", "2"], {"reconstruction", "discriminator", "encoder"},
            {"test_reconstruction", "critic_accuracy"}),
    "vae-gan": (["--latent-dim", "2", "--eval-k", "5"], {"elbo", "discriminator", "generator"},
                {"test_elbo", "is_nll"}),
}
TIMINGS = ("wall_seconds", "images_per_second")


def _summary(out):
    found = json.loads((out / "summary.json").read_text())
    return {k: v for k, v in found.items() if k not in TIMINGS}


def _check_outputs(out, name, steps):
    _, phases, own = RECIPES[name]
    summary = _summary(out)
    assert set(summary["losses"]) == phases and own <= set(summary) and summary["steps"] == steps
    assert len((out / "metrics.jsonl").read_text().splitlines()) == steps
    assert (out / "checkpoints").is_dir()
    width, height = Image.open(out / "samples.png").size
    assert width >= 8 * 8 and height >= 8 * 8  # a grid of 8x8 digits
    return summary


def _subprocess(*argv):
    done = subprocess.run([sys.executable, "-m", "unigen.cli", *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def test_ada_resumes_in_a_subprocess_to_the_uninterrupted_run(tmp_path):
    command = ["train", "ada", *RECIPES["ada"][0], *TINY]
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    assert cli.main([*command, "--steps", "4", "--out", str(resumed)]) == 0
    _subprocess(*command, "--steps", "8", "--out", str(resumed), "--resume")
    assert cli.main([*command, "--steps", "8", "--out", str(straight)]) == 0
    summary = _check_outputs(resumed, "ada", 8)
    assert summary == _summary(straight)
    test_rows = 299 // 2  # the digits test split, halved into source and target
    for key in ("source_accuracy", "target_accuracy"):
        assert summary[key] * test_rows == pytest.approx(round(summary[key] * test_rows), abs=1e-6)


@pytest.mark.parametrize("name", ["aae", "vae-gan"])
def test_a_run_writes_its_parents_outputs(name, tmp_path):
    assert cli.main(["train", name, *RECIPES[name][0], *TINY, "--steps", "2", "--out", str(tmp_path / name)]) == 0
    _check_outputs(tmp_path / name, name, 2)


def test_algebra_show_and_table1_reach_the_new_declarations(capsys, tmp_path):
    assert cli.main(["algebra", "show", "ada"]) == 0
    assert "features: max_{θ} λ · E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)]" in capsys.readouterr().out
    assert cli.main(["algebra", "table", "table1", "--columns", "ada,aae,vae-gan"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == "|  | ADA | AAE | VAE/GAN |"
    assert cli.main(["algebra", "direction", "vae-gan", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["side"] == "first; second"
    assert cli.main(["train", "ada", "--data", "digits", "--steps", "1", "--out", str(tmp_path / "no")]) == 2
    assert "--data: expected adapt:SHIFT for ada" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
