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

from coop.warehouse.models import create_input_tables, run_models
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
import truth  # noqa: E402  (tests/truth.py: expected figures from the sample's ground truth)

RAW_COLUMNS = {"year", "unit_code", "source_file", "sheet", "row_number"}


@pytest.fixture(scope="module")
def sample():
    """The sample generator's ground-truth rows loaded straight into raw.* (bypassing reading), with the
    shipped reference for today's Phú Thọ; the marts must equal tests/truth.py's plain-Python computation
    of the spec's definitions (warehouse.md, units.md)."""
    from coop.warehouse import load
    from coop.reference import load_reference

    d = json.loads(truth.TRUTH_JSON.read_text(encoding="utf-8"))
    c = duckdb.connect()
    load.create_tables(c, load_reference(province="25"))
    for form, table in [("HTX", "raw.htx"), ("THT", "raw.tht"), ("HO_TRO", "raw.ho_tro"), ("CHI_TIEU", "raw.chi_tieu")]:
        v = d["forms"][form]
        table_cols = {r[0] for r in c.execute(f"DESCRIBE {table}").fetchall()}
        cols = [x for x in v["columns"] if x in table_cols and (x != "unit_code" or form != "CHI_TIEU")]
        frame = pl.DataFrame([dict(zip(v["columns"], r)) for r in v["rows"]], infer_schema_length=None)
        frame = frame.select(cols).to_arrow()  # noqa: F841
        c.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM frame").fetchall()
    run_models(c)
    yield c, truth.load()
    c.close()


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (bool, str, list)) or isinstance(b, (bool, str, list)):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _compare(c, table, expected, keys, extra=None):
    got = by_key(c, table, keys)
    extra = extra or {}
    assert set(got) == set(expected), (table, sorted(set(got) ^ set(expected))[:5])
    bad = [(k, col, got[k][extra.get(col, col)], v) for k, e in expected.items() for col, v in e.items()
           if not _same(got[k][extra.get(col, col)], v)]
    assert not bad, (table, bad[:5])


def test_spec_marts_equal_sample_ground_truth(sample):
    c, t = sample
    _compare(c, "marts.district_indicators", truth.district_indicators(t), ["year", "district_code", "entity_type"])
    _compare(c, "marts.sector_indicators", truth.sector_indicators(t), ["year", "sector", "entity_type"])
    want = {(r["year"], r["indicator_code"]): r for r in truth.plan_vs_actual(t)}
    got = {(r["year"], r["indicator_code"]): r for r in rows(c, "SELECT * FROM marts.plan_vs_actual")}
    assert set(got) == set(want)
    for k, w in want.items():
        assert got[k]["status"] == w["status"], k
        assert _same(got[k]["actual"], None if w["actual"] is None else float(w["actual"])), k


def test_units_point_1_the_seed_article_stays_exact(sample):
    """units.md 1: Hòa Bình (17) in 2020 as the article (and README) has it."""
    c, t = sample
    _compare(c, "marts.province_indicators", truth.province_indicators_by_province(t),
             ["year", "province_code", "entity_type"])
    r = rows(c, "SELECT * FROM marts.province_indicators WHERE year = 2020 AND province_code = '17' "
                "AND entity_type = 'HTX'")[0]
    assert (r["new_formed"], r["active_count"], r["members"]) == (66, 422, 12700)
    assert (round(r["avg_revenue_mvnd"]), round(r["avg_profit_mvnd"]), round(r["avg_income_mvnd_month"], 2)) == \
        (3240, 401, 4.0)
    assert rows(c, "SELECT count(*) AS n FROM marts.funding_backlog WHERE year = 2020")[0]["n"] == 119


def test_units_point_2_one_series_per_former_province_area(sample):
    c, t = sample
    _compare(c, "marts.area_indicators", truth.area_indicators(t), ["year", "area_code", "entity_type"])
    years = [r["year"] for r in rows(c, "SELECT year FROM marts.area_indicators WHERE area_code = '17' "
                                        "AND entity_type = 'HTX' ORDER BY year")]
    assert years == list(range(2018, 2027))  # continuous across 2025


