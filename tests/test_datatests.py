"""SQL data tests: pass on the hand-made fixture, fail (naming the test and offending rows) on
deliberately broken copies of it."""

from __future__ import annotations

from pathlib import Path

import pytest

import warehouse_fixture as fx
from coop.warehouse.datatests import (DataTestDefinitionError, DataTestResult, blocking_failures, run_data_tests,
                            summary)
from coop.warehouse.models import SQL_DIR, run_models


def built(**kw):
    con = fx.build(**kw)
    run_models(con)
    return con


def by_name(results):
    return {r.name: r for r in results}


def test_every_test_file_has_a_header():
    files = sorted((SQL_DIR / "tests").glob("*.sql"))
    assert len(files) >= 15
    con = built()
    results = run_data_tests(con)
    assert [r.name for r in results] == [f.stem for f in files]
    assert {r.severity for r in results} == {"error", "warn"}


def test_fixture_passes_error_tests_and_warns_on_unknown_support_code():
    con = built()
    results = run_data_tests(con)
    assert blocking_failures(results) == []
    failed = by_name(r for r in results if not r.passed)
    # two warnings: Lạc Sơn (157) sent no register in 2019 (148 and 151 did; 151 is not valid after
    # 2019, so 2020/2021 miss nobody); S4 supports ZZ9, which is in no HTX register
    assert set(failed) == {"unit_without_register", "support_reg_code_not_in_register"}
    miss = failed["unit_without_register"]
    assert miss.severity == "warn"
    assert miss.sample == [{"year": 2019, "unit_code": "157", "level": "district", "unit_name": "Lạc Sơn", "area_code": "17"}]
    w = failed["support_reg_code_not_in_register"]
    assert w.severity == "warn" and w.failing_rows == 1
    assert w.sample[0]["reg_code"] == "ZZ9" and w.sample[0]["year"] == 2020
    assert w.sample[0]["source_file"] and w.sample[0]["row_number"] is not None


def test_unknown_support_code_passes_when_the_register_knows_it():
    con = fx.build()
    con.execute("UPDATE raw.ho_tro SET reg_code = 'A1' WHERE reg_code = 'ZZ9'").fetchall()
    run_models(con)
    assert by_name(run_data_tests(con))["support_reg_code_not_in_register"].passed


def test_all_pass_when_every_district_reported():
    con = fx.build()
    con.execute("UPDATE raw.ho_tro SET reg_code = 'A1' WHERE reg_code = 'ZZ9'").fetchall()
    fx.insert(con, "raw.tht", fx.THT_COLS, [(2019, "157", "T9", "2015-01-01", "other", "active", 3, 3, 1, 1, 1.0)])
    run_models(con)
    assert [r.name for r in run_data_tests(con) if not r.passed] == []


def test_broken_district_totals_block_and_name_rows():
    con = built()
    con.execute("UPDATE marts.district_indicators SET members = members + 1 "
                "WHERE year = 2020 AND district_code = '157' AND entity_type = 'HTX'").fetchall()
    results = by_name(run_data_tests(con))
    r = results["district_totals_match_province"]
    assert not r.passed and r.failing_rows == 1
    assert r.sample[0]["year"] == 2020 and r.sample[0]["entity_type"] == "HTX"
    assert r.sample[0]["province_members"] == 43 and r.sample[0]["districts_members"] == 44
    assert results["sector_totals_match_province"].passed
    blocking = blocking_failures(list(results.values()))
    assert [b.name for b in blocking] == ["district_totals_match_province"]
    msg = blocking[0].message()
    assert "district_totals_match_province" in msg and "[error]" in msg
    assert "province_members=43" in msg and "districts_members=44" in msg


def test_broken_sector_totals():
    con = built()
    con.execute("DELETE FROM marts.sector_indicators WHERE year = 2019 AND sector = 'transport'").fetchall()
    r = by_name(run_data_tests(con))["sector_totals_match_province"]
    # the province 2019 HTX has 2 new (B1, C1); the sectors now only 1 (C1's transport line gone)
    assert r.failing_rows == 1 and r.sample[0]["province_new_formed"] == 2 and r.sample[0]["sectors_new_formed"] == 1
    assert r in blocking_failures([r])


def test_duplicate_grain_and_bad_values():
    con = built()
    con.execute("INSERT INTO marts.province_indicators SELECT * FROM marts.province_indicators "
                "WHERE year = 2019 AND entity_type = 'THT'").fetchall()
    con.execute("UPDATE marts.plan_vs_actual SET status = 'done' WHERE indicator_code = 'new_htx'").fetchall()
    con.execute("UPDATE marts.sector_indicators SET entity_type = 'XYZ' WHERE sector = 'other'").fetchall()
    con.execute("UPDATE marts.district_indicators SET district_code = '999' WHERE district_code = '151'").fetchall()
    results = by_name(run_data_tests(con))
    assert results["unique_province_indicators"].sample == [{"year": 2019, "province_code": "17", "entity_type": "THT",
                                                             "n": 2}]
    assert results["accepted_values_plan_status"].failing_rows == 1
    assert results["accepted_values_entity_type"].sample[0]["entity_type"] == "XYZ"
    rel = results["relationships_district"]
    assert rel.failing_rows == 1 and rel.sample[0] == {"table_name": "marts.district_indicators", "year": None,
                                                       "unit_code": "999", "problem": "district"}
    # only the entity_type of that line changed; its sector code is still a valid one
    assert results["accepted_values_sector"].passed
    names = {b.name for b in blocking_failures(list(results.values()))}
    assert {"unique_province_indicators", "accepted_values_plan_status", "accepted_values_entity_type",
            "relationships_district"} <= names


