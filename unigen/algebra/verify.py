r"""The lecture's identities, checked exactly on finite spaces.

Every space is small enough to enumerate: :math:`x \in \{0..K-1\}`, :math:`z \in \{0..M-1\}`,
:math:`y \in \{0, 1\}`. Every expectation, KL and JSD is an exact sum in float64, and every
gradient is taken by autodiff through those sums, so an identity that holds shows errors at the
level of float64 rounding (far below :data:`TOLERANCE`), and a wrong one shows errors of order one.

The finite models (all tables of logits, drawn at random from a seed):

- prior :math:`p(z) = \mathrm{softmax}(\text{prior})`, fixed;
- decoder :math:`p_\theta(x|z) = \mathrm{softmax}(\theta_z)` (rows of an ``(M, K)`` table),
  marginal :math:`p_\theta(x) = \sum_z p(z) p_\theta(x|z)`;
- encoder :math:`q_\eta(z|x) = \mathrm{softmax}(\eta_x)` (rows of a ``(K, M)`` table);
- data :math:`p_\theta(x|y=1) = p_\text{data}(x) = \mathrm{softmax}(\text{data})`, fixed;
- GAN generator :math:`p_\theta(x|y=0) = p_{g_\theta}(x) = \mathrm{softmax}(\theta)` (Lemma 1);
- discriminator :math:`q_\phi(y=1|x) = D_\phi(x) = \sigma(\phi_x)`, reversed
  :math:`q^r_\phi(y|x) = q_\phi(1-y|x)`;
- :math:`p(y)` uniform.

An identity is an :class:`Identity`: two sides, a named constant, and the parameter groups whose
gradients must agree. :func:`check` evaluates it at a point; :func:`verify` draws the points
from a seed. Tests build deliberately wrong identities with ``identity._replace(right=...)`` from
the public building blocks here and check that they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from unigen.errors import ConfigError, describe

Params = dict[str, jax.Array]
Side = Callable[[Params], jax.Array]

TOLERANCE = 1e-9
"""An identity holds when its value and gradient errors are both below this."""

DEFAULT_SIZES: Mapping[str, int] = {"x": 5, "z": 3}
"""Default sizes of the finite spaces: K = |x| and M = |z|."""


class Verification(NamedTuple):
    """The result of checking one identity exactly.

    Attributes:
      identity: the identity's name, e.g. ``"lemma1"``.
      holds: both errors are below :data:`TOLERANCE`.
      sense: in what sense the equality holds (values, values up to a named constant,
        gradients w.r.t. named parameters at a point).
      max_abs_error_value: ``max |left + constant - right|`` over every component and point.
      max_abs_error_grad: ``max |∇left - ∇right|`` over the checked parameter groups and points.
      space: the sizes of the finite spaces, ``{"x": K, "z": M, "y": 2}``.
    """

    identity: str
    holds: bool
    sense: str
    max_abs_error_value: float
    max_abs_error_grad: float
    space: dict[str, int]


class Identity(NamedTuple):
    """An identity ``left(params) + constant(params) == right(params)`` on a finite space.

    Attributes:
      name: the identity's name.
      sense: in what sense the equality holds (the statement, copied into the result).
      left: the left-hand side, a scalar or a vector of identities (one per component).
      right: the right-hand side, same shape as ``left``.
      constant: the named constant by which the values differ; it has zero gradient
        w.r.t. the groups in ``wrt`` (``zero`` when the values agree exactly).
      wrt: the parameter groups whose gradients (Jacobians) of ``left`` and ``right`` must agree.
      points: ``points(key, sizes)`` gives the parameter points at which the identity is checked.
    """

    name: str
    sense: str
    left: Side
    right: Side
    constant: Side
    wrt: tuple[str, ...]
    points: Callable[[jax.Array, Mapping[str, int]], tuple[Params, ...]]


# ---------------------------------------------------------------------------------------------
# Exact building blocks on finite spaces (log-probabilities along the last axis).


def zero(params: Params) -> jax.Array:
    """The constant 0 (an identity whose values agree exactly)."""
    del params
    return jnp.zeros((), dtype=jnp.float64)


def kl(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
    r""":math:`\mathrm{KL}(p \| q) = \sum_i p_i (\log p_i - \log q_i)` along the last axis."""
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def entropy(log_p: jax.Array) -> jax.Array:
    r""":math:`H(p) = -\sum_i p_i \log p_i` along the last axis."""
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def jsd(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
    r""":math:`\mathrm{JSD}(p \| q) = \tfrac12 \mathrm{KL}(p \| m) + \tfrac12 \mathrm{KL}(q \| m)`,
    :math:`m = \tfrac12 (p + q)` (natural logarithm, so :math:`0 \le \mathrm{JSD} \le \log 2`)."""
    log_m = jnp.logaddexp(log_p, log_q) - jnp.log(2.0)
    return 0.5 * kl(log_p, log_m) + 0.5 * kl(log_q, log_m)


def log_prior(params: Params) -> jax.Array:
    """``log p(z)``, shape ``(M,)``."""
    return jax.nn.log_softmax(params["prior"])


def log_decoder(params: Params) -> jax.Array:
    """``log p_θ(x|z)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return jax.nn.log_softmax(params["theta"], axis=-1).T


