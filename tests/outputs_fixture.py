"""A tiny hand-made warehouse with the output contract's tables, for the outputs tests.

The figures are chosen by hand (see the literals below); tests compare what the report,
the feedback and the dictionary show against these literals or against queries of this
file, never against the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

IND_COLS = (
    "new_formed BIGINT, active_count BIGINT, members BIGINT, workers BIGINT, avg_revenue_mvnd DOUBLE, "
    "avg_profit_mvnd DOUBLE, avg_income_mvnd_month DOUBLE, revenue_growth_pct DOUBLE, income_growth_pct DOUBLE, "
    "ocop_count BIGINT, high_tech_count BIGINT"
)

DDL = f"""
CREATE SCHEMA marts; CREATE SCHEMA core; CREATE SCHEMA audit;
CREATE TABLE marts.province_indicators (year INTEGER, entity_type VARCHAR, {IND_COLS});
CREATE TABLE marts.district_indicators (year INTEGER, district_code VARCHAR, district_name VARCHAR, entity_type VARCHAR, {IND_COLS});
CREATE TABLE marts.sector_indicators (year INTEGER, sector VARCHAR, entity_type VARCHAR, {IND_COLS});
CREATE TABLE marts.funding_backlog (year INTEGER, district_code VARCHAR, district_name VARCHAR, reg_code VARCHAR,
    name VARCHAR, established_on DATE, waiting_days INTEGER);
CREATE TABLE marts.plan_vs_actual (year INTEGER, indicator_code VARCHAR, target_min DOUBLE, target_max DOUBLE,
    actual DOUBLE, status VARCHAR);
CREATE TABLE core.dim_district (district_code VARCHAR, district_name VARCHAR, valid_from DATE, valid_to DATE);
CREATE TABLE audit.runs (run_id VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR,
    files_seen INTEGER, files_loaded INTEGER, rows_loaded BIGINT, rows_rejected BIGINT);
CREATE TABLE audit.file_issues (run_id VARCHAR, source_file VARCHAR, sheet VARCHAR, reason VARCHAR);
CREATE TABLE audit.rejected_rows (run_id VARCHAR, source_file VARCHAR, sheet VARCHAR, row_number BIGINT,
    column_name VARCHAR, raw_value VARCHAR, reason VARCHAR);
