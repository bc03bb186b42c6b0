r"""Predictability minimization (lecture §1.1.3; Schmidhuber 1992): an encoder and its predictors.

An encoder :math:`E_\eta` maps the data :math:`x \in \mathbb{R}^D` to K code units
:math:`c = E_\eta(x) \in (0, 1)^K`, :math:`c = \sigma(f_\eta(x))` with :math:`f_\eta` an MLP
(linear by default, as in Schmidhuber's experiments). Above the code sits the *predictability
layer*: one predictor per unit, :math:`P_{\phi,i}(c_{-i}) \in (0, 1)`, that sees every unit but
the i-th. Training (:mod:`unigen.algorithms.pm`) makes the predictors minimize their squared error
and the encoder maximize it, so that in the end no unit is predictable from the others: a
factorial code. To keep the code informative the encoder also carries a decoder
:math:`D_\eta(c) = V c + b`, linear on purpose: a code whose units are binary and from which a
linear map reconstructs the data exactly is, for data :math:`x = A s` of independent binary
sources :math:`s`, the sources themselves up to permutation and flips (an affine function of
:math:`s \in \{0, 1\}^K` that takes only the values 0 and 1 depends on at most one source), while
a factorial code alone is only determined up to any bijection of :math:`\{0, 1\}^K`.

The parameters are two groups, plain dicts:

* ``eta`` (the encoder): ``{"encoder": MLP [D, *hidden, K], "decoder": linear [K, D]}``;
* ``phi`` (the predictors): one MLP ``[K-1, *predictor_hidden, 1]`` per unit, stacked along a
  leading axis of size K.

Every function acts on one example; batch with ``jax.vmap``. :func:`pm_sources` makes the data
of the issue's measurable result: K independent fair bits through a fixed random invertible
mixing.
"""

from __future__ import annotations

import numbers
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unigen import nets
from unigen.core import Params, PRNGKey
from unigen.errors import ConfigError, DataError, describe
from unigen.models.values import positive_int

__all__ = [
    "SOURCES_PREFIX",
    "SOURCES_SIZES",
    "PMModel",
    "PMSources",
    "other_units",
    "pm_model",
    "pm_sources",
    "sources_split",
]


class PMModel(NamedTuple):
    r"""An encoder, its linear decoder and one predictor per code unit, as pure functions.

    Attributes:
      data_dim: D.
      code_dim: K, the number of code units (at least 2).
      init_encoder: ``init_encoder(key) -> eta``.
      init_predictors: ``init_predictors(key) -> phi``.
      encode: ``encode(eta, x [D]) -> c [K]``, :math:`c = \sigma(f_\eta(x)) \in (0, 1)^K`.
      decode: ``decode(eta, c [K]) -> x̂ [D]``, the linear reconstruction :math:`V c + b`.
      predict: ``predict(phi, c [K]) -> ĉ [K]``, :math:`\hat c_i = P_{\phi,i}(c_{-i})`; the i-th
        prediction does not depend on :math:`c_i`.
    """

    data_dim: int
    code_dim: int
    init_encoder: Callable[[PRNGKey], Params]
    init_predictors: Callable[[PRNGKey], Params]
    encode: Callable[[Params, jax.Array], jax.Array]
    decode: Callable[[Params, jax.Array], jax.Array]
    predict: Callable[[Params, jax.Array], jax.Array]


def other_units(code_dim: int) -> np.ndarray:
    """``[K, K-1]`` int array whose row i lists the units other than i, in order."""
    return np.array([[j for j in range(code_dim) if j != i] for i in range(code_dim)], np.int32)


def _widths(name: str, value: object) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{name}: expected a sequence of positive ints, got {describe(value)}")
    return tuple(positive_int(f"{name}[{i}]", width) for i, width in enumerate(value))


