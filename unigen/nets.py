r"""Networks: Flax NNX modules (or any pure functions) that enter the core only as pytrees.

A model in unigen is a NamedTuple of pure functions over plain parameter pytrees (see
:mod:`unigen.core`), so a network enters it as a :class:`Network`, the pair ``(init, apply)``:

* ``init(key) -> params``: the network's parameters as a plain nested dict of arrays;
* ``apply(params, x) -> y``: the network on **one example** ``x`` (batch with ``jax.vmap``).

Every model factory (:func:`unigen.models.vae_model`, :func:`~unigen.models.gan_model`,
:func:`~unigen.models.infogan_model`) takes its networks in any form :func:`network` accepts:

* an NNX module **instance**, e.g. ``Encoder(rngs=nnx.Rngs(0))``: its parameters as built are
  the initial parameters (``init`` ignores its key and returns a copy of them), and ``apply``
  merges the parameter dict back into the module (``nnx.merge``) and calls it;
* :func:`pure` of an NNX module **constructor** ``build(rngs)``: the same, but ``init(key)``
  builds a fresh module from ``key``, so a new key gives new initial parameters;
* a :class:`Network`, or any pair ``(init, apply)`` of pure functions (no Flax at all).

The module is split once (``nnx.split``); under ``jax.jit`` the merge happens at trace time only,
so the compiled step runs the module's arithmetic and nothing else. The core, the optimizers and
the checkpoints see nothing but the nested dict. Only ``nnx.Param`` state is allowed: ``apply``
is a pure function, so a module with other state (``nnx.BatchNorm`` statistics, the RNG stream
of ``nnx.Dropout``) is refused rather than silently frozen.

Example (a convolutional encoder for 8x8 images, one example a flat ``[64]`` vector)::

    from flax import nnx

    class Encoder(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(1, 8, (3, 3), strides=2, rngs=rngs)   # [8, 8, 1] -> [4, 4, 8]
            self.out = nnx.Linear(128, 2 * 4, rngs=rngs)              # mean, log std of z
        def __call__(self, x):                                         # one example, x: [64]
            h = jax.nn.relu(self.conv(x.reshape(8, 8, 1)))
            return self.out(h.reshape(-1))

    encoder = nets.network("encoder", Encoder(nnx.Rngs(0)))   # or nets.pure(Encoder)
    params = encoder.init(jax.random.key(0))                  # {"conv": {...}, "out": {...}}
    y = encoder.apply(params, x)                              # [8]
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from unigen.errors import ConfigError, describe

__all__ = ["ACTIVATIONS", "MLP", "Network", "mlp", "network", "output_shape", "pure"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
}


class Network(NamedTuple):
    """A network as pure functions over a nested-dict parameter pytree.

    Attributes:
      init: ``init(key) -> params``, the initial parameters (a pytree of arrays).
      apply: ``apply(params, x) -> y`` on one example; differentiable in ``params`` and ``x``.

    Example::

        affine = Network(
            init=lambda key: {"w": jax.random.normal(key, (3, 2)), "b": jnp.zeros(2)},
            apply=lambda params, x: x @ params["w"] + params["b"],
        )
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]