def test_units_point_3_today_s_province_restated_with_completeness(sample):
    c, t = sample
    exp = {k: {**v, "areas_missing": ",".join(v["areas_missing"]) or None}
           for k, v in truth.current_province_indicators(t).items()}
    got = by_key(c, "marts.current_province_indicators", ["year", "entity_type"])
    assert set(got) == set(exp)
    bad = [(k, col, got[k][col], v) for k, e in exp.items() for col, v in e.items() if not _same(got[k][col], v)]
    assert not bad, bad[:5]
    assert {k[0]: got[k]["complete"] for k in got if k[1] == "HTX"} == {
        y: exp[(y, "HTX")]["complete"] for y in range(2018, 2027)}
    assert any(v["complete"] for v in exp.values()) and any(not v["complete"] for v in exp.values())


def test_units_point_4_communes_of_today_over_history(sample):
    c, t = sample
    _compare(c, "marts.commune_indicators", truth.commune_indicators(t), ["year", "commune_code", "entity_type"])
    assert rows(c, "SELECT count(*) AS n FROM marts.commune_indicators WHERE approximate AND year < 2025")[0]["n"] > 0
    # each register row's commune of today equals the generator's (which knows the commune it placed it in)
    want = {(r["source_file"], r["sheet"], r["row_number"]): r.get("commune_code")
            for f in ("HTX", "THT") for r in t.forms[f]}
    got = {(r["source_file"], r["sheet"], r["row_number"]): r["commune_code"]
           for r in rows(c, "SELECT source_file, sheet, row_number, commune_code FROM core.fct_register")}
    assert got == want


def test_units_point_5_backlog_follows_the_registration_code(sample):
    c, t = sample
    want = [{k: b[k] for k in ("year", "district_code", "reg_code", "name", "established_on", "waiting_days",
                                 "unit_code", "area_code")} for b in truth.funding_backlog(t)]
    got = rows(c, "SELECT year, district_code, reg_code, name, established_on, waiting_days, unit_code, area_code "
                  "FROM marts.funding_backlog")
    key = lambda r: (r["year"], r["unit_code"], r["reg_code"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    crossing = rows(c, "SELECT reg_code, list(year ORDER BY year) AS ys FROM marts.funding_backlog "
                       "GROUP BY reg_code HAVING min(year) <= 2024 AND max(year) >= 2025")
    assert crossing and all(r["ys"] == sorted(set(r["ys"])) for r in crossing)  # never twice in a year


def test_readme_quotes_the_sample_truth():
    """The figures the README's quick start quotes are the ground truth's (not typed from a run)."""
    t = truth.load()
    text = " ".join((truth.ROOT / "README.md").read_text(encoding="utf-8").split())
    # the console shows the latest complete year (every expected unit reported), then a line
    # per later incomplete year
    cur_all = truth.current_province_indicators(t)
    last = max(y for (y, _), v in cur_all.items() if v["complete"])
    cur = cur_all[(last, "HTX")]
    assert f"{last}: {cur['active_count']} active HTX, {cur['new_formed']} new; every district reported" in text
    later = sorted({y for y, _ in cur_all if y > last})
    assert later
    for y in later:
        reported = len(truth.expected_units(y)) - len(truth.missing_units(y, t))
        assert f"{y}: {reported} of {len(truth.expected_units(y))} communes reported" in text
    series = ", ".join(str(truth.area_indicators(t)[(y, "17", "HTX")]["active_count"]) for y in range(2018, 2022))
    assert f"former Hòa Bình: {series}" in text
    hb = truth.province_indicators_by_province(t)[(2020, "17", "HTX")]
    assert f"{hb['new_formed']} new, {hb['active_count']} active, {hb['members']:,} members" in text
