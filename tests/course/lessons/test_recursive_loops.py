"""Lesson 06's instruments: the budget guard around a real S3 loop, the rate and cost geometry,
and the S3 notification-configuration rules the `loopfix` check relies on."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib
import pytest

from lambdalab.cloud.loops import MAX_HOPS, TraceHeader, function_hash
from lambdalab.course.lessons.recursive_loops import (
    HORIZONS,
    RAN_OUT,
    STOPPED_BY_DETECTION,
    STOPPED_BY_INVOCATIONS,
    STOPPED_BY_TIME,
    Budget,
    LoopRun,
    chains,
    handler_said,
    hop,
    invocation_curve,
    load_trigger,
    notification_problems,
    plot_loop_runs,
    project,
    rate_bins,
    s3_brake,
    trigger_on_new_objects,
    watch_loop,
)
from lambdalab.course.paths import package
from lambdalab.course.target.local import LocalTarget
from lambdalab.runtime import metering
from lambdalab.runtime.records import Invocation

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[3]
LESSON = package(ROOT / "solutions" / "lesson06")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:thumbs"


def inv(start: float, end: float, *, billed: int = 10, memory: int = 1024, trace: str | None = None,
        arch: str = "x86_64") -> Invocation:
    return Invocation(request_id=f"r{start}", function_name="thumbs", event={}, invocation_type="Event",
                      memory_mb=memory, environment_id="e", cold=False, started_at=start, ended_at=end,
                      billed_ms=billed, architecture=arch, trace_id=trace)


def run_of(invocations: list[Invocation], **kw) -> LoopRun:
    return LoopRun(label="run", function="thumbs", budget=Budget(100, 10.0), started_at=100.0, ended_at=110.0,
                   invocations=invocations, dropped=0, stopped_by=RAN_OUT, **kw)


# --- budget, curves, projections -------------------------------------------------------------


@pytest.mark.parametrize("args, message", [((0, 1.0), "max_invocations"), ((1.5, 1.0), "max_invocations"),
                                           ((10, 0), "max_seconds"), ((10, -1.0), "max_seconds")])
def test_budget_rejects_nonsense(args, message):
    with pytest.raises(ValueError, match=message):
        Budget(*args)


def test_invocation_curve_counts_starts_from_the_origin():
    runs = [inv(100.5, 100.6), inv(100.2, 100.3), inv(101.0, 101.1)]
    assert invocation_curve(runs, 100.0) == [(0.0, 0), (pytest.approx(0.2), 1), (pytest.approx(0.5), 2),
                                             (pytest.approx(1.0), 3)]


def test_rate_bins_are_invocations_per_second():
    runs = [inv(100.0 + t, 100.0 + t + 0.01) for t in (0.05, 0.1, 0.3, 0.6, 0.65, 0.7, 0.9)]
    bins = rate_bins(runs, 100.0, 0.5, until_s=1.5)
    assert bins == [(0.0, 6.0), (0.5, 8.0), (1.0, 0.0)]
    with pytest.raises(ValueError, match="width_s"):
        rate_bins(runs, 100.0, 0)


def test_run_rate_cost_and_projection_use_the_meter_prices():
    runs = [inv(100.0 + i * 0.1, 100.0 + i * 0.1 + 0.05, billed=12) for i in range(10)]  # 10 in 0.95 s
    run = run_of(runs)
    assert run.rate == pytest.approx(10 / 0.95)
    assert run.mean_billed_ms == 12
    assert run.cost == pytest.approx(sum(metering.price(i) for i in runs))
    projection = project(run, scale=100 / 3, label="100 uploads")
    expected = {h: metering.projected_cost(10 / 0.95 * 100 / 3, 12, 1024, "x86_64", s) for h, s in HORIZONS.items()}
    assert projection.costs == pytest.approx(expected)
    assert projection.costs["a day"] == pytest.approx(24 * projection.costs["an hour"])
    assert projection.row()["loop"] == "100 uploads"


def test_projection_refuses_what_it_cannot_price():
    with pytest.raises(ValueError, match="no invocations"):
        project(run_of([]))
    with pytest.raises(ValueError, match="mixes memory sizes"):
        project(run_of([inv(100.0, 100.1), inv(100.2, 100.3, memory=512)]))
    with pytest.raises(ValueError, match="scale"):
        project(run_of([inv(100.0, 100.1)]), scale=0)


def test_hop_and_chains_read_the_lineage():
    root_a, root_b = TraceHeader.new(), TraceHeader.new()
    mine = function_hash(ARN)
    a1, a2 = root_a.hop(mine), root_a.hop(mine).hop(mine)
    b1 = root_b.hop(mine)
    runs = [inv(100.3, 100.4, trace=str(a2)), inv(100.1, 100.2, trace=str(a1)), inv(100.2, 100.3, trace=str(b1))]
    assert [hop(i, ARN) for i in runs] == [2, 1, 1]
    assert hop(inv(1, 2), ARN) == 0
    grouped = chains(runs)
    assert {root: [hop(i, ARN) for i in group] for root, group in grouped.items()} == {root_a.root: [1, 2],
                                                                                      root_b.root: [1]}


def test_plot_draws_both_panels_with_the_brake():
    run = run_of([inv(100.0 + i * 0.1, 100.05 + i * 0.1) for i in range(20)], braked_at=1.5)
    total, rate = plot_loop_runs([run])
    assert total.lines[0].get_ydata()[-1] == 20
    assert any(list(line.get_xdata()) == [1.5, 1.5] for line in total.lines)
    assert 8 <= max(rate.lines[0].get_ydata()) <= 12  # one start every 0.1 s
    with pytest.raises(ValueError, match="no runs"):
        plot_loop_runs([])


# --- S3 notification configurations ------------------------------------------------------------


def config(*entries: dict) -> dict:
    return {"LambdaFunctionConfigurations": list(entries)}


def entry(prefix: str | None = None, suffix: str | None = None, id_: str | None = None,
          events: list[str] | None = None, arn: str = ARN) -> dict:
    rules = ([{"Name": "prefix", "Value": prefix}] if prefix is not None else []) + \
            ([{"Name": "suffix", "Value": suffix}] if suffix is not None else [])
    out = {"LambdaFunctionArn": arn, "Events": events or ["s3:ObjectCreated:*"]}
    if rules:
        out["Filter"] = {"Key": {"FilterRules": rules}}
    if id_:
        out["Id"] = id_
    return out


def test_a_filtered_configuration_per_suffix_is_accepted():
    ok = config(*(entry("uploads/", s, f"t{s}") for s in (".jpg", ".jpeg", ".png")))
    assert notification_problems(ok, ARN) == []
    assert notification_problems(config(entry()), ARN) == []  # loops, but S3 accepts it


@pytest.mark.parametrize("bad, message", [
    ([], "must be a dict"),
    ({}, "non-empty list"),
    (config("not a dict"), "configuration 1 must be a dict"),
    ({"LambdaFunctionConfigurations": [entry()], "Lambdas": []}, "unknown key 'Lambdas'"),
    (config(entry(arn="arn:aws:lambda:us-east-1:123456789012:function:other")), "not the function"),
    (config({"Events": ["s3:ObjectCreated:*"]}), "no LambdaFunctionArn"),
    (config(entry(events=["ObjectCreated"])), "Events must be"),
    (config({**entry(), "Filter": {"FilterRules": []}}), "Filter must look like"),
    (config({**entry(), "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "u/"}]}}}), "'Prefix'"),
    (config({**entry(), "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"},
                                                           {"Name": "suffix", "Value": ".png"}]}}}),
     "two suffix rules"),
    (config(entry("uploads/", ".jpg", "a"), entry("uploads/", ".png", "a")), "Id 'a' is used"),
    (config(entry("uploads/"), entry("uploads/", ".png")), "overlap"),
    (config(entry("uploads/", ".jpg"), entry("uploads/2024/", "photo.jpg")), "overlap"),
    (config(entry(), entry("x/", events=["s3:ObjectCreated:Put"])), "overlap"),
])
def test_what_s3_rejects_is_named(bad, message):
    problems = notification_problems(bad, ARN)
    assert any(message in p for p in problems), problems


def test_disjoint_filters_or_events_do_not_overlap():
    assert notification_problems(config(entry("uploads/", ".jpg"), entry("uploads/", ".jpeg")), ARN) == []
    assert notification_problems(config(entry("a/"), entry("b/")), ARN) == []
    assert notification_problems(config(entry(events=["s3:ObjectCreated:*"]),
                                        entry(events=["s3:ObjectRemoved:*"])), ARN) == []
    assert notification_problems(config(entry(events=["s3:ObjectCreated:Put"]),
                                        entry(events=["s3:ObjectCreated:Post"])), ARN) == []


# --- the budget guard around real loops in the local cloud -------------------------------------


@pytest.fixture(scope="module")
def target():
    with LocalTarget(cpu_limit=False) as t:
        yield t


@pytest.fixture
def looping(target):
    """A fresh cloud with lesson 06's naive thumbnailer triggered by every object of its own bucket."""
    target.cloud.reset()
    target.client("s3").create_bucket(Bucket=target.name("photos"))
    role = target.create_role("thumbs", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                                         target.logging_statement(target.name("thumbs"))])
    fn = target.create_function("thumbs", LESSON, "thumbnail_naive.lambda_handler", role=role, memory=1024,
                                timeout=10)
    trigger_on_new_objects(target, target.name("photos"), fn["FunctionArn"])
    return target


