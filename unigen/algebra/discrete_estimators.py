r"""The discrete-latent estimators of :mod:`unigen.estimators` as estimator objects of ``compile``.

``compile(objective, bindings, estimator={q: DisARM()})`` (or ``algorithm(...,
estimator={"e_step": {q: Rebar()}})``) estimates :math:`\mathbb{E}_{q_\phi(h \mid x)}[f]` over a
Bernoulli :math:`q_\phi` (optionally ``.to_event``) with MuProp, ARM, DisARM, REBAR, RELAX or
the straight-through Gumbel-softmax, beside :class:`~unigen.algebra.estimator.ScoreFunction`.

Every adapter splits the gradient of :math:`\mathbb{E}_{q_{l(\phi)}}[f_\theta(h)]` the way the
chain rule does, with :math:`l` the logits of :math:`q_\phi` for this example:

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

Only Bernoulli latents: MuProp, REBAR, RELAX and straight-through evaluate the body at relaxed
values in [0, 1] (which a Bernoulli body takes, its log-probabilities being cross-entropies),
while a categorical's body takes an integer index, not a point of the simplex; ARM and DisARM
are binary-only by construction. Any other family is refused by :meth:`check` with a one-line
:class:`~unigen.errors.ConfigError`.

REBAR's :math:`(\eta, \log\lambda)` and RELAX's :math:`\phi_c = (\eta, \log\lambda, \rho)` are
fixed at their initial values unless ``parameters(params) -> pytree`` says where they live in the
params (e.g. ``lambda params: params["phi"]["rebar"]``, initialized by
:func:`~unigen.estimators.rebar_init` / :func:`~unigen.estimators.relax_init`); then the
auxiliary loss ``"rebar_variance"`` / ``"relax_variance"`` (value :math:`\lVert \hat g_l
\rVert^2`, the single-example variance proxy of the papers; gradient
:math:`\nabla_{\phi_c} \lVert \hat g_l \rVert^2` into those parameters only) trains them in the
same phase as the group holding them.

VIMCO has no adapter: it estimates the gradient of the multi-sample bound
:math:`\mathbb{E}_{h_{1:K}}[\log \frac1K \sum_k e^{f(h_k)}]`, which is not an expectation of a
per-draw body (the algebra's :math:`\mathbb{E}_q[f]`), so it does not fit this protocol; its
place would be the :func:`~unigen.algebra.expr.importance_weighted_bound` node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from unigen.algebra.estimator import Body, Estimator, EstimatorContext, auxiliary
from unigen.algebra.expr import Dist
from unigen.core import Params, PRNGKey
from unigen.errors import ConfigError, describe
from unigen.estimators import _discrete
from unigen.estimators.arm import arm_surrogate, disarm_surrogate
from unigen.estimators.muprop import muprop_surrogate
from unigen.estimators.rebar import control_variate_surrogate, rebar_control, rebar_init
from unigen.estimators.relax import relax_control
from unigen.estimators.straight_through import straight_through_surrogate

__all__ = ["ARM", "DisARM", "MuProp", "Rebar", "Relax", "StraightThrough"]

Scalar = Callable[[jax.Array], jax.Array]


class _Bernoulli(Estimator):
    """The shared adapter (module docstring); subclasses give the logits gradient and draws."""

    uses_v = False

    def check(self, dist: Dist, built: Any) -> None:
        family = _discrete.family_of(built)
        if family != _discrete.BERNOULLI:
            raise ConfigError(f"estimator for {dist}: {self.name} got a {family} distribution, expected a "
                              "Bernoulli (optionally .to_event)")

    def draws(self, logits: jax.Array, u: jax.Array) -> jax.Array:
        """The hard draws whose mean body value is the estimate, ``[M, *logits.shape]``."""
        return _discrete.hard(_discrete.BERNOULLI, _discrete.relaxed_logits(_discrete.BERNOULLI, logits, u))

    def logits_gradient(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array,
                        context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``(ĝ_l, records)``: the estimator in the logits at fixed f."""
        return jax.grad(lambda l: self.surrogate(f, l, u, v, None))(logits), {}

    def surrogate(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array, control: Any) -> jax.Array:
        raise NotImplementedError

    def __call__(self, q: Any, f: Body, key: PRNGKey, n: int,
                 context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        _, logits = _discrete.check_family(q, self.name, (_discrete.BERNOULLI,))
        fixed = jax.lax.stop_gradient(logits)
        key_u, key_v = jax.random.split(key)
        u = _discrete.uniform(key_u, n, fixed)
        v = _discrete.uniform(key_v, n, fixed) if self.uses_v else u
        body_key = jax.random.fold_in(key, 1)
        values, records = jax.vmap(lambda h: f(h, body_key))(self.draws(fixed, u))
        gradient, extra = self.logits_gradient(lambda h: f(h, body_key)[0], fixed, u, v, context)
        gradient = jax.lax.stop_gradient(gradient)
        surrogate = jnp.mean(values) + jnp.sum(gradient * (logits - fixed))
        return surrogate, {**jax.tree.map(lambda a: jnp.mean(a, axis=0), records), **extra}


class MuProp(_Bernoulli):
    r"""MuProp (Gu et al. 2016): the score function with a first-order Taylor control variate
    around the mean (:func:`unigen.estimators.muprop`); unbiased. The body must accept the mean
    :math:`\sigma(l)` and be differentiable there."""

    name = "muprop"

    def surrogate(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array, control: Any) -> jax.Array:
        return muprop_surrogate(f, _discrete.BERNOULLI, logits, u)


class ARM(_Bernoulli):
    r"""Augment-REINFORCE-merge (Yin & Zhou 2019; :func:`unigen.estimators.arm`): the body at
    the antithetic pair of each draw; unbiased. The estimate is the mean over the 2N draws."""

    name = "arm"

    def draws(self, logits: jax.Array, u: jax.Array) -> jax.Array:
        logits = jnp.broadcast_to(logits, u.shape)
        pair = (u < jax.nn.sigmoid(logits), u > jax.nn.sigmoid(-logits))  # b and its antithetic b~
        return jnp.concatenate([b.astype(u.dtype) for b in pair])

    def surrogate(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array, control: Any) -> jax.Array:
        return arm_surrogate(f, logits, u)


class DisARM(ARM):
    r"""DisARM (Dong et al. 2020; :func:`unigen.estimators.disarm`): ARM with the augmenting
    uniforms integrated out; unbiased, variance at most ARM's."""

    name = "disarm"

    def surrogate(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array, control: Any) -> jax.Array:
        return disarm_surrogate(f, logits, u)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name}: got {describe(value)}, expected a positive number")
    return float(value)


