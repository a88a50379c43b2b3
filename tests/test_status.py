"""`coop status` on hand-made raw folders, against the real reference of today's Phú Thọ (25:
former provinces 17 Hòa Bình, 25 Phú Thọ, 26 Vĩnh Phúc; 32 districts valid in 2020 and 2021
(10 + 13 + 9), 148 communes from 2025).

District era (`setup`: a hand-made ledger, the tables `coop.warehouse.load.create_tables` makes):
- 2020/148/htx.xlsx: 3 rows loaded, 1 row quarantined (2 bad cells: invalid_date, invalid_number),
  a sheet 'HTX cũ' superseded by a resubmission; loaded by run 1.
- 2020/150/cu.xlsx superseded by 2020/150/moi.xlsx (2 rows loaded).
- 2021/148/bc.csv: 1 row loaded, new in run 2.
- 2021/157/hong.xlsx: rejected whole (unreadable) -> 157 has no usable report for 2021.
- 2021/Kỳ Sơn/bc.xlsx: rejected (Kỳ Sơn 151 merged into Hòa Bình city on 01/01/2020).
- 2021/150/new.xlsx arrived in the raw folder after run 2.
Expected for 2021: 31 of the 32 districts without a usable report (all but 148), 150 and 157
among them; 151 listed (not expected), never someone to call.

Commune era (`reform`: the pipeline's own steps on files written here, see `run_pipeline`):
- 2025/07942/htx.csv (Phường Phú Thọ, by code): 1 row loaded, 1 quarantined (members -5);
- 2025/Xã Tam Dương/htx.csv (08869, by name): 1 row loaded;
- Thumbs.db and desktop.ini beside them (skipped by discovery, never listed);
- 2025/Huyện Lạc Sơn/htx.csv: a district folder in 2025 -> rejected (district_after_reform).
Expected for 2025: the other 146 communes missing; 05266 Xã Lạc Sơn among them with former
district 157 Huyện Lạc Sơn and former province Hòa Bình (schemas/reference/commune_lineage.csv).
"""

from __future__ import annotations

from coop.context import new_run_id

import hashlib
import json
import os
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from rich.console import Console
from typer.testing import CliRunner

from coop.cli import app
from coop.warehouse.load import create_tables
from coop.outputs.status import collect_status, render_text, status_command

RUN1 = "run-1"
RUN2 = "run-2"
T1 = datetime(2026, 11, 25, 18, 0, tzinfo=timezone.utc)  # 26/11/2026 01:00 in Vietnam
T2 = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)  # 27/11/2026 01:00 in Vietnam
T1N, T2N = T1.replace(tzinfo=None), T2.replace(tzinfo=None)  # audit times are naive UTC
EXPECTED_2021 = 32  # districts of 17, 25, 26 valid on 31/12/2021
COMMUNES = 148


@pytest.fixture(autouse=True)
def _province(monkeypatch):
    monkeypatch.setenv("COOP_PROVINCE", "25")


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _ledger(con, rows) -> None:
    for r in rows:
        con.execute(
            "INSERT INTO audit.files BY NAME SELECT * FROM (VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)) "
            "t(source_file, file_hash, size, modified_at, status, year, unit_code, rows_loaded, rows_rejected, "
            "first_seen_run, last_run)", list(r)).fetchall()


