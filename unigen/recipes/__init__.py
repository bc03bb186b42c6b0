"""The registry of recipes: every algorithm ``unigen train`` can run, built in or a user's.

The built-in recipes (:data:`BUILT_IN`) are, in lecture order, ``vae``, ``iwae`` (:mod:`.vae`),
``wake-sleep``, ``rws``, ``vem`` (:mod:`.sbn`), ``gan``, ``infogan`` (:mod:`.gan`), ``pm``
(:mod:`.pm`), then the models of Hu et al. 2018: ``iwgan`` (:mod:`.gan`), ``aavae`` (:mod:`.vae`),
``ada`` (:mod:`.ada`), ``aae`` and ``vae-gan`` (:mod:`.hybrids`): one file per model family, since
the recipes of a family share their model, summary and samples. A user's recipe is a
:class:`Recipe` named by an entry point of the group
``unigen.algorithms`` (:data:`GROUP`) of an installed package, e.g. in its ``pyproject.toml``::

    [project.entry-points."unigen.algorithms"]
    toy = "toy_recipe:RECIPE"

after which ``unigen train toy`` trains it and ``unigen algebra show toy`` prints its declaration.
An entry point is imported only when its name is asked for, so a broken one does not break the
others. A name is one recipe's: an entry point that takes a built-in recipe's name, or a name
another package's entry point takes too, is refused in one line (naming the entry point, the name
and the package) whenever that name is asked for, instead of one of them being picked silently.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from unigen.errors import ConfigError, brief, describe
from unigen.recipes import ada as _ada
from unigen.recipes import pm as _pm
from unigen.recipes.ada import ADA
from unigen.recipes.hybrids import AAE, VAE_GAN
from unigen.recipes.base import SAMPLES, Option, Recipe, widths
from unigen.recipes.gan import GAN, INFOGAN, IWGAN
from unigen.recipes.pm import PM
from unigen.recipes.sbn import RWS, VEM, WAKE_SLEEP
from unigen.recipes.vae import AAVAE, IWAE, VAE

__all__ = ["BUILT_IN", "DATA_SOURCES", "GROUP", "SAMPLES", "Option", "Recipe", "declaration_of",
           "find_declaration", "names", "recipe", "widths"]

GROUP = "unigen.algorithms"
"""The entry-point group of user recipes; each entry point names a :class:`Recipe`."""

BUILT_IN: tuple[Recipe, ...] = (VAE, IWAE, WAKE_SLEEP, RWS, VEM, GAN, INFOGAN, PM,
                                IWGAN, AAVAE, ADA, AAE, VAE_GAN)  # Hu et al. 2018, §3-4
"""The built-in recipes, in lecture order."""

DATA_SOURCES: Mapping[str, Callable[[dict[str, Any], str], Any]] = MappingProxyType({
    _pm.PREFIX: _pm.load_sources,
    _ada.PREFIX: _ada.load_domains,
})
"""Data sets a recipe file provides, by name prefix: ``load(config, split) -> Dataset``."""

_BY_NAME = {r.name: r for r in BUILT_IN}


def _entry_points() -> dict[str, list[Any]]:
    """The entry points of :data:`GROUP` by name, each name with every distinct entry point of it.

    The scan reads every installed package's metadata (about 9 ms), so it is made once per
    process and ``sys.path`` (:data:`_SCANNED`): ``unigen train --help`` asks for every recipe.
    A package put on the path later is found; one installed into a directory already scanned is
    found by the next process."""
    key = tuple(sys.path)
    if key not in _SCANNED:
        from importlib.metadata import entry_points

        found: dict[str, list[Any]] = {}
        for point in entry_points(group=GROUP):
            same = found.setdefault(point.name, [])
            if all(point.value != other.value for other in same):
                same.append(point)
        _SCANNED.clear()
        _SCANNED[key] = found
    return _SCANNED[key]


_SCANNED: dict[tuple[str, ...], dict[str, list[Any]]] = {}
"""The last scan of :func:`_entry_points`, keyed by the ``sys.path`` it read."""


def _package(point: Any) -> str:
    dist = getattr(point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown package"


def _check_unique(name: str, points: list[Any]) -> None:
    """Refuses a recipe name that an entry point shares with a built-in recipe or another entry point."""
    if name in _BY_NAME and points:
        point = points[0]
        raise ConfigError(f"algorithm: the entry point {name} = {point.value} (group {GROUP}) of the package "
                          f"{_package(point)} takes the name {name!r} of a built-in recipe; expected a name no "
                          "built-in recipe has (rename the entry point, or uninstall that package)")
    if len(points) > 1:
        listed = " and ".join(f"{name} = {point.value} of the package {_package(point)}" for point in points)
        raise ConfigError(f"algorithm: the entry points {listed} (group {GROUP}) take the same name {name!r}; "
                          "expected one entry point per name (rename or uninstall all but one)")


def names() -> list[str]:
    """Every recipe name: the built-in ones in lecture order, then the entry points' (sorted); an
    entry point that takes a built-in name adds nothing here (asking for the name refuses it)."""
    return [r.name for r in BUILT_IN] + sorted(set(_entry_points()) - set(_BY_NAME))


def recipe(name: str) -> Recipe:
    """The recipe called ``name``: a built-in one, or the :class:`Recipe` an entry point names.

    Raises:
      ConfigError: unknown ``name`` (the message lists the names); an entry point that does not
        import or does not name a :class:`Recipe` called ``name``; a ``name`` that an entry point
        shares with a built-in recipe or with another package's entry point.
    """
    points = _entry_points()
    _check_unique(name, points.get(name, []))
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name not in points:
        raise ConfigError(f"algorithm: expected one of {names()}, got {describe(name)}")
    (point,) = points[name]
    where = f"entry point {name} = {point.value} (group {GROUP})"
    try:
        found = point.load()
    except Exception as error:  # noqa: BLE001 - any failure of a user's module is reported in one line
        raise ConfigError(f"algorithm: the {where} does not import ({brief(error)}); expected an importable "
                          "MODULE:ATTR naming a unigen.recipes.Recipe") from None
    if not isinstance(found, Recipe):
        raise ConfigError(f"algorithm: the {where} names a {type(found).__name__}; expected a unigen.recipes.Recipe")
    if found.name != name:
        raise ConfigError(f"algorithm: the {where} names the recipe {found.name!r}; expected the name {name!r}")
    return found


def _declaration_with(text: str, options: Mapping[str, Any]):
    """The declaration of the recipe ``text`` with ``options`` (see :func:`find_declaration`)."""
    flag = Option(next(iter(options))).flag
    if text not in _BY_NAME and text not in _entry_points():
        raise ConfigError(f"{flag}: expected recipe options only after a recipe ({', '.join(names())}), got them "
                          f"after {describe(text)}")
    found = recipe(text)
    unknown = [name for name in options if found.option(name) is None]
    if unknown:
        raise ConfigError(f"{Option(unknown[0]).flag}: expected an option of {found.name} "
                          f"({', '.join(o.flag for o in found.options) or 'none'}), got {options[unknown[0]]}")
    config = {"algorithm": found.name, **found.read(options)}
    if found.declaration_for is None:
        raise ConfigError(f"{flag}: expected no options for {found.name}, whose declaration does not depend on "
                          f"them, got {options[next(iter(options))]}")
    return found.declaration_for(config)


def declaration_of(found: Recipe):
    """The recipe's :class:`~unigen.algebra.declaration.Declaration`, or ``None`` when it has none."""
    if isinstance(found.declaration, str):
        from unigen.algorithms.declarations import DECLARATIONS

        return DECLARATIONS.get(found.declaration)
    return found.declaration


