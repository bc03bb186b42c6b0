"""A recipe: everything ``unigen train NAME`` needs to know about one algorithm, said once.

A :class:`Recipe` names the algorithm's declaration (what ``unigen algebra show NAME`` prints),
its options (typed: ``--latent-dim 2e9`` is refused in one line), how a run's config becomes a
model and an :class:`~unigen.core.Algorithm`, and how a trained run is summarized, evaluated and
drawn from. The command line is generic over recipes: it builds ``unigen train NAME``'s options
from :attr:`Recipe.options` and calls the hooks; it names no algorithm.

A hook receives the run's ``config``: a dict of the common options (``data``, ``batch_size``,
``lr``, ``seed``, ...), the recipe's options by :attr:`Option.name`, and what the data fixed
(``data_dim``, ``image_shape``). It is the dict ``config.json`` stores, so a hook that reads only
``config`` rebuilds a run from its directory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from unigen.errors import ConfigError

__all__ = ["DRAW_CHUNK", "SAMPLES", "Option", "Recipe", "in_chunks", "widths"]

SAMPLES: Mapping[str, int] = MappingProxyType({"image": 64, "points": 2500})
"""Examples in a run's ``samples.png``, by data kind; 2,500 points is the mode-coverage convention."""


def widths(value: Any) -> tuple[int, ...]:
    """Hidden widths: ``"400"``, ``"200,200"``, ``""`` (none) or a sequence of positive ints.

    Raises:
      ValueError, TypeError: anything else (:meth:`Option.read` turns them into one line).
    """
    if isinstance(value, str):
        sizes = tuple(int(part) for part in value.split(",") if part.strip())
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        sizes = tuple(value)
    else:
        raise TypeError(value)
    if any(size < 1 for size in sizes):
        raise ValueError(value)
    return sizes


EXPECTED: Mapping[Any, str] = MappingProxyType({
    int: "an integer",
    float: "a number",
    str: "a string",
    widths: "comma-separated positive widths such as 400 or 200,200",
})
"""What each built-in option type accepts, as the refusal says it."""


def _convert(kind: Callable[[Any], Any], value: Any) -> Any:
    if kind is int:
        if isinstance(value, str):
            return int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(value)
    if kind is float:
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(value)
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError(value)
    return kind(value)


DRAW_CHUNK = 4096
"""Draws computed at once by :func:`in_chunks`: ``unigen sample --n`` of any size fits in memory."""


def in_chunks(batched: Callable[[Any], Any], keys: Any) -> Any:
    """``batched(keys)`` (a function vmapped over keys) on :data:`DRAW_CHUNK` keys at a time, as
    one NumPy array; draw i still uses ``keys[i]``. The last chunk is padded, so one shape compiles."""
    import numpy as np

    count = keys.shape[0]
    width = min(count, DRAW_CHUNK)
    parts = []
    for start in range(0, count, width):
        index = np.minimum(np.arange(start, start + width), count - 1)
        chunk = keys if width == count else keys[index]  # one chunk: no gather of the keys
        parts.append(np.asarray(batched(chunk))[: min(width, count - start)])
    return np.concatenate(parts)


