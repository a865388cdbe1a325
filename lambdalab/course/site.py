"""The published course (`make course`): an index page with the outline, and links between lessons.

nbconvert turns each executed lesson into `<stem>.html`; this module adds what a reader moving
through the course needs and what nbconvert does not make: `index.html` listing every lesson by
its title (the first `# ` heading of the notebook), and a bar on each lesson page linking the
index and the previous and next lessons. The output is plain static files an instructor can host
anywhere; nothing is downloaded to build it.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

NAV_MARK = "<!-- lambdalab course navigation -->"
_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Lesson:
    """One lesson of the course: its notebook's stem (also its page's name) and its title."""

    stem: str
    title: str

    @property
    def page(self) -> str:
        return f"{self.stem}.html"


def lesson_title(notebook: Path) -> str:
    """The notebook's first `# ` heading, else its file name."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def lessons(notebooks: Path) -> list[Lesson]:
    """Every lesson in `notebooks`, in the order of their numbered names."""
    return [Lesson(nb.stem, lesson_title(nb)) for nb in sorted(notebooks.glob("*.ipynb"))]


def index_html(course: list[Lesson]) -> str:
    items = "\n".join(f'<li><a href="{html.escape(lesson.page)}">{html.escape(lesson.title)}</a></li>'
                      for lesson in course)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Serverless Workbook</title></head>\n<body>\n<h1>Serverless Workbook</h1>\n"
            "<p>A hands-on course on AWS Lambda in Python. Each lesson below was executed to produce its outputs.</p>\n"
            f"<ol start=\"0\">\n{items}\n</ol>\n</body></html>\n")


def navigation(course: list[Lesson], position: int) -> str:
    """The bar at the top of lesson `position`'s page: previous, index, next."""
    links = []
    if position > 0:
        prev = course[position - 1]
        links.append(f'<a rel="prev" href="{prev.page}">← {html.escape(prev.title)}</a>')
    links.append('<a href="index.html">Course outline</a>')
    if position + 1 < len(course):
        nxt = course[position + 1]
        links.append(f'<a rel="next" href="{nxt.page}">{html.escape(nxt.title)} →</a>')
    return (f'{NAV_MARK}<nav style="display:flex;gap:2em;justify-content:center;padding:0.5em;'
            f'font-family:sans-serif">{"".join(links)}</nav>')


def add_navigation(page: Path, nav: str) -> None:
    """Put `nav` right after the page's <body> tag (replacing a bar added by an earlier build)."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(re.escape(NAV_MARK) + r"<nav .*?</nav>", "", text, flags=re.DOTALL)
    match = _BODY.search(text)
    if match is None:
        raise ValueError(f"{page} has no <body> tag: is it an nbconvert HTML page?")
    page.write_text(text[:match.end()] + nav + text[match.end():], encoding="utf-8")


def build(notebooks: Path, out: Path) -> list[Lesson]:
    """Write `out/index.html` and link the lesson pages in `out`; every lesson must have its page."""
    course = lessons(notebooks)
    if not course:
        raise ValueError(f"no notebooks in {notebooks}")
    missing = [lesson.page for lesson in course if not (out / lesson.page).is_file()]
    if missing:
        raise ValueError(f"lesson pages missing from {out}: {', '.join(missing)} (run nbconvert first)")
    for position, lesson in enumerate(course):
        add_navigation(out / lesson.page, navigation(course, position))
    (out / "index.html").write_text(index_html(course), encoding="utf-8")
    return course


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambdalab.course.site", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", type=Path, help="the lessons' folder (notebooks/)")
    parser.add_argument("out", type=Path, help="the folder holding nbconvert's pages (build/course/)")
    args = parser.parse_args(argv)
    try:
        course = build(args.notebooks, args.out)
    except ValueError as e:
        print(f"course site: {e}")
        return 2
    print(f"{args.out / 'index.html'}: {len(course)} lessons")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
