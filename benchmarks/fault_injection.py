"""Does rerunning the same ``unigen train ... --resume`` after a SIGKILL always reproduce the run?

One uninterrupted reference run of a tiny VAE on the built-in digits, then chains of runs in one
``--out``: each run is SIGKILLed at a random moment (a random time after its start, a random
number of logged steps plus a random delay, or inside a checkpoint save, paused there by the
test hook ``UNIGEN_TEST_PAUSE_BEFORE_RECORD``), and the same command is rerun with ``--resume``;
after the chain's last kill the rerun goes to the end. A chain survives when every rerun either
was killed or exited 0, and the end state is bit-identical to the reference: every parameter
array, every ``metrics.jsonl`` row (but its ``wall_seconds``) and ``summary.json`` (but its
timings). A kill counts as survived when its chain survived; only kills of a run that had not finished
count (a chain whose run finished on its own stops there).

    nice -n 10 python benchmarks/fault_injection.py --kills 100 [--chain 5] [--seed 0] [--minutes M] [--json FILE]

``tests/test_faults.py`` runs the same harness with 6 random kills and one inside a save.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Small enough that a run is mostly start-up, with 6 checkpoints and 12 calls to land in.
COMMAND = ["train", "vae", "--steps", "60", "--batch-size", "50", "--hidden", "16", "--latent-dim", "2",
           "--eval-k", "5", "--steps-per-call", "5", "--checkpoint-every", "10", "--no-progress"]
TIMINGS = ("images_per_second", "wall_seconds")
PAUSE = "UNIGEN_TEST_PAUSE_BEFORE_RECORD"


def start(out: Path, resume: bool, pause: float | None = None, stderr: Path | None = None) -> subprocess.Popen:
    """``python -m unigen.cli train ...`` into ``out``; stderr to the file ``stderr``."""
    env = {k: v for k, v in os.environ.items() if k != PAUSE}
    env["XLA_FLAGS"] = ""
    if pause is not None:
        env[PAUSE] = str(pause)
    command = [sys.executable, "-m", "unigen.cli", *COMMAND, "--out", str(out), *(["--resume"] if resume else [])]
    stderr = stderr or out.parent / f"{out.name}.stderr"
    with open(stderr, "w") as log:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)


def run_to_end(out: Path, resume: bool) -> int:
    process = start(out, resume)
    return process.wait(timeout=900)


def outcome(out: Path) -> dict[str, Any]:
    """The end state of a run: its parameters, metrics rows and summary, without timings."""
    from unigen import cli

    _, _, params = cli._load_run(out)
    import jax

    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_seconds", None)
    summary = json.loads((out / "summary.json").read_text())
    return {"params": leaves, "rows": rows, "summary": {k: v for k, v in summary.items() if k not in TIMINGS}}


def differences(found: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """What differs between two outcomes (empty: bit-identical)."""
    problems = []
    if len(found["params"]) != len(reference["params"]) or not all(
        a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        for a, b in zip(found["params"], reference["params"])
    ):
        problems.append("parameters differ")
    if found["rows"] != reference["rows"]:
        steps = [row.get("step") for row in found["rows"]]
        problems.append(f"metrics.jsonl differs ({len(steps)} rows, steps {steps[:3]}...{steps[-3:]})")
    if found["summary"] != reference["summary"]:
        problems.append(f"summary.json differs: {found['summary']} vs {reference['summary']}")
    return problems


def kill_at(process: subprocess.Popen, out: Path, moment: tuple) -> bool:
    """Stops ``process`` at ``moment``; True if it was still running then (a real kill).

    SIGKILL at ``("time", s)``: ``s`` seconds after start; ``("rows", n, s)``: ``s`` seconds
    after ``metrics.jsonl`` holds ``n`` rows; ``("save",)``: while a step directory has no
    SHA-256 record yet (the run must have been started with the pause hook). ``("sigterm", n)``:
    SIGTERM after ``n`` rows; ``("twice",)``: two SIGINTs 50 ms apart inside a save.
    """
    began = time.time()
    while process.poll() is None:
        kind = moment[0]
        if kind == "time" and time.time() - began >= moment[1]:
            break
        if kind == "rows" and _rows(out) >= moment[1]:
            time.sleep(moment[2])
            break
        if kind == "sigterm" and _rows(out) >= moment[1] and _written_since(out / "metrics.jsonl", began):
            break  # this run is in training: fit has rewritten or appended metrics.jsonl
        if kind in ("save", "twice") and _saving(out, began):
            break
        if time.time() - began > 600:
            break
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    if moment[0] == "sigterm":
        process.send_signal(signal.SIGTERM)
    elif moment[0] == "twice":
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        process.send_signal(signal.SIGINT)
    else:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=600)
    return True


def _rows(out: Path) -> int:
    try:
        return (out / "metrics.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def _written_since(path: Path, began: float) -> bool:
    try:
        return path.stat().st_mtime > began
    except OSError:
        return False


def _saving(out: Path, began: float) -> bool:
    """Whether this run (started at ``began``) has a step directory without its SHA-256 record
    (not one a killed run left behind, which the run discards when it starts)."""
    try:
        return any(p.name.isdigit() and not (p / "unigen_sha256.json").exists() and _written_since(p, began)
                   for p in (out / "checkpoints").iterdir())
    except OSError:
        return False


def random_moment(rng: np.random.Generator, lifetime: float) -> tuple:
    """Half of the kills at a random time in the first 80% of a run's life (``lifetime``: the
    reference run's), half at a random logged step."""
    if rng.random() < 0.5:
        return ("time", float(rng.uniform(0.0, 0.8 * lifetime)))
    return ("rows", int(rng.integers(1, 61)), float(rng.uniform(0.0, 0.3)))


