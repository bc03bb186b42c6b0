"""The transfers of Hu et al. 2018 (§4) against their parents: IWGAN vs GAN, AAVAE vs VAE.

    python benchmarks/transfer.py                 # 5 seeds, 5,000 GAN steps on ring8, 2,000 VAE steps on digits
    python benchmarks/transfer.py --quick         # 3 seeds, 300 / 200 steps (a smoke run, minutes)

Every run goes through the recipe registry exactly as ``unigen train NAME`` does (same options
for a transfer and its parent: networks, batch, optimizer, steps, seed), and reads the run's
``summary.json``: for the GAN family the mode coverage of its 2,500 samples on ring8
(modes captured, % high quality, reverse KL; VEEGAN/PacGAN definition), for the VAE family the
test IS-NLL and test ELBO on the digits test split. Prints mean ± standard error over the seeds,
and the paired per-seed differences (transfer − parent), and writes
``benchmarks/results/transfer.json``. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from unigen import cli

RESULTS = Path(__file__).parent / "results"
PAIRS = {
    "gan": ("gan", "iwgan", ["--data", "ring8", "--batch-size", "100", "--hidden", "128,128", "--b1", "0.5"], [],
            ("modes_captured", "high_quality_fraction", "reverse_kl")),
    "vae": ("vae", "aavae", ["--data", "digits", "--batch-size", "100", "--hidden", "128", "--latent-dim", "8",
                             "--eval-k", "100"], ["--kl", "monte_carlo"],  # the AAVAE's KL is Monte Carlo too
            ("is_nll", "test_elbo")),
}
"""family -> (parent, transfer, shared options, the parent's own options, summary metrics compared)."""


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def run(name: str, options: list[str], seed: int, steps: int, root: Path) -> dict:
    out = root / f"{name}-{seed}"
    argv = ["train", name, *options, "--steps", str(steps), "--seed", str(seed), "--out", str(out),
            "--no-progress", "--steps-per-call", "50", "--checkpoint-every", str(steps)]
    code = cli.main(argv)
    if code != 0:
        raise SystemExit(f"unigen {' '.join(argv)} exited {code}")
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 300 GAN / 200 VAE steps")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--gan-steps", type=int, default=None)
    parser.add_argument("--vae-steps", type=int, default=None)
    parser.add_argument("--families", default="gan,vae")
    parser.add_argument("--json", type=Path, default=RESULTS / "transfer.json")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 5)
    steps = {"gan": args.gan_steps or (300 if args.quick else 5000),
             "vae": args.vae_steps or (200 if args.quick else 2000)}
    start = time.time()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            parent, transfer, options, parent_only, metrics = PAIRS[family]
            per = {}
            for name, own in ((parent, options + parent_only), (transfer, options)):
                per[name] = [run(name, own, seed, steps[family], Path(tmp)) for seed in range(seeds)]
            rows = {}
            for metric in metrics:
                values = {name: [float(s[metric]) for s in per[name]] for name in per}
                differences = [t - p for t, p in zip(values[transfer], values[parent])]
                rows[metric] = {name: dict(zip(("mean", "se"), mean_se(v)), values=v) for name, v in values.items()}
                rows[metric]["difference"] = dict(zip(("mean", "se"), mean_se(differences)), values=differences)
            records.append({"family": family, "parent": parent, "transfer": transfer, "steps": steps[family],
                            "seeds": seeds, "options": options, "metrics": rows})
            print(f"\n{transfer} vs {parent}: {steps[family]} steps, {seeds} seeds, options {' '.join(options)}")
            print(f"| metric | {parent} | {transfer} | {transfer} − {parent} (paired) |\n|---|---:|---:|---:|")
            for metric, row in rows.items():
                cells = [f"{row[n]['mean']:.4g} ± {row[n]['se']:.2g}" for n in (parent, transfer, "difference")]
                print(f"| {metric} | " + " | ".join(cells) + " |", flush=True)
    out = {"wall_seconds": time.time() - start, "quick": args.quick, "records": records}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json} in {out['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