def log_joint(params: Params) -> jax.Array:
    """``log p_θ(x, z) = log p_θ(x|z) + log p(z)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return log_decoder(params) + log_prior(params)[None, :]


def log_marginal(params: Params) -> jax.Array:
    """``log p_θ(x) = log Σ_z p_θ(x, z)``, shape ``(K,)``."""
    return jax.nn.logsumexp(log_joint(params), axis=1)


def log_posterior(params: Params) -> jax.Array:
    """``log p_θ(z|x)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return log_joint(params) - log_marginal(params)[:, None]


def log_encoder(params: Params) -> jax.Array:
    """``log q_η(z|x)`` indexed ``[x, z]``, shape ``(K, M)``."""
    return jax.nn.log_softmax(params["eta"], axis=-1)


def log_data(params: Params) -> jax.Array:
    """``log p_data(x) = log p_θ(x|y=1)``, shape ``(K,)``."""
    return jax.nn.log_softmax(params["data"])


def elbo(params: Params) -> jax.Array:
    """``L(θ, η; x) = E_{q_η(z|x)}[log p_θ(x, z) − log q_η(z|x)]`` for every x, shape ``(K,)``."""
    log_q = log_encoder(params)
    return jnp.sum(jnp.exp(log_q) * (log_joint(params) - log_q), axis=1)


def vae_objective(params: Params) -> jax.Array:
    r""":math:`\mathcal{L}^\text{vae} = E_{p_\text{data}(x)}[E_{q_\eta(z|x)}[\log p_\theta(x|z)]
    - \mathrm{KL}(q_\eta(z|x) \| p(z))]` (§3.3), a scalar."""
    log_q = log_encoder(params)
    reconstruction = jnp.sum(jnp.exp(log_q) * log_decoder(params), axis=1)
    per_x = reconstruction - kl(log_q, log_prior(params)[None, :])
    return jnp.sum(jnp.exp(log_data(params)) * per_x)


def wake_objective(params: Params) -> jax.Array:
    r"""The wake phase (§2.2, §3.4).

    :math:`E_{q_\eta(z|x) p_\text{data}(x)}[\log p_\theta(x, z)]`, a scalar.
    """
    weights = jnp.exp(log_encoder(params) + log_data(params)[:, None])
    return jnp.sum(weights * log_joint(params))


def log_discriminator(params: Params) -> jax.Array:
    """``log q_φ(y|x)`` indexed ``[x, y]``, shape ``(K, 2)``; ``q_φ(y=1|x) = σ(φ_x)``."""
    phi = params["phi"]
    return jnp.stack([jax.nn.log_sigmoid(-phi), jax.nn.log_sigmoid(phi)], axis=1)


def reversed_discriminator(log_q_y_given_x: jax.Array) -> jax.Array:
    """``log q^r(y|x) = log q(1−y|x)``: swap the two columns of a ``[x, y]`` table."""
    return log_q_y_given_x[:, ::-1]


def log_gan_generator(params: Params) -> jax.Array:
    """``log p_θ(x|y=0) = log p_{g_θ}(x) = log softmax(θ)``, shape ``(K,)`` (Lemma 1)."""
    return jax.nn.log_softmax(params["theta"])


def sleep_objective(log_p_h: jax.Array, log_p_x_given_h: jax.Array,
                    log_q_h_given_x: jax.Array) -> jax.Array:
    r"""The sleep phase, :math:`E_{p_\theta(x|h) p(h)}[\log q(h|x)]` (§3.4), by enumeration.

    Args:
      log_p_h: ``log p(h)``, shape ``(H,)``.
      log_p_x_given_h: ``log p_θ(x|h)`` indexed ``[h, x]``, shape ``(H, K)``.
      log_q_h_given_x: ``log q(h|x)`` indexed ``[x, h]``, shape ``(K, H)``.
    """
    weights = jnp.exp(log_p_h[:, None] + log_p_x_given_h)
    return jnp.sum(weights * log_q_h_given_x.T)


