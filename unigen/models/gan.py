r"""The GAN of the unified view (§3.1): an implicit generator and a discriminator over one joint.

The real/fake indicator :math:`y` selects the distribution of x:

.. math::  p_\theta(x \mid y) = \begin{cases} p_{g_\theta}(x) & y = 0 \\
   p_{data}(x) & y = 1 \end{cases}, \qquad
   x \sim p_{g_\theta}(x) \iff x = G_\theta(z),\ z \sim p(z) = \mathcal{N}(0, I).

* :math:`p_\theta(x \mid y=0)` — the **generator**, an implicit distribution: it can be sampled
  (pathwise in :math:`\theta`, since :math:`x = G_\theta(z)`) but has no density, so its
  ``log_prob`` is ``None``.
* :math:`p_\theta(x \mid y=1) = p_{data}(x)` — the data batch; the model holds nothing for it
  (:func:`unigen.algebra.compile` binds it to the rows of ``batch["x"]``).
* :math:`q_\phi(y \mid x)` — the **discriminator**, a Bernoulli over y with log-odds
  :math:`d_\phi(x)`: :math:`D_\phi(x) = q_\phi(y=1 \mid x) = \sigma(d_\phi(x))`. Its log-mass is
  computed from the logits in the stable log-sigmoid form
  :math:`\log q_\phi(y \mid x) = y\, d - \max(d, 0) - \log(1 + e^{-|d|})`
  (:class:`unigen.distributions.BernoulliLogits`), finite for every finite logit, where the naive
  :math:`\log \sigma(d)` underflows to :math:`-\infty` for :math:`d \lesssim -90` in float32.
  The reversed :math:`q^r_\phi(y \mid x) = q_\phi(1 - y \mid x)` is
  :func:`unigen.algebra.reverse` in the objectives.

The generator and discriminator are MLPs by default, or your own networks (see
:func:`gan_model`). Parameters are plain nested dicts:
``theta = {"generator": <network params>}`` and ``phi = {"discriminator": <network params>}``. Every function acts on one example (``x`` of shape
``[D]``, ``z`` of shape ``[L]``); batch with ``jax.vmap``. With ``generator_hidden=()`` the
generator is affine, :math:`G_\theta(z) = z W + b`, so :math:`p_{g_\theta} =
\mathcal{N}(b, W^\top W)` is a Gaussian with a known density: the tests of the optimal
discriminator (§3) and of Lemma 1 (§3.2) use it as an oracle (:func:`affine_generator_params`).

**Packing** (PacGAN, Lin et al. 2018). With ``pack=m`` the discriminator judges m examples at
once: its input is :math:`x_{1:m}` flattened to ``[m·D]`` and it sees either m data rows or m
independent generator draws. In the unified view this is the same GAN over the product space,
:math:`p_\theta(x_{1:m} \mid y=0) = \prod_i p_{g_\theta}(x_i)` and
:math:`p_\theta(x_{1:m} \mid y=1) = \prod_i p_{data}(x_i)`; the generator itself is unchanged
(it still draws one x), so everything about samples is as for ``pack=1``. A discriminator that
sees m samples together can tell m draws from one mode from m draws of the data, which makes
dropping modes costly for the generator (PacGAN's argument).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from unigen import distributions
from unigen.core import Inference, Joint, Params, PRNGKey, Values
from unigen.distributions import Distribution
from unigen.errors import DataError, describe
from unigen.models.values import check_keys, checked_network, hidden_sizes, positive_int, take
from unigen.nets import mlp

__all__ = ["GANModel", "affine_generator_params", "gan_model"]


class GANModel(NamedTuple):
    r"""A GAN: the implicit generator :math:`p_\theta(x \mid y=0)` and the discriminator
    :math:`q_\phi(y \mid x)`, plus the functions they are built from.

    Attributes:
      generator: :math:`p_\theta(x \mid y=0)`; ``sample(theta, key, {})`` draws ``{"z", "x"}``
        with :math:`x = G_\theta(z)`, ``sample(theta, key, {"z": z})`` gives ``{"x"}``;
        ``log_prob`` is ``None`` (implicit).
      discriminator: :math:`q_\phi(y \mid x)`; ``sample(phi, key, {"x"})`` draws ``{"y"}`` (a
        float 0.0/1.0), ``log_prob(phi, {"y"}, {"x"})`` is :math:`\log q_\phi(y \mid x)` in the
        stable log-sigmoid form.
      prior: ``prior(theta) -> Distribution``, :math:`p(z) = \mathcal{N}(0, I)` in the dtype of
        ``theta``.
      generate: ``generate(theta, z) -> [D]``, :math:`G_\theta(z)`.
      discriminator_logit: ``discriminator_logit(phi, x) -> scalar``, :math:`d_\phi(x)`, the
        log-odds of :math:`D_\phi(x) = q_\phi(y=1 \mid x)`.
      discriminator_distribution: ``discriminator_distribution(phi, x) -> Distribution``, the
        scalar Bernoulli :math:`q_\phi(y \mid x)` with logits :math:`d_\phi(x)`.
      data_dim: D, the dimension of x.
      latent_dim: L, the dimension of z.
      pack: m, how many examples the discriminator judges at once (1: the classic GAN); its
        ``x`` is then ``[m·D]``, m examples flattened.
    """

    generator: Joint
    discriminator: Inference
    prior: Callable[[Params], Distribution]
    generate: Callable[[Params, jax.Array], jax.Array]
    discriminator_logit: Callable[[Params, jax.Array], jax.Array]
    discriminator_distribution: Callable[[Params, jax.Array], Distribution]
    data_dim: int
    latent_dim: int
    pack: int = 1


def gan_model(
    data_dim: int,
    latent_dim: int = 2,
    *,
    generator_hidden: Sequence[int] = (64, 64),
    discriminator_hidden: Sequence[int] = (64, 64),
    activation: str = "relu",
    pack: int = 1,
    generator: object = None,
    discriminator: object = None,
) -> GANModel:
    r"""A GAN with MLP generator and discriminator, or with your own networks (lecture §3, §3.1).

    The generator has widths ``[latent_dim, *generator_hidden, data_dim]`` and maps
    :math:`z \sim \mathcal{N}(0, I_L)` to :math:`x = G_\theta(z)`; the discriminator has widths
    ``[data_dim, *discriminator_hidden, 1]`` and outputs the log-odds :math:`d_\phi(x)`.

    **Your own networks.** ``generator=`` and ``discriminator=`` take an NNX module instance, a
    :class:`unigen.nets.Network` or a pair ``(init, apply)`` (see :mod:`unigen.nets`); a network
    not given is the MLP above. Each acts on one example: the generator maps ``z`` of shape
    ``[latent_dim]`` to ``x`` of shape ``[data_dim]``; the discriminator maps ``x`` of shape
    ``[pack * data_dim]`` to the log-odds :math:`d_\phi(x)`, of shape ``()`` or ``(1,)``. The
    shapes are checked here, by ``jax.eval_shape``.

    Args:
      data_dim: D, the dimension of x.
      latent_dim: L, the dimension of the noise z.
      generator_hidden: hidden widths of :math:`G_\theta`; ``()`` gives an affine generator
        (a Gaussian :math:`p_{g_\theta}`).
      discriminator_hidden: hidden widths of :math:`d_\phi`; ``()`` gives logistic regression.
      activation: the hidden activation, a name in :data:`unigen.nets.ACTIVATIONS`.
      pack: m, the number of examples the discriminator judges together (PacGAN; 1 = classic).
        The discriminator's input is then ``[m·D]`` and its first layer has ``m·D`` inputs.
      generator: your generator network, or ``None`` for the MLP.
      discriminator: your discriminator network, or ``None`` for the MLP.

    Returns:
      A :class:`GANModel`; ``generator.init(key)`` gives ``theta``, ``discriminator.init(key)``
      gives ``phi``.

    Raises:
      ConfigError: a size is not a positive int, the activation is unknown, or a network is not
        one of the accepted forms, fails on one example or gives an output of the wrong shape.
    """
    data_dim = positive_int("data_dim", data_dim)
    latent_dim = positive_int("latent_dim", latent_dim)
    generator_hidden = hidden_sizes("generator_hidden", generator_hidden)
    discriminator_hidden = hidden_sizes("discriminator_hidden", discriminator_hidden)
    pack = positive_int("pack", pack)
    judged_dim = pack * data_dim  # what the discriminator sees: m examples, flattened
    if generator is None:
        generator_net = mlp([latent_dim, *generator_hidden, data_dim], activation)
    else:
        generator_net = checked_network(
            "generator", generator, "z", latent_dim, [(data_dim,)], "data_dim: x = G(z)"
        )
    if discriminator is None:
        discriminator_net = mlp([judged_dim, *discriminator_hidden, 1], activation)
    else:
        discriminator_net = checked_network(
            "discriminator", discriminator, "x", judged_dim, [(1,), ()], "the log-odds d(x)"
        )

    def prior(theta: Params) -> Distribution:
        dtype = jax.tree.leaves(theta)[0].dtype
        return distributions.standard_normal(latent_dim, dtype)

    def generate(theta: Params, z: jax.Array) -> jax.Array:
        return generator_net.apply(theta["generator"], z)

    def discriminator_logit(phi: Params, x: jax.Array) -> jax.Array:
        return jnp.reshape(discriminator_net.apply(phi["discriminator"], x), ())

    def discriminator_distribution(phi: Params, x: jax.Array) -> Distribution:
        return distributions.BernoulliLogits(discriminator_logit(phi, x))

    # -- the generator p_theta(x | y=0), implicit --------------------------------------------

    def generator_init(key: PRNGKey) -> Params:
        return {"generator": generator_net.init(key)}

    def generator_sample(theta: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [set(), {"z"}])
        if "z" in given:
            return {"x": generate(theta, take("given", given, "z", latent_dim))}
        z = prior(theta).rsample(key)
        return {"z": z, "x": generate(theta, z)}

    # -- the discriminator q_phi(y | x) ------------------------------------------------------

    def discriminator_init(key: PRNGKey) -> Params:
        return {"discriminator": discriminator_net.init(key)}

    def discriminator_sample(phi: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [{"x"}])
        x = take("given", given, "x", judged_dim)
        return {"y": discriminator_distribution(phi, x).sample(key)}

    def discriminator_log_prob(phi: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [{"x"}])
        check_keys("values", values, [{"y"}])
        x = take("given", given, "x", judged_dim)
        return discriminator_distribution(phi, x).log_prob(values["y"])

    return GANModel(
        generator=Joint(generator_init, generator_sample, None),
        discriminator=Inference(discriminator_init, discriminator_sample, discriminator_log_prob),
        prior=prior,
        generate=generate,
        discriminator_logit=discriminator_logit,
        discriminator_distribution=discriminator_distribution,
        data_dim=data_dim,
        latent_dim=latent_dim,
        pack=pack,
    )


def affine_generator_params(loc: ArrayLike, scale: ArrayLike) -> Params:
    r"""``theta`` of an affine generator (``generator_hidden=()``) with
    :math:`G_\theta(z) = z\,\mathrm{scale} + \mathrm{loc}`, so :math:`p_{g_\theta} =
    \mathcal{N}(\mathrm{loc}, \mathrm{scale}^\top \mathrm{scale})`.

    Args:
      loc: ``[D]`` the mean.
      scale: ``[L, D]`` the matrix W (``z W`` with ``z`` a row), or ``[D]`` for a diagonal
        ``L = D`` generator with standard deviations ``scale``.

    Returns:
      ``{"generator": {"linear0": {"kernel": [L, D], "bias": [D]}}}``.

    Raises:
      DataError: ``loc`` is not a vector or ``scale`` does not match it.
    """
    loc = jnp.asarray(loc)
    scale = jnp.asarray(scale, loc.dtype)
    if loc.ndim != 1:
        raise DataError(f"loc: expected a vector [D], got {describe(loc)}")
    if scale.shape == loc.shape:
        scale = jnp.diag(scale)
    if scale.ndim != 2 or scale.shape[1] != loc.shape[0]:
        raise DataError(
            f"scale: expected [L, {loc.shape[0]}] or [{loc.shape[0]}], got {describe(scale)}"
        )
    return {"generator": {"linear0": {"kernel": scale, "bias": loc}}}
