"""unigen.recipes: typed options, the built-in registry, and a user's recipe by entry point.

The user's recipe is ``tests/fixtures/recipes/toy_recipe``, "installed" by its
``toy_recipe-0.0.dist-info`` (METADATA and entry_points.txt) when that directory is on the path,
which is all importlib.metadata needs to find its entry points. It fits a Gaussian mean with full
batches and SGD, so its trajectory is closed form: from mean 0 at rate lr with variance v,
mean_t = xbar (1 - (1 - lr/v)^t), the oracle the trained run is checked against.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from unigen import cli, data, recipes
from unigen.algorithms.declarations import DECLARATIONS
from unigen.errors import ConfigError
from unigen.recipes import Option, widths

FIXTURES = Path(__file__).parent / "fixtures" / "recipes"
CLASHING = Path(__file__).parent / "fixtures" / "clashing"  # clash-recipe: entry points vae and toy
BUILT_IN = ["vae", "iwae", "wake-sleep", "rws", "vem", "gan", "infogan", "pm", "iwgan", "aavae", "ada",
            "aae", "vae-gan"]
TOY_SHOWN = "Toy: a Gaussian mean by maximum likelihood (tests/fixtures)\n  likelihood: max_{θ} E_{p_data(x)}[log p_θ(x)]\n"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        (Option("latent_dim", int), "3", 3),
        (Option("latent_dim", int), 7, 7),  # a stored config.json value
        (Option("lr", float), "1e-3", 0.001),
        (Option("lr", float), 2, 2.0),
        (Option("hidden", widths), "200,200", (200, 200)),
        (Option("hidden", widths), "", ()),
        (Option("hidden", widths), [64, 64], (64, 64)),
        (Option("form", str, choices=("classic", "variational-em")), "classic", "classic"),
        (Option("k", int, 5), None, 5),
    ],
)
def test_options_read_their_type(option, value, expected):
    got = option.read(value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (Option("latent_dim", int), "2e9", "--latent-dim: expected an integer, got '2e9'"),
        (Option("latent_dim", int), "abc", "--latent-dim: expected an integer, got 'abc'"),
        (Option("latent_dim", int), 3.0, "--latent-dim: expected an integer, got 3.0"),
        (Option("latent_dim", int), True, "--latent-dim: expected an integer, got True"),
        (Option("lr", float), "fast", "--lr: expected a number, got 'fast'"),
        (Option("lr", float), "nan", "--lr: expected a finite number, got 'nan'"),
        (Option("kl", str), 3, "--kl: expected a string, got 3"),
        (Option("hidden", widths), "2e9", "--hidden: expected comma-separated positive widths such as 400 or "
                                          "200,200, got '2e9'"),
        (Option("hidden", widths), "0", "--hidden: expected comma-separated positive widths"),
        (Option("form", str, choices=("classic",)), "other", "--form: expected one of ['classic'], got 'other'"),
        (Option("k", int, minimum=1), "0", "--k: expected a positive integer, got 0"),
        (Option("code_values", int, minimum=2), "1", "--code-values: expected an integer of at least 2, got 1"),
    ],
)
def test_options_refuse_other_values_in_one_line(option, value, message):
    with pytest.raises(ConfigError) as error:
        option.read(value)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["vae", "--latent-dim", "2e9"], "--latent-dim: expected an integer, got '2e9'"),
        (["vae", "--hidden", "2e9"], "--hidden: expected comma-separated positive widths such as 400 or 200,200, "
                                     "got '2e9'"),
        (["gan", "--gradient-penalty", "strong"], "--gradient-penalty: expected a number, got 'strong'"),
        (["rws", "--k", "five"], "--k: expected an integer, got 'five'"),
    ],
)
def test_a_recipe_option_of_the_wrong_type_is_one_line_and_nothing_is_written(argv, message, tmp_path, capsys):
    assert cli.main(["train", *argv, "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == f"unigen: error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_every_built_in_recipe_builds_the_phases_of_its_declaration():
    """The algorithm a recipe builds runs the phases its declaration declares, each on the same
    parameter groups (so ``algebra show vem`` prints what ``train vem`` trains)."""
    assert recipes.names() == BUILT_IN  # no entry points installed in the test environment
    shown = {"vem": "variational-em"}
    for name in BUILT_IN:
        found = recipes.recipe(name)
        declared = recipes.declaration_of(found)
        assert declared is DECLARATIONS.get(shown.get(name, name))
        if declared is None:  # pm has no declaration yet
            continue
        config = {"algorithm": name, **found.read({}), "data_dim": 4, "image_shape": None, "likelihood": "bernoulli",
                  "code_values": 3}
        _, algorithm = found.build(config)
        assert [(p.name, p.groups) for p in algorithm.phases] == [(p.name, p.groups) for p in declared.phases], name


# The built-in recipes whose phases are written by hand, each with the heading of the paragraph
# of its algorithm module that says why (the test checks the module states it): only these may
# be hand-written; every other recipe, with every value of the options that change its phases,
# must be compiled from its declaration.
HAND_WRITTEN = {"pm": ("unigen.algorithms.pm", "Why the objective is not declared in")}
VARIANTS = {
    "vem": [{"baseline": "none"}, {"baseline": "mean"}, {"baseline": "nvil"}, {"estimator": "exact", "layers": (3,)},
            {"estimator": "rebar"}, {"estimator": "vimco"}],
    "gan": [{"form": "variational-em"}, {"generator_loss": "minimax"}],
}


def _built(name, **options):
    found = recipes.recipe(name)
    config = {"algorithm": name, **found.read({}), "data_dim": 4, "image_shape": None,
              "likelihood": "bernoulli", "code_values": 3, "latent_dim": 2, **options}
    return found.build(config)[1]


def _compiled_from_its_declaration(algorithm):
    from unigen.algebra import Declaration

    declared = algorithm.objective
    return isinstance(declared, Declaration) and all(
        getattr(p.loss, "objective", None) is declared.phase(p.name).objective
        for p in algorithm.phases)


def test_every_phase_is_compiled_from_its_declaration():
    """Over the registry: each phase's loss was compiled (by unigen.algebra.compile, through
    unigen.algebra.algorithm) from the objective the algorithm's declaration states for it (the
    compiled objective may set what the declaration leaves symbolic, e.g. the IWAE's k, or
    add what it states in words, e.g. wake-sleep's learned prior), for every recipe but those of
    HAND_WRITTEN, whose modules say why."""
    import importlib

    compiled = set()
    for name in BUILT_IN:
        variants = [{}] + [o for o in VARIANTS.get(name, []) if set(o) <= set(recipes.recipe(name).read({}))]
        assert len(variants) == 1 + len(VARIANTS.get(name, [])), name  # every variant is an option
        results = [_compiled_from_its_declaration(_built(name, **options)) for options in variants]
        if all(results):
            compiled.add(name)
        else:
            assert not any(results), (name, variants, results)  # all or none of a recipe's forms
    assert compiled == set(BUILT_IN) - set(HAND_WRITTEN)
    for name, (module_name, heading) in HAND_WRITTEN.items():
        assert heading in importlib.import_module(module_name).__doc__, name


def test_train_help_lists_the_recipes_and_a_recipe_help_its_own_options(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out
    for name in [*BUILT_IN, "toy"]:
        assert f"\n  {name} " in listed, name
    assert "a Gaussian mean by maximum likelihood (a user's recipe)" in listed
    for name, own, foreign in (("gan", "--generator-loss", "--layers"), ("vem", "--baseline", "--pack"),
                               ("toy", "--variance", "--hidden")):
        with pytest.raises(SystemExit):
            cli.main(["train", name, "--help"])
        text = capsys.readouterr().out
        assert own in text and foreign not in text and "--batch-size" in text, name


def test_algebra_show_prints_a_users_declaration_by_recipe_name_or_module_attr(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    for name in ("toy", "toy_recipe:DECLARATION", "toy_recipe:RECIPE"):
        assert cli.main(["algebra", "show", name]) == 0
        assert capsys.readouterr().out == TOY_SHOWN, name
    assert cli.main(["algebra", "show", "vem"]) == 0  # a recipe's declaration, under its declared name
    by_recipe = capsys.readouterr().out
    assert cli.main(["algebra", "show", "variational-em"]) == 0
    assert capsys.readouterr().out == by_recipe


@pytest.mark.parametrize("estimator", ["score", "exact", "muprop", "arm", "disarm", "rebar", "relax", "vimco"])
def test_algebra_show_vem_with_an_estimator_prints_what_that_run_trains(estimator, capsys):
    """``algebra show vem --estimator E`` prints the objective of the algorithm ``train vem
    --estimator E`` builds; REBAR and RELAX differentiate the body, so their E-step keeps log q_φ
    (no sg), the score-function family holds it constant, VIMCO's steps are on the K-sample bound."""
    found = recipes.recipe("vem")
    config = {"algorithm": "vem", **found.read({"estimator": estimator, "layers": "3"}), "data_dim": 4,
              "image_shape": None, "likelihood": "bernoulli"}
    _, algorithm = found.build(config)
    assert cli.main(["algebra", "show", "vem", "--estimator", estimator]) == 0
    shown = capsys.readouterr().out
    assert shown == str(algorithm.objective) + "\n"
    e_step = next((line for line in shown.splitlines() if "e_step" in line), "")
    assert ("sg[log q_φ(z|x)]" in e_step) == (estimator in ("score", "muprop", "arm", "disarm"))
    assert ("(1/5) Σ_{i=1}^{5}" in shown) == (estimator == "vimco")
    assert (e_step == "") == (estimator == "exact") and ("q_*(z|x)" in shown) == (estimator == "exact")


