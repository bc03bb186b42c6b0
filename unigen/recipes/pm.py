"""The predictability-minimization recipe (§1.1.3): ``pm``, and its data set ``pm-sources:K``.

PM learns a factorial code, not a generative model: its summary and ``unigen eval`` report the
code's metrics (:func:`unigen.algorithms.pm.evaluate`) instead of a likelihood, and it has no
samples. Defaults: a linear encoder (``--hidden ''``) and, on ``pm-sources:K``, K code units.
"""

from __future__ import annotations

from typing import Any

from unigen.errors import ConfigError
from unigen.recipes.base import Option, Recipe, widths

PREFIX = "pm-sources:"
"""The data set name ``pm-sources:K``: K binary sources, mixed (:func:`unigen.models.pm.sources_split`)."""


def load_sources(config: dict[str, Any], split: str):
    """The split ``split`` of ``config["data"] = "pm-sources:K"`` as a :class:`~unigen.data.Dataset`;
    real-valued mixtures, so ``--binarize`` must be ``auto`` or ``none``."""
    from unigen import data
    from unigen.models.pm import sources_split

    if config["binarize"] not in ("auto", "none"):
        raise ConfigError(f"--binarize: expected auto or none for {config['data']} (real-valued mixtures), "
                          f"got {config['binarize']}")
    return data.from_array(sources_split(config["data"], split).x, name=config["data"], split=split)


def _configure(config: dict[str, Any], train_set) -> None:
    del train_set
    if config["latent_dim"] is None:
        data = config["data"]
        config["latent_dim"] = int(data[len(PREFIX):]) if data.startswith(PREFIX) else 20
    if config["latent_dim"] < 2:
        raise ConfigError(f"--latent-dim: expected at least 2 code units for pm, got {config['latent_dim']}")


def _build(config: dict[str, Any]):
    from unigen.algorithms.pm import predictability_minimization
    from unigen.models.pm import pm_model

    model = pm_model(config["data_dim"], config["latent_dim"], hidden=tuple(config["hidden"]),
                     activation=config["activation"])
    return model, predictability_minimization(model)


def _metrics(config: dict[str, Any], model, params, dataset) -> dict[str, Any]:
    """:func:`unigen.algorithms.pm.evaluate` on ``dataset``, with the sources of ``pm-sources:K``."""
    from unigen.algorithms.pm import evaluate
    from unigen.models.pm import sources_split

    sources = sources_split(config["data"], dataset.split).sources if config["data"].startswith(PREFIX) else None
    return evaluate(model, params, dataset.x, sources)


def _summarize(config, model, params, result, datasets) -> dict[str, Any]:
    del result
    return _metrics(config, model, params, datasets["test"])


def _evaluate(config, model, params, dataset, key, k) -> dict[str, Any]:
    del key, k
    return _metrics(config, model, params, dataset)


PM = Recipe(
    "pm", "predictability minimization (§1.1.3): a factorial code (try --data pm-sources:K --lr 0.02)", None,
    (Option("latent_dim", int, None, "code units (default K on pm-sources:K, else 20)", minimum=1),
     Option("hidden", widths, (), "hidden widths of the encoder (default none: a linear encoder)"),
     Option("activation", str, "relu", "relu | tanh | softplus | elu | leaky_relu (default relu)")),
    _build, _summarize, configure=_configure, evaluate=_evaluate,
    draw="which learns a code, not a generative model",
)
