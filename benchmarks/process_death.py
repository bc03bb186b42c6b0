r"""How long the survivors of a multi-process run take to stop when one process dies (issue [10]).

Two ``unigen train`` processes (one CPU device each, gloo collectives, coordinator on 127.0.0.1)
train the tiny ring8 VAE for many steps; once the first checkpoint exists, one of them is killed
with SIGKILL and the time until the other exits is measured (monotonic clock, polled every 10 ms).

- Killing process 1: process 0 notices through unigen's heartbeat watchdog (or a failed
  collective) and exits with one line and status 1; the bound README states is the heartbeat
  timeout plus about a second.
- Stopping process 1 (SIGSTOP: it hangs with its connections open, so no collective fails):
  process 0 notices only through the heartbeat watchdog, after the heartbeat timeout.
- Killing process 0 (which hosts JAX's coordination service): JAX's runtime ends process 1 itself
  (SIGABRT, its own message); README states how fast.

    nice -n 5 python benchmarks/process_death.py                       # 3 repeats of each, timeout 10 s
    python benchmarks/process_death.py --repeats 1 --heartbeat-timeout 5 --json /tmp/death.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["vae", "--data", "ring8", "--batch-size", "16", "--hidden", "8", "--latent-dim", "2", "--eval-k", "10",
        "--steps-per-call", "5", "--checkpoint-every", "10", "--steps", "1000000", "--no-progress"]


CASES = (("kill", 1), ("stop", 1), ("kill", 0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_death(victim: int, timeout: float, how: str = "kill") -> dict:
    """Start two processes; after the first checkpoint send ``victim`` SIGKILL (``how="kill"``) or
    SIGSTOP (``"stop"``: a process that hangs, its connections open); time the survivor's exit."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", UNIGEN_COMPILATION_CACHE="0")
        processes = [subprocess.Popen(
            [sys.executable, "-m", "unigen", "train", *TINY, "--out", str(out), "--heartbeat-timeout", str(timeout),
             "--coordinator", f"127.0.0.1:{port}", "--process-id", str(i), "--num-processes", "2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
        try:
            deadline = time.monotonic() + 300
            while not (out / "checkpoints" / "10").is_dir():
                if any(p.poll() is not None for p in processes):
                    for p in processes:
                        if p.poll() is None:
                            p.kill()
                    raise SystemExit("a process ended before training:\n" + "\n".join(
                        f"process {i}: {p.communicate()[1][-2000:]}" for i, p in enumerate(processes)))
                if time.monotonic() > deadline:
                    raise SystemExit("no checkpoint after 300 s")
                time.sleep(0.05)
            survivor = processes[1 - victim]
            processes[victim].send_signal(signal.SIGKILL if how == "kill" else signal.SIGSTOP)
            killed = time.monotonic()
            while survivor.poll() is None and time.monotonic() - killed < timeout * 3 + 120:
                time.sleep(0.01)
            took = time.monotonic() - killed
            if survivor.poll() is None:
                survivor.kill()
            err = survivor.communicate()[1]
        finally:
            for p in processes:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    return {"victim": victim, "how": how, "seconds": took, "exit_status": survivor.returncode,
            "stderr_lines": len(lines), "last_line": lines[-1][:400] if lines else None, "first_error": next((l for l in lines if "error" in l.lower()), None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--heartbeat-timeout", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="where to write the rows")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = []
    for repeat in range(args.repeats):
        for how, victim in CASES:
            row = one_death(victim, args.heartbeat_timeout, how)
            rows.append(row)
            print(f"{how} process {victim}: the other exited {row['seconds']:.2f} s later, status "
                  f"{row['exit_status']}, {row['stderr_lines']} stderr lines; {row['first_error']}", flush=True)
    load_after = os.getloadavg()[0]
    for how, victim in CASES:
        times = [r["seconds"] for r in rows if r["victim"] == victim and r["how"] == how]
        print(f"{how} process {victim}: median {statistics.median(times):.2f} s [{min(times):.2f}, {max(times):.2f}] "
              f"with --heartbeat-timeout {args.heartbeat_timeout:g}")
    print(f"load average before {load_before:.2f}, after {load_after:.2f} ({os.cpu_count()} cores)")
    if args.json:
        args.json.write_text(json.dumps({"heartbeat_timeout": args.heartbeat_timeout, "rows": rows,
                                         "load_before": load_before, "load_after": load_after}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
