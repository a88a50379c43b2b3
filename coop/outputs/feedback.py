"""Unit feedback (`coop feedback --year Y [--unit U]`): what the province could not take.

One workbook per reporting unit with rejected rows or files that year — a commune of today
from 2025, a district up to 2024 (units.md) — for the clerk to act on:

- "Tóm tắt": the unit (name, code, former province), counts and what to do;
- "Ô bị lỗi": one line per rejected cell — file, sheet, Excel row, column, the value as
  sent (highlighted), the reason in Vietnamese, what a valid value looks like;
- one sheet per source sheet with rejected rows ("Dòng gốc 1", …): the sheet's own header
  and each rejected row re-read from the file in the raw folder with the pipeline's own
  reader (`coop.ingest.read`: same cells, row numbers and header detection as the run), the cells
  at fault filled red with the reason as a cell comment;
- "Tệp bị từ chối": files and sheets rejected whole, with the reason and the fix.

Every reader error shown to the clerk is a Vietnamese sentence with the technical detail
after it (`clerk_message`: "CalamineError: … Could not find EOCD" -> "Tệp bị hỏng hoặc
không phải bảng tính Excel (chi tiết: CalamineError: … Could not find EOCD)").
Nothing in a workbook is a formula: every cell goes through `coop.outputs.exports.SafeWorkbook`.

Which records count: the audit tables keep history; their current state is the latest
run with status `published` (what load.py writes: every run re-records the quarantine of
all files). Without such a run, for each source file the records of the latest run that
recorded anything about it are used. Only files still present in the raw folder count.

Which unit a record belongs to: its `unit_code` (audit.*, warehouse.md) through
`Reference.unit_by_code`; a record without one (the province folder, a folder that names
no unit of that year) by its folder through `Reference.is_province_folder` /
`Reference.find_unit(folder, year)`, else a group of its own for that folder.

Public:
    clerk_message(reason, code=None, sheet=None) -> str
    collect_feedback(year, warehouse, raw_dir, unit=None) -> list[UnitFeedback]
    build_feedback(year, warehouse, out_dir, raw_dir, unit=None) -> list[Path]
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from xlsxwriter.utility import xl_col_to_name

from coop.ingest.read import ReadError, find_header, read_sheets
from coop.outputs.exports import SafeWorkbook
from coop.outputs.template import TemplateColumn, slug, template_columns, valid_example
from coop.reference import REFORM_YEAR, Reference, Unit, load_reference
from coop.run.store import sha256_file
from coop.warehouse import queries
from schemas.forms import FORMS, header_map

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
    "formula_not_calculated": "Ô chứa công thức chưa có kết quả tính (tệp do phần mềm tạo ra); mở bằng Excel, lưu lại",
    "csv_unbalanced_quote": "Dấu ngoặc kép (\") mở mà không đóng trong tệp CSV",
    "csv_extra_cells": "Dòng CSV có nhiều ô hơn các dòng khác (số có dấu phẩy chưa đặt trong ngoặc kép?)",
    "duplicate_code": "Mã số HTX bị trùng trong biểu",
    "duplicate_group": "Tổ hợp tác bị trùng (cùng xã và tên)",
    "invalid_target": "Chỉ tiêu kế hoạch không hợp lệ",
    "unknown_plan_code": "Mã chỉ tiêu không có trong danh mục",
    "invalid_year_folder": "Thư mục năm không hợp lệ",
    "misplaced_file": "Tệp không nằm trong thư mục <năm>/<đơn vị>",
    "unknown_district": "Không xác định được huyện của thư mục",
    "unknown_commune": "Không xác định được xã, phường của thư mục",
    "ambiguous_unit": "Tên thư mục ứng với nhiều đơn vị",
    "district_after_reform": "Từ năm 2025 không còn cấp huyện: báo cáo do xã, phường gửi",
    "commune_before_reform": "Xã, phường mới (từ 01/07/2025) không báo cáo các năm đến 2024",
    "district_not_valid_for_year": "Đơn vị hành chính không còn hiệu lực trong năm báo cáo",
    "unsupported_file_type": "Loại tệp không được hỗ trợ (dùng .xlsx, .xls, .ods hoặc .csv)",
    "unreadable_file": "Không mở được tệp (tệp hỏng hoặc có mật khẩu)",
    "empty_file": "Tệp rỗng",
    "no_recognized_form": "Không nhận ra biểu mẫu nào trong tệp (dòng tiêu đề cột không khớp)",
    "unrecognized_sheet": "Trang tính không có dòng tiêu đề của biểu mẫu (đã bỏ qua)",
    "form_not_allowed_here": "Biểu mẫu không đúng thư mục (chỉ tiêu kế hoạch chỉ đặt ở thư mục tỉnh)",
    "two_tables_on_sheet": "Hai bảng đặt cạnh nhau trên một trang tính (trang chưa được đọc)",
    "superseded": "Đã được thay bằng tệp gửi sau",
}
FILE_FIX_VI = {
    "unreadable_file": "Mở lại tệp trên máy, bỏ mật khẩu, lưu lại dạng .xlsx rồi gửi lại.",
    "empty_file": "Gửi lại tệp có số liệu.",
    "no_recognized_form": "Dùng biểu mẫu của tỉnh (`coop template`), giữ nguyên dòng tiêu đề cột.",
    "unsupported_file_type": "Lưu tệp dạng .xlsx (hoặc .xls, .ods, .csv) rồi gửi lại.",
    "unknown_district": "Đặt tệp vào thư mục mang mã (hoặc tên) của huyện.",
    "unknown_commune": "Đặt tệp vào thư mục mang mã (hoặc tên) của xã, phường (từ năm 2025).",
    "ambiguous_unit": "Đổi tên thư mục thành mã đơn vị (mã trong lý do bên cạnh).",
    "district_after_reform": "Từ năm 2025 mỗi xã, phường gửi báo cáo của mình, trong thư mục mang mã xã, phường.",
    "commune_before_reform": "Báo cáo các năm đến 2024 đặt trong thư mục của huyện (đơn vị năm đó).",
    "district_not_valid_for_year": "Đơn vị đã sáp nhập: báo cáo chung trong tệp của đơn vị mới.",
    "misplaced_file": "Đặt tệp vào thư mục <năm>/<mã đơn vị>/ (xã, phường từ năm 2025; huyện đến năm 2024).",
    "invalid_year_folder": "Đặt tệp vào thư mục năm gồm 4 chữ số (ví dụ 2021).",
    "form_not_allowed_here": "Biểu của đơn vị đặt trong thư mục của đơn vị; chỉ tiêu kế hoạch đặt trong thư mục tỉnh.",
    "two_tables_on_sheet": "Chuyển một trong hai bảng sang một trang tính riêng (mỗi biểu một trang) rồi gửi lại.",
    "superseded": "Không cần làm gì: tệp gửi sau đã được dùng.",
    "unrecognized_sheet": "Không cần làm gì nếu trang này không chứa số liệu báo cáo.",
}

RED = {"bg_color": "#F4B6B6", "bold": True}
HEAD = {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}


# ------------------------------------------------------------------ messages for the clerk
_TAG = re.compile(r"\s*\[([a-z_]+)\]\s*$")
# Where the technical part of a reader message starts: an exception name, calamine's own
# words, an operating-system error, or the reader's terse CSV diagnoses (coop.ingest.read).
_TECHNICAL = re.compile(
    r"\b[A-Z]\w*(?:Error|Exception)\b|\bBadZipFile\b|calamine error|Permission denied|No such file"
    r"|không phải văn bản UTF-8|tệp nhị phân, không phải CSV|CSV lỗi ở dòng")


def _sentence(detail: str, sheet: str | None) -> str:
    """The Vietnamese sentence for a reader failure whose technical text is `detail`."""
    d = detail.lower()
    if "password" in d or "encrypt" in d:
        return "Tệp có mật khẩu hoặc đã bị mã hoá nên không đọc được"
    if "utf-8" in d:
        return "Tệp CSV không lưu theo bảng mã UTF-8 nên chữ tiếng Việt không đọc được"
    if "nhị phân" in d:
        return "Tệp mang đuôi .csv nhưng không phải tệp CSV (văn bản)"
    if "csv lỗi" in d:
        return "Tệp CSV sai cấu trúc (thường do dấu ngoặc kép không đóng)"
    if "permission denied" in d or "permissionerror" in d:
        return "Máy chủ của tỉnh không có quyền đọc tệp (báo người quản trị)"
    if "no such file" in d or "filenotfounderror" in d:
        return "Không tìm thấy tệp (đã bị xoá hoặc đổi tên trong lúc đọc)"
    if sheet:
        return f"Trang tính '{sheet}' bị hỏng, không đọc được (các trang khác của tệp vẫn được đọc)"
    if "xls error" in d and r"\x50\x4b" in d:  # a zip (.xlsx) signature in a file named .xls
        return "Tệp thực chất là bảng tính .xlsx nhưng mang đuôi .xls"
    if "ods error" in d:
        return "Tệp bị hỏng hoặc không phải bảng tính LibreOffice (.ods)"
    if any(k in d for k in ("zip", "eocd", "cfb", "ole", "xlsx error", "xls error", "calamine")):
        return "Tệp bị hỏng hoặc không phải bảng tính Excel"
    return "Không đọc được tệp"


def clerk_message(reason: str | None, code: str | None = None, sheet: str | None = None) -> str:
    """A reason as the clerk reads it: a Vietnamese sentence first, the technical detail
    after it. A reason that carries a reader's technical text ('… CalamineError: … Could
    not find EOCD [unreadable_file]') becomes 'Tệp bị hỏng hoặc không phải bảng tính Excel
    (chi tiết: CalamineError: … Could not find EOCD) [unreadable_file]'; any other reason is
    returned unchanged. The trailing '[reason_code]' is kept."""
    text = (reason or "").strip()
    tag = _TAG.search(text)
    body = text[:tag.start()] if tag else text
    code = tag.group(1) if tag else code
    found = _TECHNICAL.search(body)
    if found is None:
        return text
    detail = (body[found.start():].splitlines() or [""])[0].strip()  # calamine's "Context:" lines dropped
    while detail.endswith(")") and detail.count(")") > detail.count("("):
        detail = detail[:-1].rstrip()  # the closing bracket of the sentence the detail sat in
    return f"{_sentence(detail, sheet)} (chi tiết: {detail})" + (f" [{code}]" if code else "")


def reason_code(reason: str | None, code: str | None = None) -> str:
    if code:
        return code
    m = _TAG.search(reason or "")
    return m.group(1) if m else ""


def reason_vi(reason: str | None, code: str, sheet: str | None = None) -> str:
    """The audit's Vietnamese sentence (reader failures rephrased by `clerk_message`); or
    the code's Vietnamese meaning when the audit has only the code."""
    text = (reason or "").strip()
    if text and not re.fullmatch(r"\[?[a-z_]+\]?", text):
        return clerk_message(text, code, sheet)
    return f"{REASON_VI.get(code, code or 'Lỗi')} [{code}]" if code else text


