"""Open a spreadsheet and find its forms: `.xlsx/.xlsm/.xls/.ods` (fastexcel/calamine) and
`.csv` -> `Sheet`s of typed cells with Excel row numbers -> `FormSheet`s (header detected,
layout rows skipped).

Cell types (checked with fastexcel 0.21 by experiment):
- Each sheet is loaded three times with `header_row=None, skip_rows=0` (so row 0 is Excel
  row 1 even when the used range starts lower; the first used *column* is column 0, its
  Excel index given by fastexcel's `ColumnInfo.absolute_index` -> `Sheet.first_column`) and
  the dtypes "string", "float" and "boolean". `to_arrow_with_errors()` lists the cells
  that did not fit the dtype, with calamine's cell variant in the detail text:
  `String("…")`, `Error(NA)`, `DateTime(ExcelDateTime { value: 43832.0, …, is_1904: false })`,
  `DateTimeIso("2020-01-02")` (ODS), `Duration…`. The boolean load refuses every text,
  error and date cell (numbers and booleans it takes), so its error list gives each cell's
  kind; a boolean is a cell it took whose string load is "true"/"false" (a number never
  reads so). The "float" load converts text that looks like a number ("3.240" -> 3.24), so
  the kind decides: a text cell is parsed by the Vietnamese rules, a numeric cell is used
  as is (1234.567 stays 1234.567).
- Dates are computed here from the serial in the `DateTime(…)` detail (1900 or 1904
  system, as calamine does), only for the cells that are dates: fastexcel's "datetime" load
  is never used, because it converts *every* numeric cell to a date — a 10-digit
  registration code overflows, a number <= -1.07e11 panics inside the reader
  (`PanicException`, a BaseException). A date cell whose serial is out of range
  (year outside 1..9999) is kept as a number (the date rule then quarantines it).
- Excel error cells come back null in the string load; their code is taken from the error
  detail (`Error(NA)` -> "#N/A").
- A sheet the reader fails on (even with a panic) is one broken sheet; the file's other
  sheets are still read.
- CSV: UTF-8 with or without BOM, delimiter `,` or `;` (the one that splits the first
  non-blank lines into more fields); every cell is text; a row's number is the line where
  the record starts.

Header detection (forms.md "Layout tolerated in every sheet"; docs/architecture.md "Reading
rules"): the top rows are scanned, each row alone and combined with the one or two rows above
it ("a column's header is the lowest non-empty header cell above it"; up to three header
rows); the candidate matching most columns of its form wins. When the top rows hold none, the
rest of the sheet is scanned (only rows of text, at most two cells with digits, with two
possible header cells: linear and cheap) and the first header found wins. A column with no
header and nothing below it, or a second STT column, ends a table: another form's table
beside it is reported
(`FormSheet.other_tables`, the sheet is then rejected by normalize), never mixed in.
Every non-blank row below the header is then a data row or skipped with its kind
(`SKIP_KINDS`): column numbers, signature block (captions, "(Ký, ghi rõ họ tên)", "…, ngày …
tháng … năm …", the signer's name under them), title (a note or heading line, a repeated
header, a units line), section (STT a Roman numeral or a letter, no record in the row), total
("Tổng…"/"Cộng…" and no record in the row), no_data (an STT alone, text only outside the
form's columns, a stray cell). A truly blank row is not counted.
"""

from __future__ import annotations

import csv
import io
import math
import operator
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coop.ingest.values import ProblemCell
from coop.text import clean_text, fold, header_key

if TYPE_CHECKING:
    import fastexcel

    from coop.ingest.formulas import WorksheetScan

__all__ = [
    "CELL_TEXT", "CELL_NUMBER", "CELL_DATE", "CELL_BOOL", "CELL_ERROR", "CELL_PROBLEM",
    "Sheet", "FormSheet", "ReadError", "read_workbook", "read_csv", "read_sheets",
    "find_header", "form_sheet", "HEADER_SCAN_ROWS", "SKIP_KINDS", "is_fatal", "excel_datetime",
    "READER_SENTENCES", "reader_error_kind", "reader_error_message",
]

CELL_TEXT, CELL_NUMBER, CELL_DATE, CELL_BOOL, CELL_ERROR = "s", "n", "d", "b", "e"
#: A cell the reader could not take as written: its value is a `coop.ingest.values.ProblemCell`
#: (a formula without a calculated value, a CSV cell after an unclosed quote); every parser
#: quarantines it with the ProblemCell's reason code.
CELL_PROBLEM = "p"
EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")

_CALAMINE_ERRORS = {
    "NA": "#N/A", "Div0": "#DIV/0!", "Ref": "#REF!", "Value": "#VALUE!", "Name": "#NAME?",
    "Null": "#NULL!", "Num": "#NUM!", "GettingData": "#GETTING_DATA",
}
_DETAIL = re.compile(r"got '(\w+)\((.*)\)'?\s*$", re.S)  # the boolean load drops the closing quote


class ReadError(Exception):
    """The file cannot be opened or read (corrupt, encrypted, not the format its name says).
    Its text is the message for people (`reader_error_message`): a Vietnamese sentence, then
    "(chi tiết: <exception>: <reader's words>)"."""


# --------------------------------------------------------------------------- reader messages
# Every failure of a reader, mapped to a Vietnamese sentence for the clerk; the technical
# detail follows it. The table is in docs/operations.md "Reader messages"; each row is tested
# in tests/test_values_trust.py. Checked in order; the first that fits wins.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_OLE = "EncryptedPackage".encode("utf-16-le")
READER_SENTENCES: dict[str, str] = {
    "permission": "Máy chủ của tỉnh không có quyền đọc tệp (báo người quản trị kiểm tra quyền của tệp/thư mục)",
    "missing": "Không tìm thấy tệp (tệp đã bị xoá, đổi tên hoặc là liên kết hỏng trong lúc đọc)",
    "io": "Không đọc được tệp từ ổ đĩa lúc này (lỗi vào/ra của hệ điều hành); lần chạy sau sẽ đọc lại",
    "password": "Tệp có mật khẩu (đã mã hoá) nên không đọc được; bỏ mật khẩu (Excel: Tệp > Thông tin > Bảo vệ "
                "sổ làm việc) rồi gửi lại",
    "xls_as_xlsx": "Tệp thực chất là bảng tính Excel 97-2003 (.xls) nhưng mang đuôi .xlsx; đổi đuôi thành .xls "
                   "hoặc mở bằng Excel rồi lưu lại dạng .xlsx",
    "xlsx_as_xls": "Tệp thực chất là bảng tính .xlsx nhưng mang đuôi .xls; đổi đuôi thành .xlsx hoặc mở bằng Excel "
                   "rồi lưu lại",
    "xlsx_as_ods": "Tệp mang đuôi .ods nhưng không phải bảng tính LibreOffice (có thể là .xlsx đổi đuôi); mở rồi lưu "
                   "lại đúng định dạng",
    "html": "Tệp là trang web (HTML/XML do phần mềm xuất ra) mang đuôi bảng tính; mở bằng Excel rồi lưu lại dạng "
            ".xlsx (Tệp > Lưu thành > Sổ làm việc Excel)",
    "pdf": "Tệp là tài liệu PDF, không phải bảng tính; gửi tệp Excel (.xlsx) của biểu mẫu",
    "text": "Tệp là văn bản thuần (có thể là CSV) nhưng mang đuôi bảng tính; đổi đuôi thành .csv hoặc mở bằng "
            "Excel rồi lưu lại dạng .xlsx",
    "truncated": "Tệp bị hỏng hoặc không đầy đủ (có thể tải về hoặc sao chép chưa xong); mở thử bằng Excel "
                 "(hoặc LibreOffice), lưu lại rồi gửi lại",
    "not_workbook": "Tệp nén không chứa bảng tính (thiếu các thành phần của tệp Excel); mở bằng Excel, lưu lại "
                    "dạng .xlsx rồi gửi lại",
    "xml": "Nội dung bên trong tệp bị hỏng (dữ liệu XML của bảng tính không đọc được); mở bằng Excel, lưu lại rồi "
           "gửi lại",
    "zip": "Tệp nén (.xlsx) bị hỏng: một thành phần bên trong không giải nén được; mở bằng Excel, lưu lại rồi gửi lại",
    "cells": "Bộ đọc không lấy được giá trị các ô (kiểu dữ liệu bất thường); mở bằng Excel, lưu lại rồi gửi lại",
    "not_ods": "Tệp bị hỏng hoặc không phải bảng tính LibreOffice (.ods)",
    "not_excel": "Tệp bị hỏng hoặc không phải bảng tính Excel",
    "panic": "Bộ đọc bảng tính gặp lỗi nội bộ với nội dung bất thường của tệp; mở bằng Excel, lưu lại rồi gửi lại",
    "sheet": "Trang tính bị hỏng hoặc có nội dung bộ đọc không hiểu; mở bằng Excel, lưu lại rồi gửi lại",
    "csv": "Tệp CSV sai cấu trúc",
    "unknown": "Không đọc được tệp",
}


def _first_line(text: str) -> str:
    line = (text.strip().splitlines() or [""])[0].strip()
    return line if len(line) <= 300 else line[:297] + "..."


def _head(path: Path | None, n: int = 4096) -> bytes:
    if path is None:
        return b""
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, TypeError):
        return b""


def _encrypted_ole(path: Path | None) -> bool:
    """An OLE container holding an `EncryptedPackage` stream: an .xlsx saved with a password."""
    try:
        with open(path, "rb") as fh:  # type: ignore[arg-type]
            return _ENCRYPTED_OLE in fh.read(8 << 20)
    except (OSError, TypeError):
        return False


_HTML_STARTS = (b"<html", b"<!doctype", b"<?xml", b"<table", b"<head", b"<meta", b"mime-version")


