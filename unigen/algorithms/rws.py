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
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{h_1, \ldots, h_k \sim q_\phi(h \mid x)}\left[\log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(h_i) p_\theta(x \mid h_i)}{q_\phi(h_i \mid x)}\right]\right]

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
one after the other, sharing φ's optimizer state. Every phase is compiled from
:data:`DECLARATION` by :func:`unigen.algebra.algorithm`: the bound is an
:class:`~unigen.algebra.expr.ImportanceWeightedBound` node (discrete draws without gradient, so
its θ-gradient is the weighted one above), the posterior :math:`p_\theta(h \mid x)` is bound to
:func:`~unigen.algebra.compiler.self_normalized` importance sampling from :math:`q_\phi`, and the
sleep phase's dreams are drawn ancestrally, :math:`h \sim p(h)` then :math:`x \sim
p_\theta(x \mid h)`.

:data:`DECLARATION` is not in the registry of :mod:`unigen.algorithms.declarations` (its test
lists the lecture's algorithms); it passes :func:`unigen.algebra.declaration.check`.
"""

from __future__ import annotations

import jax

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import self_normalized
from unigen.algebra.declaration import Declaration, PhaseObjective, check
from unigen.algebra.expr import E, dist, importance_weighted_bound, log
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Params, PRNGKey
from unigen.errors import ConfigError
from unigen.models.helmholtz import HelmholtzMachine
from unigen.models.vae import positive_int
from unigen.models.values import bernoulli_entries

__all__ = [
    "DECLARATION",
    "RECOGNITION_UPDATES",
    "SLEEP_PHI",
    "WAKE_PHI",
    "WAKE_THETA",
    "bindings",
    "init_params",
    "rws",
]

RECOGNITION_UPDATES = ("wake", "sleep", "both")

p_data = dist("p_data", over="x")
generative = dist("p", over="x", given="h", params="theta")  # p_θ(x|h)
learned_prior = dist("p", over="h", params="theta")  # p_θ(h), the SBN's prior
joint = learned_prior * generative  # p_θ(h) p_θ(x|h) = p_θ(x, h)
posterior = dist("p", over="h", given="x", params="theta")  # p_θ(h|x) ∝ p_θ(x, h)
prior = dist("p", over="h")  # p(h), the dreams' prior
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


def bindings(model: HelmholtzMachine, k: int) -> dict:
    r"""What each distribution of :data:`DECLARATION` is for ``model``: the SBN's prior and
    decoder, the recognition SBN, the dreams' prior (the SBN's prior, drawn), and
    :math:`p_\theta(h \mid x)` by self-normalized importance sampling with K draws from
    :math:`q_\phi` (:func:`unigen.algebra.compiler.self_normalized`). The algebra's ``h`` is the
    model's ``z``."""
    return {
        generative: lambda params, given: model.decoder_distribution(params["theta"], given["h"]),
        learned_prior: lambda params, given: model.prior(params["theta"]),
        prior: lambda params, given: model.prior(params["theta"]),
        proposal: lambda params, given: model.encoder_distribution(params["phi"], given["x"]),
        posterior: self_normalized(joint, proposal, k),
    }


def rws(model: HelmholtzMachine, *, k: int = 5, recognition: str = "both") -> Algorithm:
    r"""Reweighted wake-sleep: wake-θ, then wake-φ and/or sleep-φ (see the module docstring).

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{h_1, \ldots, h_k \sim q_\phi(h \mid x)}\left[
       \log \frac{1}{k} \sum_{i=1}^{k} \frac{p_\theta(h_i) p_\theta(x \mid h_i)}{q_\phi(h_i \mid x)}\right]\right]

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
    chosen = {"wake": ("wake_theta", "wake_phi"), "sleep": ("wake_theta", "sleep_phi"),
              "both": ("wake_theta", "wake_phi", "sleep_phi")}[recognition]
    bound = E(p_data, importance_weighted_bound(joint, proposal, k))
    phases = tuple(
        (phase._replace(objective=bound) if phase.name == "wake_theta" else phase)
        for phase in DECLARATION.phases if phase.name in chosen
    )
    return algorithm(
        DECLARATION._replace(phases=phases),
        bindings(model, k),
        lambda key: init_params(model, key),
        # Dreams are plain draws (no enumeration, even of a tiny prior, and no score term:
        # the φ phases do not train the dreams' θ).
        estimator={prior: "draw", generative: "draw"} if "sleep_phi" in chosen else "auto",
        metrics={"wake_theta": {"iwae_bound": bound}},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )._replace(bernoulli=bernoulli_entries(model))