def test_algebra_show_vem_options_are_read_as_train_reads_them(capsys):
    assert cli.main(["algebra", "show", "vem", "--estimator=vimco", "--k", "3", "--latex"]) == 0
    assert "\\frac{1}{3} \\sum_{i=1}^{3}" in capsys.readouterr().out
    assert cli.main(["algebra", "show", "vem", "--baseline", "mean"]) == 0  # the score E-step's declaration
    assert "sg[log q_φ(z|x)]" in capsys.readouterr().out
    for argv, message in [
        (["vae", "--estimator", "rebar"], "--estimator: expected only with vem, got rebar for vae"),
        (["variational-em", "--estimator", "rebar"], "--estimator: expected recipe options only after a recipe"),
        (["vem", "--k", "3"], "--k: only --estimator vimco draws several samples inside the bound"),
        (["vem", "--estimator", "rebar", "--baseline", "mean"], "--baseline: expected none with --estimator rebar"),
        (["vae", "--latent-dim", "3"], "--latent-dim: expected no options for vae, whose declaration does not"),
    ]:
        assert cli.main(["algebra", "show", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    with pytest.raises(SystemExit) as error:
        cli.main(["algebra", "show", "vem", "--estimator", "bogus"])
    assert error.value.code == 2
    assert "--estimator: expected one of 'score', 'exact'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # options after show only: elsewhere an unknown one is a usage error
        cli.main(["algebra", "table", "--estimator", "rebar"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing"], "algorithm: the entry point missing = no_such_module_for_unigen:RECIPE (group "
                               "unigen.algorithms) does not import (ModuleNotFoundError: No module named "
                               "'no_such_module_for_unigen')"),
        (["train", "not-a-recipe"], "algorithm: the entry point not-a-recipe = toy_recipe:DECLARATION (group "
                                    "unigen.algorithms) names a Declaration; expected a unigen.recipes.Recipe"),
        (["train", "misnamed"], "algorithm: the entry point misnamed = toy_recipe:MISNAMED (group unigen.algorithms) "
                                "names the recipe 'other'; expected the name 'misnamed'"),
        (["algebra", "show", "no_such_module_for_unigen:THING"],
         "algorithm: no_such_module_for_unigen:THING does not import (ModuleNotFoundError"),
        (["algebra", "show", "toy_recipe:NOTHING"], "algorithm: toy_recipe:NOTHING does not import (AttributeError"),
        (["algebra", "show", "toy_recipe:build"],
         "algorithm: toy_recipe:build names a function; expected a Declaration or a Recipe"),
        (["algebra", "show", "pm"], "algorithm: the recipe pm has no declaration yet"),
        (["algebra", "show", "nothing"], "algorithm: got 'nothing', expected one of ['"),
    ],
)
def test_broken_user_recipes_and_declarations_are_refused_in_one_line(argv, message, capsys, monkeypatch):
    if argv[-1] == "pm" and "pm" in DECLARATIONS:
        pytest.skip("pm has a declaration now")
    monkeypatch.syspath_prepend(str(FIXTURES))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"unigen: error: {message}") and err.count("\n") == 1, err


def test_an_entry_point_that_takes_a_taken_name_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """clash-recipe's ``vae`` takes a built-in's name and its ``toy`` the name toy-recipe's ``toy``
    has: asking for either name is refused naming the entry point(s), the name and the package(s),
    nothing is written, and every other name works as before."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.syspath_prepend(str(CLASHING))
    assert recipes.names().count("vae") == 1 and recipes.names().count("toy") == 1
    out = tmp_path / "run"
    assert cli.main(["train", "vae", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == ("unigen: error: algorithm: the entry point vae = toy_recipe:RECIPE (group unigen.algorithms) of "
                   "the package clash-recipe 0.0 takes the name 'vae' of a built-in recipe; expected a name no "
                   "built-in recipe has (rename the entry point, or uninstall that package)\n")
    assert cli.main(["train", "toy", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("unigen: error: algorithm: the entry points toy = "), err
    assert "toy = toy_recipe:RECIPE of the package toy-recipe 0.0" in err
    assert "toy = toy_recipe:MISNAMED of the package clash-recipe 0.0" in err
    assert "take the same name 'toy'; expected one entry point per name" in err
    assert not out.exists()
    with pytest.raises(ConfigError, match="takes the name 'vae' of a built-in recipe"):
        recipes.recipe("vae")
    assert recipes.recipe("gan") is recipes.BUILT_IN[BUILT_IN.index("gan")]
    assert cli.main(["algebra", "show", "gan"]) == 0 and "discriminator" in capsys.readouterr().out


def test_the_entry_points_are_scanned_once_per_path_and_a_clash_is_still_refused(monkeypatch):
    """``unigen train --help`` asks for every recipe: the installed packages' metadata is read once
    per ``sys.path``, not once per question; putting a package on the path scans again, and a
    name the new package's entry points clash on is refused on every asking, cached or not."""
    import importlib.metadata

    scans = []
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: scans.append(kw) or real(**kw))
    monkeypatch.syspath_prepend(str(FIXTURES))
    for _ in range(3):
        assert recipes.names() == BUILT_IN + ["misnamed", "missing", "not-a-recipe", "toy"]
        assert recipes.recipe("toy").name == "toy" and recipes.recipe("vae") is recipes.BUILT_IN[0]
    assert scans == [{"group": recipes.GROUP}]
    monkeypatch.syspath_prepend(str(CLASHING))
    for _ in range(2):
        with pytest.raises(ConfigError, match="takes the name 'vae' of a built-in recipe"):
            recipes.recipe("vae")
        with pytest.raises(ConfigError, match="take the same name 'toy'"):
            recipes.recipe("toy")
    assert len(scans) == 2


