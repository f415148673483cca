"""Sphinx configuration of layerkit's documentation.

Build it from the repository root with ``pip install -e ".[docs]"`` and::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The gallery runs ``examples/*.py`` during the build (except the ones listed in
``NOT_EXECUTED``) and shows the figures they save.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the build never opens a window

import layerkit  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # _gallery_scraper

project = "layerkit"
author = "the layerkit authors"
copyright = "layerkit authors, MIT license"
release = layerkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # NumPy-style docstrings
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",  # the guide is Markdown
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "_gallery_src", "**.ipynb_checkpoints", "auto_examples/**/*.ipynb",
                    "auto_examples/**/*.py", "auto_examples/**/*.zip", "auto_examples/**/*.json",
                    "auto_examples/**/*.md5"]

# -- API reference -------------------------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module page lists its __all__, re-exported names included
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = False
# Type expressions in docstrings ("ndarray of shape (n, d)") are prose, not cross-reference targets.
nitpicky = False

# -- MyST ----------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3


# -- Events --------------------------------------------------------------------------------------
def skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing) of the estimators."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_member)


# -- Gallery -------------------------------------------------------------------------------------
# The gallery is made from a copy of the scripts directly in examples/ (sphinx-gallery would
# otherwise take examples/plugin_package, a package with a README, for a gallery section).
EXAMPLES = HERE.parent / "examples"
GALLERY_SOURCE = HERE / "_gallery_src"
shutil.rmtree(GALLERY_SOURCE, ignore_errors=True)
GALLERY_SOURCE.mkdir()
for source in [*EXAMPLES.glob("*.py"), EXAMPLES / "GALLERY_HEADER.rst"]:
    shutil.copy2(source, GALLERY_SOURCE / source.name)

# Examples that are rendered but not run during the build: the Dask search (a cluster, minutes) and
# MNIST (needs the IDX files). Everything else runs and its figures appear on its page.
NOT_EXECUTED = ("search_on_dask", "mnist")
# The out-of-core example trains on 2 GB by default (its reported run); the gallery runs it on 10 MB.
os.environ.setdefault("LAYERKIT_DASK_EXAMPLE_GB", "0.01")

sphinx_gallery_conf = {
    "examples_dirs": "_gallery_src",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(?!(" + "|".join(NOT_EXECUTED) + r")\.py$)[^/]+\.py$",
    "ignore_pattern": r"__init__\.py",
    "image_scrapers": ("matplotlib", "_gallery_scraper.saved_png_scraper"),
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "abort_on_example_error": True,
    "show_memory": False,
}

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"layerkit {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_static_path: list[str] = []
html_show_sourcelink = True
