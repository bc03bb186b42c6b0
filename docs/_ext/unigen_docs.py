"""The Sphinx extension behind the unigen site.

* **MathJax offline.** MathJax 3 comes from the ``sphinx-mathjax-offline`` package and is copied
  into ``_static/mathjax``; pages load its SVG output (``tex-svg.js``), whose glyphs are in the
  script: no font files to fetch, from a server or from ``file://``.
* **API pages.** :data:`LAYERS` names the modules of each layer of DESIGN.md; a package stands for
  every module in it, found when the site is built, so a module added later gets its page section
  without editing this file. Every module of ``unigen`` must belong to a layer: one that does not
  stops the build, naming it.
* **Notebooks.** The notebook tests write executed copies to ``docs/_build/executed/``; the build
  copies them to ``docs/notebooks/`` and MyST-NB renders them with execution off. A copy that is
  missing or stale (its cells differ from the notebook, or it is older than the notebook or a file
  of ``unigen``) is made here first, by running the notebook in a kernel of this interpreter
  (``UNIGEN_DOCS_EXECUTE=0`` shows it without outputs instead, for a quick draft).
* **Directives** that print what the algebra declares, at build time: ``unigen-declaration NAME``,
  ``unigen-identity NAME``, ``unigen-figure5``, ``unigen-direction NAME`` and
  ``unigen-latex MODULE:ATTR``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import shutil
import sys
import tempfile
import time
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.util import logging

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = DOCS / "_build" / "executed"
RENDERED = DOCS / "notebooks"
API = DOCS / "api" / "generated"

logger = logging.getLogger(__name__)

LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("core", "Protocols (Model, Joint, Inference, Phase, Algorithm), leaf distributions, networks "
     "and the error types every layer raises.",
     ("unigen", "unigen.core", "unigen.distributions", "unigen.nets", "unigen.errors")),
    ("models", "One file per model family, each a (Joint, Inference) pair of pure functions.",
     ("unigen.models",)),
    ("algorithms", "One file per algorithm, each declaring its objective in the algebra; the "
     "declarations registry.", ("unigen.algorithms",)),
    ("algebra", "Expressions, printing, identities, compile, declaration to algorithm, verify.",
     ("unigen.algebra",)),
    ("estimators", "Monte Carlo gradient estimators and their variance.", ("unigen.estimators",)),
    ("training", "One trainer for every algorithm: data parallel, checkpointed, resumable.",
     ("unigen.training",)),
    ("data", "Built-in data sets, TFDS and IDX sources, the seeded batch iterator.", ("unigen.data",)),
    ("metrics", "IS-NLL, mode coverage and the plots (side modules of DESIGN.md).",
     ("unigen.metrics", "unigen.viz", "unigen.bench_modes")),
    ("recipes", "The registry the command line reads, and the command line itself.",
     ("unigen.recipes", "unigen.cli")),
)
"""(page, one-line summary, modules or packages) for each page of the API reference."""


# --------------------------------------------------------------------------------------------
# MathJax from a package


def _mathjax_static() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")  # the package's own (hyphenated) name
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is not installed: pip install -e '.[docs]'")
    static = Path(spec.origin).parent / "static"
    if not (static / "mathjax" / "tex-svg.js").is_file():
        raise RuntimeError(f"{static}/mathjax/tex-svg.js is missing: reinstall sphinx-mathjax-offline")
    return static


def _configure_mathjax(app, config) -> None:
    config.html_static_path = [*config.html_static_path, str(_mathjax_static())]
    config.mathjax_path = "mathjax/tex-svg.js"


# --------------------------------------------------------------------------------------------
# API pages


def _modules(name: str) -> list[str]:
    """``name``, then (for a package other than ``unigen``) its public submodules, recursively."""
    module = importlib.import_module(name)
    found = [name]
    if name != "unigen" and hasattr(module, "__path__"):
        for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                found += _modules(f"{name}.{info.name}")
    return found


def _all_modules() -> set[str]:
    package = importlib.import_module("unigen")
    names = {"unigen"}
    for info in pkgutil.walk_packages(package.__path__, "unigen."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.add(info.name)
    return names


def _write_api_pages(app) -> None:
    API.mkdir(parents=True, exist_ok=True)
    covered: set[str] = set()
    for page, summary, roots in LAYERS:
        lines = [f"{page}", "=" * len(page), "", summary, ""]
        for root in roots:
            for name in _modules(root):
                covered.add(name)
                package = hasattr(importlib.import_module(name), "__path__")
                lines += [f"``{name}``", "-" * (len(name) + 4), "", f".. automodule:: {name}"]
                # A package's names are re-exports of its modules, documented there once.
                lines += ["   :no-members:", ""] if package else [""]
        text = "\n".join(lines)
        target = API / f"{page}.rst"
        if not target.exists() or target.read_text() != text:  # unchanged pages stay unchanged
            target.write_text(text)
    missing = sorted(_all_modules() - covered)
    if missing:
        raise RuntimeError(f"modules on no API page: {missing}; add them to LAYERS in {__file__}")


LONGEST_VALUE = 90
"""Characters of a module constant's value shown after its name; a longer repr is cut short."""


