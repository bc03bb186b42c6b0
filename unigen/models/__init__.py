"""Models: one file per model family, each a (Joint, Inference) pair of pure functions."""

from unigen.models.helmholtz import HelmholtzMachine, helmholtz_machine
from unigen.models.sbn import SigmoidBeliefNet, sigmoid_belief_net
from unigen.models.vae import VAEModel, vae_model

__all__ = [
    "HelmholtzMachine",
    "SigmoidBeliefNet",
    "VAEModel",
    "helmholtz_machine",
    "sigmoid_belief_net",
    "vae_model",
]
