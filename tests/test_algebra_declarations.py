"""Every algorithm's declaration: the registry, the objectives as the lecture writes them, and
the docstrings that state them (issue part 4 and part 9).

The expected strings below are typed from the lecture (§2.1, §2.2, §3, §3.1, §3.4, Figure 5),
not produced by the algebra. The VAE's declaration is pasted into ``unigen/algorithms/vae.py``
by the lead; the tests that need it fail until it is there.
"""

import importlib
import re

import pytest

from unigen.algebra import declaration as declaration_module
from unigen.algebra.declaration import Declaration, Figure5, PhaseObjective, check
from unigen.algebra.expr import KL, E, dist, free_params, log
from unigen.algorithms.declarations import DECLARATIONS, MODULES, SOURCES, declaration
from unigen.errors import ConfigError

EXPECTED_NAMES = {
    "ada",
    "ada-source-only",
    "aae",
    "vae-gan",
    "variational-em",
    "wake-sleep",
    "rws",
    "vae",
    "iwae",
    "gan",
    "gan-minimax",
    "gan-variational-em",
    "infogan",
    "iwgan",
    "aavae",
}

# (algorithm, phase) -> (sense, groups, the objective in Unicode, typed from the lecture)
EXPECTED_PHASES = {
    ("rws", "wake_theta"): (
        "max", ("theta",),
        # p_θ(x, h) written as the product the model is bound as (§2.2: p_θ(x, h) = p_θ(h) p_θ(x|h))
        "E_{p_data(x)}[E_{h_1,…,h_k ~ q_φ(h|x)}[log (1/k) Σ_{i=1}^{k} p_θ(h_i)p_θ(x|h_i)/q_φ(h_i|x)]]"),
    ("rws", "wake_phi"): ("max", ("phi",), "E_{p_data(x)}[E_{p_θ(h|x)}[log q_φ(h|x)]]"),
    ("rws", "sleep_phi"): ("max", ("phi",), "E_{p_θ(x|h)p(h)}[log q_φ(h|x)]"),
    # p_θ(x, z) written as the product the model is bound as; the E-step holds the learning
    # signal's log q constant (the score-function E-step; same value and exact φ-gradient)
    ("variational-em", "e_step"): (
        "max", ("phi",), "E_{p_data(x)}[E_{q_φ(z|x)}[log p_θ(z)p_θ(x|z) − sg[log q_φ(z|x)]]]"),
    ("variational-em", "m_step"): (
        "max", ("theta",), "E_{p_data(x)}[E_{q_φ(z|x)}[log p_θ(z)p_θ(x|z) − log q_φ(z|x)]]"),
    ("wake-sleep", "wake"): ("max", ("theta",), "E_{q_λ(h|x)p_data(x)}[log p_θ(x|h)]"),
    ("wake-sleep", "sleep"): ("max", ("lambda",), "E_{p_θ(x|h)p(h)}[log q_λ(h|x)]"),
    ("gan", "discriminator"): (
        "max", ("phi",), "E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)]"),
    ("gan", "generator"): ("max", ("theta",), "E_{p_θ(x|y=0)}[log q_φ(y=1|x)]"),
    ("gan-minimax", "discriminator"): (
        "max", ("phi",), "E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)]"),
    ("gan-minimax", "generator"): ("min", ("theta",), "E_{p_θ(x|y=0)}[log q_φ(y=0|x)]"),
    ("gan-variational-em", "discriminator"): (
        "max", ("phi",), "E_{p_θ(x|y)p(y)}[log q_φ(y|x)]"),
    ("gan-variational-em", "generator"): (
        "max", ("theta",), "E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)]"),
    ("infogan", "discriminator"): ("max", ("phi",), "E_{p_θ(x|y)p(y)}[log q_φ(y|x)]"),
    ("infogan", "generator"): (
        "max", ("theta", "eta"),
        "E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)] + (E_{p_θ(x|z,y=0)p(z)}[log q_η(z|x,y=0)] + H(p(z)))"),
    ("iwae", "iwae"): (
        "max", ("theta", "eta"),
        "E_{p_data(x)}[E_{z_1,…,z_k ~ q_η(z|x)}[log (1/k) Σ_{i=1}^{k} p(z_i)p_θ(x|z_i)/q_η(z_i|x)]]"),
    # Hu et al. 2018, §4.1, Eq. 16 (k generated samples, self-normalized weights) and §4.2, Eq. 17
    ("iwgan", "discriminator"): (
        "max", ("phi",), "E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)]"),
    ("iwgan", "generator"): (
        "max", ("theta",),
        "E_{x_1,…,x_k ~ p_θ(x|y=0)}[Σ_{i=1}^{k} w̃_i log q_φ(y=1|x_i)], w̃_i ∝ q^r_φ(y=0|x_i)/q_φ(y=0|x_i)"),
    ("aavae", "discriminator"): (
        "max", ("phi",), "E_{p_data(x)}[log q_φ(y=1|x)] + E_{p_θ(x|y=0)}[log q_φ(y=0|x)]"),
    ("aavae", "vae"): (
        "max", ("theta", "eta"),
        "2 · E_{p_θ₀(x)}[E_{q_η(z|x,y)q^r_φ(y|x)}[log p_θ(x|z,y)] − KL(q_η(z|x,y)q^r_φ(y|x) ‖ p(z|y)p(y))]"),
    # Hu et al. 2018 Eq. (3) (ADA, §3.1; the AAE with z in place of x, §3.2; the VAE/GAN, §3.4)
    ("ada", "classifier"): ("max", ("theta", "psi"), "E_{p_θ(x|y=1)}[log q_ψ(label|x)]"),
    ("ada", "discriminator"): ("max", ("phi",), "E_{p_θ(x|y)p(y)}[log q_φ(y|x)]"),
    ("ada", "features"): ("max", ("theta",), "λ · E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)]"),
    ("ada-source-only", "classifier"): ("max", ("theta", "psi"), "E_{p_θ(x|y=1)}[log q_ψ(label|x)]"),
    ("aae", "reconstruction"): ("max", ("theta", "eta"), "E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)]]"),
    ("aae", "discriminator"): ("max", ("phi",), "E_{p_η(z|y)p(y)}[log q_φ(y|z)]"),
    ("aae", "encoder"): ("max", ("eta",), "E_{p_η(z|y)p(y)}[log q^r_φ(y|z)]"),
    ("vae-gan", "elbo"): (
        "max", ("theta", "eta"), "E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − KL(q_η(z|x) ‖ p(z))]"),
    ("vae-gan", "discriminator"): ("max", ("phi",), "E_{p_θ(x|y)p(y)}[log q_φ(y|x)]"),
    ("vae-gan", "generator"): ("max", ("theta",), "E_{p_θ(x|y)p(y)}[log q^r_φ(y|x)]"),
    ("vae", "elbo"): (
        "max", ("theta", "eta"), "E_{p_data(x)}[E_{q_η(z|x)}[log p_θ(x|z)] − KL(q_η(z|x) ‖ p(z))]"),
}


