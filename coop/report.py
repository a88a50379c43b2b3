"""The province report (`coop report --year Y`): self-contained HTML and an Excel workbook.

Every figure comes from the published warehouse (opened read-only): the marts of the
output contract. The HTML has inline CSS and inline SVG charts drawn here (no JS, no CDN),
so it opens offline and prints. Numbers follow the Vietnamese convention: `.` groups
thousands and `,` is the decimal mark.

Public functions:
    load_report_data(warehouse, year) -> ReportData
    render_html(data) -> str
    write_excel(data, path) -> Path
    build_report(year, warehouse, out_dir) -> ReportFiles
    vn_number(value, decimals) -> str; money_phrase(mvnd) -> str; people_phrase(n) -> str
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import duckdb

from coop.exports import SafeWorkbook

ENTITY_TYPES = ("HTX", "THT")
INDICATOR_COLS = (
    "new_formed", "active_count", "members", "workers", "avg_revenue_mvnd", "avg_profit_mvnd",
    "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct", "ocop_count", "high_tech_count",
)

# Vietnamese labels and display precision of each indicator (label, unit, decimals).
INDICATOR_LABELS: dict[str, tuple[str, str, int]] = {
    "new_formed": ("Thành lập mới trong năm", "đơn vị", 0),
    "active_count": ("Đang hoạt động (31/12)", "đơn vị", 0),
    "members": ("Thành viên", "người", 0),
    "workers": ("Lao động", "người", 0),
    "avg_revenue_mvnd": ("Doanh thu bình quân", "triệu đồng/năm", 1),
    "avg_profit_mvnd": ("Lợi nhuận bình quân", "triệu đồng/năm", 1),
    "avg_income_mvnd_month": ("Thu nhập bình quân người lao động", "triệu đồng/người/tháng", 2),
    "revenue_growth_pct": ("Tăng trưởng doanh thu bình quân", "% so với năm trước", 1),
    "income_growth_pct": ("Tăng trưởng thu nhập bình quân", "% so với năm trước", 1),
    "ocop_count": ("HTX có sản phẩm OCOP", "HTX", 0),
    "high_tech_count": ("HTX ứng dụng công nghệ cao", "HTX", 0),
}

PLAN_LABELS: dict[str, tuple[str, str]] = {
    "new_htx": ("HTX, liên hiệp HTX thành lập mới", "HTX"),
    "new_tht": ("Tổ hợp tác thành lập mới", "THT"),
    "htx_revenue_growth_pct": ("Tăng doanh thu bình quân 1 HTX", "%"),
    "htx_income_growth_pct": ("Tăng thu nhập bình quân của lao động HTX", "%"),
    "training_turns": ("Bồi dưỡng cán bộ, thành viên HTX", "lượt người"),
    "high_tech_htx": ("HTX ứng dụng công nghệ cao", "HTX"),
}
PLAN_DECIMALS = {"htx_revenue_growth_pct": 1, "htx_income_growth_pct": 1}
STATUS_LABELS = {"met": "Đạt", "not_met": "Chưa đạt", "no_data": "Chưa có số liệu"}

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


class ReportError(Exception):
    """The report cannot be made (no warehouse, no data for the year)."""


def vocab_labels(name: str, fallback: dict[str, str]) -> dict[str, str]:
    """Official Vietnamese labels of a vocabulary from the project reference, else `fallback`."""
    try:
        from coop.reference import load_reference  # type: ignore

        labels = load_reference().vocab(name).labels
        out = dict(fallback)
        out.update({str(k): str(v) for k, v in dict(labels).items()})
        return out
    except Exception:  # reference not available or shaped differently: keep the fallback
        return dict(fallback)


# ---------------------------------------------------------------- number formatting
def vn_number(value: float | int | None, decimals: int = 0, *, trim: bool = False, missing: str = "–") -> str:
    """1234567.891 -> "1.234.567,89" (decimals=2). `trim` drops trailing decimal zeros."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    text = f"{value:,.{decimals}f}"  # 1,234,567.89
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", "-0.0"):
        text = text[1:]
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def money_phrase(mvnd: float) -> str:
    """Million VND as an official writes it: 3240 -> "3,24 tỷ đồng", 401.2 -> "401 triệu đồng",
    56.5 -> "56,5 triệu đồng"."""
    a = abs(mvnd)
    if a >= 1000:
        return f"{vn_number(a / 1000, 2, trim=True)} tỷ đồng"
    if a >= 100:
        return f"{vn_number(a, 0)} triệu đồng"
    return f"{vn_number(a, 1, trim=True)} triệu đồng"


def people_phrase(n: int | None) -> str:
    """12700 -> "12,7 nghìn"; 3012 -> "3.012"."""
    if n is None:
        return "–"
    if n >= 10000:
        return f"{vn_number(n / 1000, 1, trim=True)} nghìn"
    return vn_number(n, 0)