class FeedbackError(ValueError):
    """Feedback cannot be made (a unit that does not report that year, an unreadable warehouse)."""


@dataclass
class RejectedCell:
    source_file: str
    sheet: str | None
    row_number: int | None
    column_name: str | None
    raw_value: str | None
    reason: str
    code: str
    file_hash: str | None = None


@dataclass
class FileProblem:
    source_file: str
    sheet: str | None
    reason: str
    code: str


@dataclass
class UnitFeedback:
    """The problems of one reporting unit (or of the province folder, or of a folder that
    names no unit of that year) in one report year."""

    key: str                   # unit code; 'province'; 'thu-muc:<folder>' for a folder that names no unit
    name: str                  # 'Xã Lạc Sơn', 'Huyện Lạc Sơn', 'Tỉnh Phú Thọ', "Thư mục 'ky-son'"
    year: int
    unit: Unit | None = None
    area: str = ""             # 'tỉnh Hòa Bình cũ' (a commune's former province) / 'tỉnh Hòa Bình'
    cells: list[RejectedCell] = field(default_factory=list)
    files: list[FileProblem] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        """'phan-hoi-2025-05266-xa-lac-son.xlsx', 'phan-hoi-2020-157-huyen-lac-son.xlsx'."""
        if self.unit is not None:
            return f"phan-hoi-{self.year}-{self.unit.code}-{slug(self.unit.full_name)}.xlsx"
        if self.key == "province":
            return f"phan-hoi-{self.year}-tinh.xlsx"
        return f"phan-hoi-{self.year}-thu-muc-{slug(self.key.split(':', 1)[1] or 'khac')}.xlsx"

    @property
    def folder_word(self) -> str:
        """Whose folder the corrected file goes back to."""
        if self.unit is not None:
            return "huyện" if self.unit.level == "district" else "xã, phường"
        if self.key == "province":
            return "tỉnh"
        return "xã, phường" if self.year >= REFORM_YEAR else "huyện"


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


