r"""The core protocols: every model is a pair of pure functions over one joint interface.

The lecture's unified view (§3) writes every deep generative model over one joint
:math:`p_\theta(x, y, z)` with an inference model :math:`q(y, z \mid x)`:

* :class:`Joint` — :math:`p_\theta(x, y, z)`. ``y`` is the lecture's indicator (``y=1`` data,
  ``y=0`` model): :math:`p_\theta(x \mid y=1) = p_{data}(x)` is the data batch and
  :math:`p_\theta(x \mid y=0)` the generator or decoder.
* :class:`Inference` — :math:`q(y, z \mid x)`: a discriminator :math:`q_\phi(y \mid x)`, a VAE
  encoder :math:`q_\eta(z \mid x, y)`, a recognition network.

Both are :class:`Model` s: a NamedTuple of pure functions, in the way optax's
``GradientTransformation(init, update)`` is. Functions act on **one example**; batching is
``jax.vmap``. ``Values`` are dicts of named arrays such as ``{"x": x, "z": z}``. Parameters are
plain pytrees (nested dicts of arrays); networks enter only as such pytrees (see
:mod:`unigen.nets`).

An :class:`Algorithm` is a tuple of :class:`Phase` s, each a loss over the joint that updates one
or more named parameter groups (``"theta"`` for the generative model, ``"eta"`` / ``"phi"`` for
inference and discriminators), run in order each step by the one trainer.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax

PRNGKey = jax.Array
Params = Any
Values = Mapping[str, jax.Array]
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]

__all__ = [
    "Algorithm",
    "Batch",
    "Inference",
    "Joint",
    "Metrics",
    "Model",
    "PRNGKey",
    "Params",
    "Phase",
    "Values",
]


class Model(NamedTuple):
    """A distribution as a pair of pure functions (plus ``init`` for its parameters).

    Attributes:
      init: ``init(key) -> params``, a pytree of arrays.
      sample: ``sample(params, key, given) -> drawn``: draws the model's variables conditioned
        on the ``given`` values (one example). Draws are pathwise (reparameterized) where the
        distribution allows it, so gradients flow through them.
      log_prob: ``log_prob(params, values, given) -> scalar`` log density or mass of ``values``
        given ``given``; ``None`` for an implicit model (a GAN generator).
    """

    init: Callable[[PRNGKey], Params]
    sample: Callable[[Params, PRNGKey, Values], dict[str, jax.Array]]
    log_prob: Callable[[Params, Values, Values], jax.Array] | None


class Joint(Model):
    r"""The generative joint :math:`p_\theta(x, y, z)`; a :class:`Model` over x, y and z."""

    __slots__ = ()


class Inference(Model):
    r"""An inference model :math:`q(y, z \mid x)`; a :class:`Model` conditioned on x."""

    __slots__ = ()


class Phase(NamedTuple):
    """One loss of an algorithm and the parameter group(s) it updates.

    Attributes:
      name: ``"elbo"``, ``"wake"``, ``"sleep"``, ``"discriminator"``, ``"generator"``, ...
      params: the parameter group it updates (``"theta"``), or a tuple of groups
        (``("theta", "eta")`` for the VAE's joint update).
      loss: ``loss(params, key, batch) -> (scalar, metrics)``; ``params`` is the dict of all
        groups, ``batch`` a dict of arrays with a leading batch axis. The trainer minimizes the
        scalar with respect to ``params[g]`` for ``g`` in :attr:`groups` only.
      uses_step: when True the trainer calls ``loss(params, key, batch, step)``, where ``step``
        is an int32 scalar array: the number of steps taken before this one (0 on the first
        step, also inside fused steps and after a resume). For losses that depend on the step,
        such as an annealed coefficient.
    """

    name: str
    params: str | tuple[str, ...]
    loss: Callable[..., tuple[jax.Array, Metrics]]
    uses_step: bool = False

    @property
    def groups(self) -> tuple[str, ...]:
        """The parameter groups this phase updates, always as a tuple."""
        return (self.params,) if isinstance(self.params, str) else tuple(self.params)


class Algorithm(NamedTuple):
    """An algorithm: phases run in order each step, each with its own optimizer per group.

    Attributes:
      init: ``init(key) -> {group: params}``, the initial parameters of every group.
      phases: the phases, run in this order each step.
      objective: the :class:`~unigen.algebra.declaration.Declaration` the phases were compiled
        from (``print(algorithm.objective)`` shows it as the lecture writes it), or ``None``
        for an algorithm assembled by hand.
      bernoulli: the batch entries a Bernoulli likelihood reads (``("x",)`` for a VAE on binary
        data): :func:`~unigen.training.fit` refuses a batch whose values there lie outside
        [0, 1] as bad data.
    """

    init: Callable[[PRNGKey], dict[str, Params]]
    phases: tuple[Phase, ...]
    objective: Any = None
    bernoulli: tuple[str, ...] = ()

    @property
    def groups(self) -> tuple[str, ...]:
        """Every parameter group some phase updates, in first-use order."""
        seen: dict[str, None] = {}
        for phase in self.phases:
            for group in phase.groups:
                seen[group] = None
        return tuple(seen)
