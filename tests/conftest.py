"""Test configuration: strict dtype promotion, rank promotion raises, a compilation cache of the
session's own, compiled programs freed after each test module, and a key fixture.

Subprocess tests (several forced host devices) set their own flags in the child process.

The compilation cache: the test process keeps JAX's persistent cache of compiled programs in a
directory of its own, made empty at start and removed at exit, so a program compiled again by
a later test (the same tiny VAE that many command-line tests train in this process, each call of
``cli.main`` tracing anew) is read back instead of compiled again: what a user's second run does,
since ``unigen train`` turns the cache on by default. Nothing carries over from one session to the
next, or to the user's own cache. Subprocesses keep ``UNIGEN_COMPILATION_CACHE=0`` (the variable
set below, which they inherit; the JAX setting is this process's only): they are killed at random
moments and run side by side, and JAX writes an entry in place, so a killed or concurrent writer
could leave a half-written entry whose warning would add a line to a stderr the tests read.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("UNIGEN_COMPILATION_CACHE", "0")  # subprocesses: no on-disk compilation cache

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

_COMPILATION_CACHE = tempfile.mkdtemp(prefix="unigen-tests-jax-cache-")
atexit.register(shutil.rmtree, _COMPILATION_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _COMPILATION_CACHE)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key; tests split or fold it in as they need."""
    return jax.random.key(0)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drops JAX's in-memory caches (traces and compiled programs) when a test module ends.

    A jitted function keeps every program it compiled for as long as it lives, and module-level
    ones live for the whole session: without this the test process grew to 5.2 GB over the suite
    (``benchmarks/peak_memory.py``). A later module that needs a program again reads it back from
    the session's compilation cache above."""
    yield
    jax.clear_caches()