class StraightThrough(_Bernoulli):
    r"""The straight-through Gumbel-softmax (Jang et al. 2017; :func:`unigen.estimators.straight_through`):
    the body at the hard draw, differentiated as if at :math:`\sigma(z/\tau)`. **Biased**.

    Args:
      temperature: τ > 0 of the backward pass's relaxation.
    """

    name = "straight-through"

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = _positive("temperature", temperature)

    def surrogate(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array, control: Any) -> jax.Array:
        return straight_through_surrogate(f, _discrete.BERNOULLI, logits, u, self.temperature)


class Rebar(_Bernoulli):
    r"""REBAR (Tucker et al. 2017; :func:`unigen.estimators.rebar`): the Concrete relaxation
    :math:`\eta f(\sigma_\lambda(z))` as a control variate; unbiased for every η, λ. The body
    must accept relaxed values in [0, 1].

    Args:
      parameters: ``parameters(params) -> {"eta", "log_temperature"}``, where they live in the
        params (from :func:`~unigen.estimators.rebar_init`), trained by the auxiliary loss
        ``"rebar_variance"``; ``None``: fixed at ``eta`` and ``temperature``.
      eta, temperature: the fixed values when ``parameters`` is None.
    """

    name = "rebar"
    uses_v = True
    make_control = staticmethod(rebar_control)

    def __init__(self, parameters: Callable[[Params], Any] | None = None, *, eta: float = 1.0,
                 temperature: float = 0.5) -> None:
        if parameters is not None and not callable(parameters):
            raise ConfigError(f"parameters: got {describe(parameters)}, expected params -> pytree, or None")
        self.parameters = parameters
        self.eta, self.temperature = float(eta), _positive("temperature", temperature)

    def surrogate(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array, control: Any) -> jax.Array:
        return control_variate_surrogate(f, _discrete.BERNOULLI, logits, u, v,
                                         self.make_control(f, _discrete.BERNOULLI, control))

    def fixed_control(self, logits: jax.Array) -> Any:
        return rebar_init(logits.dtype, eta=self.eta, temperature=self.temperature)

    def logits_gradient(self, f: Scalar, logits: jax.Array, u: jax.Array, v: jax.Array,
                        context: EstimatorContext) -> tuple[jax.Array, dict[str, jax.Array]]:
        def estimate(control: Any) -> jax.Array:
            return jax.grad(lambda l: self.surrogate(f, l, u, v, control))(logits)

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
        pytree lives in the params (``dim`` = the number of latent units), trained by the
        auxiliary loss ``"relax_variance"``.
    """

    name = "relax"
    make_control = staticmethod(relax_control)

    def __init__(self, parameters: Callable[[Params], Any]) -> None:
        if not callable(parameters):
            raise ConfigError(f"parameters: got {describe(parameters)}, expected params -> relax_init pytree")
        super().__init__(parameters)
