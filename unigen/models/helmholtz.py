r"""The Helmholtz machine (lecture §1.1.2): a generative SBN and a bottom-up recognition SBN.

The generative model :math:`G_\theta` is a sigmoid belief net (:mod:`unigen.models.sbn`), run
top-down, :math:`X_n = G_\theta(X_{n-1})`; the recognition model :math:`F_\phi` is a second SBN
run bottom-up from the data, :math:`X_{n-1} = F_\phi(X_n)`:

.. math::
   q_\phi(h \mid x) = \prod_{l=1}^{L} q_\phi(h_l \mid h_{l-1}), \qquad
   q_\phi(h_{l,k} = 1 \mid h_{l-1}) = \sigma(U_{l,k}^\top h_{l-1} + c_{l,k}), \qquad h_0 = x.

Both are exact: :math:`\log q_\phi(z \mid x)` is a sum of Bernoulli log-probabilities. As in
:mod:`unigen.models.sbn` the hidden units are one vector ``z = [h_1, ..., h_L]`` (bottom layer
first; the wake-sleep algebra calls it :math:`h`). The recognition parameters are::

    {"weights": [U_1 [H_1, D], U_2 [H_2, H_1], ..., U_L [H_L, H_{L-1}]],
     "biases":  [c_1 [H_1], ..., c_L [H_L]]}

Algorithms choose the name of the recognition group: ``"lambda"`` for wake-sleep (§3.4),
``"phi"`` for reweighted wake-sleep and variational EM. Extra keys in that dict (an NVIL
baseline network) are ignored by the functions here.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from unigen import distributions
from unigen.core import Inference, Joint, Params, PRNGKey, Values
from unigen.distributions import Distribution
from unigen.models.sbn import (
    BernoulliChain,
    SigmoidBeliefNet,
    check_layers,
    layer_slices,
    positive_float,
    sigmoid_belief_net,
)
from unigen.models.values import check_keys, positive_int, take

__all__ = ["HelmholtzMachine", "helmholtz_machine"]


class HelmholtzMachine(NamedTuple):
    r"""A Helmholtz machine: generative joint, recognition model and their distributions.

    The fields ``joint``, ``inference``, ``prior``, ``decoder_distribution``,
    ``encoder_distribution``, ``decode_mean``, ``data_dim`` and ``latent_dim`` mean what they mean
    in :class:`~unigen.models.vae.VAEModel`, so :func:`unigen.metrics.is_nll` and
    :mod:`unigen.algorithms.iwae` accept a Helmholtz machine as they are.

    Attributes:
      joint: :math:`p_\theta(x, z)`, the generative SBN's joint (see
        :class:`~unigen.models.sbn.SigmoidBeliefNet`).
      inference: :math:`q_\phi(z \mid x)`; ``sample(phi, key, {"x"})`` draws ``{"z"}``
        ancestrally (bottom-up, not reparameterized), ``log_prob(phi, {"z"}, {"x"})``.
      prior: ``prior(theta) -> Distribution``, :math:`p_\theta(z)`.
      decoder_distribution: ``decoder_distribution(theta, z)``, :math:`p_\theta(x \mid h_1)`.
      encoder_distribution: ``encoder_distribution(phi, x) -> Distribution`` over ``z``,
        :math:`q_\phi(z \mid x)` (a factorized Bernoulli when L = 1, else a
        :class:`~unigen.models.sbn.BernoulliChain`).
      decode_mean: ``decode_mean(theta, z) -> [D]``, the pixel probabilities given z.
      generative: the generative :class:`~unigen.models.sbn.SigmoidBeliefNet` itself.
      data_dim: D.
      latent_dim: :math:`H_1 + \cdots + H_L`.
      layers: :math:`(H_1, \ldots, H_L)`, bottom to top.
    """

    joint: Joint
    inference: Inference
    prior: Callable[[Params], Distribution]
    decoder_distribution: Callable[[Params, jax.Array], Distribution]
    encoder_distribution: Callable[[Params, jax.Array], Distribution]
    decode_mean: Callable[[Params, jax.Array], jax.Array]
    generative: SigmoidBeliefNet
    data_dim: int
    latent_dim: int
    layers: tuple[int, ...]

    @property
    def likelihood(self) -> str:
        """``"bernoulli"``, as :attr:`unigen.models.vae.VAEModel.likelihood` says it: the visible
        units are Bernoulli, so data must lie in [0, 1]."""
        return "bernoulli"


def helmholtz_machine(
    data_dim: int, layers: Sequence[int] = (200,), *, init_scale: float = 0.1
) -> HelmholtzMachine:
    r"""A Helmholtz machine with hidden widths ``layers`` (bottom to top) in both directions.

    Args:
      data_dim: D, the number of visible units.
      layers: :math:`(H_1, \ldots, H_L)`.
      init_scale: the standard deviation of the initial weights of both SBNs (biases start
        at 0).

    Returns:
      A :class:`HelmholtzMachine`.

    Raises:
      ConfigError: a width is not a positive int, or ``init_scale`` is not positive.
    """
    data_dim = positive_int("data_dim", data_dim)
    layers = check_layers(layers)
    init_scale = positive_float("init_scale", init_scale)
    generative = sigmoid_belief_net(data_dim, layers, init_scale=init_scale)
    latent_dim = generative.latent_dim
    below = (data_dim,) + layers[:-1]

    def encoder_distribution(phi: Params, x: jax.Array) -> Distribution:
        first_logits = phi["weights"][0] @ x + phi["biases"][0]
        if len(layers) == 1:
            return distributions.bernoulli_logits(first_logits)
        return BernoulliChain(
            first_logits, phi["weights"][1:], phi["biases"][1:], layer_slices(layers)
        )

    def init(key: PRNGKey) -> Params:
        keys = jax.random.split(key, len(layers))
        return {
            "weights": [
                init_scale * jax.random.normal(k, (fan_out, fan_in), jnp.float32)
                for k, fan_out, fan_in in zip(keys, layers, below)
            ],
            "biases": [jnp.zeros((width,), jnp.float32) for width in layers],
        }

    def sample(phi: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [{"x"}])
        x = take("given", given, "x", data_dim)
        return {"z": encoder_distribution(phi, x).sample(key)}

    def log_prob(phi: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [{"x"}])
        check_keys("values", values, [{"z"}])
        x = take("given", given, "x", data_dim)
        z = take("values", values, "z", latent_dim)
        return encoder_distribution(phi, x).log_prob(z)

    return HelmholtzMachine(
        joint=generative.joint,
        inference=Inference(init, sample, log_prob),
        prior=generative.prior,
        decoder_distribution=generative.decoder_distribution,
        encoder_distribution=encoder_distribution,
        decode_mean=generative.decode_mean,
        generative=generative,
        data_dim=data_dim,
        latent_dim=latent_dim,
        layers=layers,
    )
