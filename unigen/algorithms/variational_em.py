r"""Variational EM: the evidence lower bound and the free energy (§2.1), declared in the algebra.

With a generative model :math:`p_\theta(x, z) = p_\theta(x \mid z) p(z)` and a variational
distribution :math:`q_\phi(z \mid x)`,

.. math::
   \log p_\theta(x) = \mathrm{KL}\left(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x)\right)
   + \mathcal{L}(\theta, \phi; x),

so the bound :math:`\mathcal{L}` is below :math:`\log p_\theta(x)` by exactly the KL to the
posterior. Maximizing it is minimizing the free energy

.. math::
   -\log p_\theta(x) + \mathrm{KL}\left(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x)\right)

(:data:`FREE_ENERGY`, equal to :math:`-\mathcal{L}`; the identity is
:func:`unigen.algebra.identities.elbo_decomposition`). Both steps maximize the same objective,
the bound averaged over the data (:data:`ELBO`), with the joint written as the product
:math:`p_\theta(z) p_\theta(x \mid z)`:

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z) - \log q_\phi(z \mid x)\right]\right]

- the E-step (phase ``"e_step"``) in :math:`\phi` with :math:`\theta` fixed; when the family is
  rich enough its optimum is the posterior, :math:`q^*_\phi(z \mid x) \propto p_\theta(x, z)`.
  It is declared with the learning signal's :math:`\log q_\phi` held constant (:data:`E_STEP`,
  same value and same exact φ-gradient; see below):

  .. math::
     \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z) - \mathrm{sg}\left[\log q_\phi(z \mid x)\right]\right]\right]

- the M-step (phase ``"m_step"``) in :math:`\theta` with :math:`\phi` fixed, on :data:`ELBO`.

:data:`DECLARATION` records it for printing, the Figure-5 table (which does not cover
variational EM) and :func:`unigen.algebra.direction`.

Training (:func:`variational_em`), for a sigmoid belief net :math:`p_\theta` and a recognition
SBN :math:`q_\phi` (a Helmholtz machine, :mod:`unigen.models.helmholtz`; the model's hidden
vector ``z`` is :math:`z`). Both phases are compiled from :data:`DECLARATION` by
:func:`unigen.algebra.algorithm`. The joint is declared as the product the model is,
:math:`p_\theta(x, z) = p_\theta(z) p_\theta(x \mid z)` (:func:`unigen.algebra.compile` binds
distributions over one variable each, and a product's log-density is the sum of its
factors'), so the declaration prints :math:`\log p_\theta(z) p_\theta(x \mid z)`.

- ``estimator="score"``: the E-step gradient is the score-function (log-derivative) estimator of
  §2.2 with the learning signal :math:`l(x, z) = \log p_\theta(x, z) - \log q_\phi(z \mid x)`,
  :math:`\nabla_\phi \mathcal{L} = \mathbb{E}_{q_\phi}[(l(x, z) - b)
  \nabla_\phi \log q_\phi(z \mid x)]` for any :math:`b` independent of z. The term
  :math:`-\mathbb{E}_q[\nabla_\phi \log q_\phi] = 0` of the exact gradient is not estimated
  (its estimate only adds variance), which is what the E-step's declared objective says: the
  learning signal's :math:`\log q_\phi` is held constant, :math:`\mathrm{sg}[\log q_\phi(z
  \mid x)]`. That objective has the bound's value and the bound's exact φ-gradient
  (:math:`\nabla_\phi \mathbb{E}_{q_\phi}[\mathrm{sg}[\log q_\phi]] = \mathbb{E}_{q_\phi}[
  \log q_\phi \nabla_\phi \log q_\phi] = \nabla_\phi \mathbb{E}_{q_\phi}[\log q_\phi]`), so
  it is the same E-step, stated as computed. The expectation over :math:`q_\phi` is
  estimated by the estimator object :class:`unigen.algebra.estimator.ScoreFunction`, with the
  baseline :math:`b` (:data:`BASELINES`):

  * ``"none"``: :math:`b = 0`.
  * ``"mean"``: the mean learning signal of the *other* draws of the batch (leave-one-out, the
    estimator sums over the batch with ``jax.lax.psum`` on the data expectation's axis).
    This is the choice made for the issue's "moving average": a batch mean needs no state, so
    training stays a pure function of the parameters (resume is exact, the trainer's parameter
    groups are all optimized), and leaving the draw out keeps the estimator unbiased; an
    exponential moving average over steps would need a non-optimized state the trainer does not
    carry.
  * ``"nvil"`` (Mnih & Gregor 2014): an input-dependent baseline
    :math:`b_\psi(x)` (a one-hidden-layer tanh MLP, kept in :math:`\phi` under
    ``"nvil_baseline"``, trained by regressing :math:`l - c` on x in the same E-step: the
    estimator's auxiliary loss ``"baseline_loss"``, added to the phase's loss and reported as a
    metric) plus the leave-one-out batch mean :math:`c` of :math:`l - b_\psi(x)`; with
    ``normalize=True`` the centred signal is divided by :math:`\max(1, \hat\sigma)`,
    :math:`\hat\sigma` the batch standard deviation of the centred signal (NVIL's running
    estimate, made a batch statistic for the reason above; it rescales the gradient, which
    Adam's normalization absorbs).

  The M-step ascends the bound in θ at draws of :math:`q_\phi` (the ``"draw"`` estimator: no
  score term, :math:`q_\phi` has no θ), gradient :math:`\mathbb{E}_{q_\phi}[\nabla_\theta
  \log p_\theta(x, z)]`.
- ``estimator="muprop"|"arm"|"disarm"|"rebar"|"relax"``: the E-step with that estimator object
  of :mod:`unigen.algebra.discrete_estimators` on :math:`q_\phi` (one hidden layer). REBAR's
  :math:`(\eta, \log\lambda)` and RELAX's control variate live in φ (``phi["rebar"]``,
  ``phi["relax"]``, trained in the E-step by their auxiliary variance loss). REBAR and RELAX
  differentiate the body in z, so their E-step is declared on :data:`ELBO` itself
  (:data:`PATHWISE_EM`): with :math:`\mathrm{sg}[\log q_\phi]` jax's derivative of the body
  misses that term and their control variate is biased (``compile`` refuses it).
- ``estimator="vimco"``: both steps ascend the K-sample bound (:data:`BOUND_EM`), the E-step
  with VIMCO (Mnih & Rezende 2016), the M-step with the weighted θ-gradient.
- ``estimator="exact"``: the classic EM of §2.1. The E-step is exact,
  :math:`q_*(z \mid x) \propto \exp[\log p_\theta(x, z)]` at the current θ, by enumerating the at
  most :math:`2^{12}` hidden configurations, so it has no parameters; the M-step (the only phase,
  compiled from :data:`CLASSIC_EM`) ascends

  .. math::
     \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_*(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z)\right]\right]

  with :math:`q_*` held fixed (the distribution :math:`q_*(z \mid x)` has no parameter group:
  it is bound to a :class:`unigen.distributions.BinaryVectors` whose log-probabilities are the
  posterior's under ``stop_gradient``, and the compiler sums over its states exactly). Its
  gradient at the current θ is :math:`\nabla_\theta \log p_\theta(x)`. With small enough steps
  the log-likelihood never decreases (generalized EM). The metric ``"log_likelihood"`` is the
  bound at :math:`q_*`, :math:`\mathbb{E}_{q_*}[\log p_\theta(x, z) - \log q_*(z \mid x)] =
  \log p_\theta(x)`, exactly (to float rounding).
"""

