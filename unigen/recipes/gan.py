"""The implicit-generator recipes (§3): ``gan``, ``infogan`` and ``iwgan`` (Hu et al. 2018, §4.1).

An implicit generator has no likelihood: its summary is its last losses and, on the 2-D mixtures,
the mode coverage of the 2,500 points of ``samples.png`` (VEEGAN/PacGAN Table 1:
:func:`unigen.metrics.mode_coverage` with the data set's centres and sigma).
"""

from __future__ import annotations

from typing import Any

from unigen.errors import ConfigError
from unigen.recipes.base import SAMPLES, Option, Recipe, in_chunks, widths

NETWORK = (
    Option("latent_dim", int, 2, "noise dimension (default 2)", minimum=1),
    Option("hidden", widths, (64, 64), "hidden widths of every network, e.g. 64,64 (default 64,64)"),
    Option("activation", str, "relu", "relu | tanh | softplus | elu | leaky_relu (default relu)"),
)


def _configure_gan(config: dict[str, Any], train_set) -> None:
    del train_set
    config["likelihood"] = None  # an implicit generator: samples only, no likelihood
    if config["gradient_penalty"] < 0:
        raise ConfigError(f"--gradient-penalty: expected a number >= 0, got {config['gradient_penalty']}")
    if config["pack"] < 1 or config["batch_size"] % config["pack"]:
        raise ConfigError(f"--pack: expected a positive divisor of --batch-size {config['batch_size']} (the "
                          f"discriminator judges --pack rows of each batch at once), got {config['pack']}")
    if config["form"] == "variational-em" and config["generator_loss"] != "non-saturating":
        raise ConfigError(f"--generator-loss: expected non-saturating with --form variational-em (§3.1's "
                          f"generator objective is the non-saturating one), got {config['generator_loss']}")


def _configure_infogan(config: dict[str, Any], train_set) -> None:
    config["likelihood"] = None
    if not config["information_weight"] > 0:
        raise ConfigError(f"--information-weight: expected a positive number, got {config['information_weight']}")
    if config["code_values"] is None:  # one code value per mode of a mixture
        config["code_values"] = 10 if train_set.centres is None else int(train_set.centres.shape[0])


def _gan_model(config: dict[str, Any]):
    from unigen.models.gan import gan_model

    hidden = tuple(config["hidden"])
    return gan_model(config["data_dim"], config["latent_dim"], generator_hidden=hidden, discriminator_hidden=hidden,
                     activation=config["activation"], pack=config.get("pack", 1))


def _build_gan(config: dict[str, Any]):
    from unigen.algorithms.gan import gan

    model = _gan_model(config)
    return model, gan(model, generator_loss=config["generator_loss"], form=config["form"],
                      gradient_penalty=config["gradient_penalty"])


def _build_iwgan(config: dict[str, Any]):
    from unigen.algorithms.iwgan import iwgan

    model = _gan_model(config)
    return model, iwgan(model, gradient_penalty=config["gradient_penalty"])


def _configure_iwgan(config: dict[str, Any], train_set) -> None:
    _configure_gan({**config, "pack": 1, "form": "classic", "generator_loss": "non-saturating"}, train_set)
    config["likelihood"] = None


def _build_infogan(config: dict[str, Any]):
    from unigen.algorithms.infogan import infogan
    from unigen.models.infogan import infogan_model

    hidden = tuple(config["hidden"])
    model = infogan_model(config["data_dim"], config["latent_dim"], config["code_values"], generator_hidden=hidden,
                          discriminator_hidden=hidden, inference_hidden=hidden, activation=config["activation"])
    return model, infogan(model, information_weight=config["information_weight"])


def draw(model, params, config: dict[str, Any], n: int, seed: int):
    """``[n, D]`` generator outputs: example i drawn with key ``split(key(seed), n)[i]``."""
    from functools import partial

    import jax

    del config
    keys = jax.random.split(jax.random.key(seed), n)

    @jax.jit  # the parameters an argument, not constants of the program: JAX's cache serves the next run
    def drawn(theta, chunk):
        return jax.vmap(lambda k: model.generator.sample(theta, k, {})["x"])(chunk)

    return in_chunks(partial(drawn, params["theta"]), keys)


def summarize(config, model, params, result, datasets) -> dict[str, Any]:
    """InfoGAN's last information bound and, on a 2-D mixture, the mode coverage of the
    ``samples.png`` points (drawn with ``--seed``)."""
    summary: dict[str, Any] = {}
    if config["algorithm"] == "infogan":
        summary["information"] = result.history[-1].get("generator/information") if result.history else None
    train_set = datasets["train"]
    if train_set.centres is not None:
        from unigen.metrics import mode_coverage

        n = SAMPLES["points"]
        coverage = mode_coverage(draw(model, params, config, n, config["seed"]), train_set.centres, train_set.sigma)
        summary.update(modes_captured=int(coverage.modes_captured), modes=int(train_set.centres.shape[0]),
                       high_quality_fraction=float(coverage.high_quality_fraction),
                       reverse_kl=float(coverage.reverse_kl), coverage_samples=n)
    return summary


_NO_EVALUATION = "an implicit generator without a likelihood to evaluate (its mode coverage is in summary.json)"

_PENALTY = Option("gradient_penalty", float, 0.0, "weight gamma of the R1 penalty gamma/2 E_data |grad_x d(x)|^2 on "
                                                  "the discriminator (default 0, none)")

GAN = Recipe(
    "gan", "generative adversarial net (§3); --form variational-em rewrites it as variational EM (§3.1)", "gan",
    (*NETWORK,
     Option("generator_loss", str, "non-saturating", "the generator's objective, max E[log D(G(z))] (default) or "
                                                     "min E[log(1 - D(G(z)))]", choices=("non-saturating", "minimax")),
     Option("form", str, "classic", "the objectives as in §3 (default) or rewritten as variational EM (§3.1)",
            choices=("classic", "variational-em")),
     _PENALTY,
     Option("pack", int, 1, "examples the discriminator judges at once (PacGAN; default 1)")),
    _build_gan, summarize, configure=_configure_gan, evaluate=_NO_EVALUATION, draw=draw, binarize=None,
    resume_defaults={"gradient_penalty": 0.0, "pack": 1},  # gan runs made before these options existed
)

IWGAN = Recipe(
    "iwgan", "importance-weighted GAN: the generator's samples weighted by the discriminator's odds (Hu et al. "
             "2018, §4.1)", "iwgan",
    (*NETWORK, _PENALTY),
    _build_iwgan, summarize, configure=_configure_iwgan, evaluate=_NO_EVALUATION, draw=draw, binarize=None,
)

INFOGAN = Recipe(
    "infogan", "InfoGAN: a GAN whose categorical code stays recoverable through a mutual-information bound (§3.2)", "infogan",
    (*NETWORK,
     Option("code_values", int, None, "values K of the categorical code (default: the number of modes, 8 for "
                                      "ring8, 25 for grid25; 10 otherwise)", minimum=2),
     Option("information_weight", float, 1.0, "weight of the mutual-information bound (default 1)")),
    _build_infogan, summarize, configure=_configure_infogan, evaluate=_NO_EVALUATION, draw=draw, binarize=None,
)
