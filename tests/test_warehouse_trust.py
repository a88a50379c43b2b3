"""Issue 9 "Trust", warehouse part: a duplicated plan code is quarantined, not fatal; a
registration code two units list in one year counts once (and warns); the data test words
are the same in the console, the run report and the Prefect artifacts; the console shows
the latest complete year and the backlog window of the setting; `coop status` says MISSING
for a unit whose files were all removed.

The small province is tests/pipeline_fixture.py's (read by the real reader):

    2020/148/htx.csv: 0101 active 10 members 8 workers (est. 2020-03-01, high tech),
                      0102 active 20 members, workers blank (est. 2019), 0103 quarantined (members -5)
    2020/157/htx.csv: 0201 active 7 members 7 workers (est. 2018), 0202 dissolved 3 members (est. 2020)
    notes.txt (misplaced)

plus, per test, the rows written below. 148 is Thành phố Hòa Bình, 157 Lạc Sơn (former Hòa
Bình, 17); 32 districts of today's Phú Thọ are expected in 2020. Expected figures are worked
out by hand next to each assertion.
"""

from __future__ import annotations

import io
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

import pipeline_fixture as F
import warehouse_fixture as fx
from coop.outputs.run_report import RunSummary, data_tests_phrase, render_run_report
from coop.warehouse import load
from coop.warehouse.datatests import blocking_failures, run_data_tests
from coop.warehouse.models import SQL_DIR, run_models

N_TESTS = len(list((SQL_DIR / "tests").glob("*.sql")))  # every data test runs on every build

PLAN = ("Mã chỉ tiêu,Chỉ tiêu,Kế hoạch\n"
        "new_htx,Số HTX thành lập mới,2\n"          # row 2: new_htx ...
        "training_turns,Lượt người được đào tạo,10\n"  # row 3
        "new_htx,Số HTX thành lập mới,3\n"          # row 4: ... and new_htx again: which target holds?
        "high_tech_htx,HTX ứng dụng công nghệ cao,1\n")  # row 5
# 0201 (Lạc Sơn's) listed by Thành phố Hòa Bình too, with 9 members instead of 7
COPY_0201 = "0201,HTX Bốn,htx,2018-01-10,agriculture,active,9,7,200,20,2.0,false"
PHRASE = re.compile(r"(\d+) data tests: (\d+) passed, (\d+) warned, (\d+) failed")


@pytest.fixture(autouse=True)
def _province(monkeypatch):
    monkeypatch.setenv("COOP_PROVINCE", "25")
    monkeypatch.delenv("COOP_BACKLOG_WINDOW_YEARS", raising=False)


def _raw(tmp_path: Path, plan: bool = False, copy_0201: bool = False) -> Path:
    raw = F.write_raw(tmp_path / "raw")
    if plan:
        (raw / "2020" / "province").mkdir(parents=True)
        (raw / "2020" / "province" / "ke-hoach.csv").write_text(PLAN, encoding="utf-8")
    if copy_0201:
        f = raw / "2020" / "148" / "htx.csv"
        f.write_text(f.read_text(encoding="utf-8") + F.htx_csv([COPY_0201]).split("\n", 1)[1], encoding="utf-8")
    return raw


def _build(raw: Path, tests_dir: Path | None = None):
    """The real reader and loader into an in-memory build: discover, read every file,
    select submissions, load, models, data tests (what a run does before publishing)."""
    from coop.ingest.discover import discover
    from coop.ingest.normalize import ingest_file, select_submissions

    reference = F.load_reference()
    raw_files, issues = discover(raw, reference)
    selected = select_submissions([ingest_file(r, reference) for r in raw_files])
    con = duckdb.connect()
    load.create_tables(con, reference)
    load.load_results(con, selected, "run-t", issues)
    run_models(con)
    return con, run_data_tests(con, tests_dir or SQL_DIR / "tests")


def _q(con, sql):
    return con.execute(sql).fetchall()


def _by_name(results):
    return {r.name: r for r in results}


