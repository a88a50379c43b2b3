"""Operations commands (issue 12): `coop plan`, `coop check`, `coop runs`, `coop runs show`,
`coop --version`, the warehouse's meta.* tables and the times shown to people.

One real `coop run` (the CLI in the test process, against the session's Prefect API) on the
small province of the pipeline tests (`tests/pipeline_fixture.py`: 2020/148/htx.csv 2 rows + 1
quarantined, 2020/157/htx.csv 2 rows, notes.txt misplaced) builds the warehouse the tests
read; a second one (a subprocess, ephemeral Prefect, as an operator runs it) checks that what
`coop plan` announced is what the run then did.
"""

from __future__ import annotations

from coop.context import new_run_id

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from coop.cli import app
from coop.paths import PROJECT_ROOT, SQL_DIR
from pipeline_fixture import coop_in_process, htx_csv, write_raw

COOP = str(Path(sys.executable).with_name("coop"))


def coop_run(raw: Path, wh: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COOP_TEST_"))}
    env.update(COOP_NO_PROGRESS="1", COOP_PROVINCE="25")
    out = subprocess.run([COOP, "run", "--raw-dir", str(raw), "--warehouse", str(wh)], env=env, capture_output=True,
                         text=True, timeout=900, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every file and folder under `folder`: content sha256, size and mtime (ns)."""
    out: dict[str, tuple] = {}
    if not folder.exists():
        return out
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
        else:
            out[str(p.relative_to(folder))] = ("dir" if p.is_dir() else "other", st.st_mtime_ns)
    return out


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    """The CLI's callback sets the offline settings in os.environ: restore them after each test."""
    from coop.run.runner import PREFECT_OFFLINE

    for k in (*PREFECT_OFFLINE, "NO_PROXY", "no_proxy", "COOP_TIMEZONE", "COOP_PROVINCE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("COOP_PROVINCE", "25")


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_harness):
    """(raw, warehouse, run_id) after one `coop run` of the small province (in this process)."""
    root = tmp_path_factory.mktemp("ops")
    raw = write_raw(root / "raw")
    t = time.time() - 3600  # an hour ago: later edits are clearly newer
    for p in raw.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))
    wh = root / "wh" / "coop.duckdb"
    code, out = coop_in_process("run", "--raw-dir", raw, "--warehouse", wh, COOP_PROVINCE="25", COOP_NO_PROGRESS="1")
    assert code == 0, out[-3000:]
    con = duckdb.connect(str(wh), read_only=True)
    run_id = con.execute("SELECT run_id FROM audit.runs WHERE status = 'published'").fetchall()[0][0]
    con.close()
    return raw, wh, run_id


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def invoke_json(*args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, [*args, "--format", "json"], catch_exceptions=False)
    return res.exit_code, json.loads(res.stdout)


# --------------------------------------------------------------------------- --help, --version
@pytest.mark.parametrize("cmd", [["plan"], ["check"], ["runs"], ["runs", "show"]])
def test_every_command_has_help(cmd):
    code, out = invoke(*cmd, "--help")
    assert code == 0 and "Usage" in out and "--warehouse" in out


def test_version():
    from coop import __version__

    code, out = invoke("--version")
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith(f"coop {__version__}")
    if (PROJECT_ROOT / ".git").exists() and shutil.which("git"):
        assert "(git " in first
    assert f"duckdb {duckdb.__version__}" in out and "schema version 2: units over time" in out


# --------------------------------------------------------------------------- meta.* tables
def test_meta_tables(built):
    raw, wh, run_id = built
    con = duckdb.connect(str(wh), read_only=True)
    try:
        assert con.execute("SELECT * FROM meta.schema_version").fetchall() == [(2, "units over time (2025 reform)")]
        info = con.execute("SELECT run_id, built_at, coop_version, duckdb_version, province_setting, province_code, "
                           "province_name FROM meta.build_info").fetchall()
        assert len(info) == 1
        rid, built_at, version, dver, setting, code, name = info[0]
        assert rid == run_id
        finished = con.execute("SELECT finished_at FROM audit.runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
        assert built_at == finished  # naive UTC, as every stored time
        assert abs((datetime.now(timezone.utc).replace(tzinfo=None) - built_at).total_seconds()) < 3 * 3600
        from coop.run.ops import coop_version

        assert version == coop_version() and dver == duckdb.__version__
        assert (setting, code, name) == ("25", "25", "Phú Thọ")
        undocumented = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'meta' AND (comment IS NULL OR comment = '') "
            "UNION ALL SELECT table_name || '.' || column_name FROM duckdb_columns() WHERE schema_name = 'meta' "
            "AND (comment IS NULL OR comment = '')").fetchall()
        assert undocumented == []
    finally:
        con.close()


