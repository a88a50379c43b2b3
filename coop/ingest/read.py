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

Header detection (forms.md "Layout tolerated in every sheet"): the top rows are scanned;
for each row both the row alone and the row with the one above it ("a column's header is
the lowest non-empty header cell above it") are tried with `schemas.forms.detect_form`;
the candidate matching most columns of its form wins. Then skipped: a column-number row
right under the header, blank rows (empty name; for forms without a name column, empty key
and amount/target), section rows (STT a Roman numeral or single capital letter, no date and
no code), total rows (STT, name or the first filled cell starting with "Tổng"/"Cộng", no
date), and so the signature lines below the data.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from coop.text import clean_text, fold, header_key

__all__ = [
    "CELL_TEXT", "CELL_NUMBER", "CELL_DATE", "CELL_BOOL", "CELL_ERROR",
    "Sheet", "FormSheet", "ReadError", "read_workbook", "read_csv", "read_sheets",
    "find_header", "form_sheet", "HEADER_SCAN_ROWS", "is_fatal", "excel_datetime",
]

CELL_TEXT, CELL_NUMBER, CELL_DATE, CELL_BOOL, CELL_ERROR = "s", "n", "d", "b", "e"
HEADER_SCAN_ROWS = 40
EXCEL_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")

_CALAMINE_ERRORS = {
    "NA": "#N/A", "Div0": "#DIV/0!", "Ref": "#REF!", "Value": "#VALUE!", "Name": "#NAME?",
    "Null": "#NULL!", "Num": "#NUM!", "GettingData": "#GETTING_DATA",
}
_DETAIL = re.compile(r"got '(\w+)\((.*)\)'?\s*$", re.S)  # the boolean load drops the closing quote


class ReadError(Exception):
    """The file cannot be opened or read (corrupt, encrypted, not the format its name says)."""


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
        v = self.columns[j][i]
        if v is None:
            return ""
        if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return str(int(v))
        if isinstance(v, datetime):
            return v.strftime("%d/%m/%Y")
        return clean_text(str(v))

    def row_texts(self, i: int) -> list[str]:
        return [self.text(i, j) for j in range(self.width)]


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
    skipped: dict[str, int] = field(default_factory=dict)  # why -> how many rows

    @property
    def name(self) -> str:
        return self.sheet.name


# --------------------------------------------------------------------------- reading
def read_sheets(path: Path) -> list[Sheet]:
    """Every sheet of a spreadsheet (hidden ones too), or the one sheet of a CSV file.
    Raises ReadError when the file cannot be read. Text cells typed in TCVN3/VNI come back
    in Unicode, noted per sheet (`coop.ingest.legacy_text.convert_sheets`)."""
    from coop.ingest.legacy_text import convert_sheets

    path = Path(path)
    if path.suffix.lower() == ".csv":
        return convert_sheets([read_csv(path)])
    return convert_sheets(read_workbook(path))


def _load(reader: Any, idx: int, dtype: str) -> tuple[Any, list[Any], Any]:
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


def read_workbook(path: Path) -> list[Sheet]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(Path(path))
        names = list(reader.sheet_names)
    except BaseException as e:  # noqa: BLE001 — corrupt/encrypted/not a workbook (or a reader panic)
        if is_fatal(e):
            raise
        raise ReadError(f"{type(e).__name__}: {e}") from None
    out: list[Sheet] = []
    for idx, name in enumerate(names):
        try:
            out.append(_read_excel_sheet(reader, idx, name))
        except BaseException as e:  # noqa: BLE001 — one broken sheet does not lose the others
            if is_fatal(e) or isinstance(e, MemoryError):
                raise
            first = (str(e).splitlines() or [type(e).__name__])[0]
            out.append(Sheet(name, True, [], [], [], error=f"{type(e).__name__}: {first}"))
    if out and all(s.error for s in out):
        raise ReadError(out[0].error)
    return out


_EXCEL_DATETIME = re.compile(r"value:\s*([^,\s]+),\s*datetime_type:\s*(\w+),\s*is_1904:\s*(true|false)")
_EXCEL_EPOCH = datetime(1899, 12, 30)


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

    def sub(m: re.Match) -> str:
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


def _texts_without_string_load(reader: Any, idx: int) -> tuple[Any, list[Any], list[list[Any]]]:
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


def _read_excel_sheet(reader: Any, idx: int, name: str) -> Sheet:
    try:
        s_sheet, s_errors, s_batch = _load(reader, idx, "string")
        texts = [s_batch.column(j).to_pylist() for j in range(s_batch.num_columns)]
        height = s_batch.num_rows
        del s_batch
    except BaseException as e:  # noqa: BLE001 — a reader panic on one cell: read the sheet without it
        if is_fatal(e) or isinstance(e, MemoryError):
            raise
        s_sheet, s_errors, texts = _texts_without_string_load(reader, idx)
        height = len(texts[0]) if texts else 0
    visible = str(getattr(s_sheet, "visible", "visible")) == "visible"
    width = len(texts)
    if height == 0 or width == 0:
        return Sheet(name, visible, [], [], [])
    _, f_errors, f_batch = _load(reader, idx, "float")
    # numbers by default (None where the cell is empty); overridden below from the error lists
    columns: list[list[Any]] = []
    for j in range(width):
        tj = texts[j]
        columns.append([v if t is not None else None for t, v in zip(tj, f_batch.column(j).to_pylist())])
    del f_batch
    kinds: list[list[str | None]] = [[CELL_NUMBER if t is not None else None for t in col] for col in texts]
    _, b_errors, _ = _load(reader, idx, "boolean")
    for e in b_errors:  # cells that are no number and no boolean: text, Excel error, date
        i, j = e.position
        m = _DETAIL.search(e.detail)
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
    for j in range(width):  # booleans: taken by the boolean load, and read "true"/"false"
        tj, kj, cj = texts[j], kinds[j], columns[j]
        for i, t in enumerate(tj):
            if (t == "true" or t == "false") and kj[i] == CELL_NUMBER:
                kj[i], cj[i] = CELL_BOOL, t == "true"
    for e in s_errors:  # cells the string load could not render (an error code in .xlsx)
        i, j = e.position
        if kinds[j][i] is None and "Error(" in e.detail:
            m = _DETAIL.search(e.detail)
            payload = m.group(2) if m else ""
            kinds[j][i] = CELL_ERROR
            columns[j][i] = _CALAMINE_ERRORS.get(payload or "", f"#{payload}")
    cols_info = s_sheet.available_columns()
    first_column = cols_info[0].absolute_index if cols_info else 0
    return Sheet(name, visible, list(range(1, height + 1)), columns, kinds, first_column=first_column)


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
        raise ReadError(str(e)) from None
    text = _decode(data)  # NUL bytes: UTF-16, or rejected as binary there
    delim = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    rows: list[list[str]] = []
    numbers: list[int] = []
    start = 1
    try:
        for rec in reader:
            rows.append(rec)
            numbers.append(start)
            start = reader.line_num + 1
    except csv.Error as e:
        raise ReadError(f"CSV lỗi ở dòng {reader.line_num}: {e}") from None
    width = max((len(r) for r in rows), default=0)
    columns: list[list[Any]] = [[None] * len(rows) for _ in range(width)]
    kinds: list[list[str | None]] = [[None] * len(rows) for _ in range(width)]
    for i, rec in enumerate(rows):
        for j, v in enumerate(rec):
            if v is not None and v.strip() != "":
                columns[j][i] = v
                kinds[j][i] = CELL_TEXT
    return Sheet(path.stem, True, numbers, columns, kinds)


# --------------------------------------------------------------------------- header detection
_STT_KEYS = {"stt", "tt", "so tt", "so thu tu", "thu tu"}
_COLNUM = re.compile(r"^\(?\d{1,3}\)?$")
_ROMAN = re.compile(r"^[IVXLC]+[.)]?$")
_LETTER = re.compile(r"^[A-ZĐ][.)]?$")
_TOTAL = re.compile(r"^(tong|cong)\b")
_SECTION_LABEL = re.compile(r"^(?:[IVXLC]+|[A-ZĐ])[.)]\s*\S")  # "I. Nông nghiệp", "B) Dịch vụ"


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())
_DATE_COLUMNS = ("established_on", "allocated_on")
_CODE_COLUMNS = ("reg_code", "code")


