r"""Likelihood metrics: importance-sampled negative log-likelihood and the test ELBO.

* :func:`is_nll` — :math:`-\log p_\theta(x)` estimated with k importance samples from
  :math:`q_\eta(z \mid x)`,

  .. math::  -\log \hat p_\theta(x) = -\left(\operatorname{logsumexp}_{i=1}^{k}
     \left[\log p_\theta(x, z_i) - \log q_\eta(z_i \mid x)\right] - \log k\right),
     \qquad z_i \sim q_\eta(z \mid x),

  averaged over the examples, in nats per example. It is the IWAE bound
  :math:`-\mathcal{L}_k` of one draw per example: an upper bound on the true NLL in expectation,
  tight as :math:`k \to \infty`, and exact for every k when q is the exact posterior.
* :func:`test_elbo` — the mean ELBO (lecture §2.3) over the examples.

Both take the model (:class:`~unigen.models.vae.VAEModel`), ``params = {"theta", "eta"}`` and a
``[N, D]`` array of examples; example n is drawn with ``jax.random.split(key, N)[n]``, so the
result does not depend on the chunk sizes. Examples are processed ``batch_size`` at a time by one
jit-compiled function (the last chunk is padded to the same size, so it compiles once per shape),
and in :func:`is_nll` each example's k samples ``sample_batch_size`` at a time, above
``LARGE_K = 65,536`` in blocks of that many with a running logsumexp: memory does not grow with
N, nor with k beyond ``LARGE_K``.
"""

from __future__ import annotations

import math
import sys
from functools import partial
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from tqdm import tqdm

from unigen.algorithms.iwae import iwae_bound, log_importance_weights
from unigen.algorithms.vae import check_options, elbo
from unigen.core import Params, PRNGKey
from unigen.data import check_array
from unigen.errors import ConfigError, DataError, describe
from unigen.models.vae import VAEModel, positive_int
from unigen.models.values import bernoulli_entries

__all__ = ["is_nll", "test_elbo"]

MAX_K = (2**31 - 1) * 2**16
"""The most importance samples :func:`is_nll` takes: 2^31 - 1 blocks of 2^16 (any more cannot be counted)."""


def is_nll(
    model: VAEModel,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    k: int = 1000,
    batch_size: int = 100,
    sample_batch_size: int = 100,
    groups: tuple[str, str] = ("theta", "eta"),
) -> float:
    r"""The importance-sampled negative log-likelihood, in nats per example.

    .. math::  \mathrm{NLL} \approx -\frac{1}{N}\sum_{n=1}^{N} \left(\operatorname{logsumexp}_{i}
       \left[\log p_\theta(x_n, z_{n,i}) - \log q_\eta(z_{n,i} \mid x_n)\right] - \log k\right)

    Uses only ``model.joint.log_prob`` and ``model.inference`` (``sample``, ``log_prob``), so any
    Joint/Inference pair over ``x`` and ``z`` works (a VAE, a Helmholtz machine of
    :mod:`unigen.models.helmholtz`, whose recognition model is the proposal).

    Args:
      model: the model; ``model.data_dim`` is checked against ``x``.
      params: the parameter groups, ``{"theta": ..., "eta": ...}`` by default (see ``groups``).
      x: ``[N, D]`` examples.
      key: the PRNG key; example n uses ``jax.random.split(key, N)[n]``.
      k: importance samples per example (1000 is the usual benchmark; 5000 in the IWAE paper).
      batch_size: examples per jit-compiled call (one when ``k`` is above :data:`LARGE_K`).
      sample_batch_size: importance samples computed at once for each example.
      groups: the names of the joint's and the inference model's groups in ``params``:
        ``("theta", "eta")`` for a VAE, ``("theta", "lambda")`` after wake-sleep,
        ``("theta", "phi")`` after reweighted wake-sleep or variational EM.

    Returns:
      The mean of :math:`-\log \hat p(x_n)` over the N examples, as a Python float.

    Raises:
      ConfigError: ``k``, ``batch_size`` or ``sample_batch_size`` is not a positive int, or
        ``groups`` does not name two groups of ``params``.
      DataError: ``x`` is not a non-empty ``[N, model.data_dim]`` array of finite numbers, or, for a
        model with a Bernoulli likelihood, has values outside [0, 1].
    """
    k = positive_int("k", k)
    if k > MAX_K:
        raise ConfigError(f"k: expected at most {MAX_K} importance samples, got {k}")
    batch_size = positive_int("batch_size", batch_size)
    sample_batch_size = positive_int("sample_batch_size", sample_batch_size)
    params = _select_groups(params, groups)
    x = _examples(x, model)
    streamed = k > LARGE_K  # one example at a time (no padded copies of one), a block per call
    log_p = _map_examples(
        partial(_streamed_chunk if streamed else _log_likelihood_chunk, model, k=k, sample_batch_size=sample_batch_size),
        params,
        x,
        key,
        1 if streamed else batch_size,
    )
    return -float(np.mean(log_p, dtype=np.float64))


