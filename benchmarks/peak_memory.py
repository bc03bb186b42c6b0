"""Peak resident memory of a command and every process it starts (issue [10] part 5).

Runs the command given after ``--`` and samples, every ``--interval`` seconds, the resident set
size (RSS) of the command's process and all its descendants (``psutil``). Reports the largest
sum over the tree seen at one sample (what the machine had to hold at once) and the largest
single process, with the sample count; a peak shorter than the interval can be missed, so the
numbers are lower bounds. The kernel's own high-water mark of the largest process
(``ru_maxrss`` of the waited children) is printed next to them as a check.

Run::

    python benchmarks/peak_memory.py -- python -m pytest -q tests/test_cli.py tests/test_trainer.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil


def tree_rss(root: psutil.Process) -> tuple[int, int]:
    """``(sum, largest)`` RSS in bytes over ``root`` and its descendants (gone ones skipped)."""
    total = largest = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            rss = process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples (default 0.2)")
    parser.add_argument("--json", type=Path, help="where to write the result")
    parser.add_argument("command", nargs="+", help="the command, after --")
    args = parser.parse_args(argv)
    began = time.time()
    child = subprocess.Popen(args.command)
    root = psutil.Process(child.pid)
    peak_total = peak_single = samples = 0
    while child.poll() is None:
        try:
            total, largest = tree_rss(root)
        except psutil.NoSuchProcess:
            break
        peak_total, peak_single, samples = max(peak_total, total), max(peak_single, largest), samples + 1
        time.sleep(args.interval)
    code = child.wait()
    kernel = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports kB
    result = {"command": args.command, "exit_code": code, "seconds": round(time.time() - began, 1),
              "samples": samples, "peak_tree_rss_bytes": peak_total, "peak_process_rss_bytes": peak_single,
              "kernel_max_rss_bytes": kernel}
    print(f"exit {code} after {result['seconds']} s, {samples} samples: peak RSS of the process tree "
          f"{peak_total / 1e9:.2f} GB, largest process {peak_single / 1e9:.2f} GB (kernel ru_maxrss "
          f"{kernel / 1e9:.2f} GB)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
