"""The ``unigen`` command: ``unigen train|eval|sample|algebra|bench``::

    unigen train NAME [--data digits] [--steps N | --epochs E] [--batch-size 100] [--lr 1e-3] [--seed 0]
                 [--out DIR] [--resume] ... [the recipe's own options]
    unigen train --help                  the recipes: built in (vae, gan, ...) and by entry point
    unigen train NAME --help             the common options and NAME's own
    unigen eval DIR [--k 1000] [--split test]
    unigen sample DIR --n 64 --out FILE.png
    unigen algebra verify lemma1|lemma2|elbo-decomposition|wake-sleep [--seed S] [--json]
    unigen algebra show ALGORITHM|RECIPE|MODULE:ATTR [--latex] [a recipe's options, e.g. vem --estimator rebar]
    unigen algebra table [figure5|table1] [--columns A,B,...] [--latex]
    unigen algebra direction ALGORITHM [--json]
    unigen bench variance --problem NAME [--estimators a,b,...] [--json] [--out DIR] ...
    unigen bench modes --data ring8|grid25 [--algorithms ROW,...] [--seeds N] [--steps S] [--json] [--out DIR]

The command is generic over the recipes of :mod:`unigen.recipes`: ``unigen train NAME`` reads
NAME's options, model, summary and samples from its recipe, and names no algorithm itself.

Bad input (an unknown data set or recipe, an option of the wrong type, a bad size, bad data, a
checkpoint that does not match) is reported in one line without a traceback, with exit status 2;
a run whose loss turns NaN/Inf exits with status 1 and keeps its last good checkpoint; Ctrl-C
(SIGTERM) saves a checkpoint and exits with status 130 (143) (continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from unigen import recipes
from unigen.errors import (CheckpointError, ConfigError, RunInterrupted, StorageError, TrainingDiverged, UnigenError,
                           brief)

COMMON_SAME_ON_RESUME = ("algorithm", "data", "data_dir", "binarize", "train_fraction", "batch_size", "optimizer", "lr",
                         "b1", "seed", "steps_per_call", "precision")
"""The common settings a resumed run must share with the run it continues; with them, every
option of the recipe whose :attr:`~unigen.recipes.Option.same_on_resume` is set."""
COMMON_RESUME_DEFAULTS = {"precision": "float32", "train_fraction": 1.0}
"""For common settings added after runs were made, the value those runs had."""
MAX_SEED = 2**63 - 1
"""The largest seed: JAX's ``random.key`` takes a signed 64-bit integer, the batches a non-negative one."""
RUN_OPTIONS = ("command", "resume", "no_progress", "coordinator", "num_processes", "process_id", "heartbeat_timeout")
"""Options of the invocation, not of the run: not stored in ``config.json``."""


_ARGPARSE_TYPES = {"int": "an integer", "float": "a number"}
_ARGPARSE_MESSAGES = (  # argparse's usage errors, said as the argument, what was expected and what came
    (r"argument (\S+): invalid (\w+) value: (.*)", lambda m: f"{m[1]}: expected {_ARGPARSE_TYPES.get(m[2], m[2])}, got {m[3]}"),
    (r"argument (\S+): invalid choice: (.*) \(choose from (.*)\)", lambda m: f"{m[1]}: expected one of {m[3]}, got {m[2]}"),
    (r"argument (\S+): expected one argument", lambda m: f"{m[1]}: expected a value after it, got none"),
    (r"argument (\S+): not allowed with argument (\S+)", lambda m: f"{m[1]}: expected without {m[2]}, got both"),
    (r"the following arguments are required: (.*)", lambda m: f"{m[1]}: expected a value, got none (required)"),
    (r"unrecognized arguments: (.*)", lambda m: f"{m[1]}: expected an option of this command, got an unknown one"),
)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (no usage block) that points to ``--help``."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        import re

        for pattern, said in _ARGPARSE_MESSAGES:
            found = re.fullmatch(pattern, message)
            if found:
                message = said(found)
                break
        self.exit(2, f"unigen: error: {message} (see {self.prog} --help)\n")


def _add_common_train_options(train: argparse.ArgumentParser) -> None:
    train.add_argument("--data", default="digits", help="digits | ring8 | grid25 | tfds:NAME | idx:DIR | pm-sources:K "
                                                        "(K binary sources, mixed; for pm) (default digits)")
    train.add_argument("--data-dir", help="TFDS data directory for tfds:NAME (default $TFDS_DATA_DIR)")
    train.add_argument("--binarize", choices=("auto", "none", "static", "dynamic"), default="auto",
                       help="binarize image data: auto (default) is static thresholding for a recipe with a "
                            "likelihood, so that the Bernoulli likelihood and IS-NLL are proper; none keeps grey levels")
    train.add_argument("--train-fraction", type=float, default=1.0,
                       help="train on the first F of the training split, 0 < F <= 1 (default 1; the test split "
                            "stays whole)")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="training steps (default 3000)")
    length.add_argument("--epochs", type=float, help="training epochs (instead of --steps)")
    train.add_argument("--batch-size", type=int, default=100)
    train.add_argument("--optimizer", default="adam", help="sgd | adagrad | adam (default adam)")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--b1", type=float, help="adam: the decay rate beta1 of the first moment (default 0.9; "
                                                 "0.5 is usual for GANs)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps-per-call", type=int, default=10, help="steps fused in one compiled call")
    train.add_argument("--checkpoint-every", type=int, default=1000)
    train.add_argument("--out", help="output directory (default runs/NAME-TIME)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    train.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                       help="matrix products: float32 (default) or bfloat16 operands with float32 accumulation, "
                            "for GPUs and TPUs (XLA on CPU computes float32 either way)")
    hosts = train.add_argument_group(
        "several hosts", "one process per host, all started with the same --coordinator and --num-processes; "
                         "each option may instead come from its environment variable")
    hosts.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address and a free port, or auto (TPU pod slices, Slurm, Open MPI) "
                            "(env UNIGEN_COORDINATOR)")
    hosts.add_argument("--num-processes", metavar="N", help="how many processes (env UNIGEN_NUM_PROCESSES)")
    hosts.add_argument("--process-id", metavar="I", help="this process, 0 .. N-1; process 0 writes the run "
                                                          "(env UNIGEN_PROCESS_ID)")
    hosts.add_argument("--heartbeat-timeout", metavar="SECONDS",
                       help="a process silent this long ends the others with an error (default 60; "
                            "env UNIGEN_HEARTBEAT_TIMEOUT)")


