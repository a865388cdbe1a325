"""Lesson 10's instruments that need no cloud: the duplicates run's rows and plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from lambdalab.course.lessons.event_driven import DuplicateRun, plot_duplicates  # noqa: E402


def test_duplicate_rows_and_plot_show_side_effects_per_delivery_count() -> None:
    naive = DuplicateRun("receipts-naive", {1: 1, 2: 2, 3: 3})
    idempotent = DuplicateRun("receipts-idempotent", {1: 1, 2: 1, 3: 1})
    assert naive.rows()[2] == {"consumer": "receipts-naive", "deliveries of the same event": 3, "receipts sent": 3}
    ax = plot_duplicates([naive, idempotent])
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines["receipts-naive"] == [1, 2, 3] and lines["receipts-idempotent"] == [1, 1, 1]
    assert "one side effect per delivery" in lines