# --------------------------------------------------------------------------- coop plan
def test_plan_of_an_unchanged_folder_touches_nothing(built):
    raw, wh, run_id = built
    before, raw_before = snapshot(wh.parent), snapshot(raw)
    code, p = invoke_json("plan", "--raw-dir", str(raw), "--warehouse", str(wh))
    assert code == 0
    assert snapshot(wh.parent) == before and snapshot(raw) == raw_before
    assert p["outcome"] == "unchanged" and p["published_run_id"] == run_id
    assert p["files"]["unchanged"] == ["2020/148/htx.csv", "2020/157/htx.csv"]
    assert p["files"]["new"] == p["files"]["changed"] == p["files"]["removed"] == []
    assert [r["source_file"] for r in p["files"]["rejected"]] == ["notes.txt"]
    assert p["files"]["rejected"][0]["reason_code"] == "misplaced_file"
    assert p["rebuild"]["years"] == [] and p["read"] == []
    code, text = invoke("plan", "--raw-dir", str(raw), "--warehouse", str(wh))
    assert code == 0 and "Nothing to rebuild" in text and run_id in text
    assert snapshot(wh.parent) == before


def test_plan_without_a_warehouse_creates_nothing(built, tmp_path):
    raw, _, _ = built
    wh = tmp_path / "none" / "coop.duckdb"
    code, p = invoke_json("plan", "--raw-dir", str(raw), "--warehouse", str(wh))
    assert code == 0 and not wh.parent.exists()
    assert p["outcome"] == "publish" and p["why"].startswith("nothing is published yet")
    assert p["files"]["new"] == ["2020/148/htx.csv", "2020/157/htx.csv"]
    assert p["read"] == ["2020/148/htx.csv", "2020/157/htx.csv"]
    assert p["rebuild"]["years"] == [2020] and len(p["rebuild"]["models"]) > 10


def _changed_copy(raw: Path, dest: Path) -> Path:
    """A new file (2021/148), a changed file (2020/157: one more HTX) and a resubmission
    (2020/148/htx_v2.csv, newer: supersedes 2020/148/htx.csv as a whole)."""
    shutil.copytree(raw, dest)  # copy2: contents and modification times kept
    (dest / "2020" / "157" / "htx.csv").write_text(htx_csv([
        "0201,HTX Bốn,htx,2018-01-10,agriculture,active,7,7,200,20,2.0,false",
        "0202,HTX Năm,htx,2020-02-02,agriculture,dissolved,3,3,,,,false",
        "0203,HTX Sáu,htx,2020-06-01,handicraft,active,5,5,50,5,1.5,false",
    ]), encoding="utf-8")
    (dest / "2020" / "148" / "htx_v2.csv").write_text(htx_csv([
        "0101,HTX Một,htx,2020-03-01,agriculture,active,11,8,100,10,3.0,true",
        "0102,HTX Hai,htx,2019-05-01,transport,active,20,,300,30,4.0,false",
    ]), encoding="utf-8")
    (dest / "2021" / "148").mkdir(parents=True)
    (dest / "2021" / "148" / "htx.csv").write_text(htx_csv([
        "0101,HTX Một,htx,2020-03-01,agriculture,active,12,8,120,12,3.2,true",
    ]), encoding="utf-8")
    return dest


