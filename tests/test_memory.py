"""The memory estimate made before compiling: shapes only, checked against the limit."""

import jax
import jax.numpy as jnp
import numpy as np
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


@pytest.mark.parametrize("steps_per_call, steps", [(1, 3), (4, 3)])
def test_fit_reuses_the_step_the_check_traced(steps_per_call, steps):
    """``check_step`` traces the first call ``fit`` makes (min(K, steps) steps), through the same
    trainer: the step is traced once in all, and the estimate holds the step's largest array."""
    from unigen.core import Algorithm, Phase
    from unigen.training import fit, make_optimizer

    traces = []

    def loss(params, key, batch):
        traces.append(1)
        outer = batch["x"][:, :, None] * params["w"][None, None, :]  # [B, 5, 7]: the largest array
        return jnp.sum(outer**2), {}

    algorithm = Algorithm(lambda key: {"w": jnp.ones(7)}, (Phase("p", "w", loss),))
    optimizer = make_optimizer("sgd", 0.01)
    batch = {"x": jax.ShapeDtypeStruct((6, 5), jnp.float32)}
    needed = memory.check_step(algorithm, optimizer, batch, "--batch-size 6", steps_per_call=steps_per_call,
                               steps=steps)
    assert len(traces) == 1
    # Held: w and its gradient (7 float32 each), the step count (int32), the run key (2 uint32);
    # SGD keeps no state. The largest array: the [6, 5, 7] float32 product.
    assert needed == (7 * 4) * 2 + 4 + 8 + 6 * 5 * 7 * 4
    batches = [{"x": np.full((6, 5), t, np.float32)} for t in range(steps)]
    fit(algorithm, batches, steps=steps, optimizer=optimizer, steps_per_call=steps_per_call, progress=False)
    assert len(traces) == 1  # every call of fit has min(K, steps) steps here: the checked one


def test_a_trainer_is_made_again_only_from_the_same_objects():
    """``make_trainer`` returns the trainer it made before for the same algorithm, optimizer(s),
    steps per call and mesh (so a traced step is reused), and a new one for anything else: a
    dict of optimizers changed in place since counts as new."""
    from unigen.core import Algorithm, Phase
    from unigen.training import make_optimizer, make_trainer

    algorithm = Algorithm(lambda key: {"w": jnp.ones(2)}, (Phase("p", "w", lambda p, k, b: (jnp.sum(p["w"]), {})),))
    sgd, adam = make_optimizer("sgd", 0.1), make_optimizer("adam", 0.1)
    assert make_trainer(algorithm, sgd) is make_trainer(algorithm, sgd)
    assert make_trainer(algorithm, sgd) is not make_trainer(algorithm, make_optimizer("sgd", 0.1))
    assert make_trainer(algorithm, sgd, steps_per_call=2) is not make_trainer(algorithm, sgd)
    groups = {"w": sgd}
    first = make_trainer(algorithm, groups)
    assert make_trainer(algorithm, dict(groups)) is first
    groups["w"] = adam
    assert make_trainer(algorithm, groups) is not first
