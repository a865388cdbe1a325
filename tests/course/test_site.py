"""`make course`'s site: nbconvert's pages of every lesson, an index linking each, and links between lessons.

The pages are converted without executing the notebooks (`make course` executes them): what is
tested here is the site's structure, which does not depend on the outputs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lambdalab.course import site

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course")
    jupyter = Path(sys.executable).parent / "jupyter"
    subprocess.run([str(jupyter), "nbconvert", "--to", "html", "--output-dir", str(out), *map(str, NOTEBOOKS)],
                   check=True, capture_output=True, timeout=300)
    assert site.main([str(ROOT / "notebooks"), str(out)]) == 0
    return out


def links(page: Path) -> list[str]:
    return re.findall(r'<a (?:rel="\w+" )?href="([^"]+)"', page.read_text(encoding="utf-8"))


def test_the_index_links_every_lesson_in_order_with_its_title(built):
    index = (built / "index.html").read_text(encoding="utf-8")
    assert links(built / "index.html") == [f"{nb.stem}.html" for nb in NOTEBOOKS]
    assert ">00 · Welcome to Serverless Workbook</a>" in index
    assert all((built / f"{nb.stem}.html").is_file() for nb in NOTEBOOKS)


def test_each_lesson_links_the_outline_and_its_neighbours(built):
    pages = [f"{nb.stem}.html" for nb in NOTEBOOKS]
    for position, page in enumerate(pages):
        nav = links(built / page)[:3]
        expected = ([pages[position - 1]] if position else []) + ["index.html"] + (
            [pages[position + 1]] if position + 1 < len(pages) else [])
        assert nav[:len(expected)] == expected, page


def test_rebuilding_keeps_one_navigation_bar(built):
    assert site.main([str(ROOT / "notebooks"), str(built)]) == 0
    assert (built / NOTEBOOKS[1].with_suffix(".html").name).read_text(encoding="utf-8").count(site.NAV_MARK) == 1


def test_a_missing_page_is_named(tmp_path, capsys):
    assert site.main([str(ROOT / "notebooks"), str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "lesson pages missing" in out and "00_welcome.html" in out
