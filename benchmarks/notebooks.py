"""How long each notebook takes to run: wall clock and the kernel's CPU time, with the load average.

Issue 11's target: every notebook in ``notebooks/`` runs in <= 90 s on 2 CPU cores. Each repeat
executes a notebook from top to bottom in a fresh Jupyter kernel running this interpreter (as
``tests/test_notebooks.py`` does), and records:

* ``wall``: seconds from starting the kernel to its shutdown;
* ``cpu``: user + system seconds of the kernel process, all its threads included (read from the
  children this process has reaped);
* ``load``: the 1-minute load average before and after.

Reported per notebook: the median and the min-max over repeats. On a shared machine both numbers
grow with the load: the wall clock because the kernel waits for a core, the CPU time because
XLA's worker threads spin while they wait for each other. Measure on a quiet machine (load average
below the number of cores) to check the target; the JSON keeps the load beside every number.

Run::

    python benchmarks/notebooks.py                        # every notebook once
    python benchmarks/notebooks.py --repeats 3 01_belief_nets_and_wake_sleep.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
DEFAULT_JSON = REPO / "benchmarks" / "results" / "notebooks.json"
TARGET_SECONDS = 90.0
KERNEL = "unigen-bench-python"


def _kernel_directory() -> Path:
    """A temporary kernelspec directory whose one kernel runs this interpreter, figures inline."""
    root = Path(tempfile.mkdtemp(prefix="unigen-bench-kernels-"))
    (root / KERNEL).mkdir()
    (root / KERNEL / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "unigen benchmark", "language": "python",
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    }), encoding="utf-8")
    return root


def run_once(path: Path, kernels: Path) -> dict:
    """Executes the notebook at ``path`` once; its wall and kernel CPU seconds and the load."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    manager = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(
        kernel_dirs=[str(kernels)], ensure_native_kernel=False))
    client = NotebookClient(notebook, km=manager, timeout=1800, resources={"metadata": {"path": str(path.parent)}})
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    client.execute(cleanup_kc=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {"wall": wall, "cpu": cpu, "load_before": load_before, "load_after": os.getloadavg()[0]}


def summarize(runs: list[dict]) -> dict:
    walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
    return {"wall_median": statistics.median(walls), "wall_min": min(walls), "wall_max": max(walls),
            "cpu_median": statistics.median(cpus), "cpu_min": min(cpus), "cpu_max": max(cpus),
            "target_seconds": TARGET_SECONDS, "wall_target_met": statistics.median(walls) <= TARGET_SECONDS,
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook file names in notebooks/ (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    options = parser.parse_args(argv)
    names = options.names or sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    unknown = [name for name in names if not (NOTEBOOKS / name).is_file()]
    if unknown:
        parser.error(f"names: {unknown[0]!r} is not in {NOTEBOOKS}; expected one of "
                     f"{sorted(path.name for path in NOTEBOOKS.glob('*.ipynb'))}")
    if options.repeats < 1:
        parser.error(f"--repeats: expected a positive integer, got {options.repeats}")
    kernels = _kernel_directory()
    report = {"cores": os.cpu_count(), "repeats": options.repeats, "notebooks": {}}
    print(f"{'notebook':<40} {'wall s (min-max)':>20} {'kernel CPU s (min-max)':>24} {'load':>11}  target 90 s")
    for name in names:
        runs = [run_once(NOTEBOOKS / name, kernels) for _ in range(options.repeats)]
        row = report["notebooks"][name] = summarize(runs)
        loads = [r["load_before"] for r in runs] + [r["load_after"] for r in runs]
        print(f"{name:<40} {row['wall_median']:7.1f} ({row['wall_min']:.0f}-{row['wall_max']:.0f})"
              f"{row['cpu_median']:14.1f} ({row['cpu_min']:.0f}-{row['cpu_max']:.0f})"
              f"{min(loads):7.1f}-{max(loads):.1f}  {'met' if row['wall_target_met'] else 'not met'}", flush=True)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {options.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
