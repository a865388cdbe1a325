"""Lesson 15's instruments: the package by top-level entry, saved runs and the side-by-side table
of REPORT fields (parsed by the course's one REPORT parser), and which run a lesson compares with.

AWS behaviour followed: a REPORT line carries Duration, Billed Duration, Memory Size, Max Memory
Used, and Init Duration only on a cold start
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html); Lambda's deployment package
limits are 50 MB zipped (direct upload) and 250 MB unzipped
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from lambdalab.course.lessons import deploying
from lambdalab.course.lessons.deploying import SavedRun
from lambdalab.runtime.records import Report

COLD = str(Report("r-1", 163.24, 2033, 256, 56, init_ms=1869.12))
WARM = [str(Report(f"r-{n}", d, b, 256, 60)) for n, d, b in ((2, 95.75, 96), (3, 94.25, 95))]


def run(kind: str = "local", label: str = "local", lines: tuple[str, ...] = (COLD, *WARM)) -> SavedRun:
    return SavedRun(label, kind, "2026-12-07T02:51:24+00:00", 3 * 2**20, lines)


def test_package_parts_sums_directories_and_ranks_them_by_unpacked_size() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", "x" * 1000)
        archive.writestr("PIL/Image.py", "y" * 50_000)
        archive.writestr("PIL/_imaging.so", bytes(range(256)) * 400)
        archive.writestr("pillow.libs/libjpeg.so", bytes(range(256)) * 100)
    table = deploying.package_parts(buffer.getvalue(), top=2)
    assert [r["entry"] for r in table.rows] == ["PIL", "pillow.libs", "1 more"]
    assert table.rows[0]["files"] == 2 and table.rows[0]["unpacked KiB"] == (50_000 + 102_400) / 1024
    assert table.rows[2]["files"] == 1 and table.rows[2]["unpacked KiB"] == 1000 / 1024
    assert "250 MiB unpacked" in table.title


def test_summary_reads_cold_and_warm_fields_from_the_report_lines() -> None:
    got = deploying.summary(run())
    assert got["invocations"] == 3 and got["cold starts"] == 1
    assert got["Init Duration ms (mean of cold)"] == 1869.12
    assert got["Duration ms, warm (mean)"] == (95.75 + 94.25) / 2
    assert got["Billed Duration ms (mean)"] == (2033 + 96 + 95) / 3
    assert got["Max Memory Used MB (max)"] == 60 and got["package MiB"] == 3.0


def test_side_by_side_has_one_column_per_run() -> None:
    table = deploying.side_by_side([run(), run("aws", "aws (us-east-1)", (WARM[0],))])
    assert table.columns == ["REPORT field", "local", "aws (us-east-1)"]
    row = next(r for r in table.rows if r["REPORT field"] == "cold starts")
    assert (row["local"], row["aws (us-east-1)"]) == (1, 0)


def test_a_saved_run_round_trips_and_the_learners_own_run_wins(tmp_path: Path) -> None:
    mine = run("aws", "aws (eu-west-1)")
    path = mine.save(tmp_path)
    assert SavedRun.load(path) == mine
    other, which = deploying.compare_with("local", tmp_path)
    assert other == mine and which.startswith("your own saved run on aws (eu-west-1)")


def test_without_a_saved_run_the_shipped_one_is_shown_and_named(tmp_path: Path) -> None:
    other, which = deploying.compare_with("local", tmp_path)
    assert other.kind == "aws" and which.startswith(f"the run shipped with the course, made on {other.label}")
    assert deploying.summary(other)["invocations"] >= 1  # it holds REPORT lines the parser reads
    local, _ = deploying.compare_with("aws", tmp_path)
    assert local.kind == "local"
