"""`make lab` as a learner meets it: JupyterLab from the venv serves the whole repository, opens
lesson 00 first, asks nothing about news, and a real (headless) Chromium renders the first lesson
with the course's own kernel.

The learner's journey, driven with Playwright in the system's Chromium (never a downloaded one):
lesson 04 on the labs track, its check cell run to FAIL; labs/thumbnail/handler.py opened from
the file browser, fixed in JupyterLab's editor and saved; the check run again to PASS. Then the
published course (`make course`'s steps, for lesson 00) loads in Chromium with its images.
Screenshots go to build/browser/. The journey runs in a scratch copy of the course, so the
repository's labs/ stays untouched."""

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
from playwright.sync_api import sync_playwright

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
    yield from serve(makefile_lab_flags(), tmp_path_factory.mktemp("home"), {})


def serve(flags: list[str], home: Path, env_changes: dict[str, str | None]):
    """JupyterLab started as `make lab` starts it (`flags`), with `home` as HOME; yields (base URL, token, home)."""
    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    args = [str(jupyter), "lab", "--no-browser", *flags, "--ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--ServerApp.token={token}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    # No user-level Jupyter settings leak in.
    env = {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1", "HOME": str(home),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
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


# --- the learner's journey, in Playwright -------------------------------------------------------

SCREENSHOTS = ROOT / "build" / "browser"
CHECK_CELL = 'check("thumbnail")'


def scratch_course(root: Path) -> Path:
    """A copy of the course with what lesson 04's journey needs: the lab config, lessons 00 and 04,
    the thumbnail lab as `lambdalab labs build` wrote it, its solution and its checks."""
    shutil.copytree(ROOT / "jupyter", root / "jupyter")
    (root / "notebooks").mkdir()
    for lesson in ("00_welcome.ipynb", "04_thumbnail_service.ipynb"):
        shutil.copy(ROOT / "notebooks" / lesson, root / "notebooks" / lesson)
    for tree in ("labs/thumbnail", "solutions/thumbnail"):
        shutil.copytree(ROOT / tree, root / tree, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests" / "labs").mkdir(parents=True)
    for name in ("conftest.py", "test_thumbnail.py"):
        shutil.copy(ROOT / "tests" / "labs" / name, root / "tests" / "labs" / name)
    return root


@pytest.fixture(scope="module")
def course_lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it, on a scratch copy of the course, on the labs track (the default)."""
    course = scratch_course(tmp_path_factory.mktemp("course"))
    flags = [f"--config={course / 'jupyter' / 'jupyter_lab_config.py'}" if f.startswith("--config=") else f
             for f in makefile_lab_flags()]
    # The kernel inherits the server's environment: LAMBDALAB_ROOT makes check() use the copy;
    # `make test` sets LAMBDALAB_TRACK=solutions, which a learner's lab does not have.
    env = {"LAMBDALAB_ROOT": str(course), "LAMBDALAB_TRACK": None}
    for base, token, _home in serve(flags, tmp_path_factory.mktemp("home"), env):
        yield base, token, course


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield chrome
        chrome.close()


def run_check_cell(page, expect: str, timeout_s: float) -> str:
    """Run lesson 04's check cell (Shift+Enter in it) and wait until its output shows `expect`."""
    cell = page.locator(".jp-CodeCell", has_text=CHECK_CELL).last
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    output = cell.locator(".jp-OutputArea-output")
    output.filter(has_text=expect).first.wait_for(timeout=timeout_s * 1000)
    return output.first.inner_text()


def test_journey_lesson_04_check_fails_then_the_learner_fixes_the_handler_in_jupyterlab(course_lab, browser):
    """Lesson 04 on the labs track: its check cell (self-contained: its own import) reports FAIL;
    the learner opens labs/thumbnail/handler.py from the file browser, pastes the service's core
    into JupyterLab's editor, saves, and the check passes."""
    base, token, course = course_lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/notebooks/04_thumbnail_service.ipynb?token={token}")
    page.locator(".jp-Notebook").first.wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for()  # the kernel is up

    failed = run_check_cell(page, "FAIL", timeout_s=300)
    page.screenshot(path=str(SCREENSHOTS / "04-check-fails.png"))
    assert "labs track" in failed and "NotImplementedError: Exercise 'keys'" in failed, failed

    # The file browser, from the repository's top: labs/ -> thumbnail/ -> handler.py.
    page.locator(".jp-BreadCrumbs-home").first.click()
    for name in ("labs", "thumbnail", "handler.py"):
        page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=name)) \
            .filter(has_text=name).first.dblclick()
    editor = page.locator(".jp-FileEditor .cm-content")
    editor.wait_for()
    handler = course / "labs" / "thumbnail" / "handler.py"
    assert "raise NotImplementedError" in handler.read_text()
    fixed = (ROOT / "solutions" / "thumbnail" / "handler.py").read_text()
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(fixed)  # as a paste: no keystroke-by-keystroke auto-indent
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while handler.read_text() != fixed and time.monotonic() < deadline:
        time.sleep(0.2)
    assert handler.read_text() == fixed, "JupyterLab's editor did not save the fixed handler"
    page.screenshot(path=str(SCREENSHOTS / "04-handler-fixed.png"))

    page.locator(".lm-TabBar-tab", has_text="04_thumbnail_service.ipynb").first.click()
    passed = run_check_cell(page, "All checks pass", timeout_s=300)
    page.screenshot(path=str(SCREENSHOTS / "04-check-passes.png"))
    assert "FAIL" not in passed, passed
    page.close()


def test_journey_the_published_course_loads_with_its_images(browser, tmp_path):
    """`make course`'s steps for lesson 00 (nbconvert --execute, then lambdalab.course.site): the index
    links the lesson, and the lesson's page shows its images (the architecture picture, drawn by code)."""
    notebooks, out = tmp_path / "notebooks", tmp_path / "course"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "00_welcome.ipynb", notebooks)
    env = {**os.environ, "LAMBDALAB_TRACK": "solutions"}
    subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "html", "--execute",
                    "--ExecutePreprocessor.timeout=120", "--output-dir", str(out), str(notebooks / "00_welcome.ipynb")],
                   check=True, env=env, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "lambdalab.course.site", str(notebooks), str(out)], check=True, timeout=60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((out / "index.html").as_uri())
    page.screenshot(path=str(SCREENSHOTS / "course-index.png"))
    page.locator("a[href='00_welcome.html']").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("00_welcome.html")
    assert "Welcome to Serverless Workbook" in page.inner_text("body")
    images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert images and all(complete and width > 0 for complete, width in images), images
    page.screenshot(path=str(SCREENSHOTS / "course-00.png"), full_page=True)
    page.close()