# --------------------------------------------------------------------------- 1. duplicated plan code
def test_a_duplicated_plan_code_is_quarantined_by_the_reader(tmp_path):
    from coop.ingest.normalize import ingest_path

    raw = _raw(tmp_path, plan=True)
    r = ingest_path(raw / "2020/province/ke-hoach.csv", year=2020, district=None,
                    source_file="2020/province/ke-hoach.csv", reference=F.load_reference())
    assert sorted(r.forms["CHI_TIEU"]["code"].to_list()) == ["high_tech_htx", "training_turns"]  # rows 3, 5
    rej = r.rejected_rows.to_dicts()
    assert [(x["row_number"], x["column_name"], x["raw_value"], x["reason_code"]) for x in rej] == [
        (2, "code", "new_htx", "duplicate_plan_code"), (4, "code", "new_htx", "duplicate_plan_code")]
    reason = rej[0]["reason"]
    assert reason.startswith("Chỉ tiêu 'new_htx' được ghi ở 2 dòng (2, 4)")  # Vietnamese first, both rows named
    assert "plan code 'new_htx' on 2 rows" in reason and reason.endswith("[duplicate_plan_code]")
    assert [(s.rows_accepted, s.rows_rejected) for s in r.sheets] == [(2, 2)]
    assert not r.file_issues  # the file itself is fine


def test_a_duplicated_plan_code_does_not_block_the_province(tmp_path):
    con, results = _build(_raw(tmp_path, plan=True))
    assert blocking_failures(results) == []  # unique_plan_vs_actual and every other error test pass
    assert _by_name(results)["unique_plan_vs_actual"].passed
    # the rest of the plan loads, and every district file
    assert _q(con, "SELECT code FROM raw.chi_tieu ORDER BY code") == [("high_tech_htx",), ("training_turns",)]
    assert _q(con, "SELECT unit_code, count(*) FROM raw.htx GROUP BY ALL ORDER BY ALL") == [("148", 2), ("157", 2)]
    assert _q(con, "SELECT source_file, row_number, reason_code FROM audit.rejected_rows "
                   "WHERE source_file LIKE '%province%' ORDER BY row_number") == [
        ("2020/province/ke-hoach.csv", 2, "duplicate_plan_code"), ("2020/province/ke-hoach.csv", 4, "duplicate_plan_code")]
    # plan vs actual of the former Hòa Bình (17) in 2020: high tech = active HTX applying it = 0101
    # only -> 1 >= 1 met; no training support at all -> no_data; new_htx has no line (neither target holds)
    assert _q(con, "SELECT indicator_code, actual, status FROM marts.plan_vs_actual WHERE year = 2020 "
                   "ORDER BY indicator_code") == [("high_tech_htx", 1.0, "met"), ("training_turns", None, "no_data")]