def find_declaration(text: str, options: Mapping[str, Any] | None = None):
    """The declaration ``text`` names: a declared algorithm (``gan-minimax``), a recipe (``vem``, or
    a user's recipe by entry point), or ``MODULE:ATTR`` naming a user's Declaration or Recipe.

    ``options`` (``{"estimator": "rebar"}``, values as on the command line) are a recipe's
    options: the declaration is then the one a run with them compiles
    (:attr:`Recipe.declaration_for`).

    Raises:
      ConfigError: an unknown name (listing the names), a MODULE:ATTR that does not import or
        names something else, or a recipe without a declaration; options after a name that is
        not a recipe, a bad option value, or options for a recipe whose declaration does not
        depend on them.
    """
    from unigen.algebra.declaration import Declaration, check
    from unigen.algorithms.declarations import DECLARATIONS

    if options:
        return check(_declaration_with(text, options))
    if text in DECLARATIONS:
        return DECLARATIONS[text]
    if ":" in text:
        module_name, _, attribute = text.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except Exception as error:  # noqa: BLE001 - any failure of a user's module is reported in one line
            raise ConfigError(f"algorithm: {text} does not import ({brief(error)}); expected MODULE:ATTR naming "
                              "a Declaration or a Recipe") from None
    elif text in _BY_NAME or text in _entry_points():
        found = recipe(text)
    else:
        raise ConfigError(f"algorithm: got {describe(text)}, expected one of {sorted(DECLARATIONS)}, a recipe "
                          f"({', '.join(names())}) or MODULE:ATTR")
    if isinstance(found, Recipe):
        declared = declaration_of(found)
        if declared is None:
            raise ConfigError(f"algorithm: the recipe {found.name} has no declaration yet; expected one of "
                              f"{sorted(DECLARATIONS)}")
        found = declared
    if not isinstance(found, Declaration):
        raise ConfigError(f"algorithm: {text} names a {type(found).__name__}; expected a Declaration or a Recipe")
    return check(found)
