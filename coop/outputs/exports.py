"""Safe writing of every exported workbook and CSV (report, feedback, template, CSVs).

Text that came from a district must never become a formula or a link in a file we hand
to people. The rules, applied to every text value written through this module:

- text is Unicode NFC;
- xlsx (xlsxwriter): the workbook is opened with ``strings_to_formulas=False``,
  ``strings_to_urls=False`` and ``strings_to_numbers=False``; text is written with
  ``write_string`` and, when it starts with ``= + - @`` or a tab / CR / LF, with the
  cell's *quote prefix* set (what Excel itself does when one types ``'=1+2``): the value
  is kept exactly as sent, shown as text, and stays text when the cell is edited;
- CSV: such text gets a leading ``'`` (OWASP CSV-injection advice), files are UTF-8 with
  a BOM so Excel reads the Vietnamese correctly.

Formulas are never written by this module; there is no ``write_formula`` wrapper.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
DATE_FORMAT = "dd/mm/yyyy"
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")


def nfc(value: object) -> str:
    """`value` as NFC text (None -> "")."""
    if value is None:
        return ""
    return unicodedata.normalize("NFC", str(value))


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet program could take `text` for a formula (or a DDE link)."""
    return bool(text) and text.startswith(FORMULA_TRIGGERS)


def csv_safe(value: object) -> str:
    """One CSV field: NFC text, numbers as plain digits, formula-like text prefixed by `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = nfc(value)
    return "'" + text if is_formula_like(text) else text


def write_csv(path: Path, header: Sequence[object], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV (UTF-8 with BOM, `,`, every field through `csv_safe`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([csv_safe(h) for h in header])
        for row in rows:
            w.writerow([csv_safe(v) for v in row])
    return path


def sheet_name(name: str, taken: Iterable[str] = ()) -> str:
    """A valid, unique Excel sheet name (≤ 31 chars, none of []:*?/\\, not starting with ')."""
    base = _SHEET_NAME_BAD.sub("-", nfc(name)).strip().strip("'") or "Sheet"
    base = base[:31]
    lowered = {t.lower() for t in taken}
    candidate, n = base, 2
    while candidate.lower() in lowered:
        suffix = f" ({n})"
        candidate = base[: 31 - len(suffix)] + suffix
        n += 1
    return candidate


class SafeWorkbook:
    """An xlsxwriter workbook where every cell write is safe (see module doc).

    Formats are given as property dicts (xlsxwriter's names) and cached, so callers can
    combine e.g. a highlight with the quote prefix without managing Format objects.
    """

    OPTIONS = {
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "nan_inf_to_errors": False,
    }

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.book = xlsxwriter.Workbook(str(self.path), dict(self.OPTIONS))
        self._formats: dict[tuple[tuple[str, str], ...], Format] = {}  # sorted (property, repr(value)) -> format

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> SafeWorkbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.book.close()

    # -- building blocks -------------------------------------------------------------
    def add_worksheet(self, name: str) -> Worksheet:
        taken = [ws.get_name() for ws in self.book.worksheets()]
        return self.book.add_worksheet(sheet_name(name, taken))

    def fmt(self, props: dict[str, Any] | None = None, **more: Any) -> Format | None:
        merged = {**(props or {}), **more}
        if not merged:
            return None
        key = tuple(sorted((k, repr(v)) for k, v in merged.items()))
        if key not in self._formats:
            self._formats[key] = self.book.add_format(merged)
        return self._formats[key]

    def write(self, ws: Worksheet, row: int, col: int, value: object, props: dict[str, Any] | None = None) -> None:
        """Write one value: numbers as numbers, dates as dates, anything else as safe text."""
        props = dict(props or {})
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            ws.write_blank(row, col, None, self.fmt(props))
        elif isinstance(value, bool):
            ws.write_string(row, col, "Có" if value else "Không", self.fmt(props))
        elif isinstance(value, (int, float)):
            ws.write_number(row, col, value, self.fmt(props))
        elif isinstance(value, (dt.date, dt.datetime)):
            if not isinstance(value, dt.datetime):
                value = dt.datetime(value.year, value.month, value.day)
            props.setdefault("num_format", DATE_FORMAT)
            ws.write_datetime(row, col, value, self.fmt(props))
        else:
            text = nfc(value)
            if is_formula_like(text):
                props["quote_prefix"] = True
            ws.write_string(row, col, text, self.fmt(props))

    def write_row(
        self, ws: Worksheet, row: int, col: int, values: Sequence[object], props: dict[str, Any] | None = None
    ) -> None:
        for i, v in enumerate(values):
            self.write(ws, row, col + i, v, props)

    def write_table(
        self,
        ws: Worksheet,
        row: int,
        header: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        header_props: dict[str, Any] | None = None,
        col_props: Sequence[dict[str, Any] | None] | None = None,
        widths: Sequence[float] | None = None,
    ) -> int:
        """Header + rows from `row`; returns the next free row."""
        hp = header_props or {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
        self.write_row(ws, row, 0, header, hp)
        for r, values in enumerate(rows, start=row + 1):
            for c, v in enumerate(values):
                props = {"border": 1, **((col_props[c] or {}) if col_props and c < len(col_props) else {})}
                self.write(ws, r, c, v, props)
        if widths:
            for c, w in enumerate(widths):
                ws.set_column(c, c, w)
        return row + 1 + len(rows)
