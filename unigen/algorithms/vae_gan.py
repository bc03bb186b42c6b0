r"""A VAE/GAN that minimizes both KL directions (Larsen et al. 2016; Hu et al. 2018 §3.4), declared
in the algebra.

Hu et al. show the VAE minimizes :math:`\mathrm{KL}(q_\eta(z \mid x, y) q^r_*(y \mid x) \,\|\,
p_\theta(z, y \mid x))` (the model in the second argument: mode-covering, Lemma 2) and the GAN
:math:`\mathrm{KL}(p_\theta(x \mid y) \,\|\, q^r(x \mid y))` (the model in the first:
mode-seeking, Lemma 1), and that a joint model such as Larsen et al.'s VAE/GAN minimizes both.
One decoder is the VAE's likelihood :math:`p_\theta(x \mid z)` and the GAN's generator
:math:`p_\theta(x \mid y=0)`: :math:`x = \mathbb{E}_\theta[x \mid z]`, :math:`z \sim p(z)`. The
phases:

.. math::
   \max_{\theta, \eta}\ \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}
   \left[\log p_\theta(x \mid z)\right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)\right]

.. math::
   \max_\phi\ \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q_\phi(y \mid x)\right]
   \qquad
   \max_\theta\ \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_\phi(y \mid x)\right]

the VAE's ELBO (:data:`unigen.algorithms.vae.OBJECTIVE`, the same expression) and Eq. (3) of the
GAN. Larsen et al. also measure the reconstruction in the discriminator's feature space and feed
reconstructions to the discriminator; here the reconstruction is the pixel likelihood and the
discriminator sees prior draws only, the two-KL form of §3.4.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import jax

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import data, explicit, implicit, uniform_indicator
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log, reverse
from unigen.algorithms.vae import OBJECTIVE, batch_data
from unigen.algorithms.vae import bindings as vae_bindings
from unigen.core import Algorithm, Params, PRNGKey
from unigen.distributions import BernoulliLogits
from unigen.models.vae import VAEModel
from unigen.models.values import bernoulli_entries
from unigen.nets import Network

__all__ = ["DECLARATION", "DISCRIMINATOR", "ELBO", "GENERATOR", "VAEGANModel", "bindings", "vae_gan"]

p_y = dist("p", over="y")  # uniform
generative = dist("p", over="x", given="y", params="theta")  # p_θ(x|y=0): decoder means of z ~ p(z)
discriminator = dist("q", over="y", given="x", params="phi")
lemma1_posterior = dist("q^r", over="x", given="y")
_perfect = dist("q_*", over="y", given="x")
_inference = dist("q", over="z", given="x,y", params="eta")

ELBO = OBJECTIVE
"""The VAE's ELBO, maximized in θ and η."""

DISCRIMINATOR = E(generative * p_y, log(discriminator))
"""Eq. (3): the discriminator's objective, maximized in φ."""

GENERATOR = E(generative * p_y, log(reverse(discriminator)))
"""Eq. (3): the decoder's adversarial objective, maximized in θ."""

DECLARATION = Declaration(
    name="vae-gan",
    title="VAE/GAN",
    section="Larsen et al. 2016; Hu et al. 2018 §3.4",
    phases=(
        PhaseObjective("elbo", ("theta", "eta"), ELBO, "max"),
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", GENERATOR, "max"),
    ),
    figure5=Figure5(
        generative=generative,
        discriminator=discriminator,
        inference=_inference,
        kl=(KL(generative, lemma1_posterior),
            KL(_inference * reverse(_perfect), dist("p", over="z,y", given="x", params="theta"))),
        wrt="theta",
        variables=(("x", "data/generations"), ("y", "real/fake indicator"), ("z", "code vector")),
    ),
)
"""The declaration: both KLs, the GAN's (θ first) and the VAE's (θ second)."""


class VAEGANModel(NamedTuple):
    """A VAE and a discriminator on its data space.

    Attributes:
      vae: the :class:`~unigen.models.vae.VAEModel` (its decoder is also the generator).
      discriminator: ``[data_dim] -> [1]``, the logit of :math:`q_\\phi(y=1 \\mid x)`.
    """

    vae: VAEModel
    discriminator: Network


def bindings(model: VAEGANModel) -> dict:
    r"""The VAE's bindings (:func:`unigen.algorithms.vae.bindings`), and
    :math:`p_\theta(x \mid y=0)`: the decoder mean of a prior draw (pathwise);
    :math:`p_\theta(x \mid y=1)`: the batch; :math:`q_\phi(y \mid x)`: a Bernoulli on the
    discriminator's logit; :math:`p(y)`: uniform."""
    vae = model.vae

    def generate(params: Params, key: PRNGKey, given: Mapping) -> jax.Array:
        return vae.decode_mean(params["theta"], vae.prior(params["theta"]).sample(key))

    return {
        **vae_bindings(vae),
        generative.fixed(y=0): implicit(generate),
        generative.fixed(y=1): data("x"),
        discriminator: explicit(lambda params, given: BernoulliLogits(
            model.discriminator.apply(params["phi"], given["x"])[0])),
        p_y: uniform_indicator("phi"),
    }


def vae_gan(model: VAEGANModel) -> Algorithm:
    """The VAE/GAN: phases ``"elbo"`` (θ, η), ``"discriminator"`` (φ), ``"generator"`` (θ),
    compiled from :data:`DECLARATION`; batches ``{"x": [B, D]}``."""
    vae = model.vae
    inits = {"theta": vae.joint.init, "eta": vae.inference.init, "phi": model.discriminator.init}
    return algorithm(DECLARATION, bindings(model), inits,
                     prepare=lambda batch: {"x": batch_data(batch, vae.data_dim)})._replace(bernoulli=bernoulli_entries(vae))
