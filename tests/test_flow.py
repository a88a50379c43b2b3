"""The Prefect flow `flows.nightly.nightly_run` under `prefect_test_harness`, on the small
fixture province of tests/pipeline_fixture.py (figures computed by hand below)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop.run import planning


def _q(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture()
def fx(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader")
    calls = F.install(monkeypatch)
    raw = F.write_raw(tmp_path / "raw")
    return raw, tmp_path / "wh" / "coop.duckdb", calls


def test_flow_publishes_and_reports(fx):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.nightly import nightly_run

    raw, wh, calls = fx
    state = nightly_run(raw_dir=raw, warehouse=wh, return_state=True)
    assert state.is_completed()
    s = state.result()
    assert s.status == "published"
    assert sorted(s.files["new"]) == ["2020/148/htx.csv", "2020/157/htx.csv", "notes.txt"]
    assert (s.rows_loaded, s.rows_rejected) == (4, 1)
    assert s.quarantine == {"negative_value": 1}
    assert {(d["unit_code"], d["rows_loaded"], d["rows_rejected"]) for d in s.districts} == {("148", 2, 1), ("157", 2, 0)}
    assert all(t["passed"] or t["severity"] == "warn" for t in s.tests) and len(s.tests) > 0
    assert {"discover", "plan", "reading", "loading", "models", "tests", "publish"} <= set(s.timings)
    assert Path(s.report_path).is_file() and s.run_id in Path(s.report_path).read_text(encoding="utf-8")

    # hand-computed 2020 HTX: active 0101 (10 members, 8 workers, rev 100, profit 10, income 3.0),
    # 0102 (20, workers -, 300, 30, 4.0), 0201 (7, 7, 200, 20, 2.0); 0202 dissolved; 0103 quarantined.
    # new in 2020: 0101, 0202. income weights: 8, 20 (members), 7 -> (24 + 80 + 14) / 35.
    got = _q(wh, "SELECT new_formed, active_count, members, workers, avg_revenue_mvnd, avg_profit_mvnd, "
                 "avg_income_mvnd_month FROM marts.province_indicators WHERE year = 2020 AND entity_type = 'HTX'")
    assert got[0][:6] == (2, 3, 37, 15, 200.0, 20.0)
    assert got[0][6] == pytest.approx(118 / 35)
    assert _q(wh, "SELECT count(*) FROM marts.funding_backlog WHERE year = 2020") == [(3,)]
    assert _q(wh, "SELECT run_id, status, files_seen, files_loaded, files_rejected, rows_loaded, rows_rejected "
                  "FROM audit.runs") == [(s.run_id, "published", 3, 2, 1, 4, 1)]

    # reading ran as a task per batch (one year, two files: one batch), with the other stages as tasks
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    names = sorted(r.name.rsplit("-", 1)[0] for r in runs)
    assert names.count("read-batch") == 1
    for stage in ("discover", "plan", "load", "models", "data-tests", "publish", "report"):
        assert stage in names, names


def test_years_limited_run_keeps_other_years_as_published(fx):
    from flows.nightly import nightly_run

    raw, wh, calls = fx
    (raw / "2019" / "148").mkdir(parents=True)
    f2019 = raw / "2019" / "148" / "htx.csv"
    f2019.write_text(F.htx_csv(["0102,HTX Hai,htx,2019-05-01,transport,active,18,,250,25,3.5,false"]), encoding="utf-8")
    assert nightly_run(raw_dir=raw, warehouse=wh).status == "published"
    calls.clear()

    f2019.write_text(F.htx_csv(["0102,HTX Hai,htx,2019-05-01,transport,active,99,,250,25,3.5,false"]), encoding="utf-8")
    (raw / "2020" / "157" / "htx.csv").write_text(F.htx_csv([
        "0201,HTX Bốn,htx,2018-01-10,agriculture,active,8,7,200,20,2.0,false"]), encoding="utf-8")
    s = nightly_run(raw_dir=raw, warehouse=wh, years=(2020, 2020))
    assert s.status == "published"
    assert calls == ["2020/157/htx.csv"]  # 2019 is out of scope: not read although it changed
    # 2019 stays as published (18 members), 2020 follows the new file (8 members)
    assert _q(wh, "SELECT year, members FROM raw.htx WHERE reg_code IN ('0102', '0201') ORDER BY year, reg_code") == [
        (2019, 18), (2020, 20), (2020, 8)]
    assert dict(_q(wh, "SELECT source_file, status FROM audit.files")) == {
        "2019/148/htx.csv": "new", "2020/148/htx.csv": "unchanged", "2020/157/htx.csv": "changed", "notes.txt": "rejected"}
    # the latest run's quarantine still covers every year
    assert _q(wh, "SELECT count(*) FROM audit.rejected_rows WHERE run_id = ?".replace("?", f"'{s.run_id}'")) == [(1,)]

    calls.clear()
    s = nightly_run(raw_dir=raw, warehouse=wh)  # a full run picks the 2019 change up
    assert calls == ["2019/148/htx.csv"]
    assert _q(wh, "SELECT members FROM raw.htx WHERE year = 2019") == [(99,)]


def test_a_file_the_reader_cannot_handle_is_rejected_and_the_rest_loads(fx, monkeypatch):
    from flows.nightly import nightly_run

    raw, wh, calls = fx
    import coop.ingest.normalize

    real = coop.ingest.normalize.ingest_file

    def flaky(rawf, reference):
        if rawf.source_file == "2020/157/htx.csv":
            raise ValueError("boom")
        return real(rawf, reference)

    monkeypatch.setattr(coop.ingest.normalize, "ingest_file", flaky)
    s = nightly_run(raw_dir=raw, warehouse=wh)
    assert s.status == "published"
    assert _q(wh, "SELECT DISTINCT unit_code FROM raw.htx") == [("148",)]
    assert _q(wh, "SELECT reason_code FROM audit.file_issues WHERE source_file = '2020/157/htx.csv'") == [("unreadable_file",)]
    assert dict(_q(wh, "SELECT source_file, status FROM audit.files"))["2020/157/htx.csv"] == "rejected"