class MLP(nnx.Module):
    """A multilayer perceptron; the activation is applied between layers, not after the last."""

    def __init__(self, sizes: Sequence[int], activation: str, *, rngs: nnx.Rngs):
        self.activation = activation
        self.depth = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            setattr(self, f"linear{i}", nnx.Linear(fan_in, fan_out, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for i in range(self.depth):
            x = getattr(self, f"linear{i}")(x)
            if i < self.depth - 1:
                x = act(x)
        return x


def _split_params(name: str, module: nnx.Module) -> tuple[nnx.GraphDef, nnx.State]:
    """``nnx.split(module, nnx.Param, ...)``, refusing any state that is not a parameter."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    other = nnx.to_flat_state(rest)
    if len(other):
        path, variable = next(iter(other))
        where = "/".join(str(part) for part in path)
        raise ConfigError(
            f"{name}: expected an NNX module whose state is all nnx.Param (apply is pure), got "
            f"{type(variable).__name__} at {where!r}"
        )
    return graphdef, params


def _merged_apply(graphdef: nnx.GraphDef) -> Callable[[Any, jax.Array], jax.Array]:
    def apply(params: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params)(x)

    return apply


def pure(build: Callable[[nnx.Rngs], nnx.Module], *, name: str = "network") -> Network:
    """Turns an NNX module constructor ``build(rngs)`` into a :class:`Network`.

    ``init(key)`` builds the module with ``nnx.Rngs(params=key)`` and returns its parameters as
    a plain nested dict (``nnx.to_pure_dict``); ``apply(params, x)`` merges them into the
    module's graph (taken once, from ``nnx.eval_shape``: nothing is computed) and calls it.

    Args:
      build: ``build(rngs) -> nnx.Module``, e.g. ``lambda rngs: nnx.Linear(3, 2, rngs=rngs)``.
      name: what error messages call the network.

    Returns:
      A :class:`Network`.

    Raises:
      ConfigError: the module has state other than ``nnx.Param``.

    Example::

        net = pure(lambda rngs: nnx.Linear(3, 2, rngs=rngs))
        params = net.init(jax.random.key(0))     # {"kernel": [3, 2], "bias": [2]}
        y = net.apply(params, jnp.ones(3))       # [2]
    """
    graphdef, _ = _split_params(name, nnx.eval_shape(lambda: build(nnx.Rngs(0))))

    def init(key: jax.Array) -> dict:
        return nnx.to_pure_dict(_split_params(name, build(nnx.Rngs(params=key)))[1])

    return Network(init, _merged_apply(graphdef))


def network(name: str, value: object) -> Network:
    """Any accepted form of a network as a :class:`Network` (see the module docstring).

    Args:
      name: what error messages call the network (``"encoder"``, ``"generator"``, ...).
      value: an NNX module instance, a :class:`Network`, or a pair ``(init, apply)`` of
        callables.

    Returns:
      A :class:`Network`. For a module instance, ``init`` ignores its key and returns a copy of
      the module's parameters as they are now (later changes to the module are not seen).

    Raises:
      ConfigError: ``value`` is none of these, or a module has state other than ``nnx.Param``.
    """
    if isinstance(value, Network):
        return value
    if isinstance(value, nnx.Module):
        graphdef, state = _split_params(name, value)
        initial = nnx.to_pure_dict(state)

        def init(key: jax.Array) -> dict:
            # a copy: the trainer donates its parameter buffers, which must not be the module's
            return jax.tree.map(jnp.copy, initial)

        return Network(init, _merged_apply(graphdef))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(callable, value)):
        return Network(*value)
    raise ConfigError(
        f"{name}: expected an nnx.Module instance, a unigen.nets.Network or a pair "
        f"(init, apply), got {describe(value)}"
    )


def output_shape(
    name: str, net: Network, input_shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32
) -> tuple[int, ...]:
    """The shape of ``net.apply(net.init(key), x)`` for one ``x`` of ``input_shape``, found by
    ``jax.eval_shape`` (nothing is computed).

    Raises:
      ConfigError: the network fails on such an input or does not return one array; the message
        names the network, the input shape and the network's own error (its first line).
    """
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    try:
        params = jax.eval_shape(net.init, jax.random.key(0))
        out = jax.eval_shape(net.apply, params, x)
    except Exception as error:  # noqa: BLE001 - any failure of user code, reported in one line
        first = (str(error).strip().splitlines() or [""])[0][:160]
        raise ConfigError(
            f"{name}: expected a network that takes one input of shape {tuple(input_shape)}, "
            f"got {type(error).__name__}: {first}"
        ) from error
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ConfigError(
            f"{name}: expected one array out for an input of shape {tuple(input_shape)}, "
            f"got {describe(out)}"
        )
    return tuple(out.shape)


def mlp(sizes: Sequence[int], activation: str = "tanh") -> Network:
    """An MLP with layer widths ``sizes`` (input first, output last) as a :class:`Network`.

    Example::

        net = mlp([784, 400, 40], "relu")        # params {"linear0": ..., "linear1": ...}
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ConfigError(f"sizes: expected at least two positive widths, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return pure(lambda rngs: MLP(sizes, activation, rngs=rngs))
