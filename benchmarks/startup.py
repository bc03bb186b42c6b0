"""Start-up time of ``unigen train vae``: process start to the first finished step, and wall time.

Runs ``unigen train vae --steps 1 ...`` twice in fresh processes against one new, empty
persistent compilation cache: the first run compiles and fills it, the second loads from it. Each
process reports (through a small driver around ``unigen.__main__.run``, the console script's
entry point, so that the wall time includes the command's own exit):

* ``first step``: seconds from just before the process was started to the first row of
  ``metrics.jsonl`` (written once the first step's metrics are on the host, so the step is done);
* ``compile``: the seconds JAX spent tracing, lowering and compiling (or loading from the cache)
  before that point (its ``/jax/core/compile/*`` monitoring events);
* ``imports``: seconds to import ``unigen.cli``, ``jax`` and what they import;
* ``wall``: the whole command, evaluation and sample image included;
* ``CPU``: user + system seconds of the process (all threads), to the first step and in all: on
  a shared machine these move far less with the load than the wall-clock times.

Target (issue [10]): first step - compile <= 1.5 s; wall <= 5 s for a one-step run on digits.

Run::

    python benchmarks/startup.py                          # digits, --eval-k 1000 as default (~40 s)
    python benchmarks/startup.py --repeats 3 --json /tmp/s.json -- --data tfds:binarized_mnist \\
        --data-dir ../shared/data/tfds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: `benchmarks.` importable
from benchmarks import common  # noqa: E402

DEFAULT_JSON = common.RESULTS / "startup.json"

DRIVER = r"""
import json, sys, time
began, report = float(sys.argv[1]), sys.argv[2]
from jax import monitoring
compile_seconds = {"total": 0.0}
first = {}
def listen(event, duration, **kw):
    if event.startswith("/jax/core/compile/") and "at" not in first:
        compile_seconds["total"] += duration
monitoring.register_event_duration_secs_listener(listen)
import unigen.cli as cli
imported = time.time()
from unigen.training import logging as training_logging
write = training_logging.MetricsLog.write
def first_write(self, row):
    first.setdefault("at", time.time())
    first.setdefault("cpu", time.process_time())
    return write(self, row)
training_logging.MetricsLog.write = first_write
sys.argv[1:] = sys.argv[3:]
from unigen.__main__ import run
code = None
try:
    run()  # the console script's own start and end (an error exit ends the process at once)
except SystemExit as exited:
    code = exited.code
    raise
finally:
    with open(report, "w") as file:
        json.dump({"code": code, "imports": imported - began, "first_step": first.get("at", float("nan")) - began,
                   "compile": compile_seconds["total"], "cpu_first_step": first.get("cpu", float("nan"))}, file)
"""


def one_run(cache: Path, extra: list[str], out: Path) -> dict:
    env = {**os.environ, "UNIGEN_COMPILATION_CACHE": str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    report = out.with_suffix(".json")
    argv = ["train", "vae", "--steps", "1", "--no-progress", "--out", str(out), *extra]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.time()
    done = subprocess.run([sys.executable, "-c", DRIVER, repr(began), str(report), *argv], env=env,
                          capture_output=True, text=True, cwd=REPO)
    wall = time.time() - began
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"unigen train failed ({done.returncode}): {done.stderr[-2000:]}")
    row = json.loads(report.read_text())
    row["wall"] = wall
    row["cpu"] = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    row["beyond_compile"] = row["first_step"] - row["compile"]
    row["device_line"] = next((line for line in done.stderr.splitlines() if "platform" in line), "")
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="pairs of (first, second) runs, each with a new cache")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("extra", nargs="*", help="more `unigen train vae` options, after --")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            cache = Path(scratch) / f"cache{repeat}"
            for which in ("first", "second"):
                row = {"run": which, "repeat": repeat,
                       **one_run(cache, args.extra, Path(scratch) / f"run{repeat}-{which}")}
                rows.append(row)
                print(f"{which:<6} run: wall {row['wall']:5.2f} s (CPU {row['cpu']:5.2f} s), first step at "
                      f"{row['first_step']:5.2f} s (CPU {row['cpu_first_step']:5.2f} s; imports {row['imports']:.2f} s, "
                      f"compile {row['compile']:.2f} s, beyond compile {row['beyond_compile']:.2f} s)")
        print(rows[-1]["device_line"])
    load_after = os.getloadavg()
    print(f"command: unigen train vae --steps 1 --no-progress {' '.join(args.extra)}; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")
    report = {"benchmark": "startup", "command": ["unigen", "train", "vae", "--steps", "1", *args.extra],
              "rows": rows, "load_average_before": load_before, "load_average_after": load_after}
    return common.write_report(args.json, report)


if __name__ == "__main__":
    main()