from __future__ import annotations

from typing import Any

import jax

from unigen.algebra.assembly import algorithm
from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.discrete_estimators import ARM, VIMCO, DisARM, MuProp, Rebar, Relax
from unigen.algebra.estimator import ScoreFunction
from unigen.algebra.expr import KL, E, dist, importance_weighted_bound, log, sg
from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Params, Phase, PRNGKey
from unigen.distributions import BinaryVectors
from unigen.errors import ConfigError
from unigen.estimators import rebar_init, relax_init
from unigen.models import sbn
from unigen.models.helmholtz import HelmholtzMachine
from unigen.models.sbn import SigmoidBeliefNet, latent_states
from unigen.models.vae import positive_int
from unigen.models.values import bernoulli_entries
from unigen.nets import mlp

__all__ = [
    "BASELINES",
    "BOUND_EM",
    "CLASSIC_EM",
    "CLASSIC_M_STEP",
    "DECLARATION",
    "ELBO",
    "DISCRETE_ESTIMATORS",
    "E_STEP",
    "ESTIMATORS",
    "PATHWISE_EM",
    "FREE_ENERGY",
    "baseline_network",
    "bindings",
    "declaration_for",
    "e_step_phase",
    "exact_m_step_phase",
    "init_params",
    "m_step_phase",
    "variational_em",
]

