"""Serverless Workbook's support package: a local Lambda runtime, a local cloud, checks and plots.

Imports are lazy so that a worker process (which imports `lambdalab.bootstrap`) stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "FunctionConfig": "lambdalab.function",
    "Invocation": "lambdalab.records",
    "Report": "lambdalab.records",
    "LocalRuntime": "lambdalab.runtime",
    "Meter": "lambdalab.metering",
    "LocalCloud": "lambdalab.cloud",
}


def __getattr__(name: str) -> "object":  # no typing import: workers import this package
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lambdalab' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
