"""Serverless Workbook's support package.

Layers, lowest first (each imports only those below it; `make lint` enforces it):
`_util` (shared helpers), `runtime` (the local Lambda service), `events` (event shapes),
`cloud` (moto's services joined to the runtime), `course` (labs, checks, plots, lesson
instruments), `cli` (the `lambdalab` command).

The names learners use are exported here lazily, so a worker process stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "FunctionConfig": "lambdalab.runtime.config",
    "Invocation": "lambdalab.runtime.records",
    "Report": "lambdalab.runtime.records",
    "LocalRuntime": "lambdalab.runtime.service",
    "Meter": "lambdalab.runtime.metering",
    "LocalCloud": "lambdalab.cloud.local_cloud",
    "check": "lambdalab.course.checks",
}


def __getattr__(name: str) -> "object":  # no typing import: workers import this package
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lambdalab' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
