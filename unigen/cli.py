"""The ``unigen`` command: ``unigen train|eval|sample|algebra|bench``.

    unigen train vae|iwae|wake-sleep|rws|vem|gan|infogan|pm [--data digits] [--steps N | --epochs E] [--out DIR] ...
    unigen train gan|infogan --data ring8|grid25|digits [--generator-loss non-saturating|minimax]
                 [--form classic|variational-em] [--code-values K] [--information-weight W] ...
    unigen eval DIR [--k 1000] [--split test]
    unigen sample DIR --n 64 --out FILE.png
    unigen algebra verify lemma1|lemma2|elbo-decomposition|wake-sleep [--seed S] [--json]
    unigen algebra show ALGORITHM [--latex]
    unigen algebra table [--latex]
    unigen algebra direction ALGORITHM [--json]
    unigen bench variance --problem NAME [--estimators a,b,...] [--json] [--out DIR] ...
    unigen bench modes --data ring8|grid25 [--algorithms gan,gan-minimax,gan-r1,pacgan,infogan,vae] [--seeds N]
                 [--steps S] [--json] [--out DIR]

Bad input (an unknown data set or algorithm, a bad size, bad data, a checkpoint that does not
match) is reported in one line without a traceback, with exit status 2; a run whose loss turns
NaN/Inf exits with status 1 and keeps its last good checkpoint; Ctrl-C saves a checkpoint and
exits with status 130 (continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from unigen.errors import CheckpointError, ConfigError, TrainingDiverged, UnigenError

ALGORITHMS = ("vae", "iwae", "wake-sleep", "rws", "vem", "gan", "infogan", "pm")
PLANNED = ()  # later issues
SBN_ALGORITHMS = ("wake-sleep", "rws", "vem")  # Helmholtz machines (sigmoid belief nets)
GAN_ALGORITHMS = ("gan", "infogan")  # implicit generators: no likelihood, mode coverage on 2-D data
# The recognition model's parameter group of each SBN algorithm (what IS-NLL samples from).
RECOGNITION_GROUPS = {"wake-sleep": "lambda", "rws": "phi", "vem": "phi"}
# The settings a resumed run must share with the run it continues (the rest may change).
# gan options added after the first gan runs, with the values every run made before them had.
GAN_LATER_DEFAULTS = {"gradient_penalty": 0.0, "pack": 1}
SAME_ON_RESUME = (
    "algorithm", "data", "data_dir", "binarize", "batch_size", "optimizer", "lr", "latent_dim",
    "hidden", "activation", "likelihood", "kl", "k", "seed", "steps_per_call",
    "layers", "estimator", "baseline", "generator_loss", "form", "code_values", "information_weight",
    "gradient_penalty", "pack", "b1",
)


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths such as 400 or 200,200, got {text!r}")
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unigen", description="Deep generative models in the unified view, in JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,sample,algebra,bench}")

    train = commands.add_parser("train", help="train a model; writes config, metrics, summary, samples, checkpoints")
    train.add_argument("algorithm", help=f"one of {', '.join(ALGORITHMS)}")
    train.add_argument("--data", default="digits", help="digits | ring8 | grid25 | tfds:NAME | idx:DIR | pm-sources:K "
                                                        "(K binary sources, mixed; for pm) (default digits)")
    train.add_argument("--data-dir", help="TFDS data directory for tfds:NAME (default $TFDS_DATA_DIR)")
    train.add_argument("--binarize", choices=("auto", "none", "static", "dynamic"), default="auto",
                       help="binarize image data: auto (default) is static thresholding for image data, "
                            "so that the Bernoulli likelihood and IS-NLL are proper; none keeps grey levels")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="training steps (default 3000)")
    length.add_argument("--epochs", type=float, help="training epochs (instead of --steps)")
    train.add_argument("--batch-size", type=int, default=100)
    train.add_argument("--optimizer", default="adam", help="sgd | adagrad | adam (default adam)")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--b1", type=float, help="adam: the decay rate beta1 of the first moment (default 0.9; "
                                                 "0.5 is usual for GANs)")
    train.add_argument("--latent-dim", type=int, help="latent dimension (default 20; gan, infogan: the noise "
                                                       "dimension, default 2; pm: the code units, default K on "
                                                       "pm-sources:K)")
    train.add_argument("--hidden", type=_hidden, help="hidden widths, e.g. 400 or 200,200 (default 400; gan, "
                                                      "infogan: 64,64 for every network; pm: the encoder's, "
                                                      "default none, a linear encoder)")
    train.add_argument("--activation", default="relu", help="relu | tanh | softplus | elu | leaky_relu")
    train.add_argument("--likelihood", default="auto",
                       help="bernoulli | gaussian | auto (bernoulli for images, gaussian for 2-D points)")
    train.add_argument("--kl", default="analytic", help="analytic | monte_carlo (vae)")
    train.add_argument("--k", type=int, default=5, help="importance samples of the IWAE bound (iwae) and of "
                                                       "reweighted wake-sleep (rws)")
    train.add_argument("--layers", type=_hidden, help="hidden layers of the sigmoid belief net, bottom to top, "
                                                      "e.g. 200 or 200,200 (wake-sleep, rws, vem; default 200)")
    train.add_argument("--estimator", choices=("score", "exact"),
                       help="vem: score-function E-step (default) or the exact E-step by enumeration (classic EM, "
                            "at most 12 hidden units)")
    train.add_argument("--baseline", choices=("none", "mean", "nvil"),
                       help="vem with --estimator score: the score-function baseline (default none)")
    train.add_argument("--generator-loss", choices=("non-saturating", "minimax"),
                       help="gan: the generator's objective, max E[log D(G(z))] (default) or min E[log(1 - D(G(z)))]")
    train.add_argument("--form", choices=("classic", "variational-em"),
                       help="gan: the objectives as in §3 (default) or rewritten as variational EM (§3.1)")
    train.add_argument("--gradient-penalty", type=float,
                       help="gan: weight gamma of the R1 penalty gamma/2 E_data |grad_x d(x)|^2 on the discriminator "
                            "(default 0, none)")
    train.add_argument("--pack", type=int, help="gan: examples the discriminator judges at once (PacGAN; default 1)")
    train.add_argument("--code-values", type=int, help="infogan: values K of the categorical code (default: the "
                                                       "number of modes, 8 for ring8, 25 for grid25; 10 otherwise)")
    train.add_argument("--information-weight", type=float,
                       help="infogan: weight of the mutual-information bound (default 1)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps-per-call", type=int, default=10, help="steps fused in one compiled call")
    train.add_argument("--checkpoint-every", type=int, default=1000)
    train.add_argument("--eval-k", type=int, default=1000, help="importance samples for the test IS-NLL")
    train.add_argument("--out", help="output directory (default runs/ALGORITHM-TIME)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    evaluate = commands.add_parser("eval", help="print test IS-NLL and ELBO of a trained run as JSON")
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
    show.add_argument("algorithm", help="a declared algorithm: vae, gan, wake-sleep, ... (a bad name lists them)")
    show.add_argument("--latex", action="store_true", help="LaTeX instead of Unicode")
    table = algebra_commands.add_parser("table", help="the lecture's Figure 5 (GANs vs VAEs) from the declarations")
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


def _algebra(args: argparse.Namespace) -> int:
    if args.algebra_command == "show":
        print(show_algorithm(args.algorithm, latex=args.latex))
        return 0
    if args.algebra_command == "table":
        from unigen.algebra.table import table

        print(table(latex=args.latex))
        return 0
    if args.algebra_command == "direction":
        record = algorithm_direction(args.algorithm)
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            from unigen.algebra.expr import PARAMS

            print(f"{record['algorithm']}: min_{PARAMS[record['wrt']]} {record['kl']}")
            print(f"  the trained model is the {record['side']} argument of the KL: {record['behaviour']}")
            print(f"  {record['explanation']}")
        return 0
    return _verify(args)


def show_algorithm(name: str, *, latex: bool = False) -> str:
    """An algorithm's declaration as text: title, section, ``max_{groups} objective`` per phase,
    and its Figure-5 fields when it has them."""
    from unigen.algebra.expr import PARAMS
    from unigen.algorithms.declarations import declaration

    found = declaration(name)
    render = (lambda node: node.latex()) if latex else str  # noqa: E731
    lines = [f"{found.title} ({found.section})"]
    for phase in found.phases:
        if latex:
            groups = ", ".join("\\" + g for g in phase.groups)
            head = f"\\{phase.sense}_{{{groups}}}"
        else:
            head = f"{phase.sense}_{{{','.join(PARAMS[g] for g in phase.groups)}}}"
        lines.append(f"  {phase.name}: {head} {render(phase.objective)}")
    if found.figure5 is not None:
        lines.append("  Figure 5:")
        labels = {"generative": "generative distribution", "discriminator": "discriminator",
                  "inference": "z-inference model", "kl": "KL to minimize"}
        for field, label in labels.items():
            value = getattr(found.figure5, field)
            if value is not None:
                lines.append(f"    {label}: {render(value)}")
    return "\n".join(lines)


def algorithm_direction(name: str) -> dict[str, Any]:
    """The side of the algorithm's Figure-5 KL its trained group sits on, as a JSON-able dict."""
    from unigen.algebra.direction import direction
    from unigen.algorithms.declarations import declaration

    from unigen.algorithms.declarations import DECLARATIONS

    found = declaration(name)
    if found.figure5 is None or found.figure5.kl is None:
        covered = sorted(n for n, d in DECLARATIONS.items() if d.figure5 and d.figure5.kl)
        raise ConfigError(f"algorithm: {name!r} has no Figure-5 KL; expected one of {covered}")
    result = direction(found.figure5.kl, found.figure5.wrt)
    return {
        "algorithm": found.name,
        "kl": str(found.figure5.kl),
        "wrt": found.figure5.wrt,
        "side": result.side,
        "behaviour": result.behaviour,
        "explanation": result.explanation,
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
        print(json.dumps(record, ensure_ascii=False))
    else:
        verdict = "holds" if record["holds"] else "DOES NOT HOLD"
        print(f"{record['identity']}: {verdict} on the space {record['space']}")
        print(f"  in the sense: {record['sense']}")
        print(f"  max |error|: values {record['max_abs_error_value']:.3g}, gradients {record['max_abs_error_grad']:.3g}")
    return 0 if record["holds"] else 1


# --- bench variance (issue [5]) ---------------------------------------------------------------


BENCH_PROBLEMS = ("gaussian-square", "gaussian-exp", "gaussian-cos", "gaussian-sum-squares", "bernoulli", "categorical",
                  "vae", "sbn")
BENCH_ESTIMATORS = ("score", "score-mean-baseline", "score-optimal-baseline", "score-learned-baseline",
                    "score-control-variate", "pathwise", "concrete", "leave-one-out")  # help text only


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
                                                  "(default 8)")
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
    modes.add_argument("--algorithms", default="gan,gan-minimax,gan-r1,pacgan,infogan,vae",
                       help="comma-separated, from gan,gan-minimax,gan-r1,pacgan,infogan,vae (default: all)")
    modes.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per algorithm (default 5)")
    modes.add_argument("--steps", type=int, default=40000,
                       help="training steps per run (default 40000, the benchmark's budget: about a minute per "
                            "GAN run on 2 CPU cores)")
    modes.add_argument("--json", action="store_true", help="print one JSON object")
    modes.add_argument("--out", help="directory for results.json and samples.png")
    modes.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def _bench(args: argparse.Namespace) -> int:
    if args.bench_command == "modes":
        return _bench_modes(args)
    import jax

    from unigen.estimators import report as variance

    try:
        ks = [None] if args.k is None else [float(part) for part in args.k.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--k: expected a number or comma-separated numbers, got {args.k!r}") from None
    estimators = None if args.estimators is None else [e.strip() for e in args.estimators.split(",") if e.strip()]
    options: dict[str, Any] = {"mu": args.mu, "sigma": args.sigma, "dim": args.dim}
    if args.checkpoint is not None:
        if args.problem != "vae":
            raise ConfigError(f"--checkpoint: expected only with --problem vae, got --problem {args.problem}")
        config, model, params = _load_run(args.checkpoint)
        if config.get("algorithm") != "vae":
            raise ConfigError(
                f"--checkpoint: expected a run of unigen train vae, got a {config.get('algorithm')!r} "
                f"run in {args.checkpoint}"
            )
        options.update(model=model, params=params, x=_dataset(config, "test").x[0])
    report = variance.sweep_k(args.problem, ks, estimators, args.samples, args.replicas,
                              jax.random.key(args.seed), repeats=args.repeats, **options)
    record = report.to_json()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(record, indent=2) + "\n")
        variance.save_variance_plot(report, out / "variance.png")
    print(json.dumps(record) if args.json else variance.format_table(report))
    return 0