COMMENT ON TABLE marts.province_indicators IS 'Chỉ tiêu toàn tỉnh — province indicators. Grain: year × entity_type.';
COMMENT ON COLUMN marts.province_indicators.year IS 'Năm báo cáo — report year';
COMMENT ON COLUMN marts.province_indicators.avg_revenue_mvnd IS 'Doanh thu bình quân — mean revenue, million VND a year';
"""

PROVINCE = [
    # year, type, new, active, members, workers, rev, profit, income, rev_g, inc_g, ocop, high_tech
    (2019, "HTX", 50, 400, 12000, 9000, 3000.0, 380.0, 3.8, None, None, 10, 12),
    (2019, "THT", 15, 190, 2800, 2500, 560.0, 50.0, 1.3, None, None, None, None),
    (2020, "HTX", 66, 422, 12700, 9800, 3240.0, 401.0, 4.0, 8.0, 5.263, 14, 18),
    (2020, "THT", 20, 203, 3012, 2700, 581.0, 52.0, 1.4, 3.75, 7.69, None, None),
]
DISTRICT = [
    (2020, "148", "Thành phố Hòa Bình", "HTX", 40, 250, 7700, 6000, 3500.5, 420.25, 4.2, 5.0, 2.0, 9, 11),
    (2020, "157", "Lạc Sơn", "HTX", 26, 172, 5000, 3800, 2862.0, 373.4, 3.7, 12.0, 9.1, 5, 7),
    (2020, "148", "Thành phố Hòa Bình", "THT", 12, 120, 1800, 1600, 600.0, 55.0, 1.5, None, None, None, None),
    (2020, "157", "Lạc Sơn", "THT", 8, 83, 1212, 1100, 553.5, 47.7, 1.25, None, None, None, None),
]
SECTOR = [
    (2020, "agriculture", "HTX", 30, 300, 9000, 7000, 2800.0, 300.0, 3.9, None, None, 14, 18),
    (2020, "transport", "HTX", 36, 120, 3650, 2780, 4321.99, 649.3, 4.25, None, None, 0, 0),
    (2020, "credit_fund", "HTX", 0, 2, 50, 20, 900.0, 80.0, 6.0, None, None, 0, 0),
    (2020, "agriculture", "THT", 20, 203, 3012, 2700, 581.0, 52.0, 1.4, None, None, None, None),
]
BACKLOG = [
    (2020, "148", "Thành phố Hòa Bình", "5400123456", "HTX Nông nghiệp Thống Nhất", "2018-03-15", 1022),
    (2020, "148", "Thành phố Hòa Bình", "5400999001", "=HYPERLINK(\"http://x\")", "2020-06-30", 184),
    (2020, "157", "Lạc Sơn", "5400777001", "HTX Dịch vụ Ân Nghĩa", "2019-12-31", 366),
    (2019, "157", "Lạc Sơn", "5400777001", "HTX Dịch vụ Ân Nghĩa", "2019-12-31", 0),
]
PLAN = [
    (2020, "new_htx", 60, None, 66, "met"),
    (2020, "new_tht", 25, 25, 20, "not_met"),
    (2020, "htx_revenue_growth_pct", 6, 8, 8.0, "met"),
    (2020, "training_turns", 500, 500, None, "no_data"),
    (2021, "new_htx", 65, None, None, "no_data"),
    (2021, "new_tht", 15, 15, None, "no_data"),
    (2021, "htx_revenue_growth_pct", 6, 8, None, "no_data"),
    (2021, "htx_income_growth_pct", 3, 5, None, "no_data"),
    (2021, "training_turns", 500, 500, None, "no_data"),
    (2021, "high_tech_htx", 20, 20, None, "no_data"),
]
DISTRICTS = [
    ("148", "Thành phố Hòa Bình", "1900-01-01", None),
    ("151", "Kỳ Sơn", "1900-01-01", "2020-01-01"),
    ("157", "Lạc Sơn", "1900-01-01", None),
]


def make_fixture_warehouse(path: Path, *, rejected=(), file_issues=()) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN")
        for stmt in DDL.split(";"):
            if stmt.strip():
                con.execute(stmt)
        con.executemany("INSERT INTO marts.province_indicators VALUES (" + ",".join("?" * 13) + ")", PROVINCE)
        con.executemany("INSERT INTO marts.district_indicators VALUES (" + ",".join("?" * 15) + ")", DISTRICT)
        con.executemany("INSERT INTO marts.sector_indicators VALUES (" + ",".join("?" * 14) + ")", SECTOR)
        con.executemany("INSERT INTO marts.funding_backlog VALUES (?,?,?,?,?,?::DATE,?)", BACKLOG)
        con.executemany("INSERT INTO marts.plan_vs_actual VALUES (?,?,?,?,?,?)", PLAN)
        con.executemany("INSERT INTO core.dim_district VALUES (?,?,?::DATE,?::DATE)", DISTRICTS)
        con.execute(
            "INSERT INTO audit.runs VALUES ('r1', TIMESTAMP '2021-01-10 01:00', TIMESTAMP '2021-01-10 01:02', "
            "'published', 10, 9, 1000, ?)",
            [len(rejected)],
        )
        if rejected:
            con.executemany("INSERT INTO audit.rejected_rows VALUES ('r1',?,?,?,?,?,?)", list(rejected))
        if file_issues:
            con.executemany("INSERT INTO audit.file_issues VALUES ('r1',?,?,?)", list(file_issues))
        con.execute("COMMIT")
    finally:
        con.close()
    return path


# ------------------------------------------------------------------ the real sample province
PROJECT = Path(__file__).resolve().parent.parent
_SAMPLE: dict[str, Any] = {}


@dataclass(frozen=True)
class SampleBuild:
    """The sample province (`data/raw`) after one real `coop run`: `rc` its exit code, `summary`
    its console summary (140 columns)."""

    raw: Path
    wh: Path
    rc: int
    summary: str


#: Code fingerprints pinned for the shared build (and for any later run on a copy of it):
#: colleagues editing the reader or the SQL while the suite runs must not turn a second run
#: into a rebuild.
PINNED = {"reader_fingerprint": "pinned-reader", "sql_fingerprint": "pinned-sql"}


def pin_fingerprints(mp) -> None:
    """Pin coop.run.planning's code fingerprints to `PINNED` (`mp`: a pytest MonkeyPatch)."""
    from coop.run import planning

    mp.setattr(planning, "reader_fingerprint", lambda: PINNED["reader_fingerprint"])
    mp.setattr(planning, "sql_fingerprint", lambda *a, **k: PINNED["sql_fingerprint"])


