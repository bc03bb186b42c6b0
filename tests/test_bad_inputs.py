"""Bad input, table-driven: every refusal is one line, the right exit status, no traceback, nothing written.

Each command-line case runs ``unigen.cli.main(argv)`` in this process (argparse's exits
included) with the working directory in a scratch folder ``work/`` that holds a trained run,
damaged copies of it, a file and a directory named like outputs; each case asserts the exit
status, exactly one line on stderr containing what the refusal must name, no traceback, and that
no file under ``work/`` was created, changed or removed. Each Python-API case asserts a
:class:`~unigen.errors.UnigenError` that is also the builtin a Python user expects, with a
one-line message.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from unigen import cli, data
from unigen.errors import ArgumentTypeError, ConfigError, DataError, UnigenError

TINY = ["--steps", "2", "--batch-size", "50", "--hidden", "8", "--latent-dim", "2", "--eval-k", "2",
        "--steps-per-call", "1", "--no-progress"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """``work/``: ``run`` (a finished tiny VAE run), damaged copies ``c-*``, ``afile``, ``adir.png/``."""
    root = tmp_path_factory.mktemp("work")
    assert cli.main(["train", "vae", *TINY, "--out", str(root / "run")]) == 0
    config = json.loads((root / "run" / "config.json").read_text())
    damaged = {
        "c-empty": "{}",
        "c-list": "[1, 2]",
        "c-truncated": json.dumps(config)[:40],
        "c-unknown": json.dumps({**config, "algorithm": "frobnicate"}),
        "c-type": json.dumps({**config, "latent_dim": "x"}),
        "c-missing": json.dumps({k: v for k, v in config.items() if k != "optimizer"}),
        "c-pm": json.dumps({**config, "algorithm": "pm"}),
    }
    for name, text in damaged.items():
        shutil.copytree(root / "run", root / name)
        (root / name / "config.json").write_text(text)
    shutil.copytree(root / "run", root / "c-nockpt")
    shutil.rmtree(root / "c-nockpt" / "checkpoints")
    (root / "afile").write_text("a file\n")
    (root / "adir.png").mkdir()
    (root / "empty").mkdir()
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


RUN, PM = "run", "c-pm"
CLI_CASES = [
    # (id, argv, what the one line must contain); exit status 2 unless the id says otherwise
    # train: options
    ("steps-not-int", "train vae --steps abc", "--steps: expected an integer, got 'abc'"),
    ("steps-zero", "train vae --steps 0", "--steps: expected a positive integer, got 0"),
    ("epochs-nan", "train vae --epochs nan", "--epochs: expected a positive number, got nan"),
    ("batch-zero", "train vae --batch-size 0", "--batch-size: expected a positive integer"),
    ("batch-too-large", "train vae --batch-size 100000", "100000"),
    ("lr-negative", "train vae --lr -1", "-1"),
    ("lr-nan", "train vae --lr nan", "nan"),
    ("optimizer-unknown", "train vae --optimizer rmsprop", "'rmsprop'"),
    ("b1-outside", "train vae --b1 1.5", "1.5"),
    ("seed-huge", "train vae --seed 99999999999999999999", "--seed: expected an integer from 0 to 9223372036854775807"),
    ("seed-negative", "train vae --seed -1", "--seed: expected an integer from 0 to"),
    ("latent-float", "train vae --latent-dim 1e11", "--latent-dim: expected an integer, got '1e11'"),
    ("latent-zero", "train vae --latent-dim 0", "--latent-dim: expected a positive integer, got 0"),
    ("latent-huge", "train vae --latent-dim 100000000000", "--latent-dim 100000000000"),
    ("hidden-huge", "train vae --hidden 2000000000", "--hidden 2000000000"),
    ("hidden-zero", "train vae --hidden 0", "--hidden: expected comma-separated positive widths"),
    ("hidden-word", "train vae --hidden abc", "--hidden: expected comma-separated positive widths"),
    ("iwae-k-huge", "train iwae --k 1000000000", "--k 1000000000"),
    ("iwae-k-float", "train iwae --k 1e9", "--k: expected an integer, got '1e9'"),
    ("iwae-k-zero", "train iwae --k 0", "--k: expected a positive integer, got 0"),
    ("eval-k-zero", "train vae --eval-k 0", "--eval-k: expected a positive integer, got 0"),
    ("eval-k-float", "train vae --eval-k 1e12", "--eval-k: expected an integer, got '1e12'"),
    ("data-unknown", "train vae --data nope", "'nope'"),
    ("data-tfds-missing", "train vae --data tfds:nope --data-dir empty", "nope"),
    ("data-idx-missing", "train vae --data idx:nodir", "idx:nodir"),
    ("binarize-choice", "train vae --binarize foo", "--binarize: expected one of"),
    ("activation-unknown", "train vae --activation foo", "foo"),
    ("kl-unknown", "train vae --kl foo", "foo"),
    ("likelihood-unknown", "train vae --likelihood foo", "foo"),
    ("option-unknown", "train vae --foo 3", "--foo 3: expected an option of this command"),
    ("option-of-others", "train vae --k 5", "--k: expected only with iwae"),
    ("recipe-unknown", "train nosuch", "algorithm: expected one of"),
    ("recipe-missing", "train", "NAME: expected a value, got none"),
    ("steps-and-epochs", "train vae --steps 3 --epochs 2", "--epochs: expected without --steps"),
    ("steps-no-value", "train vae --steps", "--steps: expected a value after it"),
    ("out-file", "train vae --out afile", "--out: afile is a file; expected a directory"),
    ("out-under-file", "train vae --out afile/sub", "afile is a file; expected a directory to hold"),
    ("out-holds-run", f"train vae {' '.join(TINY)} --out {RUN}", "is not empty"),
    ("resume-other-settings", f"train vae {' '.join(TINY[:-3])} --latent-dim 3 --no-progress --out {RUN} --resume",
     "latent_dim"),
    ("sbn-on-points", "train wake-sleep --data ring8", "--likelihood: expected bernoulli"),
    ("steps-per-call-zero", "train vae --steps-per-call 0", "--steps-per-call: expected a positive integer"),
    ("checkpoint-every-zero", "train vae --checkpoint-every 0", "--checkpoint-every: expected a positive integer"),
    ("memory-limit", "train vae --steps 1", "needs at least"),  # with UNIGEN_MEMORY_LIMIT=1000 below
    # eval
    ("eval-missing", "eval nodir", "nodir/config.json not found"),
    ("eval-file", "eval afile", "afile/config.json"),
    ("eval-config-empty", "eval c-empty", "algorithm: expected one of"),
    ("eval-config-list", "eval c-list", "holds list [1, 2]; expected a JSON object"),
    ("eval-config-truncated", "eval c-truncated", "cannot be read as JSON"),
    ("eval-config-unknown", "eval c-unknown", "'frobnicate'"),
    ("eval-config-type", "eval c-type", "--latent-dim: expected an integer, got 'x'"),
    ("eval-config-missing", "eval c-missing", "optimizer = null; expected an optimizer name"),
    ("eval-no-checkpoint", "eval c-nockpt", "c-nockpt has no checkpoints/ directory"),
    ("eval-k-zero", f"eval {RUN} --k 0", "--k: expected a positive integer, got 0"),
    ("eval-k-word", f"eval {RUN} --k abc", "--k: expected an integer, got 'abc'"),
    ("eval-split", f"eval {RUN} --split nope", "'nope'"),
    ("eval-pm", f"eval {PM}", "do not match the run"),  # a vae checkpoint under a config that says pm
    ("eval-no-run", "eval", "run: expected a value, got none"),
    # sample
    ("sample-not-png", f"sample {RUN} --out s.txt", "--out: expected a .png file name, got 's.txt'"),
    ("sample-out-dir", f"sample {RUN} --out adir.png", "--out: adir.png is a directory; expected a file name"),
    ("sample-under-file", f"sample {RUN} --out afile/s.png", "afile is a file; expected a directory to hold"),
    ("sample-n-zero", f"sample {RUN} --n 0 --out s.png", "--n: expected a positive integer, got 0"),
    ("sample-n-float", f"sample {RUN} --n 1e8 --out s.png", "--n: expected an integer, got '1e8'"),
    ("sample-n-huge", f"sample {RUN} --n 100000000 --out s.png", "--n 100000000: drawing 100000000 samples"),
    ("sample-no-out", f"sample {RUN}", "--out: expected a value, got none"),
    ("sample-config-list", "sample c-list --out s.png", "holds list [1, 2]"),
    ("sample-pm", f"sample {PM} --out s.png", "is a pm run"),
    # bench
    ("bench-problem", "bench variance --problem nope", "nope"),
    ("bench-no-problem", "bench variance", "--problem: expected a value, got none"),
    ("bench-replicas-huge", "bench variance --problem gaussian-square --replicas 1000000000",
     "--replicas 1000000000"),
    ("bench-replicas-float", "bench variance --problem gaussian-square --replicas 1e9",
     "--replicas: expected an integer, got '1e9'"),
    ("bench-out-file", "bench variance --problem gaussian-square --out afile", "--out: afile is a file"),
    ("bench-k-word", "bench variance --problem gaussian-square --k abc", "--k: expected a number"),
    ("bench-mu-nan", "bench variance --problem gaussian-square --mu nan", "nan"),
    ("bench-estimator", "bench variance --problem gaussian-square --estimators nope", "'nope'"),
    ("bench-pathwise-discrete", "bench variance --problem bernoulli --estimators pathwise", "pathwise"),
    ("bench-samples-zero", "bench variance --problem gaussian-square --samples 0", "0"),
    ("bench-checkpoint-problem", f"bench variance --problem gaussian-square --checkpoint {RUN}",
     "--checkpoint: expected only with --problem vae"),
    ("bench-modes-data", "bench modes --data digits", "digits"),
    ("bench-modes-out-file", "bench modes --data ring8 --out afile", "--out: afile is a file"),
    ("bench-modes-algorithm", "bench modes --data ring8 --algorithms nope", "nope"),
    ("bench-modes-seeds", "bench modes --data ring8 --seeds 0", "0"),
    ("bench-nothing", "bench", "expected a value, got none"),
    # algebra and the command itself
    ("algebra-show", "algebra show nope", "'nope'"),
    ("algebra-show-module", "algebra show nomodule:X", "nomodule:X does not import"),
    ("algebra-verify", "algebra verify nope", "nope"),
    ("algebra-verify-seed", "algebra verify lemma1 --seed abc", "--seed: expected an integer, got 'abc'"),
    ("algebra-direction", "algebra direction nope", "'nope'"),
    ("algebra-nothing", "algebra", "expected a value, got none"),
    ("command-unknown", "frob", "expected one of 'train', 'eval', 'sample', 'algebra', 'bench', got 'frob'"),
]


@pytest.mark.parametrize("name, argv, expected", CLI_CASES, ids=[case[0] for case in CLI_CASES])
def test_a_bad_command_is_one_line_exit_2_and_writes_nothing(work, name, argv, expected, monkeypatch, capsys):
    monkeypatch.chdir(work)
    if name == "memory-limit":
        monkeypatch.setenv("UNIGEN_MEMORY_LIMIT", "1000")
    before = snapshot(work)
    try:
        status = cli.main(argv.split())
    except SystemExit as exit_:  # argparse
        status = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("unigen: error: "), captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert snapshot(work) == before


X = (np.random.default_rng(0).uniform(size=(20, 4)) > 0.5).astype(np.float32)
ONES = int(np.count_nonzero(X))  # 2 * X and -X are out of [0, 1] exactly there


def _vae():
    from unigen.algorithms.vae import vae
    from unigen.models.vae import vae_model

    return vae(vae_model(4, 2, hidden=(8,)))


def _fit(batches, **options):
    from unigen.training import fit, make_optimizer

    options = {"steps": 1, "optimizer": make_optimizer("adam", 1e-3), "progress": False, **options}
    return fit(options.pop("algorithm", None) or _vae(), batches, **options)


def _step_with_other_params():
    import jax

    from unigen.training import make_optimizer, make_trainer

    trainer = make_trainer(_vae(), make_optimizer("adam", 1e-3))
    state = trainer.init(jax.random.key(0))
    trainer.step(state._replace(params={"theta": state.params["theta"]}), {"x": X})


def _is_nll(k, x=X):
    import jax

    from unigen.algorithms.vae import init_params
    from unigen.metrics import is_nll
    from unigen.models.vae import vae_model

    model = vae_model(4, 2, hidden=(8,))
    return is_nll(model, init_params(model, jax.random.key(0)), x, jax.random.key(1), k=k)


def _make_optimizer(*arguments, **options):
    from unigen.training import make_optimizer

    return make_optimizer(*arguments, **options)


def _vae_model(*arguments, **options):
    from unigen.models.vae import vae_model

    return vae_model(*arguments, **options)


API_CASES = [
    # (id, call, error class, what the message must contain)
    ("fit-optimizer-string", lambda: _fit([{"x": X}], optimizer="adam"), ConfigError, "optax GradientTransformation"),
    ("fit-list-of-arrays", lambda: _fit([X, X]), DataError, "expected a dict of arrays"),
    ("fit-an-array", lambda: _fit(X), DataError, "expected a dict of arrays"),
    ("fit-nan-data", lambda: _fit([{"x": np.where(X > 0, np.nan, X)}]), DataError, "NaN or Inf"),
    ("fit-inf-data", lambda: _fit([{"x": np.where(X > 0, np.inf, X)}]), DataError, "NaN or Inf"),
    ("fit-bernoulli-2", lambda: _fit([{"x": 2 * X}]), DataError, "outside [0, 1] (the first 2"),
    ("fit-bernoulli-minus-1", lambda: _fit([{"x": -X}]), DataError, "outside [0, 1] (the first -1"),
    ("fit-strings", lambda: _fit([{"x": np.array(["a", "b"])}]), DataError, "expected a real numeric array"),
    ("fit-algorithm-string", lambda: _fit([{"x": X}], algorithm="vae"), ArgumentTypeError, "expected a unigen.Algorithm"),
    ("fit-steps-float", lambda: _fit([{"x": X}], steps=1.5), ConfigError, "steps: expected a positive integer"),
    ("fit-iterable-too-short", lambda: _fit([{"x": X}], steps=2), DataError, "the iterable ended after 1 batches"),
    ("step-other-params", _step_with_other_params, ArgumentTypeError, "parameter groups ['theta']"),
    ("from-array-nan", lambda: data.from_array(np.full((3, 4), np.nan)), DataError, "NaN or Inf"),
    ("from-array-bernoulli", lambda: data.from_array(2 * X, binarize="static"), DataError, "outside [0, 1]"),
    ("from-array-binarize", lambda: data.from_array(X, binarize="yes"), ConfigError, "binarize='yes'"),
    ("load-unknown", lambda: data.load("nope", "train"), ConfigError, "unknown data set"),
    ("batches-too-large", lambda: data.Batches(data.from_array(X), 1000), DataError, "1000"),
    ("optimizer-unknown", lambda: _make_optimizer("rmsprop", 1e-3), ConfigError, "'rmsprop'"),
    ("learning-rate-nan", lambda: _make_optimizer("adam", float("nan")), ConfigError, "learning_rate"),
    ("vae-latent-string", lambda: _vae_model(4, "2"), ConfigError, "latent_dim"),
    ("is-nll-k-zero", lambda: _is_nll(0), ConfigError, "k: expected a positive int"),
    ("is-nll-bernoulli-2", lambda: _is_nll(1, 2 * X), DataError, f"x: {ONES} value(s) outside [0, 1]"),
]


@pytest.mark.parametrize("name, call, kind, expected", API_CASES, ids=[case[0] for case in API_CASES])
def test_a_bad_python_call_raises_a_one_line_unigen_error(name, call, kind, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kind) as raised:
        call()
    assert isinstance(raised.value, UnigenError)
    assert isinstance(raised.value, TypeError if kind is ArgumentTypeError else ValueError)
    message = str(raised.value)
    assert "\n" not in message and expected in message, message
    assert list(tmp_path.iterdir()) == []


TFDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "tfds"


@pytest.mark.skipif(not (TFDS_DIR / "binarized_mnist").is_dir(), reason=f"{TFDS_DIR} is absent")
@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_tfds_file_is_one_line_naming_the_split(damage, tmp_path, monkeypatch, capsys):
    shutil.copytree(TFDS_DIR / "binarized_mnist", tmp_path / "tfds" / "binarized_mnist")
    (record,) = (tmp_path / "tfds").rglob("binarized_mnist-train.array_record-*")
    if damage == "truncated":
        record.write_bytes(record.read_bytes()[: record.stat().st_size // 2])
    else:
        record.unlink()
    monkeypatch.chdir(tmp_path)
    data._read_tfds.cache_clear()
    assert cli.main(["train", "vae", "--data", "tfds:binarized_mnist", "--data-dir", "tfds", "--out", "run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"unigen: error: tfds:binarized_mnist split 'train' in {tmp_path / 'tfds'}: its records "
                          "cannot be read (RuntimeError: ")
    assert not (tmp_path / "run").exists()


def test_printed_json_is_valid_with_null_for_a_non_finite_number(monkeypatch, capsys):
    monkeypatch.setattr(cli, "evaluate", lambda *args, **options: {"is_nll": float("nan"), "elbo": [float("-inf"), 1.5]})
    assert cli.main(["eval", "anywhere"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out
    assert json.loads(out) == {"is_nll": None, "elbo": [None, 1.5]}


# --- Every recipe with a Bernoulli likelihood refuses data outside [0, 1], from the registry -----

def _bernoulli_recipes() -> list[str]:
    """The recipes that offer ``--likelihood`` (bernoulli on binary data): a new one is covered too."""
    from unigen import recipes

    return [name for name in recipes.names() if any(o.name == "likelihood" for o in recipes.recipe(name).options)]


@pytest.mark.parametrize("name", __import__("unigen.recipes", fromlist=["names"]).names())
def test_every_recipe_with_a_bernoulli_likelihood_refuses_data_outside_0_1_in_the_python_api(name, tmp_path):
    """``Algorithm.bernoulli`` names ``x`` exactly for the recipes with a Bernoulli likelihood, and
    ``fit`` refuses their batches with values 2 or -1 (at the ONES places X has a 1) as bad data."""
    from unigen import recipes

    found = recipes.recipe(name)
    config = {"algorithm": name, **found.read({}), "data_dim": 4, "image_shape": None, "likelihood": "bernoulli",
              "code_values": 3, "latent_dim": 2, "hidden": (4,), "layers": (3,)}
    _, algorithm = found.build(config)
    bernoulli = name in _bernoulli_recipes()
    assert algorithm.bernoulli == (("x",) if bernoulli else ()), name
    if not bernoulli:
        return
    for bad, first in ((2 * X, "2"), (-X, "-1")):
        with pytest.raises(DataError) as raised:
            _fit([{"x": bad}], algorithm=algorithm, out_dir=None)
        assert f"has {ONES} value(s) outside [0, 1] (the first {first} at index" in str(raised.value), name


@pytest.mark.parametrize("name", _bernoulli_recipes())
def test_every_recipe_with_a_bernoulli_likelihood_refuses_data_outside_0_1_on_the_command_line(
        name, tmp_path, monkeypatch, capsys):
    bad = data.from_array(np.concatenate([X, 2 * X]))  # ONES values 2 (from_array checks no range)
    monkeypatch.setattr(cli, "_dataset", lambda config, split, data_dir=None: bad)
    out = tmp_path / "run"
    status = cli.main(["train", name, "--likelihood", "bernoulli", "--steps", "1", "--batch-size", "10",
                       "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{ONES} value(s) outside [0, 1]" in err and "for a Bernoulli likelihood" in err, err
    assert not out.exists()
