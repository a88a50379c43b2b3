"""Run report file content (the progress display: tests/test_progress_lines.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from coop.outputs.run_report import (
    RunSummary,
    quarantine_by_reason,
    render_run_report,
    summary_table,
    write_run_report,
)


def _summary() -> RunSummary:
    return RunSummary(
        run_id="abc123",
        kind="nightly",
        status="published",
        started_at=datetime(2026, 11, 26, 18, 0, 0, tzinfo=timezone.utc),
        finished_at=datetime(2026, 11, 26, 18, 0, 42, tzinfo=timezone.utc),
        raw_dir="data/raw",
        warehouse="data/warehouse/coop.duckdb",
        files={
            "new": ["2021/157/htx.xlsx", "2021/150/ds.csv"],
            "changed": ["2020/148/bao-cao.xlsx"],
            "removed": ["2019/151/old.xls"],
            "unchanged": ["2018/148/a.xlsx", "2018/150/b.xlsx", "2018/152/c.ods"],
        },
        districts=[
            {"year": 2021, "unit_code": "157", "unit_name": "Lạc Sơn", "rows_loaded": 40, "rows_rejected": 2},
            {"year": 2020, "unit_code": "148", "unit_name": "Thành phố Hòa Bình", "rows_loaded": 1234, "rows_rejected": 0},
            {"year": 2021, "unit_code": None, "unit_name": None, "rows_loaded": 6, "rows_rejected": 0},
        ],
        quarantine=quarantine_by_reason(["invalid_date", "invalid_number", "invalid_date"]),
        file_issues=[
            {"source_file": "2021/150/cu.xlsx", "sheet": None, "reason_code": "superseded",
             "reason": "Đã được thay bằng 2021/150/ds.csv [superseded]", "severity": "superseded"},
        ],
        tests=[
            {"name": "unique_htx_reg_code", "severity": "error", "passed": True, "failing_rows": 0},
            {"name": "district_totals_add_up", "severity": "warn", "passed": False, "failing_rows": 3,
             "message": "3 district totals differ from the province"},
        ],
        timings={"discover": 0.5, "reading": 30.25, "loading": 4.0, "models": 5.0, "tests": 1.25, "publish": 1.0},
    )


def test_report_markdown_content():
    md = render_run_report(_summary())
    assert md.startswith("# coop nightly run abc123\n")
    assert "✅ published" in md
    assert "**Duration:** 42.0 s" in md
    # file counts: 2 new, 1 changed, 1 removed, 3 unchanged; names of new/changed/removed listed
    assert "| new | 2 |" in md and "| changed | 1 |" in md
    assert "| removed | 1 |" in md and "| unchanged | 3 |" in md
    assert "- `2021/157/htx.xlsx`" in md and "- `2019/151/old.xls`" in md
    assert "2018/148/a.xlsx" not in md  # unchanged files are only counted
    # rows per reporting unit (sorted by year then unit), province shown as such
    assert "| 2020 | 148 | Thành phố Hòa Bình | 1,234 | 0 |" in md
    assert "| 2021 | 157 | Lạc Sơn | 40 | 2 |" in md
    assert "| 2021 | province |  | 6 | 0 |" in md
    assert md.index("| 2020 | 148") < md.index("| 2021 | 157") < md.index("| 2021 | province")
    assert "**Rows loaded:** 1,280" in md and "**Rows quarantined:** 2" in md
    # quarantine by reason, most frequent first
    assert "| invalid_date | 2 |" in md and "| invalid_number | 1 |" in md
    assert md.index("| invalid_date | 2 |") < md.index("| invalid_number | 1 |")
    assert "`2021/150/cu.xlsx` | (whole file) | superseded |" in md
    # tests: the words of the console and the artifacts (a warn-level test that did not pass
    # "warned", not "failed"), failures first, with their message
    assert "2 data tests: 1 passed, 1 warned, 0 failed." in md
    assert "| district_totals_add_up | warn | WARN | 3 |" in md
    assert "| unique_htx_reg_code | error | pass | 0 |" in md
    assert "3 district totals differ from the province" in md
    # timings and total (0.5+30.25+4+5+1.25+1 = 42.0)
    assert "| reading | 30.25 s |" in md and "| total | 42.00 s |" in md


def test_failed_run_report_says_nothing_was_published():
    md = render_run_report({"run_id": "x1", "status": "failed", "error": "data test unique_htx_reg_code failed"})
    assert "failed — nothing published" in md
    assert "data test unique_htx_reg_code failed" in md
    assert "Nothing read in this run." in md and "Not run." in md


def test_write_run_report_file(tmp_path):
    wh = tmp_path / "warehouse" / "coop.duckdb"
    s = _summary()
    path = write_run_report(s, wh)
    assert path == tmp_path / "warehouse" / "reports" / "run-20261126T180000Z-abc123.md"
    assert path.read_text(encoding="utf-8") == render_run_report(s)
    assert s.report_path == str(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_summary_table_rows():
    rows = summary_table(_summary())
    assert {"year": 2021, "unit": "157", "name": "Lạc Sơn", "rows_loaded": 40, "rows_quarantined": 2} in rows
    assert len(rows) == 3


# the progress display (counter lines, bar, ticks from threads): tests/test_progress_lines.py


def test_report_file_name_does_not_repeat_a_timestamp_the_run_id_carries():
    from datetime import datetime, timezone

    from coop.outputs.run_report import report_file_name

    started = datetime(2026, 11, 27, 0, 31, 54, tzinfo=timezone.utc)
    assert report_file_name({"run_id": "20261127T003154Z-dc3bd5", "started_at": started}) == "run-20261127T003154Z-dc3bd5.md"
    assert report_file_name({"run_id": "abc123", "started_at": started}) == "run-20261127T003154Z-abc123.md"