def test_elbo(
    model: VAEModel,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    batch_size: int = 100,
    kl: str = "analytic",
    n_samples: int = 1,
) -> float:
    r"""The mean evidence lower bound over the examples, in nats per example.

    .. math::  \frac{1}{N}\sum_{n=1}^{N} \mathcal{L}(\theta, \eta; x_n), \qquad
       \mathcal{L}(\theta, \eta; x) = \mathbb{E}_{q_\eta(z \mid x)}\left[\log p_\theta(x \mid z)
       \right] - \mathrm{KL}\left(q_\eta(z \mid x) \,\|\, p(z)\right)

    Args:
      model: a :class:`~unigen.models.vae.VAEModel`.
      params: ``{"theta": ..., "eta": ...}``.
      x: ``[N, D]`` examples.
      key: the PRNG key; example n uses ``jax.random.split(key, N)[n]``.
      batch_size: examples per jit-compiled call.
      kl: ``"analytic"`` or ``"monte_carlo"``, see :func:`unigen.algorithms.vae.elbo`.
      n_samples: draws of z per example.

    Returns:
      The mean ELBO (a log-likelihood lower bound: higher is better), as a Python float.
    """
    batch_size = positive_int("batch_size", batch_size)
    n_samples = check_options(kl, n_samples)
    x = _examples(x, model)
    values = _map_examples(
        partial(_elbo_chunk, model, kl=kl, n_samples=n_samples), params, x, key, batch_size
    )
    return float(np.mean(values, dtype=np.float64))


test_elbo.__test__ = False  # not a pytest test, despite its name


@partial(jax.jit, static_argnames=("model", "k", "sample_batch_size", "impl"))
def _log_likelihood_chunk(
    model: VAEModel,
    params: Params,
    keys: jax.Array,
    x: jax.Array,
    *,
    k: int,
    sample_batch_size: int,
    impl: str | None = None,
) -> jax.Array:
    keys = _wrapped(keys, impl)
    return jax.vmap(
        lambda key, x_n: iwae_bound(model, params, key, x_n, k, batch_size=sample_batch_size)
    )(keys, x)


LARGE_K = 1 << 16
"""Above this many importance samples, :func:`is_nll` streams them ``LARGE_K`` at a time."""
BLOCKS_PER_CALL = 1
"""Blocks of ``LARGE_K`` draws of one example per compiled call when streaming: between two calls
the process takes a signal (SIGINT, SIGTERM), which a long compiled call would hold back."""


