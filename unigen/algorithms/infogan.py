r"""InfoGAN in the unified view (Figure 5, GAN column; Hu et al. 2018), declared in the algebra.

InfoGAN is a GAN (:mod:`unigen.algorithms.gan`) whose generated examples keep their latent code
recoverable. A z-inference model :math:`q_\eta(z \mid x, y)` (the figure's "z-inference model
of InfoGAN") reads the code back from a generated :math:`x`; on generated examples
(:math:`y = 0`) it gives the variational lower bound of the mutual information between the code
and the example (Barber and Agakov):

.. math::
   \mathbb{E}_{p_\theta(x \mid z, y=0) p(z)}\left[\log q_\eta(z \mid x, y=0)\right]
   + \mathrm{H}\left(p(z)\right)

which is at most :math:`I(z; x)` under :math:`p_\theta(x \mid z, y=0) p(z)`, with equality when
:math:`q_\eta(z \mid x, y=0)` is the generator's posterior (:data:`MUTUAL_INFORMATION_BOUND`).

The discriminator (phase ``"discriminator"``, in :math:`\phi`) is the GAN's, in the
variational-EM form of §3.1:

.. math::
   \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q_\phi(y \mid x)\right]

The generator and the inference model (phase ``"generator"``, in :math:`\theta` and
:math:`\eta`) maximize the GAN generator's objective plus the mutual-information bound (with
weight 1; InfoGAN's :math:`\lambda` weight is a scaling of the second term):

.. math::
   \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_\phi(y \mid x)\right]
   + \left(\mathbb{E}_{p_\theta(x \mid z, y=0) p(z)}\left[\log q_\eta(z \mid x, y=0)\right]
   + \mathrm{H}\left(p(z)\right)\right)

In Figure 5 the generator then minimizes :math:`\mathrm{KL}(p_\theta(x \mid y) \,\|\,
q^r(x \mid z, y))`, where the reversed posterior now also involves the inference model; the
model is in the first argument, as for the GAN: mode-seeking.
"""

from __future__ import annotations

from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, H, dist, log, reverse

__all__ = ["DECLARATION", "DISCRIMINATOR", "FIGURE5", "GENERATOR", "MUTUAL_INFORMATION_BOUND"]

p_y = dist("p", over="y")  # uniform
code_prior = dist("p", over="z")  # p(z)
generative = dist("p", over="x", given="y", params="theta")  # p_θ(x|y)
generator = dist("p", over="x", given="z,y=0", params="theta")  # p_θ(x|z,y=0) = G_θ(z)
discriminator = dist("q", over="y", given="x", params="phi")  # q_φ(y|x)
inference = dist("q", over="z", given="x,y", params="eta")  # q_η(z|x,y)
inference_generated = dist("q", over="z", given="x,y=0", params="eta")  # q_η(z|x,y=0)
reversed_posterior = dist("q^r", over="x", given="z,y")  # q^r(x|z,y)

MUTUAL_INFORMATION_BOUND = E(generator * code_prior, log(inference_generated)) + H(code_prior)
"""The variational lower bound of :math:`I(z; x)` on generated examples."""

DISCRIMINATOR = E(generative * p_y, log(discriminator))
"""The discriminator objective (the GAN's, §3.1), maximized in φ."""

GENERATOR = E(generative * p_y, log(reverse(discriminator))) + MUTUAL_INFORMATION_BOUND
"""The generator-and-inference objective, maximized in θ and η."""

FIGURE5 = Figure5(
    generative=generative,
    discriminator=discriminator,
    inference=inference,
    kl=KL(generative, reversed_posterior),
    wrt="theta",
)
"""Figure 5, GAN (InfoGAN) column."""

DECLARATION = Declaration(
    name="infogan",
    title="InfoGAN",
    section="§3.2, Figure 5",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", ("theta", "eta"), GENERATOR, "max"),
    ),
    figure5=FIGURE5,
)