# --------------------------------------------------------------------------- 2. one HTX, two units
def test_a_reg_code_two_units_list_counts_once_and_warns(tmp_path):
    con, results = _build(_raw(tmp_path, copy_0201=True))
    tests = _by_name(results)
    assert blocking_failures(results) == []  # a warning, not a failure: the run publishes
    assert tests["reg_code_once_per_unit_and_year"].passed  # once per unit: the invariant still holds
    w = tests["reg_code_in_several_districts"]
    assert (w.severity, w.failing_rows) == ("warn", 1)
    s = w.sample[0]
    assert (s["year"], s["reg_code"], s["n_units"]) == (2020, "0201", 2)
    assert s["units"] == "148 Thành phố Hòa Bình; 157 Lạc Sơn"
    assert s["counted_in"] == "148 Thành phố Hòa Bình"  # the lowest unit code keeps it
    assert "148: 2020/148/htx.csv sheet htx row 5" in s["rows"] and "157: 2020/157/htx.csv sheet htx row 2" in s["rows"]
    msg = w.message()
    assert msg.startswith("[warn] reg_code_in_several_districts: 1 offending row(s)") and "reg_code=0201" in msg

    # province 2020 HTX: active 0101 (10 members, 8 workers), 0102 (20, -), 0201 as 148 lists it
    # (9, 7) -> 3 active, 39 members, 15 workers; new: 0101 and 0202 (dissolved, 157) -> 2.
    # Counted twice it would be 4 active, 46 members.
    assert _q(con, "SELECT new_formed, active_count, members, workers FROM marts.province_indicators "
                   "WHERE year = 2020 AND entity_type = 'HTX'") == [(2, 3, 39, 15)]
    # 148: 0101, 0102, 0201 -> 3 active, 39 members, 1 new; 157: only 0202 counts (dissolved,
    # new in 2020) -> its line has 0 active, no members, 1 new. The districts add up to the province.
    assert _q(con, "SELECT district_code, new_formed, active_count, members FROM marts.district_indicators "
                   "WHERE year = 2020 AND entity_type = 'HTX' ORDER BY 1") == [("148", 1, 3, 39), ("157", 1, 0, None)]
    assert tests["district_totals_match_province"].passed
    # backlog 2020 (window 3: established 2018-2020, active, no establishment support): 0101, 0102
    # and 0201 — once, under 148
    assert _q(con, "SELECT unit_code, reg_code FROM marts.funding_backlog WHERE year = 2020 ORDER BY 2") == [
        ("148", "0101"), ("148", "0102"), ("148", "0201")]
    # both listings stay in the warehouse, with the flag
    assert _q(con, "SELECT unit_code, members, is_counted FROM core.fct_register WHERE reg_code = '0201' "
                   "ORDER BY 1") == [("148", 9, True), ("157", 7, False)]


# --------------------------------------------------------------------------- 3. one wording
def _summary_of(results, status="published", error=None) -> RunSummary:
    """The run summary as flows.nightly builds it from the data test results."""
    now = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
    return RunSummary(run_id="20261126T180000Z-abcdef", status=status, started_at=now, finished_at=now,
                      warehouse="/nowhere/coop.duckdb", error=error,
                      tests=[{"name": r.name, "severity": r.severity, "passed": r.passed,
                              "failing_rows": r.failing_rows, "message": r.message()} for r in results])


def _three_texts(summary: RunSummary, tmp_path: Path, monkeypatch) -> dict[str, str]:
    """What the console, the run report file and the Prefect artifacts say about this run."""
    import prefect.artifacts

    from coop.run.runner import print_summary
    from flows.nightly import report_task

    made: dict[str, str] = {}

    def markdown(markdown, key=None, description=None, **kw):
        made["artifact"], made["artifact description"] = markdown, description

    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact", markdown)
    monkeypatch.setattr(prefect.artifacts, "create_table_artifact", lambda *a, **k: None)
    path = report_task.fn(summary, tmp_path / "wh" / "coop.duckdb")
    buf = io.StringIO()
    print_summary(summary, Console(file=buf, width=200))
    return {"console": buf.getvalue(), "report": Path(path).read_text(encoding="utf-8"), **made}


def _phrases(texts: dict[str, str]) -> dict[str, list[tuple[int, ...]]]:
    return {k: [tuple(map(int, m)) for m in PHRASE.findall(v)] for k, v in texts.items()}


