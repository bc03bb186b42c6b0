"""What the benchmark scripts share: where data and results live, their parser, the closing
load-average line, the figure backend and the JSON report.

A script run as ``python benchmarks/NAME.py`` puts the repository on ``sys.path`` first (one line),
then imports this module as ``benchmarks.common``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TFDS_DIR = REPO.parent / "shared" / "data" / "tfds"
"""The prepared TFDS data (``binarized_mnist``) beside the repository."""
RESULTS = REPO / "benchmarks" / "results"


def parser(doc: str) -> argparse.ArgumentParser:
    """The script's parser, described by the first paragraph of its docstring, the rest kept as written."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)


def add_budget_options(parser: argparse.ArgumentParser, *, minutes: float, batch_size: int,
                       steps_per_call: int) -> None:
    """The options of a training run with a wall-clock budget and a cosine-decayed Adam rate:
    ``--minutes``, ``--batch-size``, ``--lr``, ``--lr-final`` and ``--steps-per-call`` (checked by
    :func:`check_budget`)."""
    parser.add_argument("--minutes", type=float, default=minutes, help="wall-clock training budget")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate")
    parser.add_argument("--lr-final", type=float, default=1e-4, help="learning rate at the end (cosine decay)")
    parser.add_argument("--steps-per-call", type=int, default=steps_per_call, help="steps fused per compiled call")


def check_budget(parser: argparse.ArgumentParser, args: argparse.Namespace, *positive: str) -> None:
    """Refuses (argparse's exit 2, one line) a budget option of :func:`add_budget_options` out of
    range, or any of the integer options ``positive`` below 1."""
    require_positive(parser, args, "batch_size", "steps_per_call", *positive)
    if not (args.minutes > 0 and args.lr > 0 and 0 < args.lr_final <= args.lr):
        parser.error("expected --minutes > 0 and 0 < --lr-final <= --lr")


def require_positive(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """Refuses (argparse's exit 2) the first of ``names`` whose value is below 1, in one line."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")


def print_header(title: str, header: str) -> None:
    """Prints a table's title, its column header and a rule as wide as the header."""
    print(title)
    print(header)
    print("-" * len(header))


def print_load(load_before: tuple[float, ...], began: float, note: str = "") -> tuple[float, ...]:
    """Prints the load average before and now (1-minute), ``note`` and the seconds since ``began``
    (``time.perf_counter()``); returns the load average now."""
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}{note}; "
          f"total {time.perf_counter() - began:.0f} s")
    return load_after


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display), imported only when a figure is drawn."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 90) -> None:
    """Writes ``fig`` to ``path`` (its folder made) and closes it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def write_report(path: Path, report: dict[str, Any], *also: Path) -> dict[str, Any]:
    """Writes ``report`` as JSON to ``path`` (its folder made), prints what was written (``path`` and
    the files ``also`` named, written before) and returns ``report``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print("wrote " + " and ".join(str(p) for p in (path, *also)))
    return report
