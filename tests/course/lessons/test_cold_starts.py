"""lambdalab.course.lessons.cold_starts measures real cold starts: fresh environments, REPORT fields, bursts, restores.

Also proves that the `coldstart` lab's check has teeth: it fails handlers that keep the slow
INIT, change an answer, or rebuild the table on every request.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from lambdalab.course.checks import check  # noqa: E402
from lambdalab.course.lessons import cold_starts as cs  # noqa: E402
from lambdalab.runtime.config import FunctionConfig  # noqa: E402
from lambdalab.runtime.records import Report  # noqa: E402
from lambdalab.runtime.service import LocalRuntime  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]

HANDLERS = {
    "quick.py": "def handler(event, context):\n    return {'ok': True}\n",
    "sleepy.py": '"""Sleeps at import: a known INIT cost."""\nimport time\n\ntime.sleep(0.5)\n\n\n'
                 "def handler(event, context):\n    return {'ok': True}\n",
    "broken.py": "def handler(event, context):\n    raise ValueError('no good')\n",
}


@pytest.fixture
def code(tmp_path: Path) -> Path:
    for name, text in HANDLERS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def rt():
    with LocalRuntime(cpu_limit=False, account_concurrency=6) as runtime:
        yield runtime


def deploy(rt: LocalRuntime, code: Path, name: str, module: str, **kw) -> None:
    rt.deploy(FunctionConfig(name=name, code_dir=code, handler=f"{module}.handler", **kw))


# -- measuring -------------------------------------------------------------------------------

def test_every_sample_is_a_cold_start_in_a_new_environment(rt, code):
    deploy(rt, code, "quick", "quick")
    samples = cs.fresh_cold_starts(rt, "quick", 5, parallel=2, progress=False)
    assert len(samples) == 5
    assert all(s.cold and s.ok and not s.provisioned for s in samples)
    assert len({s.environment_id for s in samples}) == 5
    assert sorted(s.parallel for s in samples) == [1, 2, 2, 2, 2]  # 2 + 2 + 1
    for s in samples:
        report = Report.parse(s.invocation.log_lines[-1])  # the numbers are the REPORT line's
        assert (report.init_ms, report.duration_ms) == (s.init_ms, s.duration_ms)
        assert s.restore_ms is None and s.start_ms == s.init_ms
        assert s.caller_ms >= s.init_ms  # the caller waited for INIT too


def test_handlers_compared_take_turns_round_by_round(rt, code):
    deploy(rt, code, "quick", "quick")
    deploy(rt, code, "other", "quick")
    samples = cs.fresh_cold_starts_many(rt, {"A": "quick", "B": "other"}, 4, parallel=2, progress=False)
    assert {label: len(got) for label, got in samples.items()} == {"A": 4, "B": 4}
    everything = sorted((s for got in samples.values() for s in got), key=lambda s: s.invocation.started_at)
    assert [s.label for s in everything] == ["A", "A", "B", "B", "A", "A", "B", "B"]
    assert all(s.function == {"A": "quick", "B": "other"}[s.label] for s in everything)


def test_init_duration_measures_module_level_work(rt, code):
    deploy(rt, code, "quick", "quick")
    deploy(rt, code, "sleepy", "sleepy")
    quick = cs.values(cs.fresh_cold_starts(rt, "quick", 2, progress=False), "init_ms")
    sleepy = cs.values(cs.fresh_cold_starts(rt, "sleepy", 2, progress=False), "init_ms")
    assert min(sleepy) >= 500  # the sleep is inside Init Duration...
    assert cs.median(sleepy) - cs.median(quick) >= 400  # ...and makes the difference


def test_warm_calls_reuse_one_environment(rt, code):
    deploy(rt, code, "quick", "quick")
    samples = cs.warm_calls(rt, "quick", 4)
    assert not any(s.cold for s in samples) and all(s.init_ms is None for s in samples)
    assert len({s.environment_id for s in samples}) == 1
    assert len(rt.records("quick")) == 5  # one call made the environment first


def test_failures_are_kept_with_their_error(rt, code):
    deploy(rt, code, "broken", "broken")
    samples = cs.fresh_cold_starts(rt, "broken", 2, progress=False)
    assert [s.ok for s in samples] == [False, False]
    assert all(s.error == "ValueError: no good" and s.init_ms is not None for s in samples)


def test_retiring_spares_provisioned_environments(rt, code):
    deploy(rt, code, "quick", "quick", provisioned_concurrency=2)
    provisioned = {e.id for e in rt.environments("quick")}
    first = cs.burst_after_idle(rt, "quick", 3, progress=False)
    on_demand = {s.environment_id for s in first if not s.provisioned}
    assert len(on_demand) == 1
    assert cs.retire_environments(rt, "quick") == 1
    assert {e.id for e in rt.environments("quick") if e.alive} == provisioned


def test_bursts_meet_only_the_provisioned_environments_warm(rt, code):
    deploy(rt, code, "quick", "quick", provisioned_concurrency=2)
    samples = cs.burst_after_idle(rt, "quick", 3, rounds=2, progress=False)
    assert len(samples) == 6
    for burst in (samples[:3], samples[3:]):  # every burst: 2 warm on provisioned, 1 cold spill-over
        assert sorted((s.provisioned, s.cold) for s in burst) == [(False, True), (True, False), (True, False)]
    assert all(s.parallel == 3 for s in samples)
    assert len({s.environment_id for s in samples if s.cold}) == 2  # a new one per burst


def test_snap_start_samples_are_restores_from_one_template(rt):
    rt.deploy(FunctionConfig(name="snap", code_dir=ROOT / "tests" / "handlers", handler="snap.handler",
                             snap_start=True))
    samples = cs.fresh_cold_starts(rt, "snap", 4, parallel=2, progress=False)
    template_ms = rt.template_init_ms("snap")
    more = cs.fresh_cold_starts(rt, "snap", 2, parallel=2, progress=False)
    assert rt.template_init_ms("snap") == template_ms  # retiring environments kept the template
    for s in samples + more:
        assert s.ok and s.cold and s.init_ms is None and s.restore_ms is not None and s.start_ms == s.restore_ms
    assert len({s.invocation.result["init_token"] for s in samples + more}) == 1
    assert len({s.environment_id for s in samples + more}) == 6


def test_bad_arguments_name_the_problem(rt, code):
    deploy(rt, code, "quick", "quick")
    with pytest.raises(ValueError, match="n must be >= 1"):
        cs.fresh_cold_starts(rt, "quick", 0)
    with pytest.raises(ValueError, match=r"parallel=7 is above the runtime's account concurrency \(6\)"):
        cs.fresh_cold_starts(rt, "quick", 7, parallel=7)
    with pytest.raises(ValueError, match=r"size=9 is above"):
        cs.burst_after_idle(rt, "quick", 9)
    with pytest.raises(ValueError, match="field 'init' is not one of"):
        cs.values([], "init")


def test_process_start_ms_times_real_processes():
    times = cs.process_start_ms([sys.executable, "-c", "import time; time.sleep(0.05)"], 2)
    assert len(times) == 2 and min(times) >= 50
    with pytest.raises(cs.ColdStartError, match="boom"):
        cs.process_start_ms([sys.executable, "-c", "raise SystemExit('boom')"], 1)


def test_module_level_code_lists_what_init_runs(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Doc."""\nimport os\n\nX = os.sep * 2\n\n\ndef handler(e, c):\n    return X\n\n\n'
                      "class K:\n    pass\n\nprint('hi')\n")
    assert cs.module_level_code(module) == ["import os", "X = os.sep * 2", "print('hi')"]