DISCRETE_ESTIMATORS = {
    "muprop": MuProp,
    "arm": ARM,
    "disarm": DisARM,
    "rebar": lambda: Rebar(lambda params: params["phi"]["rebar"]),
    "relax": lambda: Relax(lambda params: params["phi"]["relax"]),
}
"""E-step estimators for a factorized Bernoulli q_φ (one hidden layer) beside the score
function (:mod:`unigen.algebra.discrete_estimators`; no baseline). REBAR's (η, log λ) and
RELAX's control variate live in φ (``phi["rebar"]``, ``phi["relax"]``) and are trained in the
E-step by their auxiliary variance loss."""

ESTIMATORS = ("score", "exact", *DISCRETE_ESTIMATORS, "vimco")
"""How the E-step is done: the score-function estimator on q_φ, exactly by enumeration, one
of :data:`DISCRETE_ESTIMATORS`, or ``"vimco"``: both steps on the K-sample bound
(:data:`BOUND_EM`), the E-step by VIMCO."""

BASELINES = ("none", "mean", "nvil")
"""Baselines of the score-function E-step (see the module docstring)."""

p_data = dist("p_data", over="x")
prior = dist("p", over="z", params="theta")  # p_θ(z), the SBN's learned prior
generative = dist("p", over="x", given="z", params="theta")  # p_θ(x|z)
joint = prior * generative  # p_θ(z) p_θ(x|z) = p_θ(x, z)
marginal = dist("p", over="x", params="theta")  # p_θ(x)
posterior = dist("p", over="z", given="x", params="theta")  # p_θ(z|x)
exact_posterior = dist("q_*", over="z", given="x")  # q_*(z|x) = p_θ(z|x) at the current θ, fixed
variational = dist("q", over="z", given="x", params="phi")  # q_φ(z|x)

ELBO = E(p_data, E(variational, log(joint) - log(variational)))
"""The bound :math:`\\mathcal{L}(\\theta, \\phi; x)` averaged over the data (the M-step's)."""

E_STEP = E(p_data, E(variational, log(joint) - sg(log(variational))))
"""The E-step's objective: :data:`ELBO` with the learning signal's :math:`\\log q_\\phi` held
constant (the same value and exact φ-gradient; the score-function E-step estimates it)."""

FREE_ENERGY = -log(marginal) + KL(variational, posterior)
"""The free energy :math:`F(\\theta, \\phi; x)` of one example (not computable: it needs
:math:`\\log p_\\theta(x)`); it equals :math:`-\\mathcal{L}(\\theta, \\phi; x)`."""

DECLARATION = Declaration(
    name="variational-em",
    title="Variational EM",
    section="§2.1",
    phases=(
        PhaseObjective("e_step", "phi", E_STEP, "max"),
        PhaseObjective("m_step", "theta", ELBO, "max"),
    ),
    figure5=None,
)


