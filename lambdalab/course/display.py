"""Tables for notebooks and terminals: rows of dicts shown as HTML in Jupyter and aligned text elsewhere."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdalab._util.logtext import entry_lines, log_text

__all__ = ["Table", "bill_per_million", "invocation_table", "log_text"]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    # A multi-line log entry stays in its cell: its lines joined by a visible marker, not a raw \r.
    return " ⏎ ".join(entry_lines(str(value)))


@dataclass
class Table:
    """`Table(rows)`: rows are mappings with the same keys; the first row's keys are the columns."""

    rows: list[Mapping[str, Any]]
    title: str = ""

    def __init__(self, rows: Iterable[Mapping[str, Any]], title: str = ""):
        self.rows = list(rows)
        self.title = title

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []

    def __str__(self) -> str:
        cols = self.columns
        cells = [[_fmt(r.get(c)) for c in cols] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        lines = [self.title] if self.title else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.rjust(w) if v[:1].isdigit() else v.ljust(w) for v, w in zip(row, widths))
                  for row in cells]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in self.columns) + "</tr>"
                       for r in self.rows)
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def invocation_table(invocations: Iterable[Any]) -> Table:
    """One row per `Invocation`: the REPORT numbers and the outcome."""
    return Table({
        "request id": i.request_id[:8], "environment": i.environment_id[:8], "cold": i.cold,
        "init ms": i.init_ms, "duration ms": i.duration_ms, "billed ms": i.billed_ms,
        "max memory MB": i.max_memory_used_mb,
        "outcome": "ok" if i.ok else f"{i.error_type}: {str(i.error.get('errorMessage', ''))[:60]}",
    } for i in invocations)


def bill_per_million(rows: Iterable[Mapping[str, Any]], title: str = "") -> Table:
    """A bill (the rows of `Meter.table()`) in dollars per million invocations: a lesson's few
    hundred invocations cost fractions of a cent, which would show as $0.00 in every column."""
    return Table(({
        "function": r["function"], "requests": r["requests"], "GB-s": r["GB-s"],
        **{f"{kind} $ per million": r[f"{kind} $"] / r["requests"] * 1e6 if r["requests"] else None
           for kind in ("compute", "requests", "total")},
    } for r in rows), title)
