"""Small text and HTML tables for the result objects of orc.compare (printed in terminals and
pytest failure messages, rendered by notebooks through _repr_html_)."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def fmt(x: Any) -> str:
    """A compact cell: floats with 4 significant digits, everything else str()."""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "NO"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x) or math.isinf(x):
            return str(x)
        return f"{x:.4g}"
    if isinstance(x, tuple):
        return "(" + ", ".join(str(v) for v in x) + ")"
    return str(x)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [indent + "  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             indent + "  ".join("-" * w for w in widths)]
    lines += [indent + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], highlight: Sequence[bool] | None = None) -> str:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>",
           "<tbody>"]
    for i, r in enumerate(rows):
        style = ' style="background-color:#fdd"' if highlight is not None and highlight[i] else ""
        out.append(f"<tr{style}>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def html_text(s: str) -> str:
    return f"<p>{html.escape(s)}</p>"
