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
  declaration assumes. The expectation over :math:`q_\lambda` is by draws (the
  ``"score"`` estimator: its score term has no :math:`\theta`-gradient, so the wake gradient
  is :math:`\nabla_\theta \log p_\theta(x, h)` at the recognition's samples), never by
  enumeration, even for tiny models.
- The sleep loss is written by hand (:func:`sleep_phase`): ``compile`` evaluates
  :math:`\mathbb{E}_{p_\theta(x \mid h) p(h)}`, a model expectation outside any data
  expectation, as B draws of :math:`h` times B draws of :math:`x` for each (B the batch size),
  :math:`B^2` recognition evaluations for an estimate that B ancestral dreams
  :math:`(h_b, x_b) \sim p_\theta` give as well. The hand-written loss is tested against the
  exact sleep objective by enumeration.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from unigen.algebra.compiler import compile
from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.expr import E, dist, log
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Batch, Metrics, Params, Phase, PRNGKey
from unigen.models.helmholtz import HelmholtzMachine
from unigen.models.vae import positive_int

__all__ = [
    "DECLARATION",
    "SLEEP",
    "WAKE",
    "WAKE_LEARNED_PRIOR",
    "bindings",
    "init_params",
    "sleep_phase",
    "wake_phase",
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


def wake_phase(model: HelmholtzMachine, *, n_samples: int = 1) -> Phase:
    r"""The wake phase: fit :math:`p_\theta` to data completed by :math:`q_\lambda`, in θ.

    .. math::
       \mathbb{E}_{q_\lambda(h \mid x) p_{data}(x)}\left[\log p_\theta(x \mid h)\right]

    (compiled with the learned prior, :data:`WAKE_LEARNED_PRIOR`). On ``batch = {"x": [B, D]}``
    the loss is :math:`-\frac{1}{B S}\sum_{b,s} \log p_\theta(x_b, h_{b,s})`,
    :math:`h_{b,s} \sim q_\lambda(h \mid x_b)`; metrics ``{"loss", "reconstruction"}``
    (the batch mean of :math:`\log p_\theta(x \mid h)`).

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`.
      n_samples: S, draws of h per example.
    """
    n_samples = positive_int("n_samples", n_samples)
    compiled = compile(
        WAKE_LEARNED_PRIOR,
        bindings(model),
        estimator={recognition: "score"},
        n_samples=n_samples,
        metrics={"reconstruction": log(generative)},
    )

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        return compiled(params, key, {"x": batch_data(batch, model.data_dim)})

    return Phase("wake", "theta", loss)


def sleep_phase(model: HelmholtzMachine, *, group: str = "lambda", name: str = "sleep") -> Phase:
    r"""The sleep phase: fit :math:`q_\lambda` to dreams of :math:`p_\theta`, in λ.

    .. math::
       \mathbb{E}_{p_\theta(x \mid h) p(h)}\left[\log q_\lambda(h \mid x)\right]

    On a batch of B rows (only its size is used) the loss is
    :math:`-\frac{1}{B}\sum_b \log q_\lambda(h_b \mid x_b)` over B ancestral dreams
    :math:`(h_b, x_b) \sim p_\theta(x, h)`, dream b drawn with ``jax.random.split(key, B)[b]``;
    metrics ``{"loss", "sleep"}`` (``"sleep"`` the objective's estimate). Written by hand, see the
    module docstring.

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`.
      group: the recognition model's parameter group (``"phi"`` in reweighted wake-sleep).
      name: the phase's name (``"sleep_phi"`` in reweighted wake-sleep).
    """

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        size = batch_data(batch, model.data_dim).shape[0]
        keys = jax.random.split(key, size)
        dreams = jax.vmap(lambda k: model.joint.sample(params["theta"], k, {}))(keys)
        dreams = jax.lax.stop_gradient(dreams)
        log_q = jax.vmap(
            lambda x, z: model.inference.log_prob(params[group], {"z": z}, {"x": x})
        )(dreams["x"], dreams["z"])
        objective = jnp.mean(log_q)
        return -objective, {"loss": -objective, "sleep": objective}

    return Phase(name, group, loss)


def wake_sleep(model: HelmholtzMachine, *, n_samples: int = 1) -> Algorithm:
    r"""The wake-sleep algorithm (§2.2): the wake phase in θ, then the sleep phase in λ.

    .. math::
       \mathbb{E}_{q_\lambda(h \mid x) p_{data}(x)}\left[\log p_\theta(x \mid h)\right]

    .. math::
       \mathbb{E}_{p_\theta(x \mid h) p(h)}\left[\log q_\lambda(h \mid x)\right]

    See :func:`wake_phase` and :func:`sleep_phase`.

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`.
      n_samples: draws of h per example in the wake phase.

    Returns:
      An :class:`~unigen.core.Algorithm` with ``init(key) -> {"theta", "lambda"}``, phases
      ``("wake", "sleep")`` and ``objective`` the :data:`DECLARATION`.
    """
    return Algorithm(
        init=lambda key: init_params(model, key),
        phases=(wake_phase(model, n_samples=n_samples), sleep_phase(model)),
        objective=DECLARATION,
    )
