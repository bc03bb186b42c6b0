r"""Generative adversarial networks (§3, §3.1, §3.2), declared in the algebra.

The unified view writes the data and the generator as one conditional with a real/fake
indicator :math:`y` (§3.1):
:math:`p_\theta(x \mid y=0) = p_{g_\theta}(x)` (:math:`x = G_\theta(z)`, :math:`z \sim p(z)`) and
:math:`p_\theta(x \mid y=1) = p_{data}(x)`, with :math:`p(y)` uniform. The discriminator is a
distribution :math:`q_\phi(y \mid x)`, with :math:`D_\phi(x) = q_\phi(y=1 \mid x)`, and its
reverse :math:`q^r_\phi(y \mid x) = q_\phi(1 - y \mid x)`.

**Classic form** (§3). The discriminator (phase ``"discriminator"``, in :math:`\phi`) maximizes
:math:`\mathcal{L}_D = \mathbb{E}_{p_{data}}[\log D(x)] + \mathbb{E}_{G}[\log(1 - D(x))]`:

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\log q_\phi(y=1 \mid x)\right]
   + \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=0 \mid x)\right]

The generator (phase ``"generator"``, in :math:`\theta`) either minimizes
:math:`\mathbb{E}_G[\log(1 - D(x))]` (the minimax generator, :data:`MINIMAX`)

.. math::
   \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=0 \mid x)\right]

or, since that saturates when the discriminator wins, maximizes :math:`\mathbb{E}_G[\log D(x)]`
(the non-saturating generator used in practice, :data:`DECLARATION`)

.. math::
   \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=1 \mid x)\right]

**Variational-EM form** (§3.1, :data:`VARIATIONAL_EM`). The discriminator maximizes, in
:math:`\phi`,

.. math::
   \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q_\phi(y \mid x)\right]

which is :math:`\tfrac12 \mathcal{L}_D` (the sleep phase with :math:`h := y`, §3.4;
:func:`unigen.algebra.identities.wake_sleep`), and the generator maximizes, in :math:`\theta`,
the same expectation with the reversed discriminator:

.. math::
   \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_\phi(y \mid x)\right]

Only its :math:`y=0` half depends on :math:`\theta`, and there :math:`\log q^r_\phi(y=0 \mid x)
= \log D_\phi(x)`: its θ-gradient is half the non-saturating generator's.

By Lemma 1 (§3.2, :func:`unigen.algebra.identities.lemma1`) the generator's step minimizes
:math:`\mathrm{KL}(p_\theta(x \mid y) \,\|\, q^r(x \mid y))` with
:math:`q^r(x \mid y) \propto q^r_{\phi_0}(y \mid x)\, p_{\theta_0}(x)`, minus a JSD: the model
sits in the first argument, so the GAN is mode-seeking (Figure 5, GAN column).
"""

from __future__ import annotations

from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log, reverse

__all__ = [
    "DECLARATION",
    "DISCRIMINATOR",
    "FIGURE5",
    "MINIMAX",
    "MINIMAX_GENERATOR",
    "NON_SATURATING_GENERATOR",
    "VARIATIONAL_EM",
    "VARIATIONAL_EM_DISCRIMINATOR",
    "VARIATIONAL_EM_GENERATOR",
]

p_data = dist("p_data", over="x")
p_y = dist("p", over="y")  # uniform
generative = dist("p", over="x", given="y", params="theta")  # p_θ(x|y)
generated = dist("p", over="x", given="y=0", params="theta")  # p_θ(x|y=0) = p_{g_θ}(x)
discriminator = dist("q", over="y", given="x", params="phi")  # q_φ(y|x); D_φ(x) = q_φ(y=1|x)
reversed_discriminator = reverse(discriminator)  # q^r_φ(y|x) = q_φ(1-y|x)
lemma1_posterior = dist("q^r", over="x", given="y")  # q^r(x|y) ∝ q^r_φ0(y|x) p_θ0(x)

DISCRIMINATOR = E(p_data, log(discriminator, y=1)) + E(generated, log(discriminator, y=0))
"""The classic discriminator objective :math:`\\mathcal{L}_D`, maximized in φ."""

NON_SATURATING_GENERATOR = E(generated, log(discriminator, y=1))
""":math:`\\mathbb{E}_G[\\log D(x)]`, maximized in θ."""

MINIMAX_GENERATOR = E(generated, log(discriminator, y=0))
""":math:`\\mathbb{E}_G[\\log(1 - D(x))]`, minimized in θ."""

VARIATIONAL_EM_DISCRIMINATOR = E(generative * p_y, log(discriminator))
"""§3.1: :math:`\\mathbb{E}_{p_\\theta(x|y)p(y)}[\\log q_\\phi(y|x)]`, maximized in φ."""

VARIATIONAL_EM_GENERATOR = E(generative * p_y, log(reversed_discriminator))
"""§3.1: :math:`\\mathbb{E}_{p_\\theta(x|y)p(y)}[\\log q^r_\\phi(y|x)]`, maximized in θ."""

FIGURE5 = Figure5(
    generative=generative,
    discriminator=discriminator,
    inference=None,
    kl=KL(generative, lemma1_posterior),
    wrt="theta",
)
"""Figure 5, GAN column: the generator minimizes KL(p_θ(x|y) ‖ q^r(x|y)) (Lemma 1)."""

DECLARATION = Declaration(
    name="gan",
    title="GAN",
    section="§3",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", NON_SATURATING_GENERATOR, "max"),
    ),
    figure5=FIGURE5,
)

MINIMAX = Declaration(
    name="gan-minimax",
    title="GAN (minimax)",
    section="§3",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", MINIMAX_GENERATOR, "min"),
    ),
    figure5=FIGURE5,
)

VARIATIONAL_EM = Declaration(
    name="gan-variational-em",
    title="GAN (variational-EM form)",
    section="§3.1, §3.2",
    phases=(
        PhaseObjective("discriminator", "phi", VARIATIONAL_EM_DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", VARIATIONAL_EM_GENERATOR, "max"),
    ),
    figure5=FIGURE5,
)