def _shorten_values(app, doctree) -> None:
    """Cuts the ``= value`` of a documented constant (a registry's repr runs to pages) short."""
    from sphinx import addnodes

    for signature in doctree.findall(addnodes.desc_signature):
        for annotation in signature.findall(addnodes.desc_annotation):
            text = annotation.astext()
            if text.lstrip().startswith("=") and len(text) > LONGEST_VALUE:
                annotation.children = [nodes.Text(text[:LONGEST_VALUE] + " …")]


def _skip_tuple_fields(app, what, name, obj, skip, options):
    """A NamedTuple's fields are documented by its docstring's Attributes; autodoc would add each
    again as "Alias for field number N"."""
    if type(obj).__name__ == "_tuplegetter" and (obj.__doc__ or "").startswith("Alias for field number"):
        return True
    return None


# --------------------------------------------------------------------------------------------
# Notebooks


def _cells(notebook: dict) -> list[tuple[str, str]]:
    def text(source):
        return "".join(source) if isinstance(source, list) else source

    return [(cell["cell_type"], text(cell["source"])) for cell in notebook["cells"]]


def _newest_source() -> float:
    return max(path.stat().st_mtime for path in (ROOT / "unigen").rglob("*.py"))


def _is_fresh(copy: Path, source: Path, newest: float) -> bool:
    if not copy.is_file():
        return False
    if copy.stat().st_mtime < max(newest, source.stat().st_mtime):
        return False
    return _cells(json.loads(copy.read_text(encoding="utf-8"))) == _cells(
        json.loads(source.read_text(encoding="utf-8")))


def _execute(source: Path, target: Path) -> float:
    """Runs ``source`` in a kernel of this interpreter (cwd ``notebooks/``); writes ``target``."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    with tempfile.TemporaryDirectory() as kernels:
        spec = Path(kernels) / "unigen-docs"
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({  # figures shown inline, as in Jupyter
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "unigen docs", "language": "python",
            "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}}))
        manager = AsyncKernelManager(kernel_name="unigen-docs", kernel_spec_manager=KernelSpecManager(
            kernel_dirs=[kernels], ensure_native_kernel=False))
        began = time.perf_counter()
        NotebookClient(notebook, km=manager, timeout=600,
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute(cleanup_kc=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    nbformat.write(notebook, partial)
    partial.replace(target)
    return time.perf_counter() - began


def _prepare_notebooks(app) -> None:
    newest = _newest_source()
    RENDERED.mkdir(exist_ok=True)
    sources = sorted(NOTEBOOKS.glob("*.ipynb"))
    for source in sources:
        copy = EXECUTED / source.name
        if _is_fresh(copy, source, newest):
            logger.info(f"[unigen] {source.name}: using the executed copy in {EXECUTED.relative_to(ROOT)}")
        elif os.environ.get("UNIGEN_DOCS_EXECUTE") == "0":  # a quick draft: pages without outputs
            logger.info(f"[unigen] {source.name}: no fresh executed copy; shown without outputs")
            copy = source
        else:
            logger.info(f"[unigen] {source.name}: no fresh executed copy; executing it")
            seconds = _execute(source, copy)
            logger.info(f"[unigen] {source.name}: executed in {seconds:.1f} s")
        target = RENDERED / source.name
        if not target.exists() or target.read_bytes() != copy.read_bytes():
            shutil.copyfile(copy, target)
    for stale in set(RENDERED.glob("*.ipynb")) - {RENDERED / s.name for s in sources}:
        stale.unlink()


def _builder_inited(app) -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    _write_api_pages(app)
    _prepare_notebooks(app)


# --------------------------------------------------------------------------------------------
# Directives: the algebra's output, generated at build time


def _math(latex: str, docname: str) -> nodes.math_block:
    node = nodes.math_block(latex, latex)
    node["docname"], node["number"], node["label"], node["nowrap"] = docname, None, None, False
    return node


def _printed(text: str) -> nodes.literal_block:
    node = nodes.literal_block(text, text)
    node["language"] = "text"
    return node


class DeclarationDirective(Directive):
    """``unigen-declaration NAME``: a declared algorithm, phase by phase, as ``unigen algebra show``
    prints it and in LaTeX (``:phases: a,b`` keeps some phases; ``:no-text:`` drops the print)."""

    required_arguments = 1
    option_spec = {"phases": directives.unchanged, "no-text": directives.flag}

    def run(self):
        from unigen.algebra.symbols import symbol
        from unigen.recipes import find_declaration

        declared = find_declaration(self.arguments[0])
        keep = self.options.get("phases")
        keep = None if keep is None else [name.strip() for name in keep.split(",")]
        docname = self.state.document.settings.env.docname
        out: list[nodes.Node] = []
        if "no-text" not in self.options:
            out.append(_printed(str(declared)))
        for phase in declared.phases:
            if keep is not None and phase.name not in keep:
                continue
            groups = ", ".join(symbol(group, True) for group in phase.groups)
            label = nodes.paragraph()
            label += nodes.strong(text=phase.name)
            label += nodes.Text(f" phase ({declared.title}):")
            out += [label, _math(f"\\{phase.sense}_{{{groups}}}\\; {phase.objective.latex()}", docname)]
        if keep is not None and len(out) == (0 if "no-text" in self.options else 1):
            raise self.error(f"{declared.name} has no phase among {keep}")
        return out


class IdentityDirective(Directive):
    """``unigen-identity NAME``: an identity's statement(s) in LaTeX, and in what sense it holds."""

    required_arguments = 1
    option_spec = {"derivation": directives.flag}

    def run(self):
        from unigen.algebra.identities import IDENTITIES

        name = self.arguments[0]
        if name not in IDENTITIES:
            raise self.error(f"unknown identity {name!r}; expected one of {sorted(IDENTITIES)}")
        rewrite = IDENTITIES[name]() if callable(IDENTITIES[name]) else IDENTITIES[name]
        docname = self.state.document.settings.env.docname
        out: list[nodes.Node] = []
        for component in range(len(rewrite.left)):  # left on one line, "= right" under it
            left, _, right = rewrite.statement(component, latex=True).partition(" = ")
            out.append(_math(f"\\begin{{aligned}}&{left}\\\\ &= {right}\\end{{aligned}}", docname))
        sense = nodes.paragraph()
        sense += nodes.emphasis(text="In the sense: ")
        sense += nodes.Text(rewrite.sense)
        out.append(sense)
        if "derivation" in self.options:
            out.append(_printed("\n".join(rewrite.lines())))
        return out


