"""Models: one file per model family, each a (Joint, Inference) pair of pure functions."""

from unigen.models.vae import VAEModel, vae_model

__all__ = ["VAEModel", "vae_model"]
