"""Every indicator rule of ../shared/spec/warehouse.md on the hand-made fixture of
tests/warehouse_fixture.py. Expected figures are computed by hand in the comments."""

from __future__ import annotations

import json
import math
from datetime import date

import duckdb
import polars as pl
import pytest
from pytest import approx

from coop.models import create_input_tables, run_models
import warehouse_fixture as fx

IND = ["new_formed", "active_count", "members", "workers", "avg_revenue_mvnd", "avg_profit_mvnd",
       "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct", "ocop_count", "high_tech_count"]


@pytest.fixture(scope="module")
def con():
    c = fx.build()
    run_models(c)
    yield c
    c.close()


def rows(con, sql, params=None):
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def by_key(con, table, keys):
    return {tuple(r[k] for k in keys): r for r in rows(con, f"SELECT * FROM {table}")}


def check(got: dict, expected: dict):
    for k, v in expected.items():
        if isinstance(v, float):
            assert got[k] == approx(v), k
        else:
            assert got[k] == v, k


# ----------------------------------------------------------------------------- province


def test_province_grain_and_no_line_without_rows(con):
    p = by_key(con, "marts.province_indicators", ["year", "entity_type"])
    # THT has no 2021 rows -> no 2021 THT line
    assert set(p) == {(2019, "HTX"), (2019, "THT"), (2020, "HTX"), (2020, "THT"), (2021, "HTX")}


def test_province_htx_2019(con):
    p = by_key(con, "marts.province_indicators", ["year", "entity_type"])[(2019, "HTX")]
    check(p, {
        "new_formed": 2,            # B1 (2019, active) and C1 (2019, dissolved): any status
        "active_count": 2,          # A1, B1
        "members": 30,              # 10 + 20 (C1 dissolved not counted)
        "workers": 5,               # A1 5; B1 null counts as nothing
        "avg_revenue_mvnd": 100.0,  # only A1 reports revenue among active (B1 null, C1 dissolved)
        "avg_profit_mvnd": 2.5,     # (10 + -5) / 2
        "avg_income_mvnd_month": 2.8,  # A1 2.0 x workers 5 + B1 3.0 x members 20 (no workers) = 70 / 25
        "revenue_growth_pct": None,  # no 2018 rows
        "income_growth_pct": None,
        "ocop_count": 1,            # A1 (C1 has OCOP but is dissolved)
        "high_tech_count": 1,       # A1 (C1 dissolved)
    })


def test_province_htx_2020(con):
    p = by_key(con, "marts.province_indicators", ["year", "entity_type"])[(2020, "HTX")]
    check(p, {
        "new_formed": 2,            # D1 (suspended) and E1, established 2020
        "active_count": 5,          # A1 B1 E1 F1 H1
        "members": 43,              # 12 + 20 + 5 + 4 + 2
        "workers": 8,               # 6 + 0 + 2 (F1, H1 null)
        "avg_revenue_mvnd": 400 / 3,  # (150 + 50 + 200) / 3 reporting rows
        "avg_profit_mvnd": 12.5,    # (20 + 5) / 2
        # A1 2.5 x 6; B1 workers reported 0 -> w = 0 -> excluded (no fallback to members);
        # E1 no income; F1 5.0 x members 4 (workers null); H1 no income -> (15 + 20) / (6 + 4)
        "avg_income_mvnd_month": 3.5,
        "revenue_growth_pct": (400 / 3 / 100 - 1) * 100,  # 33.33...
        "income_growth_pct": 25.0,  # 3.5 / 2.8 - 1
        "ocop_count": 2,            # A1 (3 stars), B1 (5 stars)
        "high_tech_count": 2,       # A1, E1
    })


def test_province_htx_2021_negative_growth(con):
    p = by_key(con, "marts.province_indicators", ["year", "entity_type"])[(2021, "HTX")]
    check(p, {
        "new_formed": 0, "active_count": 2, "members": 15, "workers": 9,
        "avg_revenue_mvnd": 90.0,                 # (150 + 30) / 2
        "avg_profit_mvnd": 11.5,                  # (20 + 3) / 2
        "avg_income_mvnd_month": 21 / 9,          # (2.5x6 + 2.0x3) / 9
        "revenue_growth_pct": -32.5,              # 90 / 133.33 - 1
        "income_growth_pct": (21 / 9 / 3.5 - 1) * 100,  # -33.33
        "ocop_count": 1, "high_tech_count": 1,
    })


