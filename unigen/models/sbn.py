r"""The sigmoid belief net (lecture §1.1.1) as a :class:`~unigen.core.Joint`.

L layers of binary hidden units :math:`h_1, \ldots, h_L` above the binary data :math:`x = h_0`.
The top layer has a factorized Bernoulli prior and every lower layer is Bernoulli given the layer
above it, through a sigmoid of a linear function:

.. math::
   p_\theta(h_L) = \prod_k \sigma(a_k)^{h_{L,k}} (1 - \sigma(a_k))^{1 - h_{L,k}}, \qquad
   p_\theta(h_{l-1,k} = 1 \mid h_l) = \sigma(W_{l,k}^\top h_l + b_{l-1,k}),

.. math::
   p_\theta(x, h) = p_\theta(h_L) \prod_{l=1}^{L} p_\theta(h_{l-1} \mid h_l).

This is the lecture's :math:`p(X_{n,k} = 1 \mid \theta_{n,k}, X_{n-1}) =
\sigma(\theta_{n,k}^\top X_{n-1})` with the layers counted from the top (the lecture's
:math:`X_{n-1}` is the layer above :math:`X_n`), :math:`\theta_{n,k}` the row
:math:`W_{l,k}` and a bias added. Everything is exact: ``log_prob`` of the joint is a sum of
Bernoulli log-probabilities, and for at most :data:`MAX_LATENT_STATES` hidden configurations the
marginal :math:`\log p_\theta(x) = \log \sum_h p_\theta(x, h)` and the posterior
:math:`p_\theta(h \mid x)` are computed by enumeration (:func:`log_marginal`,
:func:`posterior`).

The model's values name the hidden units ``"z"``: one vector, the concatenation
:math:`z = [h_1, h_2, \ldots, h_L]` (bottom layer first), so that the SBN is a Joint over
``x`` and ``z`` like every other model (the algebra of :mod:`unigen.algorithms.wake_sleep`
calls the same vector :math:`h`). ``theta`` is a plain dict::

    {"prior_logits": [H_L],
     "weights": [W_1 [D, H_1], W_2 [H_1, H_2], ..., W_L [H_{L-1}, H_L]],
     "biases":  [b_0 [D], b_1 [H_1], ..., b_{L-1} [H_{L-1}]]}

Every function acts on one example; batch with ``jax.vmap``.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Callable, Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as numpyro_dist
from numpyro.distributions import constraints

from unigen import distributions
from unigen.core import Joint, Params, PRNGKey, Values
from unigen.distributions import Distribution
from unigen.errors import ConfigError, DataError, describe
from unigen.models.values import check_keys, positive_int, take

__all__ = [
    "MAX_LATENT_STATES",
    "BernoulliChain",
    "SigmoidBeliefNet",
    "check_layers",
    "exact_nll",
    "latent_states",
    "log_marginal",
    "posterior",
    "sigmoid_belief_net",
]

MAX_LATENT_STATES = 4096
"""The most hidden configurations enumerated exactly (2^12, as :mod:`unigen.algebra.compiler`)."""


class BernoulliChain(numpyro_dist.Distribution):
    r"""A chain of Bernoulli layers over one vector: the layers of an SBN, in either direction.

    .. math::
       p(v) = \prod_k \mathrm{Bern}(v_{1,k}; \sigma(f_k))
       \prod_{j=1}^{m-1} \prod_k \mathrm{Bern}(v_{j+1,k}; \sigma(A_{j,k}^\top v_j + c_{j,k}))

    The layers :math:`v_1, \ldots, v_m` are slices of one event vector (``slices``, in chain
    order; the vector's own order may differ, e.g. the SBN prior runs top-down over a vector
    stored bottom-up). One event: ``log_prob`` of a ``[n]`` vector is a scalar. Draws are
    ancestral and not reparameterized (``has_rsample`` is False). The leaves are
    :func:`unigen.distributions.bernoulli_logits`.

    Args:
      first_logits: ``[n_1]``, the log-odds of the first layer of the chain.
      weights: ``A_j`` of shape ``[n_{j+1}, n_j]``, one per transition.
      biases: ``c_j`` of shape ``[n_{j+1}]``, one per transition.
      slices: ``(start, size)`` of each layer in the event vector, in chain order.
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 1)

    def __init__(
        self,
        first_logits: jax.Array,
        weights: Sequence[jax.Array],
        biases: Sequence[jax.Array],
        slices: Sequence[tuple[int, int]],
    ) -> None:
        if len(weights) != len(biases) or len(slices) != len(weights) + 1:
            raise ConfigError(
                f"BernoulliChain: expected len(slices) == len(weights) + 1 == len(biases) + 1, "
                f"got {len(slices)}, {len(weights)}, {len(biases)}"
            )
        self.first_logits = first_logits
        self.weights = tuple(weights)
        self.biases = tuple(biases)
        self.slices = tuple((int(a), int(b)) for a, b in slices)
        size = sum(b for _, b in self.slices)
        super().__init__(batch_shape=(), event_shape=(size,))

    @property
    def has_rsample(self) -> bool:
        return False

    def _layer(self, value: jax.Array, j: int) -> jax.Array:
        start, size = self.slices[j]
        return value[..., start:start + size]

    def _logits(self, previous: jax.Array, j: int) -> jax.Array:
        """The log-odds of layer ``j + 1`` given layer ``j`` (``previous``, ``[..., n_j]``)."""
        return previous @ self.weights[j].T + self.biases[j]

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        if sample_shape:
            count = int(np.prod(sample_shape))
            draws = jax.vmap(self.sample)(jax.random.split(key, count))
            return draws.reshape(tuple(sample_shape) + self.event_shape)
        keys = jax.random.split(key, len(self.slices))
        layer = distributions.bernoulli_logits(self.first_logits).sample(keys[0])
        layers = [layer]
        for j in range(len(self.weights)):
            layer = distributions.bernoulli_logits(self._logits(layer, j)).sample(keys[j + 1])
            layers.append(layer)
        # back to the vector's own order: the layers sorted by where their slice starts
        ordered = sorted(zip(self.slices, layers), key=lambda pair: pair[0][0])
        return jnp.concatenate([layer for _, layer in ordered], axis=-1)

    def log_prob(self, value: jax.Array) -> jax.Array:
        value = jnp.asarray(value)
        first = self._layer(value, 0)
        total = distributions.bernoulli_logits(
            jnp.broadcast_to(self.first_logits, first.shape)
        ).log_prob(first)
        for j in range(len(self.weights)):
            logits = self._logits(self._layer(value, j), j)
            total = total + distributions.bernoulli_logits(logits).log_prob(self._layer(value, j + 1))
        return total


