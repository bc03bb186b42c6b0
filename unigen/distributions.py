r"""Thin helpers over :mod:`numpyro.distributions`: the leaf distributions every model uses.

What it is for: a model's pieces (a prior :math:`p(z)`, a decoder :math:`p_\theta(x \mid z)`, an
encoder :math:`q_\eta(z \mid x)`, a discriminator :math:`q_\phi(y \mid x)`) are functions
``params, given -> Distribution``; the algorithms and :func:`unigen.algebra.compile` call their
``log_prob``, ``rsample``/``sample``, and take KL divergences and entropies between them. When you
write your own model (or bind your own distributions in an objective), build the leaves with
these helpers so that they have the event shapes the rest of unigen expects and work under strict
dtype promotion.

The distributions themselves are numpyro's; this module only fixes the event shapes the models
use (a vector ``x`` or ``z`` is *one* event, so ``log_prob`` sums over its dimensions) and names
them after what they are:

* :func:`diagonal_normal` — :math:`\mathcal{N}(\mu, \operatorname{diag}(\sigma^2))`, one event.
* :func:`standard_normal` — :math:`\mathcal{N}(0, I_d)`, the usual prior :math:`p(z)`.
* :func:`bernoulli_logits` — independent Bernoulli pixels with log-odds ``logits``, one event.
* :class:`BernoulliLogits` — numpyro's, made usable under strict promotion (see below); also a
  scalar Bernoulli such as a discriminator's :math:`q_\phi(y \mid x)`.
* :class:`BinaryVectors` — a categorical distribution over every binary vector of a length,
  enumerable (an exact posterior over an SBN's hidden units).
* :func:`one_hot_categorical` (:class:`OneHotCategorical`) — categorical latents as one-hot
  vectors, whose ``log_prob`` also takes relaxed points of the simplex (what the discrete
  estimators REBAR, RELAX, MuProp, straight-through and Concrete evaluate a body at).
* :data:`Distribution` and :func:`kl_divergence` are numpyro's, re-exported (the closed-form KL
  where numpyro registers one, e.g. between two :func:`diagonal_normal` s).

Example (the VAE's leaves for one example, as :func:`unigen.models.vae_model` builds them)::

    from unigen import distributions

    out = encoder(x)                                    # [2 L]: mean, then log std of z
    q = distributions.diagonal_normal(out[:L], jnp.exp(out[L:]))
    z = q.rsample(key)                                  # pathwise: gradients reach the encoder
    p_x = distributions.bernoulli_logits(decoder(z))    # [D] log-odds
    elbo = p_x.log_prob(x) - distributions.kl_divergence(q, distributions.standard_normal(L))

numpyro's Bernoulli mixes ``bool`` and floating arrays inside ``sample`` and ``log_prob``, which
``jax_numpy_dtype_promotion="strict"`` refuses. :class:`BernoulliLogits` runs numpyro's own code
under standard promotion, and returns draws in the dtype of the logits (``0.0``/``1.0``) so that
they can be fed back to ``log_prob`` and to floating networks; nothing else changes.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, kl_divergence

from unigen.errors import ConfigError

__all__ = [
    "BernoulliLogits",
    "BinaryVectors",
    "Distribution",
    "OneHotCategorical",
    "bernoulli_logits",
    "diagonal_normal",
    "kl_divergence",
    "one_hot_categorical",
    "standard_normal",
]

MAX_ONE_HOT_STATES = 4096
"""A :class:`OneHotCategorical` with at most this many joint states lists them (enumerable)."""


class BernoulliLogits(dist.BernoulliLogits):
    """numpyro's ``BernoulliLogits``, usable under strict dtype promotion.

    ``sample`` returns floating ``0.0``/``1.0`` in the dtype of ``logits`` (numpyro returns an
    integer dtype); ``log_prob`` accepts floating or boolean values.
    """

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        with jax.numpy_dtype_promotion("standard"):
            draws = super().sample(key, sample_shape)
        return draws.astype(jnp.result_type(self.logits))

    def log_prob(self, value: ArrayLike) -> jax.Array:
        # v·l − softplus(l) = v log σ(l) + (1 − v) log σ(−l): smooth in l, so its gradient
        # v − σ(l) is right at l = 0 too (numpyro's clip/abs form gives v there, not v − ½),
        # and without numpyro's support mask, which sends a grey level such as 0.3 to −inf
        # where this gives the cross-entropy grey-level VAEs train on.
        logits = self.logits
        with jax.numpy_dtype_promotion("standard"):
            value = jnp.asarray(value, dtype=jnp.result_type(logits))
        return value * logits - jax.nn.softplus(logits)


class BinaryVectors(dist.Distribution):
    r"""A categorical distribution over the :math:`2^n` binary vectors of length n.

    State i is the binary expansion of i, most significant unit first (the order of
    :func:`unigen.models.sbn.latent_states`); ``logits[i]`` is its unnormalized log-probability.
    One event of shape ``[n]``: ``log_prob`` of a vector of 0.0/1.0 is a scalar. Enumerable:
    ``enumerate_support()`` is every state as a static float ``[2^n, n]`` array (in the logits'
    dtype), which :func:`unigen.algebra.compile` sums over exactly.

    Args:
      logits: ``[2^n]`` log-probabilities up to a constant (n ≥ 1).
    """

    arg_constraints: dict = {}
    support = dist.constraints.independent(dist.constraints.boolean, 1)
    has_enumerate_support = True

    def __init__(self, logits: ArrayLike) -> None:
        logits = jnp.asarray(logits)
        size = int(logits.shape[-1]) if logits.ndim == 1 else 0
        units = size.bit_length() - 1
        if size < 2 or 2 ** units != size:
            raise ConfigError(
                f"logits: got shape {logits.shape}, expected [2^n] for binary vectors of n >= 1 units"
            )
        self.logits = logits
        self.units = units
        super().__init__(batch_shape=(), event_shape=(units,))

    def _index(self, value: ArrayLike) -> jax.Array:
        powers = jnp.asarray(2 ** np.arange(self.units - 1, -1, -1), jnp.int32)
        return jnp.sum(jnp.asarray(value).astype(jnp.int32) * powers, axis=-1)

    def log_prob(self, value: ArrayLike) -> jax.Array:
        return jax.nn.log_softmax(self.logits)[self._index(value)]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        index = jax.random.categorical(key, self.logits, shape=sample_shape)
        return jnp.asarray(self.enumerate_support())[index]

    def enumerate_support(self, expand: bool = True) -> np.ndarray:
        states = itertools.product((0.0, 1.0), repeat=self.units)
        return np.array(list(states), dtype=np.dtype(self.logits.dtype))


class OneHotCategorical(dist.Distribution):
    r"""Independent categorical variables, each a one-hot vector; one event of shape ``logits.shape``.

    ``logits[..., c]`` is the unnormalized log-probability of category c of each variable (the
    last axis is the category). A value is a one-hot vector per variable (floating, in the
    logits' dtype) and

    .. math::  \log q(v) = \sum_{i} \sum_c v_{ic} \log \mathrm{softmax}(l_i)_c,

    the same formula at a relaxed point of the simplex (the cross-entropy, as
    :class:`BernoulliLogits` gives a grey level), which is what the relaxation-based estimators
    of :mod:`unigen.algebra.discrete_estimators` evaluate a body at; numpyro's ``Categorical``,
    whose values are integer indices, cannot be evaluated there. Enumerable when it has at most
    :data:`MAX_ONE_HOT_STATES` joint states (``enumerate_support()``: every combination, static,
    first variable slowest), so :func:`unigen.algebra.compile` sums over them exactly.

    Args:
      logits: ``[K]`` for one variable of K ≥ 2 categories, or ``[n, K]`` for n of them.
    """

    arg_constraints: dict = {}

    def __init__(self, logits: ArrayLike) -> None:
        logits = jnp.asarray(logits)
        if logits.ndim not in (1, 2) or logits.shape[-1] < 2 or not jnp.issubdtype(logits.dtype, jnp.floating):
            raise ConfigError(f"logits: got {logits.dtype} of shape {logits.shape}, expected floating "
                              "[K] or [n, K] with K >= 2 categories")
        self.logits = logits
        variables = logits.shape[0] if logits.ndim == 2 else 1
        self.states = logits.shape[-1] ** variables
        self.has_enumerate_support = self.states <= MAX_ONE_HOT_STATES
        super().__init__(batch_shape=(), event_shape=logits.shape)

    def log_prob(self, value: ArrayLike) -> jax.Array:
        with jax.numpy_dtype_promotion("standard"):
            value = jnp.asarray(value, dtype=self.logits.dtype)
        terms = value * jnp.broadcast_to(jax.nn.log_softmax(self.logits, axis=-1), value.shape)
        return jnp.sum(terms.reshape(terms.shape[:terms.ndim - self.logits.ndim] + (-1,)), axis=-1)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        shape = tuple(sample_shape) + self.logits.shape[:-1]
        index = jax.random.categorical(key, self.logits, shape=shape)
        return jax.nn.one_hot(index, self.logits.shape[-1], dtype=self.logits.dtype)

    @property
    def mean(self) -> jax.Array:
        return jax.nn.softmax(self.logits, axis=-1)

    @property
    def support(self) -> dist.constraints.Constraint:
        simplex = dist.constraints.simplex
        return simplex if self.logits.ndim == 1 else dist.constraints.independent(simplex, 1)

    def enumerate_support(self, expand: bool = True) -> np.ndarray:
        if not self.has_enumerate_support:
            raise ConfigError(f"logits: got {self.states} joint states, expected at most "
                              f"{MAX_ONE_HOT_STATES} to enumerate")
        categories = self.logits.shape[-1]
        variables = self.logits.shape[0] if self.logits.ndim == 2 else 1
        eye = np.eye(categories, dtype=np.dtype(self.logits.dtype))
        states = np.array([eye[list(c)] for c in itertools.product(range(categories), repeat=variables)])
        return states.reshape((len(states),) + self.logits.shape)


def one_hot_categorical(logits: ArrayLike) -> OneHotCategorical:
    r"""Categorical latents with logits ``[K]`` (one variable) or ``[n, K]`` (n independent ones),
    valued as one-hot vectors: :class:`OneHotCategorical`.

    Example::

        q = one_hot_categorical(jnp.zeros(3))           # a fair three-sided die
        q.sample(jax.random.key(0))                     # e.g. [0., 1., 0.]
        q.log_prob(jnp.array([0.0, 1.0, 0.0]))          # log(1/3)
    """
    return OneHotCategorical(logits)


def diagonal_normal(loc: ArrayLike, scale: ArrayLike) -> Distribution:
    r""":math:`\mathcal{N}(\mathrm{loc}, \operatorname{diag}(\mathrm{scale}^2))` over a vector.

    Args:
      loc: ``[d]`` means.
      scale: ``[d]`` standard deviations (positive), or a scalar shared by every dimension.

    Returns:
      ``Normal(loc, scale).to_event(1)``: ``log_prob`` of a ``[d]`` vector is a scalar; ``rsample``
      is pathwise, :math:`\mathrm{loc} + \mathrm{scale} \odot \epsilon`.

    Example::

        q = diagonal_normal(jnp.zeros(3), 0.5)          # N(0, 0.25 I_3)
        q.log_prob(jnp.ones(3))                         # one scalar: the sum over the 3 dims
    """
    loc = jnp.asarray(loc)
    scale = jnp.broadcast_to(jnp.asarray(scale, dtype=loc.dtype), loc.shape)
    return dist.Normal(loc, scale).to_event(1)


def standard_normal(dim: int, dtype: jnp.dtype = jnp.float32) -> Distribution:
    r""":math:`\mathcal{N}(0, I_{\mathrm{dim}})`, one event of ``dim`` dimensions.

    Args:
      dim: the dimension (a positive int).
      dtype: the floating dtype of its parameters (and so of its draws); a model passes its
        parameters' dtype so that float64 runs stay float64 under strict promotion.

    Raises:
      ConfigError: ``dim`` is not a positive int.

    Example::

        prior = standard_normal(8)                      # p(z) = N(0, I_8)
        z = prior.rsample(jax.random.key(0))            # [8]
    """
    if int(dim) != dim or dim < 1:
        raise ConfigError(f"dim: expected a positive int, got {dim!r}")
    return diagonal_normal(jnp.zeros((int(dim),), dtype), jnp.ones((int(dim),), dtype))


def bernoulli_logits(logits: ArrayLike) -> Distribution:
    r"""Independent Bernoulli variables with log-odds ``logits``, one event over the vector.

    :math:`\log p(x) = \sum_i x_i \log \sigma(l_i) + (1 - x_i) \log(1 - \sigma(l_i))`; the values
    may be any number in [0, 1] (a grey pixel gives the cross-entropy, as is usual for MNIST
    VAEs that are trained on intensities).

    Args:
      logits: ``[d]`` log-odds.

    Example::

        p = bernoulli_logits(jnp.zeros(4))              # four fair coins
        p.log_prob(jnp.array([0.0, 1.0, 1.0, 0.0]))     # 4 log(1/2) = -2.77
        p.sample(jax.random.key(0))                     # 0.0/1.0 in the logits' dtype
    """
    return BernoulliLogits(jnp.asarray(logits)).to_event(1)
