"""Where lambdalab keeps what it builds once and reuses (the runtime site, dependency installs, packages)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "LAMBDALAB_CACHE"


def cache_root() -> Path:
    """$LAMBDALAB_CACHE, else the user's cache directory (~/.cache/lambdalab), else a per-user temp dir.

    Not the checkout: a CI copy may be read-only, and learners are not root.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lambdalab"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"lambdalab-cache-{os.getuid()}"
