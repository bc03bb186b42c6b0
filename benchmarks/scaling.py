r"""Data-parallel scaling: VAE training images/s against 1, 2 and 4 forced host devices and the batch size.

The question: how does the trainer's throughput change with the number of devices of its
``"data"`` mesh and with the global batch? Every point trains the digits VAE (64-400-20, ReLU,
Bernoulli decoder, analytic KL; ``vae_model`` + ``vae``) with ``fit``, Adam 1e-3, 10 steps per
call, in a fresh process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
(JAX reads the flag once per process). ``FitResult.examples_per_second`` is the steady-state rate
(the compiling first call is not counted); each point is the median of ``--repeats`` fits of
``--steps`` steps, with their min and max.

On this machine the forced devices are not extra hardware: all N "devices" share the same 2
cores (shared with other jobs), and XLA's CPU backend already spreads one device's matmuls over
its threads. Splitting the batch over more devices therefore adds per-device dispatch and the
gradient all-reduce without adding compute, so images/s cannot rise with devices: it stays flat
within the noise, or falls. The device counts are measured one after the other (1, 2, 4), so a
change of the machine's load between them shows as a change with devices: read the spread. The
figure shows the mechanism runs, not a speed-up: a speed-up needs real devices (GPUs, TPU cores,
hosts).

    nice -n 5 python benchmarks/scaling.py                     # ~3-10 min on 2 shared cores
    nice -n 5 python benchmarks/scaling.py --quick --out /tmp/scaling
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEVICES = (1, 2, 4)
BATCH_SIZES = (64, 256, 1024)

CHILD = """
import json, sys
import jax
from unigen import data
from unigen.algorithms import vae
from unigen.models import vae_model
from unigen.training import fit, make_optimizer

batch_sizes, steps, repeats = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
train = data.load("digits", "train", binarize="static")
model = vae_model(data_dim=64, latent_dim=20, hidden=(400,))
rows = []
for batch_size in batch_sizes:
    rates = []
    for repeat in range(repeats):
        result = fit(vae(model), data.Batches(train, batch_size, seed=repeat), steps=steps,
                     optimizer=make_optimizer("adam", 1e-3), steps_per_call=10, progress=False)
        rates.append(result.examples_per_second)
    rows.append({"devices": jax.device_count(), "batch_size": batch_size, "images_per_second": rates})
print(json.dumps(rows))
"""


def measure(devices: int, batch_sizes, steps: int, repeats: int) -> list[dict]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(list(batch_sizes)), str(steps), str(repeats)],
                          env=env, capture_output=True, text=True, check=True, cwd=HERE.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(rows: list[dict]) -> list[dict]:
    return [{**row, "median": statistics.median(row["images_per_second"]), "min": min(row["images_per_second"]),
             "max": max(row["images_per_second"])} for row in rows]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for batch_size in sorted({row["batch_size"] for row in rows}):
        line = sorted((r for r in rows if r["batch_size"] == batch_size), key=lambda r: r["devices"])
        devices = [r["devices"] for r in line]
        axis.errorbar(devices, [r["median"] for r in line],
                      yerr=[[r["median"] - r["min"] for r in line], [r["max"] - r["median"] for r in line]],
                      marker="o", capsize=3, label=f"batch {batch_size}")
    axis.set_xticks(DEVICES)
    axis.set_xlabel("forced host devices (all on the same 2 shared cores)")
    axis.set_ylabel("images / s (median, min-max)")
    axis.set_title("VAE 64-400-20 on digits, data parallel")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="40 steps, 1 repeat")
    parser.add_argument("--out", default=str(HERE / "results"), help="directory of scaling.json and scaling.png")
    args = parser.parse_args()
    steps, repeats = (40, 1) if args.quick else (args.steps, args.repeats)
    load = os.getloadavg()
    rows = summarize([row for devices in DEVICES for row in measure(devices, BATCH_SIZES, steps, repeats)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"question": "VAE training images/s against forced host devices and batch size",
              "steps": steps, "repeats": repeats, "cores": os.cpu_count(), "load_average_before": load,
              "load_average_after": os.getloadavg(), "rows": rows}
    (out / "scaling.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(rows, out / "scaling.png")
    print(f"load average {load[0]:.1f} before, {record['load_average_after'][0]:.1f} after; {os.cpu_count()} cores")
    print(f"{'devices':>7} {'batch':>6} {'images/s':>10} {'min':>9} {'max':>9}")
    for row in rows:
        print(f"{row['devices']:>7} {row['batch_size']:>6} {row['median']:>10.0f} {row['min']:>9.0f} {row['max']:>9.0f}")


if __name__ == "__main__":
    main()