# ---------------------------------------------------------------------------------------------
# Random points.


def _logits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return 1.5 * jax.random.normal(key, shape, dtype=jnp.float64)


def latent_point(key: jax.Array, sizes: Mapping[str, int]) -> Params:
    """Random float64 logit tables ``{"theta" (M, K), "eta" (K, M), "prior" (M,), "data" (K,),
    "phi" (K,)}`` for the finite spaces of sizes ``{"x": K, "z": M}``."""
    k, m = sizes["x"], sizes["z"]
    keys = jax.random.split(key, 5)
    return {
        "theta": _logits(keys[0], (m, k)),
        "eta": _logits(keys[1], (k, m)),
        "prior": _logits(keys[2], (m,)),
        "data": _logits(keys[3], (k,)),
        "phi": _logits(keys[4], (k,)),
    }


def optimal_discriminator_logits(log_p_data: jax.Array, log_p_generator: jax.Array) -> jax.Array:
    """Logits of ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``: ``φ*_x = log p_data − log p_g``."""
    return log_p_data - log_p_generator


# ---------------------------------------------------------------------------------------------
# §2.1 ELBO decomposition.


def elbo_decomposition_left(params: Params) -> jax.Array:
    """``[log p_θ(x), F(θ, η; x)]`` for every x, shape ``(2K,)``.

    The free energy is ``F = −log p_θ(x) + KL(q_η(z|x) ‖ p_θ(z|x))``.
    """
    log_p_x = log_marginal(params)
    free_energy = -log_p_x + kl(log_encoder(params), log_posterior(params))
    return jnp.concatenate([log_p_x, free_energy])


def elbo_decomposition_right(params: Params) -> jax.Array:
    """``[KL(q_η(z|x) ‖ p_θ(z|x)) + L(θ, η; x), −L(θ, η; x)]`` for every x."""
    bound = elbo(params)
    return jnp.concatenate([kl(log_encoder(params), log_posterior(params)) + bound, -bound])


ELBO_DECOMPOSITION = Identity(
    name="elbo-decomposition",
    sense=(
        "exact values and gradients w.r.t. θ and η, for every x: "
        "log p_θ(x) = KL(q_η(z|x) ‖ p_θ(z|x)) + L(θ, η; x) and "
        "F(θ, η; x) = −log p_θ(x) + KL(q_η(z|x) ‖ p_θ(z|x)) = −L(θ, η; x), "
        "with L = E_{q_η(z|x)}[log p_θ(x, z) − log q_η(z|x)] (§2.1)"
    ),
    left=elbo_decomposition_left,
    right=elbo_decomposition_right,
    constant=zero,
    wrt=("theta", "eta"),
    points=lambda key, sizes: tuple(latent_point(k, sizes) for k in jax.random.split(key, 2)),
)


# ---------------------------------------------------------------------------------------------
# §3.2 Lemma 1.


def _log_mixture0(params: Params) -> jax.Array:
    """``log p_{θ0}(x) = log E_{p(y)} p_{θ0}(x|y)``, the frozen mixture.

    θ0 is ``params["theta0"]`` when given, else ``stop_gradient(params["theta"])`` (θ = θ0).
    """
    theta0 = params.get("theta0", jax.lax.stop_gradient(params["theta"]))
    frozen = {**params, "theta": jax.lax.stop_gradient(theta0)}
    return jnp.logaddexp(log_gan_generator(frozen), log_data(frozen)) - jnp.log(2.0)


