r"""Reweighted wake-sleep (Bornschein & Bengio 2015): wake-sleep with K importance samples.

A generative model :math:`p_\theta(x, h)` and a recognition model :math:`q_\phi(h \mid x)` (a
Helmholtz machine, :mod:`unigen.models.helmholtz`). For each example, K draws
:math:`h_1, \ldots, h_K \sim q_\phi(h \mid x)` and their self-normalized importance weights

.. math::
   \tilde w_k = \frac{w_k}{\sum_{j=1}^{K} w_j}, \qquad
   w_k = \frac{p_\theta(x, h_k)}{q_\phi(h_k \mid x)}

give three updates, each a phase of :func:`rws`:

The wake phase for θ (phase ``"wake_theta"``) ascends the importance-weighted bound, whose
θ-gradient is :math:`\sum_k \tilde w_k \nabla_\theta \log p_\theta(x, h_k)`:

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{h_1, \ldots, h_k \sim q_\phi(h \mid x)}\left[\log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(x, h_i)}{q_\phi(h_i \mid x)}\right]\right]

The wake phase for φ (phase ``"wake_phi"``) fits :math:`q_\phi` to the posterior on data,
minimizing :math:`\mathrm{KL}(p_\theta(h \mid x) \,\|\, q_\phi(h \mid x))`; the posterior
expectation is estimated by the same weights, gradient
:math:`\sum_k \tilde w_k \nabla_\phi \log q_\phi(h_k \mid x)` (biased for finite K, consistent as
:math:`K \to \infty`):

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{p_\theta(h \mid x)}\left[\log q_\phi(h \mid x)\right]\right]

The sleep phase for φ (phase ``"sleep_phi"``) is wake-sleep's sleep phase, on dreams:

.. math::
   \mathbb{E}_{p_\theta(x \mid h) p(h)}\left[\log q_\phi(h \mid x)\right]

With ``recognition="both"`` (the default; Bornschein & Bengio found it best) both φ phases run,
one after the other, sharing φ's optimizer state. The losses are written by hand: the bound is
an :class:`~unigen.algebra.expr.ImportanceWeightedBound` node, which
:func:`unigen.algebra.compile` does not compile yet. The sleep phase is
:func:`unigen.algorithms.wake_sleep.sleep_phase` on the group ``"phi"``.

:data:`DECLARATION` is not in the registry of :mod:`unigen.algorithms.declarations` (its test
lists the lecture's algorithms); it passes :func:`unigen.algebra.declaration.check`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from unigen.algebra.declaration import Declaration, PhaseObjective, check
from unigen.algebra.expr import E, dist, importance_weighted_bound, log
from unigen.algorithms.vae import batch_data
from unigen.algorithms.wake_sleep import sleep_phase
from unigen.core import Algorithm, Batch, Metrics, Params, Phase, PRNGKey
from unigen.errors import ConfigError
from unigen.models.helmholtz import HelmholtzMachine
from unigen.models.vae import positive_int

__all__ = [
    "DECLARATION",
    "RECOGNITION_UPDATES",
    "SLEEP_PHI",
    "WAKE_PHI",
    "WAKE_THETA",
    "init_params",
    "rws",
    "self_normalized_weights",
    "wake_phi_phase",
    "wake_theta_phase",
]

RECOGNITION_UPDATES = ("wake", "sleep", "both")

p_data = dist("p_data", over="x")
joint = dist("p", over="x,h", params="theta")  # p_θ(x, h)
posterior = dist("p", over="h", given="x", params="theta")  # p_θ(h|x)
generative = dist("p", over="x", given="h", params="theta")  # p_θ(x|h)
prior = dist("p", over="h")  # p(h)
proposal = dist("q", over="h", given="x", params="phi")  # q_φ(h|x)

WAKE_THETA = E(p_data, importance_weighted_bound(joint, proposal))
"""The wake-θ objective: the importance-weighted bound, maximized in θ."""

WAKE_PHI = E(p_data, E(posterior, log(proposal)))
"""The wake-φ objective, maximized in φ (the posterior expectation by self-normalized IS)."""

SLEEP_PHI = E(generative * prior, log(proposal))
"""The sleep-φ objective, maximized in φ (wake-sleep's sleep phase)."""

DECLARATION = check(Declaration(
    name="rws",
    title="Reweighted wake-sleep",
    section="§2.2 (Bornschein & Bengio 2015)",
    phases=(
        PhaseObjective("wake_theta", "theta", WAKE_THETA, "max"),
        PhaseObjective("wake_phi", "phi", WAKE_PHI, "max"),
        PhaseObjective("sleep_phi", "phi", SLEEP_PHI, "max"),
    ),
    figure5=None,
))
"""The declaration: the three phases (``rws(..., recognition="both")`` runs all three)."""


def init_params(model: HelmholtzMachine, key: PRNGKey) -> dict[str, Params]:
    """``{"theta": generative SBN params, "phi": recognition SBN params}``."""
    key_theta, key_phi = jax.random.split(key)
    return {"theta": model.joint.init(key_theta), "phi": model.inference.init(key_phi)}


def _draws(model: HelmholtzMachine, params: Params, key: PRNGKey, x: jax.Array, k: int):
    """K draws of z from q_φ(z|x) and their log p_θ(x, z) and log q_φ(z|x); draw i uses
    ``jax.random.split(key, k)[i]`` (as :func:`unigen.algorithms.iwae.log_importance_weights`)."""
    theta, phi = params["theta"], params["phi"]
    keys = jax.random.split(key, k)
    z = jax.vmap(lambda key_i: model.inference.sample(phi, key_i, {"x": x})["z"])(keys)
    z = jax.lax.stop_gradient(z)
    log_p = jax.vmap(lambda z_i: model.joint.log_prob(theta, {"x": x, "z": z_i}, {}))(z)
    log_q = jax.vmap(lambda z_i: model.inference.log_prob(phi, {"z": z_i}, {"x": x}))(z)
    return z, log_p, log_q


def self_normalized_weights(log_weights: jax.Array) -> jax.Array:
    r""":math:`\tilde w_k = w_k / \sum_j w_j` from :math:`\log w_k`, without gradient."""
    return jax.lax.stop_gradient(jax.nn.softmax(log_weights, axis=-1))


def wake_theta_phase(model: HelmholtzMachine, k: int) -> Phase:
    r"""The wake-θ phase: ascend the K-sample importance-weighted bound in θ.

    Loss on ``{"x": [B, D]}``: the batch mean of
    :math:`-(\operatorname{logsumexp}_k \log w_k - \log K)`; its θ-gradient is
    :math:`-\sum_k \tilde w_k \nabla_\theta \log p_\theta(x, h_k)`. Example b uses
    ``jax.random.split(key, B)[b]``. Metrics ``{"loss", "iwae_bound", "elbo"}`` (``"elbo"``: the
    mean log weight).
    """

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        keys = jax.random.split(key, x.shape[0])

        def one(key_b: PRNGKey, x_b: jax.Array) -> jax.Array:
            _, log_p, log_q = _draws(model, params, key_b, x_b, k)
            return log_p - jax.lax.stop_gradient(log_q)

        log_w = jax.vmap(one)(keys, x)
        bound = jnp.mean(jax.nn.logsumexp(log_w, axis=-1) - math.log(k))
        return -bound, {"loss": -bound, "iwae_bound": bound, "elbo": jnp.mean(log_w)}

    return Phase("wake_theta", "theta", loss)


def wake_phi_phase(model: HelmholtzMachine, k: int) -> Phase:
    r"""The wake-φ phase: fit :math:`q_\phi` to the self-normalized posterior samples, in φ.

    Loss on ``{"x": [B, D]}``: the batch mean of
    :math:`-\sum_k \tilde w_k \log q_\phi(h_k \mid x)` (weights without gradient). Metrics
    ``{"loss", "effective_sample_size"}`` (:math:`1 / \sum_k \tilde w_k^2`, batch mean).
    """

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        keys = jax.random.split(key, x.shape[0])

        def one(key_b: PRNGKey, x_b: jax.Array) -> tuple[jax.Array, jax.Array]:
            _, log_p, log_q = _draws(model, params, key_b, x_b, k)
            weights = self_normalized_weights(log_p - log_q)
            return jnp.sum(weights * log_q), 1.0 / jnp.sum(weights**2)

        objective, ess = jax.vmap(one)(keys, x)
        value = -jnp.mean(objective)
        return value, {"loss": value, "effective_sample_size": jnp.mean(ess)}

    return Phase("wake_phi", "phi", loss)


def rws(model: HelmholtzMachine, *, k: int = 5, recognition: str = "both") -> Algorithm:
    r"""Reweighted wake-sleep: wake-θ, then wake-φ and/or sleep-φ (see the module docstring).

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{h_1, \ldots, h_k \sim q_\phi(h \mid x)}\left[
       \log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(x, h_i)}{q_\phi(h_i \mid x)}\right]\right]

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`.
      k: K, the importance samples per example.
      recognition: which φ updates run: ``"wake"``, ``"sleep"`` or ``"both"``.

    Returns:
      An :class:`~unigen.core.Algorithm` with ``init(key) -> {"theta", "phi"}``, phases
      ``wake_theta`` then ``wake_phi`` and/or ``sleep_phi``, and ``objective`` the
      :data:`DECLARATION`.

    Raises:
      ConfigError: ``k`` is not a positive int or ``recognition`` is unknown.
    """
    k = positive_int("k", k)
    if recognition not in RECOGNITION_UPDATES:
        raise ConfigError(
            f"recognition: expected one of {list(RECOGNITION_UPDATES)}, got {recognition!r}"
        )
    phases = [wake_theta_phase(model, k)]
    if recognition in ("wake", "both"):
        phases.append(wake_phi_phase(model, k))
    if recognition in ("sleep", "both"):
        phases.append(sleep_phase(model, group="phi", name="sleep_phi"))
    return Algorithm(
        init=lambda key: init_params(model, key), phases=tuple(phases), objective=DECLARATION
    )
