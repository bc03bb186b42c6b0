"""The recipes of an autoencoder with an adversary: ``aae`` and ``vae-gan``.

Both are a :class:`~unigen.models.vae.VAEModel` (options as ``vae``'s) and a discriminator with the
same hidden widths. ``vae-gan`` keeps the VAE's outputs (test ELBO and IS-NLL in ``summary.json``,
decoder means in ``samples.png``, ``unigen eval``) and trains on grey levels by default (its
generator's outputs are grey levels: on binarized data a discriminator would tell them apart by
that alone). ``aae`` has a deterministic encoder and so no likelihood bound: its summary is the
test reconstruction log-likelihood :math:`\\log p_\\theta(x \\mid E_\\eta(x))` and the critic's
accuracy on test codes against prior draws; its samples are decoder means of prior draws.
"""

from __future__ import annotations

from typing import Any

from unigen.recipes import likelihood
from unigen.recipes import vae as vae_recipes
from unigen.recipes.base import Option, Recipe


def _vae(config: dict[str, Any]):
    from unigen.models.vae import vae_model

    return vae_model(config["data_dim"], config["latent_dim"], hidden=tuple(config["hidden"]),
                     activation=config["activation"], likelihood=config["likelihood"])


def _discriminator(config: dict[str, Any], inputs: int):
    from unigen.nets import mlp

    return mlp([inputs, *config["hidden"], 1], config["activation"])


def _build_aae(config: dict[str, Any]):
    from unigen.algorithms.aae import AAEModel, aae

    model = AAEModel(_vae(config), _discriminator(config, config["latent_dim"]))
    return model, aae(model)


def _build_vae_gan(config: dict[str, Any]):
    from unigen.algorithms.vae_gan import VAEGANModel, vae_gan

    model = VAEGANModel(_vae(config), _discriminator(config, config["data_dim"]))
    return model, vae_gan(model)


def _aae_metrics(config, model, params, x, key) -> dict[str, Any]:
    """Mean test :math:`\\log p_\\theta(x \\mid E_\\eta(x))` and the critic's accuracy (codes vs prior)."""
    import jax
    import jax.numpy as jnp

    from unigen.algorithms.aae import encode

    del config
    vae, x = model.autoencoder, jnp.asarray(x)
    codes = jax.vmap(lambda row: encode(model, params["eta"], row))(x)
    reconstruction = jax.vmap(lambda row, z: vae.decoder_distribution(params["theta"], z).log_prob(row))(x, codes)
    prior = jax.vmap(lambda k: vae.prior(params["theta"]).sample(k))(jax.random.split(key, x.shape[0]))
    logit = jax.vmap(lambda z: model.critic.apply(params["phi"], z)[0])
    correct = jnp.concatenate([logit(prior) > 0, logit(codes) <= 0])
    return {"test_reconstruction": float(jnp.mean(reconstruction)), "critic_accuracy": float(jnp.mean(correct))}


def _summarize_aae(config, model, params, result, datasets) -> dict[str, Any]:
    import jax

    del result
    return _aae_metrics(config, model, params, datasets["test"].x, jax.random.key(config["seed"] + 1))


def _evaluate_aae(config, model, params, dataset, key, k) -> dict[str, Any]:
    del k
    return _aae_metrics(config, model, params, dataset.x, key)


def _draw_aae(model, params, config, n: int, seed: int):
    return likelihood.draw(model.autoencoder, params, config, n, seed)


def _vae_likelihoods(config, model, params, x, key, k: int) -> dict[str, Any]:
    return vae_recipes.likelihoods(config, model.vae, params, x, key, k)


def _draw_vae_gan(model, params, config, n: int, seed: int):
    return likelihood.draw(model.vae, params, config, n, seed)


_LATENT = Option("latent_dim", int, 8, "latent dimension (default 8)", minimum=1)
_HIDDEN = vae_recipes.NETWORK[1:3]  # --hidden, --activation

AAE = Recipe(
    "aae", "adversarial autoencoder (Makhzani et al.; Hu et al. §3.2): a GAN on codes", "aae",
    (_LATENT, *_HIDDEN, likelihood.LIKELIHOOD),
    _build_aae, _summarize_aae, configure=likelihood.resolve_likelihood, evaluate=_evaluate_aae, draw=_draw_aae,
)

VAE_GAN = Recipe(
    "vae-gan", "VAE/GAN minimizing both KL directions (Larsen et al.; Hu et al. §3.4)", "vae-gan",
    (_LATENT, *_HIDDEN, likelihood.LIKELIHOOD, likelihood.EVAL_K),
    _build_vae_gan, likelihood.summarizer(_vae_likelihoods), configure=likelihood.resolve_likelihood,
    evaluate=likelihood.evaluator(_vae_likelihoods), draw=_draw_vae_gan, binarize=None,
)