@pytest.fixture()
def setup(tmp_path):
    raw = tmp_path / "raw"
    wh = tmp_path / "warehouse" / "coop.duckdb"
    wh.parent.mkdir()
    h = {
        "2020/148/htx.xlsx": _write(raw / "2020/148/htx.xlsx", b"a"),
        "2020/150/cu.xlsx": _write(raw / "2020/150/cu.xlsx", b"b"),
        "2020/150/moi.xlsx": _write(raw / "2020/150/moi.xlsx", b"c"),
        "2021/148/bc.csv": _write(raw / "2021/148/bc.csv", b"d"),
        "2021/157/hong.xlsx": _write(raw / "2021/157/hong.xlsx", b"e"),
        "2021/Kỳ Sơn/bc.xlsx": _write(raw / "2021/Kỳ Sơn/bc.xlsx", b"g"),
    }
    before1 = datetime(2026, 11, 20, 3, 0)  # files written before run 1 (naive UTC)
    before2 = datetime(2026, 11, 26, 3, 0)  # between run 1 and run 2
    con = duckdb.connect(str(wh))
    create_tables(con)
    con.execute(
        "INSERT INTO audit.runs BY NAME SELECT * FROM (VALUES (?, ?, ?, 'published'), (?, ?, ?, 'published')) "
        "t(run_id, started_at, finished_at, status)", [RUN1, T1N, T1N, RUN2, T2N, T2N]).fetchall()
    _ledger(con, [  # run 2 saw every file
        ("2020/148/htx.xlsx", h["2020/148/htx.xlsx"], before1, "unchanged", 2020, "148", 3, 1, RUN1, RUN2),
        ("2020/150/cu.xlsx", h["2020/150/cu.xlsx"], before1, "superseded", 2020, "150", 0, 0, RUN1, RUN2),
        ("2020/150/moi.xlsx", h["2020/150/moi.xlsx"], before1, "unchanged", 2020, "150", 2, 0, RUN1, RUN2),
        ("2021/148/bc.csv", h["2021/148/bc.csv"], before2, "new", 2021, "148", 1, 0, RUN2, RUN2),
        ("2021/157/hong.xlsx", h["2021/157/hong.xlsx"], before2, "rejected", 2021, "157", 0, 0, RUN2, RUN2),
        ("2021/Kỳ Sơn/bc.xlsx", h["2021/Kỳ Sơn/bc.xlsx"], before2, "rejected", 2021, None, 0, 0, RUN2, RUN2),
    ])
    con.execute(
        """INSERT INTO audit.file_issues BY NAME SELECT * FROM (VALUES
        ('run-1','2020/150/moi.xlsx',NULL,'superseded','stale issue of an earlier run [superseded]','superseded'),
        ('run-2','2020/150/cu.xlsx',NULL,'superseded','Đã có tệp nộp lại mới hơn: 2020/150/moi.xlsx [superseded]','superseded'),
        ('run-2','2020/148/htx.xlsx','HTX cũ','superseded','Trang HTX cũ đã được thay bằng bản nộp lại [superseded]','superseded'),
        ('run-2','2021/157/hong.xlsx',NULL,'unreadable_file','Không mở được tệp [unreadable_file]','rejected'),
        ('run-2','2021/Kỳ Sơn/bc.xlsx',NULL,'district_not_valid_for_year','Đơn vị ''Kỳ Sơn'' (151) không tồn tại vào năm 2021 (không còn từ ngày 01/01/2020) [district_not_valid_for_year]','rejected'))
        t(run_id, source_file, sheet, reason_code, reason, severity)""").fetchall()
    # every run records the quarantine of every file it loaded (run 1's rows are history)
    con.execute(
        """INSERT INTO audit.rejected_rows BY NAME SELECT * FROM (VALUES
        ('run-1','2020/148/htx.xlsx','Sheet1',7,'established_on','31/02/2020','invalid_date','Ngày không hợp lệ [invalid_date]'),
        ('run-1','2020/148/htx.xlsx','Sheet1',7,'members','abc','invalid_number','Không phải số [invalid_number]'),
        ('run-2','2020/148/htx.xlsx','Sheet1',7,'established_on','31/02/2020','invalid_date','Ngày không hợp lệ [invalid_date]'),
        ('run-2','2020/148/htx.xlsx','Sheet1',7,'members','abc','invalid_number','Không phải số [invalid_number]'))
        t(run_id, source_file, sheet, row_number, column_name, raw_value, reason_code, reason)""").fetchall()
    con.close()
    _write(raw / "2021/150/new.xlsx", b"f")  # arrived after the last run
    return raw, wh


def _row(status, year, code):
    return next(u for u in status.years[year] if u.unit_code == code)


def _text(status, **kw) -> str:
    buf = StringIO()
    render_text(status, Console(file=buf, width=200, **kw))
    return buf.getvalue()


