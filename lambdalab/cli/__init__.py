"""The `lambdalab` command line: one module per command, `main` dispatches."""

from lambdalab.cli.main import main

__all__ = ["main"]