class SigmoidBeliefNet(NamedTuple):
    r"""A sigmoid belief net: the joint and the distributions it is built from.

    Attributes:
      joint: :math:`p_\theta(x, z)`, ``z = [h_1, ..., h_L]``. ``sample(theta, key, {})`` draws
        ``{"z", "x"}`` ancestrally (top-down), ``sample(theta, key, {"z": z})`` draws ``{"x"}``;
        ``log_prob(theta, {"x", "z"}, {})`` is :math:`\log p_\theta(x, z)` and
        ``log_prob(theta, {"x"}, {"z": z})`` is :math:`\log p_\theta(x \mid h_1)`.
      prior: ``prior(theta) -> Distribution`` over ``z``: :math:`p_\theta(h_L) \prod_{l \ge 2}
        p_\theta(h_{l-1} \mid h_l)` (a factorized Bernoulli when L = 1, else a
        :class:`BernoulliChain`).
      decoder_distribution: ``decoder_distribution(theta, z) -> Distribution`` over ``x``,
        :math:`p_\theta(x \mid h_1)`.
      decode_mean: ``decode_mean(theta, z) -> [D]``, :math:`\mathbb{E}[x \mid h_1]` (the pixel
        probabilities).
      data_dim: D.
      latent_dim: :math:`H_1 + \cdots + H_L`, the length of ``z``.
      layers: :math:`(H_1, \ldots, H_L)`, bottom to top.
    """

    joint: Joint
    prior: Callable[[Params], Distribution]
    decoder_distribution: Callable[[Params, jax.Array], Distribution]
    decode_mean: Callable[[Params, jax.Array], jax.Array]
    data_dim: int
    latent_dim: int
    layers: tuple[int, ...]


