r"""The VAE algorithm: maximize the evidence lower bound by reparameterized gradients (§2.3–2.4).

The objective, declared once in the algebra (:data:`OBJECTIVE`) and compiled into the loss the
trainer runs (:func:`unigen.algebra.compile`):

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)\right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)\right]

The per-example bound
:math:`\mathcal{L}(\theta, \eta; x) = \mathbb{E}_{q_\eta(z \mid x)}[\log p_\theta(x \mid z)]
- \mathrm{KL}(q_\eta(z \mid x) \,\|\, p(z))` equals
:math:`\mathbb{E}_{q_\eta(z \mid x)}[\log p_\theta(x, z) - \log q_\eta(z \mid x)]` (§2.1) and
bounds :math:`\log p_\theta(x)` from below by
:math:`\mathrm{KL}(q_\eta(z \mid x) \,\|\, p_\theta(z \mid x))`. (The lecture's §1.1.4 and §2.3
write :math:`\log p_\theta(x, z)` inside the expectation *and* subtract the KL to the prior, which
counts :math:`\log p(z)` twice; the bound above is the one of Kingma & Welling's AEVB, §2.4.)

The expectation is estimated with ``n_samples`` pathwise draws
:math:`z = \mu_\eta(x) + \sigma_\eta(x) \odot \epsilon`; the KL term either in closed form
(``kl="analytic"``, numpyro's ``kl_divergence``) or by the same draws
(``kl="monte_carlo"``, :math:`\log q_\eta(z \mid x) - \log p(z)`). Both are unbiased; the analytic
one has lower variance. :func:`reference_loss` is the hand-written loss of the first version,
kept as the oracle the compiled loss is tested against (equal to 1e-6) and as the baseline of
``benchmarks/vae_throughput.py``.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from unigen.algebra.assembly import algorithm
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective, check
from unigen.algebra.expr import KL, E, dist, log, reverse
from unigen.core import Algorithm, Batch, Metrics, Params, PRNGKey
from unigen.distributions import kl_divergence
from unigen.errors import ConfigError, DataError, describe
from unigen.models.vae import VAEModel, positive_int
from unigen.models.values import bernoulli_entries

__all__ = [
    "DECODER",
    "DECLARATION",
    "ENCODER",
    "KL_ESTIMATORS",
    "OBJECTIVE",
    "PRIOR",
    "ElboTerms",
    "bindings",
    "elbo",
    "elbo_terms",
    "reference_loss",
    "vae",
]

P_DATA = dist("p_data", over="x")
DECODER = dist("p", over="x", given="z", params="theta")
r"""The decoder :math:`p_\theta(x \mid z)`."""
ENCODER = dist("q", over="z", given="x", params="eta")
r"""The encoder :math:`q_\eta(z \mid x)`."""
PRIOR = dist("p", over="z")
"""The prior :math:`p(z)`."""
RECONSTRUCTION = E(ENCODER, log(DECODER))
KL_TO_PRIOR = KL(ENCODER, PRIOR)
OBJECTIVE = E(P_DATA, RECONSTRUCTION - KL_TO_PRIOR)
r"""The VAE objective (§3.3), maximized in θ and η."""

_PERFECT = dist("q_*", over="y", given="x")
DECLARATION = check(Declaration(
    name="vae",
    title="VAE",
    section="§2.3, §3.3",
    phases=(PhaseObjective("elbo", ("theta", "eta"), OBJECTIVE, "max"),),
    figure5=Figure5(
        generative=dist("p", over="x", given="z,y", params="theta"),
        discriminator=_PERFECT,
        inference=dist("q", over="z", given="x,y", params="eta"),
        kl=KL(
            dist("q", over="z", given="x,y", params="eta") * reverse(_PERFECT),
            dist("p", over="z,y", given="x", params="theta"),
        ),
        wrt="theta",
        variables=(("x", "data/generations"), ("y", "real/fake indicator (degenerate)"),
                   ("z", "code vector")),
    ),
))
"""The declaration: one phase, and the VAE column of the lecture's Figure 5 (Lemma 2)."""
KL_ESTIMATORS = ("analytic", "monte_carlo")