class Figure5Directive(Directive):
    """``unigen-figure5``: the lecture's Figure 5, the Markdown table ``unigen algebra table``
    prints (in a MyST page, parsed as MyST)."""

    def run(self):
        from docutils.statemachine import StringList

        from unigen.algebra.table import table

        container = nodes.container(classes=["unigen-figure5"])
        self.state.nested_parse(StringList(table().splitlines(), source="unigen.algebra.table"),
                                self.content_offset, container)
        return [container]


class DirectionDirective(Directive):
    """``unigen-direction NAME``: which side of its Figure-5 KL the model of ``NAME`` sits on."""

    required_arguments = 1

    def run(self):
        from unigen.algebra.direction import direction_of
        from unigen.algebra.symbols import symbol
        from unigen.recipes import find_declaration

        declared = find_declaration(self.arguments[0])
        found = direction_of(declared)
        docname = self.state.document.settings.env.docname
        text = nodes.paragraph()
        text += nodes.strong(text=f"{declared.title}: ")
        text += nodes.Text(f"{symbol(found.wrt)} is in the {found.side} argument, {found.behaviour}. "
                           f"{found.explanation}")
        return [_math(f"\\min_{{{symbol(found.wrt, True)}}}\\; {found.kl.latex()}", docname), text]


class LatexDirective(Directive):
    """``unigen-latex MODULE:ATTR``: a LaTeX string, or each value of a dict of them, as math."""

    required_arguments = 1

    def run(self):
        module_name, _, attribute = self.arguments[0].partition(":")
        value = getattr(importlib.import_module(module_name), attribute)
        docname = self.state.document.settings.env.docname
        if isinstance(value, dict):
            out: list[nodes.Node] = []
            for key, latex in value.items():
                label = nodes.paragraph()
                label += nodes.strong(text=str(key))
                out += [label, _math(latex, docname)]
            return out
        return [_math(str(value), docname)]


def setup(app):
    app.connect("config-inited", _configure_mathjax)
    app.connect("builder-inited", _builder_inited)
    app.connect("doctree-read", _shorten_values)
    app.connect("autodoc-skip-member", _skip_tuple_fields)
    app.add_directive("unigen-declaration", DeclarationDirective)
    app.add_directive("unigen-identity", IdentityDirective)
    app.add_directive("unigen-figure5", Figure5Directive)
    app.add_directive("unigen-direction", DirectionDirective)
    app.add_directive("unigen-latex", LatexDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
