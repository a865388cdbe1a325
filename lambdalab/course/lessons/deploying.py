"""Lesson 15's instruments (deploying to your sandbox account): what is in the package, uploads
through the deployed app, and the REPORT fields of two runs side by side.

- `package_parts(zip_bytes)`: the deployment package by top-level entry (Pillow and its bundled
  libraries against the handler), compressed and unpacked, for "package size vs Init Duration".
- `use(target, app, photos)`: upload photos under the trigger's prefix, wait for the REPORT lines
  (`CloudTarget.settle`), and return the thumbnails that appeared.
- `SavedRun`: a run's raw REPORT lines with where and when they were logged. A run saves itself
  (`save`) under build/course-runs/; `compare_with(kind)` picks the other target's run to show
  beside this one: the learner's own saved run if there is one, else the run shipped with the
  course (`runs/`, made on the target its label names). `side_by_side` builds one table from both,
  every number parsed from the REPORT lines by the one parser (`course.target.reports`).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

from lambdalab.course.deploy import UPLOAD_PREFIX, Deployment
from lambdalab.course.display import Table
from lambdalab.course.labs import find_root
from lambdalab.course.target import reports
from lambdalab.course.target.base import CloudTarget
from lambdalab.runtime.records import Report

SHIPPED_RUNS = Path(__file__).resolve().parent / "runs"
LESSON = "15_deploy"
STAND_IN = "aws (stand-in: lambdalab cloud --iam)"


def run_label(target: CloudTarget) -> str:
    """What the target is, in a table's column head: local, AWS itself, or the stand-in for it."""
    if target.kind != "aws":
        return target.kind
    return STAND_IN if os.environ.get("AWS_ENDPOINT_URL") else f"aws ({target.region})"


def budget_line(target: CloudTarget) -> str:
    """The account's course budget on aws (created when the target opened); on local, that there is no bill."""
    budget = getattr(target, "budget", None)
    if budget is None:
        return "local cloud: no bill, no budget (on aws the course creates a monthly budget with alerts first)"
    limit = budget["BudgetLimit"]
    spent = budget.get("CalculatedSpend", {}).get("ActualSpend", {})
    so_far = f", spent this month so far: {spent['Amount']} {spent['Unit']}" if spent else ""
    return f"monthly budget {budget['BudgetName']}: {limit['Amount']} {limit['Unit']}{so_far} (it stays after teardown)"


def package_parts(zip_bytes: bytes, top: int = 5) -> Table:
    """The package's biggest top-level entries (directories summed), compressed and unpacked."""
    sizes: dict[str, list[int]] = {}
    with zipfile.ZipFile(BytesIO(zip_bytes)) as archive:
        for info in archive.infolist():
            part = info.filename.split("/", 1)[0]
            entry = sizes.setdefault(part, [0, 0, 0])
            entry[0] += info.compress_size
            entry[1] += info.file_size
            entry[2] += 0 if info.is_dir() else 1
    ranked = sorted(sizes.items(), key=lambda item: -item[1][1])
    rest = ranked[top:]
    rows = [{"entry": name, "files": n, "zipped KiB": zipped / 1024, "unpacked KiB": unpacked / 1024}
            for name, (zipped, unpacked, n) in ranked[:top]]
    if rest:
        rows.append({"entry": f"{len(rest)} more", "files": sum(v[2] for _, v in rest),
                     "zipped KiB": sum(v[0] for _, v in rest) / 1024,
                     "unpacked KiB": sum(v[1] for _, v in rest) / 1024})
    unpacked = sum(v[1] for v in sizes.values()) / 2**20
    return Table(rows, title=f"package: {len(zip_bytes) / 2**20:.1f} MiB zipped, {unpacked:.1f} MiB unpacked "
                             "(Lambda's limits: 50 MiB zipped for a direct upload, 250 MiB unpacked)")


@dataclass(frozen=True)
class Used:
    """What a batch of uploads produced: the thumbnails' keys and every REPORT line so far."""

    uploaded: tuple[str, ...]
    thumbnails: tuple[str, ...]
    records: tuple[reports.LoggedReport, ...]