class Option(NamedTuple):
    """One option of a recipe: ``--NAME`` on the command line, ``NAME`` in the config.

    Attributes:
      name: the config key, ``snake_case`` (``"latent_dim"``); the flag is ``--latent-dim``.
      type: ``int``, ``float``, ``str``, :func:`widths`, or any function from the command-line
        string (or the JSON value of a stored config) to the value, raising ``ValueError`` or
        ``TypeError`` on bad input.
      default: the value when the option is not given; ``None`` lets the recipe's
        ``configure`` hook choose from the data (say so in ``help``).
      help: one line for ``--help``.
      choices: the accepted values, or ``None`` for any value of ``type``.
      minimum: the least accepted value of an ``int`` option, or ``None``.
      same_on_resume: whether ``--resume`` requires the run's value (``False`` for options that
        change only the evaluation, such as ``--eval-k``).
    """

    name: str
    type: Callable[[Any], Any] = str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: int | None = None
    same_on_resume: bool = True

    @property
    def flag(self) -> str:
        """The command-line flag, ``--latent-dim`` for ``latent_dim``."""
        return "--" + self.name.replace("_", "-")

    def read(self, value: Any) -> Any:
        """``value`` (a command-line string, or a Python or JSON value) as this option's type;
        ``None`` gives :attr:`default`.

        Raises:
          ConfigError: one line naming the flag, the value seen and what was expected.
        """
        if value is None:
            return self.default
        try:
            converted = _convert(self.type, value)
        except (TypeError, ValueError):
            expected = EXPECTED.get(self.type) or getattr(self.type, "__name__", repr(self.type))
            raise ConfigError(f"{self.flag}: expected {expected}, got {value!r}") from None
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ConfigError(f"{self.flag}: expected a finite number, got {value!r}")
        if self.choices is not None and converted not in self.choices:
            raise ConfigError(f"{self.flag}: expected one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and converted < self.minimum:
            expected = "a positive integer" if self.minimum == 1 else f"an integer of at least {self.minimum}"
            raise ConfigError(f"{self.flag}: expected {expected}, got {converted}")
        return converted


class Recipe(NamedTuple):
    """One algorithm as ``unigen train`` runs it: declaration, options, model factory, evaluation.

    Attributes:
      name: the command-line name (``unigen train NAME``).
      help: one line for ``unigen train --help``.
      declaration: the algorithm's :class:`~unigen.algebra.declaration.Declaration`, or the name
        of a built-in one in :data:`unigen.algorithms.declarations.DECLARATIONS` (read when
        needed, so that listing the recipes imports no JAX), or ``None`` when it has none yet.
      options: the recipe's own options, after the common ones (``--data``, ``--steps``,
        ``--batch-size``, ``--lr``, ``--seed``, ``--out``, ``--resume``, ...).
      build: ``build(config) -> (model, algorithm)``.
      summarize: ``summarize(config, model, params, result, datasets) -> dict``: what
        ``summary.json`` adds to the per-phase ``losses`` and the timings; ``result`` is the
        :class:`~unigen.training.trainer.FitResult`, ``datasets`` maps ``"train"`` and
        ``"test"`` to :class:`~unigen.data.Dataset` s.
      configure: ``configure(config, train_set)``, run after the options are read and the data
        loaded, before anything is written: fills data-dependent defaults into ``config`` and
        raises :class:`~unigen.errors.ConfigError` for settings that do not go together.
        ``None``: nothing to do.
      evaluate: ``evaluate(config, model, params, dataset, key, k) -> dict`` for ``unigen
        eval``, or a string saying why the recipe has none (the refusal quotes it).
      draw: ``draw(model, params, config, n, seed) -> [n, D]`` array of what ``samples.png``
        and ``unigen sample`` show (image data: grey levels in [0, 1]), or a string saying why
        the recipe has nothing to draw.
      binarize: what ``--binarize auto`` means on image data: ``"static"`` (proper Bernoulli
        likelihoods) or ``None`` (grey levels, e.g. for an implicit generator).
      resume_defaults: for options added after runs were made, the value those runs had;
        ``--resume`` reads a stored config without the option as having it.
      declaration_for: ``declaration_for(config) -> Declaration``, the declaration a run with
        these options compiles when its options change it (``unigen algebra show vem
        --estimator rebar``), or ``None``: every run compiles :attr:`declaration`. ``config``
        holds ``"algorithm"`` and the recipe's options (:meth:`read`).
    """

    name: str
    help: str
    declaration: Any
    options: tuple[Option, ...]
    build: Callable[[dict[str, Any]], tuple[Any, Any]]
    summarize: Callable[..., dict[str, Any]]
    configure: Callable[[dict[str, Any], Any], None] | None = None
    evaluate: Callable[..., dict[str, Any]] | str = "it declares no evaluation"
    draw: Callable[..., Any] | str = "it declares nothing to draw"
    binarize: str | None = "static"
    resume_defaults: Mapping[str, Any] = MappingProxyType({})
    declaration_for: Callable[[dict[str, Any]], Any] | None = None

    def option(self, name: str) -> Option | None:
        """The option called ``name`` (config key), or ``None``."""
        return next((option for option in self.options if option.name == name), None)

    def read(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every option of the recipe, read from ``values`` (missing or ``None``: the default).

        Raises:
          ConfigError: a value of the wrong type or outside its choices, in one line.
        """
        return {option.name: option.read(values.get(option.name)) for option in self.options}
