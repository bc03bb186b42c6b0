"""Kills, signals and reruns of ``unigen train ... --resume``: the run comes out bit for bit the same.

One uninterrupted reference run of a tiny VAE, then one chain of runs in another ``--out``: six
SIGKILLs at random moments (three at a random time of a run's start-up or training, three at a
random logged step plus a random delay), one SIGKILL inside a checkpoint save (paused there by
the test hook of :mod:`unigen.training.checkpoint`), one SIGTERM (exit 143, one line) and two
SIGINTs 50 ms apart inside a save (exit 130 at once, one line, no half-written checkpoint left);
after each the same command is rerun with ``--resume``, the last one to the end (moments that
came after their run had ended are tried again in a new chain). The oracle is
the reference run: every parameter array, every ``metrics.jsonl`` row but its wall time, and
``summary.json`` but its timings, equal. ``benchmarks/fault_injection.py`` does this for 100+ kills.
"""

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from unigen import cli

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import fault_injection  # noqa: E402


@pytest.mark.slow
def test_sigkill_sigterm_and_double_sigint_then_resume_reproduce_the_run_bit_for_bit(tmp_path):
    reference, lifetime = fault_injection.reference_run(tmp_path)
    rng = np.random.default_rng(7)
    # Ordered so that each stop lands further on: early times, then rising step counts.
    times = sorted(float(t) for t in rng.uniform(0.0, 0.4 * lifetime, size=3))
    rows = sorted(int(n) for n in rng.integers(5, 56, size=3))
    moments = [("time", t) for t in times[:2]]
    moments += [("rows", rows[0], float(rng.uniform(0, 0.3))), ("save",), ("time", times[2])]
    moments += [("rows", rows[1], float(rng.uniform(0, 0.3))), ("sigterm", rows[1] + 5), ("twice",)]
    moments += [("rows", rows[2], float(rng.uniform(0, 0.3)))]
    # A moment that came after its run had ended (the load fell, and a run took less time than the
    # reference's) is tried again in a new chain, at most twice, so that the kills do land.
    kills, missed = 0, moments
    for attempt in range(3):
        result = fault_injection.chain(tmp_path / f"chain{attempt}", [tuple(m) for m in missed], reference)
        assert result["problems"] == [], result
        kills, missed = kills + result["kills"], result["missed"]
        if not missed:
            break
    assert kills >= 8, (kills, missed)  # at most one stop may come after its run ended, thrice


def test_an_interrupt_before_training_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    def interrupted(options):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train", interrupted)
    assert cli.main(["train", "vae", "--out", str(tmp_path / "new")]) == 130
    err = capsys.readouterr().err
    assert err == "unigen: interrupted by SIGINT (rerun a train command with --resume to continue)\n"


START = ("import unigen.__main__ as start; print('started', flush=True); start.run()")
"""What the console script ``unigen`` does (import :mod:`unigen.__main__`, call its ``run``), with a
line on stdout once the import has installed the signal handlers: the moments below count from there,
not from the interpreter's own start-up (before it, a signal is Python's to handle)."""


@pytest.mark.parametrize("signal_name, delays, status", [
    ("SIGINT", (0.0, 0.02, 0.05, 0.1, 0.2, 0.4), 130),
    ("SIGTERM", (0.0, 0.1), 143),
])
def test_a_signal_while_the_command_imports_is_one_line_and_its_exit_status(signal_name, delays, status, tmp_path):
    import signal
    import subprocess
    import time

    for delay in delays:
        out = tmp_path / f"run-{delay}"
        command = [sys.executable, "-c", START, "train", "vae", "--steps", "2", "--batch-size", "50", "--hidden", "8",
                   "--latent-dim", "2", "--eval-k", "2", "--no-progress", "--out", str(out)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout.readline() == "started\n"
        time.sleep(delay)
        process.send_signal(getattr(signal, signal_name))
        _, err = process.communicate(timeout=300)
        assert (process.returncode, len(err.splitlines())) == (status, 1), (delay, err)
        assert err.startswith("unigen: interrupted") and signal_name in err and "Traceback" not in err, (delay, err)
        assert not out.exists(), delay  # nothing written


def _tmpfs(tmp_path, options):
    """A tmpfs mounted with ``options`` (root may mount one; a read-only directory would not stop
    root from writing, a read-only file system does)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs."""
    yield from _tmpfs(tmp_path, "size=2m")


@pytest.fixture
def read_only_disk(tmp_path):
    """A read-only tmpfs."""
    yield from _tmpfs(tmp_path, "ro,size=1m")


def test_an_out_on_a_read_only_file_system_is_one_line_saying_so(read_only_disk, capsys):
    assert cli.main(["train", "vae", "--steps", "2", "--out", str(read_only_disk / "run")]) == 2
    assert capsys.readouterr().err == (
        f"unigen: error: --out: {read_only_disk} cannot be written (Read-only file system); expected a "
        f"writable directory to hold {read_only_disk / 'run'}\n")
    assert list(read_only_disk.iterdir()) == []


@pytest.mark.slow
def test_a_full_disk_is_one_error_line_naming_the_step_and_keeps_the_last_complete_checkpoint(small_disk, capsys):
    """A VAE with 400 hidden units (~0.5 MB a checkpoint) on a 2 MB disk: steps 10, 20 and 30 fit, the
    save of 40 does not. Exit 2, the last line names the step directory and step 30, no half-written
    save is left, and --resume goes on from 30 (and meets the full disk again at 40); once the disk has
    room, --resume goes on from 30 to the end."""
    from unigen.training import rundir

    out = small_disk / "run"
    command = ["train", "vae", "--steps", "60", "--batch-size", "50", "--hidden", "400", "--latent-dim", "2",
               "--eval-k", "2", "--checkpoint-every", "10", "--steps-per-call", "5", "--no-progress", "--out", str(out)]
    for resume in ([], ["--resume"]):
        assert cli.main(command + resume) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("unigen: platform ")]
        assert len(lines) == 1, lines  # no "Event loop is closed" tracebacks from orbax's writes
        assert lines[0].startswith(f"unigen: error: {out}/checkpoints/40: cannot be written (No space left on device)")
        assert lines[0].endswith("the last good checkpoint is step 30"), lines[0]
        assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["10", "20", "30"]
        assert rundir.complete_checkpoint(out) == 30
    # Space freed (the disk grown): the same command with --resume goes on from 30 to the end.
    assert subprocess.run(["mount", "-o", "remount,size=30m", str(small_disk)], capture_output=True).returncode == 0
    assert cli.main(command + ["--resume"]) == 0
    assert rundir.complete_checkpoint(out) == 60
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 61))


