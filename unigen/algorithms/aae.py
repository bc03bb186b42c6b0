r"""The adversarial autoencoder (Makhzani et al. 2016; Hu et al. 2018 §3.2), declared in the algebra.

Hu et al. obtain the AAE from InfoGAN by swapping the roles of the data x and the code z: the
adversarial game is played on codes. The codes have an implicit distribution
:math:`p_\eta(z \mid y)`: with :math:`y = 1` a draw of the prior :math:`p(z) = \mathcal{N}(0, I)`,
with :math:`y = 0` the code :math:`z = E_\eta(x)` of a data example (a deterministic encoder,
Makhzani et al.'s first choice). A critic :math:`q_\phi(y \mid z)` tells prior draws from codes,
and the encoder learns to fool it: Eq. (3) of the GAN with z in place of x,

.. math::
   \max_\phi\ \mathbb{E}_{p_\eta(z \mid y) p(y)}\left[\log q_\phi(y \mid z)\right]
   \qquad
   \max_\eta\ \mathbb{E}_{p_\eta(z \mid y) p(y)}\left[\log q^{r}_\phi(y \mid z)\right]

while the decoder :math:`p_\theta(x \mid z)` reconstructs each example from its code,
:math:`q_\eta(z \mid x) = \delta(z - E_\eta(x))`:

.. math::
   \max_{\theta, \eta}\ \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\eta(z \mid x)}
   \left[\log p_\theta(x \mid z)\right]\right]

By Lemma 1 with x and z swapped, the encoder's phase minimizes
:math:`\mathrm{KL}(p_\eta(z \mid y) \,\|\, q^r(z \mid y))`: the encoded codes sit in the first
argument (mode-seeking on the code space), the prior is matched adversarially rather than by the
VAE's per-example KL.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import numpyro.distributions as numpyro_dist

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import data, explicit, uniform_indicator
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log, reverse
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Params
from unigen.distributions import BernoulliLogits
from unigen.models.vae import VAEModel
from unigen.models.values import bernoulli_entries
from unigen.nets import Network

__all__ = ["DECLARATION", "DISCRIMINATOR", "ENCODER", "RECONSTRUCTION", "AAEModel", "aae", "bindings",
           "encode"]

p_data = dist("p_data", over="x")
p_y = dist("p", over="y")  # uniform
codes = dist("p", over="z", given="y", params="eta")  # p_η(z|y): y=1 p(z), y=0 E_η(x), x ~ p_data
encoder = dist("q", over="z", given="x", params="eta")  # q_η(z|x) = δ(z − E_η(x))
decoder = dist("p", over="x", given="z", params="theta")  # p_θ(x|z)
critic = dist("q", over="y", given="z", params="phi")  # q_φ(y=1|z): a prior draw?
lemma1_posterior = dist("q^r", over="z", given="y")

RECONSTRUCTION = E(p_data, E(encoder, log(decoder)))
"""The reconstruction log-likelihood, maximized in θ and η."""

DISCRIMINATOR = E(codes * p_y, log(critic))
"""Eq. (3) on codes: the critic's objective, maximized in φ."""

ENCODER = E(codes * p_y, log(reverse(critic)))
"""Eq. (3) on codes: the encoder's adversarial objective, maximized in η."""

DECLARATION = Declaration(
    name="aae",
    title="AAE",
    section="Makhzani et al. 2016; Hu et al. 2018 §3.2",
    phases=(
        PhaseObjective("reconstruction", ("theta", "eta"), RECONSTRUCTION, "max"),
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("encoder", "eta", ENCODER, "max"),
    ),
    figure5=Figure5(
        generative=codes,
        discriminator=critic,
        inference=decoder,
        kl=KL(codes, lemma1_posterior),
        wrt="eta",
        variables=(("x", "data"), ("y", "prior/encoded indicator"), ("z", "code vector")),
    ),
)
"""The declaration; its Table-1 column is InfoGAN's with x and z swapped."""


class AAEModel(NamedTuple):
    """A VAE's networks (its encoder's mean is the deterministic code) and a critic on codes.

    Attributes:
      autoencoder: the :class:`~unigen.models.vae.VAEModel` whose decoder and encoder mean are used.
      critic: ``[latent_dim] -> [1]``, the logit of :math:`q_\\phi(y=1 \\mid z)`.
    """

    autoencoder: VAEModel
    critic: Network


def encode(model: AAEModel, eta: Params, x: jax.Array) -> jax.Array:
    r"""The code :math:`E_\eta(x)` of one example: the encoder's mean."""
    return model.autoencoder.encoder_distribution(eta, x).mean


def bindings(model: AAEModel) -> dict:
    r""":math:`p_\eta(z \mid y=0)`: the codes of the batch rows; :math:`p_\eta(z \mid y=1)`:
    :math:`\mathcal{N}(0, I)` drawn pathwise; :math:`q_\eta(z \mid x)`: a point mass at the code;
    :math:`p_\theta(x \mid z)`: the VAE's decoder; :math:`q_\phi(y \mid z)`: a Bernoulli on the
    critic's logit; :math:`p(y)`: uniform."""
    vae = model.autoencoder

    return {
        codes.fixed(y=0): data("x", map=lambda params, x: encode(model, params["eta"], x)),
        codes.fixed(y=1): explicit(lambda params, given: vae.prior(params["theta"])),
        encoder: explicit(lambda params, given: numpyro_dist.Delta(
            encode(model, params["eta"], given["x"]), event_dim=1)),
        decoder: explicit(lambda params, given: vae.decoder_distribution(params["theta"], given["z"])),
        critic: explicit(lambda params, given: BernoulliLogits(model.critic.apply(params["phi"], given["z"])[0])),
        p_y: uniform_indicator("phi"),
    }


def aae(model: AAEModel) -> Algorithm:
    """The adversarial autoencoder: phases ``"reconstruction"`` (θ, η), ``"discriminator"`` (φ),
    ``"encoder"`` (η), compiled from :data:`DECLARATION`; batches ``{"x": [B, D]}``."""
    vae = model.autoencoder
    inits = {"theta": vae.joint.init, "eta": vae.inference.init, "phi": model.critic.init}
    return algorithm(DECLARATION, bindings(model), inits,
                     prepare=lambda batch: {"x": batch_data(batch, vae.data_dim)})._replace(bernoulli=bernoulli_entries(vae))
