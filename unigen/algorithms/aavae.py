r"""The adversary-activated VAE (Hu, Yang, Salakhutdinov & Xing 2018, §4.2, Eq. 17), declared in
the algebra beside its parent, :mod:`unigen.algorithms.vae`.

Lemma 2 writes the VAE objective with a perfect, degenerate discriminator :math:`q_*(y \mid x)`
(:func:`unigen.algebra.identities.lemma2_as_written`). The AAVAE replaces it by a trained one,
:math:`q^r_*(y \mid x) \to q^r_\phi(y \mid x)` (phase ``"vae"``, in :math:`\theta, \eta`):

.. math::
   \max_{\theta, \eta} \mathcal{L}^{aavae}_{\theta, \eta} = 2 \cdot \mathbb{E}_{p_{\theta_0}(x)}\left[
   \mathbb{E}_{q_\eta(z \mid x, y) q^{r}_\phi(y \mid x)}\left[\log p_\theta(x \mid z, y)\right]
   - \mathrm{KL}\left(q_\eta(z \mid x, y) q^{r}_\phi(y \mid x) \,\|\, p(z \mid y) p(y)\right)\right]

The paper prints Eq. 17 without the factor 2, as it prints Lemma 2 "omitting the constant scale
factor 2"; the lecture prints Lemma 2 with it (``2 · E_{p_θ₀(x)}[...]``), and unigen keeps the
lecture's form so that ``algebra show aavae`` is ``algebra show`` of Lemma 2 with
:math:`q^r_* \to q^r_\phi` and, at the optimal discriminator, the AAVAE's loss is the VAE's.
The constant changes no Adam step (Adam's update is invariant to a constant scale of the loss,
up to its ε).

Here :math:`p_{\theta_0}(x) = \tfrac12 p_{data}(x) + \tfrac12 p_{\theta_0}(x \mid y=0)`: each
real batch is paired with as many samples of the generator :math:`x \sim p_{\theta_0}(x \mid z)
p(z)` (θ0: the current θ, held constant; "for each batch of real examples, AA extended models
generate equal number of fake samples", §5.2), and every one of them, real or generated, enters
the VAE's bound weighted by the reversed discriminator :math:`q^r_\phi(y=0 \mid x) = q_\phi(y=1
\mid x)`, the probability that it is real. Written out (:math:`p_\theta(x \mid z, y=0) =
p_\theta(x \mid z)`, :math:`q_\eta(z \mid x, y=0) = q_\eta(z \mid x)`; the data branch
:math:`y=1` has :math:`p_\theta(x \mid z, y=1) = p_{data}(x)`, whose z needs no inference,
:math:`q_\eta(z \mid x, y=1) = p(z \mid y=1)`):

.. math::
   \mathcal{L}^{aavae} = 2\, \mathbb{E}_{p_{\theta_0}(x)}\left[q^r_\phi(y=0 \mid x)\,
   \mathcal{L}(\theta, \eta; x) - \mathrm{KL}\left(q^r_\phi(y \mid x) \,\|\, p(y)\right)\right]
   + 2\, \mathbb{E}_{p_{\theta_0}(x)}\left[q^r_\phi(y=1 \mid x) \log p_{data}(x)\right],

:math:`\mathcal{L}(\theta, \eta; x)` the ELBO of x. The last term is constant in θ and η and
unknown (the data have no density); it is bound as 0 (``p_θ(x|z,y=1)`` an improper uniform),
so the reported objective omits it. With the optimal discriminator for the current generator,
:math:`q_\phi(y=1 \mid x) = p_{data}(x) / (p_{data}(x) + p_{\theta_0}(x \mid y=0))`, the first
term is :math:`\mathbb{E}_{p_{data}}[\mathcal{L}(\theta, \eta; x)]`, the VAE objective, and the
second :math:`-2\,\mathrm{JSD}(p_{data} \,\|\, p_{\theta_0}(x \mid y=0))`, constant in θ and η:
the AAVAE then takes the VAE's gradient exactly
(``tests/test_transfers.py`` checks both by exact enumeration). The KL of the product is
estimated with the draws of z (Monte Carlo).

The discriminator (phase ``"discriminator"``, in :math:`\phi`) is trained as in GANs, on the
batch and as many generated samples:

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\log q_\phi(y=1 \mid x)\right]
   + \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=0 \mid x)\right]
"""

from __future__ import annotations

from typing import Mapping

import jax
from numpyro.distributions import ImproperUniform, constraints

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import data, explicit, implicit, marginal, uniform_indicator
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log
from unigen.algorithms.gan import (
    DISCRIMINATOR,
    discriminator,
    generated,
    p_data,
    p_y,
    reversed_discriminator,
)
from unigen.algorithms.vae import OBJECTIVE as ELBO
from unigen.algorithms.vae import batch_data, init_params
from unigen.algorithms.vae import bindings as vae_bindings
from unigen.core import Algorithm, Params, PRNGKey
from unigen.distributions import BernoulliLogits
from unigen.models.vae import VAEModel, positive_int
from unigen.models.values import bernoulli_entries
from unigen.nets import Network

__all__ = ["DECLARATION", "OBJECTIVE", "aavae", "bindings"]

mixture0 = dist("p", over="x", params="theta0")                       # p_θ0(x)
generative0 = dist("p", over="x", given="y", params="theta0")         # p_θ0(x|y)
inference = dist("q", over="z", given="x,y", params="eta")            # q_η(z|x,y)
decoder = dist("p", over="x", given="z,y", params="theta")            # p_θ(x|z,y)
prior = dist("p", over="z", given="y")                                # p(z|y)
weighted_inference = inference * reversed_discriminator                # q_η(z|x,y) q^r_φ(y|x)

