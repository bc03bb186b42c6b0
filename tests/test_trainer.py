"""The trainer against exact trajectories, across devices, and through kill/resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_algorithms import ArraySource, mean_tracking, mean_tracking_oracle, noisy_regression
from unigen.core import Algorithm, Phase
from unigen.errors import CheckpointError, ConfigError, DataError, DonatedStateError, TrainingDiverged
from unigen.training import Checkpoints, every, fit, make_optimizer, make_trainer
from unigen.training.trainer import TrainState

HERE = Path(__file__).parent
DATA = np.random.default_rng(0).normal(size=(40, 3))


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_phases_run_in_order_and_match_the_exact_sgd_trajectory(steps_per_call):
    # 10 steps with K=4 also exercises the shorter last call (4 + 4 + 2).
    source = ArraySource(DATA, 8)
    result = fit(mean_tracking(), source, steps=10, optimizer=make_optimizer("sgd", 0.3),
                 steps_per_call=steps_per_call, progress=False)
    a, b = mean_tracking_oracle(source, 10, 0.3)
    np.testing.assert_allclose(result.state.params["a"], a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.state.params["b"], b, rtol=1e-5, atol=1e-6)
    assert int(result.state.step) == 10
    assert [row["step"] for row in result.history] == list(range(1, 11))


def test_each_phase_updates_only_its_own_group():
    # Phase B's loss depends on a, but B must not move a: with B alone a stays at its init.
    algorithm = mean_tracking()
    only_b = Algorithm(algorithm.init, algorithm.phases[1:])
    trainer = make_trainer(only_b, make_optimizer("sgd", 0.5))
    state = trainer.init(jax.random.key(0))
    state, _ = trainer.step(state, {"x": jnp.ones((4, 3))})
    np.testing.assert_array_equal(state.params["a"], np.zeros(3))
    np.testing.assert_allclose(state.params["b"], np.full(3, 0.5))  # b − 0.5(b − 0)


def test_the_compiled_step_does_not_retrace():
    traces = []

    def loss(params, key, batch):
        traces.append(1)
        return jnp.sum((params["w"] - jnp.mean(batch["x"])) ** 2), {}

    algorithm = Algorithm(lambda key: {"w": jnp.zeros(2)}, (Phase("p", "w", loss),))
    trainer = make_trainer(algorithm, make_optimizer("adam", 0.1), steps_per_call=3)
    state = trainer.init(jax.random.key(0))
    state, _ = trainer.step(state, {"x": jnp.ones((3, 4, 2))})
    first = len(traces)
    for i in range(5):
        state, _ = trainer.step(state, {"x": np.full((3, 4, 2), i, np.float32)})
    assert len(traces) == first


def test_adam_b1_is_the_first_moment_decay():
    """Two Adam updates with b1 = 0.5 follow Kingma & Ba's formulas (b2 = 0.999, eps = 1e-8)
    written out by hand; b1 is refused for other optimizers and outside [0, 1)."""
    grads = [np.array([0.3, -1.0]), np.array([-0.2, 0.5])]
    optimizer = make_optimizer("adam", 0.1, b1=0.5)
    params = jnp.zeros(2)
    state = optimizer.init(params)
    m = v = np.zeros(2)
    expected = np.zeros(2)
    for t, g in enumerate(grads, start=1):
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int counts
            updates, state = optimizer.update(jnp.asarray(g, jnp.float32), state, params)
        params = params + updates
        m, v = 0.5 * m + 0.5 * g, 0.999 * v + 0.001 * g**2
        expected = expected - 0.1 * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(params, expected, rtol=1e-5)
    with pytest.raises(ConfigError, match="b1: expected only with the adam optimizer"):
        make_optimizer("sgd", 0.1, b1=0.5)
    with pytest.raises(ConfigError, match=r"b1: expected a number in \[0, 1\), got 1.0"):
        make_optimizer("adam", 0.1, b1=1.0)


def test_an_optimizer_per_group():
    source = ArraySource(DATA, 8)
    optimizers = {"a": make_optimizer("sgd", 0.3), "b": make_optimizer("sgd", 0.0001)}
    result = fit(mean_tracking(), source, steps=3, optimizer=optimizers, progress=False)
    a, _ = mean_tracking_oracle(source, 3, 0.3)
    np.testing.assert_allclose(result.state.params["a"], a, rtol=1e-5)
    assert np.all(np.abs(np.asarray(result.state.params["b"]) - 1.0) < 0.01)
    with pytest.raises(ConfigError, match=r"no optimizer for parameter group\(s\) \['b'\]"):
        fit(mean_tracking(), source, steps=3, optimizer={"a": optimizers["a"]}, progress=False)


def test_bad_settings_are_refused():
    source = ArraySource(DATA, 8)
    with pytest.raises(ConfigError, match="optimizer: expected one of .*got 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ConfigError, match="learning_rate: expected a positive finite number, got -1"):
        make_optimizer("adam", -1)
    with pytest.raises(ConfigError, match="steps: expected a positive integer, got 0"):
        fit(mean_tracking(), source, steps=0, optimizer=make_optimizer("sgd", 0.1))
    with pytest.raises(ConfigError, match=r"optimizer: got 'adam'; expected an optax GradientTransformation"):
        fit(mean_tracking(), source, steps=2, optimizer="adam")
    with pytest.raises(ConfigError, match="steps_per_call: expected a positive integer, got 0"):
        make_trainer(mean_tracking(), make_optimizer("sgd", 0.1), steps_per_call=0)


def _diverging() -> Algorithm:
    # a starts at 5.5 and SGD(lr=1) on a + √a lowers it by 1 + 1/(2√a) per step, so √a turns NaN
    # at the first step that starts below zero; the oracle below finds that step.
    def loss(params, key, batch):
        return params["a"] + jnp.sqrt(params["a"]), {}

    return Algorithm(lambda key: {"a": jnp.asarray(5.5)}, (Phase("wake", "a", loss),))


def test_nan_stops_training_naming_step_and_phase_and_keeps_the_last_checkpoint(tmp_path):
    a, step = 5.5, 0
    while a >= 0:
        a, step = a - (1 + 0.5 / np.sqrt(a)), step + 1
    nan_step = step + 1  # the loss is evaluated at the start of the step, on the negative a
    with pytest.raises(TrainingDiverged, match=rf"phase 'wake' is nan at step {nan_step} \(of 50\)"):
        fit(_diverging(), ArraySource(DATA, 8), steps=50, optimizer=make_optimizer("sgd", 1.0),
            out_dir=tmp_path, checkpoint_every=2, progress=False)
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    saved = checkpoints.latest_step()
    assert saved is not None and saved < nan_step
    trainer = make_trainer(_diverging(), make_optimizer("sgd", 1.0))
    restored = checkpoints.restore(trainer.init(jax.random.key(0)))
    checkpoints.close()
    assert np.isfinite(float(restored.params["a"])) and float(restored.params["a"]) >= 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(row["wake/loss"]) for row in rows)


class _CtrlCAt(ArraySource):
    """Sends SIGINT to this process while the batch of step ``at`` is being read: in the middle
    of training, before that step's call is dispatched."""

    def __init__(self, x, batch_size, at):
        super().__init__(x, batch_size)
        self.step_at = at

    def at(self, step, **kwargs):
        if step == self.step_at:
            signal.raise_signal(signal.SIGINT)
        return super().at(step, **kwargs)


