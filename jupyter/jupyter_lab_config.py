"""JupyterLab as the course opens it: `make lab`, and `jupyter lab --config=jupyter/jupyter_lab_config.py` (conda).

The file browser starts at the repository (lessons in notebooks/, exercises in labs/, reference
code in solutions/), lesson 00 opens first, and JupyterLab makes no news or update requests and
asks no question about them (the course makes no network calls beyond loopback).
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 (traitlets provides it when it loads this file)

c.ServerApp.root_dir = str(HERE.parent)
c.LabApp.default_url = "/lab/tree/notebooks/00_welcome.ipynb"
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# The settings overrides (settings/overrides.json) answer JupyterLab's "get Jupyter news?" pop-up: never.
c.LabApp.app_settings_dir = str(HERE / "settings")