class ElboTerms(NamedTuple):
    r"""The two terms of the ELBO for one example: ``reconstruction - kl``.

    Attributes:
      reconstruction: the estimate of
        :math:`\mathbb{E}_{q_\eta(z \mid x)}[\log p_\theta(x \mid z)]`.
      kl: the exact or estimated :math:`\mathrm{KL}(q_\eta(z \mid x) \,\|\, p(z))`.
    """

    reconstruction: jax.Array
    kl: jax.Array


def check_options(kl: str, n_samples: int) -> int:
    """``n_samples`` as an int; :class:`ConfigError` unless ``kl`` is known and ``n_samples`` a
    positive integer."""
    if kl not in KL_ESTIMATORS:
        raise ConfigError(f"kl: expected one of {list(KL_ESTIMATORS)}, got {kl!r}")
    return positive_int("n_samples", n_samples)


def init_params(model: VAEModel, key: PRNGKey) -> dict[str, Params]:
    """The parameter groups of a VAE: ``{"theta": joint params, "eta": inference params}``."""
    key_theta, key_eta = jax.random.split(key)
    return {"theta": model.joint.init(key_theta), "eta": model.inference.init(key_eta)}


def batch_data(batch: Batch, data_dim: int) -> jax.Array:
    """``batch["x"]`` checked to be ``[B, data_dim]`` with ``B >= 1``."""
    if not isinstance(batch, Mapping) or "x" not in batch:
        keys = sorted(batch) if isinstance(batch, Mapping) else describe(batch)
        raise DataError(f"batch: expected a dict with key 'x', got {keys}")
    x = batch["x"]
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] < 1 or shape[1] != data_dim:
        raise DataError(
            f"batch['x']: expected shape (B, {data_dim}) with B >= 1, got {describe(x)}"
        )
    return jnp.asarray(x)


def elbo_terms(
    model: VAEModel,
    params: Params,
    key: PRNGKey,
    x: jax.Array,
    *,
    kl: str = "analytic",
    n_samples: int = 1,
) -> ElboTerms:
    r"""The reconstruction and KL terms of the ELBO of one example (see :func:`elbo`).

    The s-th draw uses ``jax.random.split(key, n_samples)[s]``.
    """
    n_samples = check_options(kl, n_samples)
    theta, eta = params["theta"], params["eta"]
    # The encoder runs once: its distribution serves the draws and the KL. (Drawing through
    # ``model.inference.sample`` and taking the KL from a second encoder call gives the same
    # numbers, but XLA does not merge the two backward passes: +21% FLOPs per step, measured by
    # benchmarks/vae_throughput.py.) The draws equal ``inference.sample`` with the same keys.
    posterior = model.encoder_distribution(eta, x)
    prior = model.prior(theta)
    keys = jax.random.split(key, n_samples)
    if n_samples == 1:  # one draw, no [1, ...] sample axis (exactly the mean of one draw): on a
        # batch, XLA transposes [B, 1, D] activations for the weight gradients.
        z = posterior.rsample(keys[0])
        reconstruction = model.decoder_distribution(theta, z).log_prob(x)
        monte_carlo = lambda: posterior.log_prob(z) - prior.log_prob(z)  # noqa: E731
    else:
        z = jax.vmap(posterior.rsample)(keys)
        reconstruction = jnp.mean(
            jax.vmap(lambda zs: model.decoder_distribution(theta, zs).log_prob(x))(z)
        )
        monte_carlo = lambda: jnp.mean(jax.vmap(lambda zs: posterior.log_prob(zs) - prior.log_prob(zs))(z))  # noqa: E731
    divergence = kl_divergence(posterior, prior) if kl == "analytic" else monte_carlo()
    return ElboTerms(reconstruction, divergence)


