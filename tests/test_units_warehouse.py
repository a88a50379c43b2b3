"""Units over time in the warehouse (../shared/spec/units.md "What the warehouse must answer"),
on a hand-worked province across the 2025 reform, built by the real pipeline (`coop run`).

Today's Phú Thọ (25). Register rows (HTX), expected figures worked out by hand below:

  2024 district 157 Lạc Sơn (area 17)
    A 5400000001 'Xã Chí Đạo'       est 2015-04-01 active 20 members  -> former 05323 -> today 05323 Xã Quyết Thắng
    B 5400000002 'TT Vụ Bản'        est 2024-03-01 active 10 members  -> former 05266 -> today 05266 Xã Lạc Sơn (new in 2024)
    C 5400000003 (commune blank)    est 2016-01-01 active  5 members  -> no commune of today
  2024 district 150 Đà Bắc (area 17)
    F 5400000006 'Vầy Nưa'          est 2017-01-01 active  4 members  -> former Xã Vầy Nưa, split: default 04891 (approximate)
  2024 district 247 Tam Dương (area 26)
    D 2600000001 (commune blank)    est 2018-01-01 active  7 members
  2025 commune 05266 Xã Lạc Sơn (folder 'xa-lac-son', area 17)
    A (same code) active 21 members; B (same code) active 11 members;
    HO_TRO: establishment support for B allocated 2025-05-01
  2025 commune 07942 Phường Phú Thọ (folder '07942', area 25)
    E 2500000001                    est 2025-02-01 active  9 members (new in 2025, no support)
  2025 folder 'Huyện Lạc Sơn' (a district after the reform): rejected, nothing loaded

For the VN roll-up the same raw folder gets one more commune of another province:
  2025 commune 20194 Phường Hải Vân (Đà Nẵng 48): G 4800000001 est 2020-01-01 active 6 members.
and a district-era row restated into a commune of today of ANOTHER former province:
  2024 district 933 Châu Thành (Hậu Giang, area 93)
    H 9300000001 'Phú Tân'         est 2019-01-01 active  8 members  -> former 31379 Xã Phú Tân, split:
                                   the dataset's default is 31582 Xã Thuận Hòa, which lies in area 94
                                   (former Sóc Trăng): counted in that commune and in area 93, not 94.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from reader_fixtures import G, HO_TRO_HEAD, HTX_HEAD, ho_tro_row, htx_row, write_xlsx


def _htx(code, name, commune, est, members):
    return htx_row(1, code, name, commune=commune, established_on=est, members=members, workers=None,
                   revenue=100, profit=10, income=3.0)


def _write(raw: Path, country: bool = False) -> None:
    d = dt.datetime
    write_xlsx(raw / "2024" / "157" / "bc.xlsx", [G("HTX", [HTX_HEAD,
        _htx("5400000001", "HTX A", "Xã Chí Đạo", d(2015, 4, 1), 20),
        _htx("5400000002", "HTX B", "TT Vụ Bản", d(2024, 3, 1), 10),
        _htx("5400000003", "HTX C", None, d(2016, 1, 1), 5)])])
    write_xlsx(raw / "2024" / "Đà Bắc" / "bc.xlsx", [G("HTX", [HTX_HEAD,
        _htx("5400000006", "HTX F", "Vầy Nưa", d(2017, 1, 1), 4)])])
    write_xlsx(raw / "2024" / "Huyện Tam Dương" / "bc.xlsx", [G("HTX", [HTX_HEAD,
        _htx("2600000001", "HTX D", None, d(2018, 1, 1), 7)])])
    write_xlsx(raw / "2025" / "xa-lac-son" / "bc.xlsx", [
        G("HTX", [HTX_HEAD, _htx("5400000001", "HTX A", "Xã Lạc Sơn", d(2015, 4, 1), 21),
                  _htx("5400000002", "HTX B", "Xã Lạc Sơn", d(2024, 3, 1), 11)]),
        G("Hỗ trợ", [HO_TRO_HEAD, ho_tro_row(1, "5400000002", support_type="Thành lập mới", amount=50,
                                             participants=None, allocated_on=d(2025, 5, 1))])])
    write_xlsx(raw / "2025" / "07942" / "bc.xlsx", [G("HTX", [HTX_HEAD,
        _htx("2500000001", "HTX E", None, d(2025, 2, 1), 9)])])
    write_xlsx(raw / "2025" / "Huyện Lạc Sơn" / "bc.xlsx", [G("HTX", [HTX_HEAD,
        _htx("5400000009", "HTX Z", None, d(2020, 1, 1), 3)])])
    if country:
        write_xlsx(raw / "2025" / "20194" / "bc.xlsx", [G("HTX", [HTX_HEAD,
            _htx("4800000001", "HTX G", None, d(2020, 1, 1), 6)])])
        write_xlsx(raw / "2024" / "933" / "bc.xlsx", [G("HTX", [HTX_HEAD,
            _htx("9300000001", "HTX H", "Phú Tân", d(2019, 1, 1), 8)])])


def _build(tmp: Path, province: str, country: bool) -> Path:
    from coop.run.runner import run_command

    raw, wh = tmp / "raw", tmp / "wh" / "coop.duckdb"
    _write(raw, country)
    old = os.environ.get("COOP_PROVINCE")
    os.environ["COOP_PROVINCE"] = province
    try:
        assert run_command(raw, wh, None, False) == 0
    finally:
        if old is None:
            os.environ.pop("COOP_PROVINCE", None)
        else:
            os.environ["COOP_PROVINCE"] = old
    return wh


@pytest.fixture(scope="module")
def wh(tmp_path_factory, prefect_harness):
    os.environ.pop("PREFECT_API_URL", None)
    return _build(tmp_path_factory.mktemp("units"), "25", False)


def q(wh: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_point_2_one_series_per_former_province_area_across_2025(wh):
    assert q(wh, "SELECT year, area_code, area_name, province_code, active_count, new_formed, members "
                 "FROM marts.area_indicators WHERE entity_type = 'HTX' ORDER BY year, area_code") == [
        (2024, "17", "Hòa Bình", "25", 4, 1, 39),
        (2024, "26", "Vĩnh Phúc", "25", 1, 0, 7),
        (2025, "17", "Hòa Bình", "25", 2, 0, 32),
        (2025, "25", "Phú Thọ", "25", 1, 1, 9),
    ]


def test_point_1_province_as_it_was_that_year(wh):
    assert q(wh, "SELECT year, province_code, province_name, active_count, members FROM marts.province_indicators "
                 "WHERE entity_type = 'HTX' ORDER BY year, province_code") == [
        (2024, "17", "Hòa Bình", 4, 39), (2024, "26", "Vĩnh Phúc", 1, 7), (2025, "25", "Phú Thọ", 3, 41)]
    # no growth for 2025 in a province of today formed from several former ones (territory changed)
    assert q(wh, "SELECT revenue_growth_pct FROM marts.province_indicators WHERE year = 2025") == [(None,)]


def test_point_3_today_s_province_restated_with_completeness(wh):
    assert q(wh, "SELECT year, province_code, active_count, members, new_formed, complete, areas_missing, "
                 "units_reported, units_expected FROM marts.current_province_indicators "
                 "WHERE entity_type = 'HTX' ORDER BY year") == [
        (2024, "25", 5, 46, 1, False, "17,25,26", 3, 32),   # 3 of the 32 districts of 2024 reported
        (2025, "25", 3, 41, 1, False, "17,25,26", 2, 148),  # 2 of the 148 communes
    ]
    # restated revenue growth: both years have avg revenue 100 -> 0 %
    assert q(wh, "SELECT revenue_growth_pct FROM marts.current_province_indicators WHERE year = 2025") == [(0.0,)]


def test_point_4_communes_of_today_restated_with_the_approximate_flag(wh):
    assert q(wh, "SELECT year, commune_code, commune_name, area_code, active_count, new_formed, members, approximate "
                 "FROM marts.commune_indicators WHERE entity_type = 'HTX' ORDER BY year, commune_code") == [
        (2024, "04891", "Xã Tiền Phong", "17", 1, 0, 4, True),    # Vầy Nưa was split: default commune
        (2024, "05266", "Xã Lạc Sơn", "17", 1, 1, 10, False),     # 'TT Vụ Bản' (prefix dropped)
        (2024, "05323", "Xã Quyết Thắng", "17", 1, 0, 20, False),  # 'Xã Chí Đạo'
        (2025, "05266", "Xã Lạc Sơn", "17", 2, 0, 32, False),
        (2025, "07942", "Phường Phú Thọ", "25", 1, 1, 9, False),
    ]
    # the rows whose commune cell is missing count at area level only, and say why
    assert q(wh, "SELECT reg_code, commune_match, old_commune_code FROM core.fct_register WHERE year = 2024 "
                 "ORDER BY reg_code") == [
        ("2600000001", "missing", None), ("5400000001", "matched", "05323"), ("5400000002", "matched", "05266"),
        ("5400000003", "missing", None), ("5400000006", "split", q(wh, "SELECT commune_code FROM ref.former_communes "
                                                                  "WHERE commune_name = 'Xã Vầy Nưa'")[0][0])]


def test_point_5_a_cooperative_keeps_its_code_across_the_reform(wh):
    # B: formed 2024 in district 157, in the 2024 backlog; supported 2025-05-01 in its commune's form -> gone in 2025.
    # E: formed 2025 in commune 07942, unsupported -> in the 2025 backlog. A formed 2015: outside the window.
    assert q(wh, "SELECT year, reg_code, unit_code, district_code, area_code, commune_code, waiting_days "
                 "FROM marts.funding_backlog ORDER BY year, reg_code") == [
        (2024, "5400000002", "157", "157", "17", "05266", 305),
        (2025, "2500000001", "07942", None, "25", "07942", 333),
    ]
    # new_formed counts B once, in 2024 (established that year), not again in its 2025 commune register
    assert q(wh, "SELECT year, new_formed FROM marts.total_indicators WHERE entity_type = 'HTX' ORDER BY year") == [
        (2024, 1), (2025, 1)]
    assert q(wh, "SELECT DISTINCT unit_code, year FROM core.fct_register WHERE reg_code = '5400000002' ORDER BY year") \
        == [("157", 2024), ("05266", 2025)]


def test_district_marts_stop_at_2024_and_units_are_described(wh):
    assert q(wh, "SELECT DISTINCT year, district_code, province_code FROM marts.district_indicators ORDER BY 1, 2") == [
        (2024, "150", "17"), (2024, "157", "17"), (2024, "247", "26")]
    assert q(wh, "SELECT level, count(*) FROM core.dim_unit GROUP BY 1 ORDER BY 1") == [("commune", 148), ("district", 33)]
    assert q(wh, "SELECT new_commune_code, split, is_default FROM core.unit_lineage l "
                 "JOIN ref.former_communes f ON f.commune_code = l.old_commune_code "
                 "WHERE f.commune_name = 'Xã Vầy Nưa' ORDER BY 1") == [("04828", True, False), ("04891", True, True)]
    undescribed = q(wh, "SELECT table_name || '.' || column_name FROM duckdb_columns() WHERE schema_name IN "
                        "('core', 'marts', 'ref') AND (comment IS NULL OR comment = '')")
    assert undescribed == []


def test_the_district_folder_of_2025_is_rejected_naming_the_reform(wh):
    rows = q(wh, "SELECT source_file, reason_code, reason FROM audit.file_issues WHERE run_id = "
                 "(SELECT max(run_id) FROM audit.runs WHERE status = 'published')")
    assert [(r[0], r[1]) for r in rows] == [("2025/Huyện Lạc Sơn/bc.xlsx", "district_after_reform")]
    assert "01/07/2025" in rows[0][2]
    assert q(wh, "SELECT count(*) FROM raw.htx WHERE reg_code = '5400000009'") == [(0,)]


def test_the_whole_country_rolls_up_every_province(tmp_path, prefect_harness):
    os.environ.pop("PREFECT_API_URL", None)
    wh = _build(tmp_path, "VN", True)
    assert q(wh, "SELECT province_code, active_count, members FROM marts.current_province_indicators "
                 "WHERE year = 2025 AND entity_type = 'HTX' ORDER BY 1") == [("25", 3, 41), ("48", 1, 6)]
    assert q(wh, "SELECT active_count, members FROM marts.total_indicators WHERE year = 2025 AND entity_type = 'HTX'") \
        == [(4, 47)]
    assert q(wh, "SELECT count(*), count(DISTINCT province_code) FROM ref.units WHERE level = 'commune'") == [(3321, 34)]
    # a split former commune whose default commune of today lies in another former province (area):
    # the row counts in that commune and in its own district's area; the data test
    # commune_totals_within_area allows for it (the run published: _build asserts exit 0)
    assert q(wh, "SELECT commune_code, area_code, active_count, members, approximate FROM marts.commune_indicators "
                 "WHERE year = 2024 AND area_code IN ('93', '94') AND entity_type = 'HTX'") == [
        ("31582", "94", 1, 8, True)]
    assert q(wh, "SELECT area_code, active_count, members FROM marts.area_indicators "
                 "WHERE year = 2024 AND area_code IN ('93', '94') AND entity_type = 'HTX'") == [("93", 1, 8)]
    from coop.paths import SQL_DIR

    assert q(wh, (SQL_DIR / "tests" / "commune_totals_within_area.sql").read_text(encoding="utf-8")) == []
    # every province of today: expected units counted per province (Đà Nẵng's communes, not Phú Thọ's)
    assert q(wh, "SELECT units_expected, units_reported FROM marts.current_province_indicators "
                 "WHERE year = 2025 AND province_code = '48' AND entity_type = 'HTX'") == [
        (q(wh, "SELECT count(*) FROM ref.units WHERE level = 'commune' AND province_code = '48'")[0][0], 1)]


def test_a_second_province_by_setting_alone(tmp_path, prefect_harness):
    """Đà Nẵng (48 = former Đà Nẵng 48 + Quảng Nam 49), generated by the sample generator with its
    ground truth, built by the same code with `COOP_PROVINCE=48`: every unit mart equals tests/truth.py."""
    import math

    import truth
    from coop.run.runner import run_command
    from sample.generate import generate_small_province

    os.environ.pop("PREFECT_API_URL", None)
    raw, wh = tmp_path / "raw", tmp_path / "wh" / "coop.duckdb"
    t = truth.load(generate_small_province(raw, "48"))
    old = os.environ.get("COOP_PROVINCE")
    os.environ["COOP_PROVINCE"] = "48"
    try:
        assert run_command(raw, wh, None, False) == 0
    finally:
        os.environ.pop("COOP_PROVINCE") if old is None else os.environ.__setitem__("COOP_PROVINCE", old)

    def same(a, b):
        if isinstance(a, float) or isinstance(b, float):
            return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        return a == b

    con = duckdb.connect(str(wh), read_only=True)
    try:
        def table(sql, keys):
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description]
            return {tuple(r[cols.index(k)] for k in keys): dict(zip(cols, r)) for r in cur.fetchall()}

        for sql, keys, want in [
            ("SELECT * FROM marts.area_indicators", ["year", "area_code", "entity_type"], truth.area_indicators(t)),
            ("SELECT * FROM marts.province_indicators", ["year", "province_code", "entity_type"],
             truth.province_indicators_by_province(t)),
            ("SELECT * FROM marts.commune_indicators", ["year", "commune_code", "entity_type"],
             truth.commune_indicators(t, province="48")),
        ]:
            got = table(sql, keys)
            assert set(got) == set(want), sql
            bad = [(k, c, got[k][c], v) for k, e in want.items() for c, v in e.items() if not same(got[k][c], v)]
            assert not bad, (sql, bad[:5])
        cur = table("SELECT * FROM marts.current_province_indicators", ["year", "entity_type"])
        want = truth.current_province_indicators(t, province="48")
        assert set(cur) == set(want)
        for k, e in want.items():
            assert cur[k]["province_code"] == "48" and cur[k]["active_count"] == e["active_count"]
            assert cur[k]["complete"] == e["complete"]
            assert cur[k]["areas_missing"] == (",".join(e["areas_missing"]) or None)
        assert {r[0] for r in con.execute("SELECT DISTINCT area_code FROM marts.area_indicators").fetchall()} == \
            {"48", "49"}
    finally:
        con.close()
