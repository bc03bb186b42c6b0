"""Start-up: the persistent compilation cache (and its opt-out), the device line, lazy imports."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from unigen.training import runtime

REPO = Path(__file__).resolve().parent.parent

# Compiles one small program with the cache enabled (argument: the directory), in a fresh
# process: JAX reads the cache setting once per process, and the test suite turns it off.
CHILD = """
import sys
import jax, jax.numpy as jnp
from unigen.training import runtime
print(runtime.enable_compilation_cache(sys.argv[1]))
jax.block_until_ready(jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.ones(7)))
"""


def _child(tmp_path: Path, setting: str) -> tuple[str, list[str]]:
    cache = tmp_path / "cache"
    env = {**os.environ, runtime.ENVIRONMENT_VARIABLE: setting}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", CHILD, str(cache)], env=env, capture_output=True,
                         text=True, timeout=120, check=True, cwd=REPO)
    return out.stdout.strip(), sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_cache_writes_compiled_programs(tmp_path):
    printed, files = _child(tmp_path, "1")
    assert printed == str(tmp_path / "cache")
    assert files, "the compiled program was not written to the cache directory"


# As CHILD, but SIGKILLs itself at the moment a cache entry would be renamed into place: the
# state a kill in the middle of writing an entry leaves (the bytes written, the entry not whole).
KILLED_WHILE_WRITING = """
import os, signal, sys
real_replace = os.replace
def replace(source, destination):
    if str(destination).endswith("-cache"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(source, destination)
os.replace = replace
""" + CHILD


def _run(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, runtime.ENVIRONMENT_VARIABLE: "1"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", code, str(cache)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_killed_cache_write_leaves_no_entry_and_the_next_run_writes_it(tmp_path):
    cache = tmp_path / "cache"
    killed = _run(KILLED_WHILE_WRITING, cache)
    assert killed.returncode == -9, killed.stderr
    assert not list(cache.glob("*-cache")), "an entry was in place before it was whole"
    clean = _run(CHILD, cache)
    assert clean.returncode == 0 and "persistent compilation cache" not in clean.stderr, clean.stderr
    assert list(cache.glob("*-cache")), "the next run did not write the entry"


def test_damaged_cache_entry_is_written_again(tmp_path):
    cache = tmp_path / "cache"
    assert _run(CHILD, cache).returncode == 0
    whole = {p: p.read_bytes() for p in cache.glob("*-cache")}
    assert whole
    for path, data in whole.items():  # what JAX's own in-place write leaves when killed midway
        path.write_bytes(data[: len(data) // 2])
    damaged = _run(CHILD, cache)
    assert damaged.returncode == 0, damaged.stderr
    assert "Error reading persistent compilation cache entry" in damaged.stderr  # JAX's warning, once
    again = _run(CHILD, cache)
    assert again.returncode == 0 and "persistent compilation cache" not in again.stderr, again.stderr
    assert {p: p.read_bytes() for p in cache.glob("*-cache")}.keys() == whole.keys()
    assert all(len(p.read_bytes()) == len(data) for p, data in whole.items())


def test_cache_opt_out(tmp_path):
    printed, files = _child(tmp_path, "0")
    assert printed == "None" and files == []


def test_default_directory_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runtime.default_cache_directory() == tmp_path / "unigen" / "jax"


def test_device_line_counts_devices():
    line = runtime.device_line()
    assert line.startswith(f"platform {jax.default_backend()}: {jax.device_count()} device")
    assert f"process {jax.process_index()} of {jax.process_count()}" in line


def test_heavy_libraries_are_imported_on_first_use_only():
    heavy = ("tensorflow_datasets", "orbax.checkpoint", "matplotlib", "sklearn")
    code = ("import sys, unigen.cli, unigen.data, unigen.viz, unigen.metrics, unigen.training; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_digits_read_without_sklearn_equal_sklearn():
    from sklearn.datasets import load_digits

    from unigen import data

    pixels, labels = data._digits_raw()
    expected = load_digits()
    np.testing.assert_array_equal(pixels, expected.data)
    np.testing.assert_array_equal(labels, expected.target)
