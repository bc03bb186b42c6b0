r"""The importance-weighted GAN (Hu, Yang, Salakhutdinov & Xing 2018, §4.1, Eq. 16), declared in
the algebra beside its parent, :mod:`unigen.algorithms.gan`.

Lemma 1 reads the GAN generator's step as variational inference with
:math:`p_\theta(x \mid y)` the inference model of the posterior
:math:`q^r(x \mid y) \propto q^r_{\phi_0}(y \mid x)\, p_{\theta_0}(x)`. The IWAE's importance
weighting then carries over. The paper's Eq. 16, as printed there:

.. math::
   \nabla_\theta \mathcal{L}_k(y) = \mathbb{E}_{z_1, \ldots, z_k \sim p(z \mid y)}\left[\sum_{i=1}^{k}
   \tilde{w}_i \nabla_\theta \log q^r_{\phi_0}(y \mid x(z_i, \theta))\right],

with :math:`\tilde w_i` "the normalization of :math:`w_i = q^r_{\phi_0}(y \mid x_i) / q_{\phi_0}(y
\mid x_i)` over k samples"; "only :math:`y = 0` (i.e., generated samples) is effective for
learning θ", "the k samples correspond to sample minibatch in standard GAN update", and "the
discriminator is trained in the same way as in standard GANs". So of the k generated samples of a
minibatch, sample i gets the weight :math:`\tilde w_i = w_i / \sum_j w_j`, held constant. At
:math:`y = 0`, :math:`\log w_i = \log D_\phi(x_i) - \log(1 - D_\phi(x_i)) = d_\phi(x_i)`, the
discriminator's logit: :math:`\tilde w` is the softmax of the logits over the minibatch,
finite and normalized for any finite logit (:math:`D \to 0` and :math:`D \to 1` alike).

The discriminator (phase ``"discriminator"``, in :math:`\phi`) is the GAN's,

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\log q_\phi(y=1 \mid x)\right]
   + \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=0 \mid x)\right]

and the generator (phase ``"generator"``, in :math:`\theta`) is the GAN's non-saturating
generator :math:`\mathbb{E}_{p_\theta(x \mid y=0)}[\log q_\phi(y=1 \mid x)]` (note
:math:`\log q_\phi(y=1 \mid x) = \log q^r_\phi(y=0 \mid x)`) with the transferred weighting:

.. math::
   \mathbb{E}_{x_1, \ldots, x_k \sim p_\theta(x \mid y=0)}\left[\sum_{i=1}^{k} \tilde{w}_i \log
   q_\phi(y=1 \mid x_i)\right],\; \tilde{w}_i \propto \frac{q^{r}_\phi(y=0 \mid x_i)}{q_\phi(y=0
   \mid x_i)}

(the weights held constant; :class:`~unigen.algebra.expr.ImportanceWeightedExpectation`), whose
θ-gradient is Eq. 16's: :math:`x_i = x(z_i, \theta)`, :math:`z_i \sim p(z \mid y=0)`, and
:math:`\log q_\phi(y=1 \mid x) = \log q^r_\phi(y=0 \mid x)`, φ held at φ0 in the generator phase.
With one sample, or equal weights, it is the non-saturating generator exactly, in loss and gradient.
"""

from __future__ import annotations

from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.expr import importance_weighted, log
from unigen.algorithms.gan import (
    DISCRIMINATOR,
    FIGURE5,
    NON_SATURATING_GENERATOR,
    discriminator,
    gan,
    generated,
    reversed_discriminator,
)
from unigen.core import Algorithm
from unigen.models.gan import GANModel

__all__ = ["DECLARATION", "IMPORTANCE_WEIGHTED_GENERATOR", "LOG_WEIGHT", "iwgan"]

LOG_WEIGHT = log(reversed_discriminator, y=0) - log(discriminator, y=0)
r""":math:`\log w = \log q^r_\phi(y=0 \mid x) - \log q_\phi(y=0 \mid x)`, the logit :math:`d_\phi(x)`."""

IMPORTANCE_WEIGHTED_GENERATOR = importance_weighted(
    generated, NON_SATURATING_GENERATOR.body, LOG_WEIGHT)
"""Eq. 16: the non-saturating generator over the k generated samples, each weighted by w̃_i."""

DECLARATION = Declaration(
    name="iwgan",
    title="Importance-weighted GAN",
    section="Hu et al. 2018, §4.1, Eq. 16",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", IMPORTANCE_WEIGHTED_GENERATOR, "max"),
    ),
    figure5=FIGURE5,
)


def iwgan(model: GANModel, gradient_penalty: float = 0.0) -> Algorithm:
    r"""The importance-weighted GAN: the GAN's discriminator phase, then the generator phase
    of Eq. 16, both compiled from :data:`DECLARATION` with the GAN's bindings
    (:func:`unigen.algorithms.gan.bindings`). The k samples are the generator's draws of the
    step, one per batch row (row i with ``jax.random.split(key', B)[i]``, as in the GAN).

    Args:
      model: a :class:`~unigen.models.gan.GANModel`.
      gradient_penalty: γ ≥ 0, the discriminator's R1 penalty, as in :func:`~unigen.algorithms.gan.gan`.

    Returns:
      An :class:`~unigen.core.Algorithm` with phases ``"discriminator"`` (``"phi"``) and
      ``"generator"`` (``"theta"``); ``objective`` is :data:`DECLARATION`.
    """
    return gan(model, gradient_penalty=gradient_penalty, declaration=DECLARATION)