_alias_keys: set[str] = set()


@lru_cache(maxsize=65536)
def _is_alias(text: str) -> bool:
    return header_key(text) in _alias_keys


def find_header(sheet: Sheet, allowed: tuple[str, ...] | None = None) -> tuple[str, int, list[str]] | None:
    """(form, grid row of the lowest header row, header text per grid column) of the best
    header in the top rows, or None when no form's header is found."""
    from schemas.forms import FORMS, detect_form, header_map

    best: tuple[int, int, int, str, list[str]] | None = None  # (score, -row, -mode, form, headers)
    if not _alias_keys:
        _alias_keys.update(header_key(a) for spec in FORMS.values() for c in spec.columns for a in c.aliases)
    prev: list[str] | None = None
    for i in range(min(sheet.height, HEADER_SCAN_ROWS)):
        row = sheet.row_texts(i)
        candidates = [(0, row)]
        if prev is not None and any(prev):
            candidates.append((1, [r if r else p for r, p in zip(row, prev)]))
        for mode, headers in candidates:
            if sum(1 for h in headers if h and _is_alias(h)) < 2:
                continue  # fewer than two cells that are any form's header: not a header row
            form = detect_form(headers, allowed)
            if form is None:
                continue
            score = len(header_map(form, headers))
            key = (score, -i, -mode)
            if best is None or key > best[:3]:
                best = (score, -i, -mode, form, headers)
        prev = row
    if best is None:
        return None
    return best[3], -best[1], best[4]