def lemma1_tables(params: Params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The tables of Lemma 1.

    Returns ``log p_θ(x|y)`` ``[y, x]``, ``log q^r_{φ0}(y|x)`` ``[x, y]`` and
    ``log q^r(x|y) = log q^r_{φ0}(y|x) + log p_{θ0}(x) − log Z_y`` ``[y, x]``.
    """
    log_p_x_given_y = jnp.stack([log_gan_generator(params), log_data(params)])
    log_reversed = reversed_discriminator(log_discriminator(params))
    log_mixture0 = _log_mixture0(params)
    unnormalized = log_reversed.T + log_mixture0[None, :]
    log_qr_x_given_y = unnormalized - jax.nn.logsumexp(unnormalized, axis=1, keepdims=True)
    return log_p_x_given_y, log_reversed, log_qr_x_given_y


def lemma1_left(params: Params) -> jax.Array:
    """The generator loss ``−E_{p_θ(x|y)p(y)}[log q^r_{φ0}(y|x)]``."""
    log_p_x_given_y, log_reversed, _ = lemma1_tables(params)
    log_p_y = jnp.full((2,), -jnp.log(2.0), dtype=jnp.float64)
    return -sleep_objective(log_p_y, log_p_x_given_y, log_reversed)


def lemma1_right(params: Params) -> jax.Array:
    """``E_{p(y)}[KL(p_θ(x|y) ‖ q^r(x|y))] − JSD(p_θ(x|y=0) ‖ p_θ(x|y=1))``."""
    log_p_x_given_y, _, log_qr_x_given_y = lemma1_tables(params)
    expected_kl = jnp.mean(kl(log_p_x_given_y, log_qr_x_given_y))
    return expected_kl - jsd(log_p_x_given_y[0], log_p_x_given_y[1])


def lemma1_constant(params: Params) -> jax.Array:
    """``E_{p(y)}[log Z_y]`` with ``Z_y = Σ_x q^r_{φ0}(y|x) p_{θ0}(x)``; ``−log 2`` at ``D*``."""
    log_mixture0 = _log_mixture0(params)
    log_reversed = reversed_discriminator(log_discriminator(params))
    return jnp.mean(jax.nn.logsumexp(log_reversed.T + log_mixture0[None, :], axis=1))


def lemma1_remainder(params: Params) -> jax.Array:
    """``KL(p_θ(x) ‖ p_{θ0}(x))`` between the mixtures: ``right − left − constant`` at any θ.

    Zero, with zero gradient, at θ = θ0; checked away from θ0 by giving ``params["theta0"]``.
    """
    mixture = jnp.logaddexp(log_gan_generator(params), log_data(params)) - jnp.log(2.0)
    return kl(mixture, _log_mixture0(params))


def _lemma1_points(key: jax.Array, sizes: Mapping[str, int]) -> tuple[Params, ...]:
    k = sizes["x"]
    keys = jax.random.split(key, 3)
    random_point = {"theta": _logits(keys[0], (k,)), "data": _logits(keys[1], (k,)),
                    "phi": _logits(keys[2], (k,))}
    optimal = optimal_discriminator_logits(log_data(random_point),
                                           log_gan_generator(random_point))
    return random_point, {**random_point, "phi": optimal}


LEMMA1 = Identity(
    name="lemma1",
    sense=(
        "gradients w.r.t. θ at θ = θ0, for ANY discriminator φ0 (checked at a random φ0 and at "
        "D* = p_data/(p_data + p_g)): ∇_θ[−E_{p_θ(x|y)p(y)} log q^r_{φ0}(y|x)] = "
        "∇_θ[E_{p(y)} KL(p_θ(x|y) ‖ q^r(x|y)) − JSD(p_θ(x|y=0) ‖ p_θ(x|y=1))], with p(y) uniform, "
        "q^r(x|y) = q^r_{φ0}(y|x) p_{θ0}(x) / Z_y, p_{θ0}(x) = E_{p(y)} p_{θ0}(x|y). "
        "Values: right = left + E_{p(y)}[log Z_y] + KL(p_θ(x) ‖ p_{θ0}(x)), Z_y = "
        "Σ_x q^r_{φ0}(y|x) p_{θ0}(x); at θ0 the last term and its gradient vanish, so the values "
        "differ by the constant E_{p(y)}[log Z_y] (= −log 2 at D*)"
    ),
    left=lemma1_left,
    right=lemma1_right,
    constant=lemma1_constant,
    wrt=("theta",),
    points=_lemma1_points,
)


# ---------------------------------------------------------------------------------------------
# §3.3 Lemma 2.


def lemma2_right(params: Params) -> jax.Array:
    """``−KL(q_η(z|x) p_data(x) ‖ p_θ(x, z))``, a KL between joints on (x, z)."""
    log_q_joint = log_encoder(params) + log_data(params)[:, None]
    return -kl(log_q_joint.reshape(-1), log_joint(params).reshape(-1))


def data_entropy(params: Params) -> jax.Array:
    """``H(p_data) = −E_{p_data}[log p_data(x)]``, the constant of Lemma 2."""
    return entropy(log_data(params))


LEMMA2 = Identity(
    name="lemma2",
    sense=(
        "exact values up to the data entropy, and exact gradients w.r.t. θ and η: "
        "L^vae(θ, η) = E_{p_data(x)}[E_{q_η(z|x)} log p_θ(x|z) − KL(q_η(z|x) ‖ p(z))] = "
        "−KL(q_η(z|x) p_data(x) ‖ p_θ(x, z)) − H(p_data), H(p_data) = −E_{p_data} log p_data(x). "
        "This is the y = 0 branch of §3.3 with the degenerate discriminator (q^r_* puts y = 0 on "
        "data x, so 2·E_{p_θ0(x)}[...] reduces to E_{p_data(x)}[...]); the model sits on the right "
        "of the KL. With the normalized posterior p_θ(z|x) in place of the joint, as the "
        "lecture's second line reads, it holds only up to E_{p_data}[log p_θ(x)], "
        "which depends on θ"
    ),
    left=vae_objective,
    right=lemma2_right,
    constant=data_entropy,
    wrt=("theta", "eta"),
    points=lambda key, sizes: tuple(latent_point(k, sizes) for k in jax.random.split(key, 2)),
)


# ---------------------------------------------------------------------------------------------
# §3.4 Wake-sleep correspondence.


def _gan_joint(params: Params) -> tuple[jax.Array, jax.Array]:
    """``log p(y)`` and ``log p_θ(x|y)`` ``[y, x]`` with ``p_θ(x|y=0) = Σ_z p(z) p_θ(x|z)``."""
    log_p_y = jnp.full((2,), -jnp.log(2.0), dtype=jnp.float64)
    return log_p_y, jnp.stack([log_marginal(params), log_data(params)])


def wake_sleep_left(params: Params) -> jax.Array:
    """``[L^vae(θ, η), E_{p_θ(x, h)}[log q_φ(h|x)] with h := y]`` (VAE; sleep phase)."""
    log_p_y, log_p_x_given_y = _gan_joint(params)
    sleep = sleep_objective(log_p_y, log_p_x_given_y, log_discriminator(params))
    return jnp.stack([vae_objective(params), sleep])


def gan_discriminator_objective(params: Params) -> jax.Array:
    """``½ E_{p_data}[log D_φ(x)] + ½ E_{p_g}[log(1 − D_φ(x))]``, the conventional GAN form."""
    log_d = jax.nn.log_sigmoid(params["phi"])
    log_not_d = jax.nn.log_sigmoid(-params["phi"])
    p_data = jnp.exp(log_data(params))
    p_g = jnp.exp(log_marginal(params))
    return 0.5 * jnp.sum(p_data * log_d) + 0.5 * jnp.sum(p_g * log_not_d)


def wake_sleep_right(params: Params) -> jax.Array:
    """``[E_{q_η(z|x)p_data(x)}[log p_θ(x, z)], GAN discriminator objective]`` (wake; GAN)."""
    return jnp.stack([wake_objective(params), gan_discriminator_objective(params)])


def wake_sleep_constant(params: Params) -> jax.Array:
    """``[−E_{p_data}[H(q_η(z|x))], 0]``: the VAE adds the encoder entropy to the wake objective."""
    encoder_entropy = jnp.sum(jnp.exp(log_data(params)) * entropy(log_encoder(params)))
    return jnp.stack([-encoder_entropy, jnp.zeros((), dtype=jnp.float64)])


WAKE_SLEEP = Identity(
    name="wake-sleep",
    sense=(
        "component 0 (VAE = wake, §3.4): gradients w.r.t. θ (and φ, trivially) at every point: "
        "∇_θ L^vae(θ, η) = ∇_θ E_{q_η(z|x)p_data(x)}[log p_θ(x, z)]; values differ by the "
        "encoder entropy, L^vae = wake + E_{p_data}[H(q_η(z|x))], constant in θ (not in η, so no "
        "η-gradient claim). Component 1 (GAN discriminator = sleep with h := y): exact values "
        "and gradients w.r.t. φ and θ: E_{p_θ(x, h)}[log q_φ(h|x)] with p_θ(x, y) = p(y) p_θ(x|y), "
        "p(y) uniform, p_θ(x|y=0) = Σ_z p(z) p_θ(x|z), equals "
        "½ E_{p_data}[log D_φ(x)] + ½ E_{p_θ(x|y=0)}[log(1 − D_φ(x))], i.e. half the §3 "
        "discriminator objective L_D"
    ),
    left=wake_sleep_left,
    right=wake_sleep_right,
    constant=wake_sleep_constant,
    wrt=("theta", "phi"),
    points=lambda key, sizes: tuple(latent_point(k, sizes) for k in jax.random.split(key, 2)),
)


IDENTITIES: Mapping[str, Identity] = {
    identity.name: identity
    for identity in (ELBO_DECOMPOSITION, LEMMA1, LEMMA2, WAKE_SLEEP)
}
"""The named identities :func:`verify` knows, by name."""


# ---------------------------------------------------------------------------------------------
# Checking.


def _errors(identity: Identity, params: Params) -> tuple[jax.Array, jax.Array]:
    value_error = jnp.max(jnp.abs(identity.left(params) + identity.constant(params)
                                  - identity.right(params)))
    left_jacobian = jax.jacrev(identity.left)(params)
    right_jacobian = jax.jacrev(identity.right)(params)
    grad_error = jnp.zeros((), dtype=jnp.float64)
    for group in identity.wrt:
        difference = jnp.abs(left_jacobian[group] - right_jacobian[group])
        grad_error = jnp.maximum(grad_error, jnp.max(difference))
    return value_error, grad_error


_jitted_errors = jax.jit(_errors, static_argnums=0)


def _space(params: Params) -> dict[str, int]:
    space = {"x": int(params["data"].shape[0])}
    if "prior" in params:
        space["z"] = int(params["prior"].shape[0])
    space["y"] = 2
    return space


def check(identity: Identity, *points: Params) -> Verification:
    """Evaluate ``identity`` exactly (float64) at each point; the errors are maxima over points.

    Args:
      identity: the identity to check (one of :data:`IDENTITIES`, or a variant built with
        ``_replace``).
      *points: parameter points (dicts of logits tables), at least one.

    Returns:
      The :class:`Verification` record; ``holds`` when both errors are below :data:`TOLERANCE`.
    """
    if not points:
        raise ConfigError("points: expected at least one parameter point, saw none")
    value_error, grad_error = 0.0, 0.0
    with jax.enable_x64(True):
        for params in points:
            params = {name: jnp.asarray(value, dtype=jnp.float64)
                      for name, value in params.items()}
            value, grad = _jitted_errors(identity, params)
            value_error = max(value_error, float(value))
            grad_error = max(grad_error, float(grad))
    return Verification(
        identity=identity.name,
        holds=bool(value_error < TOLERANCE and grad_error < TOLERANCE),
        sense=identity.sense,
        max_abs_error_value=value_error,
        max_abs_error_grad=grad_error,
        space=_space(points[0]),
    )


def _validate_sizes(sizes: Mapping[str, int] | None) -> dict[str, int]:
    if sizes is None:
        return dict(DEFAULT_SIZES)
    if not isinstance(sizes, Mapping):
        raise ConfigError(
            f"sizes: expected a mapping like {{'x': 5, 'z': 3}}, saw {describe(sizes)}")
    unknown = sorted(set(sizes) - set(DEFAULT_SIZES))
    if unknown:
        raise ConfigError(
            f"sizes: unknown space(s) {unknown}, expected keys among {sorted(DEFAULT_SIZES)}")
    merged = {**DEFAULT_SIZES, **sizes}
    for name, size in merged.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ConfigError(
                f"sizes[{name!r}]: expected an integer >= 2, saw {describe(size)}")
    return merged


def verify(name: str, *, seed: int = 0, sizes: Mapping[str, int] | None = None) -> Verification:
    """Check the named identity exactly at random points drawn from ``seed``.

    Args:
      name: one of ``"elbo-decomposition"``, ``"lemma1"``, ``"lemma2"``, ``"wake-sleep"``.
      seed: seed of the random parameter points.
      sizes: sizes of the finite spaces, ``{"x": K, "z": M}`` (each >= 2); default
        :data:`DEFAULT_SIZES`.

    Returns:
      The :class:`Verification` record.

    Raises:
      ConfigError: unknown ``name`` or bad ``sizes``.
    """
    if name not in IDENTITIES:
        raise ConfigError(
            f"name: unknown identity {describe(name)}, expected one of {sorted(IDENTITIES)}")
    checked_sizes = _validate_sizes(sizes)
    identity = IDENTITIES[name]
    with jax.enable_x64(True):
        points = identity.points(jax.random.key(seed), checked_sizes)
    return check(identity, *points)
