"""The run directory: atomic JSON, one writer, incomplete saves, signals and divergence in fit."""

import json
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toy_algorithms import ArraySource, mean_tracking
from unigen.core import Algorithm, Phase
from unigen.errors import ConfigError, RunInterrupted, StorageError, TrainingDiverged
from unigen.training import Checkpoints, fit, make_optimizer, make_trainer, rundir
from unigen.training.checkpoint import MANIFEST
from unigen.training.logging import MetricsLog

DATA = np.random.default_rng(0).normal(size=(40, 3))


def test_json_is_written_whole_with_null_for_non_finite_numbers(tmp_path):
    path = tmp_path / "summary.json"
    rundir.write_json(path, {"a": 1.5, "b": float("nan"), "c": [float("inf"), 2]})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": None, "c": [None, 2]}
    with pytest.raises(TypeError):
        rundir.write_json(path, {"a": object()})  # fails while writing: the old file stands
    assert json.loads(path.read_text())["a"] == 1.5
    for bad, seen in (("[1, 2]", "list"), ("{", "cannot be read as JSON")):
        path.write_text(bad)
        with pytest.raises(ConfigError, match=rf"run: {path} .*{seen}"):
            rundir.read_json_object(path, "run")


_HOLD = """
import sys, time
from unigen.training.rundir import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"--out: {tmp_path} is being written by another process \(pid {holder.pid},"):
            rundir.RunLock(tmp_path).acquire()
        with pytest.raises(ConfigError, match=rf"pid {holder.pid}"):
            fit(mean_tracking(), ArraySource(DATA, 8), steps=2, optimizer=make_optimizer("sgd", 0.1),
                out_dir=tmp_path / ".", progress=False)
        assert not (tmp_path / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    lock = rundir.RunLock(tmp_path)
    lock.acquire()  # the holder died: its lock is taken over
    assert (tmp_path / rundir.LOCK).read_text().strip() == str(os.getpid())
    again = rundir.RunLock(tmp_path)
    again.acquire()  # re-entrant within one process (the CLI locks, then fit)
    again.release()
    lock.release()


def test_resume_of_an_empty_or_missing_directory_starts_from_step_0_and_says_so(tmp_path, capsys):
    config = {"steps": 3}
    with rundir.open_run(tmp_path / "missing", config, resume=True) as out:
        assert json.loads((out / "config.json").read_text()) == config
    assert "missing holds no run yet; starting from step 0" in capsys.readouterr().err
    with rundir.open_run(tmp_path / "missing", {"steps": 9}, resume=True) as out:
        pass  # a resumed run's config.json is rewritten only by rundir.finish, when it finished
    assert "missing holds no complete checkpoint; starting from step 0" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text()) == config
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=rf"--out: {tmp_path}/file is a file; expected a directory"):
        with rundir.open_run(tmp_path / "file", config, resume=False):
            pass
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds \['notes.txt'\] but no config.json"):
        with rundir.open_run(tmp_path / "other", config, resume=True):
            pass


def test_a_fresh_run_that_fails_before_its_first_step_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with rundir.open_run(tmp_path / "new", {"steps": 3}, resume=False):
            raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError):
        with rundir.open_run(tmp_path / "empty", {"steps": 3}, resume=False):
            raise ConfigError("a check inside fit")
    assert list((tmp_path / "empty").iterdir()) == []


def test_metrics_are_cut_back_to_the_restored_step_and_a_half_written_line_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": s / 7}) for s in range(1, 7)]
    path.write_text("\n".join(lines) + "\n" + '{"step": 7, "lo')
    log = MetricsLog(path, resume_step=4)
    log.close()
    assert path.read_text() == "\n".join(lines[:4]) + "\n"  # the kept lines byte for byte
    assert [row["step"] for row in log.kept] == [1, 2, 3, 4]


def test_an_incomplete_save_is_discarded_and_resume_reproduces_the_run(tmp_path):
    """The issue's StepAlreadyExistsError case: the newest step lost its SHA-256 record (a kill
    between orbax's save and the record); resume uses the one before and saves the step again."""
    kwargs = dict(optimizer=make_optimizer("adam", 0.1), checkpoint_every=2, progress=False)
    whole = fit(mean_tracking(), ArraySource(DATA, 8), steps=6, **kwargs)
    fit(mean_tracking(), ArraySource(DATA, 8), steps=6, out_dir=tmp_path, **kwargs)
    (tmp_path / "checkpoints" / "6" / MANIFEST).unlink()
    (tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-123").mkdir()
    resumed = fit(mean_tracking(), ArraySource(DATA, 8), steps=6, out_dir=tmp_path, resume=True, **kwargs)
    assert int(resumed.state.step) == 6 and resumed.steps == 2  # from step 4
    jax.tree.map(np.testing.assert_array_equal, resumed.state.params, whole.state.params)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2", "4", "6"]
    assert (tmp_path / "checkpoints" / "6" / MANIFEST).exists()


def _overflowing() -> Algorithm:
    """loss = w·c(t) with c = 1e-10 for the steps t = 0, 1 and 1e30 from t = 2: SGD at rate 1e10
    takes w to −2 in two steps, then moves it by −1e40 at the third, which overflows float32 to
    −Inf, while the third step's loss (−2e30, taken before the update) is finite. The oracle:
    checkpoints 1 and 2 are good, the state after step 3 is not."""

    def loss(params, key, batch, step):
        return params["w"] * jnp.where(step >= 2, 1e30, 1e-10).astype(jnp.float32), {}

    return Algorithm(lambda key: {"w": jnp.zeros(())}, (Phase("p", "w", loss, uses_step=True),))


def test_a_non_finite_state_is_never_checkpointed_and_the_last_good_one_is_named(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"array \['params'\]\['w'\] is not finite after step 3 \(of 6\); "
                                              r"training stopped without saving it, the last good checkpoint is step 2"):
        fit(_overflowing(), ArraySource(DATA, 8), steps=6, optimizer=make_optimizer("sgd", 1e10),
            out_dir=tmp_path / "a", checkpoint_every=1, progress=False)
    assert rundir.complete_checkpoint(tmp_path / "a") == 2
    with pytest.raises(TrainingDiverged, match=r"after step 3 \(of 6\).*there is no good checkpoint"):
        fit(_overflowing(), ArraySource(DATA, 8), steps=6, optimizer=make_optimizer("sgd", 1e10),
            out_dir=tmp_path / "b", checkpoint_every=3, progress=False)


class _SignalsAt(ArraySource):
    """Raises ``signals`` in this process while the batch of step ``at`` is being read."""

    def __init__(self, x, batch_size, at, signals):
        super().__init__(x, batch_size)
        self.step_at, self.signals = at, signals

    def at(self, step, **kwargs):
        if step == self.step_at:
            for number in self.signals:
                signal.raise_signal(number)
        return super().at(step, **kwargs)


def test_sigterm_saves_a_whole_checkpoint_and_a_second_signal_stops_at_once(tmp_path):
    kwargs = dict(optimizer=make_optimizer("sgd", 0.1), checkpoint_every=4, steps_per_call=2, progress=False)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted, match=r"SIGTERM: stopped after step 8 of 40; checkpoint step 8 saved") as caught:
        fit(mean_tracking(), _SignalsAt(DATA, 8, 6, [signal.SIGTERM]), steps=40, out_dir=tmp_path / "one", **kwargs)
    assert caught.value.exit_status == 143 and signal.getsignal(signal.SIGTERM) is before
    trainer = make_trainer(mean_tracking(), make_optimizer("sgd", 0.1))
    checkpoints = Checkpoints(tmp_path / "one" / "checkpoints")
    restored = checkpoints.restore(trainer.init(jax.random.key(0)))
    checkpoints.close()
    straight = fit(mean_tracking(), ArraySource(DATA, 8), steps=8, **{**kwargs, "checkpoint_every": None})
    jax.tree.map(np.testing.assert_array_equal, restored.params, straight.state.params)
    with pytest.raises(RunInterrupted, match=r"SIGINT again: stopped at once; the last good checkpoint is step 4") as caught:
        fit(mean_tracking(), _SignalsAt(DATA, 8, 6, [signal.SIGINT, signal.SIGINT]), steps=40,
            out_dir=tmp_path / "two", **kwargs)
    assert caught.value.exit_status == 130
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["4"]


