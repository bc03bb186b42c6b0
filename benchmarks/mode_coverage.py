"""Mode coverage on ring8 and grid25 (issue [4] part 6) beside VEEGAN's and PacGAN's Table 1.

    python benchmarks/mode_coverage.py                       # 5 seeds x 4 algorithms x 2 data sets
    python benchmarks/mode_coverage.py --seeds 2 --steps 500 --json /tmp/m.json --png /tmp/m.png   # smoke

Runs :func:`unigen.bench_modes.run_modes` (same networks and step budget for every algorithm; see
its docstring) and writes benchmarks/results/mode_coverage.{json,png}: the JSON holds both data
sets' records and the published anchors; the PNG has one row per data set, one panel per algorithm
(seed 0's 2,500 samples over the true modes, with 3 sigma circles).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from unigen import bench_modes
from unigen import data as datasets

RESULTS = Path(__file__).parent / "results"
# Published rows (modes captured, high-quality %); those papers trained far longer, with their own nets.
ANCHORS = {
    "ring8": [("GAN (VEEGAN Table 1)", 1, 99.3), ("VEEGAN (VEEGAN Table 1)", 8, 52.9),
              ("GAN (PacGAN Table 1)", 6.3, 98.2), ("PacGAN4 (PacGAN Table 1)", 7.8, 95.9)],
    "grid25": [("GAN (VEEGAN Table 1)", 3.3, 0.5), ("VEEGAN (VEEGAN Table 1)", 24.6, 40.0),
               ("GAN (PacGAN Table 1)", 17.3, 94.8), ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6)],
}


def table(record: dict) -> str:
    lines = [bench_modes.format_table(record)]
    for name, modes, hq in ANCHORS[record["data"]]:
        lines.append(f"| anchor: {name} | {modes} | {hq} | |")
    return "\n".join(lines)


def save_png(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(records[0]["samples"])
    fig, axes = plt.subplots(len(records), len(names), figsize=(3.0 * len(names), 3.2 * len(records)), squeeze=False)
    for row, record in zip(axes, records):
        reference = datasets.load(record["data"], "train", seed=0)
        centres, sigma = reference.centres, reference.sigma
        span = float(np.abs(centres).max()) * 1.4 + 3 * sigma
        for ax, name in zip(row, names):
            s = record["samples"][name]
            ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.3)
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", color="red", s=15)
            for c in centres:
                ax.add_patch(plt.Circle(c, 3 * sigma, fill=False, ls="--", color="red", lw=0.5))
            r = record["results"][name]
            ax.set_title(f"{record['data']} {name} (seed 0)\nmean modes {r['modes_captured']['mean']:.1f}, "
                         f"HQ {100 * r['high_quality_fraction']['mean']:.1f}%", fontsize=8)
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
            ax.set_aspect("equal")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--algorithms", default=",".join(bench_modes.MODE_ALGORITHMS))
    parser.add_argument("--data", default="ring8,grid25")
    parser.add_argument("--json", type=Path, default=RESULTS / "mode_coverage.json")
    parser.add_argument("--png", type=Path, default=RESULTS / "mode_coverage.png")
    args = parser.parse_args()
    start = time.time()
    records = []
    for data in args.data.split(","):
        record = bench_modes.run_modes(data, args.algorithms.split(","), args.seeds, args.steps, keep_samples=True)
        records.append(record)
        print(table(record), flush=True)
    save_png(records, args.png)
    out = {"wall_seconds": time.time() - start,
           "records": [{k: v for k, v in r.items() if k != "samples"} for r in records],
           "anchors": {d: [{"row": n, "modes_captured": m, "high_quality_percent": h} for n, m, h in rows]
                       for d, rows in ANCHORS.items()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json} and {args.png} in {out['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