def test_province_tht_ocop_high_tech_null_and_all_null_values(con):
    p = by_key(con, "marts.province_indicators", ["year", "entity_type"])
    check(p[(2019, "THT")], {"new_formed": 1, "active_count": 1, "members": 10, "workers": 4,
                             "avg_revenue_mvnd": 60.0, "avg_profit_mvnd": 6.0, "avg_income_mvnd_month": 1.0,
                             "ocop_count": None, "high_tech_count": None})
    # 2020: T2 reports nothing but members; no value -> null averages, null growth (Y has no value)
    check(p[(2020, "THT")], {"new_formed": 0, "active_count": 1, "members": 8, "workers": None,
                             "avg_revenue_mvnd": None, "avg_profit_mvnd": None, "avg_income_mvnd_month": None,
                             "revenue_growth_pct": None, "income_growth_pct": None,
                             "ocop_count": None, "high_tech_count": None})


# ----------------------------------------------------------------------------- district


def test_district_lines_and_merged_district(con):
    d = by_key(con, "marts.district_indicators", ["year", "district_code", "entity_type"])
    assert set(d) == {
        (2019, "148", "HTX"), (2019, "148", "THT"), (2019, "151", "HTX"),
        (2020, "148", "HTX"), (2020, "148", "THT"), (2020, "157", "HTX"),
        (2021, "148", "HTX"), (2021, "157", "HTX"),
    }
    # Kỳ Sơn (151) only in 2019, the year it existed and reported
    assert d[(2019, "151", "HTX")]["district_name"] == "Kỳ Sơn"
    assert d[(2020, "148", "HTX")]["district_name"] == "Thành phố Hòa Bình"


def test_district_figures(con):
    d = by_key(con, "marts.district_indicators", ["year", "district_code", "entity_type"])
    # 2019 148 HTX: B1 (active) and C1 (dissolved)
    check(d[(2019, "148", "HTX")], {"new_formed": 2, "active_count": 1, "members": 20, "workers": None,
                                    "avg_revenue_mvnd": None, "avg_profit_mvnd": -5.0,
                                    "avg_income_mvnd_month": 3.0, "ocop_count": 0, "high_tech_count": 0})
    # 2020 148 HTX: A1 (moved in from Kỳ Sơn), B1. Income: A1 only (B1 w=0) -> 2.5
    # growth vs 148 in 2019: revenue 2019 null -> null; income 2.5/3.0 - 1 = -16.67 %
    check(d[(2020, "148", "HTX")], {"new_formed": 0, "active_count": 2, "members": 32, "workers": 6,
                                    "avg_revenue_mvnd": 100.0, "avg_profit_mvnd": 12.5,
                                    "avg_income_mvnd_month": 2.5, "revenue_growth_pct": None,
                                    "income_growth_pct": (2.5 / 3.0 - 1) * 100,
                                    "ocop_count": 2, "high_tech_count": 1})
    # 2020 157 HTX: D1 suspended (new), E1, F1, H1 active; revenue E1 only; income F1 only
    check(d[(2020, "157", "HTX")], {"new_formed": 2, "active_count": 3, "members": 11, "workers": 2,
                                    "avg_revenue_mvnd": 200.0, "avg_profit_mvnd": None,
                                    "avg_income_mvnd_month": 5.0, "revenue_growth_pct": None,
                                    "income_growth_pct": None, "ocop_count": 0, "high_tech_count": 1})
    # 2021 148: A1 150 vs 100 in 2020 -> +50 %; income 2.5 vs 2.5 -> 0 %
    check(d[(2021, "148", "HTX")], {"revenue_growth_pct": 50.0, "income_growth_pct": 0.0})
    # 2021 157: G1 30 vs 200 -> -85 %; 2.0 vs 5.0 -> -60 %
    check(d[(2021, "157", "HTX")], {"revenue_growth_pct": -85.0, "income_growth_pct": -60.0})


def test_district_totals_equal_province(con):
    # 2020 HTX: 148 (0 new, 2 active, 32 members, 6 workers) + 157 (2, 3, 11, 2) = province (2, 5, 43, 8)
    got = rows(con, "SELECT sum(new_formed) n, sum(active_count) a, sum(members) m, sum(workers) w "
                    "FROM marts.district_indicators WHERE year = 2020 AND entity_type = 'HTX'")[0]
    assert (got["n"], got["a"], got["m"], got["w"]) == (2, 5, 43, 8)


# ----------------------------------------------------------------------------- sector


