"""What the report shows, read from the published warehouse (read-only): `load_report_data`.

Whose figures the report is about (its *subject*) depends on the year:

- Y ≥ 2025: today's province, straight from its communes (`marts.current_province_indicators`);
  its earlier years are restated (sum of its former provinces) and carry the completeness flag.
- Y ≤ 2024 and one former province reported: that province as it was
  (`marts.province_indicators`, e.g. Hòa Bình 17 in 2020: the seed article's figures).
- Y ≤ 2024 and several former provinces reported: today's province restated.

In every case the report also shows today's province restated with its completeness flag
(`complete`, `areas_missing`) and the series per former-province area (`marts.area_indicators`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from coop.warehouse import queries as warehouse_queries

REFORM_YEAR = 2025
TIMEZONE = "Asia/Ho_Chi_Minh"
ENTITY_TYPES = ("HTX", "THT")
INDICATOR_COLS = (
    "new_formed", "active_count", "members", "workers", "avg_revenue_mvnd", "avg_profit_mvnd",
    "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct", "ocop_count", "high_tech_count",
)
PLAN_ORDER = ("new_htx", "new_tht", "htx_revenue_growth_pct", "htx_income_growth_pct", "training_turns",
              "high_tech_htx")

# Fallback labels when the reference vocabularies are not available.
SECTOR_LABELS = {
    "agriculture": "Nông, lâm, ngư nghiệp",
    "handicraft": "Công nghiệp - TTCN",
    "transport": "Vận tải",
    "tourism": "Du lịch",
    "trade_services": "Thương mại - dịch vụ",
    "construction": "Xây dựng",
    "electricity": "Điện năng",
    "market": "Quản lý chợ",
    "credit_fund": "Quỹ tín dụng nhân dân",
    "environment": "Vệ sinh môi trường",
    "other": "Khác",
}

Row = dict[str, Any]


class ReportError(Exception):
    """The report cannot be made (no warehouse, no data for the year)."""


def now_vietnam() -> dt.datetime:
    """The current time in Asia/Ho_Chi_Minh (UTC+7 all year: Vietnam has no daylight saving)."""
    try:
        from zoneinfo import ZoneInfo

        tz: dt.tzinfo = ZoneInfo(TIMEZONE)
    except Exception:  # noqa: BLE001 — no (or a broken) tz database here: the fixed offset is exact for Vietnam
        tz = dt.timezone(dt.timedelta(hours=7), TIMEZONE)
    return dt.datetime.now(tz).replace(microsecond=0)


def unit_word(year: int) -> str:
    """The reporting units of a year, as the report names them."""
    return "đơn vị cấp xã" if year >= REFORM_YEAR else "đơn vị cấp huyện"


@dataclass
class ReportData:
    year: int
    province_code: str                               # today's province served
    province_name: str
    subject_code: str                                # whose figures the narrative and table 1 give
    subject_name: str
    subject_is_current: bool                         # today's province (restated before 2025)
    province: dict[tuple[int, str], Row]             # subject: (year, entity_type) -> indicators
    current: dict[tuple[int, str], Row]              # today's province: (year, entity_type) -> + complete…
    areas: dict[str, str]                            # former-province code -> name (today's province)
    area_rows: dict[tuple[int, str, str], Row]       # (year, area_code, entity_type) -> indicators
    coverage: dict[tuple[int, str], tuple[int, int]]  # (year, area_code) -> (units expected, reported)
    reporters: dict[str, str]                        # provinces as they were that reported in Y
    districts: list[Row]                             # Y ≤ 2024: rows of year Y
    communes: list[Row]                              # Y ≥ 2025: rows of year Y
    sectors: list[Row]
    plan: list[Row]                                  # year Y
    next_plan: list[Row]                             # year Y+1
    backlog: list[Row]                               # HTX awaiting support, year Y (+ unit_code, unit_name)
    sector_labels: dict[str, str] = field(default_factory=lambda: dict(SECTOR_LABELS))
    generated_at: dt.datetime = field(default_factory=now_vietnam)
    warehouse: str = ""

    # ------------------------------------------------------------------ who and when
    @property
    def after_reform(self) -> bool:
        return self.year >= REFORM_YEAR

    @property
    def title(self) -> str:
        where = " cả nước" if self.subject_code == "VN" else f" tỉnh {self.subject_name}" if self.subject_name else ""
        return f"Báo cáo tình hình phát triển kinh tế tập thể{where} năm {self.year}"

    def prov(self, entity: str, year: int | None = None) -> Row | None:
        return self.province.get((self.year if year is None else year, entity))

    def cur(self, entity: str, year: int | None = None) -> Row | None:
        return self.current.get((self.year if year is None else year, entity))

    def area_row(self, area: str, entity: str, year: int | None = None) -> Row | None:
        return self.area_rows.get((self.year if year is None else year, area, entity))

    @property
    def years(self) -> list[int]:
        """Years of the subject's series, up to the report year."""
        return sorted({y for (y, _e) in self.province if y <= self.year})

    @property
    def series_years(self) -> list[int]:
        """Years of the area series (and today's province restated), first year to Y, no gaps."""
        ys = {y for (y, _a, _e) in self.area_rows} | {y for (y, _e) in self.current}
        ys = {y for y in ys if y <= self.year}
        return list(range(min(ys), self.year + 1)) if ys else [self.year]

    def area_name(self, code: str) -> str:
        return self.areas.get(code, code)

    # ------------------------------------------------------------------ completeness
    def complete(self, year: int | None = None) -> bool | None:
        """Today's province in `year` (default Y): every expected unit reported? None when unknown."""
        row = self.cur("HTX", year) or self.cur("THT", year)
        return None if row is None or row.get("complete") is None else bool(row["complete"])

    def completeness_text(self, year: int | None = None) -> str | None:
        """"chưa đủ: thiếu báo cáo của địa bàn Vĩnh Phúc cũ (đã nhận 23/32 đơn vị cấp huyện)"."""
        y = self.year if year is None else year
        row = self.cur("HTX", y) or self.cur("THT", y)
        if row is None or row.get("complete") is None:
            return None
        exp, rep = row.get("units_expected"), row.get("units_reported")
        counts = f"{rep}/{exp} {unit_word(y)}" if exp else ""
        if row["complete"]:
            return "đủ báo cáo" + (f" ({counts})" if counts else "")
        missing = [c for c in str(row.get("areas_missing") or "").split(",") if c.strip()]
        text = "chưa đủ"
        if missing:
            text += ": thiếu báo cáo của địa bàn " + ", ".join(f"{self.area_name(c.strip())} cũ" for c in missing)
        return text + (f" (đã nhận {counts})" if counts else "")

    def incomplete_years(self) -> list[int]:
        return [y for y in self.series_years if self.complete(y) is False]

    # ------------------------------------------------------------------ backlog
    def backlog_by_unit(self) -> list[Row]:
        groups: dict[tuple[str, str], list[int]] = {}
        for r in self.backlog:
            groups.setdefault((r["unit_code"] or "", r["unit_name"] or r["unit_code"] or ""), []).append(
                r["waiting_days"])
        out = [
            {"unit_code": c, "unit_name": n, "count": len(w), "avg_wait_days": sum(w) / len(w), "max_wait_days": max(w)}
            for (c, n), w in groups.items()
        ]
        return sorted(out, key=lambda r: (-r["count"], r["unit_code"]))