def test_collect_status(setup):
    raw, wh = setup
    st = collect_status(raw, wh)
    assert (st.current_year, st.focus_year) == (2021, 2021)
    assert sorted(st.years) == [2020, 2021]
    # every district valid that year, then the ones files were sent for that do not report
    # that year (Kỳ Sơn 151 after its merger), then the province folder
    codes20 = [u.unit_code for u in st.years[2020]]
    assert len(codes20) == EXPECTED_2021 + 1 and codes20[-1] is None and "151" not in codes20
    assert codes20[:3] == ["148", "150", "152"]
    codes21 = [u.unit_code for u in st.years[2021]]
    assert len(codes21) == EXPECTED_2021 + 2 and codes21[-2:] == ["151", None]
    r = _row(st, 2021, "151")
    assert not r.expected and r.state == "not expected" and r.level == "district"
    assert [f.source_file for f in r.of("rejected")] == ["2021/Kỳ Sơn/bc.xlsx"]
    assert r.files[0].reasons == [  # what discovery says of the folder now
        "Đơn vị 'Kỳ Sơn' (151) không tồn tại vào năm 2021 (không còn từ ngày 01/01/2020) [district_not_valid_for_year]"]

    r = _row(st, 2020, "148")
    assert (r.unit_name, r.area_code, r.area_name, r.former_districts) == ("Thành phố Hòa Bình", "17", "Hòa Bình", [])
    assert r.received and r.rows_loaded == 3 and r.rows_rejected == 1
    f = r.files[0]
    assert f.quarantine == {"invalid_date": 1, "invalid_number": 1}  # run 2's, not run 1's too
    assert f.superseded_sheets == ["HTX cũ"]
    assert f.loaded_at == "2026-11-26T01:00:00+07:00"  # unchanged since run 1 (Vietnam time)

    r = _row(st, 2020, "150")
    assert r.received and r.rows_loaded == 2
    assert [f.source_file for f in r.of("superseded")] == ["2020/150/cu.xlsx"]
    assert _row(st, 2020, "150").files[1].reasons == []  # run 1's stale issue is history
    assert _row(st, 2020, "157").state == "MISSING"

    r = _row(st, 2021, "148")
    assert r.received and r.files[0].loaded_at == "2026-11-27T01:00:00+07:00"  # new in run 2
    r = _row(st, 2021, "150")
    assert r.state == "NOT LOADED" and [f.source_file for f in r.of("pending")] == ["2021/150/new.xlsx"]
    r = _row(st, 2021, "157")
    assert r.state == "NOT LOADED" and [f.source_file for f in r.of("rejected")] == ["2021/157/hong.xlsx"]

    missing = [u.unit_code for u in st.missing]
    assert len(missing) == EXPECTED_2021 - 1 and "148" not in missing and "151" not in missing
    assert {"150", "157", "152", "227", "243"} <= set(missing)  # Hòa Bình, Phú Thọ, Vĩnh Phúc districts
    assert None not in missing and st.province_folder_missing
    assert st.last_run["run_id"] == RUN2
    assert st.published_at == "2026-11-27T01:00:00+07:00"


def test_status_text_shows_missing_and_who_to_call(setup, capsys):
    raw, wh = setup
    assert status_command(raw, wh, "text") == 0
    out = capsys.readouterr().out
    assert "công bố lần cuối (last published) 27/11/2026 01:00 (giờ Việt Nam, UTC+07:00)" in out
    assert "bị thay thế (superseded): cu.xlsx" in out
    assert "bị từ chối (rejected): hong.xlsx — Không mở được tệp [unreadable_file]" in out
    assert "chờ lần chạy tới (waiting for next run): new.xlsx" in out
    assert "chưa nộp (MISSING)" in out
    assert "  2021/150/new.xlsx" in out
    tail = out[out.index("Cần gọi (who to call)"):].splitlines()
    assert "năm 2021: 31/32 đơn vị" in tail[0]
    assert "  150 Huyện Đà Bắc — tỉnh Hòa Bình [chưa nạp được (NOT LOADED)]" in tail
    assert "  157 Huyện Lạc Sơn — tỉnh Hòa Bình [chưa nạp được (NOT LOADED)]" in tail
    assert "  152 Huyện Lương Sơn — tỉnh Hòa Bình" in tail
    assert not any(line.startswith(("  148 ", "  151 ")) for line in tail)
    # 2020 is not the focus year: only the districts with files, and the missing ones summarised
    y2020 = out[out.index("2020 — huyện"):out.index("2021 — huyện")]
    assert "Huyện Đà Bắc" in y2020 and "Huyện Kim Bôi" not in y2020.split("Năm 2020 chưa có")[0]
    assert "Năm 2020 chưa có báo cáo dùng được (no usable report): 152 Huyện Lương Sơn" in " ".join(y2020.split())