def test_sector_indicators(con):
    s = by_key(con, "marts.sector_indicators", ["year", "sector", "entity_type"])
    assert set(s) == {
        (2019, "agriculture", "HTX"), (2019, "agriculture", "THT"), (2019, "transport", "HTX"),
        (2020, "agriculture", "HTX"), (2020, "agriculture", "THT"), (2020, "handicraft", "HTX"),
        (2020, "other", "HTX"), (2021, "agriculture", "HTX"),
    }
    # transport 2019: only C1, dissolved -> a line (it has rows) with 1 new, nothing active
    check(s[(2019, "transport", "HTX")], {"new_formed": 1, "active_count": 0, "members": None,
                                          "workers": None, "avg_revenue_mvnd": None,
                                          "ocop_count": 0, "high_tech_count": 0})
    # agriculture 2020 HTX: A1, B1 -> revenue (150+50)/2 = 100 vs 2019 (A1 100) -> 0 %;
    # income A1 2.5 (B1 w=0) vs 2019 2.8 -> -10.71 %
    check(s[(2020, "agriculture", "HTX")], {"active_count": 2, "members": 32, "workers": 6,
                                            "avg_revenue_mvnd": 100.0, "revenue_growth_pct": 0.0,
                                            "avg_income_mvnd_month": 2.5,
                                            "income_growth_pct": (2.5 / 2.8 - 1) * 100,
                                            "ocop_count": 2, "high_tech_count": 1})
    check(s[(2020, "handicraft", "HTX")], {"new_formed": 2, "active_count": 2, "members": 9, "workers": 2,
                                           "avg_revenue_mvnd": 200.0, "avg_income_mvnd_month": 5.0,
                                           "revenue_growth_pct": None})
    # THT sectors as reported
    check(s[(2019, "agriculture", "THT")], {"active_count": 1, "ocop_count": None})


# ----------------------------------------------------------------------------- backlog


def backlog(con, year=None):
    sql = "SELECT year, district_code, district_name, reg_code, established_on, waiting_days FROM marts.funding_backlog"
    return [tuple(r.values()) for r in rows(con, sql + (f" WHERE year = {year}" if year else "") + " ORDER BY ALL")]


def test_backlog(con):
    assert backlog(con) == [
        # 2019: A1 supported 2019-10-10 by S3 (reported by another district) -> out; C1 dissolved -> out;
        # B1 waits 31/12/2019 - 15/06/2019 = 199 days
        (2019, "148", "Thành phố Hòa Bình", "B1", date(2019, 6, 15), 199),
        # 2020: B1's support S2 is allocated in 2021 -> still waiting (199 + 366 = 565);
        # E1 supported on 31/12/2020 exactly -> out; F1 established 2017 (before window 2018..2020) -> out;
        # H1 established 01/01/2018, first day of the window -> in, 365 + 365 + 365 = 1095 days; D1 suspended -> out
        (2020, "148", "Thành phố Hòa Bình", "B1", date(2019, 6, 15), 565),
        (2020, "157", "Lạc Sơn", "H1", date(2018, 1, 1), 1095),
        # 2021: window 2019..2021: A1 (2018) out; G1 (2019) has only trade_promotion support -> in:
        # 365 (2019) + 366 (2020) + 364 = 1095 days
        (2021, "157", "Lạc Sơn", "G1", date(2019, 1, 1), 1095),
    ]


def test_backlog_window_setting():
    c = fx.build(window="2")
    run_models(c)
    # window 2 -> 2020 covers 2019..2020: H1 (2018) drops out, B1 stays
    assert [r[3] for r in backlog(c, 2020)] == ["B1"]
    c.close()
    c = fx.build(window=None)  # no setting row -> default 3
    run_models(c)
    assert [r[3] for r in backlog(c, 2020)] == ["B1", "H1"]
    c.close()


# ----------------------------------------------------------------------------- plan


def test_plan_vs_actual(con):
    got = {(r["year"], r["indicator_code"]): (r["target_min"], r["target_max"], r["actual"], r["status"])
           for r in rows(con, "SELECT * FROM marts.plan_vs_actual")}
    assert set(got) == {(2019, "htx_revenue_growth_pct"), (2019, "training_turns"), (2020, "new_htx"),
                        (2020, "new_tht"), (2020, "htx_revenue_growth_pct"), (2020, "htx_income_growth_pct"),
                        (2020, "training_turns"), (2020, "high_tech_htx"), (2021, "new_tht")}
    # no 2018 -> 2019 growth null -> no_data; no training allocated in 2019 -> no_data
    assert got[(2019, "htx_revenue_growth_pct")] == (5, 5, None, "no_data")
    assert got[(2019, "training_turns")] == (10, 10, None, "no_data")
    assert got[(2020, "new_htx")] == (2, 2, 2, "met")            # single number, actual = target -> met
    assert got[(2020, "new_tht")] == (1, None, 0, "not_met")      # "từ 1": min only; 0 THT formed in 2020
    mn, mx, act, st = got[(2020, "htx_revenue_growth_pct")]       # "30 - 40%", actual 33.33 -> met
    assert (mn, mx, st) == (30, 40, "met") and act == approx(100 / 3)
    mn, mx, act, st = got[(2020, "htx_income_growth_pct")]        # "26-28", actual 25 -> not_met
    assert (mn, mx, st) == (26, 28, "not_met") and act == approx(25.0)
    assert got[(2020, "training_turns")] == (40, 40, 40, "met")   # S4 25 + S5 15 (+ S6 null)
    assert got[(2020, "high_tech_htx")] == (3, 3, 2, "not_met")   # A1, E1
    assert got[(2021, "new_tht")] == (1, 1, None, "no_data")      # no THT register in 2021