# ---------------------------------------------------------------------- reading
def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                      "AND table_name = ?", [schema, name]).fetchone()
    return row is not None and bool(row[0])


def vocab_labels(name: str, fallback: dict[str, str]) -> dict[str, str]:
    """Official Vietnamese labels of a vocabulary from the project reference, else `fallback`."""
    try:
        from coop.reference import load_reference

        labels = load_reference().vocab(name).labels
        out = dict(fallback)
        out.update({str(k): str(v) for k, v in dict(labels).items()})
        return out
    except Exception:  # noqa: BLE001 — reference not available or shaped differently: the labels fall back
        return dict(fallback)


def _served_province(con: duckdb.DuckDBPyConnection) -> tuple[str, str, dict[str, str]]:
    """Today's province the warehouse serves (code, name) and its former provinces {code: name},
    from the warehouse's own ref.provinces; the project reference when the warehouse lacks it."""
    current: list[tuple[str, str]] = []
    former: list[tuple[str, str, str]] = []
    if _has_table(con, "ref", "provinces"):
        for code, name, era, cur in con.execute(
            "SELECT province_code, province_name, era, current_province_code FROM ref.provinces "
            "WHERE served ORDER BY province_code"
        ).fetchall():
            (current.append((code, name)) if era == "current" else former.append((code, name, cur)))
    if len(current) == 1:
        code, name = current[0]
        return code, name, {c: n for c, n, cur in former if cur in (None, code)}
    if len(current) > 1:  # the whole country: the "province" is the country, areas all former provinces
        return "VN", "cả nước", {c: n for c, n, _cur in former}
    try:
        from coop.reference import load_reference

        ref = load_reference()
        return str(ref.province_code or ""), str(ref.province_name or ""), dict(ref.areas)
    except Exception:  # noqa: BLE001 — no usable reference either: the report names no province
        return "", "", {}