def target_text(lo: float | None, hi: float | None, decimals: int = 0) -> str:
    if lo is None and hi is None:
        return "–"
    if lo is not None and hi is not None:
        if lo == hi:
            return vn_number(lo, decimals, trim=True)
        return f"{vn_number(lo, decimals, trim=True)} - {vn_number(hi, decimals, trim=True)}"
    if lo is not None:
        return f"từ {vn_number(lo, decimals, trim=True)}"
    return f"đến {vn_number(hi, decimals, trim=True)}"


def attainment_pct(actual: float | None, target_min: float | None, code: str = "") -> float | None:
    """Actual as % of the target's minimum; None for growth-rate targets (a % of a % says
    nothing: their status tells met / not met)."""
    if actual is None or target_min is None or target_min <= 0 or code.endswith("_pct"):
        return None
    return actual / target_min * 100


# ---------------------------------------------------------------- data
@dataclass
class ReportData:
    year: int
    province: dict[tuple[int, str], dict[str, Any]]          # (year, entity_type) -> indicators
    districts: list[dict[str, Any]]                           # rows of year, any entity type
    sectors: list[dict[str, Any]]
    plan: list[dict[str, Any]]                                # year Y
    next_plan: list[dict[str, Any]]                           # year Y+1
    backlog: list[dict[str, Any]]                             # HTX awaiting support, year Y
    sector_labels: dict[str, str] = field(default_factory=lambda: dict(SECTOR_LABELS))
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now().replace(microsecond=0))
    warehouse: str = ""
    province_name: str = ""

    @property
    def title(self) -> str:
        where = f" tỉnh {self.province_name}" if self.province_name else ""
        return f"Báo cáo tình hình phát triển kinh tế tập thể{where} năm {self.year}"

    def prov(self, entity: str, year: int | None = None) -> dict[str, Any] | None:
        return self.province.get((self.year if year is None else year, entity))

    @property
    def years(self) -> list[int]:
        return sorted({y for (y, _e) in self.province if y <= self.year})

    def backlog_by_district(self) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], list[int]] = {}
        for r in self.backlog:
            groups.setdefault((r["district_code"] or "", r["district_name"] or ""), []).append(r["waiting_days"])
        out = [
            {"district_code": c, "district_name": n, "count": len(w), "avg_wait_days": sum(w) / len(w),
             "max_wait_days": max(w)}
            for (c, n), w in groups.items()
        ]
        return sorted(out, key=lambda r: (-r["count"], r["district_code"]))


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def load_report_data(warehouse: Path, year: int) -> ReportData:
    """Read everything the report shows for `year` from the published warehouse (read-only)."""
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise ReportError(f"Không tìm thấy kho dữ liệu {warehouse} (chạy `coop run` trước).")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cols = ", ".join(INDICATOR_COLS)
        prov = _rows(con, f"SELECT year, entity_type, {cols} FROM marts.province_indicators WHERE year <= ? "
                          "ORDER BY year, entity_type", [year])
        if not any(r["year"] == year for r in prov):
            raise ReportError(f"Kho dữ liệu {warehouse} không có số liệu năm {year}.")
        districts = _rows(con, f"SELECT district_code, district_name, entity_type, {cols} "
                               "FROM marts.district_indicators WHERE year = ? ORDER BY district_code, entity_type",
                          [year])
        sectors = _rows(con, f"SELECT sector, entity_type, {cols} FROM marts.sector_indicators WHERE year = ? "
                             "ORDER BY sector, entity_type", [year])
        plan_sql = ("SELECT year, indicator_code, target_min, target_max, actual, status FROM marts.plan_vs_actual "
                    "WHERE year = ? ORDER BY indicator_code")
        plan = _rows(con, plan_sql, [year])
        next_plan = _rows(con, plan_sql, [year + 1])
        backlog = _rows(con, "SELECT district_code, district_name, reg_code, name, established_on, waiting_days "
                             "FROM marts.funding_backlog WHERE year = ? "
                             "ORDER BY district_code, waiting_days DESC, reg_code", [year])
    except duckdb.Error as exc:
        raise ReportError(f"Kho dữ liệu {warehouse} thiếu bảng hoặc cột của hợp đồng dữ liệu: {exc}") from exc
    finally:
        con.close()
    order = list(PLAN_LABELS)
    plan.sort(key=lambda r: order.index(r["indicator_code"]) if r["indicator_code"] in order else 99)
    next_plan.sort(key=lambda r: order.index(r["indicator_code"]) if r["indicator_code"] in order else 99)
    return ReportData(
        year=year,
        province={(r["year"], r["entity_type"]): r for r in prov},
        districts=districts,
        sectors=sectors,
        plan=plan,
        next_plan=next_plan,
        backlog=backlog,
        sector_labels=vocab_labels("sector", SECTOR_LABELS),
        warehouse=str(warehouse),
        province_name=_province_name(),
    )


def _province_name() -> str:
    try:
        from coop.reference import load_reference

        return str(load_reference().province_name or "")
    except Exception:
        return ""


# ---------------------------------------------------------------- narrative
def _plan_row(rows: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["indicator_code"] == code), None)