def test_plan_announces_what_the_run_then_does(built, tmp_path):
    raw, wh, run_id = built
    raw2 = _changed_copy(raw, tmp_path / "raw")
    before, raw_before = snapshot(wh.parent), snapshot(raw2)
    code, p = invoke_json("plan", "--raw-dir", str(raw2), "--warehouse", str(wh))
    assert code == 0
    assert snapshot(wh.parent) == before and snapshot(raw2) == raw_before  # nothing written, not even .state
    f = p["files"]
    assert p["outcome"] == "publish" and p["why"] == "files were added, changed or removed"
    assert f["new"] == ["2020/148/htx_v2.csv", "2021/148/htx.csv"]
    assert f["changed"] == ["2020/157/htx.csv"] and f["unchanged"] == ["2020/148/htx.csv"]
    assert [(s["source_file"], s["whole_file"]) for s in f["superseded"]] == [("2020/148/htx.csv", True)]
    assert "htx_v2.csv" in f["superseded"][0]["reason"]
    assert p["read_to_plan"] == ["2020/148/htx_v2.csv"]  # the other one came from the parsed-file cache
    assert p["read"] == ["2020/148/htx_v2.csv", "2020/157/htx.csv", "2021/148/htx.csv"] and p["from_cache"] == 1
    assert p["rebuild"]["years_changed"] == [2020, 2021] and p["rebuild"]["years"] == [2020, 2021]
    from coop.warehouse.models import discover_models

    assert p["rebuild"]["models"] == sorted(discover_models(SQL_DIR))
    if p["guards"]["available"]:
        assert p["guards"]["failures"] == [] and not p["guards"]["refused"]
    code, text = invoke("plan", "--raw-dir", str(raw2), "--warehouse", str(wh))
    assert code == 0
    for s in ("2 new, 1 changed, 1 unchanged, 0 removed; 1 rejected, 1 superseded", "2020/148/htx_v2.csv",
              "years 2020, 2021", "would read, rebuild and publish"):
        assert s in text, text

    # the run does what the plan said
    wh2 = tmp_path / "wh" / "coop.duckdb"
    shutil.copytree(wh.parent, wh2.parent)
    coop_run(raw2, wh2)
    con = duckdb.connect(str(wh2), read_only=True)
    try:
        ledger = dict(con.execute("SELECT source_file, status FROM audit.files").fetchall())
        info = con.execute("SELECT run_id FROM meta.build_info").fetchall()
        latest = con.execute("SELECT run_id FROM audit.runs WHERE status = 'published' ORDER BY started_at DESC "
                             "LIMIT 1").fetchall()
    finally:
        con.close()
    assert ledger == {"2020/148/htx.csv": "superseded", "2020/148/htx_v2.csv": "new", "2020/157/htx.csv": "changed",
                      "2021/148/htx.csv": "new", "notes.txt": "rejected"}
    assert info == latest and info[0][0] != run_id
    code, p2 = invoke_json("plan", "--raw-dir", str(raw2), "--warehouse", str(wh2))
    assert code == 0 and p2["outcome"] == "unchanged" and p2["published_run_id"] == info[0][0]


def test_plan_shows_the_publish_guards(built, tmp_path):
    raw, wh, _ = built
    raw2 = tmp_path / "raw"
    shutil.copytree(raw, raw2)
    (raw2 / "2020" / "157" / "htx.csv").unlink()  # a unit with rows in the warehouse sends nothing any more
    before = snapshot(wh.parent)
    code, p = invoke_json("plan", "--raw-dir", str(raw2), "--warehouse", str(wh))
    assert code == 0 and snapshot(wh.parent) == before
    assert p["files"]["removed"] == ["2020/157/htx.csv"] and p["rebuild"]["years_changed"] == [2020]
    codes = {x["code"] for x in p["guards"]["failures"]}
    assert "unit_gone" in codes and p["outcome"] == "refused" and p["guards"]["refused"]
    assert all(x["blocking"] for x in p["guards"]["failures"])
    code, text = invoke("plan", "--raw-dir", str(raw2), "--warehouse", str(wh))
    assert code == 0 and "REFUSED" in text and "157" in text and "--allow-shrink" in text
    code, p = invoke_json("plan", "--raw-dir", str(raw2), "--warehouse", str(wh), "--allow-shrink")
    assert code == 0 and p["outcome"] == "publish" and not any(x["blocking"] for x in p["guards"]["failures"])