def test_a_disk_that_cannot_be_written_is_one_line_naming_the_path(tmp_path, monkeypatch):
    """write_json into a missing directory; a checkpoint save that meets a full disk (orbax's
    save made to raise ENOSPC from step 4 on): the message names the step directory, the cause
    and the last good checkpoint, and that checkpoint still restores."""
    import errno

    import orbax.checkpoint as ocp

    with pytest.raises(StorageError, match=rf"^{tmp_path}/no/config.json: cannot be written \(No such file or directory\)"):
        rundir.write_json(tmp_path / "no" / "config.json", {})
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match=rf"^{tmp_path}/file/run: cannot be written \(Not a directory\)"):
        fit(mean_tracking(), ArraySource(DATA, 8), steps=2, optimizer=make_optimizer("sgd", 0.1),
            out_dir=tmp_path / "file" / "run", progress=False)
    real = ocp.CheckpointManager.save

    def full(self, step, *args, **kwargs):
        if step >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    with pytest.raises(StorageError, match=r"checkpoints/4: cannot be written \(No space left on device\); "
                                           r"expected a writable directory with free space; the last good checkpoint is step 2$"):
        fit(mean_tracking(), ArraySource(DATA, 8), steps=6, optimizer=make_optimizer("sgd", 0.1),
            out_dir=tmp_path / "run", checkpoint_every=2, progress=False)
    assert rundir.complete_checkpoint(tmp_path / "run") == 2


def test_metrics_jsonl_writes_a_non_finite_number_as_null(tmp_path):
    from unigen.training import every

    fit(mean_tracking(), ArraySource(DATA, 8), steps=2, optimizer=make_optimizer("sgd", 0.1), out_dir=tmp_path,
        progress=False, callbacks=[every(1, lambda step, state, metrics: {"odd": float("nan")})])
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in text
    assert [json.loads(line)["odd"] for line in text.splitlines()] == [None, None]