_RR_COLS = "source_file, sheet, row_number, column_name, raw_value, reason, reason_code, unit_code, file_hash"
_FI_COLS = "source_file, sheet, reason, reason_code, severity, unit_code"
#: a row of `_RR_COLS` (audit.rejected_rows) and of `_FI_COLS` (audit.file_issues)
_RejectedCellRow = tuple[str, str | None, int | None, str | None, str | None, str | None, str | None, str | None,
                        str | None]
_FileIssueRow = tuple[str, str | None, str | None, str | None, str | None, str | None]


def _audit_records(warehouse: Path, year: int) -> tuple[list[_RejectedCellRow], list[_FileIssueRow]]:
    """(rejected cells, file issues) of report year `year` in the current state of the audit."""
    like = f"{year}/%"
    try:
        con = queries.connect_read_only(warehouse)
    except duckdb.Error as e:
        raise FeedbackError(f"Không mở được kho dữ liệu {warehouse} (chi tiết: {type(e).__name__}: "
                            f"{str(e).splitlines()[0]})") from None
    try:
        run_id = queries.latest_published_run(con)
        if run_id is not None:
            cells = con.execute(f"SELECT {_RR_COLS} FROM audit.rejected_rows WHERE run_id = ? AND source_file LIKE ? "
                                "ORDER BY source_file, sheet, row_number, column_name", [run_id, like]).fetchall()
            issues = con.execute(f"SELECT {_FI_COLS} FROM audit.file_issues WHERE run_id = ? AND source_file LIKE ? "
                                 "ORDER BY source_file, sheet", [run_id, like]).fetchall()
        else:  # no run marked published: per file, the latest run that recorded anything about it
            cells = con.execute(_latest_per_file_sql("rejected_rows", _RR_COLS)
                                + " ORDER BY source_file, sheet, row_number, column_name", [like]).fetchall()
            issues = con.execute(_latest_per_file_sql("file_issues", _FI_COLS) + " ORDER BY source_file, sheet",
                                 [like]).fetchall()
    except duckdb.Error as e:
        raise FeedbackError(f"Kho dữ liệu {warehouse} không có bảng kiểm soát (audit.*) như hiện nay — có thể được "
                            f"dựng bằng phiên bản cũ: chạy lại `coop run` (chi tiết: {type(e).__name__}: "
                            f"{str(e).splitlines()[0]})") from None
    finally:
        con.close()
    return cells, issues