def _photo() -> bytes:
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def _upload(target: LocalTarget, key: str = "uploads/a.jpg"):
    return lambda: target.client("s3").put_object(Bucket=target.name("photos"), Key=key, Body=_photo())


def test_trigger_on_new_objects_replaces_the_buckets_trigger(looping):
    s3 = looping.client("s3")
    arn = looping.client("lambda").get_function(FunctionName=looping.name("thumbs"))["Configuration"]["FunctionArn"]
    config = trigger_on_new_objects(looping, looping.name("photos"), arn, prefix="uploads/", suffix=".jpg")
    assert notification_problems(config, arn) == []
    [rule] = s3.get_bucket_notification_configuration(Bucket=looping.name("photos"))["LambdaFunctionConfigurations"]
    assert rule["LambdaFunctionArn"] == arn and rule["Events"] == ["s3:ObjectCreated:*"]
    assert {r["Name"].lower(): r["Value"] for r in rule["Filter"]["Key"]["FilterRules"]} == {
        "prefix": "uploads/", "suffix": ".jpg"}


def test_load_trigger_reads_the_latest_edit(tmp_path):
    (tmp_path / "trigger.py").write_text("def notification_config(bucket, arn):\n    return 1\n")
    assert load_trigger(tmp_path).notification_config("b", "arn") == 1
    (tmp_path / "trigger.py").write_text("def notification_config(bucket, arn):\n    return 2\n")
    assert load_trigger(tmp_path).notification_config("b", "arn") == 2
    with pytest.raises(FileNotFoundError, match="trigger.py does not exist"):
        load_trigger(tmp_path / "nowhere")