def _recipe_list() -> str:
    lines = ["recipes (unigen train NAME --help shows NAME's options):"]
    for name in recipes.names():
        try:
            text = recipes.recipe(name).help
        except ConfigError as error:
            text = str(error)
        lines.append(f"  {name:<12} {text}")
    lines.append(f"A user's recipe is a unigen.recipes.Recipe named by an entry point of the group {recipes.GROUP}.")
    return "\n".join(lines)


def train_parser(found: recipes.Recipe | None = None) -> argparse.ArgumentParser:
    """The parser of ``unigen train NAME``: the common options and the recipe's own; without a
    recipe, the parser of ``unigen train --help``, which lists the recipes.

    Raises:
      ConfigError: a recipe option that has the name of a common one.
    """
    parser = _Parser(
        prog="unigen train" + (f" {found.name}" if found else ""), allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=found.help if found else "Train a model; writes config, metrics, summary, samples, checkpoints.",
        epilog=None if found else _recipe_list())
    if found is None:
        parser.add_argument("algorithm", metavar="NAME", help="a recipe (listed below)")
    _add_common_train_options(parser)
    if found is not None:
        _add_recipe_options(parser, found)
    return parser


def _add_recipe_options(parser: argparse.ArgumentParser, found: recipes.Recipe) -> None:
    """``found``'s own options, as a group of ``parser``; one that takes a name of ``parser``'s is refused."""
    own = parser.add_argument_group(f"options of {found.name}")
    for option in found.options:
        if option.name in RUN_OPTIONS or any(option.flag in action.option_strings for action in parser._actions):
            raise ConfigError(f"options of recipe {found.name}: got {option.flag}, which every recipe has; "
                              "expected a new name")
        choices = None if option.choices is None else [str(choice) for choice in option.choices]
        own.add_argument(option.flag, dest=option.name, choices=choices, help=option.help)


def parse_train(argv: Sequence[str]) -> dict[str, Any]:
    """The options of ``unigen train NAME ...`` (``argv`` after ``train``), with ``"algorithm": NAME``.

    Raises:
      ConfigError: an unknown recipe, or an option only other recipes have (one line naming them).
      SystemExit: ``--help``, or a usage error (argparse's).
    """
    argv = list(argv)
    if not argv or argv[0].startswith("-"):
        train_parser().parse_args(argv)  # --help lists the recipes; anything else lacks NAME
        raise ConfigError("algorithm: expected a recipe name first, unigen train NAME ...")  # pragma: no cover
    found = recipes.recipe(argv[0])
    parser = train_parser(found)
    args, rest = parser.parse_known_args(argv[1:])
    if rest:
        _refuse_foreign(found, rest, parser)
    return {"command": "train", "algorithm": found.name, **vars(args)}


def _refuse_foreign(found: recipes.Recipe, rest: list[str], parser: argparse.ArgumentParser) -> None:
    """An option of other built-in recipes is refused naming them; anything else is a usage error."""
    for index, token in enumerate(rest):
        flag, equals, value = token.partition("=")
        owners = [r.name for r in recipes.BUILT_IN if any(o.flag == flag for o in r.options)]
        if owners:
            if not equals:
                value = rest[index + 1] if index + 1 < len(rest) else ""
            raise ConfigError(f"{flag}: expected only with {', '.join(owners)}, got {value} for {found.name}")
    parser.error(f"unrecognized arguments: {' '.join(rest)}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="unigen", description="Deep generative models in the unified view, in JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,sample,algebra,bench}")

    train = commands.add_parser("train", add_help=False,
                                help="train a recipe (unigen train --help lists them); writes config, metrics, "
                                     "summary, samples, checkpoints")
    train.add_argument("arguments", nargs=argparse.REMAINDER, help="NAME and its options (see unigen train --help)")

    evaluate = commands.add_parser("eval", help="print the test metrics of a trained run (IS-NLL and ELBO, ...) as JSON")
    evaluate.add_argument("run", help="a directory written by unigen train")
    evaluate.add_argument("--k", type=int, default=1000, help="importance samples (default 1000)")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--data-dir", help="override the run's TFDS data directory")
    evaluate.add_argument("--seed", type=int, default=0)

    sample = commands.add_parser("sample", help="draw samples from a trained run into a PNG")
    sample.add_argument("run", help="a directory written by unigen train")
    sample.add_argument("--n", type=int, default=64)
    sample.add_argument("--out", required=True, help="the PNG file to write")
    sample.add_argument("--seed", type=int, default=0)
    algebra = commands.add_parser(
        "algebra", help="the objective algebra: print objectives, Figure 5, KL directions; check identities")
    algebra_commands = algebra.add_subparsers(
        dest="algebra_command", required=True, metavar="{verify,show,table,direction}")
    show = algebra_commands.add_parser("show", help="print an algorithm's declared objective(s) as the lecture writes them")
    show.add_argument("algorithm", help="a declared algorithm (vae, gan-minimax, ...), a recipe (vem, or a user's by "
                                        "entry point) or MODULE:ATTR naming a Declaration or a Recipe "
                                        "(a bad name lists them)")
    show.add_argument("--latex", action="store_true", help="LaTeX instead of Unicode")
    show.epilog = ("After a recipe, its own options (as unigen train NAME takes them) choose the variant a run "
                   "compiles, e.g. unigen algebra show vem --estimator rebar|relax|vimco|exact [--k K].")
    table = algebra_commands.add_parser(
        "table", help="the lecture's Figure 5 (GANs vs VAEs) or the paper's Table 1 (ADA | GANs | VAEs) from the "
                      "declarations")
    table.add_argument("which", nargs="?", choices=("figure5", "table1"), default="figure5",
                       help="figure5 (default) or table1")
    table.add_argument("--columns", help="comma-separated algorithms, e.g. ada,gan,aae,vae-gan (default: the "
                                         "figure's own)")
    table.add_argument("--latex", action="store_true", help="a LaTeX tabular instead of Markdown")
    direction = algebra_commands.add_parser(
        "direction", help="which side of its KL an algorithm's model sits on: mode-seeking or mode-covering")
    direction.add_argument("algorithm", help="an algorithm with a Figure-5 KL: gan, infogan, vae, ...")
    direction.add_argument("--json", action="store_true", help="print one JSON object")
    verify = algebra_commands.add_parser(
        "verify", help="check an identity exactly (float64, enumerated finite spaces), values and gradients")
    verify.add_argument("identity", help="elbo-decomposition | lemma1 | lemma2 | wake-sleep")
    verify.add_argument("--seed", type=int, default=0, help="seed of the random parameters")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    _add_bench_parser(commands)
    return parser


