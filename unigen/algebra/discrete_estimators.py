r"""The discrete-latent estimators of :mod:`unigen.estimators` as estimator objects of ``compile``.

``compile(objective, bindings, estimator={q: DisARM()})`` (or ``algorithm(...,
estimator={"e_step": {q: Rebar()}})``) estimates :math:`\mathbb{E}_{q_\phi(h \mid x)}[f]` over a
discrete :math:`q_\phi` with MuProp, ARM, DisARM, REBAR, RELAX, the straight-through
Gumbel-softmax or the Concrete relaxation, beside :class:`~unigen.algebra.estimator.ScoreFunction`.
:class:`VIMCO` is the estimator of a multi-sample bound instead (below).

Every per-expectation adapter splits the gradient of :math:`\mathbb{E}_{q_{l(\phi)}}[f_\theta(h)]`
the way the chain rule does, with :math:`l` the logits of :math:`q_\phi` for this example:

.. math::
   \nabla \mathbb{E}_{q_l}[f_\theta] = \mathbb{E}_{q_l}[\nabla f_\theta(h)]
   + \hat g_l^\top \nabla l, \qquad
   \text{surrogate} = \frac1M \sum_{i=1}^{M} f(h_i) + \mathrm{sg}[\hat g_l]^\top (l - \mathrm{sg}[l]),

where :math:`h_i` are the estimator's hard draws (N of them; 2N, the antithetic pairs, for
ARM/DisARM), so the surrogate's value is the estimator's N-draw estimate of
:math:`\mathbb{E}_q[f]`, and :math:`\hat g_l` is the gradient *in the logits* of the estimator's
``*_surrogate`` (:mod:`unigen.estimators`), taken with ``l`` an explicit argument: whatever else
f depends on (θ, or φ through a :math:`\log q_\phi` in the body) is held fixed there and reaches
the gradient only through the first, plain term. That is why REBAR's and RELAX's control variate,
which evaluates f again at relaxed values, biases nothing in θ.

Each draw's body gets the same key, ``fold_in(key, 1)`` (the estimators evaluate f at many
points per draw — pairs, relaxations, the mean — and cannot tell which draw a point belongs
to), so a body that is itself random (a nested expectation) shares its randomness across the
draws: still unbiased, with common random numbers. The noise is ``u = uniform(split(key)[0])``
(and REBAR/RELAX's ``v`` from ``split(key)[1]``), ``[N, *logits.shape]``.

Latents (:data:`SUPPORTED` lists each estimator's):

* **Bernoulli** (``bernoulli_logits``, optionally ``.to_event``): every adapter. MuProp, REBAR,
  RELAX, straight-through and Concrete evaluate the body at relaxed values in [0, 1], which a
  Bernoulli body takes (its log-probabilities are cross-entropies).
* **Categorical** as one-hot vectors (:func:`unigen.distributions.one_hot_categorical`, logits
  ``[K]`` or ``[n, K]``): MuProp (the body at the mean, a point of the simplex), REBAR and RELAX
  with the categorical Gumbel construction (Tucker et al. 2017 §3.2 / Grathwohl et al. 2018: the
  conditional :math:`\tilde z \sim p(z \mid b)` of
  :func:`unigen.estimators._discrete.conditional_relaxed_logits`), straight-through and Concrete
  (the body at :math:`\mathrm{softmax}(z/\tau)`). numpyro's ``Categorical``, whose values are
  integer indices, has no relaxed values, so these refuse it and name the one-hot form; the
  score function (:class:`~unigen.algebra.estimator.ScoreFunction`) takes either.
* ARM and DisARM are for binary latents only (their categorical extension, ARSM, is a different
  estimator, not implemented): a categorical is refused.

Any other family (a Normal) is refused by :meth:`check` with a one-line
:class:`~unigen.errors.ConfigError` naming the estimator, the family seen and those it supports.

REBAR and RELAX differentiate the body in the latent (their control variate is
:math:`f(\sigma_\lambda(z))`, and their correction :math:`\nabla c(z) - \nabla c(\tilde z)` is
unbiased only if that derivative is the body's true derivative): a body with a stop-gradient of
a term of the latent, such as the :math:`\mathrm{sg}[\log q_\phi(h \mid x)]` of variational EM's
E-step, gives jax's derivative without that term and a biased gradient, so ``compile`` refuses
it (write :math:`\log q_\phi` without sg: same value, and the gradient the adapter adds for it,
:math:`-\nabla_\phi \log q_\phi(h)` at the draws, has mean zero).

REBAR's :math:`(\eta, \log\lambda)` and RELAX's :math:`\phi_c = (\eta, \log\lambda, \rho)` are
fixed at their initial values unless ``parameters(params) -> pytree`` says where they live in the
params (e.g. ``lambda params: params["phi"]["rebar"]``, initialized by
:func:`~unigen.estimators.rebar_init` / :func:`~unigen.estimators.relax_init`, whose ``dim`` is
the number of logits of one draw, n·K for a categorical); then the auxiliary loss
``"rebar_variance"`` / ``"relax_variance"`` (value :math:`\lVert \hat g_l \rVert^2`, the
single-example variance proxy of the papers; gradient :math:`\nabla_{\phi_c} \lVert \hat g_l
\rVert^2` into those parameters only) trains them in the same phase as the group holding them.

**VIMCO** (Mnih & Rezende 2016) estimates the gradient of the multi-sample bound
:math:`\mathbb{E}_{h_{1:K}}[\log \frac1K \sum_k w(h_k)]`, which is not an expectation of a
per-draw body, so it is given for the *proposal* of an
:func:`~unigen.algebra.expr.importance_weighted_bound`:
``compile(E(p_data, importance_weighted_bound(joint, q, k=5)), bindings, estimator={q: VIMCO()})``.
The compiler draws :math:`h_{1:K} \sim q` (no gradient), computes the log-weights
:math:`\log w_k = \log p_\theta(x, h_k) - \log q_\phi(h_k \mid x)` and hands them with
:math:`\log q_\phi(h_k \mid x)` to :meth:`VIMCO.bound`
(:func:`unigen.estimators.vimco.vimco_surrogate`): value the bound's one-draw estimate, gradient
VIMCO's, in φ the leave-one-out score term plus :math:`\sum_k \tilde w_k \nabla_\phi \log w_k`
and in θ :math:`\sum_k \tilde w_k \nabla_\theta \log p_\theta(x, h_k)`; unbiased for the bound's
gradient in both, any family. Used for an ordinary expectation, it is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from unigen.algebra.estimator import Body, Estimator, EstimatorContext, auxiliary
from unigen.algebra.expr import Dist
from unigen.core import Params, PRNGKey
from unigen.distributions import OneHotCategorical
from unigen.errors import ConfigError, describe
from unigen.estimators import _discrete
from unigen.estimators.arm import arm_surrogate, disarm_surrogate
from unigen.estimators.muprop import muprop_surrogate
from unigen.estimators.rebar import control_variate_surrogate, rebar_control, rebar_init
from unigen.estimators.relax import relax_control
from unigen.estimators.relaxed import concrete_surrogate
from unigen.estimators.straight_through import straight_through_surrogate
from unigen.estimators.vimco import vimco_surrogate

__all__ = ["ARM", "SUPPORTED", "VIMCO", "Concrete", "DisARM", "MuProp", "Rebar", "Relax", "StraightThrough"]

Scalar = Callable[[jax.Array], jax.Array]
_BOTH = (_discrete.BERNOULLI, _discrete.CATEGORICAL)
_WORDS = {_discrete.BERNOULLI: "Bernoulli (optionally .to_event)",
          _discrete.CATEGORICAL: "one-hot categorical (unigen.distributions.one_hot_categorical)"}


class _Discrete(Estimator):
    """The shared adapter (module docstring); subclasses give the logits gradient and draws."""

    uses_v = False
    latents: tuple[str, ...] = _BOTH
    differentiates_body = False  # True: the body's derivative in the latent must be its true one

    @classmethod
    def supports(cls) -> str:
        """The latents this estimator takes, in words (for messages and :data:`SUPPORTED`)."""
        return " or ".join(_WORDS[f] for f in cls.latents)

    def check(self, dist: Dist, built: Any) -> None:
        family = _discrete.family_of(built)
        if family not in self.latents:
            raise ConfigError(f"estimator for {dist}: {self.name} got a {family} distribution, expected a "
                              f"{self.supports()}")
        base = _discrete.base_distribution(built)
        if family == _discrete.CATEGORICAL and not isinstance(base, OneHotCategorical):
            raise ConfigError(f"estimator for {dist}: {self.name} got a {type(base).__name__} (integer values), "
                              "expected a one-hot categorical (unigen.distributions.one_hot_categorical): the "
                              "body is evaluated at one-hot and relaxed points of the simplex")

    def draws(self, family: str, logits: jax.Array, u: jax.Array) -> jax.Array:
        """The hard draws whose mean body value is the estimate, ``[M, *logits.shape]``."""
        return _discrete.hard(family, _discrete.relaxed_logits(family, logits, u))

    def logits_gradient(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                        context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``(ĝ_l, records)``: the estimator in the logits at fixed f."""
        return jax.grad(lambda l: self.surrogate(f, family, l, u, v, None))(logits), {}

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        raise NotImplementedError

    def __call__(self, q: Any, f: Body, key: PRNGKey, n: int,
                 context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        family, logits = _discrete.check_family(q, self.name, self.latents)
        fixed = jax.lax.stop_gradient(logits)
        key_u, key_v = jax.random.split(key)
        u = _discrete.uniform(key_u, n, fixed)
        v = _discrete.uniform(key_v, n, fixed) if self.uses_v else u
        body_key = jax.random.fold_in(key, 1)
        values, records = jax.vmap(lambda h: f(h, body_key))(self.draws(family, fixed, u))
        gradient, extra = self.logits_gradient(lambda h: f(h, body_key)[0], family, fixed, u, v, context)
        gradient = jax.lax.stop_gradient(gradient)
        surrogate = jnp.mean(values) + jnp.sum(gradient * (logits - fixed))
        return surrogate, {**jax.tree.map(lambda a: jnp.mean(a, axis=0), records), **extra}


class MuProp(_Discrete):
    r"""MuProp (Gu et al. 2016): the score function with a first-order Taylor control variate
    around the mean (:func:`unigen.estimators.muprop`); unbiased. The body must accept the mean
    (:math:`\sigma(l)`, or :math:`\mathrm{softmax}(l)` for a one-hot categorical) and be
    differentiable there."""

    name = "muprop"

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        return muprop_surrogate(f, family, logits, u)


class ARM(_Discrete):
    r"""Augment-REINFORCE-merge (Yin & Zhou 2019; :func:`unigen.estimators.arm`): the body at
    the antithetic pair of each draw; unbiased; Bernoulli latents only. The estimate is the mean
    over the 2N draws."""

    name = "arm"
    latents = (_discrete.BERNOULLI,)

    @classmethod
    def supports(cls) -> str:
        return f"{_WORDS[_discrete.BERNOULLI]}; {cls.name} has no categorical form here (ARSM is not implemented)"

    def draws(self, family: str, logits: jax.Array, u: jax.Array) -> jax.Array:
        logits = jnp.broadcast_to(logits, u.shape)
        pair = (u < jax.nn.sigmoid(logits), u > jax.nn.sigmoid(-logits))  # b and its antithetic b~
        return jnp.concatenate([b.astype(u.dtype) for b in pair])

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        return arm_surrogate(f, logits, u)


class DisARM(ARM):
    r"""DisARM (Dong et al. 2020; :func:`unigen.estimators.disarm`): ARM with the augmenting
    uniforms integrated out; unbiased, variance at most ARM's; Bernoulli latents only."""

    name = "disarm"

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        return disarm_surrogate(f, logits, u)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name}: got {describe(value)}, expected a positive number")
    return float(value)


