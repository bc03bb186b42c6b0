r"""InfoGAN's model (Figure 5, GAN column): a GAN whose generator also takes a code, and a
z-inference model that reads the code back.

In the declaration (:mod:`unigen.algorithms.infogan`) the code is the latent :math:`z` of
Figure 5; here it is a **categorical code** with K values, :math:`z \sim p(z) =
\mathrm{Uniform}\{0, \dots, K-1\}` (an integer, enumerated exactly by the compiled loss), or,
with ``continuous_codes=C > 0``, a categorical *and* C continuous codes, the vector
:math:`z = [c, u_1, \dots, u_C]` with :math:`c` uniform on :math:`\{0..K-1\}` (stored as a float)
and :math:`u_j \sim \mathrm{Uniform}(-1, 1)` (:class:`MixedCode`; drawn, not enumerated). The
generator also draws incompressible noise :math:`\epsilon \sim \mathcal{N}(0, I)`:

.. math::  x = G_\theta(\epsilon, z) = \mathrm{MLP}_\theta([\epsilon, \mathrm{onehot}(z)]),
   \qquad p_\theta(x \mid z, y=0) \text{ implicit (sample only)},

with :math:`p_\theta(x \mid y=0) = \sum_z p(z)\, p_\theta(x \mid z, y=0)` and
:math:`p_\theta(x \mid y=1) = p_{data}(x)` as for the GAN. The discriminator
:math:`q_\phi(y \mid x)` is a Bernoulli with logits (stable log-sigmoid log-mass), and the
z-inference model :math:`q_\eta(z \mid x, y=0)` a categorical with logits
:math:`\mathrm{MLP}_\eta(x)` (times, for continuous codes, a diagonal Gaussian over
:math:`u` whose mean and log standard deviation are the other outputs of the same network, as
InfoGAN's factored Gaussian; :class:`MixedCodePosterior`).

Parameters: ``theta = {"generator": ...}``, ``phi = {"discriminator": ...}``,
``eta = {"inference": ...}``. Functions act on one example; batch with ``jax.vmap``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as numpyro_dist

from unigen import distributions
from unigen.core import Inference, Joint, Params, PRNGKey, Values
from unigen.distributions import Distribution
from unigen.errors import ConfigError, DataError, describe
from unigen.models.values import check_keys, checked_network, hidden_sizes, positive_int
from unigen.nets import mlp

__all__ = ["InfoGANModel", "MixedCode", "MixedCodePosterior", "infogan_model"]


class MixedCode(numpyro_dist.Distribution):
    r"""The code prior of a categorical and C continuous codes, one event
    :math:`z = [c, u_1, \dots, u_C]`: :math:`c` uniform on :math:`\{0, \dots, K-1\}` (as a
    float), :math:`u_j \sim \mathrm{Uniform}(-1, 1)`, independent. It has no parameters, so a
    draw is trivially "reparameterized" (no gradient to carry);
    :math:`\mathrm{H} = \log K + C \log 2`."""

    arg_constraints: dict = {}
    reparametrized_params: list = []

    def __init__(self, code_values: int, continuous_codes: int, dtype: jnp.dtype = jnp.float32):
        self.code_values, self.continuous_codes, self.dtype = code_values, continuous_codes, dtype
        super().__init__(batch_shape=(), event_shape=(1 + continuous_codes,))

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        key_index, key_uniform = jax.random.split(key)
        index = jax.random.randint(key_index, sample_shape, 0, self.code_values)
        uniform = jax.random.uniform(key_uniform, (*sample_shape, self.continuous_codes),
                                     self.dtype, -1.0, 1.0)
        return jnp.concatenate([index.astype(self.dtype)[..., None], uniform], axis=-1)

    def log_prob(self, value: jax.Array) -> jax.Array:
        value = jnp.asarray(value, self.dtype)
        index, uniform = value[..., 0], value[..., 1:]
        inside = (jnp.all(jnp.abs(uniform) <= 1.0, axis=-1) & (index >= 0)
                  & (index <= self.code_values - 1) & (index == jnp.round(index)))
        density = -(math.log(self.code_values) + self.continuous_codes * math.log(2.0))
        return jnp.where(inside, jnp.asarray(density, self.dtype),
                         jnp.asarray(-jnp.inf, self.dtype))

    def entropy(self) -> jax.Array:
        return jnp.asarray(math.log(self.code_values) + self.continuous_codes * math.log(2.0),
                           self.dtype)


class MixedCodePosterior(numpyro_dist.Distribution):
    r""":math:`q_\eta(z \mid x, y=0)` for :class:`MixedCode`: a categorical over :math:`c` with
    ``logits`` times independent Gaussians :math:`\mathcal{N}(u_j; \mathrm{loc}_j,
    \mathrm{scale}_j^2)`."""

    arg_constraints: dict = {}

    def __init__(self, logits: jax.Array, loc: jax.Array, scale: jax.Array):
        self.logits, self.loc, self.scale = logits, loc, scale
        super().__init__(batch_shape=(), event_shape=(1 + loc.shape[-1],))

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        key_index, key_normal = jax.random.split(key)
        index = jax.random.categorical(key_index, self.logits, shape=sample_shape)
        normal = numpyro_dist.Normal(self.loc, self.scale).sample(key_normal, sample_shape)
        return jnp.concatenate([index.astype(self.loc.dtype)[..., None], normal], axis=-1)

    def log_prob(self, value: jax.Array) -> jax.Array:
        value = jnp.asarray(value, self.loc.dtype)
        index = value[0].astype(jnp.int32)
        log_normal = numpyro_dist.Normal(self.loc, self.scale).log_prob(value[1:])
        return jax.nn.log_softmax(self.logits)[index] + jnp.sum(log_normal)


class InfoGANModel(NamedTuple):
    r"""InfoGAN: generator, discriminator and z-inference model, and their building blocks.

    Attributes:
      generator: :math:`p_\theta(x \mid z, y=0)`; ``sample(theta, key, {})`` draws
        ``{"z", "noise", "x"}`` (code from :math:`p(z)`), ``sample(theta, key, {"z": z})`` gives
        ``{"noise", "x"}``; ``log_prob`` is ``None`` (implicit).
      discriminator: :math:`q_\phi(y \mid x)`, as in :class:`unigen.models.gan.GANModel`.
      inference: :math:`q_\eta(z \mid x, y=0)`; ``sample(eta, key, {"x"})`` draws ``{"z"}``,
        ``log_prob(eta, {"z"}, {"x"})``.
      code_prior: ``code_prior(dtype) -> Distribution``, :math:`p(z)`: the uniform categorical,
        or :class:`MixedCode` with continuous codes.
      generate: ``generate(theta, noise, z) -> [D]``, :math:`G_\theta(\epsilon, z)` (``z`` an
        integer code, or the vector ``[c, u_1..u_C]``).
      discriminator_logit: ``discriminator_logit(phi, x) -> scalar``, :math:`d_\phi(x)`.
      inference_logits: ``inference_logits(eta, x) -> [K]``, the logits of the categorical
        part of :math:`q_\eta(z \mid x, y=0)`.
      inference_distribution: ``inference_distribution(eta, x) -> Distribution``,
        :math:`q_\eta(z \mid x, y=0)` (categorical, or :class:`MixedCodePosterior`).
      category: ``category(z) -> int``, the categorical code of a code value.
      data_dim: D.
      noise_dim: the dimension of :math:`\epsilon`.
      code_values: K.
      continuous_codes: C (0: a categorical code only).
    """

    generator: Joint
    discriminator: Inference
    inference: Inference
    code_prior: Callable[[jnp.dtype], Distribution]
    generate: Callable[[Params, jax.Array, jax.Array], jax.Array]
    discriminator_logit: Callable[[Params, jax.Array], jax.Array]
    inference_logits: Callable[[Params, jax.Array], jax.Array]
    inference_distribution: Callable[[Params, jax.Array], Distribution]
    category: Callable[[jax.Array], jax.Array]
    data_dim: int
    noise_dim: int
    code_values: int
    continuous_codes: int = 0


def _vector(name: str, value: jax.Array, dim: int) -> jax.Array:
    value = jnp.asarray(value)
    if value.shape != (dim,):
        raise DataError(f"{name}: expected one example of shape ({dim},), got {describe(value)}")
    return value


def infogan_model(
    data_dim: int,
    noise_dim: int = 2,
    code_values: int = 8,
    *,
    generator_hidden: Sequence[int] = (64, 64),
    discriminator_hidden: Sequence[int] = (64, 64),
    inference_hidden: Sequence[int] = (64, 64),
    activation: str = "relu",
    continuous_codes: int = 0,
    generator: object = None,
    discriminator: object = None,
    inference: object = None,
) -> InfoGANModel:
    r"""An InfoGAN with a categorical code of ``code_values`` values and MLP networks, or your
    own networks.

    ``generator=``, ``discriminator=`` and ``inference=`` take an NNX module instance, a
    :class:`unigen.nets.Network` or a pair ``(init, apply)`` (see :mod:`unigen.nets`); a network
    not given is the MLP. Each acts on one example: the generator maps the concatenation
    ``[noise, onehot(c), u]`` of shape ``[noise_dim + code_values + continuous_codes]`` to
    ``[data_dim]``; the discriminator maps ``x`` to the log-odds, ``()`` or ``(1,)``; the
    inference network maps ``x`` to ``[code_values + 2 * continuous_codes]`` (the categorical
    logits, then the means, then the log standard deviations of the continuous codes). The
    shapes are checked here, by ``jax.eval_shape``.

    Args:
      data_dim: D, the dimension of x.
      noise_dim: the dimension of the incompressible noise :math:`\epsilon`.
      code_values: K, the number of values of the categorical code (8 for ``ring8``).
      generator_hidden: hidden widths of :math:`G_\theta` (input ``noise_dim + K``).
      discriminator_hidden: hidden widths of :math:`d_\phi`.
      inference_hidden: hidden widths of :math:`q_\eta(z \mid x, y=0)` (output K logits).
      activation: the hidden activation, a name in :data:`unigen.nets.ACTIVATIONS`.
      continuous_codes: C, the number of Uniform(−1, 1) codes besides the categorical one
        (0: none, the code is the integer c).
      generator: your generator network, or ``None`` for the MLP.
      discriminator: your discriminator network, or ``None`` for the MLP.
      inference: your z-inference network, or ``None`` for the MLP.

    Returns:
      An :class:`InfoGANModel`.

    Raises:
      ConfigError: a size is not a positive int (``code_values`` at least 2), the activation
        is unknown, or a network is not one of the accepted forms, fails on one example or
        gives an output of the wrong shape.
    """
    data_dim = positive_int("data_dim", data_dim)
    noise_dim = positive_int("noise_dim", noise_dim)
    code_values = positive_int("code_values", code_values)
    if code_values < 2:
        raise ConfigError(f"code_values: expected at least 2, got {code_values}")
    if (isinstance(continuous_codes, bool) or not isinstance(continuous_codes, int)
            or continuous_codes < 0):
        raise ConfigError(
            f"continuous_codes: expected a non-negative int, got {describe(continuous_codes)}"
        )
    mixed = continuous_codes > 0
    generator_hidden = hidden_sizes("generator_hidden", generator_hidden)
    discriminator_hidden = hidden_sizes("discriminator_hidden", discriminator_hidden)
    inference_hidden = hidden_sizes("inference_hidden", inference_hidden)
    generator_in = noise_dim + code_values + continuous_codes
    inference_out = code_values + 2 * continuous_codes
    if generator is None:
        generator_net = mlp([generator_in, *generator_hidden, data_dim], activation)
    else:
        generator_net = checked_network(
            "generator", generator, "[noise, onehot(c), u]", generator_in, [(data_dim,)],
            "data_dim: x = G(noise, code)",
        )
    if discriminator is None:
        discriminator_net = mlp([data_dim, *discriminator_hidden, 1], activation)
    else:
        discriminator_net = checked_network(
            "discriminator", discriminator, "x", data_dim, [(1,), ()], "the log-odds d(x)"
        )
    if inference is None:
        inference_net = mlp([data_dim, *inference_hidden, inference_out], activation)
    else:
        inference_net = checked_network(
            "inference", inference, "x", data_dim, [(inference_out,)],
            "code_values + 2 * continuous_codes: the code's logits, then the continuous codes' "
            "means, then their log standard deviations",
        )

    def code_prior(dtype: jnp.dtype = jnp.float32) -> Distribution:
        if mixed:
            return MixedCode(code_values, continuous_codes, dtype)
        return numpyro_dist.CategoricalLogits(jnp.zeros((code_values,), dtype))

    def category(z: jax.Array) -> jax.Array:
        z = jnp.asarray(z)
        return z[..., 0].astype(jnp.int32) if mixed else z

    def generate(theta: Params, noise: jax.Array, z: jax.Array) -> jax.Array:
        noise = jnp.asarray(noise)
        parts = [noise, jax.nn.one_hot(category(z), code_values, dtype=noise.dtype)]
        if mixed:
            parts.append(jnp.asarray(z, noise.dtype)[1:])
        return generator_net.apply(theta["generator"], jnp.concatenate(parts))

    def discriminator_logit(phi: Params, x: jax.Array) -> jax.Array:
        return jnp.reshape(discriminator_net.apply(phi["discriminator"], x), ())

    def inference_logits(eta: Params, x: jax.Array) -> jax.Array:
        return inference_net.apply(eta["inference"], x)[:code_values]

    def inference_distribution(eta: Params, x: jax.Array) -> Distribution:
        out = inference_net.apply(eta["inference"], x)
        if not mixed:
            return numpyro_dist.CategoricalLogits(out)
        loc = out[code_values:code_values + continuous_codes]
        scale = jnp.exp(out[code_values + continuous_codes:])
        return MixedCodePosterior(out[:code_values], loc, scale)

    def generator_sample(theta: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [set(), {"z"}])
        dtype = jax.tree.leaves(theta)[0].dtype
        key_noise, key_code = jax.random.split(key)
        noise = distributions.standard_normal(noise_dim, dtype).rsample(key_noise)
        if "z" in given:
            return {"noise": noise, "x": generate(theta, noise, given["z"])}
        with jax.numpy_dtype_promotion("standard"):
            z = code_prior(dtype).sample(key_code)
        return {"z": z, "noise": noise, "x": generate(theta, noise, z)}

    def discriminator_sample(phi: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [{"x"}])
        x = _vector("given['x']", given["x"], data_dim)
        return {"y": distributions.BernoulliLogits(discriminator_logit(phi, x)).sample(key)}

    def discriminator_log_prob(phi: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [{"x"}])
        check_keys("values", values, [{"y"}])
        x = _vector("given['x']", given["x"], data_dim)
        return distributions.BernoulliLogits(discriminator_logit(phi, x)).log_prob(values["y"])

    def inference_sample(eta: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [{"x"}])
        x = _vector("given['x']", given["x"], data_dim)
        with jax.numpy_dtype_promotion("standard"):
            return {"z": inference_distribution(eta, x).sample(key)}

    def inference_log_prob(eta: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [{"x"}])
        check_keys("values", values, [{"z"}])
        x = _vector("given['x']", given["x"], data_dim)
        with jax.numpy_dtype_promotion("standard"):
            return inference_distribution(eta, x).log_prob(values["z"])

    return InfoGANModel(
        generator=Joint(lambda key: {"generator": generator_net.init(key)}, generator_sample,
                        None),
        discriminator=Inference(lambda key: {"discriminator": discriminator_net.init(key)},
                                discriminator_sample, discriminator_log_prob),
        inference=Inference(lambda key: {"inference": inference_net.init(key)},
                            inference_sample, inference_log_prob),
        code_prior=code_prior,
        generate=generate,
        discriminator_logit=discriminator_logit,
        inference_logits=inference_logits,
        inference_distribution=inference_distribution,
        category=category,
        data_dim=data_dim,
        noise_dim=noise_dim,
        code_values=code_values,
        continuous_codes=continuous_codes,
    )