def use(target: CloudTarget, app: Deployment, photos: Sequence[bytes], *, timeout: float = 60.0) -> Used:
    """Upload `photos` one after another under the trigger's prefix and wait until the function's
    logs show as many invocations more; returns the thumbnails in the thumbnails bucket."""
    s3 = target.client("s3")
    base = app.function[len(target.run.prefix):]
    before = len(target.records(base))
    keys = []
    for n, photo in enumerate(photos, 1):
        key = f"{UPLOAD_PREFIX}photo-{before + n:03d}.jpg"
        s3.put_object(Bucket=app.uploads_bucket, Key=key, Body=photo, ContentType="image/jpeg")
        keys.append(key)
    records = target.settle(base, before + len(photos), timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:  # the REPORT line is written after the handler's PutObject returned, so this is quick
        listed = s3.list_objects_v2(Bucket=app.thumbnails_bucket).get("Contents", [])
        if len(listed) >= before + len(photos) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return Used(tuple(keys), tuple(sorted(o["Key"] for o in listed)), tuple(records))


# --- saved runs and the side-by-side table ------------------------------------------------------


@dataclass(frozen=True)
class SavedRun:
    """A run's REPORT lines as logged, with the target they came from and when."""

    label: str  # e.g. "local", "aws (stand-in: lambdalab cloud --iam)", "aws"
    kind: str  # the target kind: local or aws
    saved_at: str  # ISO 8601, UTC
    package_bytes: int
    lines: tuple[str, ...]

    @classmethod
    def of(cls, label: str, kind: str, package_bytes: int, records: Iterable[reports.LoggedReport]) -> "SavedRun":
        return cls(label, kind, datetime.now(timezone.utc).isoformat(timespec="seconds"), package_bytes,
                   tuple(str(r.report) for r in records))

    def reports(self) -> list[Report]:
        parsed = [reports.parse_report_line(line) for line in self.lines]
        return [r for r in parsed if r is not None]

    def save(self, folder: Path | None = None) -> Path:
        folder = folder or find_root() / "build" / "course-runs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{LESSON}-{self.kind}.json"
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> "SavedRun":
        data = json.loads(path.read_text())
        return cls(**{**data, "lines": tuple(data["lines"])})


def compare_with(kind: str, folder: Path | None = None) -> tuple[SavedRun, str]:
    """The run to show beside a run on target `kind`, and a sentence saying which run it is."""
    other = "aws" if kind == "local" else "local"
    own = (folder or find_root() / "build" / "course-runs") / f"{LESSON}-{other}.json"
    if own.is_file():
        run = SavedRun.load(own)
        return run, f"your own saved run on {run.label}, {run.saved_at} ({own})"
    run = SavedRun.load(SHIPPED_RUNS / f"{LESSON}-{other}.json")
    return run, f"the run shipped with the course, made on {run.label}, {run.saved_at}"


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summary(run: SavedRun) -> dict[str, Any]:
    """The REPORT fields of one run, as one column of the side-by-side table."""
    parsed = run.reports()
    cold = [r for r in parsed if r.init_ms is not None]
    warm = [r for r in parsed if r.init_ms is None]
    return {
        "invocations": len(parsed),
        "cold starts": len(cold),
        "package MiB": round(run.package_bytes / 2**20, 1),
        "Memory Size MB": parsed[0].memory_mb if parsed else None,
        "Init Duration ms (mean of cold)": _mean([r.init_ms for r in cold if r.init_ms is not None]),
        "Duration ms, cold (mean)": _mean([r.duration_ms for r in cold]),
        "Duration ms, warm (mean)": _mean([r.duration_ms for r in warm]),
        "Billed Duration ms (mean)": _mean([float(r.billed_ms) for r in parsed]),
        "Max Memory Used MB (max)": max((r.max_memory_used_mb for r in parsed), default=None),
    }


def side_by_side(runs: Sequence[SavedRun],
                 title: str = "the same uploads, two targets, one parser (course.target.reports)") -> Table:
    """One row per REPORT field, one column per run."""
    columns = [(run.label, summary(run)) for run in runs]
    fields = list(columns[0][1]) if columns else []
    return Table([{"REPORT field": f, **{label: values[f] for label, values in columns}} for f in fields], title)