def test_a_save_that_meets_a_full_disk_leaves_no_write_running_and_prints_nothing(small_disk, capfd, monkeypatch):
    """Eight incompressible 320 KB arrays (~2.6 MB a save, in concurrent tensorstore writes) on a
    2 MB disk: a save fails part-way. Orbax closes its event loops while the other writes are pending;
    without :mod:`unigen.training.settled` each of them then raises "Event loop is closed" in a
    tensorstore thread (an unraisable exception, a traceback on stderr). Here: one StorageError,
    no unraisable exception, nothing on fd 2, no orbax thread alive, no save cut short left, and the
    last complete checkpoint restores exactly."""
    from unigen.errors import StorageError
    from unigen.training.checkpoint import Checkpoints

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(repr(u.exc_value)))
    rng = np.random.default_rng(0)
    small = {f"w{i}": rng.standard_normal((100, 100)).astype(np.float32) for i in range(8)}  # 320 KB in all
    large = {f"w{i}": rng.standard_normal((100, 800)).astype(np.float32) for i in range(8)}  # 2.6 MB
    policy = asyncio.get_event_loop_policy()
    checkpoints = Checkpoints(small_disk / "checkpoints", discard_incomplete=True)
    checkpoints.save(1, small)
    with pytest.raises(StorageError, match=r"checkpoints/2: cannot be written \(No space left on device\)"):
        checkpoints.save(2, large)
    time.sleep(1.0)  # writes left running would complete (and complain) by now
    assert unraisable == []
    assert asyncio.get_event_loop_policy() is policy  # put back after each save
    assert capfd.readouterr().err == ""
    assert [t.name for t in threading.enumerate() if type(t).__module__.startswith("orbax") and t.is_alive()] == []
    assert sorted(p.name for p in (small_disk / "checkpoints").iterdir()) == ["1"]
    restored = checkpoints.restore(small)
    assert all(np.array_equal(restored[name], small[name]) for name in small)
    checkpoints.close()


@pytest.mark.filterwarnings("ignore:coroutine 'wait_for' was never awaited")  # the loop closed without settling
@pytest.mark.parametrize("settling, expected", [(True, []), (False, ["Event loop is closed"])])
def test_a_loop_made_inside_settled_waits_for_a_result_from_another_thread_before_closing(settling, expected):
    """What tensorstore does to orbax's loops, in miniature: a thread hands a result to a loop after
    its owner closed it. Made inside ``settled()``, the loop first runs until its task has the
    result; made outside, handing it over fails as in the full-disk saves above."""
    import contextlib

    from unigen.training.settled import settled

    errors = []

    def later(loop, future):
        time.sleep(0.2)
        try:
            loop.call_soon_threadsafe(future.set_result, "written")
        except RuntimeError as error:
            errors.append(str(error))

    with settled() if settling else contextlib.nullcontext():
        loop = asyncio.new_event_loop()
        future = loop.create_future()
        task = loop.create_task(asyncio.wait_for(future, None))
        writer = threading.Thread(target=later, args=(loop, future))
        writer.start()
        loop.close()
    writer.join()
    assert errors == expected
    assert task.done() == settling and (not settling or task.result() == "written")


LOST_IN_A_GC_CALLBACK = """
import gc, os, signal, sys, time
from unigen import cli
signal.signal(signal.SIGINT, cli._interrupted)
cli._READY.append(True)
if sys.argv[1] == "hook":
    cli.redeliver_lost_signals()
sent = []
def callback(phase, info):  # the signal arrives while a gc callback runs: its handler raises there
    if phase == "start" and not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
gc.callbacks.append(callback)
try:
    gc.collect()
    for _ in range(200):
        time.sleep(0.01)
    print("lost")
except KeyboardInterrupt:
    print("taken")
"""


@pytest.mark.parametrize("hook, expected", [("hook", "taken"), ("none", "lost")])
def test_a_signal_whose_exception_a_gc_callback_swallowed_is_delivered_again(hook, expected):
    """The oracle is Python's own behaviour: without the command's hook, the KeyboardInterrupt a
    signal handler raises inside a garbage-collection callback is dropped ("Exception ignored")
    and the program goes on; with it, the signal is sent again and taken outside the callback."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", LOST_IN_A_GC_CALLBACK, hook], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == expected, (done.stdout, done.stderr)
