r"""Hand-written losses of the built-in algorithms: the baselines of ``compiled_vs_hand.py``.

Every built-in algorithm's phases are compiled from its declaration
(:func:`unigen.algebra.algorithm`). Each function here returns an
:class:`~unigen.core.Algorithm` with the *same* phases written out by hand in plain JAX over
the model's own functions: the same phase names, parameter groups, PRNG keys (the compiler's
documented convention: row i of a data expectation gets ``split(key, B)[i]``; the s-th draw of a
model expectation ``split(key, S)[s]`` and its body ``fold_in(·, 1)``; branch i of an
enumeration ``fold_in(key, i)``), the same metric names, and ``objective=None``. So the trainer
runs both the same way, and the two steps differ only in how the loss was written.
``tests/test_hand_losses.py`` checks that each phase's loss, metrics and gradient (in the
phase's groups) equal the compiled phase's to float rounding.

The objectives (each loss is the negated objective, as the compiled ``"max"`` phases):

* ``vae``: the ELBO, :func:`unigen.algorithms.vae.reference_loss` (analytic KL, one draw);
* ``iwae``: :math:`\log \frac1k \sum_i w_i`, :func:`unigen.algorithms.iwae.reference_loss`;
* ``gan`` (classic form, non-saturating generator):
  discriminator :math:`\mathbb{E}_{data}[\log \sigma(d(x))] + \mathbb{E}_G[\log \sigma(-d(x))]`,
  generator :math:`\mathbb{E}_G[\log \sigma(d(x))]`;
* ``infogan`` (variational-EM form, weight 1):
  discriminator :math:`\tfrac12 \mathbb{E}_G[\log \sigma(-d)] + \tfrac12
  \mathbb{E}_{data}[\log \sigma(d)]`, generator :math:`\tfrac12 \mathbb{E}_G[\log \sigma(d)]
  + \tfrac12 \mathbb{E}_{data}[\log \sigma(-d)] + \frac1K \sum_c \mathbb{E}[\log q_\eta(c \mid
  G(\epsilon, c))] + \log K`;
* ``wake_sleep``: wake :math:`\mathbb{E}_{q_\lambda(h|x)}[\log p_\theta(x, h)]` at one drawn h
  per example, sleep :math:`\log q_\lambda(h \mid x)` at B ancestral dreams;
* ``rws``: wake-θ the importance-weighted bound (:func:`unigen.algorithms.iwae_bound`), wake-φ
  :math:`\sum_i \tilde w_i \log q_\phi(h_i \mid x)` with constant self-normalized weights,
  sleep-φ as the sleep phase;
* ``variational_em`` (score, baselines none/mean/nvil): the E-step's score-function surrogate
  :math:`-\frac{1}{BS}\sum_{b,s} \mathrm{sg}[a_{b,s}] \log q_\phi(z_{b,s} \mid x_b)` with the
  centred learning signal a (plus NVIL's regression loss), the M-step
  :math:`-\frac{1}{BS}\sum_{b,s} \log p_\theta(x_b, z_{b,s})`: the losses
  ``unigen.algorithms.variational_em`` wrote by hand before it was compiled. One change, in the
  *values* only: each loss reports minus the bound's estimate :math:`\frac{1}{BS}\sum l`
  (plus the NVIL loss), as a compiled ``"max"`` phase does, where the old E-step reported its
  surrogate's value :math:`-\frac{1}{BS}\sum \mathrm{sg}[a] \log q` and the old M-step
  :math:`-\frac{1}{BS}\sum \log p_\theta`; a surrogate term of value zero,
  :math:`\mathrm{sg}[a](\log q - \mathrm{sg}[\log q])`, carries the same gradient as before.
  The gradients are unchanged: the compiled E-step's objective holds the learning signal's
  :math:`\log q_\phi` constant (``sg``), as the hand-written E-step did (it dropped the
  zero-mean term :math:`-\nabla_\phi \log q_\phi`).
* ``classic_em``: the M-step at the exact posterior,
  :math:`\sum_z \mathrm{sg}[q_*(z \mid x)] \log p_\theta(x, z)` by enumeration, reporting
  the exact :math:`\log p_\theta(x)` (the hand-written ``exact_m_step_phase`` it replaced, now
  also reporting that objective as ``"objective"``).

The score-function estimator's surrogate of the compiled wake and sleep phases has the value
of the plain objective and, in the updated group, its gradient (the score term differentiates
only the group the phase does not update), so the hand-written forms omit it.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from unigen.algorithms import iwae_bound
from unigen.algorithms.iwae import reference_loss as iwae_reference_loss
from unigen.algorithms.vae import batch_data
from unigen.algorithms.vae import reference_loss as vae_reference_loss
from unigen.core import Algorithm, Batch, Metrics, Params, Phase, PRNGKey
from unigen.models.gan import GANModel
from unigen.models.helmholtz import HelmholtzMachine
from unigen.models import sbn
from unigen.models.infogan import InfoGANModel
from unigen.models.vae import VAEModel
from unigen.nets import mlp

__all__ = ["classic_em", "gan", "infogan", "iwae", "rws", "vae", "variational_em", "wake_sleep"]

Loss = Callable[[Params, PRNGKey, Batch], tuple[jax.Array, Metrics]]


def _maximized(objective: jax.Array, **metrics: jax.Array) -> tuple[jax.Array, Metrics]:
    """``(−objective, {"loss", "objective", **metrics})``, a ``"max"`` phase's output."""
    return -objective, {"loss": -objective, "objective": objective, **metrics}