def test_ctrl_c_stops_at_a_step_boundary_and_checkpoints_the_whole_state(tmp_path):
    """The first Ctrl-C is taken after the current call: the checkpoint holds the state after
    exactly the steps done (equal to an uninterrupted run's), and the handler is restored."""
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        fit(mean_tracking(), _CtrlCAt(DATA, 8, at=6), steps=40, optimizer=make_optimizer("sgd", 0.1),
            out_dir=tmp_path, checkpoint_every=100, steps_per_call=2, progress=False)
    assert signal.getsignal(signal.SIGINT) is before
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    trainer = make_trainer(mean_tracking(), make_optimizer("sgd", 0.1), steps_per_call=2)
    saved = checkpoints.latest_step()
    restored = checkpoints.restore(trainer.init(jax.random.key(0)))
    checkpoints.close()
    assert saved == 8  # the call for steps 7-8 was under way: it finishes, then training stops
    straight = fit(mean_tracking(), ArraySource(DATA, 8), steps=8, optimizer=make_optimizer("sgd", 0.1),
                   steps_per_call=2, progress=False)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), restored.params,
                 straight.state.params)


def test_an_existing_run_is_not_overwritten(tmp_path):
    source = ArraySource(DATA, 8)
    fit(mean_tracking(), source, steps=2, optimizer=make_optimizer("sgd", 0.1), out_dir=tmp_path,
        checkpoint_every=1, progress=False)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(mean_tracking(), source, steps=2, optimizer=make_optimizer("sgd", 0.1), out_dir=tmp_path,
            progress=False)
    assert (tmp_path / "metrics.jsonl").read_text() == before


