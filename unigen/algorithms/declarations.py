"""Every algorithm's declaration, by name: the registry the CLI, the table and the tests read.

Each algorithm file under :mod:`unigen.algorithms` declares its objective once, as module
constants of type :class:`~unigen.algebra.declaration.Declaration` (:data:`SOURCES` lists which).
The registry collects them, checks each with :func:`unigen.algebra.declaration.check`, and keys
them by their ``name``. A constant that is not there (yet) is skipped, so the registry imports
while an algorithm file is being written.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from unigen.algebra.declaration import Declaration, check
from unigen.errors import ConfigError, describe

__all__ = ["DECLARATIONS", "MODULES", "SOURCES", "declaration"]

SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unigen.algorithms.variational_em", ("DECLARATION",)),
    ("unigen.algorithms.wake_sleep", ("DECLARATION",)),
    ("unigen.algorithms.rws", ("DECLARATION",)),
    ("unigen.algorithms.vae", ("DECLARATION",)),
    ("unigen.algorithms.iwae", ("DECLARATION",)),
    ("unigen.algorithms.gan", ("DECLARATION", "MINIMAX", "VARIATIONAL_EM")),
    ("unigen.algorithms.infogan", ("DECLARATION",)),
    ("unigen.algorithms.iwgan", ("DECLARATION",)),
    ("unigen.algorithms.aavae", ("DECLARATION",)),
    ("unigen.algorithms.ada", ("DECLARATION", "SOURCE_ONLY")),
    ("unigen.algorithms.aae", ("DECLARATION",)),
    ("unigen.algorithms.vae_gan", ("DECLARATION",)),
)
"""The algorithm modules and the names of their declaration constants, in lecture order."""


def _collect() -> tuple[dict[str, Declaration], dict[str, str]]:
    declarations: dict[str, Declaration] = {}
    modules: dict[str, str] = {}
    for module_name, constants in SOURCES:
        module = importlib.import_module(module_name)
        for constant in constants:
            found = getattr(module, constant, None)
            if found is None:
                continue
            check(found)
            if found.name in declarations:
                raise ConfigError(
                    f"name of {module_name}.{constant}: got {found.name!r}, already declared by "
                    f"{modules[found.name]}; expected distinct algorithm names"
                )
            declarations[found.name] = found
            modules[found.name] = module_name
    return declarations, modules


_declarations, _modules = _collect()

DECLARATIONS: Mapping[str, Declaration] = MappingProxyType(_declarations)
"""Every declaration, by algorithm name (``"vae"``, ``"gan"``, ``"gan-minimax"``, ...)."""

MODULES: Mapping[str, str] = MappingProxyType(_modules)
"""The module that declares each algorithm, by algorithm name."""


def declaration(name: str) -> Declaration:
    """The declaration of the algorithm called ``name``.

    Raises:
      ConfigError: unknown ``name``; the message lists the valid names.
    """
    if name not in DECLARATIONS:
        raise ConfigError(
            f"algorithm: got {describe(name)}, expected one of {sorted(DECLARATIONS)}"
        )
    return DECLARATIONS[name]
