"""What the recipes of likelihood models share: VAEs and Helmholtz machines.

Both have a prior p(z) and a decoder mean E[x | z] (``model.prior``, ``model.decode_mean``), are
summarized by the test IS-NLL and ELBO, and resolve ``--likelihood auto`` from the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unigen.recipes.base import Option, in_chunks

Likelihoods = Callable[[dict[str, Any], Any, Any, Any, Any, int], dict[str, Any]]
"""``likelihoods(config, model, params, x, key, k) -> {"is_nll", "elbo", ...}``."""

LIKELIHOOD = Option("likelihood", str, "auto",
                    "bernoulli | gaussian | auto (bernoulli for images, gaussian for 2-D points)")
EVAL_K = Option("eval_k", int, 1000, "importance samples for the test IS-NLL (default 1000)", minimum=1,
                same_on_resume=False)


def resolve_likelihood(config: dict[str, Any], train_set) -> None:
    """``--likelihood auto``: bernoulli for image data, gaussian for 2-D points."""
    if config["likelihood"] == "auto":
        config["likelihood"] = "bernoulli" if train_set.kind == "image" else "gaussian"


def summarizer(likelihoods: Likelihoods) -> Callable[..., dict[str, Any]]:
    """A ``summarize`` hook: ``likelihoods`` on the test split with ``--eval-k`` samples and the key
    ``jax.random.key(seed + 1)``, as ``{"test_elbo", "is_nll", "eval_k"}``."""

    def summarize(config, model, params, result, datasets) -> dict[str, Any]:
        import jax

        del result
        key = jax.random.key(config["seed"] + 1)
        found = likelihoods(config, model, params, datasets["test"].x, key, config["eval_k"])
        return {"test_elbo": found["elbo"], "is_nll": found["is_nll"], "eval_k": config["eval_k"]}

    return summarize


def evaluator(likelihoods: Likelihoods) -> Callable[..., dict[str, Any]]:
    """An ``evaluate`` hook: ``likelihoods`` on ``dataset`` with ``k`` samples, plus ``"k"``."""

    def evaluate(config, model, params, dataset, key, k) -> dict[str, Any]:
        return {**likelihoods(config, model, params, dataset.x, key, k), "k": k}

    return evaluate


def draw(model, params, config: dict[str, Any], n: int, seed: int):
    """``[n, D]``: image data, the decoder means E[x | z_i] of z_i ~ p(z); points, draws
    x ~ p(x | z), z ~ p(z). Draw i uses the key ``jax.random.split(jax.random.key(seed), n)[i]``."""
    from functools import partial

    import jax

    keys = jax.random.split(jax.random.key(seed), n)
    if config.get("image_shape"):
        def means(theta, chunk):
            z = jax.vmap(lambda k: model.prior(theta).sample(k))(chunk)
            return jax.vmap(lambda zi: model.decode_mean(theta, zi))(z)

        drawn = means
    else:
        def drawn(theta, chunk):
            return jax.vmap(lambda k: model.joint.sample(theta, k, {})["x"])(chunk)
    # One compiled program (not op by op), with the parameters as its argument: a constant would
    # change the program, and JAX's compilation cache could not serve the next run.
    return in_chunks(partial(jax.jit(drawn), params["theta"]), keys)