# -- statistics and plots --------------------------------------------------------------------

def test_package_size_counts_files_and_bytes(tmp_path):
    (tmp_path / "handler.py").write_bytes(b"x" * 100)
    (tmp_path / "lib" / "deep").mkdir(parents=True)
    (tmp_path / "lib" / "deep" / "data.bin").write_bytes(bytes(2_000_000))
    size = cs.package_size(tmp_path)
    assert (size.files, size.bytes) == (2, 2_000_100) and size.mb == pytest.approx(2.0001)
    with pytest.raises(ValueError, match="is not a directory"):
        cs.package_size(tmp_path / "handler.py")


def test_sandbox_unavailable_agrees_with_the_runtime(tmp_path):
    (tmp_path / "where.py").write_text("import os\n\ndef handler(event, context):\n"
                                       "    return os.environ['LAMBDA_TASK_ROOT']\n")
    with LocalRuntime(cpu_limit=False) as rt:
        rt.deploy(FunctionConfig(name="where", code_dir=tmp_path, handler="where.handler"))
        root = rt.invoke("where", {}).result
    assert (root == "/var/task") == (cs.sandbox_unavailable() is None)


def test_summary_rows():
    table = cs.summary({"a": [1.0, 2.0, 3.0], "b": [10.0]})
    assert [r[""] for r in table.rows] == ["a", "b"]
    assert table.rows[0]["median ms"] == 2.0 and table.rows[0]["max ms"] == 3.0 and table.rows[1]["n"] == 1
    with pytest.raises(ValueError, match="group 'c' has no values"):
        cs.summary({"c": []})


