"""The Helmholtz-machine recipes (sigmoid belief nets, §1.1, §2.1–2.2): ``wake-sleep``, ``rws``
(reweighted wake-sleep) and ``vem`` (variational EM, or classic EM with ``--estimator exact``)."""

from __future__ import annotations

from typing import Any

from unigen.errors import ConfigError
from unigen.recipes import likelihood
from unigen.recipes.base import Option, Recipe, widths

LAYERS = Option("layers", widths, (200,), "hidden layers of the sigmoid belief net, bottom to top, e.g. 200 or "
                                          "200,200 (default 200)")
VIMCO_K = 5
"""``vem --estimator vimco``'s draws inside the bound when ``--k`` is not given."""
RECOGNITION_GROUPS = {"wake-sleep": "lambda", "rws": "phi", "vem": "phi"}
"""The recognition model's parameter group of each recipe (what the IS-NLL samples from)."""


def _configure(config: dict[str, Any], train_set) -> None:
    likelihood.resolve_likelihood(config, train_set)
    if config["likelihood"] != "bernoulli":
        raise ConfigError(f"--likelihood: expected bernoulli (binary data) for {config['algorithm']}, a sigmoid belief "
                          f"net, got {config['likelihood']}")
    _check_combination(config)


def _check_combination(config: dict[str, Any]) -> None:
    """Refuses options that do not go together (``--baseline`` or ``--k`` with the wrong estimator)."""
    if config.get("estimator", "score") != "score" and config.get("baseline", "none") != "none":
        raise ConfigError(f"--baseline: expected none with --estimator {config['estimator']}, got {config['baseline']}")
    if config["algorithm"] == "vem" and config.get("k") is not None and config.get("estimator") != "vimco":
        raise ConfigError(f"--k: only --estimator vimco draws several samples inside the bound; got --k {config['k']} "
                          f"with --estimator {config.get('estimator', 'score')}, expected no --k")


def _vem_declaration(config: dict[str, Any]):
    """What ``vem`` compiles with ``config["estimator"]`` (K = ``--k``, default :data:`VIMCO_K`, for vimco)."""
    from unigen.algorithms.variational_em import declaration_for

    _check_combination(config)
    estimator = config["estimator"]
    return declaration_for(estimator, (config.get("k") or VIMCO_K) if estimator == "vimco" else None)


def _model(config: dict[str, Any]):
    from unigen.models.helmholtz import helmholtz_machine

    return helmholtz_machine(config["data_dim"], tuple(config["layers"]))


def _build_wake_sleep(config: dict[str, Any]):
    from unigen.algorithms.wake_sleep import wake_sleep

    model = _model(config)
    return model, wake_sleep(model)


def _build_rws(config: dict[str, Any]):
    from unigen.algorithms.rws import rws

    model = _model(config)
    return model, rws(model, k=config["k"])


def _build_vem(config: dict[str, Any]):
    from unigen.algorithms.variational_em import variational_em

    model = _model(config)
    k = config.get("k") or VIMCO_K
    return model, variational_em(model, estimator=config["estimator"], baseline=config["baseline"], k=k)


def likelihoods(config, model, params, x, key, k: int) -> dict[str, Any]:
    """Test IS-NLL with the recognition model as proposal, and the ELBO as minus the k=1 IS-NLL
    (a one-draw estimate per example); with classic EM (no recognition model) the exact NLL by
    enumeration, which is then also the ELBO at the exact posterior."""
    from unigen.metrics import is_nll
    from unigen.models.sbn import exact_nll

    if config.get("estimator") == "exact":
        nll = exact_nll(model, params["theta"], x)
        return {"is_nll": nll, "elbo": -nll, "exact_nll": nll}
    groups = ("theta", RECOGNITION_GROUPS[config["algorithm"]])
    return {"is_nll": is_nll(model, params, x, key, k=k, groups=groups),
            "elbo": -is_nll(model, params, x, key, k=1, groups=groups)}


_COMMON = dict(summarize=likelihood.summarizer(likelihoods), configure=_configure,
               evaluate=likelihood.evaluator(likelihoods), draw=likelihood.draw)
_OPTIONS = (LAYERS, likelihood.LIKELIHOOD, likelihood.EVAL_K)

WAKE_SLEEP = Recipe("wake-sleep", "wake-sleep on a Helmholtz machine (§2.2, §3.4)", "wake-sleep", _OPTIONS,
                    _build_wake_sleep, **_COMMON)

RWS = Recipe(
    "rws", "reweighted wake-sleep: k importance samples per wake and sleep step (§2.2)", "rws",
    (*_OPTIONS, Option("k", int, 5, "importance samples of reweighted wake-sleep (default 5)", minimum=1)),
    _build_rws, **_COMMON,
)

VEM = Recipe(
    "vem", "variational EM on a sigmoid belief net (§2.1); classic EM with --estimator exact", "variational-em",
    (*_OPTIONS,
     Option("estimator", str, "score", "score-function E-step (default), the exact E-step by enumeration "
                                       "(classic EM, at most 12 hidden units), the muprop, arm, disarm, rebar or "
                                       "relax estimator in the E-step (one hidden layer), or vimco: both steps on "
                                       "the k-sample bound, VIMCO in the E-step",
            choices=("score", "exact", "muprop", "arm", "disarm", "rebar", "relax", "vimco")),
     Option("k", int, None, "with --estimator vimco: the draws inside the bound (default 5)", minimum=2),
     Option("baseline", str, "none", "with --estimator score: the score-function baseline (default none)",
            choices=("none", "mean", "nvil"))),
    _build_vem, **_COMMON, declaration_for=_vem_declaration,
)
