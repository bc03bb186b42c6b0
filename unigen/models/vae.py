r"""The variational autoencoder as a :class:`~unigen.core.Joint` and an
:class:`~unigen.core.Inference`.

Lecture §2.3. The generative joint is

.. math::  p_\theta(x, z) = p(z)\, p_\theta(x \mid z), \qquad p(z) = \mathcal{N}(0, I),

with a decoder network giving the parameters of :math:`p_\theta(x \mid z)`:

* ``likelihood="bernoulli"`` — :math:`x_i \mid z \sim \mathrm{Bernoulli}(\sigma(l_i(z)))`, the
  decoder outputs the log-odds :math:`l(z)`; for data in [0, 1] (binarized MNIST, digits).
* ``likelihood="gaussian"`` — :math:`x \mid z \sim \mathcal{N}(\mu_\theta(z),
  \operatorname{diag}(s^2))`, the decoder outputs the mean :math:`\mu_\theta(z)` and the standard
  deviation :math:`s` does **not** depend on z: by default it is a learned per-dimension
  :math:`\log s` (``theta["log_scale"]``, shape ``[data_dim]``, initialized to 0, i.e.
  :math:`s = 1`); with ``observation_scale=c`` it is the fixed scalar ``c`` and is not a parameter.
  For continuous low-dimensional data (the 2-D mixtures ``ring8``, ``grid25``).

The inference model is a diagonal Gaussian whose mean and **log standard deviation** are the two
halves of one encoder output,

.. math::  q_\eta(z \mid x) = \mathcal{N}(\mu_\eta(x), \operatorname{diag}(\sigma_\eta(x)^2)),
   \qquad [\mu_\eta(x), \log \sigma_\eta(x)] = \mathrm{encoder}_\eta(x),

drawn pathwise (reparameterized), :math:`z = \mu_\eta(x) + \sigma_\eta(x) \odot \epsilon`,
:math:`\epsilon \sim \mathcal{N}(0, I)`, so gradients reach :math:`\eta` through z (§2.3).

Parameters are plain nested dicts: ``theta = {"decoder": <mlp params>[, "log_scale": [D]]}`` and
``eta = {"encoder": <mlp params>}``. Every function acts on one example (``x`` of shape ``[D]``,
``z`` of shape ``[L]``); batch with ``jax.vmap``.
"""

from __future__ import annotations

import numbers
from typing import Callable, Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from unigen import distributions
from unigen.core import Inference, Joint, Params, PRNGKey, Values
from unigen.distributions import Distribution
from unigen.errors import ConfigError, describe
from unigen.models.values import check_keys, take
from unigen.nets import mlp

__all__ = ["LIKELIHOODS", "VAEModel", "vae_model"]

LIKELIHOODS = ("bernoulli", "gaussian")


class VAEModel(NamedTuple):
    r"""A VAE: the joint and inference models plus the distributions they are built from.

    Any model with these fields works with :mod:`unigen.algorithms.vae`; :mod:`unigen.metrics` and
    :mod:`unigen.algorithms.iwae` use only ``joint``, ``inference`` and ``data_dim``.

    Attributes:
      joint: :math:`p_\theta(x, z)`; ``sample(theta, key, {})`` draws ``{"z", "x"}``,
        ``sample(theta, key, {"z": z})`` draws ``{"x"}``; ``log_prob(theta, {"x", "z"}, {})`` is
        :math:`\log p(z) + \log p_\theta(x \mid z)` and ``log_prob(theta, {"x"}, {"z"})`` is
        :math:`\log p_\theta(x \mid z)`.
      inference: :math:`q_\eta(z \mid x)`; ``sample(eta, key, {"x"})`` draws ``{"z"}`` pathwise,
        ``log_prob(eta, {"z"}, {"x"})``.
      prior: ``prior(theta) -> Distribution``, :math:`p(z)` (here :math:`\mathcal{N}(0, I)`
        in the dtype of ``theta``; the argument leaves room for a learned prior).
      decoder_distribution: ``decoder_distribution(theta, z) -> Distribution``,
        :math:`p_\theta(x \mid z)` as one event over ``[D]``.
      encoder_distribution: ``encoder_distribution(eta, x) -> Distribution``,
        :math:`q_\eta(z \mid x)` as one event over ``[L]``.
      decode_mean: ``decode_mean(theta, z) -> [D]``, :math:`\mathbb{E}[x \mid z]` (pixel
        probabilities for Bernoulli, the mean for Gaussian): what a sample grid shows.
      data_dim: D, the dimension of x.
      latent_dim: L, the dimension of z.
    """

    joint: Joint
    inference: Inference
    prior: Callable[[Params], Distribution]
    decoder_distribution: Callable[[Params, jax.Array], Distribution]
    encoder_distribution: Callable[[Params, jax.Array], Distribution]
    decode_mean: Callable[[Params, jax.Array], jax.Array]
    data_dim: int
    latent_dim: int


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is a positive integer (Python or NumPy), else
    :class:`ConfigError` naming ``name``, the value seen and what was expected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name}: expected a positive int, got {describe(value)}")
    return int(value)