def check_layers(layers: object) -> tuple[int, ...]:
    """``layers`` as a non-empty tuple of positive ints, or :class:`ConfigError`."""
    widths = tuple(layers) if isinstance(layers, Iterable) and not isinstance(layers, str) else None
    if (
        not widths
        or not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1
                   for h in widths)
    ):
        raise ConfigError(
            f"layers: expected a non-empty sequence of positive ints (bottom to top), got "
            f"{describe(layers)}"
        )
    return tuple(int(h) for h in widths)


def positive_float(name: str, value: object) -> float:
    """``value`` as a ``float`` if it is a positive real number, else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ConfigError(f"{name}: expected a positive float, got {describe(value)}")
    return float(value)


def layer_slices(layers: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """``(start, size)`` of each hidden layer in ``z``, bottom layer first."""
    starts = np.cumsum((0,) + tuple(layers[:-1]))
    return tuple((int(s), int(h)) for s, h in zip(starts, layers))


def sigmoid_belief_net(
    data_dim: int, layers: Sequence[int] = (200,), *, init_scale: float = 0.1
) -> SigmoidBeliefNet:
    r"""A sigmoid belief net with hidden layers ``layers`` (bottom to top) over ``data_dim``
    binary units (see the module docstring for the model and the parameters).

    ``sigmoid_belief_net(784, (200,))`` is the SBN-200 of the NVIL and RWS papers.

    Args:
      data_dim: D, the number of visible units.
      layers: the hidden widths :math:`(H_1, \ldots, H_L)`, from the layer just above x to the
        top layer.
      init_scale: ``init`` draws every weight from :math:`\mathcal{N}(0, \mathrm{init\_scale}^2)`;
        biases and prior log-odds start at 0.

    Returns:
      A :class:`SigmoidBeliefNet`.

    Raises:
      ConfigError: a width is not a positive int, or ``init_scale`` is not positive.
    """
    data_dim = positive_int("data_dim", data_dim)
    layers = check_layers(layers)
    init_scale = positive_float("init_scale", init_scale)
    latent_dim = sum(layers)
    slices = layer_slices(layers)
    below = (data_dim,) + layers[:-1]  # the width of the layer under each hidden layer

    def prior(theta: Params) -> Distribution:
        if len(layers) == 1:
            return distributions.bernoulli_logits(theta["prior_logits"])
        # top-down: h_L first, then h_{L-1} | h_L, ..., h_1 | h_2
        order = list(range(len(layers) - 1, -1, -1))
        return BernoulliChain(
            theta["prior_logits"],
            [theta["weights"][l] for l in order[:-1]],
            [theta["biases"][l] for l in order[:-1]],
            [slices[l] for l in order],
        )

    def decoder_logits(theta: Params, z: jax.Array) -> jax.Array:
        start, size = slices[0]
        return theta["weights"][0] @ z[start:start + size] + theta["biases"][0]

    def decoder_distribution(theta: Params, z: jax.Array) -> Distribution:
        return distributions.bernoulli_logits(decoder_logits(theta, z))

    def decode_mean(theta: Params, z: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(decoder_logits(theta, z))

    def init(key: PRNGKey) -> Params:
        keys = jax.random.split(key, len(layers))
        return {
            "prior_logits": jnp.zeros((layers[-1],), jnp.float32),
            "weights": [
                init_scale * jax.random.normal(k, (fan_out, fan_in), jnp.float32)
                for k, fan_out, fan_in in zip(keys, below, layers)
            ],
            "biases": [jnp.zeros((width,), jnp.float32) for width in below],
        }

    def sample(theta: Params, key: PRNGKey, given: Values) -> dict[str, jax.Array]:
        check_keys("given", given, [set(), {"z"}])
        if "z" in given:
            z = take("given", given, "z", latent_dim)
            return {"x": decoder_distribution(theta, z).sample(key)}
        key_z, key_x = jax.random.split(key)
        z = prior(theta).sample(key_z)
        return {"z": z, "x": decoder_distribution(theta, z).sample(key_x)}

    def log_prob(theta: Params, values: Values, given: Values) -> jax.Array:
        check_keys("given", given, [set(), {"z"}])
        if "z" in given:
            check_keys("values", values, [{"x"}])
            z = take("given", given, "z", latent_dim)
            return decoder_distribution(theta, z).log_prob(take("values", values, "x", data_dim))
        check_keys("values", values, [{"x", "z"}])
        z = take("values", values, "z", latent_dim)
        x = take("values", values, "x", data_dim)
        return prior(theta).log_prob(z) + decoder_distribution(theta, z).log_prob(x)

    return SigmoidBeliefNet(
        joint=Joint(init, sample, log_prob),
        prior=prior,
        decoder_distribution=decoder_distribution,
        decode_mean=decode_mean,
        data_dim=data_dim,
        latent_dim=latent_dim,
        layers=layers,
    )


def latent_states(latent_dim: int) -> np.ndarray:
    """Every binary vector of length ``latent_dim`` as a ``[2^latent_dim, latent_dim]`` float32
    array (row i is the binary expansion of i, most significant unit first).

    Raises:
      ConfigError: more than :data:`MAX_LATENT_STATES` states.
    """
    latent_dim = positive_int("latent_dim", latent_dim)
    if 2 ** latent_dim > MAX_LATENT_STATES:
        raise ConfigError(
            f"latent_dim: exact enumeration needs at most {MAX_LATENT_STATES} hidden "
            f"configurations (12 units), got {latent_dim} units (2^{latent_dim} states)"
        )
    return np.array(list(itertools.product((0.0, 1.0), repeat=latent_dim)), np.float32)


def _joint_log_probs(model: SigmoidBeliefNet, theta: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    states = jnp.asarray(latent_states(model.latent_dim))
    x = take("x", {"x": x}, "x", model.data_dim)
    log_joint = jax.vmap(lambda z: model.joint.log_prob(theta, {"x": x, "z": z}, {}))(states)
    return states, log_joint


def log_marginal(model: SigmoidBeliefNet, theta: Params, x: jax.Array) -> jax.Array:
    r"""The exact :math:`\log p_\theta(x) = \log \sum_z p_\theta(x, z)` of one example, by
    enumerating the :math:`2^{H}` hidden configurations.

    Args:
      model: anything with ``joint``, ``data_dim`` and ``latent_dim`` (a
        :class:`SigmoidBeliefNet` or :class:`~unigen.models.helmholtz.HelmholtzMachine`).
      theta: the joint's parameters.
      x: one example, ``[D]``.

    Raises:
      ConfigError: more than :data:`MAX_LATENT_STATES` hidden configurations.
    """
    _, log_joint = _joint_log_probs(model, theta, x)
    return jax.nn.logsumexp(log_joint)


def posterior(model: SigmoidBeliefNet, theta: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""The exact posterior :math:`p_\theta(z \mid x) \propto p_\theta(x, z)` of one example.

    This is the classic E-step, :math:`q^*(z \mid x) \propto \exp[\log p_\theta(x, z)]` (§2.1).

    Returns:
      ``(states, log_posterior)``: every hidden configuration ``[2^H, H]`` and its log
      posterior probability ``[2^H]``.

    Raises:
      ConfigError: more than :data:`MAX_LATENT_STATES` hidden configurations.
    """
    states, log_joint = _joint_log_probs(model, theta, x)
    return states, log_joint - jax.nn.logsumexp(log_joint)