def test_distribution_plot_marks_each_median():
    import matplotlib.pyplot as plt

    ax = cs.distribution_plot({"fast": [40.0, 50.0, 60.0], "slow": [400.0, 500.0, 900.0]}, title="t")
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["median 50 ms", "median 500 ms"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fast\n(n=3)", "slow\n(n=3)"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="'empty' have no values"):
        cs.distribution_plot({"empty": []})


def test_cdf_plot_legend_gives_p50_and_p99():
    import matplotlib.pyplot as plt

    values = [float(v) for v in range(1, 101)]
    ax = cs.cdf_plot({"burst": values})
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"burst: p50 {cs.percentile(values, 50):,.0f} ms, p99 {cs.percentile(values, 99):,.0f} ms"]
    plt.close(ax.figure)


def test_cold_warm_plot_needs_matching_handlers():
    import matplotlib.pyplot as plt

    ax = cs.cold_warm_plot({"a": [100.0, 120.0]}, {"a": [1.0, 2.0]})
    assert [t.get_text() for t in ax.texts] == ["110.0 ms", "1.5 ms"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match=r"unmatched: \['b'\]"):
        cs.cold_warm_plot({"a": [1.0]}, {"a": [1.0], "b": [2.0]})


# -- the lab's check has teeth ---------------------------------------------------------------

SOLUTION = (ROOT / "solutions" / "coldstart" / "handler.py").read_text()
LOOKUP = '''    if len(postcode) == 5 and postcode.isascii() and postcode.isdigit():
        return _zone_and_depot(postcode)
    return None'''
TABLE = 'ZONES = {f"{n:05d}": _zone_and_depot(f"{n:05d}") for n in range(100_000)}'
BROKEN = {
    # Lazy imports alone: the table still costs INIT.
    "keeps the table at init": (SOLUTION.replace(LOOKUP, "    return ZONES.get(postcode)") + "\n" + TABLE + "\n",
                                "test_init_is_at_least_twice_as_fast"),
    # Accepts fullwidth digits, which the original's table does not hold.
    "changes an answer": (SOLUTION.replace("postcode.isascii() and ", ""), "test_responses_match_the_original"),
    # Fast INIT, but the table is rebuilt on every request.
    "rebuilds the table per request": (SOLUTION.replace(LOOKUP, "    " + TABLE.replace("ZONES = ", "return ")
                                                        + ".get(postcode)"), "test_warm_quotes_stay_fast"),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(BROKEN))
def test_the_lab_check_fails_a_handler_that(variant, tmp_path):
    text, failing = BROKEN[variant]
    assert text != SOLUTION
    for rel in ("solutions/lesson08/slow_init.py", "solutions/lesson08/requirements.txt",
                "solutions/coldstart/handler.py", "tests/labs/conftest.py", "tests/labs/test_coldstart.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "labs/coldstart").mkdir(parents=True)
    (tmp_path / "labs/coldstart/handler.py").write_text(text)
    shutil.copy(ROOT / "solutions/coldstart/requirements.txt", tmp_path / "labs/coldstart/requirements.txt")
    report = check("coldstart", track="labs", root=tmp_path)
    outcome = {r.name: r.passed for r in report.results}
    assert outcome == {name: name != failing for name in outcome} and len(outcome) == 3, report
