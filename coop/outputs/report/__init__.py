"""The province report (`coop report --year Y`): self-contained HTML and an Excel workbook.

Every figure comes from the published warehouse (opened read-only): the marts of the
output contract (`coop.outputs.report.queries`). The HTML is rendered from a Jinja2 template with
autoescape (`templates/report.html.j2`), with inline CSS and inline SVG charts
(`coop.outputs.report.charts`: functions from data to SVG, no JS, no CDN), so it opens offline and
prints. Numbers follow the Vietnamese convention: `.` groups thousands and `,` is the
decimal mark. Times are Vietnam's (Asia/Ho_Chi_Minh), written with the zone.

Across the 2025 reform (units.md): a report for Y ≥ 2025 is about today's province (its
communes), with a table per former-province area and per commune; a report for Y ≤ 2024 is
about the province as it was (its districts). Both show today's province restated with its
completeness flag ("chưa đủ: thiếu báo cáo của địa bàn Vĩnh Phúc cũ") and one chart of
the series per area across the reform.

Public functions:
    load_report_data(warehouse, year) -> ReportData
    render_html(data) -> str
    write_excel(data, path) -> Path
    build_report(year, warehouse, out_dir) -> ReportFiles
    vn_number(value, decimals) -> str; money_phrase(mvnd) -> str; people_phrase(n) -> str
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

from coop.outputs.exports import SafeWorkbook
from coop.outputs.report.charts import (
    TOTAL_COLOR,
    PlanBar,
    Series,
    nice_axis,
    svg_bars,
    svg_hbars,
    svg_lines,
    svg_plan,
)
from coop.outputs.report.numbers import attainment_pct, money_phrase, people_phrase, target_text, vn_number
from coop.outputs.report.queries import (
    ENTITY_TYPES,
    INDICATOR_COLS,
    REFORM_YEAR,
    SECTOR_LABELS,
    TIMEZONE,
    ReportData,
    ReportError,
    load_report_data,
    unit_word,
    vocab_labels,
)

__all__ = [
    "ReportData", "ReportError", "ReportFiles", "Table", "build_report", "charts", "load_report_data",
    "money_phrase", "narrative", "nice_axis", "people_phrase", "render_html", "tables", "target_text",
    "vn_number", "write_excel", "attainment_pct", "vocab_labels", "INDICATOR_COLS", "ENTITY_TYPES",
    "SECTOR_LABELS", "REFORM_YEAR",
]

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
REFORM_MARK = "1/7/2025: bỏ cấp huyện, cấp xã báo cáo"
BACKLOG_CHART_ROWS = 15
AREA_CHART_MAX = 8


def _area_label(data: ReportData, code: str) -> str:
    """"Hòa Bình cũ": a former province as an area of today's province."""
    return f"{data.area_name(code)} cũ"


def _where(data: ReportData) -> str:
    """"tỉnh Hòa Bình" / "tỉnh Phú Thọ" / "cả nước": whose figures the report gives."""
    if data.subject_code == "VN":
        return "cả nước"
    if data.subject_is_current and data.year < REFORM_YEAR:
        return f"tỉnh {data.subject_name} (địa giới hiện nay)"
    return f"tỉnh {data.subject_name}" if data.subject_name else "toàn tỉnh"


def _today(data: ReportData) -> str:
    """"tỉnh Phú Thọ (địa giới hiện nay)"."""
    if data.province_code == "VN":
        return "cả nước (34 tỉnh, thành phố hiện nay)"
    return f"tỉnh {data.province_name} (địa giới hiện nay)"


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
    parts = [f"{vn_number(p['active_count'])} {entity} đang hoạt động{note} "
             f"với {people_phrase(p['members'])} thành viên"]
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


def completeness_sentence(data: ReportData) -> str | None:
    """Today's province in year Y, restated or direct, and whether every unit reported."""
    flag = data.completeness_text()
    if flag is None:
        return None
    y = data.year
    if data.after_reform or data.province_code == "VN":
        return f"Số liệu toàn {('tỉnh' if data.province_code != 'VN' else 'quốc')} năm {y}: {flag}."
    formed = ""
    if len(data.areas) > 1:
        formed = (" (từ 1/7/2025 gồm địa bàn các tỉnh "
                  + ", ".join(data.area_name(a) for a in data.areas) + " cũ)")
    text = f"Tính theo địa giới tỉnh {data.province_name} hiện nay{formed}, số liệu năm {y}: {flag}"
    if not data.subject_is_current:
        text += f"; các số liệu trên là của {_where(data)}"
    return text + "."