def exact_nll(
    model: SigmoidBeliefNet, theta: Params, x: jax.Array, *, batch_size: int = 100
) -> float:
    r"""The exact negative log-likelihood :math:`-\frac{1}{N}\sum_n \log p_\theta(x_n)` in nats
    per example, by enumeration (:func:`log_marginal`), ``batch_size`` examples per compiled call.

    Args:
      model: a :class:`SigmoidBeliefNet` or a Helmholtz machine with at most
        :data:`MAX_LATENT_STATES` hidden configurations.
      theta: the joint's parameters.
      x: ``[N, D]`` examples, N >= 1.

    Raises:
      ConfigError: too many hidden configurations, or a bad ``batch_size``.
      DataError: ``x`` is not ``[N, D]`` with N >= 1.
    """
    batch_size = positive_int("batch_size", batch_size)
    latent_states(model.latent_dim)
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != model.data_dim:
        raise DataError(f"x: expected shape (N, {model.data_dim}) with N >= 1, got {describe(x)}")
    chunk = jax.jit(jax.vmap(lambda t, x_n: log_marginal(model, t, x_n), in_axes=(None, 0)))
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        total += float(np.sum(np.asarray(chunk(theta, x[start:start + batch_size]), np.float64)))
    return -total / x.shape[0]