CLASSIC_M_STEP = E(p_data, E(exact_posterior, log(joint)))
"""Classic EM's M-step objective: the expected complete-data log-likelihood under the exact
posterior of the current θ, held fixed."""

LOG_LIKELIHOOD = E(p_data, E(exact_posterior, log(joint) - log(exact_posterior)))
r"""The bound at the exact posterior: :math:`\log p_\theta(x)` averaged over the data."""

CLASSIC_EM = DECLARATION._replace(
    phases=(PhaseObjective("m_step", "theta", CLASSIC_M_STEP, "max"),))
"""What ``variational_em(model, estimator="exact")`` compiles: one phase, the M-step at the exact
E-step."""


PATHWISE_EM = DECLARATION._replace(phases=(
    PhaseObjective("e_step", "phi", ELBO, "max"),
    PhaseObjective("m_step", "theta", ELBO, "max"),
))
r"""What REBAR and RELAX compile: the E-step on :data:`ELBO` itself. They differentiate the body
in z (their control variate is the body at relaxed z), so its :math:`\log q_\phi` must not be
held constant as in :data:`E_STEP` (jax's derivative would miss it and the gradient be biased);
the value is the same, and the extra :math:`-\nabla_\phi \log q_\phi(z \mid x)` at the draws
has mean zero."""


def _bound(k: int | None = None) -> E:
    r"""The K-sample bound averaged over the data, :math:`\mathbb{E}_{p_{data}(x)}[\mathbb{E}_{z_{1:K}
    \sim q_\phi}[\log \frac1K \sum_k p_\theta(x, z_k) / q_\phi(z_k \mid x)]]` (K = ``k``)."""
    return E(p_data, importance_weighted_bound(joint, variational, k))


BOUND_EM = DECLARATION._replace(phases=(
    PhaseObjective("e_step", "phi", _bound(), "max"),
    PhaseObjective("m_step", "theta", _bound(), "max"),
))
r"""``estimator="vimco"``: both steps ascend the K-sample bound (Mnih & Rezende 2016 train an SBN
so), the E-step with VIMCO on :math:`q_\phi`, the M-step with the weighted gradient
:math:`\sum_k \tilde w_k \nabla_\theta \log p_\theta(x, z_k)`; K = 1 is the ELBO."""


def declaration_for(estimator: str = "score", k: int | None = None) -> Declaration:
    r"""The declaration :func:`variational_em` compiles with ``estimator`` (what ``unigen algebra
    show vem --estimator NAME`` prints): :data:`DECLARATION` for ``"score"``, ``"muprop"``,
    ``"arm"`` and ``"disarm"`` (the E-step on :data:`E_STEP`), :data:`PATHWISE_EM` for
    ``"rebar"`` and ``"relax"``, :data:`BOUND_EM` with K = ``k`` for ``"vimco"`` (K unnamed when
    ``k`` is None) and :data:`CLASSIC_EM` for ``"exact"``.

    Raises:
      ConfigError: an unknown estimator.
    """
    _check(estimator, "none")
    if estimator == "exact":
        return CLASSIC_EM
    if estimator == "vimco":
        objective = _bound(k)
        return BOUND_EM._replace(phases=tuple(p._replace(objective=objective) for p in BOUND_EM.phases))
    return PATHWISE_EM if estimator in ("rebar", "relax") else DECLARATION


def _check(estimator: str, baseline: str) -> None:
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator: expected one of {list(ESTIMATORS)}, got {estimator!r}")
    if baseline not in BASELINES:
        raise ConfigError(f"baseline: expected one of {list(BASELINES)}, got {baseline!r}")


def baseline_network(model: HelmholtzMachine, hidden: int = 100):
    r"""NVIL's input-dependent baseline :math:`b_\psi(x)`: an MLP ``[D, hidden, 1]`` (tanh)."""
    return mlp([model.data_dim, positive_int("baseline_hidden", hidden), 1], "tanh")


