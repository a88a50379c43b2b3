"""Loading with lineage (coop.warehouse.load): raw.* rows carry source file, sheet, Excel row, file hash
and run id; quarantine and issues land in audit.*; every raw/ref/audit table and column has
a description; audit history is carried over from the published file without writing to it.
Expected values are read off the tiny CSVs written by tests/pipeline_fixture.py."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop.warehouse import load


@pytest.fixture()
def results(tmp_path):
    raw = F.write_raw(tmp_path / "raw")
    files, issues = F.discover(raw, F.load_reference(), None)
    return raw, [F.ingest_file(f, None) for f in files], issues


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_rows_carry_full_lineage(tmp_path, results):
    raw, res, issues = results
    con = load.open_build(tmp_path / "b.duckdb")
    load.create_tables(con, F.load_reference())
    stats = load.load_results(con, res, "run-1", extra_issues=issues)
    got = con.execute("SELECT reg_code, members, source_file, sheet, row_number, year, unit_code, file_hash, run_id "
                      "FROM raw.htx ORDER BY reg_code").fetchall()
    h148, h157 = _sha(raw / "2020/148/htx.csv"), _sha(raw / "2020/157/htx.csv")
    assert got == [
        ("0101", 10, "2020/148/htx.csv", "htx", 2, 2020, "148", h148, "run-1"),
        ("0102", 20, "2020/148/htx.csv", "htx", 3, 2020, "148", h148, "run-1"),
        ("0201", 7, "2020/157/htx.csv", "htx", 2, 2020, "157", h157, "run-1"),
        ("0202", 3, "2020/157/htx.csv", "htx", 3, 2020, "157", h157, "run-1"),
    ]
    # types of the contract survive the Arrow load
    assert con.execute("SELECT established_on, high_tech FROM raw.htx WHERE reg_code='0101'").fetchall() == [
        (date(2020, 3, 1), True)]
    assert con.execute("SELECT run_id, source_file, sheet, row_number, column_name, raw_value, reason_code, year, "
                       "unit_code FROM audit.rejected_rows").fetchall() == [
        ("run-1", "2020/148/htx.csv", "htx", 4, "members", "-5", "negative_value", 2020, "148")]
    assert con.execute("SELECT run_id, source_file, sheet, reason_code, severity FROM audit.file_issues").fetchall() == [
        ("run-1", "notes.txt", None, "misplaced_file", "rejected")]
    assert (stats.rows_loaded, stats.rows_rejected) == (4, 1)
    assert stats.files["2020/148/htx.csv"].rows_loaded == 2 and stats.files["2020/148/htx.csv"].rows_rejected == 1
    con.close()


def test_every_raw_ref_audit_table_and_column_is_described(tmp_path):
    con = load.open_build(tmp_path / "b.duckdb")
    load.create_tables(con)
    tables = con.execute("SELECT schema_name, table_name, comment FROM duckdb_tables() "
                         "WHERE schema_name IN ('raw','ref','audit')").fetchall()
    names = {f"{s}.{t}" for s, t, _ in tables}
    assert {"raw.htx", "raw.tht", "raw.ho_tro", "raw.chi_tieu", "ref.districts", "ref.settings",
            "audit.runs", "audit.file_issues", "audit.rejected_rows", "audit.files"} <= names
    assert [n for s, t, c in tables if not c for n in [f"{s}.{t}"]] == []
    undocumented = con.execute("SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
                               "WHERE schema_name IN ('raw','ref','audit') AND (comment IS NULL OR comment = '')").fetchall()
    assert undocumented == []
    # the contract's audit columns exist
    cols = {(t, c) for t, c in con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                                            "WHERE schema_name='audit'").fetchall()}
    for c in ("run_id", "started_at", "finished_at", "status", "files_seen", "files_loaded", "rows_loaded", "rows_rejected"):
        assert ("runs", c) in cols
    for c in ("run_id", "source_file", "sheet", "row_number", "column_name", "raw_value", "reason"):
        assert ("rejected_rows", c) in cols
    con.close()


def test_ref_tables_and_settings(tmp_path):
    con = load.open_build(tmp_path / "b.duckdb")
    load.create_tables(con, F.load_reference())
    assert con.execute("SELECT district_code, district_name, province_code, valid_to FROM ref.districts "
                       "WHERE district_code IN ('148', '151', '157') ORDER BY 1").fetchall() == [
        ("148", "Thành phố Hòa Bình", "17", date(2025, 7, 1)), ("151", "Kỳ Sơn", "17", date(2020, 1, 1)),
        ("157", "Lạc Sơn", "17", date(2025, 7, 1))]
    # units over time: the districts of the three former provinces and today's 148 communes
    assert con.execute("SELECT level, count(*) FROM ref.units GROUP BY 1 ORDER BY 1").fetchall() == [
        ("commune", 148), ("district", 33)]
    assert con.execute("SELECT unit_name, area_code, province_code FROM ref.units WHERE unit_code = '05266'"
                       ).fetchall() == [("Xã Lạc Sơn", "17", "25")]
    assert con.execute("SELECT count(DISTINCT old_province_code), count(DISTINCT new_commune_code) "
                       "FROM ref.commune_lineage").fetchall() == [(3, 148)]
    assert con.execute("SELECT value FROM ref.settings WHERE key='backlog_window_years'").fetchall() == [("3",)]
    con.close()


def test_build_file_is_readable_by_duckdb_1_5_storage(tmp_path):
    con = load.open_build(tmp_path / "b.duckdb")
    tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'b'").fetchall()[0][0]
    con.close()
    assert tags["storage_version"].startswith("v1.5")


def test_build_connection_bounds_duckdb_memory(tmp_path, monkeypatch):
    """DuckDB's default is 80 % of the machine; a build spills beyond 512 MB instead (national scale)."""
    def limit() -> str:
        con = load.open_build(tmp_path / f"b{len(list(tmp_path.iterdir()))}.duckdb")
        try:
            return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        finally:
            con.close()

    monkeypatch.delenv("COOP_BUILD_MEMORY_LIMIT", raising=False)
    assert limit() == "488.2 MiB"  # 512 MB as DuckDB prints it
    con = load.open_build(tmp_path / "quiet.duckdb")  # and no progress bar on the run's console
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    con.close()
    monkeypatch.setenv("COOP_BUILD_MEMORY_LIMIT", "2GB")
    assert limit() == "1.8 GiB"
    monkeypatch.setenv("COOP_BUILD_MEMORY_LIMIT", "")
    default = duckdb.connect(":memory:").execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit() == default


