r"""Exact references: gradients and estimator variances by quadrature or enumeration.

Every expectation is a weighted sum over nodes, :math:`\mathbb{E}[h] = \sum_m w_m h(x_m)`, in
float64 NumPy:

* Gaussian :math:`\mathcal{N}(\mu, \sigma^2)`: Gauss–Hermite quadrature in
  :math:`\epsilon = (x - \mu)/\sigma` (probabilists' Hermite nodes, exact for polynomials of degree
  < 2n and spectrally accurate for the smooth f used here). The scores are the closed forms
  :math:`s_\mu = \epsilon/\sigma`, :math:`s_\sigma = (\epsilon^2 - 1)/\sigma` — not autodiff of
  the estimators' code, so the reference is independent of what it checks.
* Finite spaces (Bernoulli): exact enumeration of the support, :math:`s_l = b - \sigma(l)`.

From the per-node f, scores s, pathwise derivatives h and delta-method residuals
:math:`f - \tilde f`, per parameter coordinate j (N draws per estimate):

=============================  ==================================================================
estimator                      variance of the N-draw estimate
=============================  ==================================================================
score                          :math:`(\mathbb{E}[f^2 s_j^2] - g_j^2) / N`
pathwise                       :math:`(\mathbb{E}[h_j^2] - g_j^2) / N`
score-control-variate          :math:`\mathrm{Var}[(f - \tilde f) s_j] / N`
leave-one-out                  U-statistic of degree 2, kernel
                               :math:`\tfrac12 (f_1 - f_2)(s_1 - s_2)`:
                               :math:`\frac{4(N-2)}{N(N-1)}\zeta_1 + \frac{2}{N(N-1)}\zeta_2`
=============================  ==================================================================

with :math:`g_j = \mathbb{E}[f s_j]`, :math:`\zeta_1 = \tfrac14 \mathrm{Var}[(f - \mathbb{E}f)s_j]`,
:math:`\zeta_2 = \tfrac14(2\mathbb{E}[f^2s_j^2] + 2\mathbb{E}[f^2]\mathbb{E}[s_j^2]
- 4\mathbb{E}[f]\mathbb{E}[f s_j^2] + 4 g_j^2) - g_j^2`. Estimators whose baseline depends on past
calls or on a fitted network (moving average, learned) or is estimated from the same draws
(optimal constant) have no reference variance here; the relaxation's bias is measured.

For VIMCO, whose target is the K-sample bound :math:`\mathbb{E}[\log\frac1K\sum_k e^{f(x_k)}]`
rather than :math:`\mathbb{E}[f]`, :func:`multi_sample_bound_gradient` enumerates the
:math:`M^K` tuples of nodes (:attr:`Reference.bound_gradient`).

The closed forms of the issue (:func:`closed_form_square`, :func:`closed_form_sum_squares`) are
written out separately; the tests check the quadrature against them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "Reference",
    "VARIANCE_FORMULAS",
    "closed_form_square",
    "closed_form_sum_squares",
    "gauss_hermite",
    "multi_sample_bound_gradient",
    "reference_from_nodes",
]

VARIANCE_FORMULAS = ("score", "pathwise", "score-control-variate", "leave-one-out")


def _no_bound(count: int) -> None:
    return None


class Reference(NamedTuple):
    r"""Exact answers for one problem.

    Attributes:
      gradient: ``{parameter name: array shaped like the parameter}``, the exact gradient.
      variance: ``variance(estimator, n_samples) -> {name: array} | None``, the exact variance of
        each coordinate of the N-draw estimate, or None where no formula is known.
      bound_gradient: ``bound_gradient(K) -> {name: array} | None``, the exact gradient of the
        K-sample bound :math:`\mathbb{E}[\log \frac1K \sum_k e^{f(x_k)}]` that VIMCO estimates
        (:func:`multi_sample_bound_gradient`), or None where it is not computed.
    """

    gradient: dict[str, np.ndarray]
    variance: Callable[[str, int], dict[str, np.ndarray] | None]
    bound_gradient: Callable[[int], dict[str, np.ndarray] | None] = _no_bound


BOUND_TERMS = 2**22  # the largest M^K tuples multi_sample_bound_gradient enumerates


def multi_sample_bound_gradient(weights: np.ndarray, f: np.ndarray, scores: np.ndarray,
                                count: int) -> np.ndarray | None:
    r"""The exact gradient of :math:`\mathcal{L}^K = \mathbb{E}_{x_{1:K}}[\hat L]`,
    :math:`\hat L = \log\frac1K\sum_k e^{f(x_k)}`, over nodes (weights ``[M]``, f ``[M]``,
    scores ``[M, P]``) when :math:`M^K \le` :data:`BOUND_TERMS`, else None.

    By the score identity and the exchangeability of the K draws,
    :math:`\nabla \mathcal{L}^K = \mathbb{E}[\hat L \sum_k s(x_k)] = K \sum_m w_m s_m\,
    \mathbb{E}[\hat L \mid x_1 = m]`; the conditional expectation enumerates the
    :math:`M^{K-1}` tuples of the other draws.
    """
    weights, f, scores = (np.asarray(a, np.float64) for a in (weights, f, scores))
    count = int(count)
    if count < 1 or len(f) ** count > BOUND_TERMS:
        return None
    top = float(np.max(f))
    exps = np.exp(f - top)
    others, other_weights = np.zeros(1), np.ones(1)  # sum of the other draws' e^{f - top}, and its weight
    for _ in range(count - 1):
        others = (others[:, None] + exps[None, :]).reshape(-1)
        other_weights = (other_weights[:, None] * weights[None, :]).reshape(-1)
    conditional = np.log((exps[:, None] + others[None, :]) / count) @ other_weights + top  # E[L | x_1 = m]
    return count * np.sum((weights * conditional)[:, None] * scores, axis=0)


def gauss_hermite(order: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes and weights with :math:`\sum_m w_m h(\epsilon_m) \approx \mathbb{E}_{\mathcal{N}(0,1)}[h]`."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(int(order))
    return nodes, weights / np.sqrt(2.0 * np.pi)


def _moments(weights: np.ndarray, f: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """Per coordinate (columns of ``s``, ``[M, P]``) the weighted moments the formulas need."""
    w = weights[:, None]
    fc = f[:, None]
    e = lambda values: np.sum(w * values, axis=0)  # noqa: E731
    return {
        "g": e(fc * s),
        "f": np.sum(weights * f),
        "f2": np.sum(weights * f * f),
        "s2": e(s * s),
        "fs2": e(fc * s * s),
        "f2s2": e(fc * fc * s * s),
    }


def reference_from_nodes(
    weights: np.ndarray,
    f: np.ndarray,
    scores: dict[str, np.ndarray],
    *,
    pathwise: dict[str, np.ndarray] | None = None,
    residual: np.ndarray | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> Reference:
    """The :class:`Reference` of a problem given its quadrature or enumeration nodes.

    Args:
      weights: ``[M]`` node weights (sum 1).
      f: ``[M]`` the integrand at the nodes.
      scores: ``{name: [M, P]}``, :math:`\\nabla_\\lambda \\log q_\\lambda` at the nodes.
      pathwise: ``{name: [M, P]}``, :math:`\\nabla_\\lambda f(T(\\lambda, \\epsilon))` at the
        nodes, for reparameterizable problems.
      residual: ``[M]``, :math:`f - \\tilde f` of the delta-method control variate.
      shapes: ``{name: shape}`` to give the arrays (default: flat ``[P]``).
    """
    weights = np.asarray(weights, np.float64)
    f = np.asarray(f, np.float64)
    shapes = shapes or {name: (np.shape(s)[1],) for name, s in scores.items()}
    moments = {name: _moments(weights, f, np.asarray(s, np.float64)) for name, s in scores.items()}
    gradient = {name: m["g"].reshape(shapes[name]) for name, m in moments.items()}

    def variance(estimator: str, n_samples: int) -> dict[str, np.ndarray] | None:
        n = int(n_samples)
        out = {}
        for name, s in scores.items():
            m = moments[name]
            g = m["g"]
            if estimator == "score":
                single = m["f2s2"] - g * g
                value = single / n
            elif estimator == "pathwise":
                if pathwise is None:
                    return None
                h = np.asarray(pathwise[name], np.float64)
                mean = np.sum(weights[:, None] * h, axis=0)
                value = (np.sum(weights[:, None] * h * h, axis=0) - mean * mean) / n
            elif estimator == "score-control-variate":
                if residual is None:
                    return None
                r = np.asarray(residual, np.float64)[:, None] * np.asarray(s, np.float64)
                mean = np.sum(weights[:, None] * r, axis=0)
                value = (np.sum(weights[:, None] * r * r, axis=0) - mean * mean) / n
            elif estimator == "leave-one-out":
                if n < 2:
                    return None
                centred = m["f2s2"] - 2 * m["f"] * m["fs2"] + m["f"] ** 2 * m["s2"]  # E[(f - Ef)^2 s^2]
                zeta1 = 0.25 * (centred - g * g)
                zeta2 = 0.25 * (2 * m["f2s2"] + 2 * m["f2"] * m["s2"] - 4 * m["f"] * m["fs2"] + 4 * g * g) - g * g
                value = 4 * (n - 2) / (n * (n - 1)) * zeta1 + 2 / (n * (n - 1)) * zeta2
            else:
                return None
            out[name] = np.maximum(value, 0.0).reshape(shapes[name])
        return out

    def bound_gradient(count: int) -> dict[str, np.ndarray] | None:
        out = {name: multi_sample_bound_gradient(weights, f, s, count) for name, s in scores.items()}
        return None if any(g is None for g in out.values()) else {n: g.reshape(shapes[n]) for n, g in out.items()}

    return Reference(gradient, variance, bound_gradient)


def closed_form_square(a: float) -> dict[str, float]:
    r"""The issue's closed forms for :math:`f = (x - k)^2`, :math:`x \sim \mathcal{N}(\mu, 1)`,
    :math:`a = \mu - k`, one draw.

    * score function, μ-gradient: :math:`f \epsilon` has variance :math:`a^4 + 14a^2 + 15`;
    * pathwise, σ-gradient: :math:`2(x - k)\epsilon` has variance :math:`4a^2 + 8`;
    * pathwise, μ-gradient: :math:`2(x - k)` has variance 4; exact gradients
      :math:`\partial_\mu = 2a`, :math:`\partial_\sigma = 2\sigma = 2`.
    """
    return {
        "score_mu_variance": a**4 + 14 * a**2 + 15,
        "pathwise_sigma_variance": 4 * a**2 + 8,
        "pathwise_mu_variance": 4.0,
        "gradient_mu": 2 * a,
        "gradient_sigma": 2.0,
    }


def closed_form_sum_squares(dim: int) -> dict[str, float]:
    r"""The issue's closed forms for :math:`f = \sum_d x_d^2`, :math:`x \sim \mathcal{N}(0, I_D)`,
    one draw, per coordinate of the μ-gradient: score function :math:`(D+2)(D+4)`, pathwise 4;
    the exact gradient is :math:`2\mu = 0`."""
    return {"score_mu_variance": float((dim + 2) * (dim + 4)), "pathwise_mu_variance": 4.0, "gradient_mu": 0.0}
