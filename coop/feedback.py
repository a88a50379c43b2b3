"""District feedback (`coop feedback --year Y [--district D]`): what the province could not take.

One workbook per district with rejected rows or files that year, for the clerk to act on:

- "Tóm tắt": counts and what to do;
- "Ô bị lỗi": one line per rejected cell — file, sheet, Excel row, column, the value as
  sent (highlighted), the reason in Vietnamese, what a valid value looks like;
- one sheet per source sheet with rejected rows ("Dòng gốc 1", …): the sheet's own header
  and each rejected row re-read from the file in the raw folder, exactly as it was sent,
  the cells at fault filled red with the reason as a cell comment;
- "Tệp bị từ chối": files and sheets rejected whole, with the reason and the fix.

Nothing in it is a formula: every cell goes through `coop.exports.SafeWorkbook`.

Which records count: the audit tables keep history; their current state is the latest
run with status `published` (what load.py writes: every run re-records the quarantine of
all files). Without such a run, for each source file the records of the latest run that
recorded anything about it are used. Only files still present in the raw folder count.

Public:
    collect_feedback(year, warehouse, raw_dir, district=None) -> list[DistrictFeedback]
    build_feedback(year, warehouse, out_dir, raw_dir, district=None) -> list[Path]
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from xlsxwriter.utility import xl_col_to_name

from coop.exports import SafeWorkbook
from coop.template import TemplateColumn, slug, template_columns, valid_example
from schemas.forms import FORMS

COLUMN_VI = {
    "reg_code": "Mã số HTX", "name": "Tên", "commune": "Xã", "kind": "Loại hình", "established_on": "Ngày thành lập",
    "sector": "Lĩnh vực", "status": "Tình trạng", "members": "Số thành viên", "workers": "Số lao động",
    "revenue": "Doanh thu", "profit": "Lợi nhuận", "income": "Thu nhập bình quân", "rating": "Xếp loại",
    "ocop_stars": "OCOP", "high_tech": "Ứng dụng công nghệ cao", "support_type": "Nội dung hỗ trợ",
    "amount": "Số tiền", "participants": "Số lượt", "decision_no": "Số quyết định", "allocated_on": "Ngày quyết định",
    "code": "Mã chỉ tiêu", "label": "Chỉ tiêu", "unit": "Đơn vị", "target": "Kế hoạch",
}

# Reason codes (docs/architecture.md) -> Vietnamese, used when the audit reason has no sentence.
REASON_VI = {
    "missing_value": "Thiếu giá trị bắt buộc",
    "invalid_number": "Không phải là số",
    "not_integer": "Phải là số nguyên",
    "negative_value": "Không được là số âm",
    "not_positive": "Phải lớn hơn 0",
    "invalid_date": "Ngày không hợp lệ",
    "date_after_report_year": "Ngày sau năm báo cáo",
    "unknown_category": "Giá trị không có trong danh mục",
    "invalid_reg_code": "Mã số HTX không hợp lệ (chỉ gồm chữ số và dấu -)",
    "excel_error": "Ô chứa lỗi của Excel (#N/A, #REF!, #VALUE!...)",
    "duplicate_code": "Mã số HTX bị trùng trong biểu",
    "duplicate_group": "Tổ hợp tác bị trùng (cùng xã và tên)",
    "invalid_target": "Chỉ tiêu kế hoạch không hợp lệ",
    "unknown_plan_code": "Mã chỉ tiêu không có trong danh mục",
    "invalid_year_folder": "Thư mục năm không hợp lệ",
    "misplaced_file": "Tệp không nằm trong thư mục <năm>/<huyện>",
    "unknown_district": "Không xác định được huyện của thư mục",
    "district_not_valid_for_year": "Đơn vị hành chính không còn hiệu lực trong năm báo cáo",
    "unsupported_file_type": "Loại tệp không được hỗ trợ (dùng .xlsx, .xls, .ods hoặc .csv)",
    "unreadable_file": "Không mở được tệp (tệp hỏng hoặc có mật khẩu)",
    "empty_file": "Tệp rỗng",
    "no_recognized_form": "Không nhận ra biểu mẫu nào trong tệp (dòng tiêu đề cột không khớp)",
    "unrecognized_sheet": "Trang tính không có dòng tiêu đề của biểu mẫu (đã bỏ qua)",
    "form_not_allowed_here": "Biểu mẫu không đúng thư mục (chỉ tiêu kế hoạch chỉ đặt ở thư mục tỉnh)",
    "superseded": "Đã được thay bằng tệp gửi sau",
}
FILE_FIX_VI = {
    "unreadable_file": "Mở lại tệp trên máy, bỏ mật khẩu, lưu lại dạng .xlsx rồi gửi lại.",
    "empty_file": "Gửi lại tệp có số liệu.",
    "no_recognized_form": "Dùng biểu mẫu của tỉnh (`coop template`), giữ nguyên dòng tiêu đề cột.",
    "unsupported_file_type": "Lưu tệp dạng .xlsx (hoặc .xls, .ods, .csv) rồi gửi lại.",
    "unknown_district": "Đặt tệp vào thư mục mang tên hoặc mã huyện.",
    "district_not_valid_for_year": "Đơn vị đã sáp nhập: báo cáo chung trong tệp của đơn vị mới.",
    "misplaced_file": "Đặt tệp vào thư mục <năm>/<huyện>.",
    "invalid_year_folder": "Đặt tệp vào thư mục năm gồm 4 chữ số (ví dụ 2021).",
    "form_not_allowed_here": "Biểu của huyện đặt trong thư mục huyện; chỉ tiêu kế hoạch đặt trong thư mục tỉnh.",
    "superseded": "Không cần làm gì: tệp gửi sau đã được dùng.",
    "unrecognized_sheet": "Không cần làm gì nếu trang này không chứa số liệu báo cáo.",
}

RED = {"bg_color": "#F4B6B6", "bold": True}
HEAD = {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}


def fold(text: Any) -> str:
    """Case/diacritics-insensitive key; units in parentheses, line breaks and spaces dropped."""
    s = unicodedata.normalize("NFC", str(text or ""))
    s = re.sub(r"\(.*?\)", " ", s)
    s = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    return " ".join(s.split())


def _folder_key(text: str) -> str:
    s = fold(text).replace("-", " ").replace("_", " ")
    s = re.sub(r"^(huyen|thanh pho|tp\.?|thi xa)\s+", "", s)
    return s.replace(" ", "")


def reason_code(reason: str | None, code: str | None = None) -> str:
    if code:
        return code
    m = re.search(r"\[([a-z_]+)\]\s*$", reason or "")
    return m.group(1) if m else ""


def reason_vi(reason: str | None, code: str) -> str:
    """The audit's Vietnamese sentence; or the code's Vietnamese meaning when it has none."""
    text = (reason or "").strip()
    if text and not re.fullmatch(r"\[?[a-z_]+\]?", text):
        return text
    return f"{REASON_VI.get(code, code or 'Lỗi')} [{code}]" if code else text


class FeedbackError(ValueError):
    """Feedback cannot be made (unknown district)."""


@dataclass
class RejectedCell:
    source_file: str
    sheet: str | None
    row_number: int | None
    column_name: str | None
    raw_value: str | None
    reason: str
    code: str


@dataclass
class FileProblem:
    source_file: str
    sheet: str | None
    reason: str
    code: str


@dataclass
class DistrictFeedback:
    key: str                   # district code, or the folder name when it matched no district
    name: str
    year: int
    cells: list[RejectedCell] = field(default_factory=list)
    files: list[FileProblem] = field(default_factory=list)


def _table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?", [schema, table]
    ).fetchall()}


def _latest_per_file_sql(table: str, cols: str) -> str:
    return f"""
        WITH recs AS (
            SELECT t.*, coalesce(r.started_at, TIMESTAMP '1970-01-01') AS _ts
            FROM audit.{table} t LEFT JOIN audit.runs r USING (run_id)
            WHERE t.source_file LIKE ? ),
        latest AS (
            SELECT source_file, max(_ts) AS _ts FROM (
                SELECT f.source_file, coalesce(r.started_at, TIMESTAMP '1970-01-01') AS _ts
                FROM audit.rejected_rows f LEFT JOIN audit.runs r USING (run_id)
                UNION ALL
                SELECT f.source_file, coalesce(r.started_at, TIMESTAMP '1970-01-01')
                FROM audit.file_issues f LEFT JOIN audit.runs r USING (run_id)
            ) GROUP BY source_file)
        SELECT {cols} FROM recs JOIN latest USING (source_file, _ts)
    """


def resolve_source(raw_dir: Path, source_file: str) -> Path | None:
    """The file on disk for an audit `source_file`, also when the disk spells a name in
    another Unicode form (NFD folder names from some systems) than the NFC the audit keeps."""
    path = Path(raw_dir) / source_file
    if path.exists():
        return path
    cur = Path(raw_dir)
    for part in source_file.split("/"):
        want = unicodedata.normalize("NFC", part)
        try:
            cur = next(p for p in cur.iterdir() if unicodedata.normalize("NFC", p.name) == want)
        except (StopIteration, OSError):
            return None
    return cur


def collect_feedback(year: int, warehouse: Path, raw_dir: Path, district: str | None = None) -> list[DistrictFeedback]:
    """Rejected cells and files of `year`, grouped by district (read-only on the warehouse)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rr_cols = _table_columns(con, "audit", "rejected_rows")
        fi_cols = _table_columns(con, "audit", "file_issues")
        rr_code = "reason_code" if "reason_code" in rr_cols else "NULL"
        fi_code = "reason_code" if "reason_code" in fi_cols else "NULL"
        fi_sev = "severity" if "severity" in fi_cols else "NULL"
        rr_dist = "district_code" if "district_code" in rr_cols else "NULL"
        fi_dist = "district_code" if "district_code" in fi_cols else "NULL"
        like = f"{year}/%"
        # The audit tables keep history; their current state is the latest published run.
        latest = con.execute("SELECT run_id FROM audit.runs WHERE status = 'published' "
                             "ORDER BY started_at DESC LIMIT 1").fetchall()
        rr_sel = (f"source_file, sheet, row_number, column_name, raw_value, reason, {rr_code} AS code, "
                  f"{rr_dist} AS district_code")
        fi_sel = f"source_file, sheet, reason, {fi_code} AS code, {fi_sev} AS severity, {fi_dist} AS district_code"
        if latest:
            cells = con.execute(f"SELECT {rr_sel} FROM audit.rejected_rows WHERE run_id = ? AND source_file LIKE ? "
                                "ORDER BY source_file, sheet, row_number, column_name", [latest[0][0], like]).fetchall()
            issues = con.execute(f"SELECT {fi_sel} FROM audit.file_issues WHERE run_id = ? AND source_file LIKE ? "
                                 "ORDER BY source_file, sheet", [latest[0][0], like]).fetchall()
        else:  # no run marked published: per file, the latest run that recorded anything about it
            cells = con.execute(_latest_per_file_sql("rejected_rows", rr_sel)
                                + " ORDER BY source_file, sheet, row_number, column_name", [like]).fetchall()
            issues = con.execute(_latest_per_file_sql("file_issues", fi_sel) + " ORDER BY source_file, sheet",
                                 [like]).fetchall()
        districts = con.execute("SELECT district_code, district_name FROM core.dim_district").fetchall()
    finally:
        con.close()

    lookup: dict[str, tuple[str, str]] = {}
    for code, name in districts:
        lookup[_folder_key(code)] = (code, name)
        lookup[_folder_key(name)] = (code, name)
    for k in ("province", "tinh"):
        lookup[k] = ("province", "Tỉnh (chỉ tiêu kế hoạch)")

    names = {code: name for code, name in districts}

    try:
        from coop.reference import load_reference

        ref = load_reference()
    except Exception:  # reference not available: fold names here
        ref = None

    def find(folder: str) -> tuple[str, str]:
        if ref is not None:
            if ref.is_province_folder(folder):
                return lookup["province"]
            d = ref.find_district(folder)
            if d is not None:
                return d.code, names.get(d.code, d.name)
        return lookup.get(_folder_key(folder), (folder, folder))

    def district_of(source_file: str, code: str | None = None) -> tuple[str, str]:
        if code and code in names:
            return code, names[code]
        parts = source_file.split("/")
        return find(parts[1] if len(parts) > 2 else "(không rõ)")

    want = find(district)[0] if district else None
    if district and ref is not None and want not in names and want != "province":
        raise FeedbackError(f"Không biết huyện '{district}'.")

    raw_dir = Path(raw_dir)
    groups: dict[str, DistrictFeedback] = {}

    def group(source_file: str, dcode: str | None) -> DistrictFeedback | None:
        code, name = district_of(source_file, dcode)
        if want is not None and code != want:
            return None
        return groups.setdefault(code, DistrictFeedback(code, name, year))

    for sf, sheet, rn, col, raw, reason, code, dcode in cells:
        if resolve_source(raw_dir, sf) is None:
            continue
        g = group(sf, dcode)
        if g is not None:
            c = reason_code(reason, code)
            g.cells.append(RejectedCell(sf, sheet, rn, col, raw, reason_vi(reason, c), c))
    for sf, sheet, reason, code, severity, dcode in issues:
        c = reason_code(reason, code)
        if severity in ("ignored",) or c == "unrecognized_sheet":
            continue  # listed in the run report; nothing for the clerk to fix
        g = group(sf, dcode)
        if g is not None:
            g.files.append(FileProblem(sf, sheet, reason_vi(reason, c), c))
    return [groups[k] for k in sorted(groups)]