def _wanted(ref: Reference, unit: str | None, year: int) -> str | None:
    """The group key `--unit` asks for (None: every group). FeedbackError with the
    reference's Vietnamese reason when it names no unit reporting that year."""
    if unit is None or not str(unit).strip():
        return None
    if ref.is_province_folder(unit):
        return "province"
    match = ref.find_unit(unit, year)
    if match.unit is None:
        raise FeedbackError(f"Không làm phản hồi năm {year} cho '{unit}': {match.message}. [{match.reason_code}]")
    return match.unit.code


def _group_of(ref: Reference, year: int, source_file: str, unit_code: str | None) -> UnitFeedback:
    """An empty UnitFeedback for the group a record belongs to (by unit_code, else by folder)."""
    if unit_code:
        u = ref.unit_by_code(unit_code)
        if u is not None:
            return UnitFeedback(u.code, u.full_name, year, u, ref.area_label(u))
        return UnitFeedback(unit_code, f"Đơn vị mã {unit_code}", year)
    parts = source_file.split("/")
    folder = parts[1] if len(parts) > 2 else ""
    if folder and ref.is_province_folder(folder):
        return UnitFeedback("province", f"Tỉnh {ref.province_name}", year)
    if folder:
        match = ref.find_unit(folder, year)
        if match.unit is not None:
            u = match.unit
            return UnitFeedback(u.code, u.full_name, year, u, ref.area_label(u))
        return UnitFeedback(f"thu-muc:{folder}", f"Thư mục '{folder}'", year)
    return UnitFeedback("thu-muc:", "Tệp đặt ngoài thư mục đơn vị", year)


