"""A small hand-made province for the SQL model tests (test_indicators, test_datatests).

Three districts: 148 Thành phố Hòa Bình, 151 Kỳ Sơn (valid until 2020-01-01, merged into 148:
its HTX A1 is listed under 148 from 2020), 157 Lạc Sơn. Expected figures are worked out by hand
in tests/test_indicators.py next to each assertion.

HTX register (year, district, reg_code, established, sector, status, members, workers, revenue,
profit, income, ocop, high_tech):

  2019 151 A1 2018-03-01 agriculture active     10  5   100  10   2.0  3    yes
  2019 148 B1 2019-06-15 agriculture active     20  -   -    -5   3.0  -    no
  2019 148 C1 2019-02-01 transport   dissolved   7  7   999  99   9.0  4    yes
  2020 148 A1 2018-03-01 agriculture active     12  6   150  20   2.5  3    yes
  2020 148 B1 2019-06-15 agriculture active     20  0   50   5    4.0  5    no
  2020 157 D1 2020-05-05 handicraft  suspended   9  3   10   1    1.0  -    no
  2020 157 E1 2020-01-10 handicraft  active      5  2   200  -    -    -    yes
  2020 157 F1 2017-12-31 handicraft  active      4  -   -    -    5.0  -    no
  2020 157 H1 2018-01-01 other       active      2  -   -    -    -    -    no
  2021 148 A1 2018-03-01 agriculture active     12  6   150  20   2.5  3    yes
  2021 157 G1 2019-01-01 agriculture active      3  3   30   3    2.0  -    no

THT register:
  2019 148 T1 2019-01-01 agriculture active     10  4   60   6    1.0
  2020 148 T2 2018-01-01 agriculture active      8  -   -    -    -
  (no THT rows in 2021)

Support (HO_TRO): report year, district, reg_code, type, amount, participants, allocated_on
  S1 2020 157 E1  establishment   30  -   2020-12-31   (on the last day of 2020: counts for 2020)
  S2 2021 148 B1  establishment   25  -   2021-03-01   (later year: does not count for 2019/2020)
  S3 2019 157 A1  establishment   40  -   2019-10-10   (another district than A1's: counts)
  S4 2020 148 ZZ9 training        10  25  2020-04-01   (ZZ9 in no register: warn)
  S5 2020 157 E1  training        20  15  2020-06-01
  S6 2020 157 D1  training         8  -   2020-07-01
  S7 2020 157 G1  trade_promotion  5  -   2020-08-01   (not establishment: G1 still waits)

Plan (CHI_TIEU, province folder):
  2019 htx_revenue_growth_pct "5"        2019 training_turns "10"
  2020 new_htx "2"; new_tht "từ 1"; htx_revenue_growth_pct "30 - 40%"; htx_income_growth_pct "26-28";
       training_turns "40"; high_tech_htx "3"
  2021 new_tht "1"
"""

from __future__ import annotations

from typing import Any

import duckdb

from coop.warehouse.models import create_input_tables

_N = None

HTX_COLS = ["year", "unit_code", "reg_code", "established_on", "sector", "status", "members", "workers",
            "revenue", "profit", "income", "ocop_stars", "high_tech"]
HTX = [
    (2019, "151", "A1", "2018-03-01", "agriculture", "active", 10, 5, 100, 10, 2.0, 3, True),
    (2019, "148", "B1", "2019-06-15", "agriculture", "active", 20, _N, _N, -5, 3.0, _N, False),
    (2019, "148", "C1", "2019-02-01", "transport", "dissolved", 7, 7, 999, 99, 9.0, 4, True),
    (2020, "148", "A1", "2018-03-01", "agriculture", "active", 12, 6, 150, 20, 2.5, 3, True),
    (2020, "148", "B1", "2019-06-15", "agriculture", "active", 20, 0, 50, 5, 4.0, 5, False),
    (2020, "157", "D1", "2020-05-05", "handicraft", "suspended", 9, 3, 10, 1, 1.0, _N, False),
    (2020, "157", "E1", "2020-01-10", "handicraft", "active", 5, 2, 200, _N, _N, _N, True),
    (2020, "157", "F1", "2017-12-31", "handicraft", "active", 4, _N, _N, _N, 5.0, _N, False),
    (2020, "157", "H1", "2018-01-01", "other", "active", 2, _N, _N, _N, _N, _N, False),
    (2021, "148", "A1", "2018-03-01", "agriculture", "active", 12, 6, 150, 20, 2.5, 3, True),
    (2021, "157", "G1", "2019-01-01", "agriculture", "active", 3, 3, 30, 3, 2.0, _N, False),
]
THT_COLS = ["year", "unit_code", "name", "established_on", "sector", "status", "members", "workers",
            "revenue", "profit", "income"]
