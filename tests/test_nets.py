"""unigen.nets.mlp against a hand-written NumPy forward pass on the same parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unigen.errors import ConfigError
from unigen.nets import mlp

NUMPY_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda h: np.maximum(h, 0.0)}


def numpy_forward(params: dict, x: np.ndarray, activation: str) -> np.ndarray:
    """h <- act(h @ W_i + b_i) for every layer but the last, which has no activation."""
    depth = len(params)
    h = np.asarray(x, np.float64)
    for i in range(depth):
        layer = params[f"linear{i}"]
        h = h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        if i < depth - 1:
            h = NUMPY_ACTIVATIONS[activation](h)
    return h


def randomized(params: dict, seed: int = 0) -> dict:
    """The same structure with every array drawn from N(0, 1) by NumPy (init biases are 0)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), params)


SIZES = [3, 5, 4, 2]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_matches_numpy_forward_pass(key, activation):
    net = mlp(SIZES, activation)
    params = randomized(jax.eval_shape(net.init, key))
    x = jnp.asarray(np.random.default_rng(1).normal(size=3), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(jax.jit(net.apply)(params, x)), numpy_forward(params, np.asarray(x), activation),
        rtol=1e-5, atol=1e-5,
    )
    # the same on a batch through jax.vmap: one example per call is the convention
    xs = jnp.asarray(np.random.default_rng(2).normal(size=(6, 3)), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(jax.jit(jax.vmap(net.apply, in_axes=(None, 0)))(params, xs)),
        numpy_forward(params, np.asarray(xs), activation),
        rtol=1e-5, atol=1e-5,
    )


def test_params_are_a_plain_nested_dict_of_arrays(key):
    net = mlp(SIZES)
    params = net.init(key)
    assert type(params) is dict and set(params) == {"linear0", "linear1", "linear2"}
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layer = params[f"linear{i}"]
        assert type(layer) is dict and set(layer) == {"kernel", "bias"}
        assert isinstance(layer["kernel"], jax.Array) and layer["kernel"].shape == (fan_in, fan_out)
        assert isinstance(layer["bias"], jax.Array) and layer["bias"].shape == (fan_out,)
    # a pytree that jit and grad take as it is
    grads = jax.jit(jax.grad(lambda p: jnp.sum(net.apply(p, jnp.ones(3)))))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    # init is a function of the key
    again, other = net.init(key), net.init(jax.random.fold_in(key, 1))
    kernel = lambda p: np.asarray(p["linear0"]["kernel"])  # noqa: E731
    np.testing.assert_array_equal(kernel(again), kernel(params))
    assert not np.allclose(kernel(other), kernel(params))


@pytest.mark.parametrize("sizes", [[5], [], [3, 0, 2], [3, -1]])
def test_bad_sizes_raise_config_error(sizes):
    with pytest.raises(ConfigError, match=r"sizes: expected at least two positive widths"):
        mlp(sizes)


def test_bad_activation_raises_config_error():
    with pytest.raises(ConfigError, match=r"activation: expected one of .*got 'sigmoidal'"):
        mlp([2, 2], "sigmoidal")


def test_a_module_instance_becomes_a_network_with_its_own_parameters(key):
    """nets.network(nnx module) against the NumPy forward pass of the module's own weights."""
    from flax import nnx

    from unigen.nets import MLP, network, output_shape

    module = MLP(SIZES, "tanh", rngs=nnx.Rngs(3))
    net = network("mine", module)
    params = net.init(key)
    assert params["linear1"]["kernel"] is not module.linear1.kernel.get_value()  # a copy
    np.testing.assert_array_equal(np.asarray(params["linear1"]["kernel"]),
                                  np.asarray(module.linear1.kernel.get_value()))
    x = jnp.asarray(np.random.default_rng(4).normal(size=3), jnp.float32)
    np.testing.assert_allclose(np.asarray(jax.jit(net.apply)(params, x)),
                               numpy_forward(params, np.asarray(x), "tanh"), rtol=1e-5, atol=1e-5)
    assert output_shape("mine", net, (3,)) == (2,)
    with pytest.raises(ConfigError, match=r"^mine: expected a network that takes one input of "
                                          r"shape \(5,\), got TypeError: [^\n]*$"):
        output_shape("mine", net, (5,))
