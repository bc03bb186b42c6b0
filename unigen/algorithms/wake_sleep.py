r"""The wake-sleep algorithm (§2.2, §3.4), declared in the algebra.

A generative model :math:`p_\theta(x \mid h) p(h)` and a recognition model
:math:`q_\lambda(h \mid x)` are trained in two phases.

The wake phase (phase ``"wake"``, the variational M-step) fits the generative model to data
completed by the recognition model, in :math:`\theta`:

.. math::
   \mathbb{E}_{q_\lambda(h \mid x) p_{data}(x)}\left[\log p_\theta(x \mid h)\right]

(§2.2 writes :math:`\log p_\theta(x, h)`; the two differ by :math:`\log p(h)`, which does not
depend on :math:`\theta`).

The sleep phase (phase ``"sleep"``) fits the recognition model to dreams of the generative
model, in :math:`\lambda`:

.. math::
   \mathbb{E}_{p_\theta(x \mid h) p(h)}\left[\log q_\lambda(h \mid x)\right]

This is the E-step with the KL reversed: it minimizes
:math:`\mathrm{KL}(p_\theta(h \mid x) \,\|\, q_\lambda(h \mid x))` on average over dreamed
:math:`x`. The lecture's §3.4 writes :math:`\max_\theta` for the sleep phase; that is a typo:
the sleep phase updates the recognition model :math:`\lambda` (§2.2: "the sleep phase
corresponds to the E step", and Hu et al. 2018).

§3.4 then reads the two phases as the two halves of the unified view: the VAE extends the wake
phase (it also learns the inference model, by the same θ-gradient; see
:func:`unigen.algebra.identities.wake_sleep`), and the GAN discriminator is the sleep phase with
:math:`h := y` and :math:`\lambda := \phi` (:mod:`unigen.algorithms.gan`).

Training (:func:`wake_sleep`). The models are a Helmholtz machine
(:mod:`unigen.models.helmholtz`): :math:`p_\theta` a sigmoid belief net, :math:`q_\lambda` the
bottom-up recognition SBN, :math:`h` the model's hidden vector ``z``.

- The wake loss is compiled by :func:`unigen.algebra.compile` from :data:`WAKE_LEARNED_PRIOR`,
  :math:`\mathbb{E}_{q_\lambda(h \mid x) p_{data}(x)}[\log p_\theta(x \mid h) + \log
  p_\theta(h)]`: an SBN's prior (the top layer's log-odds and the weights between hidden layers)
  belongs to :math:`\theta`, so the compiled loss is §2.2's :math:`\log p_\theta(x, h)`; it is
  :data:`WAKE` plus a term that is constant in :math:`\theta` when the prior is fixed, as the
  declaration assumes. The expectation over :math:`q_\lambda` is by plain draws (the
  ``"draw"`` estimator, no score term: the wake gradient is
  :math:`\nabla_\theta \log p_\theta(x, h)` at the recognition's samples), never by
  enumeration, even for tiny models.
- The sleep loss is compiled from :data:`SLEEP`: ``compile`` evaluates
  :math:`\mathbb{E}_{p_\theta(x \mid h) p(h)}`, a model expectation outside any data
  expectation, as B ancestral dreams (B the batch size): B draws of :math:`h`, one draw of
  :math:`x` for each. It is tested against the exact sleep objective by enumeration.
"""

from __future__ import annotations

import jax

from unigen.algebra.assembly import algorithm
from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.expr import E, dist, log
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Params, PRNGKey
from unigen.models.helmholtz import HelmholtzMachine
from unigen.models.vae import positive_int
from unigen.models.values import bernoulli_entries

__all__ = [
    "DECLARATION",
    "SLEEP",
    "WAKE",
    "WAKE_LEARNED_PRIOR",
    "bindings",
    "init_params",
    "wake_sleep",
]

p_data = dist("p_data", over="x")
generative = dist("p", over="x", given="h", params="theta")  # p_θ(x|h)
prior = dist("p", over="h")  # p(h)
learned_prior = dist("p", over="h", params="theta")  # p_θ(h), an SBN's learned prior
recognition = dist("q", over="h", given="x", params="lambda")  # q_λ(h|x)

WAKE = E(recognition * p_data, log(generative))
"""The wake objective, maximized in θ."""

SLEEP = E(generative * prior, log(recognition))
"""The sleep objective, maximized in λ (not θ, as §3.4 misprints)."""

