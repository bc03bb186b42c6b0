r"""Predictability minimization (lecture §1.1.3; Schmidhuber 1992, "Learning factorial codes by
predictability minimization").

An encoder :math:`c = E_\eta(x) \in (0, 1)^K` and one predictor per code unit,
:math:`P_{\phi,i}(c_{-i})` (:mod:`unigen.models.pm`), play a two-player game over the prediction
error

.. math::
   V(\eta, \phi) = \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
   \left(c_i - P_{\phi,i}(c_{-i})\right)^2\right], \qquad c = E_\eta(x).

The predictors (phase ``"predictors"``, group ``"phi"``) minimize it with the code held fixed:

.. math::
   \min_\phi \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
   \left(c_i - P_{\phi,i}(c_{-i})\right)^2\right]

and the encoder (phase ``"encoder"``, group ``"eta"``) maximizes it while keeping the information
about x, by a reconstruction term with weight :math:`\beta` (default, ``information=
"reconstruction"``; :math:`D_\eta` is the encoder's linear decoder):

.. math::
   \max_\eta \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
   \left(c_i - P_{\phi,i}(c_{-i})\right)^2 - \beta \left\| x - D_\eta(c) \right\|^2\right]

or by Schmidhuber's original variance term (``information="variance"``), which rewards units
that vary over the data, :math:`\bar c_i` the batch mean:

.. math::
   \max_\eta \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
   \left(c_i - P_{\phi,i}(c_{-i})\right)^2 + \frac{\beta}{K}\sum_{i=1}^{K}
   \left(c_i - \bar c_i\right)^2\right]

At the predictors' optimum :math:`P_{\phi,i}(c_{-i}) = \mathbb{E}[c_i \mid c_{-i}]`, so
:math:`V` is the mean conditional variance :math:`\frac1K \sum_i \mathbb{E}\,
\mathrm{Var}(c_i \mid c_{-i})`; for units in [0, 1] it is at most 1/4, reached exactly when
the units are binary, fair and none is predictable from the others: a factorial binary code.
The game is the lecture's adversarial pattern before GANs: the predictors play the
discriminator, the encoder the generator, and the encoder's gradient flows through the
predictors' inputs :math:`c_{-i}` as well as through :math:`c_i`.

Why the objective is not declared in :mod:`unigen.algebra` (its phases are the one built-in
algorithm written by hand; ``tests/test_recipes.py`` lists it, with this paragraph, as the
only exception to "every phase is compiled from its declaration"). Piece by piece:

* the encoder is deterministic, :math:`c = E_\eta(x)`, a point mass: expressible today, as an
  expectation over :math:`\delta(c - E_\eta(x))` bound with ``implicit(sampler)`` (a sampler
  that ignores its key; gradients pathwise);
* the reconstruction term is a Gaussian log-density with variance 1/2 up to a constant,
  :math:`-\|x - D_\eta(c)\|^2 = \log \mathcal{N}(x; D_\eta(c), \tfrac12 I) + \tfrac{D}{2}
  \log \pi`: expressible today (a distribution :math:`p_\eta(x \mid c)` and a constant);
* the prediction error is **not**: :math:`\frac1K \sum_i (c_i - P_{\phi,i}(c_{-i}))^2 =
  -\frac1K \sum_i \log \mathcal{N}(c_i; P_{\phi,i}(c_{-i}), \tfrac12) - \tfrac12 \log \pi` is a
  *pseudo*-log-likelihood, each unit given all the others. The algebra's distributions are over
  whole named variables (x, y, z, h, c) with no per-unit index, and a product of the K
  conditionals :math:`\prod_i q_\phi(c_i \mid c_{-i})` is not a normalized density of c, so the
  only expressible form, :math:`\log q_\phi(c)`, would print a claim the loss does not make. The
  missing node is a pseudo-log-likelihood :math:`\sum_i \log q_\phi(c_i \mid c_{-i})` (printed
  so, bound to the K conditionals);
* the variance term (``information="variance"``) is not either: :math:`(c_i - \bar c_i)^2`
  with :math:`\bar c` the batch mean is a statistic of the whole batch inside the data
  expectation; it would need a batch-mean node (the compiler's data expectation now names its
  vmap axis, so such a node could be computed with ``jax.lax.pmean``).

Until those two nodes exist PM keeps its objective as the LaTeX above (:data:`OBJECTIVE`, the
:class:`~unigen.core.Algorithm`'s ``objective``) and its losses are written by hand.

A known failure. Squared-error predictors see only conditional means. For fair sources
:math:`s_a, s_b \in \{-1, 1\}`, two units on their sum and their difference,
:math:`c_i = \sigma(w (s_a + s_b))` and :math:`c_j = \sigma(w (s_a - s_b))`, are dependent
(exactly one of them is 1/2) yet :math:`\mathbb{E}[c_i \mid c_j] = 1/2` whatever :math:`c_j`:
no predictor can lower its error below the variance, and reconstruction is exact. Rotating the
pair onto the sources raises :math:`V` (from 1/8 to 1/4 per unit at saturation), so the point
is a saddle, but when the units have saturated first their gradients vanish and training stays
there, each such unit at 1/2 on half the examples. With the defaults, Adam at 2e-2, batch 128
and 4000 steps on four sources, 5 of 8 seeds reached the factorial binary code of the sources
and 3 stopped with a quarter of the code values at 1/2, as this predicts (one of them inspected:
two units with weights of equal size on the sum and the difference of two sources); see
``tests/test_pm.py``.

Metrics (each a function here, checked in the tests against independent oracles):
:func:`prediction_error` (:math:`V`), :func:`code_binariness`, :func:`reconstruction_error`,
:func:`pairwise_mutual_information` of the binarized code (counting) and
:func:`recovery_accuracy` of known sources up to permutation and flips.
"""