def test_plan_of_a_missing_raw_folder(tmp_path):
    code, out = invoke("plan", "--raw-dir", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb"))
    assert code == 1 and "Không thấy thư mục dữ liệu" in out


# --------------------------------------------------------------------------- coop check
def test_check_runs_the_data_tests_read_only(built):
    raw, wh, run_id = built
    before = snapshot(wh.parent)
    code, rep = invoke_json("check", "--warehouse", str(wh))
    assert code == 0 and rep["ok"] and rep["errors"] == 0 and rep["run_id"] == run_id
    assert rep["tests_run"] == len(list((SQL_DIR / "tests").glob("*.sql")))
    assert {t["name"] for t in rep["tests"]} == {p.stem for p in (SQL_DIR / "tests").glob("*.sql")}
    assert rep["built_at"].endswith("+07:00")
    code, text = invoke("check", "--warehouse", str(wh))
    assert code == 0 and "data tests:" in text and "OK" in text and "giờ Việt Nam, UTC+07:00" in text
    assert snapshot(wh.parent) == before


def test_check_exits_1_on_an_error_level_failure(built, tmp_path):
    _, wh, _ = built
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "always_warns.sql").write_text("-- severity: warn\n-- description: a warning\nSELECT 1 AS x\n")
    code, rep = invoke_json("check", "--warehouse", str(wh), "--tests-dir", str(tests))
    assert code == 0 and rep["ok"] and rep["warnings"] == 1
    (tests / "no_htx.sql").write_text("-- severity: error\n-- description: there is no HTX\n"
                                      "SELECT reg_code FROM raw.htx\n")
    code, rep = invoke_json("check", "--warehouse", str(wh), "--tests-dir", str(tests))
    assert code == 1 and not rep["ok"] and rep["errors"] == 1
    bad = next(t for t in rep["tests"] if t["name"] == "no_htx")
    assert bad["failing_rows"] == 4 and bad["severity"] == "error"
    code, text = invoke("check", "--warehouse", str(wh), "--tests-dir", str(tests))
    assert code == 1 and "FAILED" in text and "no_htx" in text


def test_check_without_a_warehouse(tmp_path):
    code, out = invoke("check", "--warehouse", str(tmp_path / "w.duckdb"))
    assert code == 1 and "Không tìm thấy kho dữ liệu" in out
    code, rep = invoke_json("check", "--warehouse", str(tmp_path / "w.duckdb"))
    assert code == 1 and rep["ok"] is False


# --------------------------------------------------------------------------- coop runs
def test_runs_lists_the_published_run(built):
    raw, wh, run_id = built
    before = snapshot(wh.parent)
    code, data = invoke_json("runs", "--warehouse", str(wh))
    assert code == 0 and data["timezone"] == "Asia/Ho_Chi_Minh" and data["running"] is None
    (r,) = data["runs"]
    assert r["run_id"] == run_id and r["status"] == "published" and r["current"] and r["recorded"] == "warehouse"
    assert (r["files_seen"], r["files_rejected"], r["rows_loaded"], r["rows_rejected"]) == (3, 1, 4, 1)
    assert r["duration_seconds"] > 0 and r["started_at"].endswith("+07:00") and r["started_at_utc"].endswith("+00:00")
    assert r["tests"]["passed"] > 20 and r["tests"]["failed"] == 0
    assert Path(r["report"]).name == f"run-{run_id}.md"
    code, text = invoke("runs", "--warehouse", str(wh))
    assert code == 0 and run_id in text and "giờ Việt Nam, UTC+07:00" in text and "published ●" in text
    assert snapshot(wh.parent) == before


def test_runs_with_pending_runs_and_another_zone(built, tmp_path, monkeypatch):
    from coop.run import store
    from coop.warehouse import load
    from coop.outputs.run_report import RunSummary, write_run_report

    _, wh0, run_id = built
    wh = tmp_path / "wh" / "coop.duckdb"
    shutil.copytree(wh0.parent, wh.parent)
    started = datetime(2026, 11, 30, 18, 0, 5, tzinfo=timezone.utc)  # 01:00:05 on 1 December in Vietnam
    run = load.RunRecord(run_id=new_run_id(started), started_at=started,
                         finished_at=datetime(2026, 11, 30, 18, 2, 10, tzinfo=timezone.utc), status="failed",
                         message="Không xuất bản: ...\nsecond line")
    store.append_pending_run(store.state_dir(wh), run.to_json())
    write_run_report(RunSummary(run_id=run.run_id, status="failed", started_at=run.started_at,
                                finished_at=run.finished_at, error="refused"), wh)
    code, data = invoke_json("runs", "--warehouse", str(wh), "--limit", "5")
    assert code == 0 and [r["run_id"] for r in data["runs"]] == [run.run_id, run_id]
    first = data["runs"][0]
    assert (first["status"], first["recorded"], first["current"]) == ("failed", "pending", False)
    assert first["started_at"] == "2026-12-01T01:00:05+07:00" and first["duration_seconds"] == 125.0
    assert first["tests"] is None
    code, text = invoke("runs", "--warehouse", str(wh))
    assert code == 0 and "01/12/2026 01:00" in text and "2 min 05 s" in text and "Không xuất bản: ..." in text
    code, data = invoke_json("runs", "--warehouse", str(wh), "-n", "1")
    assert len(data["runs"]) == 1 and data["total"] == 2

    monkeypatch.setenv("COOP_TIMEZONE", "Europe/Paris")
    code, text = invoke("runs", "--warehouse", str(wh))
    assert code == 0 and "30/11/2026 19:00" in text and "Europe/Paris, UTC+01:00" in text