def _streamed_chunk(
    model: VAEModel, params: Params, keys: jax.Array, x: jax.Array, *, k: int, sample_batch_size: int,
    impl: str | None = None,
) -> jax.Array:
    """:func:`~unigen.algorithms.iwae.iwae_bound` of each example for ``k > LARGE_K``, in memory
    independent of k: block c of ``LARGE_K`` draws uses ``fold_in(key, c)``, and a running
    logsumexp adds them up, :data:`BLOCKS_PER_CALL` blocks per compiled call."""
    blocks = -(-k // LARGE_K)
    total = jnp.full(x.shape[:1], -jnp.inf, dtype=x.dtype)
    for first in range(0, blocks, BLOCKS_PER_CALL):
        total = _add_blocks(model, params, keys, x, total, first, min(first + BLOCKS_PER_CALL, blocks),
                            k=k, sample_batch_size=sample_batch_size, impl=impl)
    return total - math.log(k)


@partial(jax.jit, static_argnames=("model", "k", "sample_batch_size", "impl"))
def _add_blocks(
    model: VAEModel, params: Params, keys: jax.Array, x: jax.Array, total: jax.Array, first, end, *, k: int,
    sample_batch_size: int, impl: str | None = None,
) -> jax.Array:
    """``total`` (one running logsumexp per example) with the blocks ``first, ..., end - 1`` added."""
    keys = _wrapped(keys, impl)
    blocks = -(-k // LARGE_K)
    last = k - (blocks - 1) * LARGE_K  # draws in the last block

    def example(key, x_n, total_n):
        def add(c, running):
            log_w = log_importance_weights(
                model, params, jax.random.fold_in(key, c), x_n, LARGE_K, batch_size=sample_batch_size
            )
            keep = (c < blocks - 1) | (jnp.arange(LARGE_K) < last)
            return jnp.logaddexp(running, jax.nn.logsumexp(jnp.where(keep, log_w, -jnp.inf)))

        return jax.lax.fori_loop(first, end, add, total_n)

    return jax.vmap(example)(keys, x, total)


@partial(jax.jit, static_argnames=("model", "kl", "n_samples", "impl"))
def _elbo_chunk(
    model: VAEModel, params: Params, keys: jax.Array, x: jax.Array, *, kl: str, n_samples: int,
    impl: str | None = None,
) -> jax.Array:
    keys = _wrapped(keys, impl)
    return jax.vmap(lambda key, x_n: elbo(model, params, key, x_n, kl=kl, n_samples=n_samples))(
        keys, x
    )


def _select_groups(params: Params, groups: tuple[str, str]) -> Params:
    """``{"theta": params[groups[0]], "eta": params[groups[1]]}``, what the bound reads."""
    if (
        not isinstance(groups, (tuple, list))
        or len(groups) != 2
        or not all(isinstance(g, str) for g in groups)
    ):
        raise ConfigError(
            f"groups: expected two group names (joint, inference), got {describe(groups)}"
        )
    missing = [g for g in groups if not isinstance(params, Mapping) or g not in params]
    if missing:
        keys = sorted(params) if isinstance(params, Mapping) else describe(params)
        raise ConfigError(f"groups: {missing} not in params, whose groups are {keys}")
    return {"theta": params[groups[0]], "eta": params[groups[1]]}


def _examples(x: ArrayLike, model: VAEModel) -> np.ndarray:
    """``x`` as a host array of shape ``[N, model.data_dim]``, ``N >= 1``, finite, floating, and in
    [0, 1] for a model with a Bernoulli likelihood (:func:`~unigen.models.values.bernoulli_entries`)."""
    data_dim = model.data_dim
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != data_dim:
        raise DataError(f"x: expected shape (N, {data_dim}) with N >= 1, got {describe(array)}")
    if not np.issubdtype(array.dtype, np.floating):
        if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
            raise DataError(f"x: expected a numeric array, got {describe(array)}")
        array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise DataError(f"x: expected finite values, got {bad} NaN/Inf")
    if bernoulli_entries(model):
        check_array(array, source="x", bernoulli=True)
    return array


def _host_keys(keys: jax.Array) -> tuple[np.ndarray, str | None]:
    """``keys`` as a host array of key data and the name of their PRNG implementation (``None``
    for raw ``uint32`` keys). Indexed on the host, a chunk of keys costs no program of its own:
    indexing the typed keys would run six small ones (a gather and its index arithmetic), each
    traced and looked up in the compilation cache in every process."""
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(keys)), jax.random.key_impl(keys)
    return np.asarray(keys), None


def _wrapped(keys: jax.Array, impl: str | None) -> jax.Array:
    """The keys :func:`_host_keys` took apart, inside a compiled chunk."""
    return keys if impl is None else jax.random.wrap_key_data(keys, impl=impl)


def _map_examples(
    chunk_fn: Callable[[Params, jax.Array, jax.Array], jax.Array],
    params: Params,
    x: np.ndarray,
    key: PRNGKey,
    batch_size: int,
) -> np.ndarray:
    """``chunk_fn(params, keys, x, impl=impl)`` over equal chunks of ``batch_size`` examples,
    concatenated; ``keys`` and ``impl`` as :func:`_host_keys` gives them.

    Example n gets ``jax.random.split(key, N)[n]``; the last chunk is padded by repeating the last
    example and the padded results are dropped.
    """
    n = x.shape[0]
    size = min(batch_size, n)
    keys, impl = _host_keys(jax.random.split(key, n))
    out = []
    # Evaluation can take minutes (k=5000 on 10,000 images): a bar on a terminal, silent otherwise.
    with tqdm(total=n, unit="example", leave=False, disable=not sys.stderr.isatty()) as bar:
        for start in range(0, n, size):
            index = np.minimum(np.arange(start, start + size), n - 1)
            values = chunk_fn(params, keys[index], x[index], impl=impl)
            out.append(np.asarray(values)[: min(size, n - start)])
            bar.update(min(size, n - start))
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------
# Mode coverage (ring8, grid25): VEEGAN Table 1 and PacGAN Table 1

from typing import NamedTuple  # noqa: E402 - appended section, kept self-contained

__all__ += ["ModeCoverage", "mode_coverage"]


class ModeCoverage(NamedTuple):
    """The mode-coverage statistics of one set of samples.

    Attributes:
      modes_captured: the number of modes with at least one high-quality sample nearest to it.
      high_quality_fraction: the fraction of samples within ``3 sigma`` of their nearest centre.
      reverse_kl: :math:`\\mathrm{KL}(h \\,\\|\\, u)` in nats, with h the histogram of the
        nearest-mode assignments of all samples and u uniform over the M modes; 0 for a perfectly
        balanced histogram, :math:`\\log M` when every sample is nearest to one mode.
      counts: ``[M]`` the number of samples nearest to each mode (all samples).
    """

    modes_captured: int
    high_quality_fraction: float
    reverse_kl: float
    counts: np.ndarray


def mode_coverage(samples: ArrayLike, centres: ArrayLike, sigma: float) -> ModeCoverage:
    r"""Mode coverage of samples from a mixture with known centres (``ring8``, ``grid25``).

    As VEEGAN (Srivastava et al. 2017, Table 1) and PacGAN (Lin et al. 2018, Table 1) define
    it: each sample is assigned to its nearest centre (Euclidean); it is **high quality** when
    that distance is at most :math:`3\sigma`; a mode is **captured** when at least one
    high-quality sample is assigned to it. The reverse KL is
    :math:`\sum_m h_m \log(M h_m)` over the modes with :math:`h_m > 0`, where :math:`h_m` is the
    fraction of *all* samples assigned to mode m (the histogram of nearest-mode assignments
    against the uniform distribution of the true mixture). The benchmarks draw 2,500 samples.

    For samples of the true mixture with isotropic per-mode standard deviation :math:`\sigma`
    in 2-D (and well-separated modes), a sample is high quality with probability
    :math:`P(\chi^2_2 \le 9) = 1 - e^{-9/2} \approx 0.9889`, not 1.

    Args:
      samples: ``[N, D]`` finite samples, ``N >= 1``.
      centres: ``[M, D]`` the mode centres (``Dataset.centres``), ``M >= 1``.
      sigma: the per-mode standard deviation (``Dataset.sigma``), positive.

    Returns:
      A :class:`ModeCoverage`.

    Raises:
      DataError: ``samples`` or ``centres`` has the wrong shape or non-finite values.
      ConfigError: ``sigma`` is not a positive finite number.
    """
    points = np.asarray(samples, np.float64)
    modes = np.asarray(centres, np.float64)
    if modes.ndim != 2 or modes.shape[0] < 1 or modes.shape[1] < 1:
        raise DataError(f"centres: expected shape (M, D) with M >= 1, got {describe(centres)}")
    if not np.all(np.isfinite(modes)):
        raise DataError("centres: expected finite values, got NaN/Inf")
    if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] != modes.shape[1]:
        raise DataError(
            f"samples: expected shape (N, {modes.shape[1]}) with N >= 1 (the dimension of "
            f"centres), got {describe(samples)}"
        )
    if not np.all(np.isfinite(points)):
        bad = int(np.sum(~np.all(np.isfinite(points), axis=1)))
        raise DataError(f"samples: expected finite values, got {bad} rows with NaN/Inf")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating, np.integer)) \
            or not np.isfinite(sigma) or not sigma > 0:
        raise ConfigError(f"sigma: expected a positive finite number, got {describe(sigma)}")
    distances = np.sqrt(((points[:, None, :] - modes[None, :, :]) ** 2).sum(-1))  # [N, M]
    nearest = np.argmin(distances, axis=1)
    high_quality = distances[np.arange(points.shape[0]), nearest] <= 3.0 * float(sigma)
    count = modes.shape[0]
    counts = np.bincount(nearest, minlength=count)
    captured = np.unique(nearest[high_quality]).size
    histogram = counts / points.shape[0]
    present = histogram > 0
    reverse_kl = float(np.sum(histogram[present] * np.log(count * histogram[present])))
    return ModeCoverage(int(captured), float(np.mean(high_quality)), reverse_kl, counts)