def test_resume_refuses_a_mismatched_or_corrupt_checkpoint(tmp_path):
    source = ArraySource(DATA, 8)
    fit(mean_tracking(dim=3), source, steps=2, optimizer=make_optimizer("sgd", 0.1),
        out_dir=tmp_path, checkpoint_every=1, progress=False)
    wider = ArraySource(np.zeros((40, 5)), 8)
    with pytest.raises(CheckpointError, match=r"array params/a/?.* has shape \(3,\).*expects shape \(5,\)"):
        fit(mean_tracking(dim=5), wider, steps=4, optimizer=make_optimizer("sgd", 0.1),
            out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="do not match the run to resume"):
        fit(mean_tracking(), source, steps=4, optimizer=make_optimizer("adam", 0.1),
            out_dir=tmp_path, resume=True, progress=False)
    for path in (tmp_path / "checkpoints").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoints/2"):
        fit(mean_tracking(), source, steps=4, optimizer=make_optimizer("sgd", 0.1),
            out_dir=tmp_path, resume=True, progress=False)


def _run_toy(tmp_path, name, *args, devices=1, wait=True):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    command = [sys.executable, str(HERE / "run_toy.py"), str(tmp_path / f"{name}.json"), *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return process
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads((tmp_path / f"{name}.json").read_text())


@pytest.mark.slow
def test_four_devices_and_two_hosts_of_two_devices_give_the_parameters_of_one_device(tmp_path):
    """The library-level check (``fit`` on a toy regression; the command line's is in
    ``test_hosts.py``): 20 steps of batch 16 on one device are the oracle; one process with four
    devices, and two processes joined by jax.distributed.initialize on 127.0.0.1 (gloo CPU
    collectives) with two devices each, each feeding its own half of every global batch, must
    reach the same parameters up to float32 summation order."""
    import socket

    one = _run_toy(tmp_path, "one", "--steps", "20", "--batch", "16", devices=1)
    four = _run_toy(tmp_path, "four", "--steps", "20", "--batch", "16", devices=4)
    assert (one["devices"], four["devices"]) == (1, 4)
    np.testing.assert_allclose(four["params"]["w"], one["params"]["w"], rtol=1e-5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hosts = [
        _run_toy(tmp_path, "hosts", "--steps", "20", "--batch", "16", "--coordinator", f"127.0.0.1:{port}",
                 "--process-id", str(i), "--processes", "2", devices=2, wait=False)
        for i in range(2)
    ]
    for process in hosts:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    result = json.loads((tmp_path / "hosts.json").read_text())
    assert (result["devices"], result["processes"]) == (4, 2)
    np.testing.assert_allclose(result["params"]["w"], one["params"]["w"], rtol=1e-5)


@pytest.mark.slow
def test_a_batch_the_devices_cannot_split_is_refused(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    command = [sys.executable, str(HERE / "run_toy.py"), str(tmp_path / "r.json"), "--batch", "6"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "batch_size: 6 is not divisible by the number of devices (4)" in done.stderr


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    whole = _run_toy(tmp_path, "whole", "--steps", "24", "--steps-per-call", "2")
    out = tmp_path / "run"
    args = ["--steps", "24", "--steps-per-call", "2", "--out", str(out), "--every", "4"]
    process = _run_toy(tmp_path, "killed", *args, "--slow-after", "10", wait=False)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "8").exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.1)
    time.sleep(1.0)  # now inside the slow steps, after the checkpoint of step 8
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed.json").exists()
    resumed = _run_toy(tmp_path, "resumed", *args, "--resume")
    np.testing.assert_array_equal(resumed["params"]["w"], whole["params"]["w"])
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))