def _area_sentence(data: ReportData) -> str | None:
    """Y ≥ 2025: active HTX (new in brackets) per former-province area."""
    bits = []
    for a in data.areas:
        h = data.area_row(a, "HTX")
        if h is None:
            bits.append(f"{_area_label(data, a)} chưa có báo cáo")
        else:
            bits.append(f"{_area_label(data, a)} {vn_number(h['active_count'])} HTX "
                        f"({vn_number(h['new_formed'])} thành lập mới)")
    if not bits:
        return None
    return "Theo địa bàn tỉnh cũ, số HTX đang hoạt động: " + "; ".join(bits) + "."


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
    first = f"Trong năm {y}, toàn {'quốc' if data.subject_code == 'VN' else 'tỉnh'} có " + ", ".join(new_bits) + "."
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

    reform: list[str] = []
    if data.after_reform:
        s = _area_sentence(data)
        if s:
            reform.append(s)
    s = completeness_sentence(data)
    if s:
        reform.append(s)
    if reform:
        paras.append(" ".join(reform))

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

    by_u = data.backlog_by_unit()
    n = len(data.backlog)
    if n:
        top = by_u[0]
        avg_wait = sum(r["waiting_days"] for r in data.backlog) / n
        paras.append(
            f"Đến 31/12/{y}, toàn tỉnh còn {vn_number(n)} HTX thành lập mới chưa bố trí được kinh phí hỗ trợ, "
            f"nhiều nhất là {top['unit_name']} ({vn_number(top['count'])} HTX); thời gian chờ bình quân "
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
    note: str = ""                # shown under the table (and under it in Excel)
    flag_cols: tuple[int, ...] = ()  # text columns whose non-empty cells are warnings (red)


def _ind(p: dict[str, Any] | None, col: str) -> Any:
    return None if p is None else p.get(col)


# the columns of the tables per unit (district, commune, area, sector): HTX six, THT four
UNIT_COLS = [("new_formed", "mới", 0), ("active_count", "đang hoạt động", 0), ("members", "thành viên", 0),
             ("avg_revenue_mvnd", "DT bình quân (tr.đ/năm)", 1), ("avg_profit_mvnd", "LN bình quân (tr.đ/năm)", 1),
             ("avg_income_mvnd_month", "TN bình quân (tr.đ/người/tháng)", 2)]
THT_COLS = UNIT_COLS[:4]
UNIT_HEADER = [*[f"HTX: {lab}" for _c, lab, _d in UNIT_COLS], *[f"THT: {lab}" for _c, lab, _d in THT_COLS]]
UNIT_DECIMALS: list[int | None] = [*[d for _c, _l, d in UNIT_COLS], *[d for _c, _l, d in THT_COLS]]


def _unit_cells(h: dict[str, Any] | None, t: dict[str, Any] | None,
                prefix: str | None) -> tuple[list[Any], list[str | None]]:
    vals = [*[_ind(h, c) for c, _l, _d in UNIT_COLS], *[_ind(t, c) for c, _l, _d in THT_COLS]]
    keys: list[str | None] = (
        [*[f"{prefix}.HTX.{c}" for c, _l, _d in UNIT_COLS], *[f"{prefix}.THT.{c}" for c, _l, _d in THT_COLS]]
        if prefix else [None] * len(vals))
    return vals, keys


def _by_key(rows: list[dict[str, Any]], kfield: str) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[kfield], {})[r["entity_type"]] = r
    return out


def _coverage_text(data: ReportData, year: int, area: str) -> str:
    cov = data.coverage.get((year, area))
    if cov is None:
        return "–"
    exp, rep = cov
    state = "đủ" if rep == exp else "chưa có" if rep == 0 else "thiếu"
    return f"{rep}/{exp} ({state})"


