r"""Variational EM: the evidence lower bound and the free energy (§2.1), declared in the algebra.

With a generative model :math:`p_\theta(x, z) = p_\theta(x \mid z) p(z)` and a variational
distribution :math:`q_\phi(z \mid x)`,

.. math::
   \log p_\theta(x) = \mathrm{KL}\left(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x)\right)
   + \mathcal{L}(\theta, \phi; x),

so the bound :math:`\mathcal{L}` is below :math:`\log p_\theta(x)` by exactly the KL to the
posterior. Maximizing it is minimizing the free energy

.. math::
   -\log p_\theta(x) + \mathrm{KL}\left(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x)\right)

(:data:`FREE_ENERGY`, equal to :math:`-\mathcal{L}`; the identity is
:func:`unigen.algebra.identities.elbo_decomposition`). Both steps maximize the same objective,
the bound averaged over the data,

.. math::
   \mathbb{E}_{p_{data}(x)}\left[\mathbb{E}_{q_\phi(z \mid x)}\left[\log p_\theta(x, z)
   - \log q_\phi(z \mid x)\right]\right]

- the E-step (phase ``"e_step"``) in :math:`\phi` with :math:`\theta` fixed; when the family is
  rich enough its optimum is the posterior, :math:`q^*_\phi(z \mid x) \propto p_\theta(x, z)`;
- the M-step (phase ``"m_step"``) in :math:`\theta` with :math:`\phi` fixed.

The declaration is compiled later; :data:`DECLARATION` records it for printing, the Figure-5
table (which does not cover variational EM) and :func:`unigen.algebra.direction`.
"""

from __future__ import annotations

from unigen.algebra.declaration import Declaration, PhaseObjective
from unigen.algebra.expr import KL, E, dist, log

__all__ = ["DECLARATION", "ELBO", "FREE_ENERGY"]

p_data = dist("p_data", over="x")
joint = dist("p", over="x,z", params="theta")  # p_θ(x, z) = p_θ(x|z) p(z)
marginal = dist("p", over="x", params="theta")  # p_θ(x)
posterior = dist("p", over="z", given="x", params="theta")  # p_θ(z|x)
variational = dist("q", over="z", given="x", params="phi")  # q_φ(z|x)

ELBO = E(p_data, E(variational, log(joint) - log(variational)))
"""The bound :math:`\\mathcal{L}(\\theta, \\phi; x)` averaged over the data."""

FREE_ENERGY = -log(marginal) + KL(variational, posterior)
"""The free energy :math:`F(\\theta, \\phi; x)` of one example (not computable: it needs
:math:`\\log p_\\theta(x)`); it equals :math:`-\\mathcal{L}(\\theta, \\phi; x)`."""

DECLARATION = Declaration(
    name="variational-em",
    title="Variational EM",
    section="§2.1",
    phases=(
        PhaseObjective("e_step", "phi", ELBO, "max"),
        PhaseObjective("m_step", "theta", ELBO, "max"),
    ),
    figure5=None,
)
