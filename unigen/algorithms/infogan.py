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

**The algorithm.** :func:`infogan` compiles :data:`DISCRIMINATOR` and :data:`GENERATOR` with
:func:`unigen.algebra.compile` over an :class:`~unigen.models.infogan.InfoGANModel`. With a
categorical code of K values the expectation over :math:`p(z)` is an exact sum over the K codes
(each with one generated example per batch row) and :math:`\mathrm{H}(p(z)) = \log K`; with
continuous codes as well (:class:`~unigen.models.infogan.MixedCode`) one code is drawn per batch
row and one example generated from each, and :math:`\mathrm{H}(p(z)) = \log K + C \log 2`.
Both in closed form; the generator is drawn pathwise. :func:`code_mode_information` measures what
the code learned on a mixture with known modes (the plug-in mutual information between the code
and the nearest-mode index of the generated example).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import data, explicit, implicit
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, H, Scale, dist, log, reverse
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Params, PRNGKey
from unigen.distributions import BernoulliLogits
from unigen.errors import ConfigError, DataError, describe
from unigen.models.infogan import InfoGANModel

__all__ = [
    "DECLARATION",
    "DISCRIMINATOR",
    "FIGURE5",
    "GENERATOR",
    "MUTUAL_INFORMATION_BOUND",
    "bindings",
    "code_mode_information",
    "infogan",
    "mutual_information",
]

p_y = dist("p", over="y")  # uniform
code_prior = dist("p", over="z")  # p(z)
generative = dist("p", over="x", given="y", params="theta")  # p_θ(x|y)
generator = dist("p", over="x", given="z,y=0", params="theta")  # p_θ(x|z,y=0) = G_θ(z)
discriminator = dist("q", over="y", given="x", params="phi")  # q_φ(y|x)
inference = dist("q", over="z", given="x,y", params="eta")  # q_η(z|x,y)
inference_generated = inference.fixed(y=0)  # q_η(z|x,y=0)
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
    variables=(("x", "data/generations"), ("y", "real/fake indicator"), ("z", "code vector")),
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

# --------------------------------------------------------------------------------------------
# The algorithm

generated = generative.fixed(y=0)  # p_θ(x|y=0), code marginalized
real = generative.fixed(y=1)  # p_θ(x|y=1) = p_data(x)
GAN_GENERATOR = E(generative * p_y, log(reverse(discriminator)))


def bindings(model: InfoGANModel) -> dict:
    r"""What each distribution of the InfoGAN objectives is for ``model``.

    :math:`p_\theta(x \mid y=0)`: implicit, a code from :math:`p(z)` and noise, then
    :math:`G_\theta`; :math:`p_\theta(x \mid z, y=0)`: implicit, noise then
    :math:`G_\theta(\epsilon, z)`; :math:`p_\theta(x \mid y=1)`: the batch; :math:`p(z)`:
    ``model.code_prior`` (the uniform categorical, enumerated, or
    :class:`~unigen.models.infogan.MixedCode`, drawn); :math:`q_\eta(z \mid x, y=0)`:
    ``model.inference_distribution``; :math:`q_\phi(y \mid x)`: Bernoulli with the
    discriminator's logits;
    :math:`p(y)`: uniform.
    """

    def dtype_of(params: Params) -> jnp.dtype:
        return jax.tree.leaves(params["phi"])[0].dtype

    return {
        generated: implicit(lambda params, key, given: model.generator.sample(
            params["theta"], key, {})["x"]),
        generator: implicit(lambda params, key, given: model.generator.sample(
            params["theta"], key, {"z": given["z"]})["x"]),
        real: data("x"),
        code_prior: explicit(lambda params, given: model.code_prior(dtype_of(params))),
        inference_generated: explicit(lambda params, given: model.inference_distribution(
            params["eta"], given["x"])),
        discriminator: explicit(lambda params, given: BernoulliLogits(
            model.discriminator_logit(params["phi"], given["x"]))),
        p_y: explicit(lambda params, given: BernoulliLogits(jnp.zeros((), dtype_of(params)))),
    }