def build_sample(base: Path) -> SampleBuild:
    """`coop run` (run_command, the CLI's function) over the committed sample into `base`, in
    this process: the caller provides the Prefect API (the `prefect_harness` fixture). Built
    once per session (the `sample_build` fixture of tests/conftest.py); `sample_warehouse()`
    then returns the same file. The process environment is restored afterwards."""
    if "build" in _SAMPLE:
        return _SAMPLE["build"]
    import io
    import os

    import pytest
    from rich.console import Console

    import coop.run.runner as runner

    raw = PROJECT / "data" / "raw"
    assert any(raw.glob("*/*/*")), f"the committed sample is missing from {raw} (make sample)"
    wh = Path(base) / "wh" / "coop.duckdb"
    buf = io.StringIO()
    orig = runner.print_summary
    env = dict(os.environ)
    try:
        with pytest.MonkeyPatch.context() as mp:
            pin_fingerprints(mp)
            mp.setattr(runner, "print_summary", lambda s, c, t=None: orig(s, Console(file=buf, width=140), t))
            rc = runner.run_command(raw, wh, None, False)
    finally:  # run_command sets Prefect's quiet/offline variables: none leaks into later tests
        os.environ.clear()
        os.environ.update(env)
    assert rc == 0 and wh.exists(), f"coop run failed (exit {rc}):\n{buf.getvalue()[-3000:]}"
    build = SampleBuild(raw=raw, wh=wh, rc=rc, summary=buf.getvalue())
    _SAMPLE.update(build=build, wh=wh, raw=raw)
    return build


def sample_warehouse() -> Path:
    """The sample province (`data/raw`) through `coop run`, built once per test process: the
    `sample_build` fixture's warehouse when it has been built, else a `coop run` subprocess.
    Prefer the `sample_build` fixture (one build for the whole session)."""
    import subprocess
    import sys
    import tempfile

    if "wh" in _SAMPLE:
        return _SAMPLE["wh"]
    raw = PROJECT / "data" / "raw"
    assert any(raw.glob("*/*/*")), f"the committed sample is missing from {raw} (make sample)"
    if "error" in _SAMPLE:
        raise AssertionError(_SAMPLE["error"])
    tmp = Path(tempfile.mkdtemp(prefix="coop-outputs-"))
    wh = tmp / "coop.duckdb"
    res = subprocess.run(
        [sys.executable, "-m", "coop.cli", "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
        capture_output=True, text=True, timeout=900, cwd=str(tmp),
    )
    if res.returncode != 0 or not wh.exists():
        _SAMPLE["error"] = f"coop run failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        raise AssertionError(_SAMPLE["error"])
    _SAMPLE["wh"] = wh
    _SAMPLE["raw"] = raw
    return wh