from __future__ import annotations

import itertools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from unigen.algorithms.vae import batch_data
from unigen.core import Algorithm, Batch, Metrics, Params, Phase, PRNGKey
from unigen.errors import ConfigError, DataError, describe
from unigen.models.pm import PMModel

__all__ = [
    "INFORMATION",
    "OBJECTIVE",
    "code_binariness",
    "codes",
    "encoder_phase",
    "evaluate",
    "init_params",
    "pairwise_mutual_information",
    "prediction_error",
    "predictability_minimization",
    "predictor_phase",
    "reconstruction_error",
    "recovery_accuracy",
]

INFORMATION = ("reconstruction", "variance")
"""How the encoder keeps the information about x: a linear reconstruction, or the variance term."""

OBJECTIVE = {
    "predictors": r"\min_\phi \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}"
    r" \left(c_i - P_{\phi,i}(c_{-i})\right)^2\right]",
    "encoder": r"\max_\eta \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}"
    r" \left(c_i - P_{\phi,i}(c_{-i})\right)^2 - \beta \left\| x - D_\eta(c) \right\|^2\right]",
}
"""Each phase's objective in LaTeX (the encoder's with the default reconstruction term)."""


def init_params(model: PMModel, key: PRNGKey) -> dict[str, Params]:
    """``{"eta": encoder and decoder, "phi": the K predictors}``."""
    key_eta, key_phi = jax.random.split(key)
    return {"eta": model.init_encoder(key_eta), "phi": model.init_predictors(key_phi)}


def codes(model: PMModel, eta: Params, x: jax.Array) -> jax.Array:
    """The codes :math:`c = E_\\eta(x)` of a batch ``x [B, D]``, ``[B, K]`` in (0, 1)."""
    return jax.vmap(lambda xb: model.encode(eta, xb))(x)


def prediction_error(model: PMModel, phi: Params, c: jax.Array) -> jax.Array:
    r""":math:`V`: the mean over the batch and the units of :math:`(c_i - P_{\phi,i}(c_{-i}))^2`.

    Args:
      model: the PM model.
      phi: the predictors.
      c: codes ``[B, K]``.
    """
    predicted = jax.vmap(lambda cb: model.predict(phi, cb))(c)
    return jnp.mean(jnp.square(c - predicted))


def code_binariness(c: jax.typing.ArrayLike) -> jax.Array:
    r"""How binary codes are: :math:`\mathrm{mean}\,|2 c - 1|`, 1 for codes in {0, 1}, 0 for
    codes all at 1/2."""
    return jnp.mean(jnp.abs(2.0 * jnp.asarray(c) - 1.0))


def reconstruction_error(model: PMModel, eta: Params, x: jax.Array) -> jax.Array:
    r""":math:`\mathbb{E}\|x - D_\eta(E_\eta(x))\|^2` over the batch ``x [B, D]``."""
    reconstructed = jax.vmap(lambda xb: model.decode(eta, model.encode(eta, xb)))(x)
    return jnp.mean(jnp.sum(jnp.square(x - reconstructed), axis=-1))