def test_runs_show(built):
    raw, wh, run_id = built
    report = (wh.parent / "reports" / f"run-{run_id}.md").read_text(encoding="utf-8")
    for ref in (run_id, run_id.rsplit("-", 1)[1], "latest"):
        code, out = invoke("runs", "show", ref, "--warehouse", str(wh))
        assert code == 0 and out == report, ref
    code, out = invoke("runs", "show", "20991231T000000Z-ffffff", "--warehouse", str(wh))
    assert code == 1 and "Không tìm thấy lần chạy" in out


def test_runs_of_an_empty_folder(tmp_path):
    code, out = invoke("runs", "--warehouse", str(tmp_path / "coop.duckdb"))
    assert code == 0 and "no runs yet" in out and not (tmp_path / "reports").exists()


# --------------------------------------------------------------------------- times shown to people
def test_local_time(monkeypatch, tmp_path):
    from coop.settings import SettingsError, load_settings, local_time, zone_label

    monkeypatch.setenv("COOP_CONFIG", str(tmp_path / "absent.toml"))
    naive_utc = datetime(2026, 11, 29, 1, 15)
    assert local_time(naive_utc) == "29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)"
    assert local_time(naive_utc.replace(tzinfo=timezone.utc)) == "29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)"
    assert local_time("2026-11-29T08:15:00+07:00") == "29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)"
    assert local_time("2026-11-29T01:15:00Z", seconds=True) == "29/11/2026 08:15:00 (giờ Việt Nam, UTC+07:00)"
    assert local_time(naive_utc, marker=False) == "29/11/2026 08:15"
    assert local_time(None) == "—" and local_time("not a time") == "not a time"
    assert local_time(naive_utc, "Europe/Paris") == "29/11/2026 02:15 (Europe/Paris, UTC+01:00)"
    assert zone_label() == "giờ Việt Nam, UTC+07:00"
    assert load_settings().timezone == "Asia/Ho_Chi_Minh"

    (tmp_path / "coop.toml").write_text('[coop]\nprovince = "25"\ntimezone = "Asia/Bangkok"\n', encoding="utf-8")
    monkeypatch.setenv("COOP_CONFIG", str(tmp_path / "coop.toml"))
    assert load_settings().timezone == "Asia/Bangkok"
    assert local_time(naive_utc) == "29/11/2026 08:15 (Asia/Bangkok, UTC+07:00)"
    monkeypatch.setenv("COOP_TIMEZONE", "UTC")
    assert local_time(naive_utc) == "29/11/2026 01:15 (UTC, UTC+00:00)"
    monkeypatch.setenv("COOP_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError, match="COOP_TIMEZONE"):
        load_settings()
    assert local_time(naive_utc) == "29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)"  # never raises


def test_lock_message_in_vietnam_time(tmp_path, monkeypatch):
    from coop.run.lock import LockHolder, RunLockBusy

    monkeypatch.setenv("COOP_CONFIG", str(tmp_path / "absent.toml"))
    holder = LockHolder(pid=4242, host=None, started_at="2026-11-28T18:00:02+00:00", command="coop run")
    msg = str(RunLockBusy(tmp_path / "coop.duckdb", holder))
    assert "started 29/11/2026 01:00 (giờ Việt Nam, UTC+07:00)" in msg and "pid 4242" in msg