def tables(data: ReportData) -> list[Table]:
    y = data.year
    out: list[Table] = []
    total_label = "Cả nước" if data.subject_code == "VN" else "Toàn tỉnh"

    # 1. the subject's indicators, HTX and THT, year Y-1 and Y
    header = ["Chỉ tiêu", "Đơn vị tính", f"HTX {y - 1}", f"HTX {y}", f"THT {y - 1}", f"THT {y}"]
    rows, keys, decs = [], [], []
    for col, (label, unit, d) in INDICATOR_LABELS.items():
        if col in ("ocop_count", "high_tech_count"):
            unit = "HTX"
        vals = [_ind(data.prov(e, yy), col) for e in ENTITY_TYPES for yy in (y - 1, y)]
        rows.append([label, unit, *vals])
        keys.append([None, None, *[f"province.{yy}.{e}.{col}" for e in ENTITY_TYPES for yy in (y - 1, y)]])
        decs.append(d)
    note = ""
    if data.subject_is_current and data.complete(y - 1) is False and (y - 1, "HTX") in data.province:
        restated = "tính lại theo địa giới hiện nay, " if y - 1 < REFORM_YEAR else ""
        note = f"Năm {y - 1}: {restated}{data.completeness_text(y - 1)}."
    out.append(Table("province", f"Bảng 1. Chỉ tiêu HTX và THT {_where(data)} năm {y} (so với năm {y - 1})",
                     "Toàn tỉnh", header, rows, [None, None, 0, 0, 0, 0], keys,
                     row_decimals=decs, row_dec_cols=(2, 3, 4, 5), note=note))

    # 2. by former-province area, with today's province restated and its completeness
    rows, keys = [], []
    for a in data.areas:
        vals, ks = _unit_cells(data.area_row(a, "HTX"), data.area_row(a, "THT"), f"area.{a}")
        rows.append([_area_label(data, a), *vals, _coverage_text(data, y, a)])
        keys.append([None, *ks, f"area.{a}.coverage"])
    vals, _ks = _unit_cells(data.cur("HTX"), data.cur("THT"), "current")
    rows.append([total_label if data.province_code == "VN" else
                 f"Tỉnh {data.province_name} (địa giới hiện nay)" if y < REFORM_YEAR else
                 f"Toàn tỉnh {data.province_name}",
                 *vals, data.completeness_text() or "–"])
    keys.append([None, *_ks, "current.coverage"])
    word = unit_word(y)
    title = (f"Bảng 2. Chỉ tiêu theo địa bàn tỉnh cũ năm {y}" if y >= REFORM_YEAR else
             f"Bảng 2. Chỉ tiêu theo tỉnh cũ (địa bàn tỉnh {data.province_name} hiện nay) năm {y}")
    out.append(Table("area", title, "Theo địa bàn",
                     ["Địa bàn (tỉnh cũ)", *UNIT_HEADER, f"Báo cáo đã nhận ({word})"], rows,
                     [None, *UNIT_DECIMALS, None], keys, total_rows=1, flag_cols=(len(UNIT_HEADER) + 1,),
                     note=(f"Dòng cuối: {_today(data)}"
                           + (", tính lại bằng tổng các tỉnh cũ" if y < REFORM_YEAR else "")
                           + f"; “chưa đủ” khi có {word} phải báo cáo năm {y} mà chưa gửi sổ HTX, THT nào.")))

    # 3. by district (≤ 2024) or by commune (≥ 2025)
    if y < REFORM_YEAR:
        grouped = _by_key(data.districts, "district_code")
        several = len({r.get("province_code") for r in data.districts}) > 1
        rows, keys = [], []
        for code, by_e in grouped.items():
            any_row = next(iter(by_e.values()))
            name = any_row["district_name"] or code
            if several and any_row.get("province_code"):
                name += f" ({data.area_name(any_row['province_code'])})"
            vals, ks = _unit_cells(by_e.get("HTX"), by_e.get("THT"), f"district.{code}")
            rows.append([name, *vals])
            keys.append([None, *ks])
        vals, ks = _unit_cells(data.prov("HTX"), data.prov("THT"), None)
        rows.append([total_label, *vals])
        keys.append([None, *ks])
        out.append(Table("district", f"Bảng 3. Chỉ tiêu theo huyện, thành phố năm {y}", "Theo huyện",
                         ["Huyện, thành phố", *UNIT_HEADER], rows, [None, *UNIT_DECIMALS], keys, total_rows=1))
    else:
        grouped = _by_key(data.communes, "commune_code")
        rows, keys = [], []
        approx_any = False
        for code, by_e in grouped.items():
            any_row = next(iter(by_e.values()))
            approx = any(bool(r.get("approximate")) for r in by_e.values())
            approx_any = approx_any or approx
            vals, ks = _unit_cells(by_e.get("HTX"), by_e.get("THT"), f"commune.{code}")
            rows.append([any_row["commune_name"] or code, _area_label(data, any_row["area_code"] or ""), *vals,
                         "gần đúng (*)" if approx else ""])
            keys.append([None, f"commune.{code}.area", *ks, f"commune.{code}.approximate"])
        vals, ks = _unit_cells(data.cur("HTX"), data.cur("THT"), None)
        rows.append([total_label, "", *vals, ""])
        keys.append([None, None, *ks, None])
        exp_rep = data.cur("HTX") or data.cur("THT") or {}
        note = (f"Đã nhận báo cáo của {exp_rep.get('units_reported', '–')}/{exp_rep.get('units_expected', '–')} "
                f"{word}; xã, phường chưa báo cáo không có dòng trong bảng.")
        if approx_any:
            note += (" (*) Gần đúng: có HTX, THT tính qua xã cũ bị chia cho nhiều xã, phường mới "
                     "(gán vào xã, phường mặc định của bộ dữ liệu đơn vị hành chính).")
        out.append(Table("commune", f"Bảng 3. Chỉ tiêu theo xã, phường năm {y}", "Theo xã",
                         ["Xã, phường", "Địa bàn (tỉnh cũ)", *UNIT_HEADER, "Ghi chú"], rows,
                         [None, None, *UNIT_DECIMALS, None], keys, total_rows=1, note=note,
                         flag_cols=(len(UNIT_HEADER) + 2,)))

    # 4. by sector
    rows, keys = [], []
    for sector, by_e in _by_key(data.sectors, "sector").items():
        vals, ks = _unit_cells(by_e.get("HTX"), by_e.get("THT"), f"sector.{sector}")
        rows.append([data.sector_labels.get(sector, sector), *vals])
        keys.append([None, *ks])
    vals, ks = _unit_cells(data.prov("HTX"), data.prov("THT"), None)
    rows.append([total_label, *vals])
    keys.append([None, *ks])
    out.append(Table("sector", f"Bảng 4. Chỉ tiêu theo lĩnh vực năm {y}", "Theo lĩnh vực",
                     ["Lĩnh vực", *UNIT_HEADER], rows, [None, *UNIT_DECIMALS], keys, total_rows=1))

    # 5. plan vs actual
    rows, keys, decs = [], [], []
    for r in data.plan:
        label, unit = PLAN_LABELS.get(r["indicator_code"], (r["indicator_code"], ""))
        d = PLAN_DECIMALS.get(r["indicator_code"], 0)
        decs.append(d)
        rows.append([label, unit, target_text(r["target_min"], r["target_max"], d), r["actual"],
                     attainment_pct(r["actual"], r["target_min"], r["indicator_code"]),
                     STATUS_LABELS.get(r["status"], r["status"])])
        keys.append([None, None, f"plan.{r['indicator_code']}.target", f"plan.{r['indicator_code']}.actual",
                     f"plan.{r['indicator_code']}.attainment", f"plan.{r['indicator_code']}.status"])
    out.append(Table("plan", f"Bảng 5. Thực hiện kế hoạch năm {y}", "Kế hoạch",
                     ["Chỉ tiêu", "Đơn vị tính", "Kế hoạch", "Thực hiện", "Tỷ lệ so với kế hoạch (%)", "Đánh giá"],
                     rows, [None, None, None, 0, 1, None], keys, row_decimals=decs, row_dec_cols=(3,)))

    # 6. backlog by reporting unit
    unit_head = "Xã, phường" if y >= REFORM_YEAR else "Huyện, thành phố"
    by = "xã" if y >= REFORM_YEAR else "huyện"
    rows, keys = [], []
    for r in data.backlog_by_unit():
        rows.append([r["unit_name"], r["count"], r["avg_wait_days"], r["max_wait_days"]])
        c = r["unit_code"]
        keys.append([None, f"backlog.{c}.count", f"backlog.{c}.avg_wait", f"backlog.{c}.max_wait"])
    if data.backlog:
        w = [r["waiting_days"] for r in data.backlog]
        rows.append([total_label, len(w), sum(w) / len(w), max(w)])
        keys.append([None, "backlog.total.count", "backlog.total.avg_wait", "backlog.total.max_wait"])
    out.append(Table("backlog", f"Bảng 6. HTX thành lập mới chưa được bố trí kinh phí hỗ trợ đến 31/12/{y}, "
                     f"theo {'xã, phường' if y >= REFORM_YEAR else 'huyện'}", f"Chưa hỗ trợ theo {by}",
                     [unit_head, "Số HTX chờ hỗ trợ", "Thời gian chờ bình quân (ngày)",
                      "Thời gian chờ lâu nhất (ngày)"], rows, [None, 0, 0, 0], keys,
                     total_rows=1 if data.backlog else 0))

    # 7. backlog list (appendix)
    rows = [[r["unit_name"], r["reg_code"], r["name"], r["established_on"], r["waiting_days"]] for r in data.backlog]
    out.append(Table("backlog_list", f"Phụ lục. Danh sách HTX chưa được bố trí kinh phí hỗ trợ thành lập mới "
                     f"đến 31/12/{y}", "Danh sách chờ hỗ trợ",
                     [unit_head, "Mã số HTX", "Tên HTX", "Ngày thành lập", "Số ngày chờ"],
                     rows, [None, None, None, None, 0], []))
    return out