def test_duplicate_plan_code_and_district_outside_validity():
    con = fx.build()
    fx.insert(con, "raw.chi_tieu", fx.PLAN_COLS, [(2020, None, "new_htx", "3", 3, 3)])
    # a Kỳ Sơn register row in 2020, after the merge (the loader should have rejected it)
    con.execute("UPDATE raw.htx SET unit_code = '151' WHERE year = 2020 AND reg_code = 'H1'").fetchall()
    run_models(con)
    results = by_name(run_data_tests(con))
    assert results["unique_plan_vs_actual"].sample[0]["indicator_code"] == "new_htx"
    v = results["district_valid_for_year"]
    assert v.failing_rows == 1 and v.sample[0]["district_code"] == "151" and v.sample[0]["year"] == 2020


def test_sql_error_counts_as_failure(tmp_path):
    (tmp_path / "broken.sql").write_text("-- severity: error\n-- description: refers to nothing\n"
                                         "SELECT * FROM marts.nothing_here", encoding="utf-8")
    (tmp_path / "fine.sql").write_text("-- severity: warn\n-- description: no rows\nSELECT 1 WHERE false",
                                       encoding="utf-8")
    results = run_data_tests(built(), tmp_path)
    assert [r.name for r in results] == ["broken", "fine"]
    assert results[0].error and "nothing_here" in results[0].error
    assert blocking_failures(results) == [results[0]]
    assert "could not run" in results[0].message()
    assert results[1].passed


def test_warn_failure_does_not_block(tmp_path):
    (tmp_path / "w.sql").write_text("-- severity: warn\n-- description: always one row\nSELECT 42 AS answer",
                                    encoding="utf-8")
    results = run_data_tests(built(), tmp_path)
    assert results[0].failing_rows == 1 and results[0].sample == [{"answer": 42}]
    assert blocking_failures(results) == []
    assert summary(results).splitlines()[0] == "1 data tests: 0 passed, 1 warned, 0 failed"


def test_header_required(tmp_path):
    (tmp_path / "x.sql").write_text("-- description: no severity\nSELECT 1", encoding="utf-8")
    with pytest.raises(DataTestDefinitionError, match="severity"):
        run_data_tests(built(), tmp_path)
    (tmp_path / "x.sql").write_text("-- severity: fatal\n-- description: d\nSELECT 1", encoding="utf-8")
    with pytest.raises(DataTestDefinitionError, match="x.sql"):
        run_data_tests(built(), tmp_path)
    (tmp_path / "x.sql").write_text("-- severity: warn\nSELECT 1", encoding="utf-8")
    with pytest.raises(DataTestDefinitionError, match="description"):
        run_data_tests(built(), tmp_path)


def test_message_limits_sample():
    r = DataTestResult("t", "error", "d", 12, [{"a": i} for i in range(5)])
    msg = r.message()
    assert msg.count("a=") == 5 and "7 more" in msg and r.blocking
    assert r.to_dict()["passed"] is False


@pytest.mark.parametrize("window, ok", [("3", True), (" 2 ", True), ("0", False), ("ba", False), ("2.5", False)])
def test_backlog_window_setting_must_be_a_positive_integer(window, ok):
    con = built(window=window)
    r = by_name(run_data_tests(con))["settings_valid"]
    assert r.passed is ok
    if not ok:
        assert r.sample == [{"key": "backlog_window_years", "value": window}] and r.blocking


def test_invariants_against_double_counting():
    """Issue 11 item 9: one source file per (year, unit, form), a reg_code once per (year, unit), raw rows
    equal the ledger's rows_loaded, a support allocation listed in two report years warns."""
    con = fx.build()
    # a second file for 148's 2020 HTX register, one of its rows a copy of A1
    con.execute("INSERT INTO raw.htx SELECT * REPLACE ('2020/148/second.xlsx' AS source_file) "
                "FROM raw.htx WHERE year = 2020 AND reg_code = 'A1'").fetchall()
    # the same establishment support of B1 listed again in 2022's form
    con.execute("INSERT INTO raw.ho_tro SELECT * REPLACE (2022 AS year) FROM raw.ho_tro WHERE reg_code = 'B1'").fetchall()
    # the ledger says 2020/157/raw.htx.xlsx loaded 3 rows; raw.htx holds 4 of it
    con.execute("INSERT INTO audit.files (source_file, status, year, unit_code, rows_loaded) "
                "VALUES ('2020/157/raw.htx.xlsx', 'new', 2020, '157', 3)").fetchall()
    run_models(con)
    r = by_name(run_data_tests(con))
    assert r["one_source_file_per_unit_and_form"].sample[0]["unit_code"] == "148" and \
        r["one_source_file_per_unit_and_form"].blocking
    dup = r["reg_code_once_per_unit_and_year"]
    assert dup.failing_rows == 1 and dup.sample[0]["reg_code"] == "A1" and dup.blocking
    led = r["raw_rows_match_ledger"]
    assert {(s["source_file"], s["ledger_rows"], s["raw_rows"]) for s in led.sample} >= {
        ("2020/157/raw.htx.xlsx", 3, 4)} and led.blocking
    twice = r["support_listed_in_two_years"]
    assert twice.severity == "warn" and twice.sample[0]["reg_code"] == "B1" and twice.sample[0]["report_years"] == [2021, 2022]