def pm_model(
    data_dim: int,
    code_dim: int,
    *,
    hidden: Sequence[int] = (),
    predictor_hidden: Sequence[int] = (16,),
    activation: str = "tanh",
    predictor_activation: str = "tanh",
) -> PMModel:
    """The encoder, decoder and predictors of predictability minimization.

    Args:
      data_dim: D, the data dimension.
      code_dim: K, the number of code units, at least 2 (a lone unit has nothing to be
        predicted from).
      hidden: hidden widths of the encoder MLP; ``()`` (default) is a linear encoder followed
        by the sigmoid.
      predictor_hidden: hidden widths of each predictor MLP (default one layer of 16, so that
        a predictor can detect dependencies a linear one misses, such as an exclusive or).
      activation: the encoder MLP's activation (see :data:`unigen.nets.ACTIVATIONS`; unused
        when ``hidden`` is empty).
      predictor_activation: the predictors' activation.

    Raises:
      ConfigError: a size is not a positive int, ``code_dim < 2``, or an unknown activation.
    """
    data_dim = positive_int("data_dim", data_dim)
    code_dim = positive_int("code_dim", code_dim)
    if code_dim < 2:
        raise ConfigError(f"code_dim: expected at least 2 code units, got {code_dim}")
    hidden = _widths("hidden", hidden)
    predictor_hidden = _widths("predictor_hidden", predictor_hidden)
    encoder = nets.mlp([data_dim, *hidden, code_dim], activation)
    decoder = nets.mlp([code_dim, data_dim], activation)
    predictor = nets.mlp([code_dim - 1, *predictor_hidden, 1], predictor_activation)
    others = other_units(code_dim)

    def init_encoder(key: PRNGKey) -> Params:
        key_encoder, key_decoder = jax.random.split(key)
        return {"encoder": encoder.init(key_encoder), "decoder": decoder.init(key_decoder)}

    def init_predictors(key: PRNGKey) -> Params:
        return jax.vmap(predictor.init)(jax.random.split(key, code_dim))  # stacked, [K, ...]

    def encode(eta: Params, x: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(encoder.apply(eta["encoder"], _one(x, data_dim, "x")))

    def decode(eta: Params, c: jax.Array) -> jax.Array:
        return decoder.apply(eta["decoder"], _one(c, code_dim, "c"))

    def predict(phi: Params, c: jax.Array) -> jax.Array:
        rest = _one(c, code_dim, "c")[others]  # [K, K-1]: row i is c without c_i
        logits = jax.vmap(predictor.apply)(phi, rest)  # [K, 1]
        return jax.nn.sigmoid(logits[:, 0])

    # Compiled: building the modules op by op takes seconds, one compiled call a fraction.
    return PMModel(data_dim, code_dim, jax.jit(init_encoder), jax.jit(init_predictors), encode, decode,
                   predict)


def _one(value: jax.Array, dim: int, name: str) -> jax.Array:
    value = jnp.asarray(value)
    if value.shape != (dim,):
        raise DataError(
            f"{name}: expected one example of shape ({dim},) (batch with jax.vmap), "
            f"got {describe(value)}"
        )
    return value


class PMSources(NamedTuple):
    """Data made of independent binary sources through a fixed invertible mixing.

    Attributes:
      x: ``float32 [N, K]``, row n is :math:`A (2 s_n - 1)`.
      sources: ``int32 [N, K]``, the bits :math:`s`.
      mixing: ``float32 [K, K]``, :math:`A`.
    """

    x: np.ndarray
    sources: np.ndarray
    mixing: np.ndarray


MAX_CONDITION = 10.0
"""The mixing matrix is redrawn until its condition number is at most this (well invertible)."""


def pm_sources(n: int, k: int = 4, *, p: float = 0.5, seed: int = 0, mixing_seed: int = 0) -> PMSources:
    r"""N examples of K independent bits :math:`s` mixed as :math:`x = A (2 s - 1)`.

    :math:`A` has standard normal entries with every row scaled to unit norm (so each
    :math:`x_j` has unit variance for fair bits), drawn from ``mixing_seed`` and redrawn until
    its condition number is at most :data:`MAX_CONDITION`; train and test sets made with
    different ``seed`` s and the same ``mixing_seed`` share the mixing.

    Args:
      n: the number of examples.
      k: K, the number of sources (and the data dimension), at least 2.
      p: the probability that a source is 1 (default 1/2, fair bits).
      seed: seeds the sources.
      mixing_seed: seeds the mixing matrix.

    Raises:
      ConfigError: ``n`` or ``k`` not a positive int, ``k < 2``, ``p`` outside (0, 1), or a
        negative seed.
    """
    n = positive_int("n", n)
    k = positive_int("k", k)
    if k < 2:
        raise ConfigError(f"k: expected at least 2 sources, got {k}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 < p < 1.0:
        raise ConfigError(f"p: expected a probability in (0, 1), got {describe(p)}")
    for name, value in (("seed", seed), ("mixing_seed", mixing_seed)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigError(f"{name}: expected a non-negative int, got {describe(value)}")
    mixing_rng = np.random.default_rng([int(mixing_seed), k])
    while True:
        mixing = mixing_rng.standard_normal((k, k))
        mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)  # every x_j has unit variance
        if np.linalg.cond(mixing) <= MAX_CONDITION:
            break
    sources = (np.random.default_rng([int(seed), k, n]).random((n, k)) < p).astype(np.int64)
    x = (2.0 * sources - 1.0) @ mixing.T
    return PMSources(x.astype(np.float32), sources.astype(np.int32), mixing.astype(np.float32))


SOURCES_PREFIX = "pm-sources:"
"""The data set name ``pm-sources:K`` (the command line's ``--data``): :func:`sources_split`."""

SOURCES_SIZES = {"train": 8192, "test": 2048}
"""Examples per split of ``pm-sources:K``."""


def sources_split(name: str, split: str) -> PMSources:
    """The split ``split`` of the data set ``name = "pm-sources:K"``.

    K fair sources, :data:`SOURCES_SIZES` examples, the mixing of ``mixing_seed=0`` for every
    split, and the sources seeded by the split (``train`` 1, ``test`` 2), so the splits are
    independent draws through the same mixing.

    Raises:
      ConfigError: ``name`` is not ``pm-sources:K`` with an integer K >= 2, or an unknown split.
    """
    if not isinstance(name, str) or not name.startswith(SOURCES_PREFIX):
        raise ConfigError(f"data: expected {SOURCES_PREFIX}K, got {describe(name)}")
    text = name[len(SOURCES_PREFIX):]
    if not text.isdigit() or int(text) < 2:
        raise ConfigError(f"data: expected {SOURCES_PREFIX}K with an integer K >= 2, got {name!r}")
    if split not in SOURCES_SIZES:
        raise ConfigError(f"split of {name}: expected one of {sorted(SOURCES_SIZES)}, got {describe(split)}")
    seed = 1 if split == "train" else 2
    return pm_sources(SOURCES_SIZES[split], int(text), seed=seed, mixing_seed=0)