def init_params(
    model: HelmholtzMachine | SigmoidBeliefNet,
    key: PRNGKey,
    *,
    estimator: str = "score",
    baseline: str = "none",
    baseline_hidden: int = 100,
) -> dict[str, Params]:
    """``{"theta", "phi"}`` (score; ``phi["nvil_baseline"]`` with ``baseline="nvil"``,
    ``phi["rebar"]`` / ``phi["relax"]`` with those estimators) or ``{"theta"}`` (exact: the
    E-step has no parameters)."""
    _check(estimator, baseline)
    key_theta, key_phi, key_baseline = jax.random.split(key, 3)
    params = {"theta": model.joint.init(key_theta)}
    if estimator != "exact":
        params["phi"] = dict(model.inference.init(key_phi))
        dtype = params["phi"]["biases"][0].dtype
        if estimator == "rebar":
            params["phi"]["rebar"] = rebar_init(dtype)
        if estimator == "relax":
            params["phi"]["relax"] = relax_init(key_baseline, model.latent_dim, dtype=dtype)
        if baseline == "nvil":
            params["phi"]["nvil_baseline"] = baseline_network(model, baseline_hidden).init(
                key_baseline
            )
    return params


def bindings(model: HelmholtzMachine) -> dict:
    r"""What :math:`p_\theta(z)`, :math:`p_\theta(x \mid z)` and :math:`q_\phi(z \mid x)` are for
    ``model`` (for :func:`unigen.algebra.compile`); ``p_data(x)`` is the batch."""
    return {
        prior: lambda params, given: model.prior(params["theta"]),
        generative: lambda params, given: model.decoder_distribution(params["theta"], given["z"]),
        variational: lambda params, given: model.encoder_distribution(params["phi"], given["x"]),
    }


def _e_step_estimator(model: HelmholtzMachine, baseline: str, normalize: bool,
                      baseline_hidden: int) -> ScoreFunction:
    """The E-step's estimator of the expectation over q_φ (see the module docstring)."""
    if baseline != "nvil":
        return ScoreFunction(baseline)
    network = baseline_network(model, baseline_hidden)

    def learned(params: Params, given: dict[str, Any]) -> jax.Array:
        return network.apply(params["phi"]["nvil_baseline"], given["x"])[0]

    return ScoreFunction("nvil", learned=learned, normalize=normalize)


def e_step_phase(
    model: HelmholtzMachine,
    *,
    baseline: str = "none",
    n_samples: int = 1,
    normalize: bool = True,
    baseline_hidden: int = 100,
) -> Phase:
    r"""The E-step by the score-function estimator: ascend the bound in φ.

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z) - \mathrm{sg}\left[\log q_\phi(z \mid x)\right]\right]\right]

    The phase ``"e_step"`` of :func:`variational_em` (compiled from :data:`DECLARATION`). On
    ``{"x": [B, D]}`` with S draws per example (example b uses ``split(key, B)[b]``, its draw s
    ``split(·, S)[s]``), the loss is minus the batch mean of the learning signal
    :math:`l = \log p_\theta(x, z) - \log q_\phi(z \mid x)` (plus, for NVIL, the baseline's
    squared error), and its φ-gradient is minus the estimator :math:`\frac{1}{BS}\sum_{b,s}
    a_{b,s} \nabla_\phi \log q_\phi(z_{b,s} \mid x_b)`, :math:`a = l - b` the centred signal
    (see the module docstring). Metrics ``{"loss", "elbo"}`` (``"elbo"``: the batch mean of l),
    and ``"baseline_loss"`` for NVIL.

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`.
      baseline: ``"none"``, ``"mean"`` or ``"nvil"``.
      n_samples: S, draws of z per example.
      normalize: NVIL only: divide the centred signal by :math:`\max(1, \hat\sigma)`.
      baseline_hidden: NVIL only: the hidden width of :math:`b_\psi(x)`.
    """
    return variational_em(model, baseline=baseline, n_samples=n_samples, normalize=normalize,
                          baseline_hidden=baseline_hidden).phases[0]