# ------------------------------------------------------------------ re-reading the source rows
@dataclass
class SourceSheet:
    # every index below is the 0-based Excel column (0 is A), whatever column the used range starts at
    header: list[Any]                 # header cell per Excel column (lowest non-empty header cell above)
    rows: dict[int, list[Any]]        # Excel row number -> cells as sent, per Excel column
    header_row: int | None = None
    columns: dict[str, int] = field(default_factory=dict)   # canonical column -> Excel column (reader's match)
    form: str | None = None                                   # form recognised by the reader


def _aliases() -> dict[str, set[str]]:
    """canonical column -> folded accepted headers, over every form of schemas.forms."""
    out: dict[str, set[str]] = {}
    for spec in FORMS.values():
        for c in spec.columns:
            out.setdefault(c.name, set()).update(fold(a) for a in c.aliases)
    return out


def _read_grid(path: Path, sheet: str | None) -> list[list[Any]] | None:
    """All cells of a sheet as a grid whose index i is Excel row i+1; None when not possible."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                ws = book[sheet] if sheet in book.sheetnames else book.worksheets[0]
                grid: list[list[Any]] = []
                for row in ws.iter_rows():
                    for cell in row:
                        if getattr(cell, "row", None) is None:
                            continue
                        while len(grid) < cell.row:
                            grid.append([])
                        cells = grid[cell.row - 1]
                        while len(cells) < cell.column:
                            cells.append(None)
                        cells[cell.column - 1] = cell.value
                return grid
            finally:
                book.close()
        if suffix == ".csv":
            text = path.read_bytes().decode("utf-8-sig")
            first = text.splitlines()[0] if text else ""
            delim = ";" if first.count(";") > first.count(",") else ","
            return [list(r) for r in csv.reader(text.splitlines(), delimiter=delim)]
    except Exception:
        return None
    return None  # .xls/.ods: row numbers are the reader's business; fall back to the audit values


def _read_with_reader(path: Path, sheet: str | None, row_numbers: list[int]) -> SourceSheet | None:
    """The rows through the reader's own functions (coop.read): same cells, same row numbers
    and the same header detection as the pipeline used."""
    try:
        from coop.read import find_header, read_sheets
    except Exception:
        return None
    try:
        sheets = read_sheets(path)
    except Exception:
        return None
    sh = next((x for x in sheets if x.name == sheet), sheets[0] if len(sheets) == 1 else None)
    if sh is None:
        return None
    found = find_header(sh)
    # the reader's grid starts at the first used column: pad it so index k is Excel column k
    pad: list[Any] = [None] * sh.first_column
    header: list[Any] = pad + (list(found[2]) if found else [None] * sh.width)
    hrow = sh.row_numbers[found[1]] if found else None
    index = {rn: i for i, rn in enumerate(sh.row_numbers)}
    rows = {rn: pad + [sh.columns[j][index[rn]] for j in range(sh.width)] for rn in row_numbers if rn in index}
    cols: dict[str, int] = {}
    if found:
        from schemas.forms import header_map

        cols = {k: sh.first_column + j for k, j in header_map(found[0], list(found[2])).items()}
    return SourceSheet(header, rows, hrow, cols, found[0] if found else None)


def read_source(raw_dir: Path, source_file: str, sheet: str | None, row_numbers: list[int]) -> SourceSheet | None:
    path = resolve_source(raw_dir, source_file)
    if path is None:
        return None
    via_reader = _read_with_reader(path, sheet, row_numbers)
    if via_reader is not None and via_reader.rows:
        return via_reader
    grid = _read_grid(path, sheet)
    if not grid:
        return None
    aliases = _aliases()
    all_aliases = set().union(*aliases.values())
    first_bad = min(row_numbers) if row_numbers else len(grid)
    best, best_score = None, 0
    for i in range(0, min(first_bad - 1, len(grid))):
        score = sum(1 for v in grid[i] if v is not None and fold(v) in all_aliases)
        if score > best_score:
            best, best_score = i, score
    width = max((len(grid[r - 1]) for r in row_numbers if 0 < r <= len(grid)), default=0)
    header: list[Any] = [None] * width
    if best is not None:
        width = max(width, len(grid[best]))
        header = [None] * width
        for c in range(width):
            for i in (best, best - 1):
                if i >= 0 and c < len(grid[i]) and grid[i][c] not in (None, ""):
                    header[c] = grid[i][c]
                    break
    rows = {r: list(grid[r - 1]) + [None] * (width - len(grid[r - 1])) for r in row_numbers if 0 < r <= len(grid)}
    return SourceSheet(header, rows, None if best is None else best + 1)


def fault_column(src: SourceSheet, cell: RejectedCell) -> int | None:
    """0-based Excel column of the cell at fault in the source row: by header alias, else by
    the raw value."""
    if cell.column_name in src.columns:
        return src.columns[cell.column_name]
    names = _aliases().get(cell.column_name or "", set())
    for i, h in enumerate(src.header):
        if h is not None and fold(h) in names:
            return i
    row = src.rows.get(cell.row_number or -1)
    if row is not None and cell.raw_value not in (None, ""):
        hits = [i for i, v in enumerate(row) if v is not None and str(v).strip() == str(cell.raw_value).strip()]
        if len(hits) == 1:
            return hits[0]
    return None


def _column(name: str | None, form: str | None = None) -> TemplateColumn | None:
    if not name:
        return None
    forms = [form] if form in FORMS else []
    for form in forms + list(FORMS):
        for c in template_columns(form):
            if c.name == name:
                return c
    return None


def _example(cell: RejectedCell, year: int, form: str | None = None) -> str:
    if cell.code == "duplicate_code":
        return "Mỗi HTX (mã số) chỉ ghi một dòng trong biểu; bỏ dòng trùng hoặc sửa mã số cho đúng"
    if cell.code == "duplicate_group":
        return "Mỗi tổ hợp tác (cùng xã và tên) chỉ ghi một dòng trong biểu; bỏ dòng trùng"
    col = _column(cell.column_name, form)
    return valid_example(col, year) if col else ""


# ------------------------------------------------------------------ workbook
def write_district_workbook(fb: DistrictFeedback, raw_dir: Path, path: Path) -> Path:
    y = fb.year
    with SafeWorkbook(path) as wb:
        ws = wb.add_worksheet("Tóm tắt")
        ws.set_column(0, 0, 110)
        lines = [
            (f"PHẢN HỒI KẾT QUẢ TIẾP NHẬN BÁO CÁO KINH TẾ TẬP THỂ NĂM {y}", {"bold": True, "font_size": 14}),
            (f"Đơn vị: {fb.name}" + (f" (mã {fb.key})" if fb.key.isdigit() else ""), {"bold": True}),
            ("", None),
            (f"Số ô bị lỗi: {len(fb.cells)} (trên {len({(c.source_file, c.sheet, c.row_number) for c in fb.cells})} "
             "dòng). Các dòng này chưa được tính vào số liệu của tỉnh.", None),
            (f"Số tệp hoặc trang tính bị từ chối: {len(fb.files)}.", None),
            ("", None),
            ("Cách sửa:", {"bold": True}),
            ("1. Trang “Ô bị lỗi”: mỗi dòng là một ô sai — tệp, trang tính, số dòng (như Excel hiển thị), cột, "
             "giá trị đã gửi, lý do và ví dụ giá trị hợp lệ.", {"text_wrap": True}),
            ("2. Các trang “Dòng gốc”: dòng bị từ chối đúng như đã gửi; ô sai tô màu đỏ, di chuột vào ô để xem lý do.",
             {"text_wrap": True}),
            ("3. Sửa các ô đó trong tệp gốc rồi gửi lại cả tệp vào thư mục của huyện: tệp gửi sau thay thế tệp trước.",
             {"text_wrap": True}),
            ("4. Trang “Tệp bị từ chối”: các tệp hoặc trang tính không dùng được và cách khắc phục.", {"text_wrap": True}),
        ]
        for i, (text, props) in enumerate(lines):
            wb.write(ws, i, 0, text, props)

        by_sheet: dict[tuple[str, str | None], list[RejectedCell]] = {}
        for c in fb.cells:
            by_sheet.setdefault((c.source_file, c.sheet), []).append(c)
        sources = {key: read_source(raw_dir, key[0], key[1], sorted({c.row_number for c in cells if c.row_number}))
                   for key, cells in by_sheet.items()}

        ws = wb.add_worksheet("Ô bị lỗi")
        header = ["Tệp", "Trang tính", "Dòng", "Cột", "Giá trị đã gửi", "Lý do", "Giá trị hợp lệ (ví dụ)"]
        wb.write_row(ws, 0, 0, header, HEAD)
        for r, c in enumerate(fb.cells, start=1):
            src = sources.get((c.source_file, c.sheet))
            idx = fault_column(src, c) if src is not None else None
            col_label = COLUMN_VI.get(c.column_name or "", c.column_name or "(cả dòng)")
            if idx is not None and idx < len(src.header) and src.header[idx] not in (None, ""):
                col_label = src.header[idx]  # the header as the clerk's sheet writes it
            wb.write_row(ws, r, 0, [c.source_file, c.sheet, c.row_number, col_label], {"border": 1})
            wb.write(ws, r, 4, c.raw_value, {**RED, "border": 1})
            wb.write(ws, r, 5, c.reason, {"border": 1, "text_wrap": True})
            wb.write(ws, r, 6, _example(c, y, src.form if src is not None else None),
                     {"border": 1, "text_wrap": True})
        for i, w in enumerate([34, 16, 7, 20, 24, 50, 60]):
            ws.set_column(i, i, w)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(fb.cells), 1), len(header) - 1)

        for n, ((sf, sheet), cells) in enumerate(sorted(by_sheet.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")), 1):
            ws = wb.add_worksheet(f"Dòng gốc {n}")
            row_numbers = sorted({c.row_number for c in cells if c.row_number})
            src = sources[(sf, sheet)]
            wb.write(ws, 0, 0, f"Tệp: {sf} — trang tính: {sheet or '(tệp CSV)'}", {"bold": True})
            if src is None or not src.rows:
                wb.write(ws, 1, 0, "Không đọc lại được tệp gốc; giá trị đã gửi của từng ô lỗi ở trang “Ô bị lỗi”.",
                         {"italic": True})
                continue
            wb.write(ws, 1, 0, (f"Dòng tiêu đề cột: dòng {src.header_row}. " if src.header_row else "")
                     + "Ô tô đỏ là ô bị lỗi (di chuột vào ô để xem lý do).", {"italic": True})
            # source Excel column k is output column 1 + k, under its own letter (row 3)
            width = max([len(src.header), *(len(v) for v in src.rows.values())])
            wb.write(ws, 2, 0, "Cột", HEAD)
            wb.write_row(ws, 2, 1, [xl_col_to_name(k) for k in range(width)], HEAD)
            wb.write(ws, 3, 0, "Dòng", HEAD)
            wb.write_row(ws, 3, 1, [h if h is not None else "" for h in src.header], HEAD)
            wb.write(ws, 3, width + 1, "Lý do", HEAD)
            r_out = 4
            for rn in row_numbers:
                values = src.rows.get(rn)
                mine = [c for c in cells if c.row_number == rn]
                wb.write(ws, r_out, 0, rn, {"border": 1, "bold": True})
                bad: dict[int, list[RejectedCell]] = {}
                for c in mine:
                    idx = fault_column(src, c)
                    if idx is not None:
                        bad.setdefault(idx, []).append(c)
                for i, v in enumerate(values or []):
                    if i in bad:
                        wb.write(ws, r_out, 1 + i, v, {**RED, "border": 1})
                        ws.write_comment(r_out, 1 + i, "\n".join(c.reason for c in bad[i]),
                                         {"x_scale": 2.5, "y_scale": 1.5})
                    else:
                        wb.write(ws, r_out, 1 + i, v, {"border": 1})
                wb.write(ws, r_out, width + 1, "; ".join(c.reason for c in mine), {"text_wrap": True})
                r_out += 1
            ws.set_column(1, width, 16)
            ws.set_column(width + 1, width + 1, 60)
            ws.freeze_panes(4, 1)

        ws = wb.add_worksheet("Tệp bị từ chối")
        wb.write_row(ws, 0, 0, ["Tệp", "Trang tính", "Lý do", "Cách khắc phục"], HEAD)
        for r, f in enumerate(fb.files, start=1):
            wb.write_row(ws, r, 0, [f.source_file, f.sheet or "(cả tệp)", f.reason, FILE_FIX_VI.get(f.code, "")],
                         {"border": 1, "text_wrap": True})
        if not fb.files:
            wb.write(ws, 1, 0, "Không có tệp nào bị từ chối.")
        for i, w in enumerate([40, 18, 60, 60]):
            ws.set_column(i, i, w)
    return path


def build_feedback(year: int, warehouse: Path, out_dir: Path, raw_dir: Path, district: str | None = None) -> list[Path]:
    """One workbook per district with rejected rows or files in `year`; returns the paths."""
    out_dir = Path(out_dir)
    paths = []
    for fb in collect_feedback(year, warehouse, raw_dir, district):
        if not fb.cells and all(f.code == "superseded" for f in fb.files):
            continue  # a superseded file alone is not a problem to report
        name = f"phan-hoi-{year}-{fb.key if fb.key.isdigit() else slug(fb.key)}-{slug(fb.name)}.xlsx"
        paths.append(write_district_workbook(fb, raw_dir, out_dir / name))
    return paths