def _step_counting() -> Algorithm:
    """loss = w·(t + 1) at step t (t = steps taken before), so SGD at rate lr moves w by
    −lr·(t + 1) and after n steps w = −lr·n(n + 1)/2; the metric "t" echoes the step seen."""

    def loss(params, key, batch, step):
        return params["w"] * (step + 1).astype(jnp.float32), {"t": step.astype(jnp.float32)}

    return Algorithm(lambda key: {"w": jnp.zeros(())}, (Phase("p", "w", loss, uses_step=True),))


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_a_phase_that_uses_the_step_sees_the_steps_taken_before_it(tmp_path, steps_per_call):
    """Steps 0..6 in order, in fused calls (3 + 3 + 1) and across a resume after step 4."""
    source, lr = ArraySource(DATA, 8), 0.01
    kwargs = dict(optimizer=make_optimizer("sgd", lr), steps_per_call=steps_per_call, progress=False,
                  out_dir=tmp_path, checkpoint_every=1)
    first = fit(_step_counting(), source, steps=4, **kwargs)
    second = fit(_step_counting(), source, steps=7, resume=True, **kwargs)
    assert [row["p/t"] for row in first.history] == [0, 1, 2, 3]
    assert [row["p/t"] for row in second.history] == [0, 1, 2, 3, 4, 5, 6]  # the kept rows, then 5-7
    np.testing.assert_allclose(float(second.state.params["w"]), -lr * 7 * 8 / 2, rtol=1e-6)


def test_your_own_loop_takes_a_plain_batch_with_one_step_per_call():
    """K = 1: ``step`` takes ``[B, D]`` and moves a toward the mean of all B rows (the exact
    SGD step of mean_tracking), not toward row 0; its metrics are scalars."""
    trainer = make_trainer(mean_tracking(), make_optimizer("sgd", 0.5))
    state = trainer.init(jax.random.key(0))
    state, metrics = trainer.step(state, {"x": jnp.asarray(DATA[:8], jnp.float32)})
    a, b = mean_tracking_oracle(ArraySource(DATA, 8), 1, 0.5)
    np.testing.assert_allclose(state.params["a"], a, rtol=1e-6)
    np.testing.assert_allclose(state.params["b"], b, rtol=1e-6)
    assert float(metrics["B/b0"]) == 1.0  # b[0] when phase B's loss was computed, before its update
    assert np.shape(metrics["A/loss"]) == ()


def test_fused_steps_refuse_a_batch_without_the_steps_axis():
    trainer = make_trainer(mean_tracking(), make_optimizer("sgd", 0.5), steps_per_call=3)
    state = trainer.init(jax.random.key(0))
    with pytest.raises(ConfigError, match=r"batches: 'x' has shape \(8, 3\); expected \[K, B, \.\.\.\] = \[3, B, \.\.\.\]"):
        trainer.step(state, {"x": jnp.zeros((8, 3))})
    state, metrics = trainer.step(state, {"x": jnp.asarray(np.stack([DATA[:8]] * 3), jnp.float32)})
    assert np.shape(metrics["A/loss"]) == (3,)


def test_step_lower_makes_the_step_checks_and_compiles_the_same_call():
    """``trainer.step.lower`` (what XLA cost analysis and HLO dumps need) refuses what ``step``
    refuses, and its compiled call returns the state ``step`` returns."""
    trainer = make_trainer(mean_tracking(), make_optimizer("sgd", 0.5), steps_per_call=3)
    batches = {"x": jnp.asarray(np.stack([DATA[:8]] * 3), jnp.float32)}
    with pytest.raises(ConfigError, match=r"batches: 'x' has shape \(8, 3\); expected \[K, B, \.\.\.\]"):
        trainer.step.lower(trainer.init(jax.random.key(0)), {"x": jnp.zeros((8, 3))})
    compiled = trainer.step.lower(trainer.init(jax.random.key(0)), batches).compile()
    lowered_state, _ = compiled(trainer.init(jax.random.key(0)), batches)
    stepped_state, _ = trainer.step(trainer.init(jax.random.key(0)), batches)
    for got, want in zip(jax.tree.leaves(lowered_state), jax.tree.leaves(stepped_state)):
        np.testing.assert_array_equal(got, want)


