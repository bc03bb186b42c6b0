r"""Generative adversarial networks (§3, §3.1, §3.2), declared in the algebra.

The unified view writes the data and the generator as one conditional with a real/fake
indicator :math:`y` (§3.1):
:math:`p_\theta(x \mid y=0) = p_{g_\theta}(x)` (:math:`x = G_\theta(z)`, :math:`z \sim p(z)`) and
:math:`p_\theta(x \mid y=1) = p_{data}(x)`, with :math:`p(y)` uniform. The discriminator is a
distribution :math:`q_\phi(y \mid x)`, with :math:`D_\phi(x) = q_\phi(y=1 \mid x)`, and its
reverse :math:`q^r_\phi(y \mid x) = q_\phi(1 - y \mid x)`.

**Classic form** (§3). The discriminator (phase ``"discriminator"``, in :math:`\phi`) maximizes
:math:`\mathcal{L}_D = \mathbb{E}_{p_{data}}[\log D(x)] + \mathbb{E}_{G}[\log(1 - D(x))]`:

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\log q_\phi(y=1 \mid x)\right]
   + \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=0 \mid x)\right]

The generator (phase ``"generator"``, in :math:`\theta`) either minimizes
:math:`\mathbb{E}_G[\log(1 - D(x))]` (the minimax generator, :data:`MINIMAX`)

.. math::
   \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=0 \mid x)\right]

or, since that saturates when the discriminator wins, maximizes :math:`\mathbb{E}_G[\log D(x)]`
(the non-saturating generator used in practice, :data:`DECLARATION`)

.. math::
   \mathbb{E}_{p_\theta(x \mid y=0)}\left[\log q_\phi(y=1 \mid x)\right]

**Variational-EM form** (§3.1, :data:`VARIATIONAL_EM`). The discriminator maximizes, in
:math:`\phi`,

.. math::
   \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q_\phi(y \mid x)\right]

which is :math:`\tfrac12 \mathcal{L}_D` (the sleep phase with :math:`h := y`, §3.4;
:func:`unigen.algebra.identities.wake_sleep`), and the generator maximizes, in :math:`\theta`,
the same expectation with the reversed discriminator:

.. math::
   \mathbb{E}_{p_\theta(x \mid y) p(y)}\left[\log q^{r}_\phi(y \mid x)\right]

Only its :math:`y=0` half depends on :math:`\theta`, and there :math:`\log q^r_\phi(y=0 \mid x)
= \log D_\phi(x)`: its θ-gradient is half the non-saturating generator's.

By Lemma 1 (§3.2, :func:`unigen.algebra.identities.lemma1`) the generator's step minimizes
:math:`\mathrm{KL}(p_\theta(x \mid y) \,\|\, q^r(x \mid y))` with
:math:`q^r(x \mid y) \propto q^r_{\phi_0}(y \mid x)\, p_{\theta_0}(x)`, minus a JSD: the model
sits in the first argument, so the GAN is mode-seeking (Figure 5, GAN column).

**The algorithm.** :func:`gan` compiles these declared objectives with
:func:`unigen.algebra.compile` into two phases, ``"discriminator"`` (updates ``"phi"``) then
``"generator"`` (updates ``"theta"``), over a :class:`~unigen.models.gan.GANModel`
(:func:`bindings`: :math:`p_\theta(x \mid y=1)` is the batch, :math:`p_\theta(x \mid y=0)`
the implicit generator drawn pathwise, :math:`q_\phi(y \mid x)` a Bernoulli with the
discriminator's logits, :math:`p(y)` uniform). The losses are the negated objectives (the
minimax generator's objective is minimized, so it is its loss as it stands); every log-mass is
computed from logits in the stable log-sigmoid form. Tools for §3's claims:
:func:`optimal_discriminator` (:math:`D^*`), :func:`discriminator_probability`,
:func:`optimal_discriminator_error`, and
:func:`saturation_curve` (the generator's gradient norm against the discriminator's confidence).
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from unigen.algebra.assembly import algorithm
from unigen.algebra.compiler import data, explicit, implicit, uniform_indicator
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log, reverse
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Batch, Metrics, Params, PRNGKey
from unigen.distributions import BernoulliLogits
from unigen.errors import ConfigError, DataError, describe
from unigen.models.gan import GANModel

__all__ = [
    "DECLARATION",
    "FORMS",
    "GENERATOR_LOSSES",
    "SaturationCurve",
    "DISCRIMINATOR",
    "FIGURE5",
    "MINIMAX",
    "MINIMAX_GENERATOR",
    "NON_SATURATING_GENERATOR",
    "VARIATIONAL_EM",
    "VARIATIONAL_EM_DISCRIMINATOR",
    "VARIATIONAL_EM_GENERATOR",
    "bindings",
    "discriminator_probability",
    "gan",
    "gradient_penalty",
    "optimal_discriminator",
    "optimal_discriminator_error",
    "packed",
    "saturation_curve",
]

p_data = dist("p_data", over="x")
p_y = dist("p", over="y")  # uniform
generative = dist("p", over="x", given="y", params="theta")  # p_θ(x|y)
generated = generative.fixed(y=0)  # p_θ(x|y=0) = p_{g_θ}(x)
discriminator = dist("q", over="y", given="x", params="phi")  # q_φ(y|x); D_φ(x) = q_φ(y=1|x)
reversed_discriminator = reverse(discriminator)  # q^r_φ(y|x) = q_φ(1-y|x)
lemma1_posterior = dist("q^r", over="x", given="y")  # q^r(x|y) ∝ q^r_φ0(y|x) p_θ0(x)

DISCRIMINATOR = E(p_data, log(discriminator, y=1)) + E(generated, log(discriminator, y=0))
"""The classic discriminator objective :math:`\\mathcal{L}_D`, maximized in φ."""

NON_SATURATING_GENERATOR = E(generated, log(discriminator, y=1))
""":math:`\\mathbb{E}_G[\\log D(x)]`, maximized in θ."""

MINIMAX_GENERATOR = E(generated, log(discriminator, y=0))
""":math:`\\mathbb{E}_G[\\log(1 - D(x))]`, minimized in θ."""

VARIATIONAL_EM_DISCRIMINATOR = E(generative * p_y, log(discriminator))
"""§3.1: :math:`\\mathbb{E}_{p_\\theta(x|y)p(y)}[\\log q_\\phi(y|x)]`, maximized in φ."""

VARIATIONAL_EM_GENERATOR = E(generative * p_y, log(reversed_discriminator))
"""§3.1: :math:`\\mathbb{E}_{p_\\theta(x|y)p(y)}[\\log q^r_\\phi(y|x)]`, maximized in θ."""

FIGURE5 = Figure5(
    generative=generative,
    discriminator=discriminator,
    inference=None,
    kl=KL(generative, lemma1_posterior),
    wrt="theta",
    variables=(("x", "data/generations"), ("y", "real/fake indicator"), ("z", "code vector")),
)
"""Figure 5, GAN column: the generator minimizes KL(p_θ(x|y) ‖ q^r(x|y)) (Lemma 1)."""

DECLARATION = Declaration(
    name="gan",
    title="GAN",
    section="§3",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", NON_SATURATING_GENERATOR, "max"),
    ),
    figure5=FIGURE5,
)

MINIMAX = Declaration(
    name="gan-minimax",
    title="GAN (minimax)",
    section="§3",
    phases=(
        PhaseObjective("discriminator", "phi", DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", MINIMAX_GENERATOR, "min"),
    ),
    figure5=FIGURE5,
)

VARIATIONAL_EM = Declaration(
    name="gan-variational-em",
    title="GAN (variational-EM form)",
    section="§3.1, §3.2",
    phases=(
        PhaseObjective("discriminator", "phi", VARIATIONAL_EM_DISCRIMINATOR, "max"),
        PhaseObjective("generator", "theta", VARIATIONAL_EM_GENERATOR, "max"),
    ),
    figure5=FIGURE5,
)

# --------------------------------------------------------------------------------------------
# The algorithm: the declared objectives compiled into phases

real = generative.fixed(y=1)  # p_θ(x|y=1) = p_data(x), the batch

GENERATOR_LOSSES = ("non-saturating", "minimax")
"""The generator objectives: :data:`NON_SATURATING_GENERATOR` (maximized, the default) and
:data:`MINIMAX_GENERATOR` (minimized)."""

FORMS = ("classic", "variational-em")
"""How the objectives are written: :data:`DECLARATION` / :data:`MINIMAX` (§3) or
:data:`VARIATIONAL_EM` (§3.1)."""


def bindings(model: GANModel) -> dict:
    r"""What each distribution of the GAN objectives is for ``model`` (for
    :func:`unigen.algebra.compile`).

    * :math:`p_\theta(x \mid y=0)`: :func:`~unigen.algebra.compiler.implicit`, one draw
      :math:`x = G_\theta(z)` of ``model.generator.sample`` per key (pathwise in θ); with
      ``model.pack = m``, m independent draws (keys ``jax.random.split(key, m)``) flattened;
    * :math:`p_\theta(x \mid y=1)` and :math:`p_{data}(x)`: the rows of ``batch["x"]``;
    * :math:`q_\phi(y \mid x)`: a scalar :class:`~unigen.distributions.BernoulliLogits` with
      logits ``model.discriminator_logit(params["phi"], x)`` (stable log-sigmoid log-mass); the
      reversed :math:`q^r_\phi` uses it with y flipped;
    * :math:`p(y)`: :func:`~unigen.algebra.compiler.uniform_indicator`, logit 0 in the dtype of ``params["phi"]``.
    """

    def sample_generated(params: Params, key: PRNGKey, given: Mapping) -> jax.Array:
        if model.pack == 1:
            return model.generator.sample(params["theta"], key, {})["x"]
        draw = jax.vmap(lambda k: model.generator.sample(params["theta"], k, {})["x"])
        return draw(jax.random.split(key, model.pack)).reshape(-1)

    def discriminate(params: Params, given: Mapping) -> BernoulliLogits:
        return BernoulliLogits(model.discriminator_logit(params["phi"], given["x"]))

    return {
        generated: implicit(sample_generated),
        real: data("x"),
        p_data: data("x"),
        discriminator: explicit(discriminate),
        p_y: uniform_indicator("phi"),
    }


def _check_form(generator_loss: str, form: str) -> Declaration:
    if generator_loss not in GENERATOR_LOSSES:
        raise ConfigError(
            f"generator_loss: expected one of {list(GENERATOR_LOSSES)}, got {generator_loss!r}"
        )
    if form not in FORMS:
        raise ConfigError(f"form: expected one of {list(FORMS)}, got {form!r}")
    if form == "variational-em":
        if generator_loss != "non-saturating":
            raise ConfigError(
                f"generator_loss: got {generator_loss!r} with form='variational-em', expected "
                "'non-saturating' (§3.1's generator objective E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)] "
                "is the non-saturating one; use form='classic' for the minimax generator)"
            )
        return VARIATIONAL_EM
    return DECLARATION if generator_loss == "non-saturating" else MINIMAX


def gan(
    model: GANModel,
    generator_loss: str = "non-saturating",
    form: str = "classic",
    gradient_penalty: float = 0.0,
    *,
    declaration: Declaration | None = None,
) -> Algorithm:
    r"""The generative adversarial network (§3, §3.1): a discriminator phase, then a generator
    phase, each the declared objective compiled by :func:`unigen.algebra.compile`.

    Classic form (``form="classic"``, :data:`DECLARATION` or :data:`MINIMAX`): the
    discriminator maximizes :math:`\mathcal{L}_D = \mathbb{E}_{p_{data}}[\log D_\phi(x)] +
    \mathbb{E}_{p_\theta(x|y=0)}[\log(1 - D_\phi(x))]` (:data:`DISCRIMINATOR`); the generator
    maximizes :math:`\mathbb{E}_{p_\theta(x|y=0)}[\log D_\phi(x)]`
    (``"non-saturating"``, :data:`NON_SATURATING_GENERATOR`) or minimizes
    :math:`\mathbb{E}_{p_\theta(x|y=0)}[\log(1 - D_\phi(x))]` (``"minimax"``,
    :data:`MINIMAX_GENERATOR`).

    Variational-EM form (``form="variational-em"``, :data:`VARIATIONAL_EM`): the discriminator
    maximizes :math:`\mathbb{E}_{p_\theta(x|y)p(y)}[\log q_\phi(y|x)] = \tfrac12
    \mathcal{L}_D`, the generator maximizes
    :math:`\mathbb{E}_{p_\theta(x|y)p(y)}[\log q^r_\phi(y|x)] = \tfrac12
    \mathbb{E}_{p_\theta(x|y=0)}[\log D_\phi(x)] + \tfrac12
    \mathbb{E}_{p_{data}}[\log(1 - D_\phi(x))]`, whose θ-gradient is half the non-saturating
    generator's (the data half does not depend on θ). Enumerating :math:`y` evaluates branch
    :math:`y=i` with key ``fold_in(key, i)``, so with ``k0 = fold_in(key, 0)``: the
    variational-EM discriminator loss at ``key`` is ½ × the classic one at ``k0``, and the
    variational-EM generator loss at ``key`` is ½ × the non-saturating one at ``k0`` minus
    :math:`\tfrac12 \mathbb{E}_{p_{data}}[\log(1 - D_\phi(x))]` (exactly, same draws;
    ``tests/test_gan.py`` checks both to 1e-6).

    Expectations over the data are batch means; over the generator, one draw
    :math:`x = G_\theta(z)` per batch row (row i with ``jax.random.split(key', B)[i]``).
    With a packed model (``model.pack = m``, PacGAN) the batch ``[B, D]`` becomes B/m packed
    rows (:func:`packed`) and each generated row is m draws, so both sides give the
    discriminator B/m examples of m points each.

    Args:
      model: a :class:`~unigen.models.gan.GANModel`.
      generator_loss: ``"non-saturating"`` (default) or ``"minimax"`` (classic form only).
      form: ``"classic"`` (default) or ``"variational-em"``.
      gradient_penalty: γ ≥ 0. With γ > 0 the discriminator's loss gets γ times the R1
        penalty :math:`\tfrac12 \mathbb{E}_{p_{data}}[\|\nabla_x d_\phi(x)\|^2]`
        (:func:`gradient_penalty`, Mescheder et al. 2018), reported as metric
        ``"gradient_penalty"``. It is a regularizer of the discriminator's *training*, not part
        of the declared objective (which stays as printed). It vanishes where the discriminator
        is flat on the data, as at the GAN's equilibrium p_g = p_data with D = ½, so that
        equilibrium is kept; Mescheder et al. show it makes training converge to it locally,
        where the unregularized GAN can oscillate around it. On grid25 it is the variant that
        reaches every mode (``benchmarks/mode_coverage.py``, row ``gan-r1``).
      declaration: another declaration over the GAN's distributions, compiled with the same
        bindings instead of the one ``generator_loss`` and ``form`` choose (the importance-weighted
        GAN, :mod:`unigen.algorithms.iwgan`).

    Returns:
      An :class:`~unigen.core.Algorithm` with phases ``"discriminator"`` (``"phi"``) and
      ``"generator"`` (``"theta"``); ``init(key)`` gives ``{"theta": ..., "phi": ...}`` and
      ``objective`` is the :class:`~unigen.algebra.declaration.Declaration` compiled. Each
      phase's loss takes ``batch = {"x": [B, D]}`` and reports ``"loss"`` and ``"objective"``
      (the objective's value, whose sign the phase's sense gives).

    Raises:
      ConfigError: an unknown ``generator_loss`` or ``form``, ``"minimax"`` with
        ``"variational-em"``, or a negative or non-finite ``gradient_penalty``.
    """
    chosen = _check_form(generator_loss, form)
    declaration = chosen if declaration is None else declaration
    gamma = _penalty_weight(gradient_penalty)

    def init(key: PRNGKey) -> dict[str, Params]:
        key_theta, key_phi = jax.random.split(key)
        return {"theta": model.generator.init(key_theta), "phi": model.discriminator.init(key_phi)}

    compiled = algorithm(
        declaration, bindings(model), init,
        prepare=lambda batch: {"x": packed(batch_data(batch, model.data_dim), model.pack)},
    )
    if gamma == 0:
        return compiled
    phases = tuple(
        phase._replace(loss=_with_gradient_penalty(model, phase.loss, gamma))
        if phase.name == "discriminator" else phase
        for phase in compiled.phases
    )
    return compiled._replace(phases=phases)


def _penalty_weight(gradient_penalty: float) -> float:
    if (isinstance(gradient_penalty, bool) or not isinstance(gradient_penalty, (int, float))
            or not math.isfinite(gradient_penalty) or gradient_penalty < 0):
        raise ConfigError(f"gradient_penalty: expected a finite number >= 0, got {describe(gradient_penalty)}")
    return float(gradient_penalty)


def gradient_penalty(model: GANModel, phi: Params, x: ArrayLike) -> jax.Array:
    r"""The R1 penalty (Mescheder, Geiger & Nowozin 2018) on data rows ``x`` ``[N, D]``:
    :math:`\tfrac12\, \mathbb{E}_{p_{data}}\left[\|\nabla_x d_\phi(x)\|^2\right]`, the
    squared gradient of the discriminator's logit at the data, averaged over the rows (for a
    packed model, over the packed rows, the gradient taken in all m·D inputs).
    """
    x = packed(jnp.asarray(x), model.pack)
    slopes = jax.vmap(jax.grad(lambda row: model.discriminator_logit(phi, row)))(x)
    return 0.5 * jnp.mean(jnp.sum(slopes**2, axis=-1))


def _with_gradient_penalty(model: GANModel, loss, gamma: float):
    def penalized(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        value, metrics = loss(params, key, batch)
        penalty = gradient_penalty(model, params["phi"], batch_data(batch, model.data_dim))
        return value + gamma * penalty, {**metrics, "gradient_penalty": penalty}

    penalized.objective = loss.objective  # the declared objective, plus a training regularizer
    return penalized


def packed(x: jax.Array, pack: int) -> jax.Array:
    r"""Data rows ``[B, D]`` grouped for a discriminator that judges ``pack`` = m at once:
    ``[B/m, m·D]``, row j holding rows ``j·m .. j·m + m - 1`` (PacGAN's packed real examples).

    Raises:
      DataError: ``B`` is not a multiple of m.
    """
    if pack == 1:
        return x
    if x.shape[0] % pack:
        raise DataError(f"batch['x']: the batch size {x.shape[0]} is not a multiple of pack={pack} "
                        "(the discriminator judges pack rows at once)")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1])


def discriminator_probability(model: GANModel, phi: Params, x: ArrayLike) -> jax.Array:
    r""":math:`D_\phi(x) = q_\phi(y=1 \mid x) = \sigma(d_\phi(x))` for each row of ``x``
    ``[N, D]``, shape ``[N]``."""
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.data_dim:
        raise DataError(f"x: expected shape (N, {model.data_dim}), got {describe(x)}")
    return jax.nn.sigmoid(jax.vmap(lambda row: model.discriminator_logit(phi, row))(x))


def optimal_discriminator(log_p_data: ArrayLike, log_p_generator: ArrayLike) -> jax.Array:
    r"""The optimal discriminator of §3 against a fixed generator, from the two log-densities
    at the same points:

    .. math::  D^*(x) = \frac{p_{data}(x)}{p_{data}(x) + p_{g_\theta}(x)}
       = \sigma\left(\log p_{data}(x) - \log p_{g_\theta}(x)\right),

    the maximizer of :math:`\mathcal{L}_D` pointwise; :math:`D^* = \tfrac12` where
    :math:`p_{g_\theta} = p_{data}` (the GAN's optimum).
    """
    return jax.nn.sigmoid(jnp.asarray(log_p_data) - jnp.asarray(log_p_generator))


def optimal_discriminator_error(
    model: GANModel,
    phi: Params,
    x: ArrayLike,
    log_p_data: ArrayLike,
    log_p_generator: ArrayLike,
) -> jax.Array:
    r"""How far a discriminator is from the optimal one on given points (§3):
    :math:`\max_i |D_\phi(x_i) - D^*(x_i)|`.

    Args:
      model: a :class:`~unigen.models.gan.GANModel`.
      phi: the discriminator's parameters.
      x: ``[N, D]`` points (a grid where both densities are known).
      log_p_data: ``[N]`` :math:`\log p_{data}(x_i)`.
      log_p_generator: ``[N]`` :math:`\log p_{g_\theta}(x_i)`.

    Returns:
      The maximum absolute error, a scalar.
    """
    log_p_data, log_p_generator = jnp.asarray(log_p_data), jnp.asarray(log_p_generator)
    probability = discriminator_probability(model, phi, x)
    if log_p_data.shape != probability.shape or log_p_generator.shape != probability.shape:
        raise DataError(
            f"log_p_data, log_p_generator: expected shape {probability.shape} (one per row of "
            f"x), got {describe(log_p_data)} and {describe(log_p_generator)}"
        )
    return jnp.max(jnp.abs(probability - optimal_discriminator(log_p_data, log_p_generator)))


class SaturationCurve(NamedTuple):
    r"""The generator's gradient norm against the discriminator's confidence (§3).

    Attributes:
      offset: ``[K]`` the offsets c subtracted from the discriminator's logit,
        :math:`D_c(x) = \sigma(d_\phi(x) - c)`.
      confidence: ``[K]`` :math:`\mathbb{E}_{p_\theta(x|y=0)}[q_\phi(y=0 \mid x)] =
        \mathbb{E}_G[1 - D_c(x)]`, how sure the discriminator is that generated examples are
        generated (1 = it always wins).
      minimax: ``[K]`` :math:`\|\nabla_\theta\|` of the minimax generator's loss.
      non_saturating: ``[K]`` :math:`\|\nabla_\theta\|` of the non-saturating generator's loss.
    """

    offset: jax.Array
    confidence: jax.Array
    minimax: jax.Array
    non_saturating: jax.Array


def saturation_curve(
    model: GANModel,
    params: Params,
    key: PRNGKey,
    batch: Batch,
    offsets: ArrayLike,
) -> SaturationCurve:
    r"""Why the minimax generator saturates: its θ-gradient vanishes as the discriminator
    becomes confident, while the non-saturating one does not (§3).

    The discriminator is made more confident by shifting its logit,
    :math:`D_c(x) = \sigma(d_\phi(x) - c)`, one offset c per point of the curve. Per generated
    x, :math:`\nabla_\theta \log(1 - D_c) = -D_c\, \nabla_\theta d_\phi` vanishes as
    :math:`D_c \to 0`, while :math:`\nabla_\theta \log D_c = (1 - D_c)\, \nabla_\theta d_\phi`
    tends to :math:`\nabla_\theta d_\phi`. Both gradients are those of the generator phases of
    :func:`gan` (classic form) at the same key, i.e. on the same generated examples.

    Args:
      model: a :class:`~unigen.models.gan.GANModel`.
      params: ``{"theta": ..., "phi": ...}``.
      key: the generator phase's key (the same draws for every offset).
      batch: ``{"x": [B, D]}``; its size sets the number of generated examples.
      offsets: ``[K]`` logit offsets c (larger: a more confident discriminator).

    Returns:
      A :class:`SaturationCurve` of ``[K]`` arrays, ready to plot ``confidence`` against the
      two norms.
    """
    offsets = jnp.asarray(offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise ConfigError(f"offsets: expected a non-empty vector [K], got {describe(offsets)}")
    x = batch_data(batch, model.data_dim)
    def shifted_logit(phi: Params, row: jax.Array) -> jax.Array:
        return model.discriminator_logit(phi["net"], row) - phi["offset"]

    shifted = model._replace(
        discriminator_logit=shifted_logit,
        discriminator_distribution=lambda phi, row: BernoulliLogits(shifted_logit(phi, row)),
    )
    minimax = gan(shifted, "minimax").phases[1].loss
    non_saturating = gan(shifted, "non-saturating").phases[1].loss

    def point(offset: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        shifted_params = {
            "theta": params["theta"],
            "phi": {"net": params["phi"], "offset": offset.astype(x.dtype)},
        }

        def norm(loss) -> jax.Array:
            grad = jax.grad(lambda theta: loss({**shifted_params, "theta": theta}, key,
                                               {"x": x})[0])(params["theta"])
            return optax.tree.norm(grad)

        keys = jax.random.split(key, x.shape[0])
        fake = jax.vmap(lambda k: model.generator.sample(params["theta"], k, {})["x"])(keys)
        logits = jax.vmap(lambda row: model.discriminator_logit(params["phi"], row))(fake)
        confidence = jnp.mean(jax.nn.sigmoid(offset.astype(x.dtype) - logits))
        return confidence, norm(minimax), norm(non_saturating)

    confidence, minimax_norm, non_saturating_norm = jax.jit(jax.vmap(point))(offsets)
    return SaturationCurve(offsets, confidence, minimax_norm, non_saturating_norm)