def m_step_phase(model: HelmholtzMachine, *, n_samples: int = 1) -> Phase:
    r"""The M-step at draws of :math:`q_\phi`: ascend the bound in θ.

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z) - \log q_\phi(z \mid x)\right]\right]

    The phase ``"m_step"`` of :func:`variational_em`. Loss: minus the batch mean of
    :math:`\log p_\theta(x_b, z_{b,s}) - \log q_\phi(z_{b,s} \mid x_b)`,
    :math:`z_{b,s} \sim q_\phi(z \mid x_b)`, whose θ-gradient is that of
    :math:`-\frac{1}{BS}\sum_{b,s} \log p_\theta(x_b, z_{b,s})`; metrics ``{"loss", "elbo"}``.
    """
    return variational_em(model, n_samples=n_samples).phases[1]


def exact_m_step_phase(model: HelmholtzMachine | SigmoidBeliefNet) -> Phase:
    r"""Classic EM's step: the exact E-step :math:`q_*(z \mid x) \propto p_\theta(x, z)` by
    enumeration, then an M-step in θ on :math:`\sum_z q_*(z \mid x) \log p_\theta(x, z)`.

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_*(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z)\right]\right]

    The phase of ``variational_em(model, estimator="exact")``, compiled from
    :data:`CLASSIC_EM`. Loss: the batch mean of :math:`-\sum_z q_*(z \mid x) \log p_\theta(x, z)`
    with :math:`q_*` constant (its θ-gradient is :math:`-\nabla_\theta \log p_\theta(x)`);
    metrics ``{"loss", "log_likelihood"}``, the exact batch mean of :math:`\log p_\theta(x)`
    before the step.

    Raises:
      ConfigError: the model has more than :data:`unigen.models.sbn.MAX_LATENT_STATES` hidden
        configurations.
    """
    return variational_em(model, estimator="exact").phases[0]


def _exact_bindings(model: HelmholtzMachine | SigmoidBeliefNet) -> dict:
    r"""The generative model's bindings and :math:`q_*(z \mid x)`: the exact posterior of the
    current θ over the :math:`2^H` hidden states, held constant."""

    def posterior_now(params: Params, given: dict[str, Any]) -> BinaryVectors:
        _, log_posterior = sbn.posterior(model, params["theta"], given["x"])
        return BinaryVectors(jax.lax.stop_gradient(log_posterior))

    return {
        prior: lambda params, given: model.prior(params["theta"]),
        generative: lambda params, given: model.decoder_distribution(params["theta"], given["z"]),
        exact_posterior: posterior_now,
    }