def _math_blocks(docstring: str) -> list[str]:
    """The ``.. math::`` blocks of a reST docstring, each joined into one line."""
    blocks, lines = [], docstring.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != ".. math::":
            continue
        indent = len(line) - len(line.lstrip())
        body = []
        for following in lines[i + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following.strip())
        blocks.append(" ".join(part for part in body if part))
    return blocks


def _squeeze(text: str) -> str:
    """Whitespace-normalized: docstrings wrap long formulas at spaces, so drop all whitespace."""
    return re.sub(r"\s+", "", text)


def test_math_block_extraction():
    doc = "Intro.\n\n.. math::\n   a + b\n   - c\n\nAfter.\n\n  .. math::\n     d\n"
    assert _math_blocks(doc) == ["a + b - c", "d"]


# --- the registry -------------------------------------------------------------------------


def test_registry_has_every_algorithm_of_the_lecture():
    assert set(DECLARATIONS) == EXPECTED_NAMES
    for name, found in DECLARATIONS.items():
        assert found.name == name
        assert check(found) is found
        assert MODULES[name] in {module for module, _ in SOURCES}


def test_every_phase_is_declared_as_the_lecture_writes_it():
    seen = {(name, phase.name) for name, d in DECLARATIONS.items() for phase in d.phases}
    declared = {key: value for key, value in EXPECTED_PHASES.items() if key[0] in DECLARATIONS}
    assert seen == set(declared)  # a missing algorithm fails the registry test above
    for (name, phase_name), (sense, groups, unicode) in declared.items():
        phase = DECLARATIONS[name].phase(phase_name)
        assert phase.sense == sense, (name, phase_name)
        assert phase.groups == groups, (name, phase_name)
        assert str(phase.objective) == unicode, (name, phase_name)
        assert set(groups) <= free_params(phase.objective)


def test_declaration_lookup_and_error_lists_the_names():
    assert declaration("gan") is DECLARATIONS["gan"]
    with pytest.raises(ConfigError) as info:
        declaration("vea")
    message = str(info.value)
    assert "algorithm: got 'vea', expected one of" in message
    for name in DECLARATIONS:
        assert repr(name) in message


def test_the_sleep_phase_updates_the_recognition_model():
    """§3.4 prints max_θ for the sleep phase, a typo: it updates λ; the docstring says so."""
    module = importlib.import_module("unigen.algorithms.wake_sleep")
    sleep = DECLARATIONS["wake-sleep"].phase("sleep")
    assert sleep.groups == ("lambda",) and "theta" not in sleep.groups
    assert "typo" in module.__doc__