def elbo(
    model: VAEModel,
    params: Params,
    key: PRNGKey,
    x: jax.Array,
    *,
    kl: str = "analytic",
    n_samples: int = 1,
) -> jax.Array:
    r"""The evidence lower bound of one example, estimated by pathwise draws.

    .. math::
       \mathcal{L}(\theta, \eta; x) = \mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)
       \right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)

    estimated as
    :math:`\frac{1}{S}\sum_{s=1}^{S} \log p_\theta(x \mid z_s) - \widehat{\mathrm{KL}}`,
    :math:`z_s = \mu_\eta(x) + \sigma_\eta(x) \odot \epsilon_s`.

    Args:
      model: a :class:`~unigen.models.vae.VAEModel` (or any model with its fields).
      params: ``{"theta": ..., "eta": ...}``.
      key: the PRNG key of this example.
      x: one example, ``[D]``.
      kl: ``"analytic"`` (closed form, numpyro's ``kl_divergence``) or ``"monte_carlo"``
        (:math:`\frac{1}{S}\sum_s \log q_\eta(z_s \mid x) - \log p(z_s)` at the same draws).
      n_samples: S, the number of draws of z.

    Returns:
      A scalar, differentiable in ``params`` (reparameterized).
    """
    terms = elbo_terms(model, params, key, x, kl=kl, n_samples=n_samples)
    return terms.reconstruction - terms.kl


def bindings(model: VAEModel) -> dict:
    """What :data:`ENCODER`, :data:`DECODER` and :data:`PRIOR` are for ``model`` (for
    :func:`unigen.algebra.compile`); ``p_data(x)`` is the batch."""
    return {
        ENCODER: lambda params, given: model.encoder_distribution(params["eta"], given["x"]),
        DECODER: lambda params, given: model.decoder_distribution(params["theta"], given["z"]),
        PRIOR: lambda params, given: model.prior(params["theta"]),
    }


def vae(model: VAEModel, *, kl: str = "analytic", n_samples: int = 1) -> Algorithm:
    r"""Auto-encoding variational Bayes (§2.4): one phase that maximizes the ELBO in θ and η.

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)\right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)\right]

    The phase ``"elbo"`` updates ``("theta", "eta")``; its loss is :data:`OBJECTIVE` compiled by
    :func:`unigen.algebra.compile` and negated: on ``batch = {"x": [B, D]}`` the batch mean of
    :math:`-\mathcal{L}` (see :func:`elbo`), example i drawn with ``jax.random.split(key, B)[i]``
    (so the value does not depend on how the batch is sharded). Its metrics are the batch means
    ``{"loss", "elbo", "kl", "reconstruction"}``. It equals :func:`reference_loss`, the
    hand-written loss, to float rounding for the same key.

    Args:
      model: a :class:`~unigen.models.vae.VAEModel`.
      kl: ``"analytic"`` or ``"monte_carlo"``, see :func:`elbo`.
      n_samples: draws of z per example.

    Returns:
      An :class:`~unigen.core.Algorithm` compiled from :data:`DECLARATION` by
      :func:`unigen.algebra.algorithm`; ``init(key)`` gives ``{"theta": ..., "eta": ...}``.
    """
    n_samples = check_options(kl, n_samples)
    return algorithm(
        DECLARATION,
        bindings(model),
        lambda key: init_params(model, key),
        n_samples=n_samples,
        kl="auto" if kl == "analytic" else "monte_carlo",
        metrics={"elbo": OBJECTIVE, "kl": KL_TO_PRIOR, "reconstruction": RECONSTRUCTION},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )._replace(bernoulli=bernoulli_entries(model))


def reference_loss(
    model: VAEModel, *, kl: str = "analytic", n_samples: int = 1
) -> Callable[[Params, PRNGKey, Batch], tuple[jax.Array, Metrics]]:
    r"""The hand-written loss of :func:`vae` (before the algebra compiled it): the batch mean of
    :math:`-\mathcal{L}` by :func:`elbo_terms`, with the same keys and metrics. The oracle the
    compiled loss is tested against, and the baseline of ``benchmarks/vae_throughput.py``."""
    n_samples = check_options(kl, n_samples)

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        keys = jax.random.split(key, x.shape[0])
        terms = jax.vmap(
            lambda k, xi: elbo_terms(model, params, k, xi, kl=kl, n_samples=n_samples)
        )(keys, x)
        reconstruction = jnp.mean(terms.reconstruction)
        divergence = jnp.mean(terms.kl)
        bound = reconstruction - divergence
        metrics = {
            "loss": -bound,
            "elbo": bound,
            "kl": divergence,
            "reconstruction": reconstruction,
        }
        return -bound, metrics

    return loss