THT = [
    (2019, "148", "T1", "2019-01-01", "agriculture", "active", 10, 4, 60, 6, 1.0),
    (2020, "148", "T2", "2018-01-01", "agriculture", "active", 8, _N, _N, _N, _N),
]
SUPPORT_COLS = ["year", "unit_code", "reg_code", "support_type", "amount", "participants", "allocated_on"]
SUPPORT = [
    (2020, "157", "E1", "establishment", 30, _N, "2020-12-31"),
    (2021, "148", "B1", "establishment", 25, _N, "2021-03-01"),
    (2019, "157", "A1", "establishment", 40, _N, "2019-10-10"),
    (2020, "148", "ZZ9", "training", 10, 25, "2020-04-01"),
    (2020, "157", "E1", "training", 20, 15, "2020-06-01"),
    (2020, "157", "D1", "training", 8, _N, "2020-07-01"),
    (2020, "157", "G1", "trade_promotion", 5, _N, "2020-08-01"),
]
PLAN_COLS = ["year", "unit_code", "code", "target_raw", "target_min", "target_max"]
PLAN = [
    (2019, _N, "htx_revenue_growth_pct", "5", 5, 5),
    (2019, _N, "training_turns", "10", 10, 10),
    (2020, _N, "new_htx", "2", 2, 2),
    (2020, _N, "new_tht", "từ 1", 1, _N),
    (2020, _N, "htx_revenue_growth_pct", "30 - 40%", 30, 40),
    (2020, _N, "htx_income_growth_pct", "26-28", 26, 28),
    (2020, _N, "training_turns", "40", 40, 40),
    (2020, _N, "high_tech_htx", "3", 3, 3),
    (2021, _N, "new_tht", "1", 1, 1),
]
DISTRICTS = [
    ("148", "Thành phố Hòa Bình", "17", "1991-10-01", _N),
    ("151", "Kỳ Sơn", "17", "1991-10-01", "2020-01-01"),
    ("157", "Lạc Sơn", "17", "1991-10-01", _N),
]


def insert(con: duckdb.DuckDBPyConnection, table: str, cols: list[str], rows: list[tuple[Any, ...]],
           extra: dict[str, Any] | None = None) -> None:
    """Insert rows by column name, filling lineage (source_file, sheet, row_number, file_hash, run_id)."""
    extra = extra or {}
    lineage = table.startswith("raw.")
    all_cols = list(cols) + list(extra)
    if lineage:
        all_cols += ["source_file", "sheet", "row_number", "file_hash", "run_id"]
    ph = ", ".join("?" for _ in all_cols)
    data = []
    for i, r in enumerate(rows):
        row = list(r) + list(extra.values())
        if lineage:
            row += [f"{r[0]}/{r[1] or 'province'}/{table}.xlsx", "Sheet1", i + 5, "hash", "run-1"]
        data.append(row)
    if data:
        con.executemany(f"INSERT INTO {table} ({', '.join(all_cols)}) VALUES ({ph})", data)


def build(con: duckdb.DuckDBPyConnection | None = None, window: str | None = "3") -> duckdb.DuckDBPyConnection:
    """Create the input tables and fill them with the fixture (window None: no setting row)."""
    from coop.warehouse.load import _AUDIT_DDL

    con = con or duckdb.connect()
    create_input_tables(con)
    con.execute("CREATE SCHEMA IF NOT EXISTS audit").fetchall()
    for name, cols in _AUDIT_DDL.items():  # empty: a model-only build has no ledger
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} {cols}").fetchall()
    insert(con, "raw.htx", HTX_COLS, HTX)
    con.execute("UPDATE raw.htx SET name = 'HTX ' || reg_code, kind = 'htx'").fetchall()
    insert(con, "raw.tht", THT_COLS, THT)
    insert(con, "raw.ho_tro", SUPPORT_COLS, SUPPORT)
    insert(con, "raw.chi_tieu", PLAN_COLS, PLAN)
    insert(con, "ref.districts", ["district_code", "district_name", "province_code", "valid_from", "valid_to"],
           DISTRICTS)
    # the same districts as reporting units of the former province 17, part of today's 25
    insert(con, "ref.units", ["unit_code", "unit_name", "province_code", "valid_from", "valid_to"], DISTRICTS,
           {"level": "district", "area_code": "17"})
    con.execute("UPDATE ref.units SET lineage_district_code = unit_code").fetchall()
    con.execute("INSERT INTO ref.provinces VALUES ('17', 'Hòa Bình', 'former', NULL, '2025-07-01', '25', true), "
                "('25', 'Phú Thọ', 'current', '2025-07-01', NULL, '25', true)").fetchall()
    if window is not None:
        con.execute("INSERT INTO ref.settings VALUES ('backlog_window_years', ?)", [window]).fetchall()
    return con
