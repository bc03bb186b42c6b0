"""The direction of a KL (issue part 7): GANs minimize KL(P_θ ‖ Q), VAEs KL(Q ‖ P_θ).

The KLs are built here from the lecture's Figure 5 and §3.2–3.3, independently of the
declarations; the declarations are then checked to give the same sides. Tests marked as needing
the VAE declaration fail until the lead pastes it into ``unigen/algorithms/vae.py``.
"""

import pytest

from unigen.algebra import Direction, direction, direction_of
from unigen.algebra.expr import KL, E, dist, log, reverse
from unigen.algorithms.declarations import DECLARATIONS
from unigen.errors import ConfigError

generative = dist("p", over="x", given="y", params="theta")  # p_θ(x|y)
lemma1_target = dist("q^r", over="x", given="y")  # q^r(x|y) ∝ q^r_φ0(y|x) p_θ0(x)
GAN_KL = KL(generative, lemma1_target)  # Lemma 1, §3.2
VAE_KL = KL(  # Lemma 2, §3.3
    dist("q", over="z", given="x,y", params="eta") * reverse(dist("q_*", over="y", given="x")),
    dist("p", over="z,y", given="x", params="theta"),
)


def test_gan_generator_is_mode_seeking():
    found = direction(GAN_KL, "theta")
    assert isinstance(found, Direction)
    assert (found.side, found.behaviour) == ("first", "mode-seeking")
    assert found.kl == GAN_KL and found.wrt == "theta"
    assert "first argument" in found.explanation and "GAN" in found.explanation


def test_vae_is_mode_covering():
    found = direction(VAE_KL, "theta")
    assert (found.side, found.behaviour) == ("second", "mode-covering")
    assert "second argument" in found.explanation and "VAE" in found.explanation


def test_the_two_directions_are_opposite():
    assert {direction(GAN_KL).side, direction(VAE_KL).side} == {"first", "second"}
    # The VAE's encoder sits on the other side of the same KL: mode-seeking in η.
    assert direction(VAE_KL, "eta").behaviour == "mode-seeking"


def test_variational_inference_kl_direction():
    """§2.1: the E-step minimizes KL(q_φ(z|x) ‖ p_θ(z|x)) in φ: φ first, θ second."""
    posterior_kl = KL(dist("q", over="z", given="x", params="phi"),
                      dist("p", over="z", given="x", params="theta"))
    assert direction(posterior_kl, "phi").side == "first"
    assert direction(posterior_kl, "theta").side == "second"


def test_frozen_copy_does_not_count_as_the_group():
    """The mixture p_θ0(x) inside q^r is frozen: θ is still only in the first argument."""
    drift = KL(dist("p", over="x", params="theta"), dist("p", over="x", params="theta0"))
    assert direction(drift, "theta").side == "first"


@pytest.mark.parametrize(
    ("kl", "wrt", "message"),
    [
        (KL(generative, dist("p", over="x", given="y=1", params="theta")), "theta",
         "wrt: got 'theta', which appears in both arguments of KL(p_θ(x|y) ‖ p_θ(x|y=1))"),
        (GAN_KL, "phi", "wrt: got 'phi', which appears in neither argument"),
        (GAN_KL, "psi", "wrt: got 'psi', which appears in neither argument"),
        (GAN_KL, "theta0", "wrt: got 'theta0', expected a trained group name"),
        (GAN_KL, "2x", "wrt: got '2x', expected a trained group name"),
        (E(generative, log(lemma1_target)), "theta", "kl: got Expectation("),
    ],
)
def test_direction_errors(kl, wrt, message):
    with pytest.raises(ConfigError) as info:
        direction(kl, wrt)
    assert message in str(info.value)


@pytest.mark.parametrize("name", ["gan", "gan-minimax", "gan-variational-em", "infogan"])
def test_gan_declarations_are_mode_seeking(name):
    assert direction_of(DECLARATIONS[name]).side == "first"


def test_vae_declaration_is_mode_covering():
    """Needs the VAE declaration (unigen/algorithms/vae.py)."""
    assert direction_of(DECLARATIONS["vae"]).side == "second"
    assert direction_of(DECLARATIONS["vae"]).side != direction_of(DECLARATIONS["gan"]).side


def test_direction_of_requires_figure5():
    with pytest.raises(ConfigError, match="got 'wake-sleep', which has no Figure-5 KL"):
        direction_of(DECLARATIONS["wake-sleep"])