OBJECTIVE = 2 * E(mixture0, E(weighted_inference, log(decoder)) - KL(weighted_inference, prior * p_y))
"""Eq. 17: Lemma 2's first line (the lecture's form, with its factor 2; the paper omits it) with
q^r_* replaced by the trained q^r_φ, maximized in θ, η."""

DECLARATION = Declaration(
    name="aavae",
    title="Adversary-activated VAE",
    section="Hu et al. 2018, §4.2, Eq. 17",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("vae", ("theta", "eta"), OBJECTIVE, "max"),
    ),
    figure5=Figure5(
        generative=decoder,
        discriminator=discriminator,
        inference=inference,
        kl=KL(weighted_inference, dist("p", over="z,y", given="x", params="theta")),
        wrt="theta",
        variables=(("x", "data/generations"), ("y", "real/fake indicator (trained)"), ("z", "code vector")),
    ),
)
"""The declaration: the GAN's discriminator phase, then Eq. 17 (the VAE column of Figure 5 with
q_φ in place of q_*)."""


def bindings(model: VAEModel, discriminator_network: Network) -> dict:
    r"""What each distribution of :data:`DECLARATION` is, for a VAE and a discriminator network
    (``apply(phi, x) -> [1]``, the logit :math:`d_\phi(x)`).

    * :math:`p_\theta(x \mid y=0)`: draws :math:`x \sim p_\theta(x \mid z) p(z)` of
      ``model.joint``; :math:`p_{\theta_0}(x \mid y=0)` the same with θ held constant;
      :math:`p_{data}(x)` and :math:`p_{\theta_0}(x \mid y=1)`: the batch rows;
      :math:`p_{\theta_0}(x)`: :func:`~unigen.algebra.compiler.marginal` of
      :math:`p_{\theta_0}(x \mid y) p(y)`;
    * :math:`q_\phi(y \mid x)`: Bernoulli with logit :math:`d_\phi(x)`; :math:`p(y)` uniform;
    * :math:`q_\eta(z \mid x, y=0)`, :math:`p_\theta(x \mid z, y=0)`, :math:`p(z \mid y)`: the
      VAE's encoder, decoder and prior; :math:`q_\eta(z \mid x, y=1)`: the prior (the data
      branch has no latent to infer); :math:`p_\theta(x \mid z, y=1) = p_{data}(x)`: an improper
      uniform, log-density 0 (the unknown constant :math:`\log p_{data}(x)` dropped).
    """

    def draw(theta: Params, key: PRNGKey) -> jax.Array:
        return model.joint.sample(theta, key, {})["x"]

    def discriminate(params: Params, given: Mapping) -> BernoulliLogits:
        return BernoulliLogits(discriminator_network.apply(params["phi"], given["x"])[0])

    def data_density(params: Params, given: Mapping) -> ImproperUniform:
        return ImproperUniform(constraints.real_vector, (), (model.data_dim,))

    encoder = vae_bindings(model)
    return {
        **encoder,
        p_data: data("x"),
        generated: implicit(lambda params, key, given: draw(params["theta"], key)),
        generative0.fixed(y=0): implicit(
            lambda params, key, given: draw(jax.lax.stop_gradient(params["theta"]), key)),
        generative0.fixed(y=1): data("x"),
        mixture0: marginal(generative0 * p_y),
        discriminator: explicit(discriminate),
        p_y: uniform_indicator("phi"),
        inference.fixed(y=0): lambda params, given: model.encoder_distribution(params["eta"], given["x"]),
        inference.fixed(y=1): lambda params, given: model.prior(params["theta"]),
        decoder.fixed(y=0): lambda params, given: model.decoder_distribution(params["theta"], given["z"]),
        decoder.fixed(y=1): explicit(data_density),
        prior: lambda params, given: model.prior(params["theta"]),
    }


def aavae(model: VAEModel, discriminator_network: Network, *, n_samples: int = 1) -> Algorithm:
    r"""The adversary-activated VAE (Eq. 17): a discriminator phase as in GANs, then the VAE
    phase of :data:`OBJECTIVE`, both compiled from :data:`DECLARATION` (:func:`bindings`).

    On ``batch = {"x": [B, D]}`` the VAE phase averages over the B rows and B generated samples
    (half each), ``n_samples`` draws of z per example; it also reports ``"elbo"``, the plain VAE
    objective on the batch (:data:`unigen.algorithms.vae.OBJECTIVE`, its own draws).

    Args:
      model: a :class:`~unigen.models.vae.VAEModel`.
      discriminator_network: a :class:`~unigen.nets.Network` from ``[D]`` to ``[1]``, the logit
        :math:`d_\phi(x)`, e.g. ``unigen.nets.mlp([D, 64, 1])``.
      n_samples: draws of z per example.

    Returns:
      An :class:`~unigen.core.Algorithm` with phases ``"discriminator"`` (``"phi"``) and
      ``"vae"`` (``("theta", "eta")``); ``init(key)`` gives ``{"theta", "eta", "phi"}``.
    """
    n_samples = positive_int("n_samples", n_samples)

    def init(key: PRNGKey) -> dict[str, Params]:
        key_vae, key_phi = jax.random.split(key)
        return {**init_params(model, key_vae), "phi": discriminator_network.init(key_phi)}

    return algorithm(
        DECLARATION, bindings(model, discriminator_network), init, n_samples=n_samples,
        metrics={"vae": {"elbo": ELBO}},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )._replace(bernoulli=bernoulli_entries(model))