def load_report_data(warehouse: Path, year: int) -> ReportData:
    """Read everything the report shows for `year` from the published warehouse (read-only)."""
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise ReportError(f"Không tìm thấy kho dữ liệu {warehouse} (chạy `coop run` trước).")
    con = warehouse_queries.connect_read_only(warehouse)
    try:
        return _load(con, warehouse, year)
    except duckdb.Error as exc:
        raise ReportError(f"Kho dữ liệu {warehouse} thiếu bảng hoặc cột của hợp đồng dữ liệu "
                          f"(chạy lại `coop run`): {exc}") from exc
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, warehouse: Path, year: int) -> ReportData:
    cols = ", ".join(INDICATOR_COLS)
    code, name, areas = _served_province(con)

    # today's province, restated before 2025 (the whole country: marts.total_indicators)
    if code == "VN":
        cur_rows = _rows(con, f"SELECT t.year, t.entity_type, {', '.join('t.' + c for c in INDICATOR_COLS)}, "
                              "c.complete, c.areas_missing, c.units_expected, c.units_reported "
                              "FROM marts.total_indicators t LEFT JOIN ("
                              "  SELECT year, entity_type, bool_and(complete) AS complete, "
                              "  array_to_string(list_sort(list_distinct(flatten("
                              "    list(string_split(areas_missing, ','))))), ',') "
                              "    AS areas_missing, sum(units_expected) AS units_expected, "
                              "  sum(units_reported) AS units_reported "
                              "  FROM marts.current_province_indicators GROUP BY ALL) c USING (year, entity_type) "
                              "WHERE t.year <= ? ORDER BY t.year, t.entity_type", [year])
    else:
        cur_rows = _rows(con, f"SELECT year, entity_type, {cols}, complete, areas_missing, units_expected, "
                              "units_reported FROM marts.current_province_indicators "
                              "WHERE province_code = ? AND year <= ? ORDER BY year, entity_type", [code, year])
    current = {(r["year"], r["entity_type"]): r for r in cur_rows}

    # the provinces as they were
    prov_rows = _rows(con, f"SELECT year, province_code, province_name, entity_type, {cols} "
                           "FROM marts.province_indicators WHERE year <= ? ORDER BY year, province_code, entity_type",
                      [year])
    this_year = [r for r in prov_rows if r["year"] == year]
    if not this_year and not any(y == year for (y, _e) in current):
        raise ReportError(f"Kho dữ liệu {warehouse} không có số liệu năm {year}.")
    reporters = {r["province_code"]: r["province_name"] or r["province_code"] for r in this_year}

    if year < REFORM_YEAR and len(reporters) == 1:
        (s_code, s_name), = reporters.items()
        province = {(r["year"], r["entity_type"]): r for r in prov_rows if r["province_code"] == s_code}
        subject_is_current = False
    else:
        s_code, s_name = code, name
        province = dict(current)
        subject_is_current = True
        if not any(y == year for (y, _e) in province):  # no restated rows: the province rows of the year
            province.update({(r["year"], r["entity_type"]): r for r in this_year})

    area_rows = _rows(con, f"SELECT year, area_code, area_name, entity_type, {cols} FROM marts.area_indicators "
                           "WHERE year <= ? ORDER BY year, area_code, entity_type", [year])
    if code != "VN":
        area_rows = [r for r in area_rows if not areas or r["area_code"] in areas]
    for r in area_rows:
        areas.setdefault(r["area_code"], r["area_name"] or r["area_code"])
    areas = dict(sorted(areas.items()))

    districts: list[Row] = []
    communes: list[Row] = []
    if year < REFORM_YEAR:
        districts = _rows(con, f"SELECT district_code, district_name, province_code, entity_type, {cols} "
                               "FROM marts.district_indicators WHERE year = ? ORDER BY province_code, district_code, "
                               "entity_type", [year])
    else:
        communes = _rows(con, f"SELECT commune_code, commune_name, area_code, entity_type, {cols}, approximate "
                              "FROM marts.commune_indicators WHERE year = ? ORDER BY area_code, commune_code, "
                              "entity_type", [year])
    sectors = _rows(con, f"SELECT sector, entity_type, {cols} FROM marts.sector_indicators WHERE year = ? "
                         "ORDER BY sector, entity_type", [year])
    plan_sql = ("SELECT year, indicator_code, target_min, target_max, actual, status FROM marts.plan_vs_actual "
                "WHERE year = ? ORDER BY indicator_code")
    plan = _rows(con, plan_sql, [year])
    next_plan = _rows(con, plan_sql, [year + 1])
    names = "LEFT JOIN core.dim_unit u ON u.unit_code = b.unit_code" if _has_table(con, "core", "dim_unit") else ""
    unit_name = "coalesce(b.district_name, u.unit_name)" if names else "b.district_name"
    backlog = _rows(con, f"SELECT b.unit_code, {unit_name} AS unit_name, b.district_code, b.district_name, "
                         "b.area_code, b.reg_code, b.name, b.established_on, b.waiting_days "
                         f"FROM marts.funding_backlog b {names} WHERE b.year = ? "
                         "ORDER BY b.unit_code, b.waiting_days DESC, b.reg_code", [year])
    coverage = _coverage(con, sorted({y for (y, _e) in current} | {year}))

    order = list(PLAN_ORDER)
    for rows in (plan, next_plan):
        rows.sort(key=lambda r: order.index(r["indicator_code"]) if r["indicator_code"] in order else 99)
    return ReportData(
        year=year,
        province_code=code,
        province_name=name,
        subject_code=s_code,
        subject_name=s_name,
        subject_is_current=subject_is_current,
        province=province,
        current=current,
        areas=areas,
        area_rows={(r["year"], r["area_code"], r["entity_type"]): r for r in area_rows},
        coverage=coverage,
        reporters=reporters,
        districts=districts,
        communes=communes,
        sectors=sectors,
        plan=plan,
        next_plan=next_plan,
        backlog=backlog,
        sector_labels=vocab_labels("sector", SECTOR_LABELS),
        warehouse=str(warehouse),
    )


def _coverage(con: duckdb.DuckDBPyConnection, years: list[int]) -> dict[tuple[int, str], tuple[int, int]]:
    """(year, area) -> (units expected, units that sent a register row): the same rule as
    marts.current_province_indicators (districts valid on 31/12 up to 2024, communes from 2025)."""
    if not (_has_table(con, "ref", "units") and _has_table(con, "core", "fct_register")):
        return {}
    out: dict[tuple[int, str], tuple[int, int]] = {}
    for y in years:
        for area, expected, reported in con.execute(
            "WITH expected AS (SELECT unit_code, area_code FROM ref.units WHERE level = ? "
            "  AND (valid_from IS NULL OR valid_from <= make_date(?, 12, 31)) "
            "  AND (valid_to IS NULL OR valid_to > make_date(?, 12, 31))), "
            "reported AS (SELECT DISTINCT unit_code FROM core.fct_register WHERE year = ?) "
            "SELECT e.area_code, count(*), count(r.unit_code) FROM expected e "
            "LEFT JOIN reported r USING (unit_code) GROUP BY e.area_code",
            ["commune" if y >= REFORM_YEAR else "district", y, y, y],
        ).fetchall():
            out[(y, area)] = (int(expected), int(reported))
    return out
