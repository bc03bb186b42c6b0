"""Mode coverage on ring8 and grid25 (issue [4] part 6) beside VEEGAN's and PacGAN's Table 1.

    python benchmarks/mode_coverage.py                       # 5 seeds x 6 algorithms x 2 data sets, 40,000 steps
    python benchmarks/mode_coverage.py --seeds 2 --steps 500 --json /tmp/m.json --png /tmp/m.png   # smoke

Runs :func:`unigen.bench_modes.run_modes` (same networks and step budget for every algorithm; see
its docstring) and writes benchmarks/results/mode_coverage.{json,png}: the JSON holds both data
sets' records and the published anchors; the PNG has one row per data set, one panel per algorithm
(seed 0's 2,500 samples over the true modes, with 3 sigma circles).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from unigen import bench_modes

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


def _run(job: tuple) -> dict:
    data, algorithms, seeds, steps = job
    return bench_modes.run_modes(data, algorithms, seeds, steps, keep_samples=True, progress=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=bench_modes.STEPS)
    parser.add_argument("--algorithms", default=",".join(bench_modes.MODE_ALGORITHMS))
    parser.add_argument("--data", default="ring8,grid25")
    parser.add_argument("--jobs", type=int, default=2, help="data sets trained at once, one process each")
    parser.add_argument("--json", type=Path, default=RESULTS / "mode_coverage.json")
    parser.add_argument("--png", type=Path, default=RESULTS / "mode_coverage.png")
    args = parser.parse_args()
    start = time.time()
    names = args.data.split(",")
    jobs = [(data, args.algorithms.split(","), args.seeds, args.steps) for data in names]
    if args.jobs > 1 and len(jobs) > 1:  # one process per data set ("spawn": JAX and fork do not mix)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(args.jobs, len(jobs)), mp_context=context) as pool:
            records = list(pool.map(_run, jobs))
    else:
        records = [_run(job) for job in jobs]
    for record in records:
        print(table(record), flush=True)
    args.png.parent.mkdir(parents=True, exist_ok=True)
    bench_modes.save_panels(records, args.png)
    out = {"wall_seconds": time.time() - start,
           "records": [{k: v for k, v in r.items() if k != "samples"} for r in records],
           "anchors": {d: [{"row": n, "modes_captured": m, "high_quality_percent": h} for n, m, h in rows]
                       for d, rows in ANCHORS.items()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json} and {args.png} in {out['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