def test_terminate_stops_the_loop_before_the_budget(looping):
    run = watch_loop(looping, "thumbs", _upload(looping), s3_brake(looping, looping.name("photos")), Budget(1000, 30.0))
    assert run.stopped_by == STOPPED_BY_DETECTION and run.recursive_loop == "Terminate"
    assert run.count == MAX_HOPS and run.dropped == 1 and run.braked_at is None
    assert all(i.ok for i in run.invocations)
    arn = looping.client("lambda").get_function(FunctionName=looping.name("thumbs"))["Configuration"]["FunctionArn"]
    assert [hop(i, arn) for i in run.invocations] == list(range(1, MAX_HOPS + 1))
    assert len(chains(run.invocations)) == 1
    # the handler prints what it handled and its trace header: on AWS the logs are where they are read
    assert [handler_said(i)["trace"] for i in run.invocations] == [i.trace_id for i in run.invocations]
    assert {handler_said(i)["object"] for i in run.invocations} == {"uploads/a.jpg", "thumbnails/a.jpg"}


def test_allow_runs_until_the_invocation_budget_and_the_brake_ends_it(looping):
    looping.cloud.set_recursive_loop(looping.name("thumbs"), "Allow")
    run = watch_loop(looping, "thumbs", _upload(looping), s3_brake(looping, looping.name("photos")), Budget(40, 30.0))
    assert run.stopped_by == STOPPED_BY_INVOCATIONS and run.dropped == 0 and run.recursive_loop == "Allow"
    assert run.count >= 40 > MAX_HOPS  # detection off: past 16 hops
    assert run.count <= 43  # the brake leaves at most what was running or queued
    assert looping.client("s3").get_bucket_notification_configuration(Bucket=looping.name("photos")).get(
        "LambdaFunctionConfigurations") is None
    time.sleep(0.3)
    assert len(looping.invocations("thumbs")) == run.count  # nothing ran after the run ended


def test_allow_runs_until_the_time_budget(looping):
    looping.cloud.set_recursive_loop(looping.name("thumbs"), "Allow")
    # 3 s: a cold start of the Pillow function alone can take over a second on a loaded machine.
    run = watch_loop(looping, "thumbs", _upload(looping), s3_brake(looping, looping.name("photos")),
                     Budget(100_000, 3.0))
    assert run.stopped_by == STOPPED_BY_TIME
    assert 3.0 <= run.braked_at < 3.5
    assert run.count > 1 and run.rate > 0  # how far it got depends on the machine
    time.sleep(0.3)
    assert len(looping.invocations("thumbs")) == run.count


def test_a_run_without_a_loop_ends_by_itself(looping):
    s3 = looping.client("s3")
    s3.put_bucket_notification_configuration(Bucket=looping.name("photos"), NotificationConfiguration={})
    run = watch_loop(looping, "thumbs", _upload(looping), s3_brake(looping, looping.name("photos")), Budget(10, 5.0))
    assert run.stopped_by == RAN_OUT and run.count == 0 and run.braked_at is None


def test_watch_loop_wants_callables(looping):
    with pytest.raises(TypeError, match="callables"):
        watch_loop(looping, "thumbs", None, s3_brake(looping, looping.name("photos")), Budget(10, 1.0))