def predictor_phase(model: PMModel) -> Phase:
    r"""The predictors' phase: minimize the prediction error in φ, the code held fixed.

    .. math::
       \min_\phi \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
       \left(c_i - P_{\phi,i}(c_{-i})\right)^2\right]

    On ``batch = {"x": [B, D]}`` the loss is :func:`prediction_error` at the batch's codes;
    metrics ``{"prediction_error", "binariness"}``.
    """

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        c = jax.lax.stop_gradient(codes(model, params["eta"], batch_data(batch, model.data_dim)))
        error = prediction_error(model, params["phi"], c)
        return error, {"prediction_error": error, "binariness": code_binariness(c)}

    return Phase("predictors", "phi", loss)


def encoder_phase(model: PMModel, *, information: str = "reconstruction", beta: float = 1.0) -> Phase:
    r"""The encoder's phase: maximize the prediction error in η, keeping the information.

    .. math::
       \max_\eta \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
       \left(c_i - P_{\phi,i}(c_{-i})\right)^2 - \beta \left\| x - D_\eta(c) \right\|^2\right]

    (with ``information="variance"`` the last term is
    :math:`+\frac{\beta}{K}\sum_i (c_i - \bar c_i)^2`, :math:`\bar c_i` the batch mean). The loss
    is minus that objective on the batch; the predictors φ are held fixed (only η is updated).
    Metrics ``{"prediction_error", "binariness", "reconstruction", "variance"}``
    (``"reconstruction"`` the mean squared reconstruction error of the decoder, reported with
    either term).

    Args:
      model: the PM model.
      information: ``"reconstruction"`` or ``"variance"`` (:data:`INFORMATION`).
      beta: :math:`\beta > 0`, the weight of the information term.

    Raises:
      ConfigError: unknown ``information`` or a ``beta`` that is not a positive finite number.
    """
    if information not in INFORMATION:
        raise ConfigError(f"information: expected one of {INFORMATION}, got {describe(information)}")
    if (
        isinstance(beta, bool)
        or not isinstance(beta, numbers.Real)
        or not np.isfinite(beta)
        or beta <= 0
    ):
        raise ConfigError(f"beta: expected a positive finite number, got {describe(beta)}")
    beta = float(beta)

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        eta = params["eta"]
        c = codes(model, eta, x)
        error = prediction_error(model, params["phi"], c)
        reconstructed = jax.vmap(lambda cb: model.decode(eta, cb))(c)
        reconstruction = jnp.mean(jnp.sum(jnp.square(x - reconstructed), axis=-1))
        variance = jnp.mean(jnp.square(c - jnp.mean(c, axis=0, keepdims=True)))
        if information == "reconstruction":
            objective = error - beta * reconstruction
        else:
            objective = error + beta * variance
        metrics = {
            "prediction_error": error,
            "binariness": code_binariness(c),
            "reconstruction": reconstruction,
            "variance": variance,
        }
        return -objective, metrics

    return Phase("encoder", "eta", loss)


def predictability_minimization(
    model: PMModel, *, information: str = "reconstruction", beta: float = 1.0
) -> Algorithm:
    r"""Predictability minimization (§1.1.3): the predictors' phase in φ, then the encoder's in η.

    .. math::
       \min_\phi \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
       \left(c_i - P_{\phi,i}(c_{-i})\right)^2\right]

    .. math::
       \max_\eta \; \mathbb{E}_{p_{data}(x)}\left[\frac{1}{K}\sum_{i=1}^{K}
       \left(c_i - P_{\phi,i}(c_{-i})\right)^2 - \beta \left\| x - D_\eta(c) \right\|^2\right]

    See :func:`predictor_phase` and :func:`encoder_phase`. The predictors should learn faster
    than the encoder (a larger learning rate), as a GAN's discriminator does.

    Args:
      model: a :class:`~unigen.models.pm.PMModel`.
      information: ``"reconstruction"`` (default) or ``"variance"``.
      beta: the weight of the information term.

    Returns:
      An :class:`~unigen.core.Algorithm` with ``init(key) -> {"eta", "phi"}``, phases
      ``("predictors", "encoder")`` and ``objective`` the :data:`OBJECTIVE` LaTeX strings (not
      an algebra declaration; the module docstring says why).
    """
    if not isinstance(model, PMModel):
        raise ConfigError(f"model: expected a PMModel (unigen.models.pm_model), got {describe(model)}")
    return Algorithm(
        init=lambda key: init_params(model, key),
        phases=(predictor_phase(model), encoder_phase(model, information=information, beta=beta)),
        objective=OBJECTIVE,
    )