def test_a_users_recipe_by_entry_point_trains_to_its_closed_form_trajectory(tmp_path, monkeypatch, capsys):
    out = tmp_path / "toy"
    steps, lr, variance = 20, 0.5, 2.0
    monkeypatch.syspath_prepend(str(FIXTURES))  # "installs" toy-recipe: its dist-info is found on the path
    argv = ["train", "toy", "--variance", str(variance), "--optimizer", "sgd", "--lr", str(lr), "--batch-size", "1498",
            "--steps", str(steps), "--steps-per-call", "10", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "summary.json").read_text())

    # The oracle: full batches of the 1,498 statically binarized training digits, SGD from 0.
    x = data.load("digits", "train", binarize="static").x.astype(np.float64)
    xbar = x.mean(0)
    mean = lambda t: xbar * (1 - (1 - lr / variance) ** t)  # noqa: E731
    config, _, params = cli._load_run(out)
    assert config["variance"] == variance and config["algorithm"] == "toy"
    np.testing.assert_allclose(np.asarray(params["theta"]["mean"]), mean(steps), rtol=1e-5, atol=1e-6)
    # The last logged loss is at the parameters before the last step: 0.5 E|x - m|^2 / v.
    spread = ((x - xbar) ** 2).sum(1).mean()
    expected = 0.5 * (spread + ((xbar - mean(steps - 1)) ** 2).sum()) / variance
    assert summary["losses"] == {"likelihood": pytest.approx(expected, rel=1e-5)}
    assert summary["train_mean_gap"] == pytest.approx(np.abs(xbar - mean(steps)).max(), rel=1e-3)
    assert summary["steps"] == steps and not (out / "samples.png").exists()

    # The option is part of the run: resuming with another value is refused before anything runs.
    argv = ["train", "toy", "--variance", "3", "--optimizer", "sgd", "--lr", str(lr), "--batch-size", "1498",
            "--steps", "30", "--steps-per-call", "10", "--out", str(out), "--resume"]
    assert cli.main(argv) == 2
    assert "variance (run: 2.0, now: 3.0)" in capsys.readouterr().err
