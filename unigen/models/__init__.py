"""Models: one file per model family, each a (Joint, Inference) pair of pure functions."""

from unigen.models.gan import GANModel, gan_model
from unigen.models.helmholtz import HelmholtzMachine, helmholtz_machine
from unigen.models.infogan import InfoGANModel, infogan_model
from unigen.models.pm import PMModel, pm_model, pm_sources
from unigen.models.sbn import SigmoidBeliefNet, sigmoid_belief_net
from unigen.models.vae import VAEModel, vae_model

__all__ = [
    "GANModel",
    "HelmholtzMachine",
    "InfoGANModel",
    "PMModel",
    "SigmoidBeliefNet",
    "VAEModel",
    "gan_model",
    "helmholtz_machine",
    "infogan_model",
    "pm_model",
    "pm_sources",
    "sigmoid_belief_net",
    "vae_model",
]
