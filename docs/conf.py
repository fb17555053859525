"""Sphinx configuration of the tiered documentation (``make docs``).

Sphinx with MyST keeps the pages in Markdown; autodoc builds the API
reference from the docstrings; furo is the theme.  The build runs with
``-W --keep-going``: any warning fails ``make docs`` and so ``make test``.
It must build offline (CI has no network), so there is no intersphinx.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# autodoc imports tiered from the checkout even when it is not installed
sys.path.insert(0, str(ROOT / "src"))

import tiered  # noqa: E402 - needs the path above

project = "tiered"
author = "the tiered developers"
copyright = "the tiered developers"
release = tiered.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- MyST ----------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
# [Timeouts](#timeouts) and [x](concepts.md#the-report) resolve to headings
myst_heading_anchors = 3

# -- autodoc -------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Type hints name anyio, Starlette and typing objects that have no page here;
# without intersphinx (offline builds) those references cannot resolve.
nitpicky = False

# -- HTML ----------------------------------------------------------------------
html_theme = "furo"
html_title = f"tiered {release}"
html_static_path = ["_static"]
html_show_sourcelink = False