def vae_model(
    data_dim: int,
    latent_dim: int = 20,
    hidden: Sequence[int] = (400,),
    activation: str = "relu",
    likelihood: str = "bernoulli",
    observation_scale: float | None = None,
) -> VAEModel:
    r"""A VAE with MLP encoder and decoder (lecture §2.3).

    The encoder has widths ``[data_dim, *hidden, 2 * latent_dim]`` (mean, then log standard
    deviation); the decoder ``[latent_dim, *reversed(hidden), data_dim]``. The defaults are the
    PyTorch-examples VAE (784-400-20, relu); the IWAE paper's one-stochastic-layer network is
    ``vae_model(784, 50, hidden=(200, 200), activation="tanh")``. ``hidden=()`` gives linear
    encoder and decoder (with ``likelihood="gaussian"``, a linear-Gaussian factor-analysis model,
    whose log-likelihood is known in closed form: the tests use it as an oracle).

    Args:
      data_dim: D, the dimension of x.
      latent_dim: L, the dimension of z.
      hidden: the hidden widths of the encoder (the decoder uses them reversed).
      activation: the hidden activation, a name in :data:`unigen.nets.ACTIVATIONS`.
      likelihood: ``"bernoulli"`` (decoder gives log-odds) or ``"gaussian"`` (decoder gives the
        mean; see ``observation_scale``).
      observation_scale: Gaussian only. ``None`` learns a per-dimension standard deviation
        :math:`s = \exp(\theta_{\mathrm{log\_scale}})`; a positive float fixes :math:`s` to it.

    Returns:
      A :class:`VAEModel`.

    Raises:
      ConfigError: a size is not a positive int, the activation or likelihood is unknown, or
        ``observation_scale`` is given for a Bernoulli likelihood or is not positive.
    """
    data_dim = positive_int("data_dim", data_dim)
    latent_dim = positive_int("latent_dim", latent_dim)
    widths = tuple(hidden) if isinstance(hidden, Iterable) and not isinstance(hidden, str) else None
    if widths is None or not all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in widths
    ):
        raise ConfigError(f"hidden: expected a sequence of positive ints, got {describe(hidden)}")
    hidden = tuple(int(h) for h in widths)
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"likelihood: expected one of {list(LIKELIHOODS)}, got {likelihood!r}")
    if observation_scale is not None:
        if likelihood != "gaussian":
            raise ConfigError(
                f"observation_scale: expected None for likelihood={likelihood!r} (it is the "
                f"Gaussian likelihood's standard deviation), got {observation_scale!r}"
            )
        if (
            isinstance(observation_scale, bool)
            or not isinstance(observation_scale, numbers.Real)
            or not observation_scale > 0.0
        ):
            raise ConfigError(
                f"observation_scale: expected a positive float or None, got {observation_scale!r}"
            )
        observation_scale = float(observation_scale)
    learned_scale = likelihood == "gaussian" and observation_scale is None

    encoder = mlp([data_dim, *hidden, 2 * latent_dim], activation)
    decoder = mlp([latent_dim, *reversed(hidden), data_dim], activation)

    def prior(theta: Params) -> Distribution:
        # N(0, I) is fixed; it only takes the floating dtype of theta (float32, or float64 under
        # jax.enable_x64 with float64 parameters), which strict promotion needs to match.
        dtype = jax.tree.leaves(theta)[0].dtype
        return distributions.standard_normal(latent_dim, dtype)

    def decoder_output(theta: Params, z: jax.Array) -> jax.Array:
        return decoder.apply(theta["decoder"], z)

    def decoder_distribution(theta: Params, z: jax.Array) -> Distribution:
        out = decoder_output(theta, z)
        if likelihood == "bernoulli":
            return distributions.bernoulli_logits(out)
        if learned_scale:
            return distributions.diagonal_normal(out, jnp.exp(theta["log_scale"]))
        return distributions.diagonal_normal(out, jnp.asarray(observation_scale, out.dtype))

    def decode_mean(theta: Params, z: jax.Array) -> jax.Array:
        out = decoder_output(theta, z)
        return jax.nn.sigmoid(out) if likelihood == "bernoulli" else out

    def encoder_distribution(eta: Params, x: jax.Array) -> Distribution:
        out = encoder.apply(eta["encoder"], x)
        loc, log_scale = out[:latent_dim], out[latent_dim:]
        return distributions.diagonal_normal(loc, jnp.exp(log_scale))

    # -- the joint p_theta(x, z) -------------------------------------------------------------

    def joint_init(key: PRNGKey) -> Params:
        theta = {"decoder": decoder.init(key)}
        if learned_scale:
            theta["log_scale"] = jnp.zeros((data_dim,), jnp.float32)
        return theta

    def joint_sample(theta: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [set(), {"z"}])
        if "z" in given:
            z = take("given", given, "z", latent_dim)
            return {"x": _draw(decoder_distribution(theta, z), key)}
        key_z, key_x = jax.random.split(key)
        z = prior(theta).rsample(key_z)
        return {"z": z, "x": _draw(decoder_distribution(theta, z), key_x)}

    def joint_log_prob(theta: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [set(), {"z"}])
        if "z" in given:
            check_keys("values", values, [{"x"}])
            z = take("given", given, "z", latent_dim)
            x = take("values", values, "x", data_dim)
            return decoder_distribution(theta, z).log_prob(x)
        check_keys("values", values, [{"x", "z"}])
        z = take("values", values, "z", latent_dim)
        x = take("values", values, "x", data_dim)
        return prior(theta).log_prob(z) + decoder_distribution(theta, z).log_prob(x)

    # -- the inference model q_eta(z | x) ----------------------------------------------------

    def inference_init(key: PRNGKey) -> Params:
        return {"encoder": encoder.init(key)}

    def inference_sample(eta: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [{"x"}])
        x = take("given", given, "x", data_dim)
        return {"z": encoder_distribution(eta, x).rsample(key)}

    def inference_log_prob(eta: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [{"x"}])
        check_keys("values", values, [{"z"}])
        x = take("given", given, "x", data_dim)
        z = take("values", values, "z", latent_dim)
        return encoder_distribution(eta, x).log_prob(z)

    return VAEModel(
        joint=Joint(joint_init, joint_sample, joint_log_prob),
        inference=Inference(inference_init, inference_sample, inference_log_prob),
        prior=prior,
        decoder_distribution=decoder_distribution,
        encoder_distribution=encoder_distribution,
        decode_mean=decode_mean,
        data_dim=data_dim,
        latent_dim=latent_dim,
    )


def _draw(distribution: Distribution, key: PRNGKey) -> jax.Array:
    """A pathwise draw where the distribution has one (Gaussian), a plain draw otherwise."""
    if distribution.has_rsample:
        return distribution.rsample(key)
    return distribution.sample(key)