def _split_groups(groups: tuple[str, ...], inits: tuple[Callable[[PRNGKey], Params], ...]):
    """``init(key) -> {group: init_g(split(key, n)[g])}`` (the built-in algorithms' order)."""

    def init(key: PRNGKey) -> dict[str, Params]:
        keys = jax.random.split(key, len(groups))
        return {group: fn(k) for group, fn, k in zip(groups, inits, keys)}

    return init


# --- VAE and IWAE ------------------------------------------------------------------------------


def vae(model: VAEModel) -> Algorithm:
    """Phase ``"elbo"`` in ``("theta", "eta")``: the hand-written ELBO of issue [1]."""
    init = _split_groups(("theta", "eta"), (model.joint.init, model.inference.init))
    return Algorithm(init, (Phase("elbo", ("theta", "eta"), vae_reference_loss(model)),))


def iwae(model: VAEModel, k: int) -> Algorithm:
    """Phase ``"iwae"`` in ``("theta", "eta")``: the hand-written k-sample bound, reporting the
    compiled phase's metrics ``{"loss", "iwae_bound"}``."""
    reference = iwae_reference_loss(model, k)

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        value, metrics = reference(params, key, batch)
        return value, {"loss": metrics["loss"], "iwae_bound": metrics["iwae_bound"]}

    init = _split_groups(("theta", "eta"), (model.joint.init, model.inference.init))
    return Algorithm(init, (Phase("iwae", ("theta", "eta"), loss),))


# --- GAN and InfoGAN ---------------------------------------------------------------------------


def _logits(logit: Callable[[Params, jax.Array], jax.Array], phi: Params, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda row: logit(phi, row))(x)


def _generated(sample: Callable[..., dict[str, jax.Array]], theta: Params, key: PRNGKey,
               count: int, given: dict[str, Any]) -> jax.Array:
    """``count`` generated rows, row i drawn with ``split(key, count)[i]``."""
    return jax.vmap(lambda k: sample(theta, k, given)["x"])(jax.random.split(key, count))


