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

The encoder and decoder are MLPs by default, or your own networks (an NNX module, a
:class:`unigen.nets.Network` or a pair ``(init, apply)``; see :func:`vae_model`): the encoder's
output is ``[mean, log standard deviation]`` of z, the decoder's the log-odds (Bernoulli) or the
mean (Gaussian) of x. Parameters are plain nested dicts:
``theta = {"decoder": <network params>[, "log_scale": [D]]}`` and
``eta = {"encoder": <network params>}``. Every function acts on one example (``x`` of shape
``[D]``, ``z`` of shape ``[L]``); batch with ``jax.vmap``.
"""

from __future__ import annotations

import numbers
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from unigen import distributions, nets
from unigen.core import Inference, Joint, Params, PRNGKey, Values
from unigen.distributions import Distribution
from unigen.errors import ConfigError
from unigen.models.values import check_keys, checked_network, hidden_sizes, positive_int, take
from unigen.nets import mlp

__all__ = ["LIKELIHOODS", "VAEModel", "vae_model"]

# ``positive_int`` lives in :mod:`unigen.models.values`; the algorithms and metrics still import it
# from here (files this change does not own), so the name stays importable.

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
      likelihood: ``"bernoulli"`` or ``"gaussian"`` for the decoders of :func:`vae_model`,
        ``None`` when not known (a user's decoder).
    """

    joint: Joint
    inference: Inference
    prior: Callable[[Params], Distribution]
    decoder_distribution: Callable[[Params, jax.Array], Distribution]
    encoder_distribution: Callable[[Params, jax.Array], Distribution]
    decode_mean: Callable[[Params, jax.Array], jax.Array]
    data_dim: int
    latent_dim: int
    likelihood: str | None = None


def vae_model(
    data_dim: int,
    latent_dim: int | None = None,
    hidden: Sequence[int] = (400,),
    activation: str = "relu",
    likelihood: str = "bernoulli",
    observation_scale: float | None = None,
    *,
    encoder: object = None,
    decoder: object = None,
) -> VAEModel:
    r"""A VAE with MLP encoder and decoder, or with your own networks (lecture §2.3).

    The encoder has widths ``[data_dim, *hidden, 2 * latent_dim]`` (mean, then log standard
    deviation); the decoder ``[latent_dim, *reversed(hidden), data_dim]``. The defaults are the
    PyTorch-examples VAE (784-400-20, relu); the IWAE paper's one-stochastic-layer network is
    ``vae_model(784, 50, hidden=(200, 200), activation="tanh")``. ``hidden=()`` gives linear
    encoder and decoder (with ``likelihood="gaussian"``, a linear-Gaussian factor-analysis model,
    whose log-likelihood is known in closed form: the tests use it as an oracle).

    **Your own networks.** ``encoder=`` and ``decoder=`` take an NNX module instance, a
    :class:`unigen.nets.Network` (e.g. :func:`unigen.nets.pure` of a module constructor) or a
    pair ``(init, apply)`` of pure functions (see :mod:`unigen.nets`); a network not given is
    the MLP above. Each acts on **one example**:

    * the encoder maps ``x`` of shape ``[data_dim]`` (images flattened row-major from
      ``[H, W, C]``, as :mod:`unigen.data` gives them) to ``[2 * latent_dim]``: the mean of z,
      then the **log standard deviation** of z;
    * the decoder maps ``z`` of shape ``[latent_dim]`` to ``[data_dim]``: the log-odds of x
      (``likelihood="bernoulli"``) or the mean of x (``"gaussian"``).

    Everything else (the joint, the inference model, the distributions, ``decode_mean``, the
    parameter ``init``) is derived. The shapes are checked here, by ``jax.eval_shape``; with an
    encoder and ``latent_dim=None``, ``latent_dim`` is half the encoder's output. ::

        class Encoder(nnx.Module): ...      # [64] -> [16]
        class Decoder(nnx.Module): ...      # [8] -> [64] logits
        model = vae_model(64, encoder=Encoder(nnx.Rngs(0)), decoder=Decoder(nnx.Rngs(1)))

    Args:
      data_dim: D, the dimension of x.
      latent_dim: L, the dimension of z; ``None``: half the output of ``encoder`` if one is
        given, else 20.
      hidden: the hidden widths of the MLP encoder (the MLP decoder uses them reversed).
      activation: the MLPs' hidden activation, a name in :data:`unigen.nets.ACTIVATIONS`.
      likelihood: ``"bernoulli"`` (decoder gives log-odds) or ``"gaussian"`` (decoder gives the
        mean; see ``observation_scale``).
      observation_scale: Gaussian only. ``None`` learns a per-dimension standard deviation
        :math:`s = \exp(\theta_{\mathrm{log\_scale}})`; a positive float fixes :math:`s` to it.
      encoder: your encoder network, or ``None`` for the MLP.
      decoder: your decoder network, or ``None`` for the MLP.

    Returns:
      A :class:`VAEModel`.

    Raises:
      ConfigError: a size is not a positive int, the activation or likelihood is unknown,
        ``observation_scale`` is given for a Bernoulli likelihood or is not positive, or a
        network is not one of the accepted forms, fails on one example or gives an output of
        the wrong shape (the message names the network, the shape seen and the one expected).
    """
    data_dim = positive_int("data_dim", data_dim)
    if latent_dim is not None:
        latent_dim = positive_int("latent_dim", latent_dim)
    hidden = hidden_sizes("hidden", hidden)
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

    if encoder is None:
        latent_dim = 20 if latent_dim is None else latent_dim
        encoder = mlp([data_dim, *hidden, 2 * latent_dim], activation)
    else:
        if latent_dim is None:
            latent_dim = _half_output("encoder", nets.network("encoder", encoder), data_dim)
        encoder = checked_network(
            "encoder", encoder, "x", data_dim, [(2 * latent_dim,)],
            f"2 * latent_dim = 2 * {latent_dim}: the mean of z, then its log standard deviation",
        )
    if decoder is None:
        decoder = mlp([latent_dim, *reversed(hidden), data_dim], activation)
    else:
        meaning = "the log-odds of x" if likelihood == "bernoulli" else "the mean of x"
        decoder = checked_network(
            "decoder", decoder, "z", latent_dim, [(data_dim,)], f"data_dim: {meaning}"
        )

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
        likelihood=likelihood,
    )


def _half_output(name: str, net: nets.Network, data_dim: int) -> int:
    """L for an encoder whose output on one x is ``[2 L]``, else :class:`ConfigError`."""
    shape = nets.output_shape(name, net, (data_dim,))
    if len(shape) != 1 or shape[0] % 2 or shape[0] < 2:
        raise ConfigError(
            f"{name}: got output shape {shape} for one x of shape ({data_dim},), expected "
            f"(2 * latent_dim,) (the mean of z, then its log standard deviation)"
        )
    return shape[0] // 2


def _draw(distribution: Distribution, key: PRNGKey) -> jax.Array:
    """A pathwise draw where the distribution has one (Gaussian), a plain draw otherwise."""
    if distribution.has_rsample:
        return distribution.rsample(key)
    return distribution.sample(key)
