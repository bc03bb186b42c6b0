r"""Adversarial domain adaptation (Hu et al. 2018, §3.1, Eqs. 1–3), declared in the algebra.

A data example :math:`z` comes from the source domain (:math:`y = 1`, labelled) or the target
domain (:math:`y = 0`, unlabelled), :math:`z \sim p(z \mid y)`. A feature extractor
:math:`G_\theta` maps it to features :math:`x = G_\theta(z)`: the data distribution and
:math:`G_\theta` together are an implicit distribution :math:`p_\theta(x \mid y)` (sample only).
A discriminator :math:`q_\phi(y \mid x) = D_\phi(x)` tells the domains apart; with :math:`p(y)`
uniform and the reversed :math:`q^r_\phi(y \mid x) = q_\phi(1 - y \mid x)`, Eqs. (1)–(2) are,
up to the factor 2, Eq. (3), here with a weight λ on the extractor's phase (λ = 1 is Eq. 3 as
printed in the paper; DANN's λ):

.. math::
   \max_\phi\ \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q_\phi(y \mid x)\right]
   \qquad
   \max_\theta\ \lambda \cdot \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_\phi(y \mid x)\right]

the GAN of §3.1 with data in place of noise: the feature extractor plays the generator, both of
whose domains it moves (Table 1, ADA column; by Lemma 1 it minimizes
:math:`\mathrm{KL}(p_\theta(x \mid y) \,\|\, q^r(x \mid y))`, "same as GANs"). The task is a
classifier :math:`q_\psi(\ell \mid x)` of the source features, trained with the extractor on the
labelled source (phase ``"classifier"``):

.. math::
   \max_{\theta, \psi}\ \mathbb{E}_{p_\theta(x \mid y=1)}\left[\log q_\psi(\mathrm{label} \mid x)\right]

where each source feature comes with its example's label. With identical domains,
:math:`p_\theta(x \mid y=1) = p_\theta(x \mid y=0)` for every θ, the best discriminator is
:math:`q_\phi(y \mid x) = p(y) = \tfrac12`, and there the θ-gradient of Eq. (3) is zero: the
adversarial phase moves nothing that is already aligned (``tests/test_ada.py``).

:data:`SOURCE_ONLY` is the baseline without adaptation: the classifier phase alone.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as numpyro_dist

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import data, explicit, uniform_indicator
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, coefficient, dist, log, reverse
from unigen.core import Algorithm, Batch, Params, PRNGKey
from unigen.distributions import BernoulliLogits
from unigen.errors import DataError, describe
from unigen.nets import Network, mlp

__all__ = ["ADVERSARIAL_WEIGHT", "CLASSIFIER", "DECLARATION", "DISCRIMINATOR", "FEATURES", "SOURCE_ONLY", "ADAModel",
           "accuracy", "ada", "ada_model", "bindings", "split_batch"]

p_y = dist("p", over="y")  # uniform over the two domains
features = dist("p", over="x", given="y", params="theta")  # p_θ(x|y): x = G_θ(z), z ~ p(z|y)
source_features = features.fixed(y=1)
target_features = features.fixed(y=0)
discriminator = dist("q", over="y", given="x", params="phi")  # q_φ(y=1|x) = D_φ(x): "source"
classifier = dist("q", over="label", given="x", params="psi")  # q_ψ(label|x)
lemma1_posterior = dist("q^r", over="x", given="y")

DISCRIMINATOR = E(features * p_y, log(discriminator))
"""Eq. (3), the discriminator's objective, maximized in φ."""

ADVERSARIAL_WEIGHT = coefficient("lambda", 1.0)
"""λ, the weight of the adversarial phase (1: Eq. 3 as printed; DANN's λ)."""

FEATURES = ADVERSARIAL_WEIGHT * E(features * p_y, log(reverse(discriminator)))
"""Eq. (3), the feature extractor's adversarial objective weighted by λ, maximized in θ."""

CLASSIFIER = E(source_features, log(classifier))
"""The source task: the log-likelihood of the source labels, maximized in θ and ψ."""

FIGURE5 = Figure5(
    generative=features,
    discriminator=discriminator,
    inference=None,
    kl=KL(features, lemma1_posterior),
    wrt="theta",
    variables=(("x", "features"), ("y", "domain indicator"), ("z", "data examples")),
)
"""Table 1, ADA column: the feature distribution, the domain discriminator, no z-inference."""

DECLARATION = Declaration(
    name="ada",
    title="ADA",
    section="Hu et al. 2018 §3.1, Eqs. 1–3",
    phases=(
        PhaseObjective("classifier", ("theta", "psi"), CLASSIFIER, "max"),
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("features", "theta", FEATURES, "max"),
    ),
    figure5=FIGURE5,
)

SOURCE_ONLY = Declaration(
    name="ada-source-only",
    title="Source-only classifier (ADA without adaptation)",
    section="Hu et al. 2018 §3.1",
    phases=(PhaseObjective("classifier", ("theta", "psi"), CLASSIFIER, "max"),),
)


