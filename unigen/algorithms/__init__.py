"""Algorithms: one file per objective, each an Algorithm of phases over the joint.

The factories are re-exported under their own names (``unigen.algorithms.vae`` is the *function*
:func:`unigen.algorithms.vae.vae`, as in ``from unigen.algorithms import vae``; likewise ``gan``,
``infogan``, ...); the modules of the same names are reached with
``from unigen.algorithms.vae import ...`` or ``importlib.import_module("unigen.algorithms.vae")``.
"""

from unigen.algorithms.aavae import aavae
from unigen.algorithms.gan import gan
from unigen.algorithms.infogan import infogan
from unigen.algorithms.iwae import iwae, iwae_bound, log_importance_weights
from unigen.algorithms.iwgan import iwgan
from unigen.algorithms.pm import predictability_minimization
from unigen.algorithms.rws import rws
from unigen.algorithms.vae import elbo, elbo_terms, vae
from unigen.algorithms.variational_em import variational_em
from unigen.algorithms.wake_sleep import wake_sleep

__all__ = [
    "aavae",
    "elbo",
    "elbo_terms",
    "gan",
    "infogan",
    "iwae",
    "iwae_bound",
    "iwgan",
    "log_importance_weights",
    "predictability_minimization",
    "rws",
    "vae",
    "variational_em",
    "wake_sleep",
]