def form_sheet(sheet: Sheet, allowed: tuple[str, ...] | None = None) -> FormSheet | None:
    """The sheet as a FormSheet (header found, layout rows skipped), or None when its header
    matches no form."""
    from schemas.forms import header_map

    found = find_header(sheet, allowed)
    if found is None:
        return None
    form, hrow, headers = found
    cols = header_map(form, headers)
    fs = FormSheet(sheet=sheet, form=form, header_row=sheet.row_numbers[hrow], columns=cols,
                   headers={c: headers[j] for c, j in cols.items()})
    stt = next((j for j, h in enumerate(headers) if h and header_key(h) in _STT_KEYS and j not in cols.values()), None)
    name_col = cols.get("name")
    date_col = next((cols[c] for c in _DATE_COLUMNS if c in cols), None)
    code_col = next((cols[c] for c in _CODE_COLUMNS if c in cols), None)
    used = sorted(set(cols.values()) | ({stt} if stt is not None else set()))
    skipped = {"column_numbers": 0, "blank": 0, "section": 0, "total": 0}
    first = True
    grid = sheet.columns
    width = sheet.width
    for i in range(hrow + 1, sheet.height):
        filled = {j for j in used if not _empty(grid[j][i])}
        lead_j = next((j for j in range(width) if not _empty(grid[j][i])), None)
        if lead_j is None:
            skipped["blank"] += 1
            continue
        if first:
            first = False
            cells = [t for t in sheet.row_texts(i) if t]
            if len(cells) >= min(3, len(used)) and all(_COLNUM.match(t) for t in cells):
                skipped["column_numbers"] += 1
                continue
        stt_text = sheet.text(i, stt) if stt in filled else ""
        has_date = date_col in filled
        has_code = code_col in filled
        lead = sheet.text(i, lead_j)
        if not has_date and not has_code and (
                (stt_text and (_ROMAN.match(stt_text) or _LETTER.match(stt_text)))
                or (stt is None and _SECTION_LABEL.match(lead))):
            skipped["section"] += 1
            continue
        name_text = sheet.text(i, name_col) if name_col in filled else ""
        if not has_date and any(lab and lab[0] in "TtCc" and _TOTAL.match(fold(lab))
                                for lab in (stt_text, name_text, lead)):
            skipped["total"] += 1
            continue
        if name_col is not None:
            if not name_text:
                skipped["blank"] += 1
                continue
        elif not has_code and len(filled - {stt}) < 2:
            skipped["blank"] += 1  # no key and at most one filled cell: a signature line
            continue
        fs.data_rows.append(i)
    fs.skipped = {k: v for k, v in skipped.items() if v}
    return fs
