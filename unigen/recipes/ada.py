"""The adversarial-domain-adaptation recipe (Hu et al. 2018, §3.1): ``ada``, and its data ``adapt:SHIFT``.

``adapt:SHIFT`` is a small real task built from the digits: the split's examples at even
positions are the labelled source domain, those at odd positions, transformed by SHIFT, the
unlabelled target domain (``contrast``: grey level g becomes 0.3 + 0.5 g; ``invert``: g becomes
1 - g; ``shift``: the image moved two pixels right, wrapping; ``none``: identical domains). Each row is ``[source (64), its one-hot
label (10), target (64)]``; the target's true labels stay in the Dataset's ``labels``, for
evaluation only. ``summary.json`` holds the source and target test accuracies; ``samples.png``
shows the target test digits (all 149; ``unigen sample --n N``: the first N) ordered by the class
the trained classifier gives them (row-major, class 0 first), so a good adaptation reads 0, 1,
2, ... down the grid.
"""

from __future__ import annotations

from typing import Any

from unigen.errors import ConfigError
from unigen.recipes.base import Option, Recipe, widths

PREFIX = "adapt:"
"""The data set name ``adapt:SHIFT``."""

SHIFTS = ("contrast", "invert", "shift", "none")
CLASSES = 10


def _shifted(images, shift: str):
    import numpy as np

    if shift == "contrast":
        return 0.3 + 0.5 * images
    if shift == "invert":
        return 1.0 - images
    if shift == "shift":
        return np.roll(images.reshape(-1, 8, 8), 2, axis=2).reshape(images.shape)
    return images


def domains(shift: str, split: str):
    """``(source, source labels, target, target labels)`` of ``adapt:SHIFT``'s ``split``."""
    from unigen import data

    if shift not in SHIFTS:
        raise ConfigError(f"--data: expected {PREFIX}SHIFT with SHIFT one of {list(SHIFTS)}, got {PREFIX}{shift}")
    digits = data.load("digits", split)
    n = digits.x.shape[0] // 2
    source, target = digits.x[0:2 * n:2], digits.x[1:2 * n:2]
    return source, digits.labels[0:2 * n:2], _shifted(target, shift), digits.labels[1:2 * n:2]


def load_domains(config: dict[str, Any], split: str):
    """The split ``split`` of ``config["data"] = "adapt:SHIFT"`` as a Dataset of packed rows."""
    import numpy as np

    from unigen import data

    if config["binarize"] not in ("auto", "none"):
        raise ConfigError(f"--binarize: expected auto or none for {config['data']} (grey-level domains), "
                          f"got {config['binarize']}")
    source, labels, target, target_labels = domains(config["data"][len(PREFIX):], split)
    rows = np.concatenate([source, np.eye(CLASSES, dtype=np.float32)[labels], target], axis=1)
    return data.from_array(rows, name=config["data"], split=split)._replace(labels=target_labels)


def _configure(config: dict[str, Any], train_set) -> None:
    del train_set
    if not config["data"].startswith(PREFIX):
        raise ConfigError(f"--data: expected {PREFIX}SHIFT for ada (SHIFT one of {list(SHIFTS)}: a labelled source "
                          f"and a shifted unlabelled target), got {config['data']}")
    config["likelihood"] = None
    config["domain_dim"] = (config["data_dim"] - CLASSES) // 2  # a row: source, one-hot label, target
    config["image_shape"] = [8, 8, 1]  # samples.png shows target digits


def _model(config: dict[str, Any]):
    from unigen.algorithms.ada import ada_model

    return ada_model(config.get("domain_dim", config["data_dim"]), CLASSES, config["feature_dim"],
                     tuple(config["hidden"]), config["activation"])


def _build(config: dict[str, Any]):
    from unigen.algorithms.ada import ada

    model = _model(config)
    return model, ada(model, adapt=config["adapt"] == "yes", adversarial_weight=config["adversarial_weight"])


def _accuracies(config: dict[str, Any], model, params, split: str) -> dict[str, float]:
    from unigen.algorithms.ada import accuracy

    source, labels, target, target_labels = domains(config["data"][len(PREFIX):], split)
    return {"source_accuracy": accuracy(model, params, source, labels),
            "target_accuracy": accuracy(model, params, target, target_labels)}


def _summarize(config, model, params, result, datasets) -> dict[str, Any]:
    del result, datasets
    return {**_accuracies(config, model, params, "test"), "split": "test"}


def _evaluate(config, model, params, dataset, key, k) -> dict[str, Any]:
    del key, k
    return _accuracies(config, model, params, dataset.split)


def draw(model, params, config: dict[str, Any], n: int, seed: int):
    """``[min(n, 149), 64]``: the first n target test digits, ordered by the trained classifier's class."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    del seed
    _, _, target, _ = domains(config["data"][len(PREFIX):], "test")
    target = target[:n]
    predict = jax.vmap(lambda row: jnp.argmax(model.classifier.apply(
        params["psi"], model.extractor.apply(params["theta"], row))))
    return target[np.argsort(np.asarray(predict(jnp.asarray(target))), kind="stable")]


ADA = Recipe(
    "ada", "adversarial domain adaptation (Hu et al. §3.1): --data adapt:contrast|invert|shift|none; --adapt no for the "
           "source-only baseline", "ada",
    (Option("feature_dim", int, 16, "feature dimension (default 16)", minimum=1),
     Option("hidden", widths, (64,), "hidden widths of the extractor and the discriminator (default 64)"),
     Option("activation", str, "relu", "relu | tanh | softplus | elu | leaky_relu (default relu)"),
     Option("adversarial_weight", float, 0.1, "lambda, the weight of the adversarial phase (default 0.1; 1 is "
                                               "Eq. 3 unweighted)"),
     Option("adapt", str, "yes", "yes: Eq. 3's adversarial phases (default); no: the source classifier alone",
            choices=("yes", "no"))),
    _build, _summarize, configure=_configure, evaluate=_evaluate, draw=draw, binarize=None,
)