def gan(model: GANModel) -> Algorithm:
    """Phases ``"discriminator"`` (``"phi"``) and ``"generator"`` (``"theta"``, the
    non-saturating loss), classic form, written with ``jax.nn.log_sigmoid``."""

    def sides(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, jax.Array]:
        x = batch_data(batch, model.data_dim)
        fake = _generated(model.generator.sample, params["theta"], key, x.shape[0], {})
        logit = model.discriminator_logit
        return _logits(logit, params["phi"], x), _logits(logit, params["phi"], fake)

    def discriminator(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        real, fake = sides(params, key, batch)
        return _maximized(jnp.mean(jax.nn.log_sigmoid(real)) + jnp.mean(jax.nn.log_sigmoid(-fake)))

    def generator(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        fake = _generated(model.generator.sample, params["theta"], key, x.shape[0], {})
        return _maximized(jnp.mean(jax.nn.log_sigmoid(
            _logits(model.discriminator_logit, params["phi"], fake))))

    init = _split_groups(("theta", "phi"), (model.generator.init, model.discriminator.init))
    return Algorithm(init, (Phase("discriminator", "phi", discriminator),
                            Phase("generator", "theta", generator)))


def infogan(model: InfoGANModel) -> Algorithm:
    """Phases ``"discriminator"`` (``"phi"``) and ``"generator"`` (``("theta", "eta")``) of
    InfoGAN with a categorical code and weight 1, written with log-sigmoid and log-softmax."""
    values = model.code_values

    def sides(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, jax.Array]:
        x = batch_data(batch, model.data_dim)
        # the y = 0 branch of the enumeration over y: key fold_in(key, 0)
        fake = _generated(model.generator.sample, params["theta"], jax.random.fold_in(key, 0),
                          x.shape[0], {})
        logit = model.discriminator_logit
        return _logits(logit, params["phi"], x), _logits(logit, params["phi"], fake)

    def discriminator(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        real, fake = sides(params, key, batch)
        return _maximized(0.5 * jnp.mean(jax.nn.log_sigmoid(-fake))
                          + 0.5 * jnp.mean(jax.nn.log_sigmoid(real)))

    def information(params: Params, key: PRNGKey, count: int) -> jax.Array:
        """(1/K) Σ_c mean_i log q_η(c | G(ε_i, c)) + log K; code c's draws with fold_in(key, c)."""
        def one(code: jax.Array, code_key: PRNGKey) -> jax.Array:
            coded = _generated(model.generator.sample, params["theta"], code_key, count,
                               {"z": code})
            log_q = jax.vmap(lambda row: jax.nn.log_softmax(
                model.inference_logits(params["eta"], row))[code])(coded)
            return jnp.mean(log_q)

        codes = jnp.arange(values, dtype=jnp.int32)
        keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(codes)
        return jnp.mean(jax.vmap(one)(codes, keys)) + math.log(values)

    def generator(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        real, fake = sides(params, key, batch)
        adversarial = (0.5 * jnp.mean(jax.nn.log_sigmoid(fake))
                       + 0.5 * jnp.mean(jax.nn.log_sigmoid(-real)))
        bound = information(params, key, real.shape[0])
        return _maximized(adversarial + bound, information=bound)

    init = _split_groups(("theta", "phi", "eta"), (model.generator.init, model.discriminator.init,
                                                   model.inference.init))
    return Algorithm(init, (Phase("discriminator", "phi", discriminator),
                            Phase("generator", ("theta", "eta"), generator)))


# --- Wake-sleep and reweighted wake-sleep ------------------------------------------------------


def _dreams(model: HelmholtzMachine, theta: Params, key: PRNGKey, count: int):
    """``count`` ancestral dreams, dream b with ``k_b = split(key, count)[b]``: h ~ p_θ(h) with
    ``k_b``, then x ~ p_θ(x|h) with ``split(fold_in(k_b, 1), 1)[0]``; no gradient."""

    def dream(k: PRNGKey) -> tuple[jax.Array, jax.Array]:
        h = model.prior(theta).sample(k)
        x = model.decoder_distribution(theta, h).sample(
            jax.random.split(jax.random.fold_in(k, 1), 1)[0])
        return h, x

    return jax.lax.stop_gradient(jax.vmap(dream)(jax.random.split(key, count)))


def _sleep(model: HelmholtzMachine, group: str) -> Loss:
    """The sleep loss in ``group``: −mean_b log q(h_b | x_b) over B dreams."""

    def loss(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        count = batch_data(batch, model.data_dim).shape[0]
        h, x = _dreams(model, params["theta"], key, count)
        log_q = jax.vmap(lambda xb, hb: model.inference.log_prob(
            params[group], {"z": hb}, {"x": xb}))(x, h)
        return _maximized(jnp.mean(log_q))

    return loss


def wake_sleep(model: HelmholtzMachine) -> Algorithm:
    """Phases ``"wake"`` (``"theta"``) and ``"sleep"`` (``"lambda"``)."""

    def wake(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)

        def one(key_b: PRNGKey, x_b: jax.Array) -> tuple[jax.Array, jax.Array]:
            h = model.inference.sample(params["lambda"], jax.random.split(key_b, 1)[0],
                                       {"x": x_b})["z"]
            h = jax.lax.stop_gradient(h)
            log_likelihood = model.decoder_distribution(params["theta"], h).log_prob(x_b)
            return log_likelihood + model.prior(params["theta"]).log_prob(h), log_likelihood

        log_joint, log_likelihood = jax.vmap(one)(jax.random.split(key, x.shape[0]), x)
        return _maximized(jnp.mean(log_joint), reconstruction=jnp.mean(log_likelihood))

    init = _split_groups(("theta", "lambda"), (model.joint.init, model.inference.init))
    return Algorithm(init, (Phase("wake", "theta", wake),
                            Phase("sleep", "lambda", _sleep(model, "lambda"))))


def rws(model: HelmholtzMachine, k: int) -> Algorithm:
    """Phases ``"wake_theta"`` (``"theta"``), ``"wake_phi"`` and ``"sleep_phi"`` (``"phi"``)."""

    def wake_theta(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        pair = {"theta": params["theta"], "eta": params["phi"]}
        bound = jnp.mean(jax.vmap(lambda key_b, x_b: iwae_bound(model, pair, key_b, x_b, k))(
            jax.random.split(key, x.shape[0]), x))
        return -bound, {"loss": -bound, "iwae_bound": bound}

    def wake_phi(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)

        def one(key_b: PRNGKey, x_b: jax.Array) -> jax.Array:
            draw = lambda key_i: model.inference.sample(params["phi"], key_i, {"x": x_b})["z"]  # noqa: E731
            h = jax.lax.stop_gradient(jax.vmap(draw)(jax.random.split(key_b, k)))
            log_p = jax.vmap(lambda h_i: model.joint.log_prob(
                params["theta"], {"x": x_b, "z": h_i}, {}))(h)
            log_q = jax.vmap(lambda h_i: model.inference.log_prob(
                params["phi"], {"z": h_i}, {"x": x_b}))(h)
            weights = jax.lax.stop_gradient(jax.nn.softmax(log_p - log_q))
            return jnp.sum(weights * log_q)

        return _maximized(jnp.mean(jax.vmap(one)(jax.random.split(key, x.shape[0]), x)))

    init = _split_groups(("theta", "phi"), (model.joint.init, model.inference.init))
    return Algorithm(init, (Phase("wake_theta", "theta", wake_theta),
                            Phase("wake_phi", "phi", wake_phi),
                            Phase("sleep_phi", "phi", _sleep(model, "phi"))))


# --- Variational EM (score function, baselines none / mean / nvil) --------------------------------


def _vem_draws(model: HelmholtzMachine, params: Params, key: PRNGKey, x: jax.Array, n: int):
    """n draws of z from q_φ(z|x) (draw s uses ``split(key, n)[s]``), with log p_θ(x, z) and
    log q_φ(z|x)."""
    theta, phi = params["theta"], params["phi"]
    keys = jax.random.split(key, n)
    z = jax.lax.stop_gradient(
        jax.vmap(lambda k: model.inference.sample(phi, k, {"x": x})["z"])(keys)
    )
    log_p = jax.vmap(lambda z_s: model.joint.log_prob(theta, {"x": x, "z": z_s}, {}))(z)
    log_q = jax.vmap(lambda z_s: model.inference.log_prob(phi, {"z": z_s}, {"x": x}))(z)
    return log_p, log_q


def _leave_one_out_mean(values: jax.Array) -> jax.Array:
    """For each entry, the mean of all the other entries (0 when there is only one)."""
    count = values.size
    if count == 1:
        return jnp.zeros_like(values)
    return (jnp.sum(values) - values) / (count - 1)


def variational_em(model: HelmholtzMachine, *, baseline: str = "none", n_samples: int = 1,
                   normalize: bool = True, baseline_hidden: int = 100) -> Algorithm:
    """Phases ``"e_step"`` (``"phi"``, the score-function E-step with ``baseline``) and
    ``"m_step"`` (``"theta"``), with the parameters of
    :func:`unigen.algorithms.variational_em.init_params`."""
    network = (mlp([model.data_dim, baseline_hidden, 1], "tanh") if baseline == "nvil" else None)

    def both(params: Params, key: PRNGKey, batch: Batch):
        x = batch_data(batch, model.data_dim)
        keys = jax.random.split(key, x.shape[0])
        log_p, log_q = jax.vmap(lambda k, x_b: _vem_draws(model, params, k, x_b, n_samples))(keys, x)
        return x, log_p, log_q

    def e_step(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x, log_p, log_q = both(params, key, batch)
        signal = jax.lax.stop_gradient(log_p - log_q)  # [B, S]
        metrics = {"elbo": jnp.mean(signal)}
        penalty = jnp.zeros((), signal.dtype)
        if baseline == "none":
            centred = signal
        elif baseline == "mean":
            centred = signal - _leave_one_out_mean(signal)
        else:
            learned = jax.vmap(lambda x_b: network.apply(params["phi"]["nvil_baseline"], x_b)[0])(x)
            residual = signal - jax.lax.stop_gradient(learned)[:, None]
            mean = _leave_one_out_mean(residual)
            centred = residual - mean
            if normalize:
                centred = centred / jnp.maximum(1.0, jnp.std(centred))
            penalty = jnp.mean((signal - jax.lax.stop_gradient(mean) - learned[:, None]) ** 2)
            metrics["baseline_loss"] = penalty
        score = jax.lax.stop_gradient(centred) * (log_q - jax.lax.stop_gradient(log_q))
        value = -jnp.mean(signal) - jnp.mean(score) + penalty
        return value, {**metrics, "loss": value}

    def m_step(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        _, log_p, log_q = both(params, key, batch)
        elbo = jnp.mean(log_p - jax.lax.stop_gradient(log_q))
        return -elbo, {"loss": -elbo, "elbo": elbo}

    def init(key: PRNGKey) -> dict[str, Params]:
        key_theta, key_phi, key_baseline = jax.random.split(key, 3)
        params = {"theta": model.joint.init(key_theta), "phi": dict(model.inference.init(key_phi))}
        if network is not None:
            params["phi"]["nvil_baseline"] = network.init(key_baseline)
        return params

    return Algorithm(init, (Phase("e_step", "phi", e_step), Phase("m_step", "theta", m_step)))


def classic_em(model: HelmholtzMachine) -> Algorithm:
    """Phase ``"m_step"`` (``"theta"``): classic EM's M-step at the exact E-step."""

    def m_step(params: Params, key: PRNGKey, batch: Batch) -> tuple[jax.Array, Metrics]:
        x = batch_data(batch, model.data_dim)
        theta = params["theta"]

        def one(x_b: jax.Array) -> tuple[jax.Array, jax.Array]:
            states, log_post = sbn.posterior(model, theta, x_b)
            log_joint = jax.vmap(lambda z: model.joint.log_prob(theta, {"x": x_b, "z": z}, {}))(
                states)
            weights = jax.lax.stop_gradient(jnp.exp(log_post))
            return jnp.sum(weights * log_joint), jax.nn.logsumexp(log_joint)

        expected, log_likelihood = jax.vmap(one)(x)
        return _maximized(jnp.mean(expected), log_likelihood=jnp.mean(log_likelihood))

    def init(key: PRNGKey) -> dict[str, Params]:
        return {"theta": model.joint.init(jax.random.split(key, 3)[0])}

    return Algorithm(init, (Phase("m_step", "theta", m_step),))