class StraightThrough(_Discrete):
    r"""The straight-through Gumbel-softmax (Jang et al. 2017; :func:`unigen.estimators.straight_through`):
    the body at the hard draw, differentiated as if at :math:`\sigma(z/\tau)` (or
    :math:`\mathrm{softmax}(z/\tau)`). **Biased**.

    Args:
      temperature: τ > 0 of the backward pass's relaxation.
    """

    name = "straight-through"

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = _positive("temperature", temperature)

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        return straight_through_surrogate(f, family, logits, u, self.temperature)


class Concrete(StraightThrough):
    r"""The Concrete / Gumbel-softmax relaxation (Maddison et al. 2017; Jang et al. 2017;
    :func:`unigen.estimators.concrete`) in the logits: :math:`\hat g_l` is the pathwise gradient
    of the body at the relaxed draws :math:`\sigma(z/\tau)` (or :math:`\mathrm{softmax}(z/\tau)`),
    while the value, and the gradient in the body's own parameters, are at the hard draws of the
    same noise. **Biased** in the logits (the bias vanishes as τ → 0, the variance grows).

    Args:
      temperature: τ > 0.
    """

    name = "concrete"

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__(temperature)

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        return concrete_surrogate(f, family, logits, u, self.temperature)


class Rebar(_Discrete):
    r"""REBAR (Tucker et al. 2017; :func:`unigen.estimators.rebar`): the Concrete relaxation
    :math:`\eta f(\sigma_\lambda(z))` as a control variate; unbiased for every η, λ. The body
    must accept relaxed values (in [0, 1], or points of the simplex) and be differentiable there
    with no stop-gradient of a term of the latent (module docstring).

    Args:
      parameters: ``parameters(params) -> {"eta", "log_temperature"}``, where they live in the
        params (from :func:`~unigen.estimators.rebar_init`), trained by the auxiliary loss
        ``"rebar_variance"``; ``None``: fixed at ``eta`` and ``temperature``.
      eta, temperature: the fixed values when ``parameters`` is None.
    """

    name = "rebar"
    uses_v = True
    differentiates_body = True
    make_control = staticmethod(rebar_control)

    def __init__(self, parameters: Callable[[Params], Any] | None = None, *, eta: float = 1.0,
                 temperature: float = 0.5) -> None:
        if parameters is not None and not callable(parameters):
            raise ConfigError(f"parameters: got {describe(parameters)}, expected params -> pytree, or None")
        self.parameters = parameters
        self.eta, self.temperature = float(eta), _positive("temperature", temperature)

    def surrogate(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                  control: Any) -> jax.Array:
        return control_variate_surrogate(f, family, logits, u, v, self.make_control(f, family, control))

    def fixed_control(self, logits: jax.Array) -> Any:
        return rebar_init(logits.dtype, eta=self.eta, temperature=self.temperature)

    def logits_gradient(self, f: Scalar, family: str, logits: jax.Array, u: jax.Array, v: jax.Array,
                        context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        def estimate(control: Any) -> jax.Array:
            return jax.grad(lambda l: self.surrogate(f, family, l, u, v, control))(logits)

        if self.parameters is None:
            return estimate(self.fixed_control(logits)), {}
        control = self.parameters(context.params)

        def square(c: Any) -> tuple[jax.Array, jax.Array]:
            gradient = estimate(c)
            return jnp.sum(jnp.square(gradient)), gradient

        (norm, gradient), direction = jax.value_and_grad(square, has_aux=True)(control)
        direction = jax.lax.stop_gradient(direction)
        linear = sum(jnp.sum(d * (c - jax.lax.stop_gradient(c)))
                     for d, c in zip(jax.tree.leaves(direction), jax.tree.leaves(control)))
        return gradient, auxiliary(f"{self.name}_variance", jax.lax.stop_gradient(norm) + linear)


class Relax(Rebar):
    r"""RELAX (Grathwohl et al. 2018; :func:`unigen.estimators.relax`): REBAR's control variate
    plus a small learned network :math:`r_\rho(z)`; unbiased for every φ_c.

    Args:
      parameters: ``parameters(params) -> φ_c``, where :func:`~unigen.estimators.relax_init`'s
        pytree lives in the params (``dim`` = the number of logits of one draw), trained by the
        auxiliary loss ``"relax_variance"``.
    """

    name = "relax"
    make_control = staticmethod(relax_control)

    def __init__(self, parameters: Callable[[Params], Any]) -> None:
        if not callable(parameters):
            raise ConfigError(f"parameters: got {describe(parameters)}, expected params -> relax_init pytree")
        super().__init__(parameters)


class VIMCO(Estimator):
    r"""VIMCO (Mnih & Rezende 2016; :func:`unigen.estimators.vimco`) for the proposal of an
    importance-weighted bound (module docstring): the K-sample bound's gradient with per-draw
    leave-one-out baselines; unbiased; any family; K ≥ 2."""

    name = "vimco"
    multi_sample = True

    def check_bound(self, dist: Dist, k: int) -> None:
        """Refuse a bound with fewer than two draws (no other draw to make a baseline of)."""
        if k < 2:
            raise ConfigError(f"estimator for {dist}: vimco got a bound of k={k} draws, expected k >= 2 "
                              "(each draw's baseline is made of the others)")

    def bound(self, log_weights: jax.Array, log_q: jax.Array) -> jax.Array:
        r"""Value :math:`\log\frac1K\sum_k w_k`, gradient VIMCO's, from the ``[K]`` log-weights and
        :math:`\log q(h_k)` (both carrying their gradients in the parameters)."""
        return vimco_surrogate(log_weights, log_q)

    def __call__(self, q: Any, f: Body, key: PRNGKey, n: int,
                 context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        raise ConfigError(f"estimator for {context.dist}: vimco got an expectation E over {context.dist}, expected "
                          "the proposal of an importance_weighted_bound (it estimates a K-sample bound)")


SUPPORTED = {cls.name: cls.supports() for cls in (MuProp, ARM, DisARM, StraightThrough, Concrete, Rebar, Relax)}
"""Each adapter's name and the latents it takes, in words."""