def _cell_decimals(t: Table, r: int, c: int) -> int | None:
    if t.row_decimals is not None and c in t.row_dec_cols:
        return t.row_decimals[r]
    return t.decimals[c] if c < len(t.decimals) else None


def format_cell(value: object, decimals: int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if decimals is None or not isinstance(value, (int, float)):
        return str(value)
    return vn_number(value, decimals)


def _is_warning(v: object) -> bool:
    """A completeness or approximation remark that the reader must see (shown red)."""
    return isinstance(v, str) and any(w in v for w in ("chưa", "thiếu", "gần đúng"))


def _html_rows(t: Table) -> list[dict[str, Any]]:
    """The table as the template draws it: per row its class and cells (text, class, data-key)."""
    out = []
    n = len(t.rows)
    for r, row in enumerate(t.rows):
        cells = []
        for c, v in enumerate(row):
            d = _cell_decimals(t, r, c)
            key = t.keys[r][c] if t.keys and r < len(t.keys) and c < len(t.keys[r]) else None
            classes = []
            if (isinstance(v, (int, float)) and not isinstance(v, bool)) or (v is None and d is not None):
                classes.append("n")
            if t.key == "plan" and c == len(row) - 1:
                classes.append({STATUS_LABELS["met"]: "met", STATUS_LABELS["not_met"]: "not_met"}.get(v, ""))
            if c in t.flag_cols and _is_warning(v):
                classes.append("warn")
            cells.append({"text": format_cell(v, d), "cls": " ".join(x for x in classes if x), "key": key})
        out.append({"cls": "total" if r >= n - t.total_rows else "", "cells": cells})
    return out


# ---------------------------------------------------------------- charts
@dataclass
class Figure:
    key: str
    svg: Markup                   # inline SVG, embedded as it is
    wide: bool = False
    note: str = ""


def _reform_index(years: list[int]) -> int | None:
    if REFORM_YEAR - 1 in years and REFORM_YEAR in years:
        return years.index(REFORM_YEAR)
    return None


def _missing_by_years(data: ReportData, years: list[int]) -> list[str]:
    """["2018–2020: thiếu báo cáo của địa bàn Phú Thọ cũ, Vĩnh Phúc cũ", "2025: …"]: runs of
    consecutive years with the same missing areas."""
    runs: list[tuple[int, int, str]] = []
    for y in years:
        row = data.cur("HTX", y) or data.cur("THT", y) or {}
        codes = [c.strip() for c in str(row.get("areas_missing") or "").split(",") if c.strip()]
        text = ("thiếu báo cáo của địa bàn " + ", ".join(_area_label(data, c) for c in codes)) if codes else "chưa đủ"
        if runs and runs[-1][1] == y - 1 and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], y, text)
        else:
            runs.append((y, y, text))
    return [f"{a}{'–' + str(b) if b != a else ''}: {t}" for a, b, t in runs]


