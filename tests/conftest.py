"""Test configuration: strict dtype promotion, rank promotion raises, and a key fixture.

Subprocess tests (several forced host devices) set their own flags in the child process.
"""

import os

os.environ.setdefault("XLA_FLAGS", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("UNIGEN_COMPILATION_CACHE", "0")  # no on-disk compilation cache: tests stay isolated

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key; tests split or fold it in as they need."""
    return jax.random.key(0)
