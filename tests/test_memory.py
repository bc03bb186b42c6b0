"""The memory estimate made before compiling: shapes only, checked against the limit."""

import jax
import jax.numpy as jnp
import pytest

from unigen.errors import ConfigError
from unigen.training import memory


def test_the_largest_array_is_read_from_the_jaxpr_without_computing():
    def outer(x, y):  # the [1000, 2000] product is the largest array, inside a jit and a scan
        def body(carry, row):
            return carry + jnp.sum(row[:, None] * y[None, :]), None

        return jax.lax.scan(body, 0.0, x)[0]

    x = jax.ShapeDtypeStruct((3, 1000), jnp.float32)
    y = jax.ShapeDtypeStruct((2000,), jnp.float32)
    assert memory.largest_array(jax.jit(outer), x, y) == (1000 * 2000 * 4, (1000, 2000))


def test_a_request_beyond_the_limit_is_refused_with_the_estimate_and_the_limit(monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "2e6")
    assert memory.limit() == (2_000_000, memory.LIMIT_VARIABLE)
    memory.check(2_000_000, "it", "--n 1")  # at the limit: fits
    with pytest.raises(ConfigError, match=r"^--n 2: it needs at least 2e\+06 B|^--n 2: it needs at least 2 MB"):
        memory.check(2_000_001, "it", "--n 2")
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "lots")
    with pytest.raises(ConfigError, match="UNIGEN_MEMORY_LIMIT: expected a number of bytes"):
        memory.limit()
    monkeypatch.delenv(memory.LIMIT_VARIABLE)
    found, source = memory.limit()
    assert found > 0 and source
