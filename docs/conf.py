"""Sphinx configuration of the unigen site: ``sphinx-build -W -j auto -b html docs docs/_build/html``.

Everything the pages load is on disk: the theme (furo), MathJax 3 (SVG output, from the
``sphinx-mathjax-offline`` package) and the notebooks' figures, so the site works from ``file://``
on a machine without a network. ``_ext/unigen_docs.py`` writes the API pages (one per layer, from
the docstrings), brings in the executed notebooks and renders the objectives from the algebra.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "unigen"
author = "the unigen authors"
copyright = "the unigen authors"  # noqa: A001 - Sphinx's name
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",  # re-exported numpyro classes carry doctest blocks
    "myst_nb",
    "unigen_docs",
]

exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]  # README sections included under a page title start at ###

# MyST: $...$ and $$...$$ math in Markdown and notebooks; anchors for ## and ### headings, so the
# lecture map links straight to a notebook's section (a wrong anchor is a build error).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Notebooks: executed once, by the notebook tests or by unigen_docs before the build, never here.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # the default loads require.js and the widget manager from a CDN
nb_merge_streams = True

# Docstrings: Google style; attributes as fields, so a NamedTuple's fields are documented once.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"  # types beside the documented arguments only
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = "unigen"
html_static_path = ["_static"]
html_css_files = ["unigen.css"]
html_show_sourcelink = False