DECLARATION = Declaration(
    name="wake-sleep",
    title="Wake-sleep",
    section="§2.2, §3.4",
    phases=(
        PhaseObjective("wake", "theta", WAKE, "max"),
        PhaseObjective("sleep", "lambda", SLEEP, "max"),
    ),
    figure5=None,
)

WAKE_LEARNED_PRIOR = E(recognition * p_data, log(generative) + log(learned_prior))
r"""What the wake phase compiles: :data:`WAKE` with the SBN's learned prior, i.e.
:math:`\log p_\theta(x, h)` inside the expectation (§2.2)."""


def bindings(model: HelmholtzMachine) -> dict:
    r"""What :math:`p_\theta(x \mid h)`, :math:`p_\theta(h)`, :math:`p(h)` and
    :math:`q_\lambda(h \mid x)` are for ``model`` (for :func:`unigen.algebra.compile`);
    ``p_data(x)`` is the batch. The algebra's ``h`` is the model's ``z``."""
    return {
        generative: lambda params, given: model.decoder_distribution(params["theta"], given["h"]),
        learned_prior: lambda params, given: model.prior(params["theta"]),
        prior: lambda params, given: model.prior(params["theta"]),
        recognition: lambda params, given: model.encoder_distribution(params["lambda"], given["x"]),
    }


def init_params(model: HelmholtzMachine, key: PRNGKey) -> dict[str, Params]:
    """``{"theta": generative SBN params, "lambda": recognition SBN params}``."""
    key_theta, key_lambda = jax.random.split(key)
    return {"theta": model.joint.init(key_theta), "lambda": model.inference.init(key_lambda)}


def wake_sleep(model: HelmholtzMachine, *, n_samples: int = 1) -> Algorithm:
    r"""The wake-sleep algorithm (§2.2): the wake phase in θ, then the sleep phase in λ.

    .. math::
       \mathbb{E}_{q_\lambda(h \mid x) p_{data}(x)}\left[\log p_\theta(x \mid h)\right]

    .. math::
       \mathbb{E}_{p_\theta(x \mid h) p(h)}\left[\log q_\lambda(h \mid x)\right]

    Both phases are compiled from :data:`DECLARATION` by :func:`unigen.algebra.algorithm`, the
    wake phase with the learned prior (:data:`WAKE_LEARNED_PRIOR`). Wake: on
    ``batch = {"x": [B, D]}`` the loss is :math:`-\frac{1}{B S}\sum_{b,s} \log p_\theta(x_b,
    h_{b,s})`, :math:`h_{b,s} \sim q_\lambda(h \mid x_b)`; metrics ``{"loss",
    "reconstruction"}`` (the batch mean of :math:`\log p_\theta(x \mid h)`). Sleep: B dreams
    (only the batch's size is used), dream b drawn ancestrally with key
    ``k_b = jax.random.split(key, B)[b]``: :math:`h_b \sim p_\theta(h)` with ``k_b``, then
    :math:`x_b \sim p_\theta(x \mid h_b)` with ``split(fold_in(k_b, 1), 1)[0]``; the loss is
    :math:`-\frac{1}{B}\sum_b \log q_\lambda(h_b \mid x_b)`, metrics ``{"loss",
    "objective"}``.

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`.
      n_samples: S, draws of h per example in the wake phase.

    Returns:
      An :class:`~unigen.core.Algorithm` with ``init(key) -> {"theta", "lambda"}``, phases
      ``("wake", "sleep")``; its ``objective`` is the declaration compiled (the wake phase's
      objective :data:`WAKE_LEARNED_PRIOR`).
    """
    n_samples = positive_int("n_samples", n_samples)
    wake, sleep = DECLARATION.phases
    compiled = DECLARATION._replace(phases=(wake._replace(objective=WAKE_LEARNED_PRIOR), sleep))
    return algorithm(
        compiled,
        bindings(model),
        lambda key: init_params(model, key),
        # Expectations over q_λ and over the dreams are plain draws, never enumerated and with no
        # score term: the wake phase trains θ only (a score term over q_λ has no θ-gradient),
        # the sleep phase λ only (the dreams' score terms would have θ-gradients only).
        estimator={recognition: "draw", prior: "draw", generative: "draw"},
        n_samples=n_samples,
        metrics={"wake": {"reconstruction": log(generative)}},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )._replace(bernoulli=bernoulli_entries(model))