def test_gan_forms_agree_on_the_figure5_fields():
    """The three GAN declarations share Figure 5's GAN column; InfoGAN adds q_η(z|x,y)."""
    fields = {name: DECLARATIONS[name].figure5 for name in ("gan", "gan-minimax",
                                                            "gan-variational-em", "infogan")}
    for name in ("gan", "gan-minimax", "gan-variational-em"):
        assert str(fields[name].generative) == "p_θ(x|y)"
        assert str(fields[name].discriminator) == "q_φ(y|x)"
        assert fields[name].inference is None
        assert str(fields[name].kl) == "KL(p_θ(x|y) ‖ q^r(x|y))"
        assert fields[name].wrt == "theta"
    assert str(fields["infogan"].inference) == "q_η(z|x,y)"
    assert str(fields["infogan"].kl) == "KL(p_θ(x|y) ‖ q^r(x|z,y))"
    for name in ("variational-em", "wake-sleep", "iwae"):
        assert DECLARATIONS[name].figure5 is None


def test_vae_figure5_fields():
    """Figure 5, VAE column (pasted by the lead into unigen/algorithms/vae.py)."""
    fields = DECLARATIONS["vae"].figure5
    assert str(fields.generative) == "p_θ(x|z,y)"
    assert str(fields.discriminator) == "q_*(y|x)"
    assert str(fields.inference) == "q_η(z|x,y)"
    assert str(fields.kl) == "KL(q_η(z|x,y)q^r_*(y|x) ‖ p_θ(z,y|x))"
    assert fields.wrt == "theta"


def test_classic_and_unified_gan_generators_have_the_same_target():
    """The unified generator's y=0 half is the non-saturating one: log q^r_φ(y=0|x) = log D."""
    gan = importlib.import_module("unigen.algorithms.gan")
    generated = dist("p", over="x", given="y=0", params="theta")
    assert str(gan.NON_SATURATING_GENERATOR) == str(E(generated, log(gan.discriminator, y=1)))
    assert str(gan.MINIMAX_GENERATOR) == str(E(generated, log(gan.discriminator, y=0)))
    assert gan.VARIATIONAL_EM_GENERATOR.body.dist.reversed


# --- part 9: docstrings state each objective as the algebra prints it -----------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_docstring_states_each_phase_objective_in_a_math_block(name):
    found = DECLARATIONS.get(name)
    assert found is not None, f"{name} is not declared yet"
    module = importlib.import_module(MODULES[name])
    blocks = [_squeeze(block) for block in _math_blocks(module.__doc__)]
    for phase in found.phases:
        latex = _squeeze(phase.objective.latex())
        assert any(latex in block for block in blocks), (name, phase.name, phase.objective.latex())


@pytest.mark.parametrize("module_name", [module for module, _ in SOURCES])
def test_docstring_math_blocks_parse_with_mathtext(module_name):
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    module = importlib.import_module(module_name)
    blocks = _math_blocks(module.__doc__)
    assert blocks, module_name
    for block in blocks:
        parser.parse(f"${block}$")


# --- check() --------------------------------------------------------------------------------

decoder = dist("p", over="x", given="z", params="theta")
encoder = dist("q", over="z", given="x", params="eta")
objective = E(encoder, log(decoder)) - KL(encoder, dist("p", over="z"))


def _declaration(**changes):
    base = Declaration("toy", "Toy", "§0", (PhaseObjective("elbo", ("theta", "eta"), objective),))
    return base._replace(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"phases": ()}, "phases of toy: got none"),
        ({"phases": (PhaseObjective("a", "theta", objective),) * 2},
         "phases of toy: got names ['a', 'a'], expected distinct"),
        ({"phases": (PhaseObjective("a", "phi", objective),)},
         "params of toy/a: got 'phi', expected groups the objective depends on, ['eta', 'theta']"),
        ({"phases": (PhaseObjective("a", "theta0", objective),)}, "params of toy/a: got 'theta0'"),
        ({"phases": (PhaseObjective("a", "theta", objective, "maximize"),)},
         "sense of toy/a: got 'maximize', expected one of ('max', 'min')"),
        ({"phases": (PhaseObjective("a", "theta", encoder),)}, "objective of toy/a: got Dist("),
        ({"figure5": Figure5(None, None, None, KL(encoder, encoder), "theta")},
         "figure5.wrt of toy: got 'theta', expected a group the KL depends on, ['eta']"),
        ({"figure5": Figure5(None, None, None, objective)}, "figure5.kl of toy: got Sum("),
        ({"figure5": Figure5(objective, None, None, None)}, "figure5.generative of toy: got Sum("),
        ({"figure5": (None, None, None, None)}, "figure5 of toy: got (None, None, None, None)"),
    ],
)
def test_check_rejects_malformed_declarations(changes, message):
    with pytest.raises(ConfigError) as info:
        check(_declaration(**changes))
    assert message in str(info.value)


def test_check_accepts_a_well_formed_declaration():
    good = _declaration(figure5=Figure5(decoder, None, encoder, KL(encoder, encoder), "eta"))
    assert declaration_module.check(good) is good
    assert good.phase("elbo").groups == ("theta", "eta")
    with pytest.raises(ConfigError, match=r"phase of toy: got 'wake', expected one of \['elbo'\]"):
        good.phase("wake")