# --- evaluation: mutual information and recovery of the sources ----------------------------------


def _bits(name: str, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise DataError(f"{name}: expected a [N, K] array with N, K >= 1, got {describe(value)}")
    if not np.all((array == 0) | (array == 1)):
        raise DataError(f"{name}: expected values in {{0, 1}} (binarize codes at 1/2 first)")
    return array.astype(np.int64)


def pairwise_mutual_information(bits: object) -> np.ndarray:
    r"""The plug-in mutual information, in bits, between every two columns of a binary array.

    .. math::
       I(b_i; b_j) = \sum_{u, v \in \{0,1\}} \hat p(u, v) \log_2
       \frac{\hat p(u, v)}{\hat p_i(u)\, \hat p_j(v)}

    with the empirical frequencies :math:`\hat p` over the N rows (terms with
    :math:`\hat p(u, v) = 0` are 0).

    Args:
      bits: ``[N, K]`` array of 0s and 1s (e.g. ``codes > 0.5``).

    Returns:
      ``float64 [K, K]``, symmetric; the diagonal holds each column's entropy.

    Raises:
      DataError: not a non-empty 2-D array of 0s and 1s.
    """
    b = _bits("bits", bits)
    n = b.shape[0]
    joint = np.empty((b.shape[1], b.shape[1], 2, 2))
    for u in (0, 1):
        for v in (0, 1):
            joint[:, :, u, v] = ((b == u).astype(np.float64).T @ (b == v).astype(np.float64)) / n
    marginal_i = joint.sum(axis=3, keepdims=True)
    marginal_j = joint.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = joint * np.log2(joint / (marginal_i * marginal_j))
    return np.nansum(np.where(joint > 0, terms, 0.0), axis=(2, 3))


def recovery_accuracy(bits: object, sources: object) -> float:
    r"""How well binary codes recover known binary sources, up to permutation and flips.

    .. math::
       \max_{\pi} \frac{1}{K}\sum_{j=1}^{K} \max\left(a_{\pi(j) j}, 1 - a_{\pi(j) j}\right),
       \qquad a_{ij} = \frac{1}{N}\sum_n [b_{n,i} = s_{n,j}],

    the best one-to-one matching of code units to sources, each unit allowed a flip, by
    exhaustive search over the :math:`K!` permutations (K at most 8).

    Args:
      bits: ``[N, K]`` codes in {0, 1}.
      sources: ``[N, K]`` sources in {0, 1}.

    Raises:
      DataError: not binary 2-D arrays of the same shape, or K > 8.
    """
    b, s = _bits("bits", bits), _bits("sources", sources)
    if b.shape != s.shape:
        raise DataError(f"bits and sources: expected the same shape, got {b.shape} and {s.shape}")
    k = b.shape[1]
    if k > 8:
        raise DataError(f"bits: expected at most 8 columns (K! permutations are searched), got {k}")
    agree = (b[:, :, None] == s[:, None, :]).mean(axis=0)  # [K codes, K sources]
    best = np.maximum(agree, 1.0 - agree)
    columns = np.arange(k)
    return float(max(best[list(perm), columns].mean() for perm in itertools.permutations(range(k))))


def evaluate(model: PMModel, params: Params, x: object, sources: object | None = None) -> dict[str, float]:
    """The PM metrics of trained ``params`` on data ``x [N, D]`` (and known ``sources``).

    Returns:
      ``{"prediction_error", "binariness", "reconstruction", "max_pairwise_mi"}`` (the largest
      off-diagonal :func:`pairwise_mutual_information` of the codes binarized at 1/2, in bits),
      plus ``"recovery_accuracy"`` when ``sources`` is given.
    """
    x = jnp.asarray(x, jnp.float32)
    c = codes(model, params["eta"], x)
    bits = np.asarray(c > 0.5).astype(np.int64)
    mi = pairwise_mutual_information(bits)
    off_diagonal = mi[~np.eye(mi.shape[0], dtype=bool)]
    result = {
        "prediction_error": float(prediction_error(model, params["phi"], c)),
        "binariness": float(code_binariness(c)),
        "reconstruction": float(reconstruction_error(model, params["eta"], x)),
        "max_pairwise_mi": float(off_diagonal.max()),
    }
    if sources is not None:
        result["recovery_accuracy"] = recovery_accuracy(bits, sources)
    return result