class ADAModel(NamedTuple):
    """The networks of ADA over ``data_dim``-dimensional examples of ``classes`` classes.

    Attributes:
      extractor: :math:`G_\\theta`, ``[data_dim] -> [feature_dim]``.
      discriminator: ``[feature_dim] -> [1]``, the logit of :math:`q_\\phi(y=1 \\mid x)`.
      classifier: ``[feature_dim] -> [classes]``, the logits of :math:`q_\\psi(label \\mid x)`.
      data_dim, classes: sizes.
    """

    extractor: Network
    discriminator: Network
    classifier: Network
    data_dim: int
    classes: int


def ada_model(data_dim: int, classes: int, feature_dim: int = 16, hidden: tuple[int, ...] = (64,),
              activation: str = "relu") -> ADAModel:
    """MLPs: extractor ``data_dim -> hidden -> feature_dim`` (``tanh`` features), discriminator
    ``feature_dim -> hidden -> 1``, a linear classifier ``feature_dim -> classes``."""
    trunk = mlp([data_dim, *hidden, feature_dim], activation)
    extractor = Network(trunk.init, lambda params, z: jnp.tanh(trunk.apply(params, z)))
    return ADAModel(extractor, mlp([feature_dim, *hidden, 1], activation),
                    mlp([feature_dim, classes], activation), data_dim, classes)


def split_batch(batch: Batch, model: ADAModel) -> dict[str, jax.Array]:
    """``{"x": [B, 2D + K]}``, each row a source example, its one-hot label and a target example,
    as ``{"source": [B, D], "label": [B], "target": [B, D]}``."""
    x = batch.get("x") if isinstance(batch, Mapping) else None
    width = 2 * model.data_dim + model.classes
    if x is None or jnp.ndim(x) != 2 or jnp.shape(x)[1] != width:
        raise DataError(f"batch['x']: expected rows [source ({model.data_dim}), one-hot label "
                        f"({model.classes}), target ({model.data_dim})] of width {width}, got {describe(x)}")
    d = model.data_dim
    return {"source": x[:, :d], "label": jnp.argmax(x[:, d:d + model.classes], axis=1),
            "target": x[:, d + model.classes:]}


def bindings(model: ADAModel) -> dict:
    r"""What each distribution is: :math:`p_\theta(x \mid y=1)` the features of the source rows
    (each with its label), :math:`p_\theta(x \mid y=0)` those of the target rows
    (:func:`~unigen.algebra.compiler.data` with ``map``), :math:`q_\phi(y \mid x)` a Bernoulli on
    the discriminator's logit, :math:`q_\psi(label \mid x)` a categorical on the classifier's
    logits, :math:`p(y)` uniform."""

    def extract(params: Params, z: jax.Array) -> jax.Array:
        return model.extractor.apply(params["theta"], z)

    return {
        source_features: data("source", map=extract, carry={"label": "label"}),
        target_features: data("target", map=extract),
        discriminator: explicit(lambda params, given: BernoulliLogits(
            model.discriminator.apply(params["phi"], given["x"])[0])),
        classifier: explicit(lambda params, given: numpyro_dist.CategoricalLogits(
            model.classifier.apply(params["psi"], given["x"]))),
        p_y: uniform_indicator("phi"),
    }


def ada(model: ADAModel, adapt: bool = True, adversarial_weight: float = 1.0) -> Algorithm:
    r"""Adversarial domain adaptation: phases ``"classifier"`` (θ, ψ), ``"discriminator"`` (φ) and
    ``"features"`` (θ), the objectives of :data:`DECLARATION` compiled by
    :func:`unigen.algebra.algorithm`, with λ = ``adversarial_weight``; with ``adapt=False`` the
    classifier phase alone (:data:`SOURCE_ONLY`). Batches are ``{"x": [B, 2D + K]}``
    (:func:`split_batch`). ``init(key)`` gives ``{"theta", "phi", "psi"}``.

    The classifier and features phases both update θ, with one optimizer state: each step moves θ
    along the classification gradient, then along λ times the adversarial one. With Adam, whose
    second-moment estimate both share, λ sets how far the adversarial step goes relative to the
    classification step; on ``adapt:contrast`` λ = 1 lets the discriminator win and the features
    collapse, λ = 0.1 (the recipe's default) adapts (README, "ADA, AAE, VAE/GAN and Table 1")."""
    inits = {"theta": model.extractor.init, "psi": model.classifier.init,
             "phi": model.discriminator.init}
    if not adapt:
        return algorithm(SOURCE_ONLY, bindings(model), inits, prepare=lambda batch: split_batch(batch, model))
    return algorithm(DECLARATION, bindings(model), inits, prepare=lambda batch: split_batch(batch, model),
                     coefficients={ADVERSARIAL_WEIGHT: adversarial_weight})


def accuracy(model: ADAModel, params: Params, z: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> float:
    """The fraction of rows of ``z`` ``[N, D]`` whose most probable class under
    :math:`q_\\psi(label \\mid G_\\theta(z))` is ``labels`` ``[N]``."""
    predict = jax.jit(jax.vmap(lambda row: jnp.argmax(
        model.classifier.apply(params["psi"], model.extractor.apply(params["theta"], row)))))
    return float(np.mean(np.asarray(predict(jnp.asarray(z))) == np.asarray(labels)))