def test_status_missing_current_year_is_red_in_a_terminal(setup):
    raw, wh = setup
    buf = StringIO()
    render_text(collect_status(raw, wh), Console(file=buf, force_terminal=True, width=200, color_system="standard"))
    lines = buf.getvalue().splitlines()
    line = next(l for l in lines if "Huyện Lạc Sơn" in l and "NOT LOADED" in l)
    assert "\x1b[1;31m" in line  # bold red
    ok_line = next(l for l in lines if "Thành phố Hòa Bình" in l and "received" in l)
    assert "\x1b[1;31m" not in ok_line


def test_status_json(setup):
    raw, wh = setup
    res = CliRunner().invoke(app, ["status", "--raw-dir", str(raw), "--warehouse", str(wh), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["current_year"], data["focus_year"], data["timezone"]) == (2021, 2021, "Asia/Ho_Chi_Minh")
    assert data["published_at"] == "2026-11-27T01:00:00+07:00"
    missing = [d["unit_code"] for d in data["missing"]]
    assert len(missing) == 31 and {"150", "157"} <= set(missing) and "148" not in missing
    d150 = next(d for d in data["missing"] if d["unit_code"] == "150")
    assert d150 == {"unit_code": "150", "unit_name": "Huyện Đà Bắc", "level": "district", "area_code": "17",
                    "area_name": "Hòa Bình", "former_districts": [], "state": "NOT LOADED"}
    assert data["province_folder_missing"] is True
    y2020 = next(y for y in data["years"] if y["year"] == 2020)
    assert (y2020["level"], y2020["units_expected"], y2020["units_received"]) == ("district", 32, 2)
    u150 = next(u for u in y2020["units"] if u["unit_code"] == "150")
    assert u150["superseded"] == ["2020/150/cu.xlsx"] and u150["rows_loaded"] == 2 and u150["received"]
    u148 = next(u for u in y2020["units"] if u["unit_code"] == "148")
    assert (u148["rows_loaded"], u148["rows_rejected"], u148["state"]) == (3, 1, "received")
    assert u148["superseded"] == [] and u148["superseded_sheets"] == [{"source_file": "2020/148/htx.xlsx", "sheet": "HTX cũ"}]
    assert u148["files"][0]["ledger_status"] == "unchanged" and u148["files"][0]["in_warehouse"] is True
    assert data["pending_files"] == ["2021/150/new.xlsx"]
    assert data["later_run"] is None and data["error"] is None


def test_status_year_option(setup):
    raw, wh = setup
    res = CliRunner().invoke(app, ["status", "--raw-dir", str(raw), "--warehouse", str(wh), "--format", "json",
                                   "--year", "2020"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [y["year"] for y in data["years"]] == [2020] and data["focus_year"] == 2020
    assert len(data["missing"]) == 30 and "157" in [d["unit_code"] for d in data["missing"]]
    assert data["pending_files"] == []  # 2021/150/new.xlsx is another year


def test_status_changed_touched_and_removed_files(setup):
    raw, wh = setup
    (raw / "2020/148/htx.xlsx").write_bytes(b"a-changed")
    os.utime(raw / "2020/150/moi.xlsx", (1_900_000_000, 1_900_000_000))  # touched, same bytes
    (raw / "2021/148/bc.csv").unlink()
    st = collect_status(raw, wh)
    r = _row(st, 2020, "148")
    assert [f.source_file for f in r.of("pending")] == ["2020/148/htx.xlsx"]
    assert r.received and r.rows_loaded == 3  # the warehouse keeps the earlier version until the next run
    assert "đã sửa, chờ lần chạy tới (changed, waiting for next run): htx.xlsx" in _text(st)
    assert [f.status for f in _row(st, 2020, "150").files] == ["superseded", "loaded"]  # content hash, not mtime
    r = _row(st, 2021, "148")
    assert r.files[0].status == "removed" and r.files[0].in_warehouse
    assert "kho còn giữ số liệu của tệp cho tới lần chạy công bố tiếp theo" in r.files[0].reasons[0]
    assert r.state == "MISSING" and "148" in [u.unit_code for u in st.missing]
    assert collect_status(raw, wh).pending_files == ["2020/148/htx.xlsx", "2021/150/new.xlsx"]


def test_status_while_another_process_reads_the_warehouse(setup):
    raw, wh = setup
    analyst = duckdb.connect(str(wh), read_only=True)
    try:
        assert status_command(raw, wh, "json") == 0
    finally:
        analyst.close()


def test_status_without_a_published_warehouse(tmp_path, capsys):
    raw = tmp_path / "raw"
    _write(raw / "2021/148/a.xlsx", b"x")
    assert status_command(raw, tmp_path / "none.duckdb", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["published"] is False and data["last_run"] is None
    assert data["pending_files"] == ["2021/148/a.xlsx"]
    assert len(data["missing"]) == 32
    assert not (tmp_path / ".state").exists()  # nothing to compare with: nothing hashed, nothing written


def test_status_names_a_later_run_that_published_nothing(setup):
    from coop.run import store
    from coop.warehouse.load import RunRecord

    raw, wh = setup
    failed = RunRecord("run-3", datetime(2026, 11, 27, 18, 0), datetime(2026, 11, 27, 18, 5), status="failed",
                       message="2 error-level data test(s) failed; nothing published")
    store.append_pending_run(store.state_dir(wh), failed.to_json())
    st = collect_status(raw, wh)
    assert st.later_run == {"run_id": "run-3", "started_at": "2026-11-28T01:00:00+07:00",
                            "finished_at": "2026-11-28T01:05:00+07:00", "status": "failed",
                            "message": "2 error-level data test(s) failed; nothing published"}
    assert "Lần chạy sau đó (later run) run-3 lúc 28/11/2026 01:00 (giờ Việt Nam, UTC+07:00): failed" in _text(st)


def test_status_unicode_forms_of_a_path_are_one_file(setup):
    """The ledger may hold a path in NFC while the disk has it in NFD."""
    import unicodedata

    raw, wh = setup
    nfc = "2021/Thành phố Hòa Bình/bo-sung.xlsx"
    h = _write(raw / unicodedata.normalize("NFD", nfc), b"h")
    con = duckdb.connect(str(wh))
    _ledger(con, [(nfc, h, None, "new", 2021, "148", 2, 0, RUN2, RUN2)])
    con.close()
    r = _row(collect_status(raw, wh), 2021, "148")
    assert [f.status for f in r.files] == ["loaded", "loaded"]
    assert r.rows_loaded == 3


def test_a_file_with_no_usable_row_is_not_a_report(setup):
    """148 sent 2021/148/bc.csv but every row was quarantined: still someone to call."""
    raw, wh = setup
    con = duckdb.connect(str(wh))
    con.execute("UPDATE audit.files SET rows_loaded = 0, rows_rejected = 1 WHERE source_file = '2021/148/bc.csv'").fetchall()
    con.close()
    st = collect_status(raw, wh)
    r = _row(st, 2021, "148")
    assert r.state == "NO USABLE ROWS" and not r.received and r.rows_rejected == 1
    assert len(st.missing) == EXPECTED_2021 and "148" in [u.unit_code for u in st.missing]


# --------------------------------------------------------------------------- the commune era (2025 reform)
HTX_HEADER = ("Mã số HTX,Tên HTX,Loại hình,Ngày thành lập,Lĩnh vực,Tình trạng,Số thành viên,Số lao động,"
              "Doanh thu,Lợi nhuận,Thu nhập bình quân,Ứng dụng công nghệ cao")


def _htx(*rows: str) -> bytes:
    return ("\n".join([HTX_HEADER, *rows]) + "\n").encode("utf-8")


def run_pipeline(raw: Path, wh: Path) -> str:
    """One build the way `flows.nightly.nightly_run` makes it, without Prefect and without the
    models and data tests (status reads the ledger and audit tables only): discovery, the plan
    against the published ledger, reading (cache), submission selection, load (ledger, issues,
    quarantine), the run record, atomic publish. Returns the run id."""
    from coop.run import planning, steps, store
    from coop.warehouse import load, publish
    from coop.ingest.discover import discover
    from coop.ingest.normalize import select_submissions
    from coop.run.lock import build_path
    from coop.reference import load_reference

    raw, wh = Path(raw).resolve(), Path(wh).resolve()
    wh.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    run = load.RunRecord(run_id=new_run_id(started), started_at=started)
    reference = load_reference()
    raw_files, issues = discover(raw, reference)
    plan = planning.plan_from_discovery(raw_files, issues, raw, wh)
    state = store.state_dir(wh)
    results = steps.read_files(plan.to_read, reference, state) + steps.cached_files(plan.from_cache, state, reference)
    selected = select_submissions(results)
    extra = list(issues) + steps.superseded_issues(results, selected)
    build = build_path(wh, run.run_id)
    built = load.load_build(build, wh, reference, plan, selected, extra, run, load.read_ledger(wh),
                            store.read_pending_runs(state))
    run.finished_at = datetime.now(timezone.utc)
    load.finish_run(build, run)
    publish.publish(build, wh)
    steps.after_publish(plan, wh, run, built)
    return run.run_id


@pytest.fixture()
def reform(tmp_path):
    raw = tmp_path / "raw"
    _write(raw / "2025/07942/htx.csv", _htx(
        "0701,HTX Phú Thọ,HTX,2025-03-01,Nông nghiệp,Đang hoạt động,10,8,100,10,3.0,x",
        "0702,HTX Âm,HTX,2019-05-01,Vận tải,Đang hoạt động,-5,,300,30,4.0,"))
    _write(raw / "2025/Xã Tam Dương/htx.csv", _htx(
        "0801,HTX Tam Dương,HTX,2018-01-10,Nông nghiệp,Đang hoạt động,7,7,200,20,2.0,"))
    _write(raw / "2025/07942/Thumbs.db", b"\x00thumbs")
    _write(raw / "2025/Xã Tam Dương/desktop.ini", b"[.ShellClassInfo]\n")
    _write(raw / "2025/Huyện Lạc Sơn/htx.csv", _htx(
        "0901,HTX Lạc Sơn,HTX,2018-01-10,Nông nghiệp,Đang hoạt động,7,7,200,20,2.0,"))
    wh = tmp_path / "wh" / "coop.duckdb"
    run_pipeline(raw, wh)
    return raw, wh


def test_reform_year_expects_todays_communes(reform):
    from coop.reference import load_reference

    raw, wh = reform
    st = collect_status(raw, wh, year=2025)
    communes = [u for u in st.years[2025] if u.level == "commune"]
    assert len(communes) == COMMUNES and all(u.expected for u in communes)
    missing = {u.unit_code: u for u in st.missing}
    assert len(missing) == 146
    assert set(missing) == {u.code for u in load_reference().communes} - {"07942", "08869"}
    lac_son = missing["05266"]
    assert (lac_son.unit_name, lac_son.level, lac_son.area_code, lac_son.area_name) == (
        "Xã Lạc Sơn", "commune", "17", "Hòa Bình")
    assert lac_son.former_districts == [{"district_code": "157", "district_name": "Huyện Lạc Sơn"}]
    assert missing["04828"].former_districts == [  # Phường Thống Nhất: formed from communes of two districts
        {"district_code": "148", "district_name": "Thành phố Hòa Bình"},
        {"district_code": "150", "district_name": "Huyện Đà Bắc"}]
    assert missing["08872"].area_name == "Vĩnh Phúc"

    phu_tho = _row(st, 2025, "07942")
    assert (phu_tho.state, phu_tho.rows_loaded, phu_tho.rows_rejected) == ("received", 1, 1)
    assert phu_tho.files[0].quarantine == {"negative_value": 1}
    assert phu_tho.files[0].loaded_at.endswith("+07:00")
    tam_duong = _row(st, 2025, "08869")
    assert (tam_duong.state, tam_duong.rows_loaded, [f.source_file for f in tam_duong.files]) == (
        "received", 1, ["2025/Xã Tam Dương/htx.csv"])
    assert tam_duong.former_districts == [{"district_code": "247", "district_name": "Huyện Tam Dương"}]

    out = _text(st)
    assert "Cần gọi (who to call) — chưa có báo cáo dùng được năm 2025: 146/148 đơn vị" in out
    assert "  05266 Xã Lạc Sơn — huyện cũ: 157 Huyện Lạc Sơn; tỉnh cũ: Hòa Bình\n" in out
    assert "  04828 Phường Thống Nhất — huyện cũ: 148 Thành phố Hòa Bình, 150 Huyện Đà Bắc; tỉnh cũ: Hòa Bình\n" in out
    who = out[out.index("Cần gọi"):]
    assert "07942" not in who and "08869" not in who and "Huyện Lạc Sơn [" not in who
    assert "  07942 Phường Phú Thọ — htx.csv: cách ly (quarantined) negative_value 1\n" in out  # notes


def test_system_files_are_not_listed(reform):
    raw, wh = reform
    st = collect_status(raw, wh)
    dumped = json.dumps(st.as_dict(), ensure_ascii=False) + _text(st)
    assert "Thumbs.db" not in dumped and "desktop.ini" not in dumped
    assert st.pending_files == [] and st.other_files == []
    assert [f.source_file for f in _row(st, 2025, "07942").files] == ["2025/07942/htx.csv"]


def test_district_folder_under_2025_is_rejected_with_the_reform_reason(reform):
    raw, wh = reform
    st = collect_status(raw, wh, year=2025)
    r = _row(st, 2025, "157")
    assert (r.level, r.unit_name, r.expected, r.state) == ("district", "Huyện Lạc Sơn", False, "not expected")
    assert r.of("rejected")[0].source_file == "2025/Huyện Lạc Sơn/htx.csv"
    reason = r.files[0].reasons[0]
    assert reason.startswith("'Huyện Lạc Sơn' là đơn vị cấp huyện (157 Huyện Lạc Sơn); từ ngày 01/07/2025 không còn cấp huyện")
    assert reason.endswith("[district_after_reform]")
    assert r.files[0].ledger_status == "rejected"
    assert "157" not in [u.unit_code for u in st.missing]
    assert "bị từ chối (rejected): htx.csv — 'Huyện Lạc Sơn' là đơn vị cấp huyện" in " ".join(
        _text(st).replace("│", " ").split())


def test_cli_year_2026_lists_the_missing_communes(reform):
    raw, wh = reform
    args = ["status", "--raw-dir", str(raw), "--warehouse", str(wh), "--year", "2026"]
    res = CliRunner().invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [y["year"] for y in data["years"]] == [2026] and data["years"][0]["level"] == "commune"
    assert len(data["missing"]) == COMMUNES
    assert data["missing"][0]["unit_code"] == "04792" and data["missing"][0]["unit_name"] == "Phường Tân Hòa"
    lac_son = next(m for m in data["missing"] if m["unit_code"] == "05266")
    assert lac_son == {"unit_code": "05266", "unit_name": "Xã Lạc Sơn", "level": "commune", "area_code": "17",
                       "area_name": "Hòa Bình", "state": "MISSING",
                       "former_districts": [{"district_code": "157", "district_name": "Huyện Lạc Sơn"}]}
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "năm 2026: 148/148 đơn vị" in res.stdout
    assert "  05266 Xã Lạc Sơn — huyện cũ: 157 Huyện Lạc Sơn; tỉnh cũ: Hòa Bình" in res.stdout
    assert "  08869 Xã Tam Dương — huyện cũ: 247 Huyện Tam Dương; tỉnh cũ: Vĩnh Phúc" in res.stdout


def test_a_unit_whose_files_were_all_removed_is_missing(reform):
    raw, wh = reform
    (raw / "2025/Xã Tam Dương/htx.csv").unlink()
    st = collect_status(raw, wh, year=2025)  # before the next run: the warehouse still holds its row
    r = _row(st, 2025, "08869")
    assert r.state == "MISSING" and r.files[0].status == "removed" and r.files[0].in_warehouse
    assert "kho còn giữ số liệu của tệp cho tới lần chạy công bố tiếp theo" in r.files[0].reasons[0]

    run2 = run_pipeline(raw, wh)
    st = collect_status(raw, wh, year=2025)
    r = _row(st, 2025, "08869")
    assert r.state == "MISSING" and not r.received
    assert [(f.status, f.ledger_status, f.in_warehouse) for f in r.files] == [("removed", "removed", False)]
    assert "lần chạy tới" not in r.files[0].reasons[0]  # the removal is done, not "next run" forever
    assert len(st.missing) == 147 and "08869" in [u.unit_code for u in st.missing]
    assert st.last_run["run_id"] == run2
    row = next(l for l in _text(st).splitlines() if "Xã Tam Dương" in l and "│" in l)
    assert "chưa nộp (MISSING)" in row and "NO USABLE ROWS" not in row


def test_new_changed_and_touched_files_against_the_ledger(reform):
    raw, wh = reform
    _write(raw / "2025/05266/bao-cao.xlsx", b"not read by status")
    _write(raw / "2025/07942/htx.csv", _htx(
        "0701,HTX Phú Thọ,HTX,2025-03-01,Nông nghiệp,Đang hoạt động,12,8,100,10,3.0,x"))
    os.utime(raw / "2025/Xã Tam Dương/htx.csv", (1_900_000_000, 1_900_000_000))  # same bytes
    st = collect_status(raw, wh)
    assert st.pending_files == ["2025/05266/bao-cao.xlsx", "2025/07942/htx.csv"]
    assert _row(st, 2025, "05266").state == "NOT LOADED"
    assert _row(st, 2025, "07942").state == "received"  # its earlier version is in the warehouse
    assert [f.status for f in _row(st, 2025, "08869").files] == ["loaded"]

    (raw / "2025/05266/bao-cao.xlsx").unlink()
    run2 = run_pipeline(raw, wh)
    run3 = run_pipeline(raw, wh)  # nothing changed: 07942 keeps the time of the run that loaded it
    con = duckdb.connect(str(wh), read_only=True)
    try:
        finished = dict(con.execute("SELECT run_id, finished_at FROM audit.runs").fetchall())
    finally:
        con.close()
    st = collect_status(raw, wh)
    assert st.pending_files == [] and st.last_run["run_id"] == run3
    f = _row(st, 2025, "07942").files[0]
    assert (f.status, f.ledger_status, f.rows_loaded, f.rows_rejected) == ("loaded", "unchanged", 1, 0)
    vn = finished[run2].replace(tzinfo=timezone.utc).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert f.loaded_at == vn.isoformat(timespec="seconds") and finished[run2] < finished[run3]


def test_a_damaged_warehouse_gives_advice_not_a_duckdb_error(tmp_path, capsys):
    from coop.outputs.status import status_command

    wh = tmp_path / "coop.duckdb"
    wh.write_bytes(b"\0" * 8192 + b"not a database" * 100)
    (tmp_path / "raw").mkdir()
    assert status_command(tmp_path / "raw", wh) == 1
    err = capsys.readouterr().err
    assert "coop rollback" in err and "backfill --all" in err and "Traceback" not in err
