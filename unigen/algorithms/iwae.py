r"""The importance-weighted autoencoder: a tighter bound from k pathwise draws (Burda et al.).

.. math::
   \mathcal{L}_k(\theta, \eta; x) = \mathbb{E}_{z_1, \ldots, z_k \sim q_\eta(z \mid x)}\left[
   \log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(x, z_i)}{q_\eta(z_i \mid x)}\right]

:math:`\mathcal{L}_1` is the ELBO (§2.1); :math:`\mathcal{L}_k \le \mathcal{L}_{k+1} \le \log
p_\theta(x)` and :math:`\mathcal{L}_k \to \log p_\theta(x)` as :math:`k \to \infty` when the
weights are bounded. The sum is taken in log space (log-sum-exp), so no weight is exponentiated.

Declared in the algebra (:data:`OBJECTIVE`, :data:`DECLARATION`, phase ``"iwae"`` in
:math:`\theta` and :math:`\eta`) with the joint written as :math:`p(z)\,p_\theta(x \mid z)`, the
objective is the bound averaged over the data,

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{z_1, \ldots, z_k \sim q_\eta(z \mid x)}\left[\log \frac{1}{k} \sum_{i=1}^{k} \frac{p(z_i) p_\theta(x \mid z_i)}{q_\eta(z_i \mid x)}\right]\right]

and :func:`iwae` trains it compiled by :func:`unigen.algebra.compile` (with a number for k), which
builds the encoder once per example for the draws and the :math:`\log q_\eta` terms alike.
:func:`reference_loss` is the hand-written loss it replaced (the oracle of the tests).

:func:`log_importance_weights` and :func:`iwae_bound` use only the :class:`~unigen.core.Joint` and
:class:`~unigen.core.Inference` protocols (``joint.log_prob``, ``inference.sample`` and
``inference.log_prob``), so they apply to any pair over ``x`` and a continuous ``z``; the same code
estimates :math:`-\log p(x)` in :func:`unigen.metrics.is_nll`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from typing import Callable

from unigen.algebra.assembly import algorithm
from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.expr import E, importance_weighted_bound
from unigen.algorithms.vae import DECODER, ENCODER, P_DATA, PRIOR, batch_data, bindings, init_params
from unigen.core import Algorithm, Batch, Metrics, Params, PRNGKey
from unigen.models.vae import VAEModel, positive_int
from unigen.models.values import bernoulli_entries

__all__ = [
    "DECLARATION",
    "OBJECTIVE",
    "iwae",
    "iwae_bound",
    "log_importance_weights",
    "objective",
    "reference_loss",
]


def objective(k: int | None = None) -> E:
    r"""The IWAE objective averaged over the data, with k draws (``None``: the symbol k)."""
    return E(P_DATA, importance_weighted_bound(PRIOR * DECODER, ENCODER, k))


OBJECTIVE = objective()
"""The IWAE objective with a symbolic k, as the lecture-style text writes it."""

DECLARATION = Declaration(
    name="iwae",
    title="Importance-weighted autoencoder",
    section="§2.3 (Burda et al. 2016)",
    phases=(PhaseObjective("iwae", ("theta", "eta"), OBJECTIVE, "max"),),
    figure5=None,
)
"""The IWAE declaration: one phase in θ and η."""


def log_importance_weights(
    model: VAEModel,
    params: Params,
    key: PRNGKey,
    x: jax.Array,
    k: int,
    *,
    batch_size: int | None = None,
) -> jax.Array:
    r"""The k log weights :math:`\log p_\theta(x, z_i) - \log q_\eta(z_i \mid x)` of one example.

    Args:
      model: anything with ``joint`` and ``inference`` (a :class:`~unigen.models.vae.VAEModel`).
      params: ``{"theta": ..., "eta": ...}``.
      key: the PRNG key of this example; draw i uses ``jax.random.split(key, k)[i]``.
      x: one example, ``[D]``.
      k: the number of draws.
      batch_size: compute the weights ``batch_size`` draws at a time (``jax.lax.map``), to bound
        memory for large k; ``None`` computes all k at once. The result does not depend on it.

    Returns:
      ``[k]`` log weights, pathwise in ``params``.
    """
    k = positive_int("k", k)
    if batch_size is not None:
        batch_size = positive_int("batch_size", batch_size)
    theta, eta = params["theta"], params["eta"]

    def log_weight(key_i: PRNGKey) -> jax.Array:
        z = model.inference.sample(eta, key_i, {"x": x})["z"]
        log_p = model.joint.log_prob(theta, {"x": x, "z": z}, {})
        log_q = model.inference.log_prob(eta, {"z": z}, {"x": x})
        return log_p - log_q

    keys = jax.random.split(key, k)
    if batch_size is None or batch_size >= k:
        return jax.vmap(log_weight)(keys)
    return jax.lax.map(log_weight, keys, batch_size=batch_size)


def iwae_bound(
    model: VAEModel,
    params: Params,
    key: PRNGKey,
    x: jax.Array,
    k: int,
    *,
    batch_size: int | None = None,
) -> jax.Array:
    r"""A one-draw estimate of the importance-weighted bound of one example.

    .. math::
       \mathcal{L}_k(\theta, \eta; x) = \mathbb{E}_{z_1, \ldots, z_k \sim q_\eta(z \mid x)}\left[
       \log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(x, z_i)}{q_\eta(z_i \mid x)}\right]

    computed as :math:`\operatorname{logsumexp}_i \log w_i - \log k` (see
    :func:`log_importance_weights` for the arguments). With ``k=1`` it equals the ELBO with
    ``kl="monte_carlo"`` and the same key.

    Returns:
      A scalar, differentiable in ``params``.
    """
    log_w = log_importance_weights(model, params, key, x, k, batch_size=batch_size)
    return jax.nn.logsumexp(log_w) - math.log(k)


def iwae(model: VAEModel, k: int) -> Algorithm:
    r"""The IWAE algorithm: one phase that maximizes the k-sample bound in θ and η.

    .. math::
       \mathcal{L}_k(\theta, \eta; x) = \mathbb{E}_{z_1, \ldots, z_k \sim q_\eta(z \mid x)}\left[
       \log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(x, z_i)}{q_\eta(z_i \mid x)}\right]

    The phase ``"iwae"`` updates ``("theta", "eta")``; its loss is ``objective(k)`` compiled by
    :func:`unigen.algebra.compile` and negated: on ``batch = {"x": [B, D]}`` the batch mean of
    :math:`-\mathcal{L}_k` (example i drawn with ``jax.random.split(key, B)[i]``, its draw j with
    ``split(that key, k)[j]``, as :func:`log_importance_weights`), equal to
    :func:`reference_loss` to float rounding. Metrics: ``{"loss", "iwae_bound"}``.

    Args:
      model: a :class:`~unigen.models.vae.VAEModel`.
      k: the number of importance samples per example.

    Returns:
      An :class:`~unigen.core.Algorithm` with ``init(key) -> {"theta", "eta"}``, compiled by
      :func:`unigen.algebra.algorithm` from :data:`DECLARATION` with k set (its ``objective``
      is that declaration, whose phase objective is ``objective(k)``).
    """
    k = positive_int("k", k)
    expression = objective(k)
    declared = DECLARATION._replace(
        phases=(DECLARATION.phases[0]._replace(objective=expression),))
    return algorithm(
        declared,
        bindings(model),
        lambda key: init_params(model, key),
        metrics={"iwae_bound": expression},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )._replace(bernoulli=bernoulli_entries(model))


def reference_loss(model: VAEModel, k: int) -> Callable[[Params, PRNGKey, Batch], tuple[jax.Array, Metrics]]:
    r"""The hand-written IWAE loss (before the algebra compiled it): the batch mean of
    :math:`-\mathcal{L}_k` by :func:`log_importance_weights`; metrics ``{"loss", "iwae_bound",
    "elbo"}`` (``"elbo"``: the mean log weight). The oracle of the compiled loss's tests."""
    k = positive_int("k", k)

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        keys = jax.random.split(key, x.shape[0])
        log_w = jax.vmap(lambda key_i, x_i: log_importance_weights(model, params, key_i, x_i, k))(
            keys, x
        )
        bound = jnp.mean(jax.nn.logsumexp(log_w, axis=-1) - math.log(k))
        return -bound, {"loss": -bound, "iwae_bound": bound, "elbo": jnp.mean(log_w)}

    return loss
