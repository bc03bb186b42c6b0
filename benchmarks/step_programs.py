"""What XLA compiles for one VAE training step: unigen's trainer against the plain-JAX baseline.

No timing: for each one-step program of ``vae_throughput.py`` (``a`` unigen, ``c`` plain JAX, and
the diagnostics ``e``, ``f``, ``h``), XLA's ``cost_analysis()`` (FLOPs, transcendentals, bytes
accessed) and the instructions of the compiled entry computation by kind. On CPU, XLA's runtime
runs each fusion, copy and dot of the entry computation as one kernel, in turn; a ``while`` runs
its body once per iteration (JAX's threefry hash is a rolled loop on CPU) and a ``call`` is a
small inlined computation. Kernels that move little data cost their launch: this is where a
step with the same FLOPs can still be slower.

Run::

    python benchmarks/step_programs.py            # ~1 min on 2 cores; random binary data
    python benchmarks/step_programs.py --variants ac
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vae_throughput  # noqa: E402 - the variants, built the same way as the timed benchmark

KINDS = ("fusion", "copy", "dot", "while", "call")


def entry_instructions(hlo: str) -> dict[str, int]:
    """Counts of the entry computation's instructions by opcode."""
    entry = hlo[hlo.index("\nENTRY"):]
    return instructions(entry[entry.index("\n") + 1: entry.index("\n}")])


def instructions(body: str) -> dict[str, int]:
    """Counts of the instructions by opcode in the lines of one computation's body."""
    counts: dict[str, int] = {}
    for line in body.splitlines():
        line = re.sub(r"/\*.*?\*/", "", line)  # comments such as /*index=5*/ inside tuple shapes
        found = re.search(r"=\s+(?:\([^=]*\)|\S+)\s+([a-z][\w-]*)\(", line)
        if found:
            counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return counts


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="acefh", help="letters of vae_throughput.py's variants")
    args = parser.parse_args(argv)
    x = (np.random.default_rng(0).random((2, 128, 784)) < 0.3).astype(np.float32)
    variants, _ = vae_throughput.build_variants(x, 2, "".join(v for v in "acefh" if v in args.variants))
    rows = []
    print(f"{'program':<52} {'MFLOP':>7} {'transc.':>8} {'MB':>6} " + " ".join(f"{k:>6}" for k in KINDS))
    for variant in variants:
        compiled = variant.step.lower(variant.state, variant.batches[0]).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        counts = entry_instructions(compiled.as_text())
        row = {"variant": variant.name, "label": variant.label, "mflop": cost.get("flops", 0) / 1e6,
               "transcendentals": cost.get("transcendentals", 0), "mb_accessed": cost.get("bytes accessed", 0) / 1e6,
               **{k: counts.get(k, 0) for k in KINDS}}
        rows.append(row)
        print(f"{variant.name + ' ' + variant.label[:48]:<52} {row['mflop']:7.1f} {row['transcendentals'] / 1e3:7.1f}k "
              f"{row['mb_accessed']:6.2f} " + " ".join(f"{row[k]:>6}" for k in KINDS))
    return rows


if __name__ == "__main__":
    main()
