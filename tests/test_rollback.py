"""Versions to go back to (coop.warehouse.guards): the last N published warehouses are kept read-only
in `versions/` (cleanup_stale leaves them alone), `coop rollback [--to RUN_ID]` publishes one
again atomically and records it; a damaged published file stops a run with advice, a
rollback or `coop backfill --all` brings the warehouse back. Also the audit views of the
current state after several runs. Whole runs on the small fixture province of
tests/pipeline_fixture.py (in-process, under the Prefect test harness)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipeline_fixture as F
from coop.run import planning, store
from coop.warehouse import guards
from coop.cli import app
from coop.run.lock import cleanup_stale, run_lock
from coop.run.runner import backfill_command, run_command


_sha, _q, _flat = F.sha, F.query, F.flat  # shared with the other pipeline tests


def _says(text: str, output: str) -> bool:
    """`text` in the console `output`, whitespace left out of both: the console folds a long
    path (a pytest-xdist worker's tmp_path is longer) wherever the line ends, even inside it."""
    return "".join(text.split()) in "".join(output.split())


@pytest.fixture()
def fx(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader")
    for k in [k for k in os.environ if k.startswith("COOP_GUARD_")]:
        monkeypatch.delenv(k)
    F.install(monkeypatch)
    raw = F.write_raw(tmp_path / "raw")
    return raw, tmp_path / "wh" / "coop.duckdb"


def _change(raw: Path, members: int) -> None:
    """A new version of unit 157's file (one more cooperative, a new member count)."""
    (raw / "2020" / "157" / "htx.csv").write_text(F.htx_csv([
        "0201,HTX Bốn,htx,2018-01-10,agriculture,active,7,7,200,20,2.0,false",
        "0202,HTX Năm,htx,2020-02-02,agriculture,dissolved,3,3,,,,false",
        f"0203,HTX Sáu,htx,2020-06-01,agriculture,active,{members},4,50,5,1.5,false"]), encoding="utf-8")


def _published_run(wh: Path) -> str:
    return _q(wh, "SELECT run_id FROM audit.runs WHERE status = 'published' ORDER BY started_at DESC LIMIT 1")[0][0]


def test_versions_rollback_and_current_views(fx, monkeypatch):
    raw, wh = fx
    monkeypatch.setenv("COOP_GUARD_KEEP_VERSIONS", "2")
    runs, shas = [], {}
    for i in range(4):  # N + 2 published runs, N = 2
        if i:
            _change(raw, 10 + i)
        assert run_command(raw, wh, None, False) == 0
        runs.append(_published_run(wh))
        shas[runs[-1]] = _sha(wh)
    assert len(set(runs)) == 4

    # the newest N kept, read-only, byte copies of what each run published
    versions = guards.list_versions(wh)
    assert [v.run_id for v in versions] == [runs[3], runs[2]]
    assert sorted(p.name for p in (wh.parent / "versions").iterdir()) == sorted(
        f"coop-{r}.duckdb" for r in runs[2:])
    for v in versions:
        assert stat.S_IMODE(v.path.stat().st_mode) == 0o444
        assert _sha(v.path) == shas[v.run_id]
        assert v.path.stat().st_ino != wh.stat().st_ino  # a copy: damage to the published file stays there
    with run_lock(wh):
        cleanup_stale(wh)  # removes a killed run's leftovers, never a version
    assert [v.run_id for v in guards.list_versions(wh)] == [runs[3], runs[2]]

    # current state: the latest published run's rows; the history keeps one copy per run
    assert _q(wh, "SELECT count(*) FROM audit.rejected_rows") == [(4,)]
    assert _q(wh, "SELECT count(*) FROM audit.current_rejected_rows") == _q(
        wh, f"SELECT count(*) FROM audit.rejected_rows WHERE run_id = '{runs[3]}'") == [(1,)]
    assert _q(wh, "SELECT DISTINCT run_id, source_file, reason_code FROM audit.current_rejected_rows") == [
        (runs[3], "2020/148/htx.csv", "negative_value")]
    assert _q(wh, "SELECT count(*) FROM audit.file_issues") == [(4,)]
    assert _q(wh, "SELECT run_id, source_file FROM audit.current_file_issues") == [(runs[3], "notes.txt")]
    assert _q(wh, "SELECT comment FROM duckdb_views() WHERE schema_name = 'audit' AND view_name = 'current_rejected_rows'"
              )[0][0].startswith("Dòng bị cách ly hiện nay")
    assert _q(wh, "SELECT comment FROM duckdb_columns() WHERE table_name = 'current_file_issues' AND column_name = 'reason'"
              )[0][0].startswith("Lý do")

    # rollback: the previous run's file, atomically, recorded as a pending run
    res = CliRunner().invoke(app, ["rollback", "--warehouse", str(wh)])
    assert res.exit_code == 0, res.output
    assert _says(f"rolled back: {wh} is now the warehouse of run {runs[2]}", res.output), res.output
    assert _sha(wh) == shas[runs[2]]
    assert stat.S_IMODE(wh.stat().st_mode) == 0o644  # the published file itself stays an ordinary file
    assert _q(wh, "SELECT count(*) FROM audit.current_rejected_rows") == [(1,)]  # that run's current state
    assert _q(wh, "SELECT members FROM raw.htx WHERE reg_code = '0203'") == [(12,)]
    [rb] = store.read_pending_runs(store.state_dir(wh))
    assert (rb["kind"], rb["status"]) == ("rollback", "rolled_back")
    assert f"rolled back to the warehouse of run {runs[2]}" in rb["message"] and f"replaced run {runs[3]}" in rb["message"]
    assert not list(wh.parent.glob(".coop.duckdb.publish-*"))

    # --to: by run id (a unique beginning is enough), listed by --list
    res = CliRunner().invoke(app, ["rollback", "--warehouse", str(wh), "--list"])
    assert res.exit_code == 0 and f"{runs[2]}" in res.output and "← đang xuất bản" in res.output
    res = CliRunner().invoke(app, ["rollback", "--warehouse", str(wh), "--to", runs[3][:-2]])
    assert res.exit_code == 0, res.output
    assert _sha(wh) == shas[runs[3]]
    res = CliRunner().invoke(app, ["rollback", "--warehouse", str(wh), "--to", runs[0]])
    assert res.exit_code == 1 and f"no version of run {runs[0]}" in _flat(res.output)
    assert _sha(wh) == shas[runs[3]]

    # the next run rebuilds (the file is not the one its state remembers) and records the rollbacks
    assert run_command(raw, wh, None, False) == 0
    got = _q(wh, "SELECT kind, status FROM audit.runs WHERE kind = 'rollback'")
    assert got == [("rollback", "rolled_back")] * 2
    assert store.read_pending_runs(store.state_dir(wh)) == []
    assert [v.run_id for v in guards.list_versions(wh)][1] == runs[3]


def test_damaged_warehouse_then_rollback_or_backfill_all(fx):
    raw, wh = fx
    assert run_command(raw, wh, None, False) == 0
    good_run = _published_run(wh)
    good = _sha(wh)

    os.truncate(wh, wh.stat().st_size // 2)  # the disk, a copy interrupted, a careless editor…
    problem = guards.warehouse_problem(wh)  # what readers such as `coop status` can say
    assert problem and "coop rollback" in problem and "coop backfill --all" in problem
    damaged = _sha(wh)
    res = CliRunner().invoke(app, ["run", "--raw-dir", str(raw), "--warehouse", str(wh)])
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert _says(f"Kho dữ liệu đã xuất bản {wh} bị hỏng", out)
    assert _says(f"The published warehouse {wh} is damaged", out)
    assert "Roll back with `coop rollback`, or rebuild from raw with `coop backfill --all`" in out
    assert "Traceback" not in res.output
    assert _sha(wh) == damaged  # refused before anything: left as found
    assert [p["status"] for p in store.read_pending_runs(store.state_dir(wh))] == ["failed"]

    # rollback picks the newest good version (here: the same run, undamaged)
    assert CliRunner().invoke(app, ["rollback", "--warehouse", str(wh)]).exit_code == 0
    assert _sha(wh) == good and guards.check_warehouse_file(wh) is None

    # or rebuild from nothing: every year re-read, the damaged file ignored
    with open(wh, "r+b") as f:
        f.write(b"\0" * 8192)
    assert backfill_command(raw, wh, None, False, fresh=True) == 0
    assert guards.check_warehouse_file(wh) is None
    assert _q(wh, "SELECT unit_code, count(*) FROM raw.htx GROUP BY 1 ORDER BY 1") == [("148", 2), ("157", 2)]
    assert _q(wh, "SELECT count(*) FROM audit.current_rejected_rows") == [(1,)]
    assert dict(_q(wh, "SELECT source_file, status FROM audit.files")) == {
        "2020/148/htx.csv": "new", "2020/157/htx.csv": "new", "notes.txt": "rejected"}
    runs = _q(wh, "SELECT kind, status, backfill_years FROM audit.runs ORDER BY started_at")
    assert runs == [("nightly", "failed", None), ("rollback", "rolled_back", None), ("backfill", "published", "all")]
    assert good_run in guards.list_versions(wh)[1].run_id
