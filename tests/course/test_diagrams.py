"""Each lesson's architecture picture: every lesson has a spec, and each one draws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lambdalab.course import diagrams  # noqa: E402
from lambdalab.course.labs import find_root  # noqa: E402


def test_every_lesson_has_a_picture():
    lessons = sorted(p.name[:2] for p in (find_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert lessons and sorted(diagrams.LESSONS) == lessons


@pytest.mark.parametrize("lesson", sorted(diagrams.LESSONS))
def test_each_picture_draws_every_box_and_arrow(lesson):
    arch = diagrams.LESSONS[lesson]
    figure = diagrams.draw(arch)
    try:
        ax = figure.axes[0]
        labels = {t.get_text().replace("\n", " ") for t in ax.texts}
        assert {b.name for b in arch.boxes} <= labels
        assert len(ax.patches) == len(arch.boxes) + len(arch.arrows)
        figure.canvas.draw()  # renders: a bad patch or text fails here, not in the notebook
        # Every box inside the axes' limits, so none is cut off.
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        for x, y in diagrams.layout(arch).values():
            assert x0 < x - diagrams.BOX_W / 2 and x + diagrams.BOX_W / 2 < x1
            assert y0 < y - diagrams.BOX_H / 2 and y + diagrams.BOX_H / 2 < y1
    finally:
        plt.close(figure)


def test_the_layout_follows_the_arrows():
    """A trigger left of its function, the services it writes to on the right; an arrow back (a loop) moves nothing."""
    centres = diagrams.layout(diagrams.LESSONS["06"])
    assert centres["S3 bucket"][0] < centres["looping function"][0] < centres["loop detection"][0]
    four = diagrams.layout(diagrams.LESSONS["04"])
    assert four["uploader"][0] < four["S3 source bucket (uploads/)"][0] < four["thumbnails function"][0] \
        < four["S3 thumbnail bucket"][0] == four["SQS failure queue"][0]


def test_a_spec_naming_an_unknown_box_is_refused():
    with pytest.raises(ValueError, match="unknown boxes \\['nowhere'\\]"):
        diagrams.Architecture("bad", (diagrams.Box("a", "client"),), (diagrams.Arrow("a", "nowhere"),))
    with pytest.raises(ValueError, match="unknown box kinds \\['robot'\\]"):
        diagrams.Architecture("bad", (diagrams.Box("a", "robot"),), ())


def test_show_names_the_lessons_when_there_is_no_picture():
    with pytest.raises(KeyError, match="the lessons are 00, 01"):
        diagrams.show("42")


def test_show_accepts_a_lesson_number(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    diagrams.show("4")
    assert shown and shown[0].axes[0].get_title(loc="left") == diagrams.LESSONS["04"].title
    plt.close("all")