EXPECTED_STATUS = {"sigterm": 143, "twice": 130}


def chain(out: Path, moments: list[tuple], reference: dict[str, Any]) -> dict[str, Any]:
    """Runs, stops and reruns with --resume in ``out`` at ``moments``, then to the end; compares."""
    kills, problems, landed = 0, [], []
    for index, moment in enumerate(moments):
        if (out / "summary.json").exists():
            break  # the run finished on its own: the moments left would only stop no-op reruns
        pause = 60.0 if moment[0] in ("save", "twice") else None
        stderr = out.parent / f"{out.name}.{index}.stderr"
        process = start(out, resume=index > 0, pause=pause, stderr=stderr)
        landed.append(kill_at(process, out, moment))
        if landed[-1]:
            kills += 1
            problems += _signal_problems(moment, process.returncode, stderr.read_text(), out)
        elif process.returncode != 0:
            problems.append(f"run {index} exited {process.returncode} on its own: {stderr.read_text()[-300:]}")
    code = run_to_end(out, resume=True)
    if code != 0:
        problems.append(f"the last --resume exited {code}: {(out.parent / f'{out.name}.stderr').read_text()[-300:]}")
    else:
        problems += differences(outcome(out), reference)
    missed = [list(m) for m, hit in zip(moments, landed + [False] * len(moments)) if not hit]
    return {"kills": kills, "moments": [list(m) for m in moments], "missed": missed, "problems": problems}


def _signal_problems(moment: tuple, status: int, stderr: str, out: Path) -> list[str]:
    """A signalled run must exit 130/143 with one line on stderr and leave no temporary directory."""
    if moment[0] not in EXPECTED_STATUS:
        return []
    problems = []
    if status != EXPECTED_STATUS[moment[0]]:
        problems.append(f"{moment[0]}: exit status {status}, expected {EXPECTED_STATUS[moment[0]]}")
    # The one line printed when training starts (platform and devices) is not part of the stop.
    lines = [line for line in stderr.splitlines() if not line.startswith("unigen: platform ")]
    if len(lines) != 1 or "Traceback" in stderr:
        problems.append(f"{moment[0]}: expected one line on stderr, got {stderr[-500:]!r}")
    left = [p.name for p in (out / "checkpoints").glob("*") if "tmp" in p.name or not (p / "unigen_sha256.json").exists()]
    if left:
        problems.append(f"{moment[0]}: left {left} in checkpoints/")
    return problems


def reference_run(directory: Path) -> tuple[dict[str, Any], float]:
    out = directory / "reference"
    began = time.time()
    code = run_to_end(out, resume=False)
    if code != 0:
        raise SystemExit(f"the reference run exited {code}: {(directory / 'reference.stderr').read_text()[-2000:]}")
    return outcome(out), time.time() - began


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs to land in all (default 100)")
    parser.add_argument("--chain", type=int, default=5, help="kills per chain before the run is let finish")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here too")
    parser.add_argument("--keep", help="keep the run directories of failed chains here")
    parser.add_argument("--minutes", type=float, help="stop starting chains after this many minutes")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    began = time.time()
    with tempfile.TemporaryDirectory(prefix="unigen-faults-") as scratch:
        directory = Path(scratch)
        reference, lifetime = reference_run(directory)
        print(f"reference run: {lifetime:.1f} s", flush=True)
        chains, kills, survived = [], 0, 0
        while kills < args.kills and (args.minutes is None or time.time() - began < 60 * args.minutes):
            moments = [random_moment(rng, lifetime) for _ in range(args.chain)]
            if len(chains) % 4 == 0:
                moments[int(rng.integers(len(moments)))] = ("save",)
            out = directory / f"chain{len(chains)}"
            result = chain(out, moments, reference)
            chains.append(result)
            kills += result["kills"]
            survived += result["kills"] if not result["problems"] else 0
            print(f"chain {len(chains)}: {result['kills']} kills, "
                  f"{'survived' if not result['problems'] else 'FAILED: ' + '; '.join(result['problems'])}", flush=True)
            if result["problems"] and args.keep:
                shutil.copytree(out, Path(args.keep) / out.name, dirs_exist_ok=True)
            shutil.rmtree(out, ignore_errors=True)
    record = {"kills_tried": kills, "kills_survived": survived, "chains": len(chains),
              "chains_survived": sum(not c["problems"] for c in chains), "seconds": round(time.time() - began, 1),
              "command": COMMAND, "details": chains}
    print(f"survived/tried: {survived}/{kills} kills, {record['chains_survived']}/{len(chains)} chains "
          f"({record['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