def test_warn_and_fail_words_agree_in_console_report_and_artifacts(tmp_path, monkeypatch):
    # a run with a warning: the copy of 0201 (reg_code_in_several_districts) and the 30 districts
    # of 2020 without a register (unit_without_register); nothing else fails
    con, results = _build(_raw(tmp_path, copy_0201=True))
    warned = sorted(r.name for r in results if not r.passed)
    assert warned == ["reg_code_in_several_districts", "unit_without_register"]
    texts = _three_texts(_summary_of(results), tmp_path, monkeypatch)
    want = (N_TESTS, N_TESTS - 2, 2, 0)
    assert _phrases(texts) == {"console": [want], "report": [want], "artifact": [want], "artifact description": [want]}
    assert f"{N_TESTS} data tests: {N_TESTS - 2} passed, 2 warned, 0 failed" in texts["console"]
    assert "| reg_code_in_several_districts | warn | WARN | 1 |" in texts["report"]
    assert "[warn] reg_code_in_several_districts: 1 offending row(s)" in texts["console"]  # not eaten as markup

    # a run with a failure: one more test, error level, one offending row (0102 reports no workers)
    tests_dir = tmp_path / "tests"
    shutil.copytree(SQL_DIR / "tests", tests_dir)
    (tests_dir / "zz_workers_reported.sql").write_text(
        "-- severity: error\n-- description: every HTX reports its workers\n"
        "SELECT reg_code, source_file, row_number FROM raw.htx WHERE workers IS NULL\n", encoding="utf-8")
    con, results = _build(_raw(tmp_path / "b", copy_0201=True), tests_dir)
    assert [(r.name, r.failing_rows) for r in blocking_failures(results)] == [("zz_workers_reported", 1)]
    summary = _summary_of(results, status="failed",
                          error=f"{data_tests_phrase(results)}: 1 failed at error level, nothing published")
    texts = _three_texts(summary, tmp_path / "b", monkeypatch)
    want = (N_TESTS + 1, N_TESTS - 2, 2, 1)
    found = _phrases(texts)
    assert found["report"] == [want, want] and found["console"] == [want, want]  # the counts line and the reason
    assert found["artifact"] == [want, want] and found["artifact description"] == [want]
    assert "| zz_workers_reported | error | FAIL | 1 |" in texts["report"]
    assert "[error] zz_workers_reported: 1 offending row(s)" in texts["console"]
    assert "FAILED" in texts["console"] and "failed" in texts["artifact description"]


def test_check_summary_uses_the_same_words():
    from coop.warehouse.datatests import DataTestResult, summary

    results = [DataTestResult("a", "error", "d", 0), DataTestResult("b", "warn", "d", 2),
               DataTestResult("c", "error", "d", 0, error="boom"), DataTestResult("d", "warn", "d", 0)]
    assert summary(results).splitlines()[0] == "4 data tests: 2 passed, 1 warned, 1 failed"


