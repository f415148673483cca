"""HTML tables for the ``_repr_html_`` of notebooks (Jupyter shows them instead of the plain text)."""
from __future__ import annotations

from html import escape
from typing import Sequence

_STYLE = "border-collapse: collapse; font-family: monospace; font-size: 12px"
_CELL = "padding: 2px 8px; border-bottom: 1px solid #ddd"


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str = "",
               notes: Sequence[str] = (), right: Sequence[int] = (), row_colors: Sequence[str | None] = ()) -> str:
    """One ``<table>``, every value escaped.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequences, each as long as ``header``
    caption : str
        A line above the table.
    notes : sequence of str
        Lines below the table.
    right : sequence of int
        The columns aligned right (numbers).
    row_colors : sequence of str or None
        A background colour per row (``None``: none).
    """
    def cell(tag: str, value: object, column: int) -> str:
        align = "right" if column in right else "left"
        return f'<{tag} style="{_CELL}; text-align: {align}">{escape(str(value))}</{tag}>'

    parts = [f'<table style="{_STYLE}">']
    if caption:
        parts.append(f'<caption style="text-align: left; font-weight: bold">{escape(caption)}</caption>')
    parts.append("<tr>" + "".join(cell("th", name, c) for c, name in enumerate(header)) + "</tr>")
    for index, row in enumerate(rows):
        color = row_colors[index] if index < len(row_colors) else None
        style = f' style="background: {color}"' if color else ""
        parts.append(f"<tr{style}>" + "".join(cell("td", value, c) for c, value in enumerate(row)) + "</tr>")
    parts.append("</table>")
    parts += [f'<div style="font-family: monospace; font-size: 12px">{escape(note)}</div>' for note in notes]
    return "\n".join(parts)


PASSED = "#e6f4ea"
FAILED = "#fce8e6"
