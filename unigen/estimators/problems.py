r"""The problems of the variance study, each with its exact references.

A :class:`Problem` is :math:`\nabla_\lambda \mathbb{E}_{q_\lambda}[f]` at given :math:`\lambda`:

* ``gaussian-square`` / ``gaussian-exp`` / ``gaussian-cos`` — :math:`x \sim \mathcal{N}(\mu,\sigma^2)`,
  :math:`f = (x-k)^2`, :math:`e^{-k x^2}`, :math:`\cos(k x)` (Mohamed et al. 2020, Figures 2–3;
  μ = σ = 1 there). Parameters ``mu``, ``sigma``. References by Gauss–Hermite quadrature.
* ``gaussian-sum-squares`` — :math:`x \sim \mathcal{N}(\mu \mathbf 1, \sigma^2 I_D)`,
  :math:`f = \sum_d x_d^2`. Parameters ``mu``, ``sigma`` (vectors of D equal entries; rows
  average over the exchangeable coordinates). References by quadrature in one coordinate with the
  other D−1 coordinates' :math:`R = \sum_{e \ne d} x_e^2` replaced by a two-point variable of the
  same mean and variance: every expectation the formulas need is a polynomial of degree ≤ 2 in R,
  so this is exact.
* ``bernoulli`` — D independent bits :math:`b_d \sim \mathrm{Bernoulli}(\sigma(l_d))`,
  :math:`f = \sum_d (b_d - k)^2` (the REBAR/RELAX toy, k = 0.45, for D bits). Parameter
  ``logits``. References by enumeration of the :math:`2^D` outcomes.
* ``categorical`` — one K-way categorical draw as a one-hot vector, logits
  :math:`l_c = \mu\, c/(K-1)`, :math:`f(y) = \sum_c y_c (c/(K-1) - k)^2`. Parameter ``logits``.
  References by enumeration of the K outcomes.
* ``categorical-vae`` — the ELBO gradient of a tiny categorical VAE (n one-hot categorical latents
  of K categories, a uniform prior, a linear Bernoulli decoder; Jang et al. 2017's model) with
  respect to its recognition logits φ ``[n, K]`` at one example x, built as ``sbn`` is below.
  References by enumeration of the :math:`K^n` states (:func:`categorical_vae_problem`).
* ``vae`` — the ELBO gradient of a small VAE (:func:`unigen.models.vae.vae_model`) with respect to
  its encoder parameters η, at one example x and at given parameters ("at a checkpoint" = the
  ``{"theta", "eta"}`` parameters of a trained run, e.g. loaded by ``unigen bench variance
  --problem vae --checkpoint DIR``; default: the initial parameters of ``seed``). With
  :math:`f(z) = \log p_\theta(x, z) - \log q_{\eta_0}(z \mid x)` (η₀ fixed at the evaluation point),
  :math:`\nabla_\eta \mathbb{E}_{q_\eta}[f]` at η = η₀ *is* the ELBO gradient, because
  :math:`\mathbb{E}_q[\nabla_\eta \log q_\eta] = 0`. The exact gradient comes from
  tensor-product Gauss–Hermite quadrature of the reconstruction term plus the analytic KL
  (latent_dim ≤ 3).
* ``sbn`` — the ELBO gradient of a small Helmholtz machine (:func:`unigen.models.helmholtz.helmholtz_machine`:
  a sigmoid belief net :math:`p_\theta(x, h)` with one layer of H ≤ 12 binary hidden units and a
  factorized Bernoulli recognition model :math:`q_\phi(h \mid x)`) with respect to the
  recognition parameters φ, at one example x. The same construction as ``vae``:
  :math:`f(h) = \log p_\theta(x, h) - \log q_{\phi_0}(h \mid x)`, and
  :math:`\nabla_\phi \mathbb{E}_{q_\phi}[f]` at φ = φ₀ is the ELBO gradient. The draws are
  discrete, so ``pathwise`` is refused; the score-function estimators, ``leave-one-out``, the
  discrete-latent estimators (MuProp, VIMCO, REBAR, RELAX, ARM, DisARM) and the (biased)
  ``concrete`` and ``straight-through`` relaxations apply. References by enumeration of the :math:`2^H` hidden
  configurations (gradient, and the variances of ``score``, ``score-control-variate`` and
  ``leave-one-out``).
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from unigen.distributions import MAX_ONE_HOT_STATES, one_hot_categorical
from unigen.errors import ConfigError, describe
from unigen.estimators.exact import Reference, gauss_hermite, reference_from_nodes

__all__ = [
    "GAUSSIAN_FUNCTIONS",
    "PROBLEMS",
    "Problem",
    "bernoulli_problem",
    "categorical_problem",
    "categorical_vae_problem",
    "gaussian_problem",
    "make_problem",
    "sbn_problem",
    "sum_squares_problem",
    "vae_problem",
]

QUADRATURE_ORDER = 200


class Problem(NamedTuple):
    r"""One gradient-estimation problem, :math:`\nabla_\lambda \mathbb{E}_{q_\lambda}[f]` at ``params``.

    Attributes:
      name: the problem's name (``"gaussian-cos"``, ...).
      distribution: ``distribution(params) -> numpyro Distribution``, :math:`q_\lambda`.
      params: :math:`\lambda`, ``{name: array}`` (or any pytree for ``vae``).
      f: ``f(x) -> scalar``, of one draw.
      settings: the numbers that define the problem, for reports (JSON-serializable).
      reference: the exact gradient and variances, or None when unknown.
      discrete: the draws are discrete (no pathwise estimator; relaxations apply).
      baseline_input: the input u of a learned baseline :math:`b_\psi(u)`.
      rows_per_coordinate: report one row per coordinate (``logits[2]``) instead of the average
        over a parameter's coordinates (for parameters whose coordinates are not exchangeable).
    """

    name: str
    distribution: Callable[[Any], Any]
    params: Any
    f: Callable[[jax.Array], jax.Array]
    settings: dict[str, Any]
    reference: Reference | None
    discrete: bool
    baseline_input: jax.Array
    rows_per_coordinate: bool = False


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {describe(value)}")
    if positive and not value > 0:
        raise ConfigError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


def _dim(value: object, maximum: int | None = None, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"dim: expected a positive integer, got {describe(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"dim: expected at most {maximum} ({why}), got {value}")
    return int(value)


def _square(k: float) -> Callable[[jax.Array], jax.Array]:
    return lambda x: (x - k) ** 2


def _exp(k: float) -> Callable[[jax.Array], jax.Array]:
    return lambda x: jnp.exp(-k * x * x)


def _cos(k: float) -> Callable[[jax.Array], jax.Array]:
    return lambda x: jnp.cos(k * x)


GAUSSIAN_FUNCTIONS = {"square": (_square, "(x - k)^2"), "exp": (_exp, "exp(-k x^2)"), "cos": (_cos, "cos(k x)")}


def _normal(params: dict[str, jax.Array]) -> Any:
    return dist.Normal(params["mu"], params["sigma"])


def _on_nodes(function: Callable[[jax.Array], jax.Array], points: np.ndarray) -> np.ndarray:
    """``function`` of each point in float64 (f is written with Python-float constants)."""
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(function)(jnp.asarray(points, jnp.float64)), np.float64)


def _gaussian_reference(f: Callable, mu: float, sigma: float, order: int = QUADRATURE_ORDER) -> Reference:
    eps, weights = gauss_hermite(order)
    x = mu + sigma * eps
    values = _on_nodes(f, x)
    first = _on_nodes(jax.grad(f), x)
    at_mean = _on_nodes(lambda a: jnp.stack([f(a), jax.grad(f)(a), jax.grad(jax.grad(f))(a)]), np.array([mu]))[0]
    taylor = at_mean[0] + at_mean[1] * (x - mu) + 0.5 * at_mean[2] * (x - mu) ** 2
    scores = {"mu": (eps / sigma)[:, None], "sigma": ((eps * eps - 1.0) / sigma)[:, None]}
    pathwise = {"mu": first[:, None], "sigma": (first * eps)[:, None]}
    return reference_from_nodes(weights, values, scores, pathwise=pathwise, residual=values - taylor,
                                shapes={"mu": (), "sigma": ()})


def gaussian_problem(function: str, *, mu: float = 1.0, sigma: float = 1.0, k: float = 1.0) -> Problem:
    r"""``gaussian-{square,exp,cos}``: :math:`\nabla_{\mu,\sigma} \mathbb{E}_{\mathcal{N}(\mu,\sigma^2)}[f]`.

    Args:
      function: ``"square"`` (:math:`(x-k)^2`), ``"exp"`` (:math:`e^{-kx^2}`) or ``"cos"``
        (:math:`\cos kx`).
      mu, sigma, k: the numbers of the problem (σ > 0).
    """
    if function not in GAUSSIAN_FUNCTIONS:
        raise ConfigError(f"function: expected one of {sorted(GAUSSIAN_FUNCTIONS)}, got {function!r}")
    mu, sigma, k = _number("mu", mu), _number("sigma", sigma, positive=True), _number("k", k)
    make, formula = GAUSSIAN_FUNCTIONS[function]
    f = make(k)
    params = {"mu": jnp.asarray(mu, jnp.float32), "sigma": jnp.asarray(sigma, jnp.float32)}
    return Problem(
        name=f"gaussian-{function}",
        distribution=_normal,
        params=params,
        f=f,
        settings={"f": formula, "mu": mu, "sigma": sigma, "k": k},
        reference=_gaussian_reference(f, mu, sigma),
        discrete=False,
        baseline_input=jnp.stack([params["mu"], params["sigma"]]),
    )


def _diagonal_normal(params: dict[str, jax.Array]) -> Any:
    return dist.Normal(params["mu"], params["sigma"]).to_event(1)


def _sum_squares(x: jax.Array) -> jax.Array:
    return jnp.sum(x * x)


def sum_squares_problem(dim: int, *, mu: float = 0.0, sigma: float = 1.0, order: int = QUADRATURE_ORDER) -> Problem:
    r"""``gaussian-sum-squares``: :math:`f = \sum_d x_d^2`, :math:`x \sim \mathcal{N}(\mu\mathbf 1, \sigma^2 I_D)`."""
    dim = _dim(dim)
    mu, sigma = _number("mu", mu), _number("sigma", sigma, positive=True)
    params = {"mu": jnp.full((dim,), mu, jnp.float32), "sigma": jnp.full((dim,), sigma, jnp.float32)}
    # One coordinate x0 by quadrature; the rest R = sum_{e>0} x_e^2 as two points of R's mean and
    # variance (each x_e^2 has mean mu^2 + sigma^2 and variance 2 sigma^4 + 4 mu^2 sigma^2).
    rest_mean = (dim - 1) * (mu**2 + sigma**2)
    rest_sd = np.sqrt((dim - 1) * (2 * sigma**4 + 4 * mu**2 * sigma**2))
    eps, w = gauss_hermite(order)
    eps = np.repeat(eps, 2)
    weights = np.repeat(w, 2) / 2.0
    rest = np.tile([rest_mean - rest_sd, rest_mean + rest_sd], order)
    x0 = mu + sigma * eps
    values = x0 * x0 + rest
    scores = {"mu": (eps / sigma)[:, None], "sigma": ((eps * eps - 1.0) / sigma)[:, None]}
    pathwise = {"mu": (2 * x0)[:, None], "sigma": (2 * x0 * eps)[:, None]}
    # f is quadratic: its second-order expansion is f itself, so the delta-method residual is 0.
    one = reference_from_nodes(weights, values, scores, pathwise=pathwise, residual=np.zeros_like(values))

    def variance(estimator: str, n_samples: int) -> dict[str, np.ndarray] | None:
        out = one.variance(estimator, n_samples)
        return None if out is None else {name: np.full((dim,), v[0]) for name, v in out.items()}

    reference = Reference({name: np.full((dim,), g[0]) for name, g in one.gradient.items()}, variance)
    return Problem(
        name="gaussian-sum-squares",
        distribution=_diagonal_normal,
        params=params,
        f=_sum_squares,
        settings={"f": "sum_d x_d^2", "mu": mu, "sigma": sigma, "dim": dim},
        reference=reference,
        discrete=False,
        baseline_input=jnp.stack([params["mu"][0], params["sigma"][0]]),
    )


def _bernoulli(params: dict[str, jax.Array]) -> Any:
    return _SmoothBernoulliLogits(params["logits"]).to_event(1)


def _smooth_bernoulli_class() -> type:
    from unigen.distributions import BernoulliLogits

    class SmoothBernoulliLogits(BernoulliLogits):
        r"""Bernoulli with :math:`\log p(b) = b \log\sigma(l) + (1-b)\log\sigma(-l)`.

        numpyro's formula (``max(l, 0) - l b + log1p(exp(-|l|))``) has kinks at l = 0 where
        autodiff returns the score b instead of b - 1/2; the score-function estimators need the
        score, so this family uses the smooth form (the same values).
        """

        def log_prob(self, value: Any) -> jax.Array:
            value = jnp.asarray(value, self.logits.dtype)
            return value * jax.nn.log_sigmoid(self.logits) + (1 - value) * jax.nn.log_sigmoid(-self.logits)

    return SmoothBernoulliLogits


_SmoothBernoulliLogits = _smooth_bernoulli_class()


def bernoulli_problem(dim: int = 1, *, logit: float = 0.0, k: float = 0.45) -> Problem:
    r"""``bernoulli``: :math:`f = \sum_d (b_d - k)^2`, :math:`b_d \sim \mathrm{Bernoulli}(\sigma(l))`,
    D ≤ 12 bits (exact references enumerate the :math:`2^D` outcomes)."""
    dim = _dim(dim, 12, "the exact references enumerate 2^dim outcomes")
    logit, k = _number("logit", logit), _number("k", k)
    params = {"logits": jnp.full((dim,), logit, jnp.float32)}

    def f(b: jax.Array) -> jax.Array:
        return jnp.sum((b - k) ** 2)

    support = np.array(list(itertools.product([0.0, 1.0], repeat=dim)), np.float64)
    p = 1.0 / (1.0 + np.exp(-logit))
    weights = np.prod(np.where(support > 0, p, 1.0 - p), axis=1)
    values = _on_nodes(f, support)
    mean = np.full((dim,), p)
    with jax.enable_x64(True):
        anchor = jnp.asarray(mean)
        value, gradient, hessian = f(anchor), jax.grad(f)(anchor), jax.hessian(f)(anchor)
        value, gradient, hessian = (np.asarray(a, np.float64) for a in (value, gradient, hessian))
    deltas = support - mean
    taylor = value + deltas @ gradient + 0.5 * np.sum((deltas @ hessian) * deltas, axis=1)
    reference = reference_from_nodes(weights, values, {"logits": support - p}, residual=values - taylor,
                                     shapes={"logits": (dim,)})
    return Problem(
        name="bernoulli",
        distribution=_bernoulli,
        params=params,
        f=f,
        settings={"f": "sum_d (b_d - k)^2", "logit": logit, "k": k, "dim": dim},
        reference=reference,
        discrete=True,
        baseline_input=params["logits"],
    )


def _categorical(params: dict[str, jax.Array]) -> Any:
    return one_hot_categorical(params["logits"])


def categorical_problem(categories: int = 4, *, scale: float = 1.0, k: float = 0.45) -> Problem:
    r"""``categorical``: one draw :math:`y \sim \mathrm{Categorical}(\mathrm{softmax}(l))` as a one-hot
    vector over K categories, logits :math:`l_c = \text{scale} \cdot c/(K-1)`, and
    :math:`f(y) = \sum_c y_c (c/(K-1) - k)^2` (the Bernoulli toy's f on a K-level value; on the
    simplex, for the Gumbel-softmax relaxation, the same formula). Parameter ``logits``. References
    by enumeration of the K outcomes, scores :math:`y - \mathrm{softmax}(l)`. The delta-method control
    variate does not apply (its closed form assumes independent coordinates).
    """
    categories = _dim(categories, 64, "the exact references enumerate the categories")
    if categories < 2:
        raise ConfigError(f"dim: expected at least 2 categories, got {categories}")
    scale, k = _number("scale", scale), _number("k", k)
    levels = np.arange(categories) / (categories - 1)
    params = {"logits": jnp.asarray(scale * levels, jnp.float32)}
    values_per_level = tuple(float(v) for v in (levels - k) ** 2)

    def f(y: jax.Array) -> jax.Array:
        return jnp.dot(y, jnp.asarray(values_per_level, y.dtype))

    logits = scale * levels
    p = np.exp(logits - logits.max())
    p /= p.sum()
    support = np.eye(categories)
    reference = reference_from_nodes(p, support @ np.array(values_per_level), {"logits": support - p},
                                     shapes={"logits": (categories,)})
    return Problem(
        name="categorical",
        distribution=_categorical,
        params=params,
        f=f,
        settings={"f": "sum_c y_c (c/(K-1) - k)^2", "logit_scale": scale, "k": k, "categories": categories},
        reference=reference,
        discrete=True,
        baseline_input=params["logits"],
        rows_per_coordinate=True,
    )


def vae_problem(
    *,
    model: Any = None,
    params: Any = None,
    x: Any = None,
    seed: int = 0,
    latent_dim: int = 2,
    hidden: tuple[int, ...] = (16,),
    order: int | None = None,
) -> Problem:
    r"""``vae``: :math:`\nabla_\eta \mathcal{L}(\theta, \eta; x)`, the ELBO gradient in the encoder
    parameters η at one example.

    Args:
      model: a :class:`~unigen.models.vae.VAEModel`; default
        ``vae_model(64, latent_dim, hidden, activation="tanh")`` (smooth, so quadrature is
        accurate) for the 8×8 ``digits``.
      params: ``{"theta": ..., "eta": ...}`` — the checkpoint's parameters; default
        ``init`` with ``seed``.
      x: the example, ``[data_dim]``; default the first test digit (static binarization).
      seed: the seed of the default parameters.
      latent_dim, hidden: the default model's sizes.
      order: Gauss–Hermite nodes per latent dimension for the exact gradient (default 24 for
        L ≤ 2, 12 for L = 3); no exact gradient for L > 3.

    Returns:
      A :class:`Problem` whose ``params`` are η (the gradient is taken in η only).
    """
    from unigen.distributions import kl_divergence
    from unigen.models.vae import vae_model

    if model is None:
        model = vae_model(64, latent_dim, hidden=hidden, activation="tanh")
    params, x = _model_point(model, params, x, seed, "eta")
    theta, eta0 = params["theta"], params["eta"]
    latent = model.latent_dim

    def distribution(eta: Any) -> Any:
        return model.encoder_distribution(eta, x)

    def f(z: jax.Array) -> jax.Array:
        return model.joint.log_prob(theta, {"x": x, "z": z}, {}) - distribution(eta0).log_prob(z)

    reference = None
    if latent <= 3:
        order = order or (24 if latent <= 2 else 12)
        nodes, weights = gauss_hermite(order)
        grid = np.array(list(itertools.product(nodes, repeat=latent)), np.float32)
        grid_weights = np.prod(np.array(list(itertools.product(weights, repeat=latent))), axis=1).astype(np.float32)

        def elbo(eta: Any) -> jax.Array:
            q = distribution(eta)
            loc, scale = q.base_dist.loc, q.base_dist.scale
            z = loc[None] + scale[None] * jnp.asarray(grid)
            reconstruction = jax.vmap(lambda zi: model.decoder_distribution(theta, zi).log_prob(x))(z)
            return jnp.sum(jnp.asarray(grid_weights) * reconstruction) - kl_divergence(q, model.prior(theta))

        gradient = jax.jit(jax.grad(elbo))(eta0)
        flat = {_leaf_name(path): np.asarray(leaf, np.float64) for path, leaf in jax.tree_util.tree_leaves_with_path(gradient)}
        reference = Reference(flat, lambda estimator, n_samples: None)
    return Problem(
        name="vae",
        distribution=distribution,
        params=eta0,
        f=f,
        settings={"data_dim": model.data_dim, "latent_dim": latent, "quadrature_order": order if latent <= 3 else None},
        reference=reference,
        discrete=False,
        baseline_input=x,
    )


def sbn_problem(
    *,
    model: Any = None,
    params: Any = None,
    x: Any = None,
    seed: int = 0,
    hidden: int = 8,
    init_scale: float = 0.5,
) -> Problem:
    r"""``sbn``: :math:`\nabla_\phi \mathcal{L}(\theta, \phi; x)`, the ELBO gradient of a small
    Helmholtz machine in its recognition parameters φ, at one example.

    .. math::
       \mathcal{L}(\theta, \phi; x) = \sum_{h \in \{0,1\}^H} q_\phi(h \mid x)
       \bigl[\log p_\theta(x, h) - \log q_\phi(h \mid x)\bigr]

    is a finite sum, so the exact gradient (and the exact variance of the score-function,
    delta-method and leave-one-out estimates) comes from enumerating the :math:`2^H` hidden
    configurations in float64, with the per-configuration scores
    :math:`\nabla_\phi \log q_\phi(h \mid x)` at φ₀.

    Args:
      model: a :class:`~unigen.models.helmholtz.HelmholtzMachine` with one hidden layer of at most
        12 units; default ``helmholtz_machine(64, (hidden,), init_scale=init_scale)`` for the 8×8
        ``digits``. (A deeper recognition model is a chain of dependent layers: neither the
        Concrete relaxation nor the delta method's independent-coordinate closed form applies.)
      params: ``{"theta": ..., "phi": ...}`` — the generative and recognition parameters (e.g. of
        a wake-sleep run); default ``init`` with ``seed``.
      x: the example, ``[data_dim]``; default the first test digit (static binarization).
      seed: the seed of the default parameters.
      hidden: H, the default model's hidden units (1 ≤ H ≤ 12).
      init_scale: the default model's initial weight scale (0.5: posteriors away from uniform).

    Returns:
      A :class:`Problem` whose ``params`` are φ (``{"weights": [U], "biases": [c]}``; rows
      ``weights.0`` and ``biases.0``).

    Raises:
      ConfigError: a model with more than one hidden layer or more than 12 hidden units, bad
        ``params`` or a bad ``x``.
    """
    from unigen.models.helmholtz import helmholtz_machine
    from unigen.models.sbn import latent_states

    if model is None:
        model = helmholtz_machine(64, (_dim(hidden, 12, "the exact references enumerate 2^H hidden states"),),
                                  init_scale=_number("init_scale", init_scale, positive=True))
    if len(model.layers) != 1:
        raise ConfigError(
            f"model: expected a Helmholtz machine with one hidden layer, got layers {model.layers}: a deeper "
            "recognition model's layers are dependent, so neither 'concrete' nor 'score-control-variate' applies"
        )
    states = latent_states(model.latent_dim)  # ConfigError beyond 12 hidden units
    params, x = _model_point(model, params, x, seed, "phi")
    theta = params["theta"]
    phi0 = {"weights": list(params["phi"]["weights"]), "biases": list(params["phi"]["biases"])}

    def distribution(phi: Any) -> Any:
        return model.encoder_distribution(phi, x)

    def f(z: jax.Array) -> jax.Array:
        return model.joint.log_prob(theta, {"x": x, "z": z}, {}) - distribution(phi0).log_prob(z)

    with jax.enable_x64(True):
        wide = lambda tree: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)  # noqa: E731
        theta64, phi64, x64 = wide(theta), wide(phi0), jnp.asarray(x, jnp.float64)

        def log_q(phi: Any, z: jax.Array) -> jax.Array:
            return model.encoder_distribution(phi, x64).log_prob(z)

        def f64(z: jax.Array) -> jax.Array:
            return model.joint.log_prob(theta64, {"x": x64, "z": z}, {}) - log_q(phi64, z)

        def one(z: jax.Array) -> tuple[jax.Array, jax.Array, Any]:
            return f64(z), log_q(phi64, z), jax.grad(log_q)(phi64, z)

        def enumerate_states(z: jax.Array) -> tuple:
            # the delta method's expansion point: the mean of q (its coordinates are independent)
            mean = model.encoder_distribution(phi64, x64).mean
            return jax.vmap(one)(z), (mean, f64(mean), jax.grad(f64)(mean), jax.hessian(f64)(mean))

        (values, log_weights, scores), expansion = jax.jit(enumerate_states)(jnp.asarray(states, jnp.float64))
        weights = np.exp(np.asarray(log_weights, np.float64))
        values = np.asarray(values, np.float64)
        mean, value, gradient, hessian = (np.asarray(a, np.float64) for a in expansion)
    deltas = np.asarray(states, np.float64) - mean
    taylor = value + deltas @ gradient + 0.5 * np.sum((deltas @ hessian) * deltas, axis=1)
    leaves = jax.tree_util.tree_leaves_with_path(scores)
    flat_scores = {_leaf_name(path): np.asarray(leaf, np.float64).reshape(len(states), -1) for path, leaf in leaves}
    shapes = {_leaf_name(path): tuple(leaf.shape[1:]) for path, leaf in leaves}
    reference = reference_from_nodes(weights / weights.sum(), values, flat_scores, residual=values - taylor,
                                     shapes=shapes)
    return Problem(
        name="sbn",
        distribution=distribution,
        params=phi0,
        f=f,
        settings={"data_dim": model.data_dim, "hidden": model.latent_dim, "states": len(states),
                  "elbo": float(np.sum(weights * values) / weights.sum()),
                  "log_marginal": float(np.log(np.sum(weights * np.exp(values - values.max())) / weights.sum())
                                        + values.max())},
        reference=reference,
        discrete=True,
        baseline_input=x,
    )


def categorical_vae_problem(
    *,
    variables: int = 3,
    categories: int = 4,
    params: Any = None,
    x: Any = None,
    seed: int = 0,
    init_scale: float = 1.0,
) -> Problem:
    r"""``categorical-vae``: the ELBO gradient of a tiny categorical VAE (the model of Jang et al.
    2017, at a size that enumerates) in its recognition logits φ, at one example x.

    n categorical latents of K categories each, one-hot vectors :math:`z \in \{e_1..e_K\}^n`;
    a uniform prior :math:`p(z) = K^{-n}`; a linear Bernoulli decoder
    :math:`p_\theta(x \mid z) = \prod_d \mathrm{Bernoulli}(x_d; \sigma(a_d))`,
    :math:`a = W^\top \mathrm{vec}(z) + c`; the recognition model
    :math:`q_\phi(z) = \prod_i \mathrm{Categorical}(z_i; \mathrm{softmax}(\phi_i))`
    (:func:`unigen.distributions.one_hot_categorical`) with the logits φ ``[n, K]`` of this
    example as its parameters (an encoder network reaches them by the chain rule, the same for
    every estimator). As for ``sbn``, :math:`f(z) = \log p(z) + \log p_\theta(x \mid z) - \log
    q_{\phi_0}(z)` and :math:`\nabla_\phi \mathbb{E}_{q_\phi}[f]` at φ = φ₀ is the ELBO gradient.
    f is defined on the simplex too (the decoder is linear in z), so the relaxations apply; ARM
    and DisARM are for binary latents and refused. References by enumeration of the
    :math:`K^n` states in float64 (scores :math:`z - \mathrm{softmax}(\phi_0)`); one row per
    coordinate of φ (the softmax gradients of a variable sum to zero).

    Args:
      variables, categories: n and K; :math:`K^n` ≤ 4096 states.
      params: ``{"theta": {"weights": [n K, D], "biases": [D]}, "phi": [n, K]}``, the decoder
        (W, c) and the recognition logits φ₀; default from ``seed``: W with entries
        :math:`\mathcal{N}(0, \text{init\_scale}^2)`, c = 0, φ₀ standard normal.
      x: the example, ``[D]``; default the first 8×8 test digit (static binarization), D = 64.
      seed, init_scale: the default parameters' seed and the scale of W.

    Returns:
      A :class:`Problem` whose ``params`` are ``{"logits": φ₀}`` (rows ``logits[i,c]``).

    Raises:
      ConfigError: a bad size (fewer than 2 categories, more than 4096 states), number,
        ``params`` or x.
    """
    variables = _dim(variables)
    categories = _dim(categories)
    if categories < 2:
        raise ConfigError(f"categories: expected at least 2, got {categories}")
    if categories**variables > MAX_ONE_HOT_STATES:
        raise ConfigError(f"variables: expected at most {MAX_ONE_HOT_STATES} states K^n to enumerate, got "
                          f"{categories}^{variables} = {categories**variables}")
    init_scale = _number("init_scale", init_scale, positive=True)
    if params is not None and not (isinstance(params, dict) and set(params) == {"theta", "phi"}
                                   and isinstance(params["theta"], dict)
                                   and set(params["theta"]) == {"weights", "biases"}):
        raise ConfigError(f"params: expected {{'theta': {{'weights', 'biases'}}, 'phi'}}, got {describe(params)}")
    x = _example(x, 64 if params is None else int(np.size(params["theta"]["biases"])), "the decoder's")
    if params is None:
        key_w, key_phi = jax.random.split(jax.random.key(int(seed)))
        params = {"theta": {"weights": init_scale * jax.random.normal(key_w, (variables * categories, x.shape[0])),
                            "biases": jnp.zeros(x.shape[0])},
                  "phi": jax.random.normal(key_phi, (variables, categories))}
    shapes = {"weights": (variables * categories, x.shape[0]), "biases": (x.shape[0],), "phi": (variables, categories)}
    found = {"weights": np.shape(params["theta"]["weights"]), "biases": np.shape(params["theta"]["biases"]),
             "phi": np.shape(params["phi"])}
    if found != shapes:
        raise ConfigError(f"params: expected shapes {shapes} for n = {variables}, K = {categories}, D = "
                          f"{x.shape[0]}, got {found}")
    weights, biases = (jnp.asarray(params["theta"][name], jnp.float32) for name in ("weights", "biases"))
    phi0 = jnp.asarray(params["phi"], jnp.float32)
    log_prior = -variables * float(np.log(categories))

    def f(z: jax.Array) -> jax.Array:
        a = z.reshape(-1) @ weights.astype(z.dtype) + biases.astype(z.dtype)
        target = x.astype(z.dtype)
        log_likelihood = jnp.sum(target * jax.nn.log_sigmoid(a) + (1 - target) * jax.nn.log_sigmoid(-a))
        return log_prior + log_likelihood - one_hot_categorical(phi0.astype(z.dtype)).log_prob(z)

    q0 = one_hot_categorical(phi0)
    states = q0.enumerate_support().astype(np.float64)  # [K^n, n, K]
    probabilities = np.exp(np.asarray(phi0, np.float64))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    node_weights = np.prod(np.sum(states * probabilities, axis=-1), axis=-1)
    values = _on_nodes(f, states)
    scores = (states - probabilities).reshape(len(states), -1)
    reference = reference_from_nodes(node_weights, values, {"logits": scores}, shapes={"logits": phi0.shape})
    return Problem(
        name="categorical-vae",
        distribution=_categorical,
        params={"logits": phi0},
        f=f,
        settings={"data_dim": int(x.shape[0]), "variables": variables, "categories": categories,
                  "states": len(states), "init_scale": init_scale, "seed": int(seed),
                  "elbo": float(np.sum(node_weights * values)),
                  "log_marginal": float(np.log(np.sum(node_weights * np.exp(values - values.max())))
                                        + values.max())},
        reference=reference,
        discrete=True,
        baseline_input=x,
        rows_per_coordinate=True,
    )


def _leaf_name(path: tuple) -> str:
    parts = []
    for entry in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(entry, attribute):
                parts.append(str(getattr(entry, attribute)))
                break
        else:
            parts.append(str(entry))
    return ".".join(parts)


PROBLEMS = (
    "gaussian-square",
    "gaussian-exp",
    "gaussian-cos",
    "gaussian-sum-squares",
    "bernoulli",
    "categorical",
    "categorical-vae",
    "vae",
    "sbn",
)


def make_problem(
    name: str,
    *,
    mu: float | None = None,
    sigma: float | None = None,
    k: float | None = None,
    dim: int | None = None,
    **options: Any,
) -> Problem:
    """A problem by its CLI name. ``mu`` is the logit for ``bernoulli``; unset numbers take each
    problem's defaults (μ = σ = k = 1 for the Gaussian functions, μ = 0, σ = 1, D = 10 for
    sum-squares, logit 0, k = 0.45, D = 1 for Bernoulli; logit scale 1, k = 0.45, K = 4 for
    categorical); ``dim`` is the number of hidden units H for ``sbn`` (default 8) and of categorical
    latents n for ``categorical-vae`` (default 3, of K = 4 categories); ``options`` go to
    :func:`vae_problem`, :func:`sbn_problem` or :func:`categorical_vae_problem`.

    Raises:
      ConfigError: an unknown name or a bad number.
    """
    given = {"mu": mu, "sigma": sigma, "k": k}
    given = {key: value for key, value in given.items() if value is not None}
    if name in ("gaussian-square", "gaussian-exp", "gaussian-cos"):
        if dim not in (None, 1):
            raise ConfigError(f"dim: expected 1 (or unset) for {name}, a one-dimensional problem, got {dim}")
        return gaussian_problem(name.split("-")[1], **given)
    if name == "gaussian-sum-squares":
        if "k" in given:
            raise ConfigError(f"k: expected unset for {name} (f = sum_d x_d^2 has no k), got {k}")
        return sum_squares_problem(10 if dim is None else dim, **given)
    if name == "bernoulli":
        if "sigma" in given:
            raise ConfigError(f"sigma: expected unset for bernoulli (its parameter is the logit, set by mu), got {sigma}")
        return bernoulli_problem(1 if dim is None else dim, logit=given.get("mu", 0.0), k=given.get("k", 0.45))
    if name == "categorical":
        if "sigma" in given:
            raise ConfigError(f"sigma: expected unset for categorical (mu scales its logits), got {sigma}")
        return categorical_problem(4 if dim is None else dim, scale=given.get("mu", 1.0), k=given.get("k", 0.45))
    if name == "categorical-vae":
        if given:
            raise ConfigError(f"mu/sigma/k: expected unset for the categorical-vae problem, got {given}")
        if dim is not None:
            options = dict(options, variables=dim)
        return categorical_vae_problem(**options)
    if name == "vae":
        if given or dim is not None:
            raise ConfigError(f"mu/sigma/k/dim: expected unset for the vae problem, got {dict(given, dim=dim)}")
        return vae_problem(**options)
    if name == "sbn":
        if given:
            raise ConfigError(f"mu/sigma/k: expected unset for the sbn problem, got {given}")
        if dim is not None:
            options = dict(options, hidden=dim)
        return sbn_problem(**options)
    raise ConfigError(f"problem: expected one of {list(PROBLEMS)}, got {name!r}")


def _model_point(model, params, x, seed, inference_group: str):
    """The point a model-level problem is at: ``params`` (``{"theta", inference_group}``, the
    model's initial parameters from ``seed`` if None) and one example ``x`` (the first binarized
    test digit if None), both checked."""
    groups = {"theta", inference_group}
    if params is None:
        key_theta, key_inference = jax.random.split(jax.random.key(int(seed)))
        params = {"theta": model.joint.init(key_theta),
                  inference_group: model.inference.init(key_inference)}
    if not isinstance(params, dict) or set(params) != groups:
        raise ConfigError(f"params: expected a dict with keys {sorted(groups)}, got {describe(params)}")
    return params, _example(x, model.data_dim, "the model's")


def _example(x: Any, data_dim: int, whose: str) -> jax.Array:
    """One example ``[data_dim]``, checked: ``x``, or the first binarized test digit if None."""
    if x is None:
        from unigen import data

        x = data.load("digits", "test", binarize="static").x[0]
        if data_dim != x.shape[0]:
            raise ConfigError(f"x: expected an example of {whose} data_dim {data_dim}; "
                              f"the default digit has {x.shape[0]}: pass x")
    x = jnp.asarray(x, jnp.float32)
    if x.shape != (data_dim,):
        raise ConfigError(f"x: expected one example of shape ({data_dim},), got {describe(x)}")
    return x