def collect_feedback(year: int, warehouse: Path, raw_dir: Path, unit: str | None = None, *,
                     district: str | None = None) -> list[UnitFeedback]:
    """Rejected cells and files of `year`, grouped by reporting unit (read-only on the
    warehouse). `unit` (code or name; `district` is its former name) keeps one unit."""
    ref = load_reference()
    want = _wanted(ref, unit if unit is not None else district, year)
    cells, issues = _audit_records(Path(warehouse), year)
    raw_dir = Path(raw_dir)
    groups: dict[str, UnitFeedback] = {}

    def group(source_file: str, unit_code: str | None) -> UnitFeedback | None:
        g = _group_of(ref, year, source_file, unit_code)
        if want is not None and g.key != want:
            return None
        return groups.setdefault(g.key, g)

    for sf, sheet, rn, col, raw, reason, code, unit_code, file_hash in cells:
        if resolve_source(raw_dir, sf) is None:
            continue
        g = group(sf, unit_code)
        if g is not None:
            c = reason_code(reason, code)
            g.cells.append(RejectedCell(sf, sheet, rn, col, raw, reason_vi(reason, c), c, file_hash))
    for sf, sheet, reason, code, severity, unit_code in issues:
        c = reason_code(reason, code)
        if severity == "ignored" or c == "unrecognized_sheet":
            continue  # listed in the run report; nothing for the clerk to fix
        g = group(sf, unit_code)
        if g is not None:
            g.files.append(FileProblem(sf, sheet, reason_vi(reason, c, sheet), c))
    return [groups[k] for k in sorted(groups)]


# ------------------------------------------------------------------ re-reading the source rows
@dataclass
class SourceSheet:
    """Rejected rows of one source sheet as the reader (`coop.ingest.read`) reads them now. Every
    index below is the 0-based Excel column (0 is A), whatever column the used range starts at."""

    header: list[Any] = field(default_factory=list)      # header cell per Excel column
    rows: dict[int, list[Any]] = field(default_factory=dict)  # Excel row number -> cells as sent
    header_row: int | None = None
    columns: dict[str, int] = field(default_factory=dict)   # canonical column -> Excel column (reader's match)
    form: str | None = None                                   # form recognised by the reader
    error: str | None = None   # why the rows could not be re-read (Vietnamese, detail after)
    changed: bool = False      # the file on disk is not the one the run judged (hash differs)


def _read_failure(e: Exception) -> str:
    """A reader exception as a Vietnamese sentence with the detail after it."""
    text = " ".join(str(e).split("\n")[0].split()) if str(e) else type(e).__name__
    if isinstance(e, OSError) and not isinstance(e, ReadError):
        text = f"{type(e).__name__}: {e.strerror or e}"
    if "(chi tiết:" in text:
        return text  # the reader's own message (coop.ingest.read.reader_error_message): sentence, then detail
    out = clerk_message(text)
    return out if out != text else f"Không đọc được tệp (chi tiết: {text})"


def read_source(raw_dir: Path, source_file: str, sheet: str | None, row_numbers: list[int],
                file_hash: str | None = None) -> SourceSheet | None:
    """The rejected rows `row_numbers` of `sheet` re-read with the pipeline's reader
    (`coop.ingest.read.read_sheets` / `find_header`: same cells, Excel row numbers and header
    detection as the run, every format). None when the file is no longer in the raw folder;
    a SourceSheet with `error` (a Vietnamese sentence, the detail after it) when it cannot
    be read."""
    path = resolve_source(raw_dir, source_file)
    if path is None:
        return None
    try:
        changed = bool(file_hash) and sha256_file(path) != file_hash
        sheets = read_sheets(path)
    except (ReadError, OSError) as e:
        return SourceSheet(error=_read_failure(e))
    sh = next((x for x in sheets if x.name == sheet), sheets[0] if len(sheets) == 1 else None)
    if sh is None:
        return SourceSheet(error=f"Trong tệp không còn trang tính '{sheet}' (đã đổi tên hoặc xoá)", changed=changed)
    if sh.error:
        return SourceSheet(error=clerk_message(sh.error, sheet=sh.name), changed=changed)
    found = find_header(sh)
    # the reader's grid starts at the first used column: pad it so index k is Excel column k
    pad: list[Any] = [None] * sh.first_column
    header: list[Any] = pad + (list(found[2]) if found else [None] * sh.width)
    index = {rn: i for i, rn in enumerate(sh.row_numbers)}
    rows = {rn: pad + [sh.columns[j][index[rn]] for j in range(sh.width)] for rn in row_numbers if rn in index}
    if not found:
        return SourceSheet(header, rows, None, {}, None, changed=changed)
    cols = {k: sh.first_column + j for k, j in header_map(found[0], list(found[2])).items()}
    return SourceSheet(header, rows, sh.row_numbers[found[1]], cols, found[0], changed=changed)