def infogan(model: InfoGANModel, *, information_weight: float = 1.0) -> Algorithm:
    r"""InfoGAN in the unified view: the GAN's variational-EM phases plus the mutual-information
    bound in the generator-and-inference phase.

    Phase ``"discriminator"`` (``"phi"``) maximizes :data:`DISCRIMINATOR`,
    :math:`\mathbb{E}_{p_\theta(x|y)p(y)}[\log q_\phi(y|x)]`; phase ``"generator"``
    (``("theta", "eta")``) maximizes :data:`GENERATOR`,
    :math:`\mathbb{E}_{p_\theta(x|y)p(y)}[\log q^r_\phi(y|x)] + \lambda \left(
    \mathbb{E}_{p_\theta(x|z,y=0)p(z)}[\log q_\eta(z|x,y=0)] + \mathrm{H}(p(z))\right)` with
    :math:`\lambda` = ``information_weight`` (1: the declared objective). For a categorical
    code the expectation over it is exact (K branches, each with B generated examples for a
    batch of B rows); with continuous codes, B codes are drawn and one example generated from
    each.
    Metrics: ``"loss"``, ``"objective"`` and, for the generator, ``"information"`` (the
    bound, in nats, at most :math:`\log K`).

    Args:
      model: an :class:`~unigen.models.infogan.InfoGANModel`.
      information_weight: :math:`\lambda`, InfoGAN's weight of the information term (positive).

    Returns:
      An :class:`~unigen.core.Algorithm`; ``init(key)`` gives ``{"theta", "phi", "eta"}`` and
      ``objective`` is :data:`DECLARATION`.

    Raises:
      ConfigError: ``information_weight`` is not a positive finite number.
    """
    if (isinstance(information_weight, bool) or not isinstance(information_weight, (int, float))
            or not np.isfinite(information_weight) or information_weight <= 0):
        raise ConfigError(
            f"information_weight: expected a positive finite number, got {information_weight!r}"
        )
    declaration = DECLARATION
    if information_weight != 1.0:
        weighted = GAN_GENERATOR + Scale(float(information_weight), MUTUAL_INFORMATION_BOUND)
        declaration = DECLARATION._replace(phases=(
            DECLARATION.phases[0], DECLARATION.phases[1]._replace(objective=weighted)))

    def init(key: PRNGKey) -> dict[str, Params]:
        key_theta, key_phi, key_eta = jax.random.split(key, 3)
        return {
            "theta": model.generator.init(key_theta),
            "phi": model.discriminator.init(key_phi),
            "eta": model.inference.init(key_eta),
        }

    return algorithm(
        declaration, bindings(model), init,
        metrics={"generator": {"information": MUTUAL_INFORMATION_BOUND}},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )


def mutual_information(first: ArrayLike, second: ArrayLike) -> float:
    r"""The plug-in mutual information (nats) of two integer label arrays of the same length,
    :math:`\sum_{a,b} \hat p(a,b) \log \frac{\hat p(a,b)}{\hat p(a)\hat p(b)}` from their joint
    histogram."""
    a, b = np.asarray(first), np.asarray(second)
    if a.ndim != 1 or a.shape != b.shape or a.size < 1:
        raise DataError(
            f"first, second: expected two label vectors of the same length, got {describe(a)} "
            f"and {describe(b)}"
        )
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= a.size
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    present = joint > 0
    return float(np.sum(joint[present] * np.log(joint[present] / outer[present])))


def code_mode_information(
    model: InfoGANModel, theta: Params, key: PRNGKey, centres: ArrayLike, n: int = 2500
) -> float:
    r"""How much the code says about the mode: the plug-in mutual information (nats) between the
    code :math:`z \sim p(z)` and the index of the centre nearest to :math:`x = G_\theta(\epsilon,
    z)`, over ``n`` generated examples (example i with ``jax.random.split(key, n)[i]``). At most
    :math:`\log K`; :math:`\log 8` on ``ring8`` when each code value generates its own mode."""
    centres = np.asarray(centres, np.float64)
    if centres.ndim != 2 or centres.shape[1] != model.data_dim:
        raise DataError(f"centres: expected shape (M, {model.data_dim}), got {describe(centres)}")
    draws = jax.jit(jax.vmap(lambda k: model.generator.sample(theta, k, {})))(
        jax.random.split(key, int(n)))
    x = np.asarray(draws["x"], np.float64)
    nearest = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    return mutual_information(np.asarray(model.category(draws["z"])), nearest)
