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
"""

from __future__ import annotations

from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.expr import E, dist, log

__all__ = ["DECLARATION", "SLEEP", "WAKE"]

p_data = dist("p_data", over="x")
generative = dist("p", over="x", given="h", params="theta")  # p_θ(x|h)
prior = dist("p", over="h")  # p(h)
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
