"""The VAE recipes: ``vae`` (the ELBO, §2.3), ``iwae`` (the importance-weighted bound) and ``aavae``
(the adversary-activated VAE, Hu et al. 2018, §4.2)."""

from __future__ import annotations

from typing import Any

from unigen.recipes import likelihood
from unigen.recipes.base import Option, Recipe, widths

NETWORK = (
    Option("latent_dim", int, 20, "latent dimension (default 20)", minimum=1),
    Option("hidden", widths, (400,), "hidden widths of encoder and decoder, e.g. 400 or 200,200 (default 400)"),
    Option("activation", str, "relu", "relu | tanh | softplus | elu | leaky_relu (default relu)"),
    likelihood.LIKELIHOOD,
    likelihood.EVAL_K,
)


def _model(config: dict[str, Any]):
    from unigen.models.vae import vae_model

    return vae_model(config["data_dim"], config["latent_dim"], hidden=tuple(config["hidden"]),
                     activation=config["activation"], likelihood=config["likelihood"])


def _build_vae(config: dict[str, Any]):
    from unigen.algorithms.vae import vae

    model = _model(config)
    return model, vae(model, kl=config["kl"])


def _build_iwae(config: dict[str, Any]):
    from unigen.algorithms.iwae import iwae

    model = _model(config)
    return model, iwae(model, config["k"])


def _build_aavae(config: dict[str, Any]):
    from unigen import nets
    from unigen.algorithms.aavae import aavae

    model = _model(config)
    discriminator = nets.mlp([config["data_dim"], *config["hidden"], 1], config["activation"])
    return model, aavae(model, discriminator)


def likelihoods(config, model, params, x, key, k: int) -> dict[str, Any]:
    """Test IS-NLL (:func:`unigen.metrics.is_nll`, k samples) and ELBO (:func:`unigen.metrics.test_elbo`)."""
    from unigen.metrics import is_nll, test_elbo

    del config
    return {"is_nll": is_nll(model, params, x, key, k=k), "elbo": test_elbo(model, params, x, key)}


_COMMON = dict(summarize=likelihood.summarizer(likelihoods), configure=likelihood.resolve_likelihood,
               evaluate=likelihood.evaluator(likelihoods), draw=likelihood.draw)

VAE = Recipe(
    "vae", "variational autoencoder: maximize the ELBO (§2.3, §3.3)", "vae",
    (*NETWORK, Option("kl", str, "analytic", "analytic | monte_carlo (default analytic)")),
    _build_vae, **_COMMON,
)

AAVAE = Recipe(
    "aavae", "adversary-activated VAE: real and generated examples weighted by a trained discriminator "
             "(Hu et al. 2018, §4.2; the discriminator has the --hidden widths too)", "aavae",
    NETWORK, _build_aavae, **_COMMON,
)

IWAE = Recipe(
    "iwae", "importance-weighted autoencoder: maximize the k-sample IWAE bound (§2.3)", "iwae",
    (*NETWORK, Option("k", int, 5, "importance samples of the IWAE bound (default 5)", minimum=1)),
    _build_iwae, **_COMMON,
)
