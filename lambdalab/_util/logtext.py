"""Log entries as the lines a reader sees: one helper for every place the course prints Lambda's logs.

awslambdaric writes a multi-line record (an ``[ERROR]`` line and its traceback, a multi-line ``logging``
message) as ONE log event whose lines are separated by ``\\r``, so CloudWatch keeps them together and shows
them as lines. Printed raw, every ``\\r`` sends a terminal's (or a notebook's) cursor back to the start of
the line, and only the last line stays visible. These helpers turn each separator into a line break.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEPARATOR = re.compile(r"\r\n?|\n")


def entry_lines(entry: str) -> list[str]:
    """The lines of one log entry (a trailing separator adds no empty line)."""
    lines = _SEPARATOR.split(entry)
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


def log_text(entries: Iterable[str]) -> str:
    """Log entries (e.g. `Invocation.log_lines`, `LocalCloud.logs(name)`) as text, one line per line."""
    return "\n".join(line for entry in entries for line in entry_lines(entry))
