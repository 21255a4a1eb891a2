"""Sphinx configuration of fastslow's documentation (build: ``sphinx-build -W -b html docs docs/_build/html``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import fastslow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

project = "fastslow"
author = "the fastslow developers"
copyright = "2026, the fastslow developers"  # noqa: A001
release = fastslow.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "gallery_src", "gallery/*.ipynb", "gallery/*.py.md5", "gallery/*.zip", "gallery/sg_execution_times.rst"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"  # numpydoc shows the types from the docstrings
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "xarray": ("https://docs.xarray.dev/en/stable", None),
}
intersphinx_disabled_reftypes = ["*"]
# The build must not need the network: without a cached inventory, intersphinx links stay plain text.
if os.environ.get("FASTSLOW_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "docs" / "gallery_src"),
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "default_thumb_file": None,
}

html_theme = "furo"
html_title = f"fastslow {release}"
html_static_path: list[str] = []
nitpicky = False
suppress_warnings = ["config.cache"]