def parse_command(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments of every command but ``train`` (:func:`parse_train`); ``algebra show NAME``
    keeps what follows NAME that is not its own in ``recipe_options``, for NAME's recipe.

    Raises:
      SystemExit: ``--help``, or a usage error (argparse's).
    """
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not (args.command == "algebra" and args.algebra_command == "show"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.recipe_options = rest
    return args


def _algebra(args: argparse.Namespace) -> int:
    if args.algebra_command == "show":
        print(show_algorithm(args.algorithm, latex=args.latex, options=getattr(args, "recipe_options", ())))
        return 0
    if args.algebra_command == "table":
        from unigen.algebra.table import table
        from unigen.algebra.table1 import table1

        columns = None if args.columns is None else [c.strip() for c in args.columns.split(",") if c.strip()]
        print((table1 if args.which == "table1" else table)(columns, latex=args.latex))
        return 0
    if args.algebra_command == "direction":
        record = algorithm_direction(args.algorithm)
        if args.json:
            _print_json(record)
        else:
            from unigen.algebra.symbols import symbol

            print(f"{record['algorithm']}: min_{symbol(record['wrt'])} {record['kl']}")
            print(f"  the trained model is the {record['side']} argument of the KL: {record['behaviour']}")
            print(f"  {record['explanation']}")
        return 0
    return _verify(args)


def show_algorithm(name: str, *, latex: bool = False, options: Sequence[str] = ()) -> str:
    """An algorithm's declaration as text (``str(declaration)``): title, section,
    ``max_{groups} objective`` per phase, and its Figure-5 fields when it has them. ``name`` is a
    declared algorithm, a recipe or ``MODULE:ATTR`` (:func:`unigen.recipes.find_declaration`);
    ``options``, command-line words such as ``["--estimator", "rebar"]``, are the recipe's own
    options and choose the variant a run with them compiles."""
    found = recipes.find_declaration(name, _recipe_options(name, options) if options else None)
    return found.latex() if latex else str(found)


def _recipe_options(name: str, words: Sequence[str]) -> dict[str, Any]:
    """The recipe options among ``words`` (``--estimator rebar``), by config key."""
    known = recipes.recipe(name) if name in recipes.names() else None
    if known is None:
        raise ConfigError(f"{words[0].partition('=')[0]}: expected recipe options only after a recipe "
                          f"({', '.join(recipes.names())}), got them after {name!r}")
    parser = _Parser(prog=f"unigen algebra show {known.name}", allow_abbrev=False)
    _add_recipe_options(parser, known)
    args, rest = parser.parse_known_args(list(words))
    if rest:
        _refuse_foreign(known, rest, parser)
    return {key: value for key, value in vars(args).items() if value is not None}


def algorithm_direction(name: str) -> dict[str, Any]:
    """The side of the algorithm's Figure-5 KL its trained group sits on, as a JSON-able dict."""
    from unigen.algebra.direction import direction
    from unigen.algorithms.declarations import DECLARATIONS

    found = recipes.find_declaration(name)
    if found.figure5 is None or found.figure5.kl is None:
        covered = sorted(n for n, d in DECLARATIONS.items() if d.figure5 and d.figure5.kl)
        raise ConfigError(f"algorithm: {name!r} has no Figure-5 KL; expected one of {covered}")
    results = [direction(kl, found.figure5.wrt) for kl in found.figure5.kls]
    joined = "; ".join  # an algorithm minimizing several KLs (vae-gan) gets each, in order
    return {
        "algorithm": found.name,
        "kl": joined(str(kl) for kl in found.figure5.kls),
        "wrt": found.figure5.wrt,
        "side": joined(r.side for r in results),
        "behaviour": joined(r.behaviour for r in results),
        "explanation": joined(r.explanation for r in results),
    }


def _verify(args: argparse.Namespace) -> int:
    from unigen.algebra.verify import verify

    result = verify(args.identity, seed=args.seed)
    record = {
        "identity": result.identity,
        "holds": bool(result.holds),
        "sense": result.sense,
        "max_abs_error_value": float(result.max_abs_error_value),
        "max_abs_error_grad": float(result.max_abs_error_grad),
        "space": dict(result.space),
    }
    if args.json:
        _print_json(record)
    else:
        verdict = "holds" if record["holds"] else "DOES NOT HOLD"
        print(f"{record['identity']}: {verdict} on the space {record['space']}")
        print(f"  in the sense: {record['sense']}")
        print(f"  max |error|: values {record['max_abs_error_value']:.3g}, gradients {record['max_abs_error_grad']:.3g}")
    return 0 if record["holds"] else 1


# --- bench variance (issue [5]) ---------------------------------------------------------------


BENCH_PROBLEMS = ("gaussian-square", "gaussian-exp", "gaussian-cos", "gaussian-sum-squares", "bernoulli", "categorical",
                  "categorical-vae", "vae", "sbn")
BENCH_ESTIMATORS = ("score", "score-mean-baseline", "score-optimal-baseline", "score-learned-baseline",
                    "score-control-variate", "pathwise", "concrete", "leave-one-out", "muprop", "vimco", "rebar",
                    "relax", "arm", "disarm", "straight-through")  # help text only


def _add_bench_parser(commands: Any) -> None:
    # The names are spelled out (not imported) so that building the parser does not import jax;
    # tests/test_estimators_cli.py checks they equal unigen.estimators' registries.
    PROBLEMS, ESTIMATORS = BENCH_PROBLEMS, BENCH_ESTIMATORS
    bench = commands.add_parser("bench", help="benchmarks: gradient-estimator variance, mode coverage")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="{variance,modes}")
    variance = bench_commands.add_parser(
        "variance", help="mean, variance, bias, time and efficiency of gradient estimators on a problem")
    variance.add_argument("--problem", required=True, help=" | ".join(PROBLEMS))
    variance.add_argument("--mu", type=float, help="mean of the Gaussian problems (default 1; 0 for sum-squares); "
                                                   "the logit for bernoulli (default 0); the logit scale for categorical")
    variance.add_argument("--sigma", type=float, help="standard deviation of the Gaussian problems (default 1)")
    variance.add_argument("--k", help="k of f, or comma-separated values to sweep (default 1; 0.45 for bernoulli)")
    variance.add_argument("--dim", type=int, help="D for gaussian-sum-squares (default 10) and bernoulli (default 1); "
                                                  "K for categorical (default 4); hidden units H <= 12 for sbn "
                                                  "(default 8); categorical latents n for categorical-vae (default "
                                                  "3, of 4 categories each)")
    variance.add_argument("--estimators", help=f"comma-separated, from {','.join(ESTIMATORS)} "
                                               "(default: every one that applies)")
    variance.add_argument("--samples", type=int, default=100, help="draws per estimate N (default 100)")
    variance.add_argument("--replicas", type=int, default=1000, help="independent estimates R (default 1000)")
    variance.add_argument("--repeats", type=int, default=3, help="timed calls per estimator (default 3)")
    variance.add_argument("--seed", type=int, default=0)
    variance.add_argument("--checkpoint", help="vae: a run directory from `unigen train vae` (default: initial "
                                               "parameters of a 64-16-2 tanh VAE)")
    variance.add_argument("--json", action="store_true", help="print one JSON object")
    variance.add_argument("--out", help="directory for report.json and variance.png")
    modes = bench_commands.add_parser(
        "modes", help="mode coverage (VEEGAN/PacGAN Table 1) of GANs, InfoGAN and a VAE on ring8/grid25")
    modes.add_argument("--data", required=True, help="ring8 | grid25")
    from unigen.bench_modes import MODE_ALGORITHMS  # NumPy only, no JAX

    rows = ",".join(MODE_ALGORITHMS)
    modes.add_argument("--algorithms", default=rows, help=f"comma-separated, from {rows} (default: all)")
    modes.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per algorithm (default 5)")
    modes.add_argument("--steps", type=int, default=40000,
                       help="training steps per run (default 40000, the benchmark's budget: about a minute per "
                            "GAN run on 2 CPU cores)")
    modes.add_argument("--json", action="store_true", help="print one JSON object")
    modes.add_argument("--out", help="directory for results.json and samples.png")
    modes.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def _bench(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_output(args.out, "--out", directory=True)
    if args.bench_command == "modes":
        return _bench_modes(args)
    import jax

    from unigen.estimators import report as variance

    try:
        ks = [None] if args.k is None else [float(part) for part in args.k.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--k: expected a number or comma-separated numbers, got {args.k!r}") from None
    estimators = None if args.estimators is None else [e.strip() for e in args.estimators.split(",") if e.strip()]
    if args.replicas > 0 and args.samples > 0:  # (smaller ones are refused by sweep_k)
        from unigen.training import memory

        dim = "" if args.dim is None else f", --dim {args.dim}"
        memory.check(args.replicas * args.samples * 4 * max(1, args.dim or 1), "the draws of one estimate per "
                     "replica", f"--replicas {args.replicas}, --samples {args.samples}{dim}")
    options: dict[str, Any] = {"mu": args.mu, "sigma": args.sigma, "dim": args.dim}
    if args.checkpoint is not None:
        if args.problem != "vae":
            raise ConfigError(f"--checkpoint: expected only with --problem vae, got --problem {args.problem}")
        config, model, params = _load_run(args.checkpoint)
        if config.get("algorithm") != args.problem:  # the vae problem reads a run of the vae recipe
            raise ConfigError(
                f"--checkpoint: expected a run of unigen train {args.problem}, got a {config.get('algorithm')!r} "
                f"run in {args.checkpoint}"
            )
        options.update(model=model, params=params, x=_dataset(config, "test").x[0])
    report = variance.sweep_k(args.problem, ks, estimators, args.samples, args.replicas,
                              jax.random.key(args.seed), repeats=args.repeats, **options)
    record = report.to_json()
    if args.out:
        out = _output_directory(args.out)
        _write_json(out / "report.json", record)
        variance.save_variance_plot(report, out / "variance.png")
    _print_json(record) if args.json else print(variance.format_table(report))
    return 0


def _bench_modes(args: argparse.Namespace) -> int:
    from unigen import bench_modes

    record = bench_modes.run_modes(args.data, args.algorithms.split(","), args.seeds, args.steps,
                                   keep_samples=bool(args.out), progress=False if args.no_progress else None)
    samples = record.pop("samples", None)
    if args.out:
        out = _output_directory(args.out)
        _write_json(out / "results.json", record)
        bench_modes.save_panels([{**record, "samples": samples}], out / "samples.png")
    _print_json(record) if args.json else print(bench_modes.format_table(record))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None if argv[:1] == ["train"] else parse_command(argv)
    try:
        import jax  # noqa: F401 - the slow import first: a Ctrl-C during it is taken right after
        _READY.append(True)
        if _OWN_PROCESS:  # the command's own process (run): what the imports made lives until it ends;
            gc.freeze()  # the collector's full passes skip it (0.2 of 0.45 CPU s of collecting, one step)
        # orbax logs a failed write (a full disk) from its threads with tracebacks; the command
        # reports it in one line instead
        logging.getLogger("absl").setLevel(logging.CRITICAL)
        interrupted_before_training()
        if args is None:
            _print_json(train(parse_train(argv[1:])))
        elif args.command == "algebra":
            return _algebra(args)
        elif args.command == "bench":
            return _bench(args)
        elif args.command == "eval":
            _print_json(evaluate(args.run, k=args.k, split=args.split, data_dir=args.data_dir, seed=args.seed))
        else:
            path = sample(args.run, n=args.n, out=args.out, seed=args.seed)
            _print_json({"samples": str(path)})
    except TrainingDiverged as error:
        print(f"unigen: training diverged: {error}", file=sys.stderr)
        return 1
    except UnigenError as error:
        print(f"unigen: error: {error}", file=sys.stderr)
        return 2
    except RunInterrupted as error:  # in training: fit says what it saved
        print(f"unigen: interrupted: {error} (continue with --resume)", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("unigen: interrupted by SIGINT (rerun a train command with --resume to continue)", file=sys.stderr)
        return 130
    return 0


def run(noted: Sequence[int] = ()) -> None:
    """The command (:mod:`unigen.__main__` calls it): ``sys.exit(main())``, but an error exit skips
    finalization. ``noted``: the signals received while the command was importing itself; the
    first one ends it at once, in one line (exit 130 for SIGINT, 143 for SIGTERM).

    After a failed checkpoint read, tensorstore completes futures on the event loop orbax has
    already closed, and at interpreter shutdown each prints "RuntimeError: Event loop is closed"
    with a traceback: noise after a one-line error. On an error exit everything the command
    wrote is already closed, so the process ends at once after flushing its output.

    A successful exit is Python's own (atexit handlers, threads joined, files flushed and
    closed), with every object the command made moved out of the garbage collector's view
    (``gc.freeze``): the interpreter's last collections would otherwise go through the ~240,000
    objects that JAX and the libraries made, about a second of wall time on a loaded 2-core
    machine (``benchmarks/startup.py``). For the same reason :func:`main` freezes what importing
    JAX made, in the command's own process only.
    """
    _OWN_PROCESS.append(True)
    signal.signal(signal.SIGTERM, _interrupted)  # until fit takes SIGTERM at a step boundary
    signal.signal(signal.SIGINT, _interrupted)  # until fit takes SIGINT at a step boundary
    redeliver_lost_signals()  # a signal whose exception a garbage-collection callback swallowed
    try:
        if noted:  # (taken after the handlers above, so that none arriving in between is lost)
            _RECEIVED[:0] = noted
            interrupted_before_training()
        code = main()
    except RunInterrupted as error:  # SIGTERM outside main
        print(f"unigen: interrupted: {error}", file=sys.stderr)
        code = error.exit_status
    except KeyboardInterrupt:  # an interrupt outside main's handlers (while it prints, returns)
        print("unigen: interrupted by SIGINT", file=sys.stderr)
        code = 130
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # what a dying writer thread would still print
        os._exit(code)
    gc.freeze()  # the collector's last passes at shutdown would visit every object again
    sys.exit(code)


_RECEIVED: list[int] = []
"""SIGINTs and SIGTERMs received by :func:`run`'s handler (before training takes its own)."""
_OWN_PROCESS: list[bool] = []
"""Set by :func:`run`: the command has the process to itself (a program calling :func:`main` keeps
its garbage collector as it is)."""
_READY: list[bool] = []
"""Set once JAX is imported: until then a signal is only noted (raised inside an import, it would
be printed with a traceback, or dropped inside a garbage-collection callback) and taken after."""
_BEFORE_TRAINING = "SIGTERM before training started or after it ended; nothing more saved"


def redeliver_lost_signals() -> None:
    """Installs a ``sys.unraisablehook`` that sends a signal again when the exception its handler
    raised was lost: Python drops an exception raised inside a garbage-collection callback (JAX
    registers one) with "Exception ignored in ...", so a Ctrl-C or SIGTERM would be swallowed and
    the run would go on. The signal is sent again from a timer thread, so that its handler (this
    module's, or fit's, which stops at the next step boundary) runs in the main thread outside the
    callback; any other unraisable exception goes to the hook installed before."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        if isinstance(error, KeyboardInterrupt):  # RunInterrupted is one
            number = getattr(error, "signal_number", signal.SIGINT)
            threading.Timer(0.01, os.kill, (os.getpid(), number)).start()
            return
        previous(unraisable)

    sys.unraisablehook = hook


def _interrupted(number: int, frame: Any) -> None:
    _RECEIVED.append(number)
    if _READY:
        interrupted_before_training()


def interrupted_before_training() -> None:
    """Raises KeyboardInterrupt (for SIGINT) or RunInterrupted (SIGTERM, exit status 143) if
    :func:`run`'s handler noted a signal."""
    if _RECEIVED:
        raise KeyboardInterrupt if _RECEIVED[0] == signal.SIGINT else RunInterrupted(_RECEIVED[0], _BEFORE_TRAINING)


# --- output: JSON and files --------------------------------------------------------------------


def _print_json(value: Any) -> None:
    """Prints ``value`` as one line of valid JSON: a non-finite number is ``null`` (``NaN`` is not JSON)."""
    from unigen.training.rundir import finite_or_null

    print(json.dumps(finite_or_null(value), ensure_ascii=False, allow_nan=False))


def _write_json(path: Path, value: Any) -> None:
    from unigen.training.rundir import write_json

    write_json(path, value)


def check_output(path: str | Path, argument: str, *, directory: bool) -> Path:
    """``path`` as an output of the command, refused in one line before anything is computed:
    a file where a directory is expected (or the reverse), or a place that cannot be written.

    Raises:
      ConfigError: ``path`` is of the wrong kind, or lies under a file.
      StorageError: the nearest existing directory above ``path`` is not writable.
    """
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise ConfigError(f"{argument}: {path} is a file; expected a directory (new or existing)")
    if not directory and path.is_dir():
        raise ConfigError(f"{argument}: {path} is a directory; expected a file name")
    above = path.absolute() if directory else path.absolute().parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"{argument}: {above} is a file; expected a directory to hold {path}")
    if not os.access(above, os.W_OK | os.X_OK):
        why = os.strerror(errno.EROFS if os.statvfs(above).f_flag & os.ST_RDONLY else errno.EACCES)
        raise StorageError(f"{argument}: {above} cannot be written ({why}); expected a writable "
                           f"directory to hold {path}")
    return path


def _output_directory(path: str | Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError.of(path, error) from None
    return path


# --- train -------------------------------------------------------------------------------------


def _read_options(found: recipes.Recipe, options: dict[str, Any]) -> dict[str, Any]:
    """The run's config: the common options, checked, then the recipe's, read by their types."""
    config = {k: v for k, v in options.items() if k not in RUN_OPTIONS}
    config["algorithm"] = found.name
    for name in ("batch_size", "steps_per_call", "checkpoint_every", "steps"):
        if config.get(name) is not None and config[name] < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive integer, got {config[name]}")
    fraction = config.get("train_fraction", 1.0)
    if not (math.isfinite(fraction) and 0 < fraction <= 1):
        raise ConfigError(f"--train-fraction: expected a number in (0, 1], got {fraction}")
    if not 0 <= config["seed"] <= MAX_SEED:
        raise ConfigError(f"--seed: expected an integer from 0 to {MAX_SEED}, got {config['seed']}")
    if config.get("epochs") is not None and not (math.isfinite(config["epochs"]) and config["epochs"] > 0):
        raise ConfigError(f"--epochs: expected a positive number, got {config['epochs']}")
    config.update(found.read(options))
    return config


def _dataset(config: dict[str, Any], split: str, data_dir: str | None = None):
    """The split ``split`` of the run's data set; ``--binarize auto`` is the recipe's
    :attr:`~unigen.recipes.Recipe.binarize` on image data and none on 2-D points."""
    from unigen import data

    for prefix, load in recipes.DATA_SOURCES.items():
        if config["data"].startswith(prefix):
            return load(config, split)
    binarize = config["binarize"]
    if binarize == "auto":
        points = config["data"] in data.MIXTURE_DEFAULT_SIGMA
        binarize = None if points else recipes.recipe(config["algorithm"]).binarize
    binarize = None if binarize == "none" else binarize
    return data.load(config["data"], split, data_dir=data_dir or config["data_dir"], binarize=binarize,
                     seed=config["seed"])


def _first_fraction(dataset, fraction: float):
    """The first ``max(1, round(fraction * N))`` examples of ``dataset`` (all of it at 1)."""
    n = max(1, round(fraction * dataset.x.shape[0]))
    if n == dataset.x.shape[0]:
        return dataset
    labels = None if dataset.labels is None else dataset.labels[:n]
    return dataset._replace(x=dataset.x[:n], labels=labels)


def _read_config(run: Path, argument: str) -> dict[str, Any]:
    from unigen.training import rundir

    return rundir.read_json_object(run / rundir.CONFIG, argument)


def _check_resume(found: recipes.Recipe, out: Path, config: dict[str, Any]) -> None:
    if not (out / "config.json").exists():  # a missing or empty --out: --resume starts from step 0
        return
    stored = {**COMMON_RESUME_DEFAULTS, **found.resume_defaults, **_read_config(out, "--resume")}
    same = COMMON_SAME_ON_RESUME + tuple(option.name for option in found.options if option.same_on_resume)
    differ = [
        f"{name} (run: {stored.get(name)!r}, now: {config.get(name)!r})"
        for name in same
        if _jsonable(stored.get(name)) != _jsonable(config.get(name))
    ]
    if differ:
        raise CheckpointError(
            f"--resume: the run in {out} was made with other settings: {'; '.join(differ)}; "
            "expected the same settings (only --steps/--epochs and output options may change)"
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def train(options: dict[str, Any]) -> dict[str, Any]:
    """Runs ``unigen train`` with the parsed options (:func:`parse_train`); returns the summary it
    writes: ``{"losses": {phase: last loss}, ...the recipe's summary..., "steps",
    "images_per_second", "wall_seconds"}``."""
    import jax

    from unigen import data
    from unigen.training import fit, hosts, make_optimizer, memory, rundir, runtime

    runtime.enable_compilation_cache()  # off with UNIGEN_COMPILATION_CACHE=0
    # (1) Every check: everything that can fail on bad input fails before anything is written.
    found = recipes.recipe(options["algorithm"])
    config = _read_options(found, options)
    if config.get("out"):
        check_output(config["out"], "--out", directory=True)
    cluster = hosts.cluster(*(options.get(name) for name in hosts.ENVIRONMENT))
    watchdog = hosts.join(cluster) if cluster is not None else None  # before any computation
    train_set = _first_fraction(_dataset(config, "train"), config.get("train_fraction", 1.0))
    test_set = _dataset(config, "test")
    config["data_dim"] = int(train_set.x.shape[1])
    config["image_shape"] = list(train_set.image_shape) if train_set.image_shape else None
    if found.configure is not None:
        found.configure(config, train_set)
    if config.get("likelihood") == "bernoulli":
        data.check_array(train_set.x, source=train_set.source, bernoulli=True)
    batches = data.Batches(train_set, config["batch_size"], seed=config["seed"])
    if config["steps"] is None:
        config["steps"] = 3000 if config["epochs"] is None else max(1, round(config["epochs"] * batches.steps_per_epoch))
    model, algorithm = found.build(config)
    optimizer = make_optimizer(config["optimizer"], config["lr"], b1=config.get("b1"))
    batch = {name: jax.ShapeDtypeStruct(value.shape, value.dtype) for name, value in batches.at(0).items()}
    with runtime.matmul_precision(config["precision"]):  # traces fit's first call, which fit then reuses
        memory.check_step(algorithm, optimizer, batch, _size_settings(found, config),
                          steps_per_call=config["steps_per_call"], steps=config["steps"])
    out = Path(config["out"] or f"runs/{found.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    config["out"] = str(out)
    writer = jax.process_index() == 0
    if writer or options.get("resume"):  # the others write nothing: process 0 may have begun already
        rundir.check_out(out, resume=bool(options.get("resume")))
    if options.get("resume"):
        _check_resume(found, out, config)
        finished = rundir.finished_summary(out, config["steps"])
        if finished is not None:  # resuming a finished run changes nothing
            print(f"unigen: --resume: {out} already finished its {config['steps']} steps; nothing to do",
                  file=sys.stderr)
            return finished

    interrupted_before_training()
    print(f"unigen: {runtime.device_line()}", file=sys.stderr)
    # (2) The run directory: locked, config.json written (fresh runs), rolled back if nothing ran;
    # only process 0 writes it (the others only read checkpoints).
    opened = rundir.open_run(out, config, resume=bool(options.get("resume"))) if writer else contextlib.nullcontext()
    with opened, runtime.matmul_precision(config["precision"]):
        # (3) Fit.
        with hosts.guarded(watchdog):
            result = fit(
                algorithm, batches, steps=config["steps"], optimizer=optimizer, seed=config["seed"],
                steps_per_call=config["steps_per_call"], out_dir=out, checkpoint_every=config["checkpoint_every"],
                resume=bool(options.get("resume")), progress=False if options.get("no_progress") else None,
            )
            result = result._replace(state=hosts.local(result.state))
        hosts.leave(watchdog)
        if not writer:
            return {"process_id": jax.process_index(), "steps": int(result.state.step)}  # process 0 writes the rest
        # (4) Summary and samples; summary.json last: its presence means the run finished.
        params = result.state.params
        summary = _summary(found, config, model, algorithm, result, {"train": train_set, "test": test_set})
        if callable(found.draw):
            n = recipes.SAMPLES[train_set.kind]
            _write_samples(found, model, params, config, train_set, out / "samples.png", n=n, seed=config["seed"])
        rundir.finish(out, summary, config)
    return summary


def _size_settings(found: recipes.Recipe, config: dict[str, Any]) -> str:
    """The settings that size a run, as flags: ``--batch-size 100, --latent-dim 20, --hidden 400``."""
    sized = [f"--batch-size {config['batch_size']}"]
    for option in found.options:
        value = config.get(option.name)
        if option.type in (int, recipes.widths) and option.same_on_resume and value is not None:
            sized.append(f"{option.flag} {','.join(map(str, value)) if isinstance(value, (list, tuple)) else value}")
    return ", ".join(sized)


def _summary(found: recipes.Recipe, config, model, algorithm, result, datasets) -> dict[str, Any]:
    """``summary.json``: each phase's last loss under ``losses`` (in the order the phases run),
    the recipe's own entries, and the run's length and speed; NaN/Inf written as null."""
    last = result.history[-1] if result.history else {}
    summary = {
        "losses": {phase.name: _finite(last.get(f"{phase.name}/loss")) for phase in algorithm.phases},
        **found.summarize(config, model, result.state.params, result, datasets),
        "steps": int(result.state.step),
        "images_per_second": result.examples_per_second,
        "wall_seconds": result.wall_seconds,
    }
    return {k: _finite(v) for k, v in summary.items()}


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# --- eval and sample ---------------------------------------------------------------------------


def _load_run(run: str | Path):
    """The config, model and trained parameters of a run directory."""
    import jax

    from unigen.training import Checkpoints, make_optimizer, make_trainer

    run = Path(run)
    found, config = _stored_config(run)
    try:
        model, algorithm = found.build(config)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"run: {run / 'config.json'} does not build a {found.name} model ({brief(error)}); "
                          "expected the config.json `unigen train` wrote") from None
    trainer = make_trainer(algorithm, make_optimizer(config["optimizer"], config["lr"], b1=config.get("b1")))
    if not (run / "checkpoints").is_dir():
        raise CheckpointError(f"run: {run} has no checkpoints/ directory; expected a run of `unigen train` that "
                              "saved a checkpoint")
    checkpoints = Checkpoints(run / "checkpoints")
    try:
        state = checkpoints.restore(trainer.init(jax.random.key(config["seed"])))
    finally:
        checkpoints.close()
    return config, model, state.params


STORED = (("data", str, "a data set name"), ("binarize", str, "a --binarize value"),
          ("batch_size", int, "a positive integer"), ("optimizer", str, "an optimizer name"),
          ("lr", (int, float), "a number"), ("seed", int, "an integer"), ("data_dim", int, "a positive integer"))
"""The common entries of a run's ``config.json`` that eval and sample read, with their types."""


def _stored_config(run: Path) -> tuple[recipes.Recipe, dict[str, Any]]:
    """The recipe and config of the run in ``run``, every entry checked (a damaged config.json
    is refused in one line naming it)."""
    path = run / "config.json"
    config = _read_config(run, "run")
    try:
        found = recipes.recipe(config.get("algorithm"))
    except ConfigError as error:
        raise ConfigError(f"run: {path}: {error}") from None
    for name, kind, expected in STORED:
        value = config.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"run: {path} has {name} = {json.dumps(value)}; expected {expected}, as `unigen "
                              "train` writes it")
    config = {**COMMON_RESUME_DEFAULTS, **found.resume_defaults, **config}  # made before an option existed: its default
    from unigen.training.runtime import PRECISIONS

    if config["precision"] not in PRECISIONS:
        raise ConfigError(f"run: {path} has precision = {json.dumps(config['precision'])}; expected one of "
                          f"{sorted(PRECISIONS)}, as `unigen train` writes it")
    try:
        config.update(found.read(config))
    except ConfigError as error:
        raise ConfigError(f"run: {path}: {error}") from None
    return found, config


def _recipe_of_run(run: str | Path, hook: str, expected: str) -> recipes.Recipe:
    """The recipe of the run in ``run``, refused in one line when its ``hook`` is a reason, not a function."""
    found, _ = _stored_config(Path(run))
    reason = getattr(found, hook)
    if isinstance(reason, str):
        able = ", ".join(r.name for r in recipes.BUILT_IN if callable(getattr(r, hook)))
        raise ConfigError(f"run: {run} is a {found.name} run, {reason}; expected a run of {expected} ({able})")
    return found


def evaluate(run: str | Path, *, k: int = 1000, split: str = "test", data_dir: str | None = None, seed: int = 0) -> dict:
    """``unigen eval``: the recipe's test metrics of a trained run (IS-NLL with ``k`` importance
    samples and ELBO for likelihood models), with ``"split"`` and ``"examples"``; a non-finite
    number is ``None`` (JSON ``null``: ``NaN`` is not JSON). Computed under the run's stored
    ``precision``."""
    import jax

    from unigen.training.rundir import finite_or_null

    if k < 1:
        raise ConfigError(f"--k: expected a positive integer, got {k}")
    found = _recipe_of_run(run, "evaluate", "a recipe with an evaluation")
    from unigen.training import runtime

    config, model, params = _load_run(run)
    dataset = _dataset(config, split, data_dir)
    with runtime.matmul_precision(config["precision"]):  # the products of the run's training
        metrics = found.evaluate(config, model, params, dataset, jax.random.key(seed), k)
    return finite_or_null({**metrics, "split": split, "examples": int(dataset.x.shape[0])})


def sample(run: str | Path, *, n: int = 64, out: str | Path, seed: int = 0) -> Path:
    """``unigen sample``: draws ``n`` samples of a trained run into the PNG ``out`` (under the run's
    stored ``precision``)."""
    if n < 1:
        raise ConfigError(f"--n: expected a positive integer, got {n}")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out: expected a .png file name, got {str(out)!r}")
    check_output(out, "--out", directory=False)
    found = _recipe_of_run(run, "draw", "a generative model")
    _, stored = _stored_config(Path(run))
    from unigen.training import memory, runtime

    memory.check(n * (stored["data_dim"] * 4 * 2 + 8), f"drawing {n} samples of {stored['data_dim']} values "
                 "(the draws, their keys and the picture)", f"--n {n}")
    config, model, params = _load_run(run)
    dataset = _dataset(config, "test") if config.get("image_shape") is None else None
    with runtime.matmul_precision(config["precision"]):  # the products of the run's training
        _write_samples(found, model, params, config, dataset, out, n=n, seed=seed)
    return out


def _write_samples(found: recipes.Recipe, model, params, config, dataset, path: Path, *, n: int, seed: int) -> None:
    """The recipe's ``n`` draws as an image grid (image data) or a scatter over the data's mode centres."""
    import numpy as np

    from unigen import viz

    drawn = np.asarray(found.draw(model, params, config, n, seed))
    if config.get("image_shape"):
        viz.save_image_grid(np.clip(drawn, 0.0, 1.0), tuple(config["image_shape"]), path)
    else:
        viz.save_mode_scatter(drawn, dataset.centres, path, sigma=dataset.sigma)


if __name__ == "__main__":  # python -m unigen.cli; `python -m unigen` also notes signals while importing
    run()
