r"""Shared plumbing of the discrete-latent estimators: families, noise, hard and relaxed draws.

Every estimator for Bernoulli or categorical latents (:mod:`~unigen.estimators.muprop`,
:mod:`~unigen.estimators.rebar`, :mod:`~unigen.estimators.relax`, :mod:`~unigen.estimators.arm`,
:mod:`~unigen.estimators.straight_through`) is written in two parts:

* the **draw**: uniform noise ``u`` (and ``v``) of the shape of the logits, from the key;
* the **surrogate** given the integrand f, the family and its logits :math:`l`: a scalar whose
  value is the N-draw estimate of :math:`\mathbb{E}[f]` and whose gradient in :math:`l` is the
  estimator. The gradient in the parameters λ is the chain rule through
  :math:`l(\lambda)` (:func:`gradient_through_logits`), which is exact because the expectation
  depends on λ only through the logits.

Bernoulli draws are ``0.0``/``1.0`` in the dtype of the logits, with
:math:`b = H(z)`, :math:`z = l + \log u - \log(1 - u)` (logistic noise). Categorical draws are
one-hot vectors (the last axis of the logits is the category), with
:math:`b = \mathrm{onehot}(\arg\max_c z_c)`, :math:`z = \log\mathrm{softmax}(l) - \log(-\log u)`
(Gumbel noise): f receives the one-hot vector. A categorical is numpyro's ``Categorical``
(whose own values are indices; the functions here hand f one-hot vectors all the same) or
:class:`unigen.distributions.OneHotCategorical` (whose values are the one-hot vectors).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from unigen.distributions import OneHotCategorical
from unigen.errors import ConfigError
from unigen.estimators._common import DistributionFn

BERNOULLI = "Bernoulli"
CATEGORICAL = "categorical"
DISCRETE = (BERNOULLI, CATEGORICAL)

__all__ = [
    "BERNOULLI", "CATEGORICAL", "DISCRETE", "base_distribution", "check_family", "conditional_relaxed_logits",
    "estimate", "family_of", "gradient_through_logits", "hard", "log_mass", "mean", "relaxed_logits", "soft", "uniform",
]


def base_distribution(distribution: Any) -> Any:
    """The leaf distribution under any ``.to_event`` (``Independent``) wrappers."""
    while isinstance(distribution, dist.Independent):
        distribution = distribution.base_dist
    return distribution


def family_of(distribution: Any) -> str:
    """``"Bernoulli"``, ``"categorical"`` or the class name of any other leaf distribution."""
    base = base_distribution(distribution)
    if isinstance(base, (dist.BernoulliLogits, dist.BernoulliProbs)):
        return BERNOULLI
    if isinstance(base, (dist.CategoricalLogits, dist.CategoricalProbs, OneHotCategorical)):
        return CATEGORICAL
    return type(base).__name__


def check_family(distribution: Any, who: str, families: Sequence[str] = DISCRETE) -> tuple[str, jax.Array]:
    """``(family, logits)`` of ``distribution`` if its family is one of ``families``, else a
    :class:`ConfigError` naming the estimator ``who``, the family seen and those accepted."""
    family = family_of(distribution)
    if family not in families:
        raise ConfigError(
            f"distribution: {who!r} expects {' or '.join(families)} latents, got a {family} distribution"
        )
    return family, base_distribution(distribution).logits


def gradient_through_logits(
    distribution: DistributionFn,
    params: Any,
    who: str,
    families: Sequence[str],
    surrogate: Callable[[str, jax.Array], jax.Array],
) -> Any:
    r""":math:`\nabla_\lambda` of ``surrogate(family, l(λ))``: the estimator in the parameters."""

    def objective(p: Any) -> jax.Array:
        return surrogate(*check_family(distribution(p), who, families))

    return jax.grad(objective)(params)


def uniform(key: jax.Array, n_samples: int, logits: jax.Array) -> jax.Array:
    """``[N, *logits.shape]`` uniform noise strictly inside (0, 1)."""
    tiny = jnp.finfo(logits.dtype).tiny
    return jax.random.uniform(key, (n_samples,) + logits.shape, logits.dtype, minval=tiny, maxval=1.0)


def _normalized(family: str, logits: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(logits, axis=-1) if family == CATEGORICAL else logits


def relaxed_logits(family: str, logits: jax.Array, u: jax.Array) -> jax.Array:
    r"""The noisy logits :math:`z(l, u)` whose hard threshold / argmax is a draw (module docstring);
    ``u`` may carry leading draw axes."""
    logits = jnp.broadcast_to(logits, u.shape)
    if family == CATEGORICAL:
        return _normalized(family, logits) - jnp.log(-jnp.log(u))
    return logits + jnp.log(u) - jnp.log1p(-u)


def conditional_relaxed_logits(family: str, logits: jax.Array, b: jax.Array, v: jax.Array) -> jax.Array:
    r""":math:`\tilde z \sim p(z \mid b)`, reparameterized in the logits with noise v (REBAR).

    Bernoulli, :math:`p = \sigma(l)`: given b = 1 the uniform behind z lies in (1 − p, 1), given
    b = 0 in (0, 1 − p), so :math:`u' = 1 - p(1 - v)` or :math:`u' = v(1 - p)` and
    :math:`\tilde z = l + \log u' - \log(1 - u')`, i.e. Tucker et al.'s
    :math:`\log\bigl(\frac{v}{(1-v)(1-p)} + 1\bigr)` and :math:`-\log\bigl(\frac{v}{(1-v)p} + 1\bigr)`.

    Categorical, :math:`\pi = \mathrm{softmax}(l)`: the maximum of Gumbel-perturbed normalized
    logits is a standard Gumbel independent of the argmax, so
    :math:`\tilde z_b = -\log(-\log v_b)` and, truncating the others below it,
    :math:`\tilde z_c = -\log\bigl(-\log v_c / \pi_c - \log v_b\bigr)` for c ≠ b.
    """
    logits = jnp.broadcast_to(logits, v.shape)
    if family == CATEGORICAL:
        log_p = _normalized(family, logits)
        top = jnp.log(-jnp.log(jnp.sum(b * v, axis=-1, keepdims=True)))  # log(-log v_b)
        others = -jnp.logaddexp(jnp.log(-jnp.log(v)) - log_p, top)
        return jnp.where(b > 0, -top, others)
    log_p, log_not_p = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    p, not_p = jnp.exp(log_p), jnp.exp(log_not_p)
    log_u = jnp.where(b > 0, jnp.log1p(-p * (1 - v)), jnp.log(v) + log_not_p)
    log_not_u = jnp.where(b > 0, log_p + jnp.log1p(-v), jnp.log1p(-v * not_p))
    return logits + log_u - log_not_u


def hard(family: str, z: jax.Array) -> jax.Array:
    """The discrete draw of noisy logits z: ``H(z)`` or ``onehot(argmax z)``, without a gradient."""
    z = jax.lax.stop_gradient(z)
    if family == CATEGORICAL:
        return jax.nn.one_hot(jnp.argmax(z, axis=-1), z.shape[-1], dtype=z.dtype)
    return (z > 0).astype(z.dtype)


def soft(family: str, z: jax.Array, temperature: jax.Array | float) -> jax.Array:
    r"""The Concrete relaxation :math:`\sigma(z/\tau)` or :math:`\mathrm{softmax}(z/\tau)`."""
    if family == CATEGORICAL:
        return jax.nn.softmax(z / temperature, axis=-1)
    return jax.nn.sigmoid(z / temperature)


def log_mass(family: str, logits: jax.Array, b: jax.Array) -> jax.Array:
    r""":math:`\log q_l(b)` of one draw, summed over all coordinates (the score's log-density);
    Bernoulli: :math:`\sum_d b_d l_d - \mathrm{softplus}(l_d)`, i.e.
    :math:`b \log\sigma(l) + (1 - b)\log\sigma(-l)` with one softplus instead of two."""
    if family == CATEGORICAL:
        return jnp.sum(b * jax.nn.log_softmax(logits, axis=-1))
    return jnp.sum(b * logits - jax.nn.softplus(logits))


def mean(family: str, logits: jax.Array) -> jax.Array:
    r""":math:`\mathbb{E}[b]`: :math:`\sigma(l)` or :math:`\mathrm{softmax}(l)`."""
    return jax.nn.softmax(logits, axis=-1) if family == CATEGORICAL else jax.nn.sigmoid(logits)


def estimate(values: jax.Array, correction: jax.Array) -> jax.Array:
    r"""The surrogate :math:`\bar f + (c - \bot(c))`: value :math:`\bar f`, gradient :math:`\nabla c`."""
    return jnp.mean(values) + (correction - jax.lax.stop_gradient(correction))