def test_reusing_a_donated_state_is_a_unigen_error_that_says_so():
    trainer = make_trainer(mean_tracking(), make_optimizer("sgd", 0.5))
    state = trainer.init(jax.random.key(0))
    batch = {"x": jnp.ones((4, 3))}
    trainer.step(state, batch)
    with pytest.raises(DonatedStateError, match=r"state: was donated to a previous step call.*state, metrics = trainer.step"):
        trainer.step(state, batch)


def test_fit_takes_any_iterable_of_batches_and_refuses_to_resume_one(tmp_path):
    """A list and a generator of the same batches train exactly as the stateless source."""
    source = ArraySource(DATA, 8)
    as_list = [source.at(t) for t in range(10)]
    a, b = mean_tracking_oracle(source, 10, 0.3)
    for batches in (as_list, iter(as_list), (row for row in as_list)):
        result = fit(mean_tracking(), batches, steps=10, optimizer=make_optimizer("sgd", 0.3),
                     steps_per_call=4, progress=False)
        np.testing.assert_allclose(result.state.params["a"], a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result.state.params["b"], b, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match=r"batches: the iterable ended after 10 batches; expected one batch for each step \(step 11 has none\)"):
        fit(mean_tracking(), as_list, steps=12, optimizer=make_optimizer("sgd", 0.3), progress=False)
    with pytest.raises(ConfigError, match=r"resume: needs batches with \.at\(step\).*got list"):
        fit(mean_tracking(), as_list, steps=10, optimizer=make_optimizer("sgd", 0.3), out_dir=tmp_path,
            resume=True, progress=False)
    with pytest.raises(DataError, match=r"batches: the batch of step 1 is array of shape \(8, 3\).*expected a dict"):
        fit(mean_tracking(), [row["x"] for row in as_list], steps=2, optimizer=make_optimizer("sgd", 0.3),
            progress=False)
    with pytest.raises(DataError, match=r"the batch of step 2 has arrays \{'x': \(4, 3\)\}; expected \{'x': \(8, 3\)\}"):
        fit(mean_tracking(), [as_list[0], {"x": DATA[:4]}], steps=2, optimizer=make_optimizer("sgd", 0.3),
            steps_per_call=2, progress=False)


@pytest.mark.parametrize("steps_per_call, calls_at", [(1, [3, 6, 9]), (2, [4, 6, 10])])
def test_callbacks_run_every_n_steps_and_their_numbers_are_logged(tmp_path, steps_per_call, calls_at):
    """every(3, fn): after the call in which the step count passed a multiple of 3; fn sees the
    state after exactly that many steps (the oracle trajectory) and what it returns is logged."""
    source, seen = ArraySource(DATA, 8), []

    def probe(step, state, metrics):
        seen.append(step)
        a, _ = mean_tracking_oracle(source, step, 0.3)
        np.testing.assert_allclose(state.params["a"], a, rtol=1e-5, atol=1e-6)
        _, b_before = mean_tracking_oracle(source, step - 1, 0.3)  # the last step's metric: b before it
        assert metrics["B/b0"] == pytest.approx(b_before[0], rel=1e-5)
        return {"probe/a0": float(state.params["a"][0]), "probe/step": step}

    result = fit(mean_tracking(), source, steps=10, optimizer=make_optimizer("sgd", 0.3), out_dir=tmp_path,
                 steps_per_call=steps_per_call, callbacks=[every(3, probe)], progress=False, log_every=5)
    assert seen == calls_at
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == result.history
    assert sorted({row["step"] for row in rows}) == sorted({5, 10, *calls_at})
    assert [row["probe/step"] for row in rows if "probe/step" in row] == calls_at
    with pytest.raises(ConfigError, match=r"every: n is 0; expected a positive integer"):
        every(0, probe)
    with pytest.raises(ConfigError, match=r"callbacks: .*returned 'probe/x': 'text' at step 1; expected a number"):
        fit(mean_tracking(), source, steps=2, optimizer=make_optimizer("sgd", 0.3),
            callbacks=[every(1, lambda step, state, metrics: {"probe/x": "text"})], progress=False)