def _against_plan(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    tgt = target_text(row["target_min"], row["target_max"])
    if row["status"] == "met":
        verdict = "vượt" if row["actual"] is not None and row["actual"] > (row["target_min"] or 0) else "đạt"
    elif row["status"] == "not_met":
        verdict = "chưa đạt"
    else:
        return f" (kế hoạch {tgt})"
    return f", {verdict} kế hoạch ({tgt})"


def _stats_phrase(p: dict[str, Any], entity: str, note: str = "") -> str:
    parts = [f"{vn_number(p['active_count'])} {entity} đang hoạt động{note} với {people_phrase(p['members'])} thành viên"]
    if p["avg_revenue_mvnd"] is not None:
        parts.append(f"doanh thu bình quân {money_phrase(p['avg_revenue_mvnd'])}/năm")
    if p["avg_profit_mvnd"] is not None:
        word = "lợi nhuận bình quân" if p["avg_profit_mvnd"] >= 0 else "lỗ bình quân"
        parts.append(f"{word} {money_phrase(p['avg_profit_mvnd'])}/năm")
    if p["avg_income_mvnd_month"] is not None:
        parts.append(f"thu nhập bình quân {vn_number(p['avg_income_mvnd_month'], 2, trim=True)} triệu đồng/người/tháng")
    return ", ".join(parts)


def _growth_phrase(value: float | None, what: str, prev_year: int) -> str | None:
    if value is None:
        return None
    verb = "tăng" if value >= 0 else "giảm"
    return f"{what} {verb} {vn_number(abs(value), 1, trim=True)}% so với năm {prev_year}"


def _next_plan_sentence(data: ReportData) -> str | None:
    rows = {r["indicator_code"]: r for r in data.next_plan}
    if not rows:
        return None
    bits: list[str] = []
    new = []
    if "new_htx" in rows:
        new.append(f"{target_text(rows['new_htx']['target_min'], rows['new_htx']['target_max'])} HTX, liên hiệp HTX")
    if "new_tht" in rows:
        new.append(f"{target_text(rows['new_tht']['target_min'], rows['new_tht']['target_max'])} THT")
    if new:
        bits.append("thành lập mới " + " và ".join(new))
    if "htx_revenue_growth_pct" in rows:
        r = rows["htx_revenue_growth_pct"]
        bits.append(f"doanh thu bình quân 1 HTX tăng {target_text(r['target_min'], r['target_max'], 1)}%")
    if "htx_income_growth_pct" in rows:
        r = rows["htx_income_growth_pct"]
        bits.append(f"thu nhập bình quân của lao động tăng {target_text(r['target_min'], r['target_max'], 1)}%")
    if "training_turns" in rows:
        r = rows["training_turns"]
        bits.append(f"bồi dưỡng cho {target_text(r['target_min'], r['target_max'])} lượt cán bộ, thành viên HTX")
    if "high_tech_htx" in rows:
        r = rows["high_tech_htx"]
        bits.append(f"{target_text(r['target_min'], r['target_max'])} HTX ứng dụng công nghệ cao")
    return f"Chỉ tiêu năm {data.year + 1}: " + "; ".join(bits) + "."


def _lower_first(text: str) -> str:
    """"Tổ hợp tác thành lập mới" -> "tổ hợp tác thành lập mới"; "HTX ..." keeps its capitals."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def narrative(data: ReportData) -> list[str]:
    """The report's paragraphs, in Vietnamese, every figure from `data`."""
    y = data.year
    htx, tht = data.prov("HTX"), data.prov("THT")
    paras: list[str] = []
    new_bits = []
    if tht is not None:
        new_bits.append(f"{vn_number(tht['new_formed'])} tổ hợp tác (THT) thành lập mới"
                        + _against_plan(_plan_row(data.plan, "new_tht")))
    if htx is not None:
        new_bits.append(f"{vn_number(htx['new_formed'])} hợp tác xã (HTX), liên hiệp HTX thành lập mới"
                        + _against_plan(_plan_row(data.plan, "new_htx")))
    first = f"Trong năm {y}, toàn tỉnh có " + ", ".join(new_bits) + "."
    stock = []
    if tht is not None:
        stock.append(_stats_phrase(tht, "THT"))
    if htx is not None:
        funds = next((r["active_count"] for r in data.sectors
                      if r["sector"] == "credit_fund" and r["entity_type"] == "HTX"), None)
        note = f" (trong đó {vn_number(funds)} quỹ tín dụng nhân dân)" if funds else ""
        stock.append(_stats_phrase(htx, "HTX", note))
    if stock:
        first += f" Lũy kế đến 31/12/{y} có " + "; có ".join(stock) + "."
    paras.append(first)

    second: list[str] = []
    if htx is not None:
        growth = [g for g in (
            _growth_phrase(htx["revenue_growth_pct"], "Doanh thu bình quân 1 HTX", y - 1),
            _growth_phrase(htx["income_growth_pct"], "thu nhập bình quân của lao động HTX", y - 1),
        ) if g]
        if growth:
            second.append("; ".join(growth) + ".")
        if htx["ocop_count"] is not None or htx["high_tech_count"] is not None:
            second.append(f"Toàn tỉnh có {vn_number(htx['ocop_count'])} HTX có sản phẩm OCOP và "
                          f"{vn_number(htx['high_tech_count'])} HTX ứng dụng công nghệ cao.")
    if data.plan:
        met = sum(1 for r in data.plan if r["status"] == "met")
        judged = sum(1 for r in data.plan if r["status"] in ("met", "not_met"))
        missed = [_lower_first(PLAN_LABELS.get(r["indicator_code"], (r["indicator_code"], ""))[0])
                  for r in data.plan if r["status"] == "not_met"]
        s = f"Kết quả thực hiện kế hoạch năm {y}: đạt {met}/{judged} chỉ tiêu có số liệu"
        if missed:
            s += "; chưa đạt: " + ", ".join(missed)
        second.append(s + ".")
    if second:
        paras.append(" ".join(second))

    by_d = data.backlog_by_district()
    n = len(data.backlog)
    if n:
        top = by_d[0]
        avg_wait = sum(r["waiting_days"] for r in data.backlog) / n
        paras.append(
            f"Đến 31/12/{y}, toàn tỉnh còn {vn_number(n)} HTX thành lập mới chưa bố trí được kinh phí hỗ trợ, "
            f"nhiều nhất là {top['district_name']} ({vn_number(top['count'])} HTX); thời gian chờ bình quân "
            f"{vn_number(avg_wait, 0)} ngày, lâu nhất {vn_number(max(r['waiting_days'] for r in data.backlog))} ngày."
        )
    else:
        paras.append(f"Đến 31/12/{y}, không còn HTX thành lập mới nào chưa được bố trí kinh phí hỗ trợ.")
    nxt = _next_plan_sentence(data)
    if nxt:
        paras.append(nxt)
    return paras


# ---------------------------------------------------------------- tables (shared by HTML and Excel)
@dataclass
class Table:
    key: str                      # stable id (HTML id, Excel sheet)
    title: str
    sheet: str
    header: list[str]
    rows: list[list[Any]]         # raw values (numbers stay numbers)
    decimals: list[int | None]    # per column: None = text
    keys: list[list[str | None]] = field(default_factory=list)  # per cell: data-key for tests/tools
    total_rows: int = 0           # how many trailing rows are totals (bold)
    row_decimals: list[int] | None = None   # per row, overriding `decimals` in columns row_dec_cols
    row_dec_cols: tuple[int, ...] = ()


def _ind(p: dict[str, Any] | None, col: str) -> Any:
    return None if p is None else p.get(col)


def tables(data: ReportData) -> list[Table]:
    y = data.year
    out: list[Table] = []

    # 1. province indicators, HTX and THT, year Y-1 and Y
    header = ["Chỉ tiêu", "Đơn vị tính", f"HTX {y - 1}", f"HTX {y}", f"THT {y - 1}", f"THT {y}"]
    rows, keys, decs = [], [], []
    for col, (label, unit, d) in INDICATOR_LABELS.items():
        if col in ("ocop_count", "high_tech_count"):
            unit = "HTX"
        vals = [_ind(data.prov(e, yy), col) for e in ENTITY_TYPES for yy in (y - 1, y)]
        rows.append([label, unit, *vals])
        keys.append([None, None, *[f"province.{yy}.{e}.{col}" for e in ENTITY_TYPES for yy in (y - 1, y)]])
        decs.append(d)
    out.append(Table("province", f"Bảng 1. Chỉ tiêu HTX và THT toàn tỉnh năm {y} (so với năm {y - 1})",
                     "Toàn tỉnh", header, rows, [None, None, 0, 0, 0, 0], keys,
                     row_decimals=decs, row_dec_cols=(2, 3, 4, 5)))

    # 2. by district; 3. by sector: same columns
    cols = [("new_formed", "mới", 0), ("active_count", "đang hoạt động", 0), ("members", "thành viên", 0),
            ("avg_revenue_mvnd", "DT bình quân (tr.đ/năm)", 1), ("avg_profit_mvnd", "LN bình quân (tr.đ/năm)", 1),
            ("avg_income_mvnd_month", "TN bình quân (tr.đ/người/tháng)", 2)]
    tht_cols = cols[:4]

    def grouped(rows_in: list[dict[str, Any]], kfield: str, label_of, kind: str) -> tuple[list, list]:
        by: dict[str, dict[str, dict[str, Any]]] = {}
        names: dict[str, str] = {}
        for r in rows_in:
            by.setdefault(r[kfield], {})[r["entity_type"]] = r
            names[r[kfield]] = label_of(r)
        rws, kys = [], []
        for k in by:
            h, t = by[k].get("HTX"), by[k].get("THT")
            rws.append([names[k], *[_ind(h, c) for c, _l, _d in cols], *[_ind(t, c) for c, _l, _d in tht_cols]])
            kys.append([None, *[f"{kind}.{k}.HTX.{c}" for c, _l, _d in cols],
                        *[f"{kind}.{k}.THT.{c}" for c, _l, _d in tht_cols]])
        h, t = data.prov("HTX"), data.prov("THT")
        rws.append(["Toàn tỉnh", *[_ind(h, c) for c, _l, _d in cols], *[_ind(t, c) for c, _l, _d in tht_cols]])
        kys.append([None] * (1 + len(cols) + len(tht_cols)))
        return rws, kys

    hdr = [*[f"HTX: {l}" for _c, l, _d in cols], *[f"THT: {l}" for _c, l, _d in tht_cols]]
    dec = [*[d for _c, _l, d in cols], *[d for _c, _l, d in tht_cols]]
    rws, kys = grouped(data.districts, "district_code", lambda r: r["district_name"], "district")
    out.append(Table("district", f"Bảng 2. Chỉ tiêu theo huyện, thành phố năm {y}", "Theo huyện",
                     ["Huyện, thành phố", *hdr], rws, [None, *dec], kys, total_rows=1))
    rws, kys = grouped(data.sectors, "sector", lambda r: data.sector_labels.get(r["sector"], r["sector"]), "sector")
    out.append(Table("sector", f"Bảng 3. Chỉ tiêu theo lĩnh vực năm {y}", "Theo lĩnh vực",
                     ["Lĩnh vực", *hdr], rws, [None, *dec], kys, total_rows=1))

    # 4. plan vs actual
    rows, keys, decs = [], [], []
    for r in data.plan:
        label, unit = PLAN_LABELS.get(r["indicator_code"], (r["indicator_code"], ""))
        d = PLAN_DECIMALS.get(r["indicator_code"], 0)
        decs.append(d)
        rows.append([label, unit, target_text(r["target_min"], r["target_max"], d), r["actual"],
                     attainment_pct(r["actual"], r["target_min"], r["indicator_code"]), STATUS_LABELS.get(r["status"], r["status"])])
        keys.append([None, None, f"plan.{r['indicator_code']}.target", f"plan.{r['indicator_code']}.actual",
                     f"plan.{r['indicator_code']}.attainment", f"plan.{r['indicator_code']}.status"])
    out.append(Table("plan", f"Bảng 4. Thực hiện kế hoạch năm {y}", "Kế hoạch",
                     ["Chỉ tiêu", "Đơn vị tính", "Kế hoạch", "Thực hiện", "Tỷ lệ so với kế hoạch (%)", "Đánh giá"],
                     rows, [None, None, None, 0, 1, None], keys, row_decimals=decs, row_dec_cols=(3,)))

    # 5. backlog by district
    rows, keys = [], []
    for r in data.backlog_by_district():
        rows.append([r["district_name"], r["count"], r["avg_wait_days"], r["max_wait_days"]])
        c = r["district_code"]
        keys.append([None, f"backlog.{c}.count", f"backlog.{c}.avg_wait", f"backlog.{c}.max_wait"])
    if data.backlog:
        w = [r["waiting_days"] for r in data.backlog]
        rows.append(["Toàn tỉnh", len(w), sum(w) / len(w), max(w)])
        keys.append([None, "backlog.total.count", "backlog.total.avg_wait", "backlog.total.max_wait"])
    out.append(Table("backlog", f"Bảng 5. HTX thành lập mới chưa được bố trí kinh phí hỗ trợ đến 31/12/{y}, "
                     "theo huyện", "Chưa hỗ trợ theo huyện",
                     ["Huyện, thành phố", "Số HTX chờ hỗ trợ", "Thời gian chờ bình quân (ngày)",
                      "Thời gian chờ lâu nhất (ngày)"], rows, [None, 0, 0, 0], keys, total_rows=1 if data.backlog else 0))

    # 6. backlog list (appendix)
    rows = [[r["district_name"], r["reg_code"], r["name"], r["established_on"], r["waiting_days"]]
            for r in data.backlog]
    out.append(Table("backlog_list", f"Phụ lục. Danh sách HTX chưa được bố trí kinh phí hỗ trợ thành lập mới "
                     f"đến 31/12/{y}", "Danh sách chờ hỗ trợ",
                     ["Huyện, thành phố", "Mã số HTX", "Tên HTX", "Ngày thành lập", "Số ngày chờ"],
                     rows, [None, None, None, None, 0], []))
    return out


def _cell_decimals(t: Table, r: int, c: int) -> int | None:
    if t.row_decimals is not None and c in t.row_dec_cols:
        return t.row_decimals[r]
    return t.decimals[c] if c < len(t.decimals) else None


def format_cell(value: Any, decimals: int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if decimals is None or not isinstance(value, (int, float)):
        return str(value)
    return vn_number(value, decimals)


# ---------------------------------------------------------------- SVG charts
PALETTE = ("#1f5fa8", "#e07b00", "#2e8b57", "#b23a48", "#6a4c93")


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _svg_open(title: str, width: int, height: int) -> list[str]:
    """Opening <svg> tag of a chart and its centred title."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{_esc(title)}" class="chart">',
            f'<text x="{width / 2}" y="20" text-anchor="middle" class="ct">{_esc(title)}</text>']


def _y_grid(vmax: float, left: float, right_x: float, top: float, ph: float) -> list[str]:
    """Five horizontal grid lines (0 .. vmax) with their value labels on the left axis."""
    out: list[str] = []
    for i in range(5):
        v = vmax * i / 4
        yy = top + ph - ph * i / 4
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{right_x}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" class="ax">{vn_number(v, 0)}</text>')
    return out


def svg_bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
             *, decimals: int = 0, width: int = 560, height: int = 300, ref_line: float | None = None) -> str:
    """Vertical grouped bar chart with value labels."""
    left, right, top, bottom = 56, 16, 40, 56
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _n, s in series for v in s if v is not None]
    vmax = _nice_max(max(vals + ([ref_line] if ref_line else []) + [0]))
    n, k = max(len(categories), 1), max(len(series), 1)
    group_w = pw / n
    bar_w = min(40.0, group_w * 0.8 / k)
    parts = _svg_open(title, width, height)
    parts += _y_grid(vmax, left, width - right, top, ph)
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + (group_w - bar_w * k) / 2
        for si, (_name, s) in enumerate(series):
            v = s[ci] if ci < len(s) else None
            if v is None:
                continue
            h = ph * max(v, 0) / vmax
            x = gx + si * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[si % len(PALETTE)]}"><title>{_esc(cat)}: {vn_number(v, decimals)}</title></rect>')
            parts.append(f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{top + ph - h - 4:.1f}" text-anchor="middle" '
                         f'class="vl">{vn_number(v, decimals)}</text>')
        parts.append(f'<text x="{left + ci * group_w + group_w / 2:.1f}" y="{top + ph + 16}" text-anchor="middle" '
                     f'class="ax">{_esc(cat)}</text>')
    if ref_line is not None:
        yy = top + ph - ph * ref_line / vmax
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" class="ref"/>')
    parts.append(_legend([nm for nm, _s in series], left, height - 14))
    parts.append("</svg>")
    return "".join(parts)


def svg_hbars(title: str, labels: Sequence[str], values: Sequence[float | None], *, decimals: int = 0,
              unit: str = "", width: int = 560, ref_line: float | None = None, colors: Sequence[str] | None = None) -> str:
    """Horizontal bar chart, one bar per label (long Vietnamese names fit)."""
    # The label column grows with the longest label (about 6.5 px a character at the axis
    # font size) so long Vietnamese indicator names are not clipped; the plot keeps its width.
    longest = max((len(lab) for lab in labels), default=0)
    left = max(120, min(360, int(longest * 6.5) + 16))
    right, top, row_h = 70, 36, 26
    width += max(0, left - 190)
    height = top + row_h * max(len(labels), 1) + 16
    pw = width - left - right
    vals = [v for v in values if v is not None]
    vmax = _nice_max(max(vals + ([ref_line] if ref_line else []) + [0]))
    parts = _svg_open(title, width, height)
    for i, (lab, v) in enumerate(zip(labels, values)):
        yy = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{yy + row_h / 2 + 4:.1f}" text-anchor="end" class="ax">{_esc(lab)}</text>')
        if v is None:
            parts.append(f'<text x="{left + 4}" y="{yy + row_h / 2 + 4:.1f}" class="vl">chưa có số liệu</text>')
            continue
        w = pw * max(v, 0) / vmax
        color = colors[i] if colors else PALETTE[0]
        parts.append(f'<rect x="{left}" y="{yy + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{color}">'
                     f'<title>{_esc(lab)}: {vn_number(v, decimals)}{unit}</title></rect>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{yy + row_h / 2 + 4:.1f}" class="vl">'
                     f'{vn_number(v, decimals)}{_esc(unit)}</text>')
    if ref_line is not None:
        x = left + pw * ref_line / vmax
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 12}" class="ref"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(title: str, xs: Sequence[Any], series: Sequence[tuple[str, Sequence[float | None]]], *,
              decimals: int = 0, width: int = 560, height: int = 300) -> str:
    left, right, top, bottom = 64, 24, 40, 56
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _n, s in series for v in s if v is not None]
    vmax = _nice_max(max(vals + [0]))
    n = len(xs)

    pad = 28

    def px(i: int) -> float:
        return left + pad + ((pw - 2 * pad) * i / (n - 1) if n > 1 else (pw - 2 * pad) / 2)

    parts = _svg_open(title, width, height)
    parts += _y_grid(vmax, left, width - right, top, ph)
    for i, x in enumerate(xs):
        parts.append(f'<text x="{px(i):.1f}" y="{top + ph + 16}" text-anchor="middle" class="ax">{_esc(x)}</text>')
    for si, (_name, s) in enumerate(series):
        color = PALETTE[si % len(PALETTE)]
        pts = [(px(i), top + ph - ph * max(v, 0) / vmax, v) for i, v in enumerate(s) if v is not None]
        if len(pts) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="'
                         + " ".join(f"{a:.1f},{b:.1f}" for a, b, _v in pts) + '"/>')
        for a, b, v in pts:
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{color}"/>')
            parts.append(f'<text x="{a:.1f}" y="{b - 8:.1f}" text-anchor="middle" class="vl">{vn_number(v, decimals)}</text>')
    parts.append(_legend([nm for nm, _s in series], left, height - 14))
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: Sequence[str], x: float, y: float) -> str:
    out, cx = [], x
    for i, nm in enumerate(names):
        out.append(f'<rect x="{cx:.1f}" y="{y - 10}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{cx + 16:.1f}" y="{y}" class="ax">{_esc(nm)}</text>')
        cx += 24 + 7.2 * len(nm)
    return "".join(out)


def charts(data: ReportData) -> list[str]:
    ys = data.years
    xs = [str(y) for y in ys]

    def series(entity: str, col: str) -> list[float | None]:
        return [_ind(data.prov(entity, y), col) for y in ys]

    out = [
        svg_bars("Số HTX, THT đang hoạt động qua các năm", xs,
                 [("HTX", series("HTX", "active_count")), ("THT", series("THT", "active_count"))]),
        svg_bars("Số HTX, THT thành lập mới qua các năm", xs,
                 [("HTX", series("HTX", "new_formed")), ("THT", series("THT", "new_formed"))]),
        svg_lines("Doanh thu bình quân (triệu đồng/năm)", xs,
                  [("HTX", series("HTX", "avg_revenue_mvnd")), ("THT", series("THT", "avg_revenue_mvnd"))]),
        svg_lines("Lợi nhuận bình quân (triệu đồng/năm)", xs,
                  [("HTX", series("HTX", "avg_profit_mvnd")), ("THT", series("THT", "avg_profit_mvnd"))]),
        svg_lines("Thu nhập bình quân (triệu đồng/người/tháng)", xs,
                  [("HTX", series("HTX", "avg_income_mvnd_month")), ("THT", series("THT", "avg_income_mvnd_month"))],
                  decimals=2),
    ]
    bd = data.backlog_by_district()
    if bd:
        out.append(svg_hbars(f"HTX chờ hỗ trợ thành lập mới theo huyện (31/12/{data.year})",
                             [r["district_name"] for r in bd], [r["count"] for r in bd], unit=" HTX"))
    counted = [r for r in data.plan if not r["indicator_code"].endswith("_pct")]
    if counted:
        labels = [PLAN_LABELS.get(r["indicator_code"], (r["indicator_code"], ""))[0] for r in counted]
        vals = [attainment_pct(r["actual"], r["target_min"], r["indicator_code"]) for r in counted]
        colors = ["#2e8b57" if r["status"] == "met" else "#b23a48" for r in counted]
        out.append(svg_hbars(f"Tỷ lệ thực hiện so với kế hoạch năm {data.year} (%)", labels, vals, decimals=0,
                             unit="%", ref_line=100, width=640, colors=colors))
    return out


# ---------------------------------------------------------------- HTML
CSS = """
body{font-family:"DejaVu Sans","Noto Sans","Segoe UI",Arial,sans-serif;margin:24px auto;max-width:1180px;color:#1b1b1b;
 line-height:1.45;font-size:15px}
h1{font-size:22px;text-align:center;margin:8px 0 4px;text-transform:uppercase}
.sub{text-align:center;color:#555;margin-bottom:18px}
h2{font-size:17px;margin:26px 0 8px;border-bottom:2px solid #1f5fa8;padding-bottom:3px}
p.lead{text-align:justify;text-indent:2em;margin:8px 0}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13.5px;width:100%}
th,td{border:1px solid #9aa9b9;padding:4px 6px;vertical-align:top}
th{background:#dde8f4;font-weight:600;text-align:center}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.total td{font-weight:700;background:#f3f6fa}
td.met{color:#1d6b3b;font-weight:600} td.not_met{color:#a31f2e;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:14px}
.chart{background:#fff;border:1px solid #d5dde6}
.chart .ct{font-size:14px;font-weight:600} .chart .ax{font-size:11px;fill:#333} .chart .vl{font-size:10.5px;fill:#111}
.chart .grid{stroke:#e4e9ef} .chart .ref{stroke:#a31f2e;stroke-dasharray:5 3;stroke-width:1.5}
.foot{color:#666;font-size:12px;margin-top:28px}
@media print{body{margin:0}.charts{page-break-inside:avoid}}
"""


def _html_table(t: Table) -> str:
    out = [f'<table id="t-{t.key}"><thead><tr>' + "".join(f"<th>{_esc(h)}</th>" for h in t.header) + "</tr></thead><tbody>"]
    n = len(t.rows)
    for r, row in enumerate(t.rows):
        cls = ' class="total"' if r >= n - t.total_rows else ""
        cells = []
        for c, v in enumerate(row):
            d = _cell_decimals(t, r, c)
            key = t.keys[r][c] if t.keys and r < len(t.keys) and c < len(t.keys[r]) else None
            classes = []
            if isinstance(v, (int, float)) and not isinstance(v, bool) or (v is None and d is not None):
                classes.append("n")
            if t.key == "plan" and c == len(row) - 1:
                classes.append({STATUS_LABELS["met"]: "met", STATUS_LABELS["not_met"]: "not_met"}.get(v, ""))
            attrs = (f' class="{" ".join(c_ for c_ in classes if c_)}"' if any(classes) else "") + \
                    (f' data-key="{_esc(key)}"' if key else "")
            cells.append(f"<td{attrs}>{_esc(format_cell(v, d))}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    if not t.rows:
        out.append(f'<tr><td colspan="{len(t.header)}">Không có số liệu.</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def render_html(data: ReportData) -> str:
    y = data.year
    tbls = tables(data)
    paras = narrative(data)
    body = [
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">',
        f"<title>{_esc(data.title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_esc(data.title)}</h1>",
        f'<div class="sub">Hợp tác xã (HTX), liên hiệp HTX và tổ hợp tác (THT) — số liệu đến 31/12/{y}</div>',
        "<h2>I. Tình hình chung</h2>",
        *[f'<p class="lead" id="p{i}">{_esc(p)}</p>' for i, p in enumerate(paras)],
        "<h2>II. Biểu đồ</h2>",
        '<div class="charts">', *charts(data), "</div>",
        "<h2>III. Các bảng số liệu</h2>",
    ]
    for t in tbls:
        if t.key == "backlog_list":
            continue
        body.append(f"<h3>{_esc(t.title)}</h3>")
        body.append(_html_table(t))
    bl = next(t for t in tbls if t.key == "backlog_list")
    body.append(f"<h2>{_esc(bl.title)}</h2>")
    body.append(_html_table(bl))
    body.append(
        f'<p class="foot">Nguồn: kho dữ liệu kinh tế tập thể của tỉnh ({_esc(Path(data.warehouse).name)}), '
        f"lập lúc {data.generated_at.strftime('%H:%M ngày %d/%m/%Y')}. Tiền: triệu đồng (tr.đ) trừ khi ghi khác; "
        "thu nhập: triệu đồng/người/tháng. Dấu “.” phân cách hàng nghìn, dấu “,” phân cách thập phân; "
        "“–”: không có số liệu.</p></body></html>"
    )
    return "\n".join(body)


# ---------------------------------------------------------------- Excel
def _num_format(decimals: int | None) -> str | None:
    if decimals is None:
        return None
    return "#,##0" if decimals == 0 else "#,##0." + "0" * decimals


def write_excel(data: ReportData, path: Path) -> Path:
    """The report's tables in one workbook (values are numbers, never formulas)."""
    tbls = tables(data)
    with SafeWorkbook(path) as wb:
        ws = wb.add_worksheet("Báo cáo")
        ws.set_column(0, 0, 120)
        wb.write(ws, 0, 0, data.title.upper(), {"bold": True, "font_size": 14})
        for i, p in enumerate(narrative(data), start=2):
            wb.write(ws, i, 0, p, {"text_wrap": True, "valign": "top"})
            ws.set_row(i, 15 * (len(p) // 110 + 1))
        wb.write(ws, len(narrative(data)) + 3, 0,
                 f"Nguồn: {Path(data.warehouse).name}, lập lúc {data.generated_at.strftime('%H:%M %d/%m/%Y')}.",
                 {"italic": True, "font_color": "#666666"})
        for t in tbls:
            ws = wb.add_worksheet(t.sheet)
            wb.write(ws, 0, 0, t.title, {"bold": True, "font_size": 12})
            wb.write_row(ws, 2, 0, t.header,
                         {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top",
                          "align": "center"})
            n = len(t.rows)
            for r, row in enumerate(t.rows):
                for c, v in enumerate(row):
                    props: dict[str, Any] = {"border": 1}
                    nf = _num_format(_cell_decimals(t, r, c))
                    if nf and isinstance(v, (int, float)):
                        props["num_format"] = nf
                    if r >= n - t.total_rows:
                        props["bold"] = True
                    wb.write(ws, 3 + r, c, v, props)
            ws.set_column(0, 0, 34)
            ws.set_column(1, len(t.header) - 1, 16)
            ws.set_row(2, 45)
            ws.freeze_panes(3, 1)
    return Path(path)


# ---------------------------------------------------------------- entry point
@dataclass
class ReportFiles:
    html: Path
    xlsx: Path


def build_report(year: int, warehouse: Path, out_dir: Path) -> ReportFiles:
    data = load_report_data(warehouse, year)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"bao-cao-ktt-{year}.html"
    html_path.write_text(render_html(data), encoding="utf-8")
    xlsx_path = write_excel(data, out_dir / f"bao-cao-ktt-{year}.xlsx")
    return ReportFiles(html_path, xlsx_path)