def _bench_modes(args: argparse.Namespace) -> int:
    from unigen import bench_modes

    record = bench_modes.run_modes(args.data, args.algorithms.split(","), args.seeds, args.steps,
                                   keep_samples=bool(args.out), progress=False if args.no_progress else None)
    samples = record.pop("samples", None)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
        bench_modes.save_panels([{**record, "samples": samples}], out / "samples.png")
    print(json.dumps(record) if args.json else bench_modes.format_table(record))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            summary = train(vars(args))
            print(json.dumps(summary))
        elif args.command == "algebra":
            return _algebra(args)
        elif args.command == "bench":
            return _bench(args)
        elif args.command == "eval":
            print(json.dumps(evaluate(args.run, k=args.k, split=args.split, data_dir=args.data_dir, seed=args.seed)))
        else:
            path = sample(args.run, n=args.n, out=args.out, seed=args.seed)
            print(json.dumps({"samples": str(path)}))
    except TrainingDiverged as error:
        print(f"unigen: training diverged: {error}", file=sys.stderr)
        return 1
    except UnigenError as error:
        print(f"unigen: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unigen: interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """The console entry point: ``sys.exit(main())``, but an error exit skips finalization.

    After a failed checkpoint read, tensorstore completes futures on the event loop orbax has
    already closed, and at interpreter shutdown each prints "RuntimeError: Event loop is closed"
    with a traceback: noise after a one-line error. On an error exit everything the command
    wrote is already closed, so the process ends at once after flushing its output.
    """
    code = main()
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


# --- train -------------------------------------------------------------------------------------


def _check_settings(config: dict[str, Any]) -> None:
    algorithm = config["algorithm"]
    if algorithm not in ALGORITHMS:
        later = f" ({algorithm!r} is planned but not built yet)" if algorithm in PLANNED else ""
        raise ConfigError(f"algorithm: expected one of {list(ALGORITHMS)}, got {algorithm!r}{later}")
    for name in ("batch_size", "latent_dim", "k", "steps_per_call", "checkpoint_every", "eval_k"):
        if config[name] is not None and config[name] < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive integer, got {config[name]}")
    if config["steps"] is not None and config["steps"] < 1:
        raise ConfigError(f"--steps: expected a positive integer, got {config['steps']}")
    if config["epochs"] is not None and not (math.isfinite(config["epochs"]) and config["epochs"] > 0):
        raise ConfigError(f"--epochs: expected a positive number, got {config['epochs']}")
    _check_pm_settings(config)
    _check_gan_settings(config)
    sbn_options = {"layers": "--layers", "estimator": "--estimator", "baseline": "--baseline"}
    if algorithm in SBN_ALGORITHMS:
        config["layers"] = list(config.get("layers") or (200,))
        if algorithm == "vem":
            config["estimator"] = config.get("estimator") or "score"
            config["baseline"] = config.get("baseline") or "none"
            if config["estimator"] == "exact" and config["baseline"] != "none":
                raise ConfigError(f"--baseline: expected none with --estimator exact, got {config['baseline']}")
        for name in ("estimator", "baseline"):
            if algorithm != "vem" and config.get(name) is not None:
                raise ConfigError(f"{sbn_options[name]}: expected only with vem, got {config[name]} for {algorithm}")
    else:
        for name, flag in sbn_options.items():
            value = config.get(name)
            if value is not None:
                shown = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value
                raise ConfigError(f"{flag}: expected only with {', '.join(SBN_ALGORITHMS)}, got {shown} for {algorithm}")


def _check_gan_settings(config: dict[str, Any]) -> None:
    """Resolves the network sizes (a GAN's defaults are smaller) and checks the gan/infogan options."""
    algorithm = config["algorithm"]
    adversarial = algorithm in GAN_ALGORITHMS
    if config.get("hidden") is None:
        config["hidden"] = (64, 64) if adversarial else (400,)
    if config.get("latent_dim") is None:
        config["latent_dim"] = 2 if adversarial else 20
    config["hidden"] = list(config["hidden"])
    owners = {"generator_loss": "gan", "form": "gan", "gradient_penalty": "gan", "pack": "gan",
              "code_values": "infogan", "information_weight": "infogan"}
    for name, owner in owners.items():
        if algorithm != owner and config.get(name) is not None:
            raise ConfigError(f"--{name.replace('_', '-')}: expected only with {owner}, got {config[name]} for {algorithm}")
    if algorithm == "gan":
        config["generator_loss"] = config.get("generator_loss") or "non-saturating"
        config["form"] = config.get("form") or "classic"
        penalty = config.get("gradient_penalty")
        if penalty is not None and not (math.isfinite(penalty) and penalty >= 0):
            raise ConfigError(f"--gradient-penalty: expected a number >= 0, got {penalty}")
        for name, default in GAN_LATER_DEFAULTS.items():
            config[name] = default if config.get(name) is None else config[name]
        batch_size = config.get("batch_size")
        if config["pack"] < 1 or (batch_size is not None and batch_size % config["pack"]):
            raise ConfigError(f"--pack: expected a positive divisor of --batch-size {batch_size} (the "
                              f"discriminator judges --pack rows of each batch at once), got {config['pack']}")
        if config["form"] == "variational-em" and config["generator_loss"] != "non-saturating":
            raise ConfigError(f"--generator-loss: expected non-saturating with --form variational-em (§3.1's "
                              f"generator objective is the non-saturating one), got {config['generator_loss']}")
    if algorithm == "infogan":
        if config.get("code_values") is not None and config["code_values"] < 2:
            raise ConfigError(f"--code-values: expected an integer of at least 2, got {config['code_values']}")
        weight = config.get("information_weight")
        if weight is not None and not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"--information-weight: expected a positive number, got {weight}")
        config["information_weight"] = 1.0 if weight is None else weight
    if adversarial and config.get("likelihood", "auto") != "auto":
        raise ConfigError(f"--likelihood: expected none for {algorithm} (an implicit generator has no likelihood), "
                          f"got {config['likelihood']}")


def _dataset(config: dict[str, Any], split: str, data_dir: str | None = None):
    from unigen import data

    if config["data"].startswith("pm-sources:"):
        return _pm_dataset(config, split)
    binarize = config["binarize"]
    if binarize == "auto":  # a GAN has no Bernoulli likelihood to make proper: it sees grey levels
        binarize = None if config["data"] in ("ring8", "grid25") or config["algorithm"] in GAN_ALGORITHMS else "static"
    binarize = None if binarize == "none" else binarize
    return data.load(config["data"], split, data_dir=data_dir or config["data_dir"], binarize=binarize,
                     seed=config["seed"])


def _model(config: dict[str, Any]):
    from unigen.models.helmholtz import helmholtz_machine
    from unigen.models.vae import vae_model

    if config["algorithm"] == "pm":
        return _pm_model(config)
    if config["algorithm"] in SBN_ALGORITHMS:
        return helmholtz_machine(config["data_dim"], tuple(config["layers"]))
    if config["algorithm"] in GAN_ALGORITHMS:
        from unigen.models.gan import gan_model
        from unigen.models.infogan import infogan_model

        hidden = tuple(config["hidden"])
        if config["algorithm"] == "gan":
            return gan_model(config["data_dim"], config["latent_dim"], generator_hidden=hidden,
                             discriminator_hidden=hidden, activation=config["activation"],
                             pack=config.get("pack") or 1)
        return infogan_model(config["data_dim"], config["latent_dim"], config["code_values"], generator_hidden=hidden,
                             discriminator_hidden=hidden, inference_hidden=hidden, activation=config["activation"])
    return vae_model(config["data_dim"], config["latent_dim"], hidden=tuple(config["hidden"]),
                     activation=config["activation"], likelihood=config["likelihood"])


def _algorithm(config: dict[str, Any], model):
    from unigen.algorithms.iwae import iwae
    from unigen.algorithms.rws import rws
    from unigen.algorithms.vae import vae
    from unigen.algorithms.variational_em import variational_em
    from unigen.algorithms.wake_sleep import wake_sleep

    name = config["algorithm"]
    if name == "pm":
        from unigen.algorithms.pm import predictability_minimization

        return predictability_minimization(model)
    if name == "gan":
        from unigen.algorithms.gan import gan

        return gan(model, generator_loss=config["generator_loss"], form=config["form"],
                   gradient_penalty=config.get("gradient_penalty") or 0.0)
    if name == "infogan":
        from unigen.algorithms.infogan import infogan

        return infogan(model, information_weight=config["information_weight"])
    if name == "wake-sleep":
        return wake_sleep(model)
    if name == "rws":
        return rws(model, k=config["k"])
    if name == "vem":
        return variational_em(model, estimator=config["estimator"], baseline=config["baseline"])
    return vae(model, kl=config["kl"]) if name == "vae" else iwae(model, config["k"])


def _likelihoods(config: dict[str, Any], model, params, x, key, k: int) -> dict[str, Any]:
    """Test IS-NLL (k importance samples) and ELBO of a run's model.

    VAEs: :func:`unigen.metrics.is_nll` and :func:`unigen.metrics.test_elbo`. Helmholtz machines:
    the IS-NLL with the recognition model as proposal, and the ELBO as minus the k=1 IS-NLL (a
    one-draw estimate per example); with classic EM (no recognition model) the exact NLL by
    enumeration, which is then also the ELBO at the exact posterior.
    """
    from unigen.metrics import is_nll, test_elbo
    from unigen.models.sbn import exact_nll

    if config["algorithm"] not in SBN_ALGORITHMS:
        return {"is_nll": is_nll(model, params, x, key, k=k), "elbo": test_elbo(model, params, x, key)}
    if config["algorithm"] == "vem" and config["estimator"] == "exact":
        nll = exact_nll(model, params["theta"], x)
        return {"is_nll": nll, "elbo": -nll, "exact_nll": nll}
    groups = ("theta", RECOGNITION_GROUPS[config["algorithm"]])
    return {"is_nll": is_nll(model, params, x, key, k=k, groups=groups),
            "elbo": -is_nll(model, params, x, key, k=1, groups=groups)}


def _resolve_likelihood(requested: str, dataset) -> str:
    if requested == "auto":
        return "bernoulli" if dataset.kind == "image" else "gaussian"
    return requested


def _read_config(run: Path, argument: str) -> dict[str, Any]:
    path = run / "config.json"
    if not path.exists():
        raise ConfigError(f"{argument}: {path} not found; expected a directory written by `unigen train`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{argument}: {path} is not valid JSON ({error})") from error


def _check_resume(out: Path, config: dict[str, Any]) -> None:
    stored = _read_config(out, "--resume")
    if stored.get("algorithm") == "gan":  # a run written before these options existed had their defaults
        stored = {**GAN_LATER_DEFAULTS, **stored}
    differ = [
        f"{name} (run: {stored.get(name)!r}, now: {config.get(name)!r})"
        for name in SAME_ON_RESUME
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
    """Runs ``unigen train`` with the parsed options; returns the summary it writes."""
    import jax

    from unigen import data
    from unigen.training import fit, make_optimizer, runtime

    runtime.enable_compilation_cache()  # off with UNIGEN_COMPILATION_CACHE=0
    config = {k: v for k, v in options.items() if k not in ("command", "resume", "no_progress")}
    _check_settings(config)
    # Everything that can fail on bad input is checked before anything is written.
    train_set = _dataset(config, "train")
    test_set = _dataset(config, "test")
    config["likelihood"] = _resolve_likelihood(config["likelihood"], train_set)
    if config["algorithm"] in GAN_ALGORITHMS:
        config["likelihood"] = None  # an implicit generator: samples only, no likelihood
        if config["algorithm"] == "infogan" and config.get("code_values") is None:
            config["code_values"] = 10 if train_set.centres is None else int(train_set.centres.shape[0])
    if config["algorithm"] in SBN_ALGORITHMS and config["likelihood"] != "bernoulli":
        raise ConfigError(f"--likelihood: expected bernoulli (binary data) for {config['algorithm']}, a sigmoid belief "
                          f"net, got {config['likelihood']}")
    if config["likelihood"] == "bernoulli":
        data.check_array(train_set.x, source=train_set.source, bernoulli=True)
    config["data_dim"] = int(train_set.x.shape[1])
    config["image_shape"] = list(train_set.image_shape) if train_set.image_shape else None
    batches = data.Batches(train_set, config["batch_size"], seed=config["seed"])
    if config["steps"] is None:
        config["steps"] = 3000 if config["epochs"] is None else max(1, round(config["epochs"] * batches.steps_per_epoch))
    model = _model(config)
    algorithm = _algorithm(config, model)
    optimizer = make_optimizer(config["optimizer"], config["lr"], b1=config.get("b1"))
    out = Path(config["out"] or f"runs/{config['algorithm']}-{time.strftime('%Y%m%d-%H%M%S')}")
    config["out"] = str(out)
    if options.get("resume"):
        _check_resume(out, config)
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out: {out} is not empty; expected a new directory, or --resume to continue the run in it")

    print(f"unigen: {runtime.device_line()}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    result = fit(
        algorithm, batches, steps=config["steps"], optimizer=optimizer, seed=config["seed"],
        steps_per_call=config["steps_per_call"], out_dir=out, checkpoint_every=config["checkpoint_every"],
        resume=bool(options.get("resume")), progress=False if options.get("no_progress") else None,
    )
    params = result.state.params
    n_samples = 64 if config["image_shape"] else 2500  # 2,500 points: the mode-coverage convention
    if config["algorithm"] in GAN_ALGORITHMS:
        summary = _adversarial_summary(config, model, params, result, train_set, n_samples)
    elif config["algorithm"] == "pm":
        summary = _pm_summary(config, model, params, result, test_set)
    else:
        summary = _likelihood_summary(config, model, params, algorithm, result, test_set)
    summary = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in summary.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if config["algorithm"] != "pm":  # a code, not a generative model: nothing to sample
        _write_samples(model, params, config, train_set, out / "samples.png", n=n_samples, seed=config["seed"])
    return summary


def _likelihood_summary(config, model, params, algorithm, result, test_set) -> dict[str, Any]:
    import jax

    key = jax.random.key(config["seed"] + 1)
    likelihoods = _likelihoods(config, model, params, test_set.x, key, config["eval_k"])
    return {
        "final_loss": result.history[-1][f"{algorithm.phases[0].name}/loss"] if result.history else None,
        "test_elbo": likelihoods["elbo"],
        "is_nll": likelihoods["is_nll"],
        "eval_k": config["eval_k"],
        "steps": int(result.state.step),
        "images_per_second": result.examples_per_second,
        "wall_seconds": result.wall_seconds,
    }


def _adversarial_summary(config, model, params, result, dataset, n_samples: int) -> dict[str, Any]:
    """A GAN's summary: its last losses and, on 2-D mixtures, the mode coverage of the
    ``n_samples`` generated points of ``samples.png`` (VEEGAN/PacGAN Table 1:
    :func:`unigen.metrics.mode_coverage` with the data set's centres and sigma)."""
    last = result.history[-1] if result.history else {}
    summary: dict[str, Any] = {
        "final_loss": last.get("discriminator/loss"),
        "generator_loss": last.get("generator/loss"),
    }
    if config["algorithm"] == "infogan":
        summary["information"] = last.get("generator/information")
    if dataset.centres is not None:
        from unigen.metrics import mode_coverage

        coverage = mode_coverage(_draw(model, params, config, n_samples, config["seed"]), dataset.centres,
                                 dataset.sigma)
        summary.update(modes_captured=int(coverage.modes_captured), modes=int(dataset.centres.shape[0]),
                       high_quality_fraction=float(coverage.high_quality_fraction),
                       reverse_kl=float(coverage.reverse_kl), coverage_samples=n_samples)
    summary.update(steps=int(result.state.step), images_per_second=result.examples_per_second,
                   wall_seconds=result.wall_seconds)
    return summary


# --- pm: predictability minimization ------------------------------------------------------------


def _check_pm_settings(config: dict[str, Any]) -> None:
    """pm's defaults: a linear encoder (``--hidden ''``) and, on ``pm-sources:K``, K code units;
    ``pm-sources:K`` (real-valued) is never binarized."""
    if config["binarize"] in ("static", "dynamic") and config["data"].startswith("pm-sources:"):
        raise ConfigError(f"--binarize: expected auto or none for {config['data']} (real-valued mixtures), "
                          f"got {config['binarize']}")
    if config["algorithm"] != "pm":
        return
    if config.get("hidden") is None:
        config["hidden"] = ()
    if config.get("latent_dim") is None and config["data"].startswith("pm-sources:"):
        k = config["data"][len("pm-sources:"):]
        config["latent_dim"] = int(k) if k.isdigit() and int(k) >= 2 else None  # _pm_dataset reports a bad K
    if config.get("latent_dim") is not None and config["latent_dim"] < 2:
        raise ConfigError(f"--latent-dim: expected at least 2 code units for pm, got {config['latent_dim']}")


def _pm_dataset(config: dict[str, Any], split: str):
    from unigen import data
    from unigen.models.pm import sources_split

    return data.from_array(sources_split(config["data"], split).x, name=config["data"], split=split)


def _pm_model(config: dict[str, Any]):
    from unigen.models.pm import pm_model

    return pm_model(config["data_dim"], config["latent_dim"], hidden=tuple(config["hidden"]),
                    activation=config["activation"])


def _pm_metrics(config: dict[str, Any], model, params, dataset) -> dict[str, Any]:
    """:func:`unigen.algorithms.pm.evaluate` on ``dataset``, with the sources of ``pm-sources:K``."""
    from unigen.algorithms.pm import evaluate as pm_evaluate
    from unigen.models.pm import sources_split

    sources = None
    if config["data"].startswith("pm-sources:"):
        sources = sources_split(config["data"], dataset.split).sources
    return pm_evaluate(model, params, dataset.x, sources)


def _pm_summary(config, model, params, result, test_set) -> dict[str, Any]:
    """PM's summary: its last losses and the code's metrics on the test split (instead of IS-NLL)."""
    last = result.history[-1] if result.history else {}
    return {
        "final_loss": last.get("predictors/loss"),
        "encoder_loss": last.get("encoder/loss"),
        **_pm_metrics(config, model, params, test_set),
        "steps": int(result.state.step),
        "images_per_second": result.examples_per_second,
        "wall_seconds": result.wall_seconds,
    }


# --- eval and sample ---------------------------------------------------------------------------


def _load_run(run: str | Path):
    """The config, model and trained parameters of a run directory."""
    import jax

    from unigen.training import Checkpoints, make_optimizer, make_trainer

    run = Path(run)
    config = _read_config(run, "run")
    model = _model(config)
    trainer = make_trainer(_algorithm(config, model),
                           make_optimizer(config["optimizer"], config["lr"], b1=config.get("b1")))
    checkpoints = Checkpoints(run / "checkpoints")
    try:
        state = checkpoints.restore(trainer.init(jax.random.key(config["seed"])))
    finally:
        checkpoints.close()
    return config, model, state.params


def evaluate(run: str | Path, *, k: int = 1000, split: str = "test", data_dir: str | None = None, seed: int = 0) -> dict:
    """``unigen eval``: test IS-NLL (k importance samples) and ELBO of a trained run."""
    import jax

    if k < 1:
        raise ConfigError(f"--k: expected a positive integer, got {k}")
    config = _read_config(Path(run), "run")
    if config.get("algorithm") in GAN_ALGORITHMS:
        raise ConfigError(f"run: {run} is a {config['algorithm']} run, an implicit generator without a likelihood "
                          "to evaluate; expected a run of vae, iwae, wake-sleep, rws or vem (its mode coverage is in "
                          "summary.json)")
    config, model, params = _load_run(run)
    dataset = _dataset(config, split, data_dir)
    if config["algorithm"] == "pm":
        return {**_pm_metrics(config, model, params, dataset), "split": split, "examples": int(dataset.x.shape[0])}
    key = jax.random.key(seed)
    likelihoods = _likelihoods(config, model, params, dataset.x, key, k)
    return {
        **likelihoods,
        "k": k,
        "split": split,
        "examples": int(dataset.x.shape[0]),
    }


def sample(run: str | Path, *, n: int = 64, out: str | Path, seed: int = 0) -> Path:
    """``unigen sample``: draws ``n`` samples of a trained run into the PNG ``out``."""
    if n < 1:
        raise ConfigError(f"--n: expected a positive integer, got {n}")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out: expected a .png file name, got {str(out)!r}")
    if _read_config(Path(run), "run").get("algorithm") == "pm":
        raise ConfigError(f"run: {run} is a pm run, which learns a code, not a generative model; expected a run "
                          "of a generative model (vae, iwae, wake-sleep, rws, vem, gan, infogan)")
    config, model, params = _load_run(run)
    dataset = _dataset(config, "test") if config.get("image_shape") is None else None
    _write_samples(model, params, config, dataset, out, n=n, seed=seed)
    return out


def _write_samples(model, params, config, dataset, path: Path, *, n: int, seed: int) -> None:
    import jax
    import numpy as np

    from unigen import viz

    if config["algorithm"] in GAN_ALGORITHMS:
        drawn = _draw(model, params, config, n, seed)
        if config.get("image_shape"):
            viz.save_image_grid(np.clip(drawn, 0.0, 1.0), tuple(config["image_shape"]), path)
        else:
            viz.save_mode_scatter(drawn, dataset.centres, path, sigma=dataset.sigma)
        return
    keys = jax.random.split(jax.random.key(seed), n)
    theta = params["theta"]
    if config.get("image_shape"):
        z = jax.vmap(lambda k: model.prior(theta).sample(k))(keys)
        means = np.asarray(jax.vmap(lambda zi: model.decode_mean(theta, zi))(z))
        viz.save_image_grid(np.clip(means, 0.0, 1.0), tuple(config["image_shape"]), path)
    else:
        drawn = jax.vmap(lambda k: model.joint.sample(theta, k, {}))(keys)
        viz.save_mode_scatter(np.asarray(drawn["x"]), dataset.centres, path, sigma=dataset.sigma)


def _draw(model, params, config, n: int, seed: int):
    """``n`` examples of a GAN's generator, ``[n, D]``: example i drawn with key
    ``jax.random.split(jax.random.key(seed), n)[i]``."""
    import jax
    import numpy as np

    theta = params["theta"]
    keys = jax.random.split(jax.random.key(seed), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: model.generator.sample(theta, k, {})["x"]))(keys))


if __name__ == "__main__":
    run()