class _YearAxis(TypedDict):
    """The keyword arguments every chart over the years shares (svg_bars, svg_lines)."""

    reform_at: int | None
    reform_label: str
    cat_keys: list[str]


def charts(data: ReportData) -> list[Figure]:
    out: list[Figure] = []

    # the one series across the reform: active HTX per former-province area + today's province
    ys = data.series_years
    if data.areas or data.current:
        incomplete = set(data.incomplete_years())
        drawn = list(data.areas)
        if len(drawn) > AREA_CHART_MAX:  # the whole country: the areas with figures, if they fit one chart
            drawn = [a for a in drawn if any((y, a, "HTX") in data.area_rows for y in ys)]
            drawn = drawn if len(drawn) <= AREA_CHART_MAX else []
        area_series = [Series(_area_label(data, a), [_ind(data.area_row(a, "HTX", y), "active_count") for y in ys],
                              key=f"area.{a}") for a in drawn]
        area_series.append(Series(f"{'Cả nước' if data.province_code == 'VN' else 'Toàn tỉnh ' + data.province_name}",
                             [_ind(data.cur("HTX", y), "active_count") for y in ys], key="current",
                             color=TOTAL_COLOR, faded=[y in incomplete for y in ys]))
        note = "“–”: địa bàn chưa có báo cáo năm đó."
        if incomplete:
            note += (" Cột nhạt: toàn tỉnh (địa giới hiện nay; trước 2025 tính lại bằng tổng các tỉnh cũ) chưa đủ "
                     "báo cáo năm đó — " + "; ".join(_missing_by_years(data, sorted(incomplete))) + ".")
        out.append(Figure("area_active", svg_bars(
            "area_active", "Số HTX đang hoạt động (31/12) theo địa bàn tỉnh cũ và toàn tỉnh, "
            + (f"{ys[0]}–{ys[-1]}" if len(ys) > 1 else f"năm {ys[0]}"),
            [str(y) for y in ys], area_series, width=1140, height=340, reform_at=_reform_index(ys),
            reform_label=REFORM_MARK, wide=True), wide=True, note=note))

    # the subject's series (today's province restated when it is the subject: incomplete years starred)
    years = data.years
    starred = set(data.incomplete_years()) if data.subject_is_current else set()
    cats = [f"{y}*" if y in starred else str(y) for y in years]
    keys = [str(y) for y in years]
    reform_at = _reform_index(years)
    note = ("* Năm chưa đủ báo cáo của các địa bàn (số liệu toàn tỉnh tính lại theo địa giới hiện nay)."
            if starred else "")

    def series(entity: str, col: str) -> list[float | None]:
        return [_ind(data.prov(entity, y), col) for y in years]

    def pair(col: str) -> list[Series]:
        return [Series("HTX", series("HTX", col), key="HTX"), Series("THT", series("THT", col), key="THT")]

    common: _YearAxis = {"reform_at": reform_at, "reform_label": "2025: cấp xã", "cat_keys": keys}
    out += [
        Figure("active", svg_bars("active", "Số HTX, THT đang hoạt động qua các năm", cats, pair("active_count"),
                                  **common), note=note),
        Figure("new", svg_bars("new", "Số HTX, THT thành lập mới qua các năm", cats, pair("new_formed"), **common),
               note=note),
        Figure("revenue", svg_lines("revenue", "Doanh thu bình quân (triệu đồng/năm)", cats,
                                    pair("avg_revenue_mvnd"), **common), note=note),
        Figure("profit", svg_lines("profit", "Lợi nhuận bình quân (triệu đồng/năm)", cats,
                                   pair("avg_profit_mvnd"), **common), note=note),
        Figure("income", svg_lines("income", "Thu nhập bình quân (triệu đồng/người/tháng)", cats,
                                   pair("avg_income_mvnd_month"), decimals=2, **common), note=note),
    ]

    bu = data.backlog_by_unit()
    if bu:
        shown = bu[:BACKLOG_CHART_ROWS]
        by = "xã, phường" if data.after_reform else "huyện"
        more = f"; {len(bu) - len(shown)} {by} khác ở Bảng 6" if len(bu) > len(shown) else ""
        out.append(Figure("backlog", svg_hbars(
            "backlog", f"HTX chờ hỗ trợ thành lập mới theo {by} (31/12/{data.year})",
            [r["unit_name"] for r in shown], [r["count"] for r in shown], keys=[r["unit_code"] for r in shown],
            unit=" HTX"), note=f"{len(shown)} {by} có nhiều HTX chờ nhất{more}." if more else ""))

    if data.plan:
        bars = []
        for r in data.plan:
            code = r["indicator_code"]
            label, unit = PLAN_LABELS.get(code, (code, ""))
            d = PLAN_DECIMALS.get(code, 0)
            tgt = target_text(r["target_min"], r["target_max"], d)
            if code.endswith("_pct"):
                value = r["actual"]
                text = (f"{vn_number(value, 1)}% (KH {tgt}%)" if value is not None
                        else f"chưa có số liệu (KH {tgt}%)")
                bars.append(PlanBar(code, label, "growth", value, r["status"], text, r["target_min"], r["target_max"]))
            else:
                value = attainment_pct(r["actual"], r["target_min"], code)
                if value is not None:
                    text = f"{vn_number(value, 0)}% ({vn_number(r['actual'], d)}/{tgt} {unit})"
                elif r["actual"] is not None:
                    text = f"{vn_number(r['actual'], d)} {unit} (KH {tgt})"
                else:
                    text = f"chưa có số liệu (KH {tgt} {unit})"
                bars.append(PlanBar(code, label, "count", value, r["status"], text))
        out.append(Figure("plan", svg_plan("plan", f"Thực hiện kế hoạch năm {data.year}", bars), wide=True))
    return out