def variational_em(
    model: HelmholtzMachine | SigmoidBeliefNet,
    *,
    estimator: str = "score",
    baseline: str = "none",
    n_samples: int = 1,
    normalize: bool = True,
    baseline_hidden: int = 100,
    k: int = 5,
) -> Algorithm:
    r"""Variational EM (§2.1): the E-step in φ, then the M-step in θ, alternating.

    .. math::
       \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(z) p_\theta(x \mid z) - \log q_\phi(z \mid x)\right]\right]

    With ``estimator="score"`` both phases are compiled from :data:`DECLARATION` by
    :func:`unigen.algebra.algorithm`: the E-step with the estimator object
    :class:`~unigen.algebra.estimator.ScoreFunction` (``baseline``, ``normalize``) on
    :math:`q_\phi`, the M-step with plain draws of :math:`q_\phi`.

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine`; with ``estimator="exact"``
        a bare :class:`~unigen.models.sbn.SigmoidBeliefNet` works too.
      estimator: ``"score"`` (phases ``e_step`` on φ and ``m_step`` on θ), ``"exact"``
        (classic EM: one phase ``m_step`` on θ, the E-step exact inside it), ``"muprop"``,
        ``"arm"``, ``"disarm"``, ``"rebar"``, ``"relax"``: the phases of ``"score"`` with that
        estimator object on :math:`q_\phi` in the E-step (:data:`DISCRETE_ESTIMATORS`; REBAR
        and RELAX on :data:`PATHWISE_EM`; one hidden layer: a deeper :math:`q_\phi` is not a
        factorized Bernoulli and is refused at the first step), or ``"vimco"``: both phases on
        the ``k``-sample bound (:data:`BOUND_EM`), VIMCO in the E-step.
      baseline: the E-step's baseline, ``"none"``, ``"mean"`` or ``"nvil"`` (score only).
      n_samples: draws of z per example in each phase (score only).
      normalize: NVIL's variance normalization (``baseline="nvil"`` only).
      baseline_hidden: the hidden width of NVIL's baseline network.
      k: K ≥ 2, the draws inside the bound (``"vimco"`` only).

    Returns:
      An :class:`~unigen.core.Algorithm` whose ``objective`` is :func:`declaration_for`
      ``(estimator, k)``: :data:`DECLARATION` (``"score"``), :data:`CLASSIC_EM` (``"exact"``), ...

    Raises:
      ConfigError: unknown estimator or baseline, a baseline with ``estimator="exact"``, a
        non-positive ``n_samples``, or too many hidden configurations for ``"exact"``.
    """
    _check(estimator, baseline)
    n_samples = positive_int("n_samples", n_samples)
    baseline_hidden = positive_int("baseline_hidden", baseline_hidden)
    k = positive_int("k", k)

    def init(key: PRNGKey) -> dict[str, Params]:
        return init_params(
            model, key, estimator=estimator, baseline=baseline, baseline_hidden=baseline_hidden
        )

    if estimator == "exact":
        if baseline != "none":
            raise ConfigError(
                f"baseline: expected 'none' with estimator='exact' (the E-step is exact, no "
                f"estimator to baseline), got {baseline!r}"
            )
        latent_states(model.latent_dim)  # raises now, not at the first step, if too many states
        return algorithm(
            declaration_for(estimator),
            _exact_bindings(model),
            init,
            estimator={exact_posterior: "enumerate"},
            metrics={"log_likelihood": LOG_LIKELIHOOD},
            prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
        )._replace(bernoulli=bernoulli_entries(model))
    if estimator != "score" and baseline != "none":
        raise ConfigError(f"baseline: expected 'none' with estimator={estimator!r} (a baseline is for "
                          f"'score'), got {baseline!r}")
    if estimator == "vimco":
        if k < 2:
            raise ConfigError(f"k: expected at least 2 with estimator='vimco' (each draw's baseline is made "
                              f"of the others), got {k}")
        declaration = declaration_for(estimator, k)
        objective = declaration.phases[0].objective
        return algorithm(
            declaration,
            bindings(model),
            init,
            estimator={"e_step": {variational: VIMCO()}, "m_step": {variational: "auto"}},
            metrics={"e_step": {"bound": objective}, "m_step": {"bound": objective}},
            prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
        )._replace(bernoulli=bernoulli_entries(model))
    e_step = (_e_step_estimator(model, baseline, normalize, baseline_hidden) if estimator == "score"
              else DISCRETE_ESTIMATORS[estimator]())
    declaration = declaration_for(estimator)
    return algorithm(
        declaration,
        bindings(model),
        init,
        estimator={
            "e_step": {variational: e_step},
            "m_step": {variational: "draw"},
        },
        n_samples=n_samples,
        metrics={"e_step": {"elbo": declaration.phases[0].objective}, "m_step": {"elbo": ELBO}},
        prepare=lambda batch: {"x": batch_data(batch, model.data_dim)},
    )._replace(bernoulli=bernoulli_entries(model))
