"""The sample province through `coop run` (run_command, the CLI's function) equals the figures
computed from the generator's ground truth by tests/truth.py — province, district and sector
indicators, the funding backlog list, plan vs actual — and shows the article's 2020 figures.
A second run reads no spreadsheet and leaves the warehouse as it was."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import duckdb
import pytest

import truth as T


@pytest.fixture(scope="module")
def sample_run(sample_build):
    """The session's one sample build (tests/conftest.py `sample_build`: data/raw through
    run_command, code fingerprints pinned) and the committed ground truth. The committed files
    and truth are those of a fresh generation
    (test_sample.py::test_committed_truth_and_files_match_a_fresh_generation)."""
    b = sample_build
    return b.raw, b.wh, T.load(), b.rc, b.summary


def _rows(wh: Path, sql: str) -> list[dict]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _compare(got: dict[tuple, dict], want: dict[tuple, dict]) -> list[str]:
    problems = []
    if set(got) != set(want):
        problems.append(f"keys differ: only in warehouse {sorted(set(got) - set(want))[:5]}, "
                        f"only in truth {sorted(set(want) - set(got))[:5]}")
    for k in sorted(set(got) & set(want), key=str):
        for col in T.INDICATORS:
            if not _same(got[k][col], want[k][col]):
                problems.append(f"{k} {col}: warehouse {got[k][col]!r} truth {want[k][col]!r}")
    return problems


def test_run_published(sample_run):
    *_, rc, out = sample_run
    assert rc == 0, out


def test_province_indicators_equal_truth(sample_run):
    _, wh, truth, *_ = sample_run
    # the province as it was that year (17/25/26 up to 2024, 25 from 2025)
    got = {(r["year"], r["province_code"], r["entity_type"]): r
           for r in _rows(wh, "SELECT * FROM marts.province_indicators")}
    assert _compare(got, T.province_indicators_by_province(truth)) == []
    # the whole warehouse (today's province restated) is every row of the year
    got = {(r["year"], r["entity_type"]): r for r in _rows(wh, "SELECT * FROM marts.total_indicators")}
    assert _compare(got, T.province_indicators(truth)) == []


def test_unit_marts_equal_truth(sample_run):
    _, wh, truth, *_ = sample_run
    got = {(r["year"], r["area_code"], r["entity_type"]): r for r in _rows(wh, "SELECT * FROM marts.area_indicators")}
    assert _compare(got, T.area_indicators(truth)) == []
    got = {(r["year"], r["commune_code"], r["entity_type"]): r
           for r in _rows(wh, "SELECT * FROM marts.commune_indicators")}
    assert _compare(got, T.commune_indicators(truth)) == []
    cur = {(r["year"], r["entity_type"]): r for r in _rows(wh, "SELECT * FROM marts.current_province_indicators")}
    want = T.current_province_indicators(truth)
    assert _compare(cur, want) == []
    assert {k: (v["complete"], v["areas_missing"]) for k, v in cur.items()} == \
        {k: (v["complete"], ",".join(v["areas_missing"]) or None) for k, v in want.items()}


def test_district_indicators_equal_truth(sample_run):
    _, wh, truth, *_ = sample_run
    got = {(r["year"], r["district_code"], r["entity_type"]): r for r in _rows(wh, "SELECT * FROM marts.district_indicators")}
    assert _compare(got, T.district_indicators(truth)) == []


def test_sector_indicators_equal_truth(sample_run):
    _, wh, truth, *_ = sample_run
    got = {(r["year"], r["sector"], r["entity_type"]): r for r in _rows(wh, "SELECT * FROM marts.sector_indicators")}
    assert _compare(got, T.sector_indicators(truth)) == []


@pytest.mark.parametrize("year", list(range(2018, 2027)))
def test_funding_backlog_equals_truth(sample_run, year):
    _, wh, truth, *_ = sample_run
    got = _rows(wh, f"SELECT year, unit_code, district_code, area_code, reg_code, established_on, waiting_days "
                    f"FROM marts.funding_backlog WHERE year = {year}")
    want = T.funding_backlog(year, truth)
    key = ("unit_code", "district_code", "area_code", "reg_code", "established_on", "waiting_days")
    assert sorted(tuple(r[k] for k in key) for r in got) == sorted(tuple(r[k] for k in key) for r in want)


def test_plan_vs_actual_equals_truth(sample_run):
    _, wh, truth, *_ = sample_run
    got = {(r["year"], r["indicator_code"]): r for r in _rows(wh, "SELECT * FROM marts.plan_vs_actual")}
    want = {(r["year"], r["indicator_code"]): r for r in T.plan_vs_actual(truth)}
    assert set(got) == set(want)
    for k, w in want.items():
        for col in ("target_min", "target_max", "actual", "status"):
            assert _same(got[k][col], w[col]), (k, col, got[k][col], w[col])


def test_article_figures_2020(sample_run):
    """The seed article (Báo Hòa Bình, January 2021), figures typed in from the article."""
    _, wh, truth, _, out = sample_run
    p = {r["entity_type"]: r for r in _rows(wh, "SELECT * FROM marts.province_indicators "
                                                "WHERE year = 2020 AND province_code = '17'")}
    htx, tht = p["HTX"], p["THT"]
    assert (htx["new_formed"], htx["active_count"]) == (66, 422)
    assert round(htx["members"] / 1000, 1) == 12.7
    assert (round(htx["avg_revenue_mvnd"]), round(htx["avg_profit_mvnd"]), round(htx["avg_income_mvnd_month"], 1)) == (3240, 401, 4.0)
    assert (tht["new_formed"], tht["active_count"]) == (20, 203)
    assert 3000 <= tht["members"] < 3100
    assert (round(tht["avg_revenue_mvnd"]), round(tht["avg_profit_mvnd"]), round(tht["avg_income_mvnd_month"], 1)) == (581, 52, 1.4)
    assert _rows(wh, "SELECT count(*) AS n FROM marts.funding_backlog WHERE year = 2020") == [{"n": 119}]
    # the console summary shows today's province in the latest COMPLETE year (every expected unit
    # reported; the later incomplete years named) and the former Hòa Bình area's series (2020:
    # 422 active, 66 new)
    text = " ".join(out.split())
    cur_all = T.current_province_indicators(truth)
    last = max(y for (y, e), v in cur_all.items() if v["complete"])
    cur = cur_all[(last, "HTX")]
    assert f"Phú Thọ {last} (latest complete year;" in text and f" {cur['active_count']} " in text
    for y in sorted({y for (y, e), v in cur_all.items() if y > last}):
        assert f"{y} incomplete: " in text
    assert "17 Hòa Bình" in text and "422 (66)" in text and "454 (48)" in text
    assert f"backlog at 31/12/{last}: {len(T.funding_backlog(last, truth))} HTX formed {last - 2}–{last}" in text


def test_every_row_has_lineage_and_descriptions(sample_run):
    _, wh, *_ = sample_run
    for t in ("raw.htx", "raw.tht", "raw.ho_tro", "raw.chi_tieu"):
        bad = _rows(wh, f"SELECT count(*) AS n FROM {t} WHERE source_file IS NULL OR sheet IS NULL OR row_number IS NULL "
                        "OR file_hash IS NULL OR run_id IS NULL OR year IS NULL")
        assert bad == [{"n": 0}], t
    assert _rows(wh, "SELECT count(*) AS n FROM duckdb_columns() WHERE schema_name IN ('raw','ref','audit','core','marts') "
                     "AND (comment IS NULL OR comment = '')") == [{"n": 0}]


def test_quarantine_matches_planted_invalid_rows(sample_run):
    _, wh, truth, *_ = sample_run
    got = {(r["source_file"], r["row_number"]) for r in _rows(
        wh, "SELECT source_file, row_number FROM audit.rejected_rows")}
    want = {(r["source_file"], r["row_number"]) for r in truth.invalid_rows}
    assert got == want


def test_second_run_reads_nothing(sample_run, monkeypatch):
    from coop.run.runner import run_command
    import coop.ingest.normalize

    from outputs_fixture import pin_fingerprints

    # on the shared build itself, not a copy: a copied file is another inode, which a run takes
    # for a warehouse replaced behind its back (and rebuilds). A run with nothing to do leaves
    # the published file byte-identical (asserted here, and by the `sample_build` fixture)
    raw, wh, *_ = sample_run
    before = hashlib.sha256(wh.read_bytes()).hexdigest()

    def boom(*a, **k):
        raise AssertionError("a spreadsheet was read")

    pin_fingerprints(monkeypatch)  # the code fingerprints the first run was built with
    monkeypatch.setattr(coop.ingest.normalize, "ingest_file", boom)
    monkeypatch.setattr(coop.ingest.normalize, "ingest_path", boom)
    assert run_command(raw, wh, None, False) == 0
    assert hashlib.sha256(wh.read_bytes()).hexdigest() == before