def fault_column(src: SourceSheet, cell: RejectedCell) -> int | None:
    """0-based Excel column of the cell at fault: the column the reader matched to the
    cell's canonical column (None for a row-level problem or a column the header lacks)."""
    return src.columns.get(cell.column_name or "")


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
def write_unit_workbook(fb: UnitFeedback, raw_dir: Path, path: Path) -> Path:
    y = fb.year
    with SafeWorkbook(path) as wb:
        ws = wb.add_worksheet("Tóm tắt")
        ws.set_column(0, 0, 110)
        lines: list[tuple[str, dict[str, Any] | None]] = [
            (f"PHẢN HỒI KẾT QUẢ TIẾP NHẬN BÁO CÁO KINH TẾ TẬP THỂ NĂM {y}", {"bold": True, "font_size": 14}),
            (f"Đơn vị: {fb.name}" + (f" (mã {fb.unit.code}, {fb.area})" if fb.unit is not None else ""),
             {"bold": True}),
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
            (f"3. Sửa các ô đó trong tệp gốc rồi gửi lại cả tệp vào thư mục của {fb.folder_word}"
             + (f" ({y}/{fb.unit.code}/)" if fb.unit is not None else "") + ": tệp gửi sau thay thế tệp trước.",
             {"text_wrap": True}),
            ("4. Trang “Tệp bị từ chối”: các tệp hoặc trang tính không dùng được và cách khắc phục.",
             {"text_wrap": True}),
        ]
        for i, (text, props) in enumerate(lines):
            wb.write(ws, i, 0, text, props)

        by_sheet: dict[tuple[str, str | None], list[RejectedCell]] = {}
        for c in fb.cells:
            by_sheet.setdefault((c.source_file, c.sheet), []).append(c)
        sources = {key: read_source(raw_dir, key[0], key[1], sorted({c.row_number for c in cells if c.row_number}),
                                    next((c.file_hash for c in cells if c.file_hash), None))
                   for key, cells in by_sheet.items()}

        ws = wb.add_worksheet("Ô bị lỗi")
        header = ["Tệp", "Trang tính", "Dòng", "Cột", "Giá trị đã gửi", "Lý do", "Giá trị hợp lệ (ví dụ)"]
        wb.write_row(ws, 0, 0, header, HEAD)
        for r, c in enumerate(fb.cells, start=1):
            src = sources.get((c.source_file, c.sheet))
            idx = fault_column(src, c) if src is not None and not src.error else None
            col_label = COLUMN_VI.get(c.column_name or "", c.column_name or "(cả dòng)")
            if src is not None and idx is not None and idx < len(src.header) and src.header[idx] not in (None, ""):
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

        by_sheet_sorted = sorted(by_sheet.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        for n, ((sf, sheet), cells) in enumerate(by_sheet_sorted, 1):
            ws = wb.add_worksheet(f"Dòng gốc {n}")
            row_numbers = sorted({c.row_number for c in cells if c.row_number})
            src = sources[(sf, sheet)]
            wb.write(ws, 0, 0, f"Tệp: {sf} — trang tính: {sheet or '(tệp CSV)'}", {"bold": True})
            if src is None or src.error or not src.rows:
                why = (src.error if src is not None and src.error
                       else "trong tệp hiện tại không còn các dòng này" if src is not None
                       else "tệp không còn trong thư mục")
                wb.write(ws, 1, 0, f"Không đọc lại được tệp gốc: {why}. Giá trị đã gửi của từng ô lỗi ở trang "
                                   "“Ô bị lỗi”.", {"italic": True})
                continue
            wb.write(ws, 1, 0, (f"Dòng tiêu đề cột: dòng {src.header_row}. " if src.header_row else "")
                     + "Ô tô đỏ là ô bị lỗi (di chuột vào ô để xem lý do)."
                     + (" Lưu ý: tệp trong thư mục đã thay đổi sau lần tỉnh kiểm tra; các dòng dưới đây đọc từ "
                        "tệp hiện tại." if src.changed else ""), {"italic": True})
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


def build_feedback(year: int, warehouse: Path, out_dir: Path, raw_dir: Path, unit: str | None = None, *,
                   district: str | None = None) -> list[Path]:
    """One workbook per reporting unit with rejected rows or files in `year` (a commune from
    2025, a district before), named by unit code and name; returns the paths. `unit` keeps
    one unit (`district` is its former name); FeedbackError when it does not report that year."""
    out_dir = Path(out_dir)
    paths = []
    for fb in collect_feedback(year, warehouse, raw_dir, unit, district=district):
        if not fb.cells and all(f.code == "superseded" for f in fb.files):
            continue  # a superseded file alone is not a problem to report
        paths.append(write_unit_workbook(fb, raw_dir, out_dir / fb.file_name))
    return paths
