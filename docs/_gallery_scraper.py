"""sphinx-gallery image scraper for figures the examples save as PNG files (they draw without pyplot)."""
from __future__ import annotations

import shutil
from pathlib import Path

from sphinx_gallery.scrapers import figure_rst


def saved_png_scraper(block, block_vars, gallery_conf) -> str:
    """Move the PNGs an example saved in its folder into the gallery, in the order they were written.

    sphinx-gallery runs each example with its folder as the working directory, so the examples'
    default ``--out`` puts their figures there; moving them keeps the folder clean.
    """
    folder = Path(block_vars["src_file"]).parent
    pngs = sorted(folder.glob("*.png"), key=lambda path: path.stat().st_mtime)
    images = []
    for png, target in zip(pngs, block_vars["image_path_iterator"]):
        shutil.move(str(png), target)
        images.append(target)
    return figure_rst(images, gallery_conf["src_dir"])
