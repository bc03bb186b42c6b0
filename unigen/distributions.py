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

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, kl_divergence

from unigen.errors import ConfigError

__all__ = [
    "BernoulliLogits",
    "Distribution",
    "bernoulli_logits",
    "diagonal_normal",
    "kl_divergence",
    "standard_normal",
]


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
