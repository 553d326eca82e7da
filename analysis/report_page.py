"""The HTML building blocks of the report: escaping, number and interval formats, tables, the style sheet.

:mod:`hvae.analysis.report` decides what the report says; this module only says how a value, an
interval or a table looks in HTML (the same formats in every section)::

    table(["group", "VR"], [["pro", fmt(0.98, ".2f")]])   # '<table class=""><thead>...'
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def interval(low: Any, high: Any, spec: str = ".1f") -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "–"
    return f"[{format(low, spec)}, {format(high, spec)}]"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1, cls: str = "",
    text_columns: Sequence[int] = (),
) -> str:
    """An HTML table; columns from ``numeric_from`` on (except ``text_columns``) are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            align = ' class="num"' if i >= numeric_from and i not in text_columns else ""
            cells.append(f"<td{align}>{cell if isinstance(cell, Raw) else esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


class Raw(str):
    """A table cell that is already HTML."""


def params(section: Any, skip: Sequence[str] = ("kind",)) -> str:
    if not isinstance(section, dict):
        return str(section)
    extra = ", ".join(f"{k}={v}" for k, v in section.items() if k not in skip)
    return f"{section.get('kind', '?')}" + (f" ({extra})" if extra else "")


def value_text(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("distribution", "")
        rest = ", ".join(f"{k}={v}" for k, v in value.items() if k != "distribution")
        return f"{kind}({rest})"
    return str(value)


def decider_text(decider: Any, scenario: dict[str, Any]) -> str:
    if not isinstance(decider, dict):
        return str(decider)
    kind = decider.get("kind", "?")
    if kind == "llm":
        name = decider.get("backend", "embedded")
        backend = (scenario.get("backends") or {}).get(name) or {"kind": "embedded"}
        model = backend.get("model") or backend.get("model_path") or (
            "SmolLM2-135M-Instruct" if backend.get("kind") == "embedded" else "scripted replies")
        return f"llm — backend '{name}': {backend.get('kind', '?')}, {model}"
    extra = ", ".join(f"{k}={v}" for k, v in decider.items() if k != "kind")
    return kind + (f" ({extra})" if extra else "")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1250px;margin:2em auto;padding:0 1.2em;
color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.1em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #d0d0d0;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.settings td:first-child{font-weight:600;background:#fafafa}
.warning{background:#fff4e5;border-left:6px solid #e67e00;padding:.6em 1em;margin:1em 0}
.caveat{background:#fdecea;border:2px solid #c62828;border-left-width:8px;padding:.8em 1em;margin:1.2em 0;font-size:1.05em}
.status{padding:.1em .5em;border-radius:4px;font-weight:600}
.status.complete{background:#e3f4e8;color:#1b6b33}.status.interrupted,.status.running{background:#fff4e5;color:#a35400}
.status.failed{background:#fdecea;color:#b71c1c}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:.92em}.files{color:#888}.note{color:#555;font-size:.9em}
footer{margin-top:3em;color:#777;font-size:.85em}
"""