def test_audit_history_is_carried_from_the_published_file(tmp_path, results):
    _, res, issues = results
    pub = tmp_path / "coop.duckdb"
    con = load.open_build(pub)
    load.create_tables(con)
    load.load_results(con, res, "run-1", extra_issues=issues)
    load.record_runs(con, [load.RunRecord("run-1", datetime(2021, 1, 1, tzinfo=timezone.utc),
                                          datetime(2021, 1, 1, 0, 5, tzinfo=timezone.utc), rows_loaded=4, rows_rejected=1)])
    con.execute("CHECKPOINT").fetchall()
    con.close()
    before = _sha(pub)

    con = load.open_build(tmp_path / "build")
    load.create_tables(con)
    assert load.carry_audit_history(con, pub) == 1
    load.load_results(con, res, "run-2", extra_issues=issues)
    load.record_runs(con, [load.RunRecord("run-2", datetime(2021, 1, 2, tzinfo=timezone.utc))])
    assert con.execute("SELECT run_id, rows_loaded FROM audit.runs ORDER BY run_id").fetchall() == [
        ("run-1", 4), ("run-2", 0)]
    assert con.execute("SELECT run_id, count(*) FROM audit.rejected_rows GROUP BY 1 ORDER BY 1").fetchall() == [
        ("run-1", 1), ("run-2", 1)]
    # raw rows are never carried: a build holds only what it loaded
    assert con.execute("SELECT DISTINCT run_id FROM raw.htx").fetchall() == [("run-2",)]
    con.close()
    assert _sha(pub) == before  # the published file was only read