# ---------------------------------------------------------------- HTML
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                       autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def footer_time(moment: dt.datetime) -> str:
    """"10:05 ngày 29/11/2026 (giờ Việt Nam, Asia/Ho_Chi_Minh, UTC+07:00)"."""
    off = moment.utcoffset() or dt.timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    utc = f"UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
    return f"{moment.strftime('%H:%M ngày %d/%m/%Y')} (giờ Việt Nam, {TIMEZONE}, {utc})"


def _subtitle(data: ReportData) -> str:
    y = data.year
    base = f"Hợp tác xã (HTX), liên hiệp HTX và tổ hợp tác (THT) — số liệu đến 31/12/{y}"
    if not data.subject_is_current and data.province_code not in ("", "VN") and (
            data.subject_code != data.province_code or len(data.areas) > 1):
        base += f"; tỉnh {data.subject_name} nay thuộc tỉnh {data.province_name}"
    elif data.subject_is_current and y < REFORM_YEAR:
        base += f"; tính theo địa giới hiện nay của tỉnh {data.province_name}"
    return base


def render_html(data: ReportData) -> str:
    tbls = tables(data)
    flag = data.completeness_text()
    ctx = {
        "data": data,
        "title": data.title,
        "subtitle": _subtitle(data),
        "flag": None if flag is None else {
            "ok": data.complete() is True,
            "who": _today(data)[:1].upper() + _today(data)[1:] + (f" năm {data.year}" if data.year >= REFORM_YEAR else
                                   f" năm {data.year}, tính lại bằng tổng các tỉnh cũ"),
            "text": flag,
        },
        "paras": narrative(data),
        "charts": charts(data),
        "tables": [{"t": t, "rows": _html_rows(t)} for t in tbls if t.key != "backlog_list"],
        "appendix": next({"t": t, "rows": _html_rows(t)} for t in tbls if t.key == "backlog_list"),
        "source": Path(data.warehouse).name,
        "generated": footer_time(data.generated_at),
    }
    return _environment().get_template("report.html.j2").render(**ctx)


# ---------------------------------------------------------------- Excel
def _num_format(decimals: int | None) -> str | None:
    if decimals is None:
        return None
    return "#,##0" if decimals == 0 else "#,##0." + "0" * decimals


def write_excel(data: ReportData, path: Path) -> Path:
    """The report's tables in one workbook (values are numbers, never formulas)."""
    tbls = tables(data)
    paras = narrative(data)
    with SafeWorkbook(path) as wb:
        ws = wb.add_worksheet("Báo cáo")
        ws.set_column(0, 0, 120)
        wb.write(ws, 0, 0, data.title.upper(), {"bold": True, "font_size": 14})
        for i, p in enumerate(paras, start=2):
            wb.write(ws, i, 0, p, {"text_wrap": True, "valign": "top"})
            ws.set_row(i, 15 * (len(p) // 110 + 1))
        wb.write(ws, len(paras) + 3, 0,
                 f"Nguồn: {Path(data.warehouse).name}, lập lúc {footer_time(data.generated_at)}.",
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
                    if c in t.flag_cols and _is_warning(v):
                        props["font_color"] = "#A31F2E"
                    wb.write(ws, 3 + r, c, v, props)
            if t.note:
                wb.write(ws, 4 + n, 0, t.note, {"italic": True})
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
