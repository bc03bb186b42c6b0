"""Several hosts through the command line (issue [10] parts 1, 2 and 7).

Two processes joined on 127.0.0.1 (gloo collectives), each with two forced CPU devices, must train
the same parameters as one process with four devices and as one process with one device on the
same global batch; a checkpoint of the two-process run resumes in one process; killing one
process ends the other with one line; ``--precision bfloat16`` and the option refusals.

The oracle of the parameter equality is the one-device run (no collective at all): data
parallelism only splits each global batch, so every run must reach the same numbers up to
float32 summation order. "Relative" below is max |a - b| / max |b| per array.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from unigen import cli
from unigen.errors import ConfigError
from unigen.training import hosts, runtime
from unigen.training.checkpoint import MANIFEST, PAUSE_BEFORE_RECORD

REPO = Path(__file__).resolve().parent.parent
TINY = ["vae", "--data", "ring8", "--batch-size", "16", "--hidden", "8", "--latent-dim", "2", "--eval-k", "10",
        "--steps-per-call", "5", "--checkpoint-every", "10", "--no-progress"]
RELATIVE = 1e-5
HEARTBEAT = 5  # seconds, for the death test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(out: Path, *args: str, devices: int, process: tuple[int, int, int] | None = None,
           env: dict | None = None) -> subprocess.Popen:
    """``unigen train`` in a fresh process with ``devices`` forced CPU devices; ``process`` is
    ``(port, process_id, num_processes)``."""
    env = dict(os.environ, **(env or {}), XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    command = [sys.executable, "-m", "unigen.cli", "train", *TINY, "--out", str(out), *args]
    if process is not None:
        port, index, count = process
        command += ["--coordinator", f"127.0.0.1:{port}", "--process-id", str(index), "--num-processes", str(count)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def _finish(*processes: subprocess.Popen) -> list[str]:
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        outputs.append(out.strip().splitlines()[-1])  # gloo prints its connections on stdout first
    return outputs


def _train(out: Path, *args: str, devices: int = 1, processes: int = 1) -> list[str]:
    if processes == 1:
        return _finish(_start(out, *args, devices=devices))
    port = _free_port()
    return _finish(*[_start(out, *args, devices=devices, process=(port, i, processes)) for i in range(processes)])


def _params(run: Path) -> dict:
    _, _, params = cli._load_run(run)
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(params)}


def _assert_close(found: dict, expected: dict, tolerance: float = RELATIVE) -> None:
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        error = np.max(np.abs(found[name] - value)) / np.max(np.abs(value))
        assert error <= tolerance, f"{name}: relative error {error:.3g} > {tolerance:g}"


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> tuple[Path, dict]:
    """The oracle: 20 steps on one device in one process (in this process), and its parameters."""
    out = tmp_path_factory.mktemp("one") / "run"
    assert cli.main(["train", *TINY, "--steps", "20", "--out", str(out)]) == 0
    return out, _params(out)


LATE = 40  # seconds: process 1 reaches its first step this late, beyond gloo's 30 s to connect


@pytest.mark.slow
def test_two_processes_of_two_devices_match_four_devices_and_one(tmp_path, one_device):
    four, hosts2 = tmp_path / "four", tmp_path / "hosts"
    # Process 1 comes to its first collective LATE s after process 0, as a process that compiles
    # slowly on a loaded machine does; gloo gives up connecting after 30 s, so the processes meet
    # at a barrier first (hosts.wait_for_all). Without it this run fails with DEADLINE_EXCEEDED.
    port = _free_port()
    two_lines = _finish(*[_start(hosts2, "--steps", "20", devices=2, process=(port, i, 2),
                                 env={hosts.PAUSE_BEFORE_BARRIER: str(LATE)} if i == 1 else None) for i in range(2)])
    _train(four, "--steps", "20", devices=4)
    assert json.loads(two_lines[1]) == {"process_id": 1, "steps": 20}  # process 1 reports, process 0 writes
    assert json.loads(two_lines[0])["steps"] == 20
    _, expected = one_device
    _assert_close(_params(four), expected)
    _assert_close(_params(hosts2), expected)
    rows = [json.loads(line) for line in (hosts2 / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 21))  # written once, by process 0
    assert not list(hosts2.rglob("*process_1*"))  # process 1 wrote no checkpoint files


@pytest.mark.slow
def test_a_killed_process_ends_the_other_in_one_line_and_one_process_resumes_the_run(tmp_path, one_device):
    out, port = tmp_path / "run", _free_port()
    args = ["--steps", "20", "--heartbeat-timeout", str(HEARTBEAT)]
    # Process 0 pauses 2 s inside the save of step 10 (before its SHA-256 record): process 1,
    # which saves nothing, is then waiting in the next step's collective when it is killed.
    pause = {PAUSE_BEFORE_RECORD: "2"}
    processes = [_start(out, *args, devices=2, process=(port, i, 2), env=pause) for i in range(2)]
    deadline = time.time() + 240
    while not (out / "checkpoints" / "10").is_dir():  # mid-training
        assert all(p.poll() is None for p in processes), processes[0].communicate()[1][-3000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    _, err = processes[0].communicate(timeout=HEARTBEAT + 60)
    took = time.monotonic() - killed
    processes[1].wait()
    assert processes[0].returncode == hosts.EXIT_STATUS
    # The bound: the heartbeat timeout, two polls of the watchdog and slack for a loaded machine.
    assert took <= HEARTBEAT + 15, took
    errors = [line for line in err.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("unigen: error: process 0 of 2 stops: "), err[-3000:]
    assert "process 1 of 2" in errors[0] or "a collective failed" in errors[0]

    # The two-process run's checkpoint of step 10, continued by one process on one device, ends
    # where the one-process run ended.
    assert not (out / "summary.json").exists() and (out / "checkpoints" / "10" / MANIFEST).exists()
    assert not (out / "checkpoints" / "20").exists()
    _train(out, "--steps", "20", "--resume", devices=1)
    _assert_close(_params(out), one_device[1])


def test_bfloat16_products_are_compiled_in_and_equal_float32_on_cpu(tmp_path, one_device, capsys):
    # On CPU XLA ignores the dot algorithm, so the runs agree to float32 rounding (1e-6 relative);
    # the compiled program must still carry the algorithm, which GPUs and TPUs honour.
    out = tmp_path / "bfloat16"
    assert cli.main(["train", *TINY, "--steps", "20", "--out", str(out), "--precision", "bfloat16"]) == 0
    assert json.loads((out / "config.json").read_text())["precision"] == "bfloat16"
    _assert_close(_params(out), one_device[1], tolerance=1e-6)
    x = jax.numpy.ones((4, 4))
    with runtime.matmul_precision("bfloat16"):
        bf16 = jax.jit(lambda a: a @ a).lower(x).as_text()
    with runtime.matmul_precision("float32"):
        f32 = jax.jit(lambda a: a @ a).lower(x).as_text()
    assert "lhs_precision_type = bf16" in bf16 and "bf16" not in f32
    # A run continues only with the precision it was made with.
    code = cli.main(["train", *TINY, "--steps", "30", "--out", str(out), "--resume", "--precision", "float32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "precision (run: 'bfloat16', now: 'float32')" in err[-1]
    _eval_and_sample_use_the_stored_precision(out, tmp_path, capsys)


def _eval_and_sample_use_the_stored_precision(run: Path, tmp_path: Path, capsys) -> None:
    """``unigen eval`` and ``unigen sample`` of a bfloat16 run compute under bfloat16 products
    (seen from inside the recipe's evaluate and draw); the oracle is the same parameters evaluated
    under float32 (a copy of the run whose config.json says float32): on CPU, which ignores the
    dot algorithm, they agree to float32 rounding (1e-5 relative)."""
    import shutil

    seen: list[tuple[str, str]] = []
    real = cli._recipe_of_run

    def spying(*args):
        found = real(*args)

        def evaluate(*a, **k):
            seen.append(("evaluate", jax.config.jax_default_matmul_precision))
            return found.evaluate(*a, **k)

        def draw(*a, **k):
            seen.append(("draw", jax.config.jax_default_matmul_precision))
            return found.draw(*a, **k)

        return found._replace(evaluate=evaluate, draw=draw)

    as_float32 = tmp_path / "as-float32"
    shutil.copytree(run, as_float32)
    config = json.loads((as_float32 / "config.json").read_text())
    (as_float32 / "config.json").write_text(json.dumps({**config, "precision": "float32"}))
    printed = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "_recipe_of_run", spying)
        for name, directory in (("bfloat16", run), ("float32", as_float32)):
            capsys.readouterr()
            assert cli.main(["eval", str(directory), "--k", "10"]) == 0
            printed[name] = json.loads(capsys.readouterr().out)
            assert cli.main(["sample", str(directory), "--n", "4", "--out", str(tmp_path / f"{name}.png")]) == 0
    assert seen == [("evaluate", "BF16_BF16_F32"), ("draw", "BF16_BF16_F32"), ("evaluate", "float32"), ("draw", "float32")]
    for metric in ("is_nll", "elbo"):
        assert printed["bfloat16"][metric] == pytest.approx(printed["float32"][metric], rel=1e-5)
    # A config.json whose precision is not one unigen writes is refused in one line.
    (as_float32 / "config.json").write_text(json.dumps({**config, "precision": "fp8"}))
    assert cli.main(["eval", str(as_float32), "--k", "10"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "has precision = \"fp8\"; expected one of ['bfloat16', 'float32'], as `unigen train` writes it")


@pytest.mark.parametrize("given, environment, message", [
    ({"num_processes": "2"}, {}, "--num-processes: got '2' without --coordinator; expected --coordinator HOST:PORT"),
    ({}, {"UNIGEN_PROCESS_ID": "1"}, "UNIGEN_PROCESS_ID: got '1' without --coordinator"),
    ({"heartbeat_timeout": "5"}, {}, "--heartbeat-timeout: got '5' without --coordinator"),
    ({"coordinator": "127.0.0.1"}, {}, "--coordinator: expected HOST:PORT (a port 1-65535) or auto, got '127.0.0.1'"),
    ({"coordinator": "h:70000", "num_processes": "2", "process_id": "0"}, {}, "got 'h:70000'"),
    ({"coordinator": "h:1234", "process_id": "0"}, {}, "--num-processes: missing with --coordinator h:1234; "
                                                       "expected --num-processes (or UNIGEN_NUM_PROCESSES)"),
    ({"coordinator": "h:1234", "num_processes": "0", "process_id": "0"}, {},
     "--num-processes: expected a positive integer, got '0'"),
    ({"coordinator": "h:1234", "num_processes": "2"}, {"UNIGEN_PROCESS_ID": "x"},
     "UNIGEN_PROCESS_ID: expected an integer of at least 0, got 'x'"),
    ({"coordinator": "h:1234", "num_processes": "2", "process_id": "2"}, {},
     "--process-id: expected 0 <= process id < 2 (the number of processes), got 2"),
    ({"coordinator": "auto", "heartbeat_timeout": "0"}, {}, "--heartbeat-timeout: expected seconds between 1 and 3600, got '0'"),
])
def test_cluster_options_are_refused_in_one_line(given, environment, message):
    with pytest.raises(ConfigError) as refused:
        hosts.cluster(**given, environ=environment)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_cluster_options_come_from_the_command_line_before_the_environment():
    environment = {"UNIGEN_COORDINATOR": "10.0.0.1:1234", "UNIGEN_NUM_PROCESSES": "4", "UNIGEN_PROCESS_ID": "3"}
    assert hosts.cluster(environ=environment) == hosts.Cluster("10.0.0.1:1234", 4, 3, hosts.DEFAULT_HEARTBEAT_TIMEOUT)
    assert hosts.cluster(process_id="1", heartbeat_timeout="9", environ=environment) == hosts.Cluster(
        "10.0.0.1:1234", 4, 1, 9.0)
    assert hosts.cluster(coordinator="auto", environ={}) == hosts.Cluster("auto", None, None, 60.0)
    assert hosts.cluster(environ={}) is None


def test_the_command_line_refuses_a_coordinator_without_its_process_count(tmp_path, capsys):
    code = cli.main(["train", *TINY, "--steps", "2", "--out", str(tmp_path / "r"), "--coordinator", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["unigen: error: --num-processes: missing with --coordinator 127.0.0.1:1; expected "
                                 "--num-processes (or UNIGEN_NUM_PROCESSES)"]
    assert not (tmp_path / "r").exists()
