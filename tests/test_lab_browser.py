"""`make lab` as a learner meets it: JupyterLab from the venv serves the whole repository, opens
lesson 00 first, asks nothing about news, and a real (headless) Chromium renders the first lesson
with the course's own kernel."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def makefile_lab_flags() -> list[str]:
    """The flags `make lab` passes (LAB_FLAGS in the Makefile), so the test opens the lab as learners do;
    a relative --config path is the repository's, as make runs in it."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("LAB_FLAGS :="):
            flags = line.split(":=", 1)[1].split()
            return [f"--config={ROOT / f.split('=', 1)[1]}" if f.startswith("--config=") else f for f in flags]
    pytest.fail("the Makefile has no LAB_FLAGS line", pytrace=False)


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    pytest.fail("no Chromium found: `make test` installs it (scripts/os-deps.sh), or run "
                "`apt-get install chromium` / `brew install --cask chromium`", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    args = [str(jupyter), "lab", "--no-browser", *makefile_lab_flags(), "--ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--ServerApp.token={token}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    home = tmp_path_factory.mktemp("home")  # no user-level Jupyter settings leak in
    env = {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1", "HOME": str(home),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = open(home / "lab.log", "w")
    # Started elsewhere than the repository: the file browser's root must come from the lab's config.
    server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=home)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.3)
    yield base, token, home
    os.killpg(server.pid, 15)
    server.wait(timeout=20)
    log.close()


def test_server_serves_the_repository_with_every_lesson_and_lab(lab):
    import json
    base, token, _ = lab
    top = json.loads(urllib.request.urlopen(f"{base}/api/contents?token={token}").read())
    assert {"labs", "notebooks", "solutions"} <= {item["name"] for item in top["content"]}
    listing = json.loads(urllib.request.urlopen(f"{base}/api/contents/notebooks?token={token}").read())
    served = sorted(item["name"] for item in listing["content"] if item["name"].endswith(".ipynb"))
    assert served == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    exercise = json.loads(urllib.request.urlopen(f"{base}/api/contents/labs/hello/handler.py?token={token}").read())
    assert exercise["content"] == (ROOT / "labs/hello/handler.py").read_text()  # "Open from Path" reaches the labs
    specs = json.loads(urllib.request.urlopen(f"{base}/api/kernelspecs?token={token}").read())
    python3 = specs["kernelspecs"]["python3"]["spec"]
    assert Path(python3["argv"][0]).resolve() == Path(sys.executable).resolve()  # the venv's Python


def test_chromium_opens_the_welcome_lesson_in_the_repository_without_a_news_question(lab):
    """The lab's front page (what `make lab` opens) lands on lesson 00, the file browser shows the
    repository's folders, and no notification asks about Jupyter news
    (https://jupyterlab.readthedocs.io/en/stable/user/announcements.html)."""
    base, token, home = lab
    profile = home / "chromium-profile"
    out = subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1400,900", "--virtual-time-budget=20000", "--dump-dom",
         f"{base}/?token={token}"],
        capture_output=True, text=True, timeout=120)
    dom = out.stdout
    assert "jp-LabShell" in dom, out.stderr[-2000:]
    assert "Welcome to Serverless Workbook" in dom  # lesson 00 opened first
    # The browser shows the lesson's folder, notebooks/, under a home that is the repository (so "up" reaches labs/).
    home_crumb = re.search(r'<span title="([^"]*)" class="jp-BreadCrumbs-home', dom)
    assert home_crumb and Path(home_crumb.group(1)).resolve() == ROOT, home_crumb
    assert re.search(r'class="jp-BreadCrumbs-item"[^>]*>notebooks<', dom)
    listed = set(re.findall(r'class="jp-DirListing-itemText"[^>]*><span>([^<]+)</span>', dom))
    assert "00_welcome.ipynb" in listed, sorted(listed)
    # No toast at all, and none asking "Would you like to get notified about official Jupyter news?"
    assert "Jupyter news" not in dom and 'class="Toastify__toast ' not in dom
    assert "Welcome to Serverless Workbook" in dom  # the lesson's markdown was rendered
    assert dom.count("jp-CodeCell ") >= 5  # and its code cells are there
    assert "Serverless Workbook)" in dom  # the kernel is the venv's ("Python 3 (Serverless Workbook)")