# --------------------------------------------------------------------------------------------
# Inception score (Salimans et al. 2016) from a classifier's predictive probabilities

__all__ += ["inception_score"]


def inception_score(probabilities: ArrayLike) -> float:
    r"""The inception score :math:`\exp\big(\mathbb{E}_x \mathrm{KL}(p(c \mid x) \,\|\, p(c))\big)`
    of samples x, from a classifier's predictive probabilities ``[N, C]`` on them, with
    :math:`p(c) = \frac1N \sum_x p(c \mid x)` (Salimans et al. 2016). It lies in ``[1, C]``: 1
    when every sample gets the same prediction, C when each is classified with certainty and the
    classes are used equally. Terms with :math:`p(c \mid x) = 0` contribute 0.

    Args:
      probabilities: ``[N, C]`` non-negative rows summing to 1 (within 1e-4), ``N >= 1``.

    Returns:
      The score, a float.

    Raises:
      DataError: wrong shape, negative or non-finite values, or rows not summing to 1.
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise DataError(f"probabilities: expected shape (N, C) with N, C >= 1, got {describe(probabilities)}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise DataError("probabilities: expected finite non-negative values, got NaN/Inf or a negative value")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        worst = float(np.max(np.abs(p.sum(axis=1) - 1.0)))
        raise DataError(f"probabilities: expected rows summing to 1, got a row off by {worst:.3g}")
    marginal = p.mean(axis=0)
    terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(p > 0, marginal, 1.0))), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))