def test_the_flow_publishes_past_a_duplicated_plan_code_and_its_artifacts_agree(tmp_path, prefect_harness):
    """The real flow on a Prefect API: the night survives a duplicated plan code (published,
    other files loaded), and a run refused by an error-level test says the same counts in the
    console, the report file and the Prefect artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from coop.run.runner import print_summary
    from flows.nightly import RunFailed, nightly_run

    raw = _raw(tmp_path, plan=True, copy_0201=True)
    wh = tmp_path / "wh" / "coop.duckdb"

    def run(**kw):
        state = nightly_run(raw_dir=raw, warehouse=wh, return_state=True, **kw)
        res = state.result(raise_on_failure=False)
        summary = res.summary if isinstance(res, RunFailed) else res
        with get_client(sync_client=True) as client:
            arts = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["coop-run-report"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        buf = io.StringIO()
        print_summary(summary, Console(file=buf, width=200))
        texts = {"console": buf.getvalue(), "report": Path(summary.report_path).read_text(encoding="utf-8"),
                 "artifact": str(arts[0].data), "artifact description": arts[0].description}
        return summary, _phrases(texts)

    s, found = run()
    assert s.status == "published" and s.quarantine == {"negative_value": 1, "duplicate_plan_code": 2}
    assert F.query(wh, "SELECT code FROM raw.chi_tieu ORDER BY 1") == [("high_tech_htx",), ("training_turns",)]
    assert F.query(wh, "SELECT unit_code, count(*) FROM raw.htx GROUP BY ALL ORDER BY ALL") == [("148", 3), ("157", 2)]
    want = (N_TESTS, N_TESTS - 2, 2, 0)
    assert found == {"console": [want], "report": [want], "artifact": [want], "artifact description": [want]}
    published = F.sha(wh)

    tests_dir = tmp_path / "tests"
    shutil.copytree(SQL_DIR / "tests", tests_dir)
    (tests_dir / "zz_workers_reported.sql").write_text(
        "-- severity: error\n-- description: every HTX reports its workers\n"
        "SELECT reg_code FROM raw.htx WHERE workers IS NULL\n", encoding="utf-8")
    s, found = run(tests_dir=tests_dir)
    assert s.status == "failed" and F.sha(wh) == published  # nothing published
    want = (N_TESTS + 1, N_TESTS - 2, 2, 1)
    assert found == {"console": [want, want], "report": [want, want], "artifact": [want, want],
                     "artifact description": [want]}


# --------------------------------------------------------------------------- 4. the console's year and window
def _console_warehouse(tmp_path: Path, window: str, last_year_partial: bool = True) -> Path:
    """tests/warehouse_fixture.py's province as a published file: 148 and 157 report 2020 and 2021
    (Kỳ Sơn 151 is gone from 2020: complete), 157 is missing in 2019; plus, when asked, a 2022
    register from 148 only (157 missing: incomplete)."""
    path = tmp_path / "console.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    fx.build(con, window=window)
    if last_year_partial:
        fx.insert(con, "raw.htx", fx.HTX_COLS,
                  [(2022, "148", "K1", "2022-02-02", "agriculture", "active", 6, 6, 60, 6, 2.0, None, False)])
        con.execute("UPDATE raw.htx SET name = 'HTX ' || reg_code, kind = 'htx'").fetchall()
    run_models(con)
    con.close()
    return path


def _console(path: Path) -> str:
    from coop.run.runner import print_summary

    buf = io.StringIO()
    print_summary(RunSummary(run_id="r1", status="published", warehouse=str(path)), Console(file=buf, width=200))
    return F.flat(buf.getvalue())


def test_console_shows_the_latest_complete_year_and_the_window_of_the_setting(tmp_path):
    out = _console(_console_warehouse(tmp_path, window="2"))
    # 2021 is the latest complete year: HTX A1 (12 members) and G1 (3), both active, none new
    assert "Phú Thọ 2021 (latest complete year;" in out
    assert "│ HTX │ 0 │ 2 │ 15 │" in out
    assert "Complete: every unit reported in 2021 (2 of 2)" in out
    # 2022: 148 only of the 2 districts expected (151 ended in 2019)
    assert "2022 incomplete: 1 of 2 units reported (areas with missing units: 17)" in out
    # backlog at 31/12/2021, window 2 = established 2020-2021: A1 (2018) and G1 (2019) are older -> 0
    assert "Funding backlog at 31/12/2021: 0 HTX formed 2020–2021" in out and "(window 2 years;" in out

    out = _console(_console_warehouse(tmp_path / "w3", window="3"))
    # window 3 = 2019-2021: G1 (2019-01-01, only trade promotion support) waits -> 1
    assert "Funding backlog at 31/12/2021: 1 HTX formed 2019–2021" in out and "(window 3 years;" in out


def test_console_without_a_complete_year_says_so(tmp_path):
    path = _console_warehouse(tmp_path, window="3", last_year_partial=False)
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM raw.htx WHERE year > 2019").fetchall()
    con.execute("DELETE FROM raw.tht WHERE year > 2019").fetchall()
    run_models(con)
    con.close()
    out = _console(path)
    # 2019 only: 148 and 151 reported, 157 did not
    assert "Phú Thọ 2019 (latest year, incomplete;" in out
    assert "Incomplete: 2 of 3 units reported in 2019 (areas with missing units: 17); no year is complete yet" in out


def test_the_backlog_window_is_a_setting(tmp_path, monkeypatch):
    from coop.settings import SettingsError, load_settings

    assert load.build_settings()["backlog_window_years"] == "3"  # default
    monkeypatch.setenv("COOP_BACKLOG_WINDOW_YEARS", "2")
    assert load.build_settings()["backlog_window_years"] == "2"
    con = duckdb.connect()
    load.create_tables(con, F.load_reference())
    assert _q(con, "SELECT value FROM ref.settings WHERE key = 'backlog_window_years'") == [("2",)]
    for bad in ("0", "two", "2.5"):
        monkeypatch.setenv("COOP_BACKLOG_WINDOW_YEARS", bad)
        with pytest.raises(SettingsError, match="backlog_window_years must be a whole number"):
            load_settings()
    monkeypatch.delenv("COOP_BACKLOG_WINDOW_YEARS")
    (tmp_path / "c.toml").write_text('[coop]\nbacklog_window_years = 4\n', encoding="utf-8")
    assert load_settings(tmp_path / "c.toml").backlog_window_years == 4


# --------------------------------------------------------------------------- 5. status of a removed unit
def _publish(raw: Path, wh: Path, allow_shrink: bool = False) -> list[str]:
    """One run as flows.nightly.nightly_run makes it, without Prefect: plan, read, load, the
    publish guards, publish. Returns the codes of the guards that refused it ([] = published)."""
    from coop.ingest.discover import discover
    from coop.ingest.normalize import select_submissions
    from coop.run import planning, steps, store
    from coop.run.lock import build_path
    from coop.warehouse import guards, publish

    started = datetime.now(timezone.utc)
    from coop.context import new_run_id

    run = load.RunRecord(run_id=new_run_id(started), started_at=started)
    reference = F.load_reference()
    raw_files, issues = discover(raw, reference)
    plan = planning.plan_from_discovery(raw_files, issues, raw, wh)
    state = store.state_dir(wh)
    results = steps.read_files(plan.to_read, reference, state) + steps.cached_files(plan.from_cache, state, reference)
    selected = select_submissions(results)
    build = build_path(wh, run.run_id)
    built = load.load_build(build, wh, reference, plan, selected, list(issues) + steps.superseded_issues(results, selected),
                            run, load.read_ledger(wh), store.read_pending_runs(state))
    refused = guards.blocking(guards.check_publish(build, wh), guards.GuardSettings(allow_shrink=allow_shrink))
    if refused:
        publish.discard(build)
        return [f.code for f in refused]
    run.finished_at = datetime.now(timezone.utc)
    load.finish_run(build, run)
    publish.publish(build, wh)
    steps.after_publish(plan, wh, run, built)
    return []


def test_status_says_missing_for_a_unit_whose_files_were_all_removed(tmp_path):
    from coop.outputs.status import collect_status, render_text

    raw = _raw(tmp_path)
    wh = tmp_path / "wh" / "coop.duckdb"
    wh.parent.mkdir()
    assert _publish(raw, wh) == []
    (raw / "2020" / "157" / "htx.csv").unlink()

    def lac_son():
        st = collect_status(raw, wh, year=2020)
        buf = io.StringIO()
        render_text(st, Console(file=buf, width=250))
        row = next(line for line in buf.getvalue().splitlines() if "Lạc Sơn" in line and "│" in line)
        return next(u for u in st.units(2020) if u.unit_code == "157"), row, st

    # removed, the next run not yet made: the warehouse still holds 157's 2 rows
    u, row, st = lac_son()
    assert u.state == "MISSING" and [(f.status, f.in_warehouse) for f in u.files] == [("removed", True)]
    assert "chưa nộp (MISSING)" in row and "NO USABLE ROWS" not in row
    assert "--allow-shrink" in u.files[0].reasons[0] and "157" in [m.unit_code for m in st.missing]

    # a plain run is refused (Lạc Sơn reported and has no file any more): still MISSING, not
    # "the next run drops it"
    assert "unit_gone" in _publish(raw, wh)
    u, row, _ = lac_son()
    assert u.state == "MISSING" and "chưa nộp (MISSING)" in row and "NO USABLE ROWS" not in row

    # the operator confirms: published without 157; MISSING, the removal done
    assert _publish(raw, wh, allow_shrink=True) == []
    u, row, st = lac_son()
    assert u.state == "MISSING" and [(f.status, f.ledger_status, f.in_warehouse) for f in u.files] == [
        ("removed", "removed", False)]
    assert "đã bỏ khỏi kho" in u.files[0].reasons[0] and "--allow-shrink" not in u.files[0].reasons[0]
    assert "chưa nộp (MISSING)" in row and "NO USABLE ROWS" not in row
    assert F.query(wh, "SELECT DISTINCT unit_code FROM raw.htx") == [("148",)]
