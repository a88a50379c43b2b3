"""`coop status` on a small hand-made warehouse + raw folder.

Fixture (report years 2020 and 2021, districts 148 Hòa Bình city, 150 Đà Bắc, 151 Kỳ Sơn
(valid until 2020-01-01), 157 Lạc Sơn):
- 2020/148/htx.xlsx: 3 rows loaded (2 HTX + 1 HO_TRO), 1 row quarantined (2 bad cells).
- 2020/150/cu.xlsx superseded by 2020/150/moi.xlsx (2 rows loaded).
- 2020/157/: nothing -> missing (not the current year).
- 2021/148/bc.csv: 1 row loaded.
- 2021/157/hong.xlsx: rejected whole (unreadable) -> 157 has no usable report for 2021.
- 2021/150/: nothing in the warehouse, but 2021/150/new.xlsx arrived in the raw folder since.
- Kỳ Sơn (151) is not expected in 2020 or 2021.
Expected: missing for 2021 = 150 Đà Bắc and 157 Lạc Sơn (+ the province folder).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from coop.cli import app
from coop.load import create_tables
from coop.status import collect_status, status_command

RUN1 = "run-1"
RUN2 = "run-2"
T1 = datetime(2026, 11, 25, 18, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
T1N, T2N = T1.replace(tzinfo=None), T2.replace(tzinfo=None)  # audit times are naive UTC


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def setup(tmp_path):
    raw = tmp_path / "raw"
    wh = tmp_path / "warehouse" / "coop.duckdb"
    wh.parent.mkdir()
    hashes = {
        "2020/148/htx.xlsx": _write(raw / "2020/148/htx.xlsx", b"a"),
        "2020/150/cu.xlsx": _write(raw / "2020/150/cu.xlsx", b"b"),
        "2020/150/moi.xlsx": _write(raw / "2020/150/moi.xlsx", b"c"),
        "2021/148/bc.csv": _write(raw / "2021/148/bc.csv", b"d"),
        "2021/157/hong.xlsx": _write(raw / "2021/157/hong.xlsx", b"e"),
        "2021/Kỳ Sơn/bc.xlsx": _write(raw / "2021/Kỳ Sơn/bc.xlsx", b"g"),
    }
    con = duckdb.connect(str(wh))
    create_tables(con, reference={"districts": [
        {"code": "148", "name": "Thành phố Hòa Bình", "province": "17", "valid_from": "2000-01-01", "valid_to": None},
        {"code": "150", "name": "Đà Bắc", "province": "17", "valid_from": "2000-01-01", "valid_to": None},
        {"code": "151", "name": "Kỳ Sơn", "province": "17", "valid_from": "2000-01-01", "valid_to": "2020-01-01"},
        {"code": "157", "name": "Lạc Sơn", "province": "17", "valid_from": "2000-01-01", "valid_to": None},
    ]})
    lin = lambda sf, r, y, d, run: f"'{sf}','Sheet1',{r},{y},'{d}','{hashes[sf]}','{run}'"  # noqa: E731
    con.execute(
        f"""INSERT INTO raw.htx (reg_code, name, source_file, sheet, row_number, year, district_code, file_hash, run_id)
        VALUES ('1','A',{lin('2020/148/htx.xlsx', 5, 2020, '148', RUN1)}),
               ('2','B',{lin('2020/148/htx.xlsx', 6, 2020, '148', RUN1)}),
               ('3','C',{lin('2020/150/moi.xlsx', 5, 2020, '150', RUN1)}),
               ('4','D',{lin('2020/150/moi.xlsx', 6, 2020, '150', RUN1)}),
               ('5','E',{lin('2021/148/bc.csv', 2, 2021, '148', RUN2)})"""
    ).fetchall()
    con.execute(
        f"""INSERT INTO raw.ho_tro (reg_code, source_file, sheet, row_number, year, district_code, file_hash, run_id)
        VALUES ('1',{lin('2020/148/htx.xlsx', 9, 2020, '148', RUN1)})"""
    ).fetchall()
    con.execute(
        "INSERT INTO audit.runs BY NAME SELECT * FROM (VALUES (?, ?, ?, 'published'), (?, ?, ?, 'published')) "
        "t(run_id, started_at, finished_at, status)",
        [RUN1, T1N, T1N, RUN2, T2N, T2N],
    ).fetchall()
    # the ledger (run 2 saw every file; its rows count quarantined rows as distinct sheet/row)
    for sf, st, y, d, n_ok, n_bad in [
        ("2020/148/htx.xlsx", "unchanged", 2020, "148", 3, 1),
        ("2020/150/cu.xlsx", "superseded", 2020, "150", 0, 0),
        ("2020/150/moi.xlsx", "unchanged", 2020, "150", 2, 0),
        ("2021/148/bc.csv", "new", 2021, "148", 1, 0),
        ("2021/157/hong.xlsx", "rejected", 2021, "157", 0, 0),
        ("2021/Kỳ Sơn/bc.xlsx", "rejected", 2021, None, 0, 0),
    ]:
        con.execute(
            "INSERT INTO audit.files BY NAME SELECT * FROM (VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)) "
            "t(source_file, file_hash, size, status, year, district_code, rows_loaded, rows_rejected, first_seen_run, last_run)",
            [sf, hashes[sf], st, y, d, n_ok, n_bad, RUN1 if y == 2020 else RUN2, RUN2],
        ).fetchall()
    con.execute(
        """INSERT INTO audit.file_issues BY NAME SELECT * FROM (VALUES
        ('run-1','2020/150/moi.xlsx',NULL,'superseded','stale issue of an earlier run [superseded]','superseded'),
        ('run-2','2020/150/cu.xlsx',NULL,'superseded','Đã có tệp nộp lại mới hơn: 2020/150/moi.xlsx [superseded]','superseded'),
        ('run-2','2020/148/htx.xlsx','HTX cũ','superseded','Trang HTX cũ đã được thay bằng bản nộp lại [superseded]','superseded'),
        ('run-2','2021/157/hong.xlsx',NULL,'unreadable_file','Không mở được tệp [unreadable_file]','rejected'),
        ('run-2','2021/Kỳ Sơn/bc.xlsx',NULL,'district_not_valid_for_year','Đơn vị Kỳ Sơn không tồn tại vào năm 2021 [district_not_valid_for_year]','rejected'))
        t(run_id, source_file, sheet, reason_code, reason, severity)"""
    ).fetchall()
    con.execute(
        """INSERT INTO audit.rejected_rows BY NAME SELECT * FROM (VALUES
        ('run-1','2020/148/htx.xlsx','Sheet1',7,'established_on','31/02/2020','invalid_date','Ngày không hợp lệ [invalid_date]'),
        ('run-1','2020/148/htx.xlsx','Sheet1',7,'members','abc','invalid_number','Không phải số [invalid_number]'))
        t(run_id, source_file, sheet, row_number, column_name, raw_value, reason_code, reason)"""
    ).fetchall()
    con.close()
    # arrived after the last run
    _write(raw / "2021/150/new.xlsx", b"f")
    return raw, wh


def _row(status, year, code):
    return next(d for d in status.years[year] if d.district_code == code)


def test_collect_status(setup):
    raw, wh = setup
    st = collect_status(raw, wh)
    assert st.current_year == 2021
    assert sorted(st.years) == [2020, 2021]
    # Kỳ Sơn is not expected after its merger: not listed in 2020 (nothing sent), listed in
    # 2021 only because a file was sent for it (rejected), and never someone to call
    assert [d.district_code for d in st.years[2020]] == ["148", "150", "157", None]
    assert [d.district_code for d in st.years[2021]] == ["148", "150", "151", "157", None]
    r = _row(st, 2021, "151")
    assert not r.expected and [f.source_file for f in r.of("rejected")] == ["2021/Kỳ Sơn/bc.xlsx"]

    r = _row(st, 2020, "148")
    assert r.received and r.rows_loaded == 3 and r.rows_rejected == 1
    assert r.files[0].loaded_at == T1.isoformat(timespec="seconds")

    r = _row(st, 2020, "150")
    assert r.received and r.rows_loaded == 2
    assert [f.source_file for f in r.of("superseded")] == ["2020/150/cu.xlsx"]
    assert not _row(st, 2020, "157").received

    assert _row(st, 2021, "148").received
    r = _row(st, 2021, "150")
    assert not r.received and [f.source_file for f in r.of("pending")] == ["2021/150/new.xlsx"]
    r = _row(st, 2021, "157")
    assert not r.received and [f.source_file for f in r.of("rejected")] == ["2021/157/hong.xlsx"]

    assert [(d.district_code) for d in st.missing_current] == ["150", "157", None]
    assert st.last_run["run_id"] == RUN2


def test_status_text_shows_missing_and_who_to_call(setup, capsys):
    raw, wh = setup
    assert status_command(raw, wh, "text") == 0
    out = capsys.readouterr().out
    assert "superseded: cu.xlsx" in out
    assert "rejected: hong.xlsx — Không mở được tệp [unreadable_file]" in out
    assert "waiting for next run: new.xlsx" in out
    assert "MISSING" in out
    assert "2021/150/new.xlsx" in out
    tail = out[out.index("Who to call"):]
    assert "2021" in tail.splitlines()[0]
    assert "150 Đà Bắc" in tail and "157 Lạc Sơn" in tail
    assert "148" not in tail and "151" not in tail


def test_status_missing_current_year_is_red_in_a_terminal(setup):
    from io import StringIO

    from rich.console import Console

    from coop.status import render_text

    raw, wh = setup
    buf = StringIO()
    render_text(collect_status(raw, wh), Console(file=buf, force_terminal=True, width=200, color_system="standard"))
    out = buf.getvalue()
    line = next(l for l in out.splitlines() if "Lạc Sơn" in l and "hong.xlsx" in l)
    assert "\x1b[1;31m" in line  # bold red
    ok_line = next(l for l in out.splitlines() if "Thành phố Hòa Bình" in l and "bc.csv" in l)
    assert "\x1b[1;31m" not in ok_line


def test_status_json(setup):
    raw, wh = setup
    res = CliRunner().invoke(app, ["status", "--raw-dir", str(raw), "--warehouse", str(wh), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["current_year"] == 2021
    assert [d["district_code"] for d in data["missing_current_year"]] == ["150", "157", None]
    y2020 = next(y for y in data["years"] if y["year"] == 2020)
    d150 = next(d for d in y2020["districts"] if d["district_code"] == "150")
    assert d150["superseded"] == ["2020/150/cu.xlsx"] and d150["rows_loaded"] == 2 and d150["received"]
    d148 = next(d for d in y2020["districts"] if d["district_code"] == "148")
    assert (d148["rows_loaded"], d148["rows_rejected"]) == (3, 1)
    assert d148["superseded"] == [] and d148["superseded_sheets"] == [{"source_file": "2020/148/htx.xlsx", "sheet": "HTX cũ"}]
    assert data["pending_files"] == ["2021/150/new.xlsx"]


def test_status_changed_and_removed_files(setup):
    raw, wh = setup
    (raw / "2020/148/htx.xlsx").write_bytes(b"a-changed")
    (raw / "2021/148/bc.csv").unlink()
    st = collect_status(raw, wh)
    r = _row(st, 2020, "148")
    assert [f.source_file for f in r.of("pending")] == ["2020/148/htx.xlsx"]
    r = _row(st, 2021, "148")
    assert any("removed from the raw folder" in x for x in r.files[0].reasons)


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
    assert data["published"] is False
    assert data["pending_files"] == ["2021/148/a.xlsx"]


def test_status_unicode_forms_of_a_path_are_one_file(setup):
    """The ledger may hold a path in NFC while the disk (or the lineage) has it in NFD."""
    import unicodedata

    raw, wh = setup
    nfc = "2021/Thành phố Hòa Bình/bo-sung.xlsx"
    nfd = unicodedata.normalize("NFD", nfc)
    h = _write(raw / nfd, b"h")
    con = duckdb.connect(str(wh))
    con.execute(
        "INSERT INTO raw.htx (reg_code, name, source_file, sheet, row_number, year, district_code, file_hash, run_id) "
        "VALUES ('7','G',?,'Sheet1',5,2021,'148',?,?), ('8','H',?,'Sheet1',6,2021,'148',?,?)",
        [nfd, h, RUN2, nfd, h, RUN2],
    ).fetchall()
    con.execute(
        "INSERT INTO audit.files BY NAME SELECT * FROM (VALUES (?, ?, 1, 'new', 2021, '148', 2, 0, ?, ?)) "
        "t(source_file, file_hash, size, status, year, district_code, rows_loaded, rows_rejected, first_seen_run, last_run)",
        [nfc, h, RUN2, RUN2],
    ).fetchall()
    con.close()
    r = _row(collect_status(raw, wh), 2021, "148")
    assert [f.status for f in r.files] == ["loaded", "loaded"]
    assert r.rows_loaded == 3


def test_a_file_with_no_usable_row_is_not_a_report(setup):
    """148 sent 2021/148/bc.csv but every row was quarantined: still someone to call."""
    raw, wh = setup
    con = duckdb.connect(str(wh))
    con.execute("DELETE FROM raw.htx WHERE source_file = '2021/148/bc.csv'").fetchall()
    con.execute("UPDATE audit.files SET rows_loaded = 0, rows_rejected = 1 WHERE source_file = '2021/148/bc.csv'").fetchall()
    con.close()
    st = collect_status(raw, wh)
    r = _row(st, 2021, "148")
    assert not r.received and r.rows_rejected == 1
    assert [d.district_code for d in st.missing_current] == ["148", "150", "157", None]