def reader_error_kind(detail: str, suffix: str = "", path: Path | None = None) -> str:
    """The key of `READER_SENTENCES` for a reader failure whose technical text is `detail`
    ("<ExceptionName>: <message>"), for a file with that suffix; the file's first bytes are
    looked at when `path` is given (what the file really is)."""
    d = detail.lower()
    suffix = suffix.lower()
    if "permissionerror" in d or "permission denied" in d:
        return "permission"
    if "filenotfounderror" in d or "no such file" in d:
        return "missing"
    if "password" in d or "encrypt" in d:
        return "password"
    if "panicexception" in d:
        return "panic"
    if d.startswith("csv.error") or suffix == ".csv":
        return "io" if ("oserror" in d or "[errno" in d) else "csv"
    head = _head(path) if path is not None else b""
    if head and ("could not open workbook" in d or "could not load excel file" in d or "calamineerror" in d):
        body = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if head.startswith(_OLE):
            if suffix in (".xlsx", ".xlsm"):
                return "password" if _encrypted_ole(path) else "xls_as_xlsx"
        elif head.startswith(b"PK\x03\x04"):
            if suffix == ".xls":
                return "xlsx_as_xls"
            if suffix == ".ods" and "mimetype" in d:
                return "xlsx_as_ods"
        elif body.startswith(_HTML_STARTS):
            return "html"
        elif head.startswith(b"%PDF"):
            return "pdf"
        elif b"\x00" not in head:
            try:
                head.decode("utf-8")
                return "text"
            except UnicodeDecodeError:
                pass
    if suffix == ".xls" and r"\x50\x4b\x03\x04" in d:  # the OLE reader names a zip signature
        return "xlsx_as_xls"
    if r"\x3c\x68\x74\x6d" in d or r"\x3c\x21\x44\x4f" in d:  # "<htm", "<!DO"
        return "html"
    if "badzipfile" in d or "zlib" in d or "crc" in d:
        return "zip"
    if "'mimetype' file not found" in d:
        return "xlsx_as_ods"
    if "file not found" in d or "not found in archive" in d:
        return "not_workbook"
    if "syntax error" in d or re.search(r"\bxml\b", d):  # "Xml error: …", "Unexpected end of xml"
        return "xml"
    if any(k in d for k in ("eocd", "unexpected end", "past end of file", "truncated", "invalidarchive",
                            "invalid zip")):
        return "truncated"
    if any(k in d for k in ("calamine cell error", "calaminecellerror", "cannotretrievecelldata", "arrowerror",
                            "unsupportedcolumntype")):
        return "cells"
    if "ods error" in d:
        return "not_ods"
    if re.search(r"\bole\b|\bcfb\b|xlsx? error|calamine", d):
        return "not_excel"
    if "oserror" in d or "[errno" in d or "(os error" in d:
        return "io"
    return "unknown"


_TECHNICAL_START = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Panic\w*)|BadZipFile|LargeZipFile)\b"
                              r"|^[a-z]+ error:")
#: Kinds that speak of a whole file: for one sheet the reader failed on, the sheet's sentence.
_FILE_KINDS = {"xls_as_xlsx", "xlsx_as_xls", "xlsx_as_ods", "html", "pdf", "text", "truncated", "not_workbook",
               "not_excel", "not_ods", "unknown"}


def reader_error_message(error: BaseException | str, suffix: str = "", *, path: Path | None = None,
                         sheet: str | None = None, line: int | None = None) -> str:
    """The message for a reader failure: the Vietnamese sentence (`READER_SENTENCES`), where
    (the sheet; the line of a CSV file), then "(chi tiết: <exception>: <first line>)". A text
    that is already such a message, or the reader's own Vietnamese sentence, is returned as is."""
    if isinstance(error, BaseException):
        name = "csv.Error" if type(error).__module__ in ("_csv", "csv") else type(error).__name__
        text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        detail = f"{name}: {_first_line(text)}" if text.strip() else name
    else:
        detail = _first_line(error)
        if "(chi tiết:" in detail or not _TECHNICAL_START.match(detail):
            return error.strip()  # already a message for people
    kind = reader_error_kind(detail, suffix, path)
    if sheet is not None and kind in _FILE_KINDS:
        kind = "sheet"
    sentence = READER_SENTENCES[kind]
    if line is not None:
        sentence += f" ở dòng {line}"
    if sheet is not None:
        sentence = (f"Không đọc được trang '{sheet}' (các trang khác của tệp vẫn được đọc): "
                    f"{sentence[0].lower()}{sentence[1:]}")
    return f"{sentence} (chi tiết: {detail})"


def _cell_text(v: Any) -> str:
    """`Sheet.text` of a cell value: a pure function of the value."""
    if v is None:
        return ""
    if v.__class__ is str:  # the common case first (clean_text is memoized)
        return clean_text(v)
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, datetime):
        return v.strftime("%d/%m/%Y")
    return clean_text(str(v))


@dataclass
class Sheet:
    """One sheet as a grid: `columns[j][i]` is the typed value of the cell in grid column j,
    grid row i (None for empty; str for text; float for numbers; datetime for dates; bool;
    an Excel error as its text "#N/A"); `kinds[j][i]` its kind (CELL_*, None for empty);
    `row_numbers[i]` the Excel row number (1-based) of grid row i; grid column j is Excel
    column `first_column + j` (0-based: 0 is A) — the grid starts at the first used column."""

    name: str
    visible: bool
    row_numbers: list[int]
    columns: list[list[Any]]
    kinds: list[list[str | None]]
    error: str | None = None            # the sheet could not be read (the others still are)
    first_column: int = 0               # 0-based Excel column of grid column 0 (0 for CSV)

    @property
    def height(self) -> int:
        return len(self.row_numbers)

    @property
    def width(self) -> int:
        return len(self.columns)

    def text(self, i: int, j: int) -> str:
        """Cleaned text of a cell ('' for empty); numbers without a trailing '.0'."""
        if j is None or j >= len(self.columns):
            return ""
        return _cell_text(self.columns[j][i])

    def row_texts(self, i: int) -> list[str]:
        return [_cell_text(col[i]) for col in self.columns]


