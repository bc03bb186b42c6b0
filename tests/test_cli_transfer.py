"""``unigen train ada|aae|vae-gan`` end to end: the outputs of their parents, and ``--resume``.

Each recipe trains 4 steps in process and is resumed to 8 steps by ``unigen train ... --resume`` in
a subprocess; for ``ada`` the resumed run's summary must equal (apart from its timings) that of an
uninterrupted 8-step run, the oracle. ``algebra show`` and ``algebra table table1`` reach the new
declarations through the same registry.
"""

import json
import subprocess
import sys

import pytest
from PIL import Image

from unigen import cli

TINY = ["--batch-size", "50", "--hidden", "8", "--steps-per-call", "2", "--checkpoint-every", "4", "--no-progress"]
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


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_run_writes_its_parents_outputs_and_resumes_to_the_uninterrupted_run(name, tmp_path):
    options, phases, own = RECIPES[name]
    command = ["train", name, *options, *TINY]
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    assert cli.main([*command, "--steps", "4", "--out", str(resumed)]) == 0
    done = subprocess.run([sys.executable, "-m", "unigen.cli", *command, "--steps", "8", "--out", str(resumed),
                           "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = _summary(resumed)
    if name == "ada":  # one uninterrupted run as the oracle (the trainer's resume is tested at length elsewhere)
        assert cli.main([*command, "--steps", "8", "--out", str(straight)]) == 0
        assert summary == _summary(straight)
    assert set(summary["losses"]) == phases and own <= set(summary) and summary["steps"] == 8
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 8
    assert (resumed / "checkpoints").is_dir()
    width, height = Image.open(resumed / "samples.png").size
    assert width >= 8 * 8 and height >= 8 * 8  # an 8 x 8 grid of 8x8 digits
    if name == "ada":
        test_rows = 299 // 2  # the digits test split, halved into source and target
        for key in ("source_accuracy", "target_accuracy"):
            assert summary[key] * test_rows == pytest.approx(round(summary[key] * test_rows), abs=1e-6)


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