def test_training_turns(con):
    # 2020: participants 25 + 15 (+ null), 3 training rows, amounts 10 + 20 + 8
    assert rows(con, "SELECT * FROM marts.training_turns") == [
        {"year": 2020, "training_turns": 40, "training_allocations": 3, "training_amount_mvnd": 38.0}]


def test_dim_district(con):
    assert rows(con, "SELECT district_code, valid_to FROM core.dim_district ORDER BY 1") == [
        {"district_code": "148", "valid_to": None}, {"district_code": "151", "valid_to": date(2020, 1, 1)},
        {"district_code": "157", "valid_to": None}]


def test_empty_inputs_build_empty_marts():
    c = duckdb.connect()
    create_input_tables(c)
    run_models(c)
    for t in ("province_indicators", "district_indicators", "sector_indicators", "funding_backlog",
              "plan_vs_actual"):
        assert c.sql(f"SELECT count(*) FROM marts.{t}").fetchall() == [(0,)]
    c.close()


# ----------------------------------------------------------------------------- sample truth


def _load_truth():
    try:
        import truth
    except ImportError:
        return None, None
    if not truth.TRUTH_JSON.exists():
        return None, None
    return truth, json.loads(truth.TRUTH_JSON.read_text(encoding="utf-8"))


def test_marts_equal_sample_ground_truth():
    """The sample generator's ground-truth rows loaded straight into raw.* (bypassing reading): the
    marts must equal tests/truth.py's plain-Python computation of the spec's definitions."""
    truth, d = _load_truth()
    if truth is None:
        pytest.skip("sample ground truth not available")
    c = duckdb.connect()
    create_input_tables(c)
    for form, table in [("HTX", "raw.htx"), ("THT", "raw.tht"), ("HO_TRO", "raw.ho_tro"), ("CHI_TIEU", "raw.chi_tieu")]:
        v = d["forms"][form]
        cols = v["columns"]
        frame = pl.DataFrame([dict(zip(cols, r)) for r in v["rows"]], infer_schema_length=None).to_arrow()
        c.register("frame", frame)
        c.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM frame").fetchall()
        c.unregister("frame")
    c.executemany("INSERT INTO ref.districts VALUES (?, ?, '17', DATE '1991-10-01', ?)",
                  [(k, n, "2020-01-01" if k == "151" else None) for k, n in truth.DISTRICT_NAMES.items()])
    run_models(c)
    t = truth.load()

    def same(a, b):
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)

    for table, expected, keys in [
        ("marts.province_indicators", truth.province_indicators(t), ["year", "entity_type"]),
        ("marts.district_indicators", truth.district_indicators(t), ["year", "district_code", "entity_type"]),
        ("marts.sector_indicators", truth.sector_indicators(t), ["year", "sector", "entity_type"]),
    ]:
        got = by_key(c, table, keys)
        assert set(got) == set(expected), table
        bad = [(k, col, got[k][col], v) for k, e in expected.items() for col, v in e.items()
               if not same(got[k][col], v)]
        assert not bad, (table, bad[:5])
    years = sorted({k[0] for k in truth.province_indicators(t)})
    for y in years:
        want = truth.funding_backlog(y, t)
        got = rows(c, "SELECT year, district_code, district_name, reg_code, name, established_on, waiting_days "
                      "FROM marts.funding_backlog WHERE year = ? ORDER BY district_code, reg_code", [y])
        assert got == want, y
    want = {(r["year"], r["indicator_code"]): r for r in truth.plan_vs_actual(t)}
    got = {(r["year"], r["indicator_code"]): r for r in rows(c, "SELECT * FROM marts.plan_vs_actual")}
    assert set(got) == set(want)
    for k, w in want.items():
        assert got[k]["status"] == w["status"], k
        assert same(got[k]["actual"], None if w["actual"] is None else float(w["actual"])), k
    c.close()