@dataclass
class FormSheet:
    """A sheet recognised as one form: where its header is, which grid column holds each
    canonical column, and which grid rows are data rows (layout rows skipped)."""

    sheet: Sheet
    form: str
    header_row: int                      # Excel row number of the (lowest) header row
    columns: dict[str, int]              # canonical column -> grid column
    headers: dict[str, str]              # canonical column -> header text as written
    data_rows: list[int] = field(default_factory=list)   # grid row indexes
    skipped: dict[str, int] = field(default_factory=dict)  # kind (SKIP_KINDS) -> how many non-blank rows
    table_columns: tuple[str, str] = ("", "")            # Excel columns of the form's table ("A", "H")
    # another table beside it: (its form, or None when not a whole form; "J", "P")
    other_tables: list[tuple[str | None, str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.sheet.name


# --------------------------------------------------------------------------- reading
def read_sheets(path: Path) -> list[Sheet]:
    """Every sheet of a spreadsheet (hidden ones too), or the one sheet of a CSV file.
    Raises ReadError when the file cannot be read. Text cells typed in TCVN3/VNI come back
    in Unicode, noted per sheet (`coop.ingest.legacy_text.convert_sheets`)."""
    from coop.ingest.formulas import scan_worksheets
    from coop.ingest.legacy_text import convert_sheets

    path = Path(path)
    if path.suffix.lower() == ".csv":
        return convert_sheets([read_csv(path)])
    scan = scan_worksheets(path)  # None: no .xlsx, or a worksheet unreadable to its end
    sheets = convert_sheets(read_workbook(path, iso_cells=scan is None or scan.iso_cells))
    _mark_uncalculated_formulas(path, sheets, scan)
    return sheets


def _put_cell(sheet: Sheet, row: int, column: int, value: Any, kind: str) -> None:
    """Set the cell at Excel `row` (1-based) / `column` (0-based), growing the grid when the
    cell lies outside what the reader returned (a formula without a result is no "used" cell
    for calamine: a whole row or column of them is missing from its grid)."""
    if sheet.width == 0:
        sheet.first_column = column
    if column < sheet.first_column:
        extra = sheet.first_column - column
        sheet.columns[:0] = [[None] * sheet.height for _ in range(extra)]
        sheet.kinds[:0] = [[None] * sheet.height for _ in range(extra)]
        sheet.first_column = column
    j = column - sheet.first_column
    while sheet.width <= j:
        sheet.columns.append([None] * sheet.height)
        sheet.kinds.append([None] * sheet.height)
    i = row - 1  # xlsx grids start at Excel row 1 (header_row=None, skip_rows=0)
    if i >= sheet.height:
        grow = i + 1 - sheet.height
        for col in sheet.columns:
            col.extend([None] * grow)
        for col in sheet.kinds:
            col.extend([None] * grow)
        sheet.row_numbers.extend(range(sheet.height + 1, i + 2))
    sheet.columns[j][i] = value
    sheet.kinds[j][i] = kind


def _mark_uncalculated_formulas(path: Path, sheets: list[Sheet], scan: WorksheetScan | None = None) -> None:
    """Formula cells whose result the file does not hold (coop.ingest.formulas) become
    `UncalculatedFormula` cells: quarantined (`formula_not_calculated`) where a form uses
    them, never read as empty or as xlsxwriter's placeholder 0."""
    from coop.ingest.formulas import uncalculated_formulas
    from coop.ingest.values import UncalculatedFormula

    found = uncalculated_formulas(path, scan)
    if not found:
        return
    for sheet in sheets:
        if sheet.error:
            continue
        for cell in found.get(sheet.name, ()):
            _put_cell(sheet, cell.row, cell.column, UncalculatedFormula(cell.formula), CELL_PROBLEM)


def _load(reader: fastexcel.ExcelReader, idx: int,
          dtype: fastexcel.DType) -> tuple[fastexcel.ExcelSheet, list[fastexcel.CellError], Any]:
    """(sheet, cells the dtype could not take, the pyarrow RecordBatch: Any, pyarrow has no types)."""
    sheet = reader.load_sheet(idx, header_row=None, skip_rows=0, dtypes=dtype,
                              schema_sample_rows=1)
    batch, errors = sheet.to_arrow_with_errors()
    return sheet, (errors.errors if errors is not None else []), batch


def is_fatal(exc: BaseException) -> bool:
    """An exception that must stop the program (Ctrl-C, exit, cancellation), as opposed to
    one a bad file caused (a reader panic is a BaseException too, and is not fatal)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        return True
    import asyncio

    if isinstance(exc, asyncio.CancelledError):
        return True
    # Prefect's TerminationSignal, Abort, Pause: BaseExceptions that stop the run on purpose
    return not isinstance(exc, Exception) and type(exc).__module__.split(".")[0] == "prefect"


def read_workbook(path: Path, iso_cells: bool | None = None) -> list[Sheet]:
    """The sheets of a workbook. `iso_cells`: whether a cell may be an ISO date text (calamine's
    `DateTimeIso`: any .xls/.ods, an .xlsx with a `t="d"` cell); None: found out here. Where
    none can be, the text cells of a column need no detail from the reader (`_read_excel_sheet`)."""
    import fastexcel

    path = Path(path)
    if iso_cells is None:
        from coop.ingest.formulas import scan_worksheets

        scan = scan_worksheets(path)
        iso_cells = scan is None or scan.iso_cells

    try:
        reader = fastexcel.read_excel(Path(path))
        names = list(reader.sheet_names)
    except BaseException as e:  # noqa: BLE001 — corrupt/encrypted/not a workbook (or a reader panic)
        if is_fatal(e):
            raise
        raise ReadError(reader_error_message(e, Path(path).suffix, path=Path(path))) from None
    out: list[Sheet] = []
    for idx, name in enumerate(names):
        try:
            out.append(_read_excel_sheet(reader, idx, name, iso_cells))
        except BaseException as e:  # noqa: BLE001 — one broken sheet does not lose the others
            if is_fatal(e) or isinstance(e, MemoryError):
                raise
            first = (str(e).splitlines() or [type(e).__name__])[0]
            out.append(Sheet(name, True, [], [], [], error=f"{type(e).__name__}: {first}"))
    errors = [s.error for s in out if s.error]
    if out and len(errors) == len(out):
        raise ReadError(reader_error_message(errors[0], Path(path).suffix, path=Path(path)))
    return out


_EXCEL_DATETIME = re.compile(r"value:\s*([^,\s]+),\s*datetime_type:\s*(\w+),\s*is_1904:\s*(true|false)")
_EXCEL_EPOCH = datetime(1899, 12, 30)


@lru_cache(maxsize=1 << 14)  # pure; the same dates come again and again (founding dates, report dates)
def excel_datetime(payload: str | None) -> datetime | float | None:
    """The datetime of a calamine `ExcelDateTime { value, datetime_type, is_1904 }` detail, as
    calamine computes it (1900 system: serial 1 = 1900-01-01, Excel's phantom 29/02/1900 kept
    for serials < 60; 1904 system: + 1462 days), to the millisecond. The serial itself (a
    float) when the date is out of range; None when the detail cannot be parsed."""
    m = _EXCEL_DATETIME.search(payload or "")
    if not m:
        return None
    try:
        value = float(m.group(1))
    except ValueError:
        return None
    f = value + 1462.0 if m.group(3) == "true" else value
    if f < 60.0:
        f += 1.0
    try:
        ms = round(f * 86_400_000.0)
        return _EXCEL_EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, ValueError):  # not finite, or outside years 1..9999
        return value


_RUST_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|.)", re.S)
_RUST_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}


def _rust_str(payload: str) -> str:
    """The text of a calamine `String("…")` detail (Rust's Debug escaping undone)."""
    body = payload[1:-1] if len(payload) >= 2 and payload[0] == payload[-1] == '"' else payload

    def sub(m: re.Match[str]) -> str:
        c = m.group(1)
        if c.startswith("u{"):
            try:
                return chr(int(c[2:-1], 16))
            except ValueError:
                return m.group(0)
        return _RUST_SIMPLE.get(c, c)

    return _RUST_ESCAPE.sub(sub, body)


def _number_text(v: float) -> str:
    return str(int(v)) if math.isfinite(v) and v == int(v) and abs(v) < 1e15 else repr(v)


def _texts_without_string_load(reader: fastexcel.ExcelReader,
                               idx: int) -> tuple[fastexcel.ExcelSheet, list[fastexcel.CellError], list[list[Any]]]:
    """(sheet, [], texts) when the string load itself failed (it panics on a date cell whose
    serial is <= -1.07e11): texts rebuilt from the float and boolean loads — a text cell from
    its `String("…")` detail, a number as digits. Booleans then read as the numbers 1/0."""
    f_sheet, _, f_batch = _load(reader, idx, "float")
    texts = [[None if v is None else _number_text(v) for v in f_batch.column(j).to_pylist()]
             for j in range(f_batch.num_columns)]
    _, b_errors, _ = _load(reader, idx, "boolean")
    for e in b_errors:
        i, j = e.position
        m = _DETAIL.search(e.detail)
        if m and m.group(1) == "String":
            texts[j][i] = _rust_str(m.group(2))
        elif m and m.group(1) == "DateTime":
            texts[j][i] = "date"  # any non-empty marker: the value comes from the detail below
    return f_sheet, [], texts


#: how the string load renders a calamine `DateTime` cell (a date, a time or a duration: chrono's
#: `NaiveDateTime` display): "2020-01-02 06:00:00", "1899-12-31 12:00:00.250",
#: "+10113-09-19 00:00:00" (a year outside 0..9999 has its sign)
_DATE_RENDERING = re.compile(r"[+\-]?[0-9]{4,}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DATE_IN_JOINED = re.compile("\0" + _DATE_RENDERING.pattern)


def _read_excel_sheet(reader: fastexcel.ExcelReader, idx: int, name: str, iso_cells: bool = True) -> Sheet:
    """One sheet: the string load gives each cell's text (and the cells it cannot render:
    Excel errors, dates out of range), the float load the numbers, the boolean load which
    cells are numbers or booleans (it takes those and refuses text, dates and errors; the
    float load takes them too, and text that reads as a number).

    A cell the boolean load refuses is text unless the load's detail for it (its error list,
    one Python object per refused cell) says otherwise. So the boolean load reads only the
    columns where the float load took a cell (elsewhere it would take none), and gives its
    details only when some column may hold a cell that is no text: a text that reads like a
    rendered date (`_DATE_RENDERING`), a cell the string load
    could not render other than an Excel error (whose code that load's own detail gives),
    or any cell at all when a cell may be an ISO date text (`iso_cells`: every .xls/.ods,
    an .xlsx with `t="d"`) or the string load failed. Only those columns' details are used.
    The float load's values are made Python lists only where the boolean load took a cell or
    a detail decides."""
    string_failed = False
    try:
        s_sheet, s_errors, s_batch = _load(reader, idx, "string")
        texts: list[list[Any]] = [s_batch.column(j).to_pylist() for j in range(s_batch.num_columns)]
        height = s_batch.num_rows
        del s_batch
    except BaseException as e:  # noqa: BLE001 — a reader panic on one cell: read the sheet without it
        if is_fatal(e) or isinstance(e, MemoryError):
            raise
        s_sheet, s_errors, texts = _texts_without_string_load(reader, idx)
        height = len(texts[0]) if texts else 0
        string_failed = True
    visible = str(getattr(s_sheet, "visible", "visible")) == "visible"
    width = len(texts)
    if height == 0 or width == 0:
        return Sheet(name, visible, [], [], [])
    f_batch = reader.load_sheet(idx, header_row=None, skip_rows=0, dtypes="float", schema_sample_rows=1,
                                eager=True)  # its error list is never used
    f_arrays = [f_batch.column(j) for j in range(width)]
    del f_batch
    if iso_cells or string_failed:
        detailed = set(range(width))
    else:
        detailed = {e.position[1] for e in s_errors if "Error(" not in e.detail}
        detailed.update(j for j in range(width) if j not in detailed and _date_like(texts[j]))
    # the boolean load: the columns where the float load took a cell, and the detailed ones
    wanted = [j for j in range(width) if j in detailed or f_arrays[j].null_count < height]
    # one load (its parse costs more than the details of the columns not detailed)
    all_wanted = len(wanted) == width or string_failed
    names = [] if all_wanted else [c.name for c in s_sheet.available_columns()]
    taken, b_errors = _boolean_load(reader, idx, list(range(width)) if all_wanted else wanted, names,
                                    with_errors=bool(detailed))
    columns: list[list[Any]] = []
    kinds: list[list[str | None]] = []
    for j in range(width):
        tj, f_array = texts[j], f_arrays[j]
        b_array: Any = taken.get(j)  # a pyarrow array (no types), None where not loaded
        if j not in detailed and (b_array is None or b_array.null_count == height):
            # the boolean load took no cell: every cell with a text is a text
            kinds.append([None if t is None else CELL_TEXT for t in tj])
            columns.append(list(tj))
            continue
        nj: list[Any] = [None] * height if f_array.null_count == height else f_array.to_pylist()
        if j in detailed:  # numbers where the string load has a text; the details decide the rest
            kinds.append([None if t is None else CELL_NUMBER for t in tj])
            columns.append([None if t is None else v for t, v in zip(tj, nj, strict=True)])
        elif b_array.null_count == f_array.null_count == tj.count(None):
            # as many cells taken as cells with a text and cells with a number: the same cells (a
            # cell the boolean load takes, a number or a boolean, has a text and a number), all numbers
            kinds.append([None if t is None else CELL_NUMBER for t in tj])
            columns.append(nj)
        else:  # taken by the boolean load: a number (or a boolean, below); else a text
            bj = b_array.to_pylist()
            kinds.append([None if t is None else CELL_TEXT if b is None else CELL_NUMBER
                          for t, b in zip(tj, bj, strict=True)])
            columns.append([t if t is None or b is None else v for t, b, v in zip(tj, bj, nj, strict=True)])
    del f_arrays
    for err in b_errors:  # cells that are no number and no boolean: text, Excel error, date
        i, j = err.position
        if j not in detailed:
            continue  # a text (see above): already one
        detail = err.detail
        at = detail.find("got '")
        if at >= 0 and detail.startswith("String(", at + 5):
            # a text cell (most of them): whether _DETAIL matches here or nowhere, the variant
            # is String, and a String needs no payload — no regular expression per text cell
            variant, payload = "String", None
        else:
            m = _DETAIL.search(detail)
            variant, payload = (m.group(1), m.group(2)) if m else ("String", None)
        if variant == "String":
            t = texts[j][i]
            kinds[j][i] = CELL_TEXT if t is not None else None
            columns[j][i] = t
        elif variant == "Error":
            kinds[j][i] = CELL_ERROR
            columns[j][i] = _CALAMINE_ERRORS.get(payload or "", f"#{payload}")
        elif variant == "DateTime":
            d = excel_datetime(payload)
            if isinstance(d, datetime):
                kinds[j][i], columns[j][i] = CELL_DATE, d
            elif d is not None:  # a serial no calendar has: kept as the number it is
                kinds[j][i], columns[j][i] = CELL_NUMBER, d
            else:
                t = texts[j][i]
                kinds[j][i] = CELL_TEXT if t is not None else None
                columns[j][i] = t
        elif variant in ("DateTimeIso", "DurationIso"):
            iso = (payload or "").strip('"')
            try:
                columns[j][i] = datetime.fromisoformat(iso)
                kinds[j][i] = CELL_DATE
            except ValueError:
                columns[j][i] = iso
                kinds[j][i] = CELL_TEXT
        else:  # Duration and anything new: its text
            t = texts[j][i]
            kinds[j][i] = CELL_TEXT if t is not None else None
            columns[j][i] = t
    for j in taken:  # booleans: taken by the boolean load, and read "true"/"false"
        tj, kj, cj = texts[j], kinds[j], columns[j]
        if "true" not in tj and "false" not in tj:  # (a column not loaded holds no number)
            continue
        for i, t in enumerate(tj):
            if (t == "true" or t == "false") and kj[i] == CELL_NUMBER:
                kj[i], cj[i] = CELL_BOOL, t == "true"
    for err in s_errors:  # cells the string load could not render (an error code in .xlsx)
        i, j = err.position
        if kinds[j][i] is None and "Error(" in err.detail:
            m = _DETAIL.search(err.detail)
            payload = m.group(2) if m else ""
            kinds[j][i] = CELL_ERROR
            columns[j][i] = _CALAMINE_ERRORS.get(payload or "", f"#{payload}")
    cols_info = s_sheet.available_columns()
    first_column = cols_info[0].absolute_index if cols_info else 0
    return Sheet(name, visible, list(range(1, height + 1)), columns, kinds, first_column=first_column)


def _date_like(texts: list[str | None]) -> bool:
    """Whether a column has a cell whose text may be a rendered date (`_DATE_RENDERING`): the
    texts joined by NUL, one regular expression search (a text holding a NUL may match where
    it should not: the column is then only read in detail, which never changes what is read);
    no search where no text has a ":" (every rendered date has one). A cell with a number never
    reads so (a number renders as digits, a text the float load takes has no blank or ":"), so
    its text need not be left out."""
    joined = "\0" + "\0".join(filter(None, texts))
    return ":" in joined and _DATE_IN_JOINED.search(joined) is not None


def _boolean_load(reader: fastexcel.ExcelReader, idx: int, grid: list[int], names: list[str],
                  with_errors: bool) -> tuple[dict[int, Any], list[fastexcel.CellError]]:
    """The boolean load of the grid columns `grid` ({grid column: its pyarrow array}, and its error
    list when `with_errors`, positions in the grid either way); `names`: every grid column's
    name (`ColumnInfo.name`, "__UNNAMED__3"), [] to load them all (`grid` is then all)."""
    if not grid:
        return {}, []
    use = [names[j] for j in grid] if names else None
    if with_errors:
        batch, errors = reader.load_sheet(idx, header_row=None, skip_rows=0, dtypes="boolean", schema_sample_rows=1,
                                          use_columns=use).to_arrow_with_errors()
    else:
        batch, errors = reader.load_sheet(idx, header_row=None, skip_rows=0, dtypes="boolean", schema_sample_rows=1,
                                          use_columns=use, eager=True), None
    taken = {j: batch.column(k) for k, j in enumerate(grid)}
    return taken, (errors.errors if errors is not None else [])


def _decode(data: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 (BOM), Windows-1258 or TCVN3/VNI bytes -> text; the order
    and rules are `coop.ingest.legacy_text.decode_csv_bytes`'s. ReadError (Vietnamese) otherwise."""
    from coop.ingest.legacy_text import CsvEncodingError, decode_csv_bytes

    try:
        return decode_csv_bytes(data)[0]
    except CsvEncodingError as e:
        raise ReadError(str(e)) from None


def _sniff_delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    best, best_score = ",", -1
    for d in (";", ","):
        counts = []
        for ln in lines:
            try:
                counts.append(len(next(csv.reader([ln], delimiter=d))) - 1)
            except (csv.Error, StopIteration):
                counts.append(0)
        score = sum(counts)
        if score > best_score:
            best, best_score = d, score
    return best


def read_csv(path: Path) -> Sheet:
    """A CSV file as one sheet named after the file stem; all cells text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ReadError(reader_error_message(e, ".csv")) from None
    text = _decode(data)  # NUL bytes: UTF-16, or rejected as binary there
    delim = _sniff_delimiter(text)
    rows, numbers = _csv_records(text, delim)
    rows = _mark_extra_cells(rows)
    width = max((len(r) for r in rows), default=0)
    columns: list[list[Any]] = [[None] * len(rows) for _ in range(width)]
    kinds: list[list[str | None]] = [[None] * len(rows) for _ in range(width)]
    for i, rec in enumerate(rows):
        for j, v in enumerate(rec):
            if v is not None and v.strip() != "":
                columns[j][i] = v
                kinds[j][i] = CELL_PROBLEM if isinstance(v, ProblemCell) else CELL_TEXT
    return Sheet(path.stem, True, numbers, columns, kinds)


def _filled(rec: list[str]) -> int:
    """Position after the last non-blank cell of a record (0 when all blank)."""
    return next((j + 1 for j in range(len(rec) - 1, -1, -1) if rec[j] is not None and rec[j].strip()), 0)


def _mark_extra_cells(rows: list[list[str]]) -> list[list[str]]:
    """Lines whose filled cells run past the usual width of the file's rows (the most common
    record length among lines with several cells): an unquoted decimal comma (`12,5`) split a
    cell and moved the ones after it. Every filled cell of such a line becomes a
    `CsvExtraCells`, so the row is quarantined (`csv_extra_cells`), never loaded shifted."""
    from coop.ingest.values import CsvExtraCells

    usual = Counter(len(r) for r in rows if _filled(r) >= 2)
    if not usual:
        return rows
    width = usual.most_common(1)[0][0]
    out = []
    for rec in rows:
        if _filled(rec) > width:
            rec = [v if v is None or not v.strip() or isinstance(v, ProblemCell) else CsvExtraCells(v) for v in rec]
        out.append(rec)
    return out


class _Lines:
    """The physical lines of a CSV text from line `i` (0-based) on, for csv.reader; `i` is the
    number of lines handed out so far, so before each record it is the record's first line."""

    def __init__(self, lines: list[str], i: int) -> None:
        self.lines, self.i = lines, i

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.i >= len(self.lines):
            raise StopIteration
        self.i += 1
        return self.lines[self.i - 1]


def _open_quote(text: str, delim: str) -> int | None:
    """Where the quoted field that `text` (one or more lines) ends inside starts, or None when
    every quote is closed. CSV rules as Python's csv reads them: a `"` opens a quoted field
    only at the start of a field; `""` inside is one quote."""
    i, n = 0, len(text)
    field_start, inside, opened = True, False, None
    while i < n:
        c = text[i]
        if inside:
            if c == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 2
                    continue
                inside = False
        elif c == '"' and field_start:
            inside, opened = True, i
        field_start = (not inside) and c in (delim, "\n", "\r")
        i += 1
    return opened if inside else None


def _broken_line(line: str, delim: str) -> list[str]:
    """The cells of a line whose quote is never closed: the cells before the quote as CSV
    reads them, then the rest split at every delimiter with the quote kept as written, each
    non-empty one an `UnclosedQuote` (its bounds are not certain)."""
    from coop.ingest.values import UnclosedQuote

    body = line.rstrip("\r\n")
    q = _open_quote(body, delim)
    if q is None:  # pragma: no cover — only called for a line that ends inside quotes
        return next(csv.reader([body], delimiter=delim), [])
    head = next(csv.reader([body[:q]], delimiter=delim), [""])[:-1] if q else []
    return head + [UnclosedQuote(v) if v.strip() else v for v in body[q:].split(delim)]


def _csv_records(text: str, delim: str) -> tuple[list[list[str]], list[int]]:
    """(records, line number of each record's first line). A line with a `"` that is never
    closed does not swallow the lines after it. A record running over several lines is a
    cell with line breaks unless both: its first line, the quote taken as written, is a whole
    row already (at least the usual number of cells less one), and a line it swallowed looks
    like a row (at least half a row's delimiters, and 2). Then, or when the quote runs to the
    end of the file or past csv's field size limit, that one line is read on its own
    (`_broken_line`: quarantined `csv_unbalanced_quote` where a form uses its uncertain
    cells) and reading goes on with the next line. Any other csv error rejects the file,
    naming the line."""
    lines = list(io.StringIO(text, newline=""))  # split at \n, \r\n, \r; endings kept
    usual = Counter(ln.count(delim) + 1 for ln in lines[:50] if ln.strip())
    width = usual.most_common(1)[0][0] if usual else 1
    row_like = max(2, (width - 1) // 2)
    rows: list[list[str]] = []
    numbers: list[int] = []
    feed = _Lines(lines, 0)
    reader = csv.reader(feed, delimiter=delim)
    while True:
        first = feed.i
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if first < len(lines) and _open_quote(lines[first], delim) is not None:
                broken = True  # "field larger than field limit": an open quote ran far
            else:
                raise ReadError(reader_error_message(e, ".csv", line=feed.i)) from None
        else:
            last = feed.i
            broken = False
            if last - first > 1:  # a quoted cell with line breaks, or a quote never closed
                if last >= len(lines) and _open_quote("".join(lines[first:last]), delim) is not None:
                    broken = True  # open to the end of the file
                else:
                    broken = (len(_broken_line(lines[first], delim)) >= width - 1
                              and any(ln.count(delim) >= row_like for ln in lines[first + 1:last]))
            elif last == len(lines) and _open_quote(lines[first], delim) is not None:
                broken = True  # the last line, open to its end
        if broken:
            rows.append(_broken_line(lines[first], delim))
            numbers.append(first + 1)
            feed = _Lines(lines, first + 1)
            reader = csv.reader(feed, delimiter=delim)
            continue
        rows.append(rec)
        numbers.append(first + 1)
    return rows, numbers


# --------------------------------------------------------------------------- header detection
#: Kinds of the non-blank rows below a header that are neither loaded nor quarantined
#: (`FormSheet.skipped`, `SheetInfo.rows_skipped`, audit.sheets `rows_skipped_<kind>`). A
#: truly blank row (every cell empty or spaces) is no row of the sheet and is not counted.
SKIP_KINDS = ("title", "column_numbers", "section", "total", "signature", "no_data")
HEADER_SCAN_ROWS = 40   # the best header of the top rows wins; below them, the first one found
HEADER_SPAN_ROWS = 3    # a header spans at most this many rows (merged group titles above)

_STT_KEYS = {"stt", "tt", "so tt", "so thu tu", "thu tu"}
_COLNUM = re.compile(r"^\(?\d{1,3}\)?$")
_ROMAN = re.compile(r"^[IVXLC]+[.)]?$", re.I)
_LETTER = re.compile(r"^[A-ZĐa-zđ][.)]?$")
_SECTION_LABEL = re.compile(r"^(?:[IVXLC]+|[A-ZĐa-zđ])[.)]\s*\S")  # "I. Nông nghiệp", "B) Dịch vụ"
_SECTION_PREFIX = re.compile(r"^(?:[ivxlc]+|[a-z])[.)]\s*")          # the same, folded
# total labels: "Tổng", "Tổng cộng", "Tổng số", "Cộng", "Cộng:" — not "Tổng công ty…",
# "Cộng đồng…", "Tổng hợp…", "Cộng hòa…"; without diacritics "Tong cong", "Cong" (not "Công nghiệp")
_TOTAL_VI = re.compile(r"^(?:tổng|cộng)(?=$|[\s:.(,\-])(?!\s*(?:đồng|công ty|cty|hợp|tác|hòa|hoà)\b)")
_TOTAL_ASCII = re.compile(
    r"^(?:tong|cong)(?=$|[\s:.(,\-])"
    r"(?!\s*(?:dong|cong ty|cty|ty|hop|tac|hoa|nghiep|nghe|trinh|an|dan|viec|suat|nhan|doan|khai|bo|van|thuong)\b)")
# a cooperative's (or a company's) own name: never a section or total label
_ENTITY = re.compile(r"^(?:htx|hop tac xa|lien hiep|lhhtx|lh htx|tht|to hop tac|tong cong ty|cong ty|cty"
                     r"|doanh nghiep|dntn)\b")
_HEADING = re.compile(r"^(?:linh vuc|nganh|nhom nganh|khoi|loai hinh|phan|muc)\b")
# title and note lines below a header: "Ghi chú: …", "Đơn vị tính: …", "(Số liệu đến 31/12)"
_NOTE = re.compile(r"^(?:ghi chu|chu thich|chu y|luu y|nguon|don vi tinh|don vi|dvt|\(?so lieu|kinh gui|\*)")
# signature blocks: captions, "(Ký, ghi rõ họ tên)", "…, ngày … tháng … năm …" (folded text)
_SIGNATURE = re.compile("^(?:" + "|".join([
    r"(?:tm|kt|tl|tuq|q|thay mat|ky thay|thua lenh|thua uy quyen)[.:\s].*",  # TM. ỦY BAN NHÂN DÂN
    r"(?:pho )?chu tich\b.*", r"(?:pho )?giam doc\b.*", r"(?:pho )?truong (?:phong|ban)\b.*",
    r"thu truong\b.*", r"nguoi (?:lap|ky|kiem tra|duyet|tong hop|bao cao)\b.*", r"ke toan(?: truong)?",
    r"xac nhan\b.*", r"noi nhan\b.*", r"lanh dao\b.*",
    r"\(.*\bky\b.*\)", r".*\bghi ro ho (?:va )?ten\b.*", r"\(?da ky\)?",               # (Ký, ghi rõ họ tên)
    r"(?:.{0,80}[,\s])?ngay\b.{0,30}\bthang\b.{0,30}\bnam\b.{0,12}",                   # …, ngày … tháng … năm …
]) + ")$", re.S)
_DASHES = {"-", "–", "—", "…", "...", "x"}  # "not reported" marks: no record by themselves


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _blankish(v: Any) -> bool:
    """Empty, or only a "not reported" mark (`-`): no part of a record by itself."""
    return _empty(v) or (isinstance(v, str) and v.strip() in _DASHES)


_DATE_COLUMNS = ("established_on", "allocated_on")
_CODE_COLUMNS = ("reg_code", "code")


_alias_keys: set[str] = set()
_alias_gates: set[str] = set()


def _init_aliases() -> None:
    if _alias_keys:
        return
    from schemas.forms import FORMS

    aliases = [a for spec in FORMS.values() for c in spec.columns for a in c.aliases]
    _alias_gates.update(_gate(a) for a in aliases)
    _alias_gates.update(_gate(header_key(a)) for a in aliases)
    _alias_keys.update(header_key(a) for a in aliases)
    _numeric_aliases.append(any(set(k) <= _NUMERIC_TEXT for k in _alias_keys))
    _digit_aliases.append(any(_DIGIT.search(k) for k in _alias_keys))


# The characters of a number's or a date's text (`_cell_text`: "12", "-1.5e-07", "inf", "nan",
# "01/02/2020"): while no header alias is made of them only, such a cell is no header cell.
_NUMERIC_TEXT = frozenset("0123456789.-+/einfa")
_numeric_aliases: list[bool] = []
# Whether some alias has a digit: while none has, an ASCII text with a digit and no '(' is no
# header cell (its `header_key` keeps the digit: fold of ASCII is its lower case, no unit dropped)
_digit_aliases: list[bool] = []


@lru_cache(maxsize=65536)
def _is_alias(text: str) -> bool:
    return header_key(text) in _alias_keys


@lru_cache(maxsize=65536, typed=True)
def _cell_alias(v: Any) -> bool:
    """A cell (its value as read) whose text is some form's header cell."""
    if (v.__class__ is float or v.__class__ is datetime) and _numeric_aliases and not _numeric_aliases[0]:
        return False  # its text is digits (a number, a date): no alias is
    if (v.__class__ is str and _digit_aliases and not _digit_aliases[0] and v.isascii() and "(" not in v
            and _DIGIT.search(v)):
        return False  # a code, a number or a date typed as text: no alias has a digit
    h = _cell_text(v)
    return bool(h) and _is_alias(h)


@lru_cache(maxsize=4096)
def _is_stt(text: str) -> bool:
    return header_key(text) in _STT_KEYS


def _ascii_table() -> dict[int, str]:
    import unicodedata

    table: dict[int, str] = {}
    for cp in list(range(0xC0, 0x250)) + list(range(0x1E00, 0x1F00)):
        base = "".join(ch for ch in unicodedata.normalize("NFD", chr(cp)) if not unicodedata.combining(ch))
        if base and base.isascii():
            table[cp] = base.lower()
    table[ord("đ")] = table[ord("Đ")] = "d"
    return table


_ASCII = _ascii_table()
_PARENS = re.compile(r"\([^()]*\)")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _gate(text: str) -> str:
    """A cheap key (first two words, folded to ASCII, units in parentheses dropped) that every
    header alias's spellings share: a cell whose gate no alias has is no header cell. Used to
    keep the scan below the top rows linear and cheap (`header_key` costs ~50 µs a string)."""
    import unicodedata

    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    t = _NON_ALNUM.sub(" ", _PARENS.sub(" ", text.lower().translate(_ASCII))).split()
    return " ".join(t[:2])


def _maybe_alias(text: str) -> bool:
    return _gate(text) in _alias_gates and _is_alias(text)


def _col_letters(n: int) -> str:
    """0-based Excel column -> letters (0 -> A, 26 -> AA)."""
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


@dataclass
class _Header:
    form: str
    row: int                    # grid row of the lowest header row
    top: int                    # grid row of the highest header row
    headers: list[str]          # header text per grid column ('' outside the table)
    table: list[int]            # grid columns of the table
    columns: dict[str, int]     # canonical column -> grid column
    # other tables beside it: (their form, or None when not a whole form; first, last)
    others: list[tuple[str | None, int, int]] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int, int]:
        return (len(self.columns), -self.row, -(self.row - self.top))


def _blocks(headers: list[str], top: int, last_row: list[int]) -> list[list[int]]:
    """Grid columns of the header split into tables: a column with no header cell and nothing
    below the header's top row separates two tables, and so does a second STT column."""
    blocks: list[list[int]] = []
    cur: list[int] = []
    aliases = 0
    for j, h in enumerate(headers):
        if not h and last_row[j] < top:
            if cur:
                blocks.append(cur)
            cur, aliases = [], 0
            continue
        if h and cur and aliases >= 2 and _is_stt(h):
            blocks.append(cur)
            cur, aliases = [], 0
        cur.append(j)
        if h and _is_alias(h):
            aliases += 1
    if cur:
        blocks.append(cur)
    return blocks


def _last_rows(sheet: Sheet) -> list[int]:
    """Per grid column, the last grid row holding a non-empty cell (-1 for none)."""
    out = []
    for col in sheet.columns:
        i = len(col) - 1
        while i >= 0 and _empty(col[i]):
            i -= 1
        out.append(i)
    return out


@lru_cache(maxsize=4096)
def _detect_form(headers: tuple[str, ...], allowed: tuple[str, ...] | None) -> str | None:
    from schemas.forms import detect_form

    return detect_form(list(headers), allowed)


@lru_cache(maxsize=4096)
def _header_map(form: str, headers: tuple[str, ...]) -> dict[str, int]:
    from schemas.forms import header_map

    return header_map(form, list(headers))


def _candidates(headers: list[str], row: int, top: int, allowed: tuple[str, ...] | None,
                last_row: list[int]) -> list[_Header]:
    """The tables of one header candidate (rows top..row combined), best first; each with the
    other forms' tables found beside it on the same rows."""
    from schemas.forms import match_header

    width = len(headers)
    blocks = _blocks(headers, top, last_row)
    if len(blocks) > 1 and not any(b[0] != blocks[0][0] and headers[b[0]] and _is_stt(headers[b[0]]) for b in blocks):
        # split only by empty columns: read as one table unless a part is a form by itself
        whole = [j for b in blocks for j in b]
        parts = [tuple(headers[j] if j in b else "" for j in range(width)) for b in blocks]
        if not any(_detect_form(m, None) for m in parts):
            blocks = [whole]
    # (columns, form allowed, any form, header cells that are some form's header)
    found: list[tuple[list[int], str | None, str | None, int]] = []
    for b in blocks:
        masked = tuple(headers[j] if j in b else "" for j in range(width)) if len(blocks) > 1 else tuple(headers)
        n_alias = sum(1 for j in b if headers[j] and _is_alias(headers[j]))
        if n_alias < 2:
            found.append((b, None, None, n_alias))
            continue
        form = _detect_form(masked, allowed)
        found.append((b, form, form if allowed is None else _detect_form(masked, None), n_alias))
    out: list[_Header] = []
    for b, form, _, _ in found:
        if form is None:
            continue
        table = list(b)
        cols = dict(_header_map(form, tuple(headers[j] if j in b else "" for j in range(width))))
        others: list[tuple[str | None, int, int]] = []
        # a block beside it with no form of its own joins the table when it only adds that
        # form's missing columns and has no STT of its own (a table with an empty column inside);
        # any other block with form headers is another table (its form, or None: not a whole form)
        for b2, _, f_any, n2 in found:
            if b2 is b:
                continue
            if f_any is not None:
                others.append((f_any, b2[0], b2[-1]))
                continue
            extra = {}
            ok = True
            for j in b2:
                h = headers[j]
                if not h:
                    continue
                if _is_stt(h):
                    ok = False
                    break
                c = match_header(form, h)
                if c is None:
                    if _is_alias(h):  # another form's column: another table
                        ok = False
                        break
                    continue
                if c in cols or c in extra:
                    ok = False
                    break
                extra[c] = j
            if ok:
                table += b2
                cols.update(extra)
            elif n2 >= 2:
                others.append((None, b2[0], b2[-1]))
        table.sort()
        table_headers = [headers[j] if j in set(table) else "" for j in range(width)]
        out.append(_Header(form, row, top, table_headers, table, cols, others))
    out.sort(key=lambda h: h.key, reverse=True)
    return out


def _header(sheet: Sheet, allowed: tuple[str, ...] | None = None) -> _Header | None:
    """The sheet's header (see find_header)."""
    _init_aliases()
    texts: dict[int, list[str]] = {}
    last_row: list[int] | None = None

    def row_texts(i: int) -> list[str]:
        t = texts.get(i)
        if t is None:
            t = texts[i] = sheet.row_texts(i)
        return t

    found: list[_Header] = []
    grid = sheet.columns
    n_aliases: dict[int, int] = {}
    blank: dict[int, bool] = {}

    # a number or a date is no header cell while no alias is made of digits (`_cell_alias`):
    # not looked up at all (most cells of the data rows among the top rows)
    no_alias = (float, datetime) if _numeric_aliases and not _numeric_aliases[0] else ()

    def aliases_in(i: int) -> int:
        """How many cells of row i are some form's header cell (`_is_alias` of the cell's text),
        from the cells themselves: a text cell through the memoized `_text_alias`."""
        n = n_aliases.get(i)
        if n is None:
            n = n_aliases[i] = sum(map(_cell_alias, [v for col in grid
                                                     if (v := col[i]) is not None and v.__class__ not in no_alias]))
        return n

    def is_blank(i: int) -> bool:
        """`not any(row_texts(i))`, without making the row's texts."""
        b = blank.get(i)
        if b is None:
            b = blank[i] = not any(col[i] is not None and _cell_text(col[i]) for col in grid)
        return b

    def consider(i: int) -> None:
        nonlocal last_row
        in_rows = 0  # header cells in rows i-mode..i: the combined row holds at most that many
        for mode in range(min(HEADER_SPAN_ROWS, i + 1)):
            in_rows += aliases_in(i - mode)
            if in_rows < 2:
                continue  # fewer than two cells that are any form's header: not a header row
            # a blank row above ends the header (no combination reaches across it); a blank
            # row has no header cell, so looking only now gives the same candidates
            if any(is_blank(i - m) for m in range(1, mode + 1)):
                break
            headers = row_texts(i)
            for m in range(1, mode + 1):  # with the row(s) above: a column's header is its lowest non-empty cell
                headers = [h if h else p for h, p in zip(headers, row_texts(i - m), strict=True)]
            if sum(1 for h in headers if h and _is_alias(h)) < 2:
                continue
            if last_row is None:
                last_row = _last_rows(sheet)
            found.extend(_candidates(headers, i, i - mode, allowed, last_row))

    top_rows = min(sheet.height, HEADER_SCAN_ROWS)
    for i in range(top_rows):
        consider(i)
    if not found:  # deeper: only rows of text (at most two cells with digits) with two possible header cells
        kinds, grid = sheet.kinds, sheet.columns
        for i in range(top_rows, sheet.height):
            texts_i: list[str] = []
            digits = 0
            for j in range(sheet.width):
                k = kinds[j][i]
                if k is None:
                    continue
                v = grid[j][i]
                if k != CELL_TEXT or not isinstance(v, str):
                    break
                if _DIGIT.search(v):
                    digits += 1
                    if digits > 2:
                        break
                texts_i.append(v)
            else:
                if sum(1 for v in texts_i if len(v) < 200 and _maybe_alias(v)) < 2:
                    continue
                for k2 in range(i, min(sheet.height, i + HEADER_SPAN_ROWS)):
                    consider(k2)
                if found:
                    break
    if not found:
        return None
    best = max(found, key=lambda h: h.key)
    # another form's table beside it on other header rows (columns apart from this table's)
    mine = set(best.table)
    for h in found:
        if set(h.table) & mine:
            continue
        if all(b < h.table[0] or h.table[-1] < a for _, a, b in best.others):
            best.others.append((h.form, h.table[0], h.table[-1]))
    return best


def find_header(sheet: Sheet, allowed: tuple[str, ...] | None = None) -> tuple[str, int, list[str]] | None:
    """(form, grid row of the lowest header row, header text per grid column — '' outside the
    form's table) of the sheet's header, or None when no form's header is found.

    The top `HEADER_SCAN_ROWS` rows are scanned, each alone and combined with the one or two
    rows above it (a column's header is the lowest non-empty header cell above it); the
    candidate matching most columns of its form wins. When none is there, the rest of the
    sheet is scanned, only rows of text whose cells may be header cells, and the first header
    found (with the rows just below it) wins. A column with no header and nothing below ends a
    table, so two tables side by side are told apart (`FormSheet.other_tables`)."""
    h = _header(sheet, allowed)
    if h is None:
        return None
    return h.form, h.row, h.headers


@lru_cache(maxsize=1)
def _sector_keys() -> frozenset[str]:
    """Sector spellings and codes (schemas/reference/vocabularies.toml), as category keys."""
    import tomllib

    from coop.paths import REFERENCE_DIR
    from coop.text import category_key

    try:
        data = tomllib.loads((REFERENCE_DIR / "vocabularies.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    sectors = (data.get("vocab") or {}).get("sector") or {}
    return frozenset(category_key(s) for code, spellings in sectors.items() for s in [code, *spellings])


def _heading(text: str) -> bool:
    """A section heading rather than a name: "Lĩnh vực …", a sector ("Dịch vụ"), capitals."""
    from coop.text import category_key

    f = _SECTION_PREFIX.sub("", fold(text))
    if _HEADING.match(f) or category_key(f) in _sector_keys():
        return True
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and text == text.upper()


def _title_line(text: str) -> bool:
    """A line of its own that is a title or a note: "Ghi chú: …", "Đơn vị tính: …", a line in
    capitals ("DANH SÁCH TỔ HỢP TÁC") that is no cooperative's name."""
    f = fold(text)
    if _NOTE.match(f):
        return True
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and text == text.upper() and not _ENTITY.match(f)


def _total_label(text: str) -> bool:
    t = text.lower()
    return bool(_TOTAL_ASCII.match(t) if t.isascii() else _TOTAL_VI.match(t))


def form_sheet(sheet: Sheet, allowed: tuple[str, ...] | None = None) -> FormSheet | None:
    """The sheet as a FormSheet (header found, layout rows classified), or None when its
    header matches no form. Every non-blank row below the header is a data row or counted in
    `skipped` by kind (SKIP_KINDS); see docs/architecture.md "Reading rules"."""
    h = _header(sheet, allowed)
    if h is None:
        return None
    form, hrow, headers, cols = h.form, h.row, h.headers, h.columns
    first_col = sheet.first_column
    fs = FormSheet(sheet=sheet, form=form, header_row=sheet.row_numbers[hrow], columns=cols,
                   headers={c: headers[j] for c, j in cols.items()},
                   table_columns=(_col_letters(first_col + h.table[0]), _col_letters(first_col + h.table[-1])),
                   other_tables=[(f, _col_letters(first_col + a), _col_letters(first_col + b)) for f, a, b in h.others])
    rules = _row_rules(sheet, h)
    start = hrow + 1
    row_kinds = _row_kinds(rules, start)
    fs.data_rows = [start + k for k, r in enumerate(row_kinds) if r == _DATA]
    counts = Counter(row_kinds)
    fs.skipped = {k: counts[k] for k in SKIP_KINDS if counts[k]}
    return fs


def _row_rules(sheet: Sheet, h: _Header) -> _RowRules:
    """The rules telling the rows below header `h` of the sheet."""
    from schemas.forms import FORMS

    headers, cols = h.headers, h.columns
    stt = next((j for j in h.table if headers[j] and _is_stt(headers[j]) and j not in cols.values()),
               None)
    return _RowRules(
        sheet=sheet, stt=stt, name_col=cols.get("name"), members_col=cols.get("members"),
        date_col=next((cols[c] for c in _DATE_COLUMNS if c in cols), None),
        code_col=next((cols[c] for c in _CODE_COLUMNS if c in cols), None),
        category_cols={cols[c.name] for c in FORMS[h.form].columns
                       if c.name in cols and c.name not in _CODE_COLUMNS
                       and (c.kind == "category" or c.name == "commune")},
        used=sorted(set(cols.values()) | ({stt} if stt is not None else set())), table_set=set(h.table))


# A row's kind below the header (`_row_kinds`): a data row, one of SKIP_KINDS, or blank (no
# row of the sheet); _UNSURE: what a quick look cannot tell (`_RowRules.kind` decides).
_DATA, _BLANK, _UNSURE = "data", "blank", "unsure"
# Cell codes (`_cell_code`): the cell's kind (CELL_*, None for empty), or for a text cell one of
# these: blank (no cell of the row), a "not reported" mark, a column number, digits (a text with
# a digit and no "ngày": no line of a signature's date).
_BLANK_TEXT, _DASH_TEXT, _COLNUM_TEXT, _DIGIT_TEXT = "blank", "dash", "colnum", "digits"
_CODES = (None, CELL_TEXT, CELL_NUMBER, CELL_DATE, CELL_BOOL, CELL_ERROR,
          _BLANK_TEXT, _DASH_TEXT, _COLNUM_TEXT, _DIGIT_TEXT)
_NON_TEXT_KINDS = frozenset({CELL_NUMBER, CELL_DATE, CELL_BOOL, CELL_ERROR})
_MAYBE_COLNUM = frozenset({CELL_NUMBER, _COLNUM_TEXT})  # may be a column-number cell (`_colnum_cell`)
# A row's summary (`_RowRules.summary`): how many of its cells are cells (not blank), not text,
# surely no column number, texts with a digit; how many of the form's columns (but STT) are
# filled; whether a record column (date, code, category), the name, the code is filled.
_FIELDS = ("cells", "non_text", "no_colnum", "digit_texts", "filled", "record", "name", "code")
# The type of a cell's value per kind (the Sheet's contract: `Sheet.columns`, `Sheet.kinds`).
_KIND_TYPES: dict[str | None, type] = {None: type(None), CELL_TEXT: str, CELL_NUMBER: float, CELL_DATE: datetime,
                                       CELL_BOOL: bool, CELL_ERROR: str}
_VALUE_TYPES = frozenset({float, datetime, bool})  # a cell of a number, a date, a boolean


@dataclass
class _RowRules:
    """The rules that tell a row below a form's header: a data row or a layout row (its kind),
    from the form's grid columns (docs/architecture.md "Reading rules")."""

    sheet: Sheet
    stt: int | None
    name_col: int | None
    members_col: int | None
    date_col: int | None
    code_col: int | None
    category_cols: set[int]
    used: list[int]           # the form's grid columns and the STT column
    table_set: set[int]       # the grid columns of the form's table

    def __post_init__(self) -> None:
        self.used_set = set(self.used)
        self.bits = max(1, self.sheet.width.bit_length())  # a summary's field holds up to `width`
        self.summary_kinds: dict[int, str] = {}
        self.tables: list[dict[str | None, int]] | None = None  # per grid column, `_contributions`

    def cells(self, i: int) -> list[int]:
        """The grid columns of row i holding a cell (not None, not a blank text), in order."""
        return [j for j, col in enumerate(self.sheet.columns)
                if i < len(col) and (v := col[i]) is not None and (v.__class__ is not str or v.strip())]

    def text(self, i: int, j: int | None) -> str:
        if j is None:
            return ""
        v = self.sheet.columns[j][i]
        if v.__class__ is str:
            t = v.strip()
            return t if t.isascii() or unicodedata.is_normalized("NFC", t) and "  " not in t else clean_text(t)
        return self.sheet.text(i, j)

    def kind(self, i: int, cells: list[int], first: bool, in_signature: bool) -> str | None:
        """The kind of non-blank row i (SKIP_KINDS), None for a data row: the definition, one
        row at a time. `first`: no non-blank row above it below the header; `in_signature`: a
        signature row is above it."""
        sheet, stt, name_col = self.sheet, self.stt, self.name_col
        grid, kinds = sheet.columns, sheet.kinds
        kind = _layout_kind(sheet, i, cells, first, in_signature, self.used)
        if kind is not None:
            return kind
        filled = set()
        for j in cells:
            if j in self.used_set:
                v = grid[j][i]
                if not (v.__class__ is str and v.strip() in _DASHES):  # "-": nothing reported
                    filled.add(j)
        has_record = self.date_col in filled or self.code_col in filled or not filled.isdisjoint(self.category_cols)
        if not has_record:  # sections and totals hold no record
            stt_text = self.text(i, stt) if stt in filled else ""
            name_text = self.text(i, name_col) if name_col in filled else ""
            lead = self.text(i, next((j for j in cells if j in self.table_set), None))
            marker = bool(stt_text and (_ROMAN.match(stt_text) or _LETTER.match(stt_text)))
            label = not stt_text and bool(_SECTION_LABEL.match(name_text or lead))
            if (marker or label) and not (
                    name_text and (_ENTITY.match(_SECTION_PREFIX.sub("", fold(name_text)))
                                   or (self.members_col in filled and not label and not _heading(name_text)))):
                return "section"
            if any(lab and lab[0] in "TtCc" and _total_label(lab) for lab in (stt_text, name_text, lead)):
                return "total"
        if len(cells) == 1 and kinds[cells[0]][i] == CELL_TEXT and _title_line(sheet.text(i, cells[0])):
            return "title"
        n = len(filled) - (stt in filled)
        if name_col is not None:
            record = name_col in filled or (has_record and n >= 2) or n >= 3
        else:
            record = self.code_col in filled or n >= 2
        # no_data: an STT alone, text only outside the form's columns, one stray cell
        return None if record else "no_data"

    def anchored(self, start: int) -> list[bool]:
        """Per grid row from `start` down: surely a data row by three of its cells, its key cell
        (the name, else the code) a text cell whose text is plain (`_text_code`: no blank, mark or
        column number), a record cell (date, code, category) filled (no blank, no mark) and a
        number, date or boolean cell. `kind` says None for such a row whatever its other cells:
        no layout row by its cells (the key cell is no column number, the value cell no text),
        a record, the key filled. A column at a time with C-level passes (no Python per cell);
        the value cells from the columns holding most of them, until few rows lack one."""
        sheet = self.sheet
        height, n = sheet.height, sheet.height - start
        key = self.name_col if self.name_col is not None else self.code_col
        record_cols = sorted({j for j in (self.date_col, self.code_col) if j is not None} | self.category_cols)
        if n <= 0 or key is None or not record_cols:
            return [False] * max(n, 0)
        grid, kinds = sheet.columns, sheet.kinds
        if any(len(grid[j]) != height or len(kinds[j]) != height for j in [key, *record_cols]):
            return [False] * n
        sets = _text_sets()
        try:
            values = grid[key][start:]
            seen = set(values)
            _learn_texts(seen, sets)
            plain = seen & sets[0]
            found = list(map(operator.and_, map(plain.__contains__, values),
                             map(operator.eq, kinds[key][start:], repeat(CELL_TEXT))))
            pending = found  # rows of `found` with no record cell filled yet
            for j in record_cols:
                if True not in pending:
                    break
                values = grid[j][start:]
                seen = set(values)
                _learn_texts(seen, sets)
                pending = list(map(operator.and_, pending, map((seen & sets[2]).__contains__, values)))
        except TypeError:  # an unhashable value: no quick look
            return [False] * n
        found = list(map(operator.gt, found, pending))  # and not pending
        # value cells: from the (at most three) columns with most number/date/boolean kinds (in a sample)
        order = sorted(((sum(map(kc[start::8].count, (CELL_NUMBER, CELL_DATE, CELL_BOOL))), j)
                        for j, kc in enumerate(kinds) if len(kc) == height and len(grid[j]) == height),
                       reverse=True)[:3]
        pending = found  # rows of `found` with no value cell yet
        for count, j in order:
            if not count or True not in pending:
                break
            value_cells = map(operator.and_, map(_VALUE_TYPES.__contains__, map(type, grid[j][start:])),
                              map(operator.ne, kinds[j][start:], repeat(CELL_TEXT)))
            pending = list(map(operator.gt, pending, value_cells))
        return list(map(operator.gt, found, pending)) if pending is not found else [False] * n

    def summary_of_row(self, i: int) -> int | None:
        """Row i's summary (`summary`) from its cells, or None when a cell breaks the Sheet's
        contract (a value whose type is not its kind's) or is an error whose text is blank, a
        mark or a column number."""
        if self.tables is None:
            self.tables = [_contributions(self.role(j), self.bits) for j in range(self.sheet.width)]
        summary = 0
        for col, kind_col, table in zip(self.sheet.columns, self.sheet.kinds, self.tables, strict=True):
            if i >= len(col) or i >= len(kind_col):
                return None
            v, k = col[i], kind_col[i]
            if type(v) is not _KIND_TYPES.get(k):
                return None
            if k == CELL_TEXT:
                k = _text_code(v)
            elif k == CELL_ERROR and _text_code(v) in (_BLANK_TEXT, _DASH_TEXT, _COLNUM_TEXT):
                return None
            summary += table[k]  # table[_cell_code(v, kind)]
        return summary

    def summary(self, codes: list[str | None]) -> int:
        """A row's summary from its cells' codes (per grid column): per field (_FIELDS, `bits`
        wide) how many of its cells count in it."""
        return sum(_contributions(self.role(j), self.bits)[c] for j, c in enumerate(codes))

    def role(self, j: int) -> tuple[bool, bool, bool, bool, bool]:
        """Grid column j's part in a row's summary: a form's column, not STT, a record column
        (date, code, category), the name, the code."""
        return (j in self.used_set, j != self.stt, j in (self.date_col, self.code_col) or j in self.category_cols,
                j == self.name_col, j == self.code_col)

    def summary_kind(self, summary: int) -> str:
        """The kind of every row with this summary, or _UNSURE when it cannot tell; `kind`
        gives the same for such a row. Not a layout row by its cells (`_layout_kind`): a cell
        that is no column number (or too few cells), and a cell that is not text or two texts
        with digits (no signature: a text with a digit and no "ngày" is none of its lines; no
        units line or repeated header: two texts with digits). Its filled cells and whether it
        holds a record follow; a row without a record (a section or total?) is _UNSURE."""
        mask = (1 << self.bits) - 1
        cells, non_text, no_colnum, digit_texts, n, record, name, code = (
            (summary >> (self.bits * k)) & mask for k in range(len(_FIELDS)))
        if not cells:
            return _BLANK
        if not no_colnum and cells >= min(3, len(self.used)):
            return _UNSURE  # maybe a row of column numbers
        if not non_text and digit_texts < 2:
            return _UNSURE  # text only: signature, title, repeated header … are told by the texts
        if not record:
            return _UNSURE  # no record: maybe a section or a total, told by the texts
        if self.name_col is not None:
            return _DATA if name or n >= 2 else "no_data"
        return _DATA if code or n >= 2 else "no_data"

    def quick_kind(self, i: int) -> str:
        """`summary_kind` of row i's summary (memoized per summary), _UNSURE without one."""
        summary = self.summary_of_row(i)
        if summary is None:
            return _UNSURE
        kind = self.summary_kinds.get(summary)
        if kind is None:
            kind = self.summary_kinds[summary] = self.summary_kind(summary)
        return kind


@lru_cache(maxsize=1024)
def _contributions(role: tuple[bool, bool, bool, bool, bool], bits: int) -> dict[str | None, int]:
    """Per cell code, what a cell of a grid column with this role (`_RowRules.role`) adds to its
    row's summary: a 1 in each of the fields (_FIELDS, `bits` wide) the cell counts in."""
    used, not_stt, record, name, code_col = role
    out = {}
    for code in _CODES:
        cell = code is not None and code != _BLANK_TEXT
        filled = cell and code != _DASH_TEXT and used
        facts = (cell, code in _NON_TEXT_KINDS, cell and code not in _MAYBE_COLNUM,
                 code in (_COLNUM_TEXT, _DIGIT_TEXT), filled and not_stt, filled and record,
                 filled and name, filled and code_col)
        out[code] = sum(int(f) << (bits * k) for k, f in enumerate(facts))
    return out


def _row_kinds_by_rules(rules: _RowRules, start: int) -> list[str]:
    """Per grid row from `start` down, its kind (_DATA, SKIP_KINDS, _BLANK): `_RowRules.kind`
    row by row, the definition."""
    out = []
    first, in_signature = True, False
    for i in range(start, rules.sheet.height):
        cells = rules.cells(i)
        if not cells:
            out.append(_BLANK)  # truly blank: no row of the sheet
            continue
        kind = rules.kind(i, cells, first, in_signature)
        first = False
        in_signature = in_signature or kind == "signature"
        out.append(kind or _DATA)
    return out


def _row_kinds(rules: _RowRules, start: int) -> list[str]:
    """`_row_kinds_by_rules`, quicker: most rows are data rows told by three cells
    (`_RowRules.anchored`, a column at a time); the others by their summary (`quick_kind`,
    memoized per distinct summary), and those it cannot tell by `_RowRules.kind`, in order.
    A row told quickly is not blank and no signature, so `first` and `in_signature` of the
    rows told by `kind` are as row by row."""
    anchored = rules.anchored(start)
    out = [_DATA if a else _BLANK for a in anchored]
    first_anchored = anchored.index(True) if True in anchored else len(anchored)
    seen, in_signature = False, False  # seen: a non-blank row above, not anchored
    for k in [k for k, a in enumerate(anchored) if not a]:
        i = start + k
        cells = rules.cells(i)
        if not cells:
            continue  # truly blank: no row of the sheet
        first = not seen and k < first_anchored
        seen = True
        kind = rules.quick_kind(i)
        if kind == _UNSURE:
            kind = rules.kind(i, cells, first, in_signature) or _DATA
            in_signature = in_signature or kind == "signature"
        out[k] = kind
    return out


# Texts seen in cells, by their code (`_text_code`; bounded): those a key cell may hold (plain
# text, digits), the others, and the texts (and None) that fill no cell (blank, a "not reported"
# mark). Replaced, never cleared, when full: a caller keeps the sets it took (threads).
_TextSets = tuple[set[Any], set[Any], set[Any]]
_TEXT_SETS: _TextSets = (set(), set(), {None})
_TEXT_MEMO = 1 << 17


def _text_sets() -> _TextSets:
    global _TEXT_SETS
    if len(_TEXT_SETS[0]) > _TEXT_MEMO or len(_TEXT_SETS[1]) > _TEXT_MEMO:
        _TEXT_SETS = (set(), set(), {None})
    return _TEXT_SETS


def _learn_texts(values: set[Any], sets: _TextSets) -> None:
    """Sort the texts among `values` not seen before into `sets` (plain, other, unfilled); a str
    subclass by its text: `ProblemCell("-")` joins the unfilled ones, a doubt that only makes
    `_RowRules.anchored` leave its row to the summary."""
    plain, other, unfilled = sets
    for v in values.difference(plain).difference(other):  # one argument each: no pass over the sets
        if isinstance(v, str):
            code = _text_code(v)
            if code in (CELL_TEXT, _DIGIT_TEXT):
                plain.add(v)
            else:
                other.add(v)
                if code in (_BLANK_TEXT, _DASH_TEXT):
                    unfilled.add(v)


@lru_cache(maxsize=65536, typed=True)
def _text_code(v: str) -> str:
    """A text cell's code: blank, a "not reported" mark (`_DASHES`), a column number
    (`_colnum_cell`), digits (a digit, no "ngày"/"ngay"), else CELL_TEXT."""
    t = v.strip()
    if not t:
        return _BLANK_TEXT
    if t in _DASHES:
        return _DASH_TEXT
    if _COLNUM.match(t):
        return _COLNUM_TEXT
    if _DIGIT.search(v) and "ngày" not in v.lower() and "ngay" not in v.lower():
        return _DIGIT_TEXT
    return CELL_TEXT


def _cell_code(v: Any, kind: str | None) -> str | None:
    """A cell's code: its kind, or for a text cell `_text_code` when that is not CELL_TEXT."""
    if kind == CELL_TEXT:
        return _text_code(v)
    return kind


def _colnum_cell(v: Any) -> int | None:
    """The number of a column-number cell (1, "1", "(1)"), else None."""
    if isinstance(v, float):
        return int(v) if v == int(v) and 0 < v < 1000 else None
    if isinstance(v, str):
        t = v.strip()
        return int(t.strip("()")) if _COLNUM.match(t) else None
    return None


_DIGIT = re.compile(r"\d")



def _layout_kind(sheet: Sheet, i: int, cells: list[int], first: bool, in_signature: bool,
                 used: list[int]) -> str | None:
    """column_numbers, signature or title for rows told by their cells alone, else None."""
    grid, kinds = sheet.columns, sheet.kinds
    # 1 2 3 … / (1) (2) (3) …: right under the header, or again further down (a new page)
    if len(cells) >= min(3, len(used)):
        nums = []
        for j in cells:
            n = _colnum_cell(grid[j][i])
            if n is None:
                break
            nums.append(n)
        else:
            if first or nums == list(range(nums[0], nums[0] + len(nums))):
                return "column_numbers"
    if any(kinds[j][i] != CELL_TEXT for j in cells):
        return None
    raw = [str(grid[j][i]) for j in cells]
    # signature block: caption, "(Ký, ghi rõ họ tên)", date line; then the signer's name
    if len(cells) <= 8:
        dated = [t for t in raw if _DIGIT.search(t)]  # digits only in a date line "…, ngày … tháng … năm …"
        if all("ngày" in t.lower() or "ngay" in t.lower() for t in dated) and \
                all(_SIGNATURE.match(fold(t)) for t in dated):
            if dated or (in_signature and len(cells) <= 4) or any(_SIGNATURE.match(fold(t)) for t in raw):
                return "signature"
    # a header repeated (a new page), a line of units "(người)" "(triệu đồng)"
    digits = 0
    for t in raw:
        if _DIGIT.search(t):
            digits += 1
            if digits > 1:
                return None
    if digits <= 1:
        texts = [clean_text(t) for t in raw]
        if len(cells) >= 2 and all(t.startswith("(") and t.endswith(")") for t in texts):
            return "title"
        aliases = sum(1 for t in texts if _maybe_alias(t))
        if aliases >= 2 and 2 * aliases >= len(texts):
            return "title"
    return None
