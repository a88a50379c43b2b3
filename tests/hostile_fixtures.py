"""Small hostile inputs for the reading-limits tests (tests/test_hostile_*.py).

Each builder writes one file (a few kB, generated here, never committed) that used to crash
the reader, exhaust its memory, or take the whole run down:

- `xlsx_xml`: an .xlsx written by hand as XML in a zip (any cells, any declared dimension):
  a cell at XFD1048576, a stray cell in the last row, a dimension missing;
- `zip_bomb_xlsx`: a valid .xlsx whose worksheet XML is padded to `mb` MB of blanks, so the
  zip declares a few MB from a few kB (compression ratio ~1000:1);
- `good_htx` / `htx_file`: a district's HTX list through tests/reader_fixtures.py (xlsxwriter);
- `HTX_ROWS`: the rows of the good file, as the warehouse must hold them.

Expected outcomes are written by hand in the tests from forms.md and the issue, not taken
from the reader.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reader_fixtures import HTX_HEAD, G, htx_row, write_xlsx

#: The good file's rows: (reg_code, name, members).
HTX_ROWS = [("0101", "HTX Một", 10), ("0102", "HTX Hai", 20), ("0103", "HTX Ba", 30)]


def good_htx(path: Path) -> Path:
    """A clean district HTX list (3 rows, all valid)."""
    rows = [htx_row(i + 1, code, name, members=m) for i, (code, name, m) in enumerate(HTX_ROWS)]
    return write_xlsx(path, [G("HTX", [HTX_HEAD] + rows)])


def htx_file(path: Path, rows: list[list[Any]], extra: list[G] | None = None) -> Path:
    return write_xlsx(path, [G("HTX", [HTX_HEAD] + rows)] + list(extra or []))


# --------------------------------------------------------------------------- hand-written xlsx
_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/xl/workbook.xml" '
       'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '{sheets}</Types>')
_CT_SHEET = ('<Override PartName="/xl/worksheets/sheet{n}.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{sheets}</sheets>'
       '</workbook>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}'
            '</Relationships>')


def _col(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _sheet_xml(cells: dict[tuple[int, int], Any], dimension: str | None, padding: int = 0) -> str:
    """Worksheet XML: `cells` {(row, col) 1-based: value} (str = inline string, number)."""
    rows: dict[int, list[str]] = {}
    for (r, c), v in sorted(cells.items()):
        ref = f"{_col(c)}{r}"
        if isinstance(v, str):
            rows.setdefault(r, []).append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(v)}</t></is></c>')
        else:
            rows.setdefault(r, []).append(f'<c r="{ref}"><v>{v!r}</v></c>')
    body = "".join(f'<row r="{r}">{"".join(cs)}</row>' for r, cs in sorted(rows.items()))
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    pad = " " * padding
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'{dim}<sheetData>{body}</sheetData>{pad}</worksheet>')


def xlsx_xml(path: Path, sheets: list[tuple[str, dict[tuple[int, int], Any], str | None]], padding: int = 0) -> Path:
    """An .xlsx written by hand: sheets = [(name, cells, dimension ref or None)]; `padding`
    blanks are added to each worksheet's XML (a zip bomb when large)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT.format(sheets="".join(_CT_SHEET.format(n=i + 1)
                                                                       for i in range(len(sheets)))))
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WB.format(sheets="".join(
            f'<sheet name="{escape(name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, (name, _, _) in enumerate(sheets))))
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS.format(rels="".join(
            f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            f'relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>' for i in range(len(sheets)))))
        for i, (_, cells, dim) in enumerate(sheets):
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml", _sheet_xml(cells, dim, padding))
    return path


def htx_cells(rows: list[tuple[str, str, int]] = HTX_ROWS) -> dict[tuple[int, int], Any]:
    """A small HTX form as cells (header in row 1: code, name, members, date as text)."""
    cells: dict[tuple[int, int], Any] = {(1, 1): "Mã số HTX", (1, 2): "Tên HTX", (1, 3): "Số thành viên",
                                         (1, 4): "Ngày thành lập"}
    for i, (code, name, members) in enumerate(rows):
        cells.update({(i + 2, 1): code, (i + 2, 2): name, (i + 2, 3): members, (i + 2, 4): "01/03/2015"})
    return cells


def xfd_cell_xlsx(path: Path, declared: bool = True) -> Path:
    """An HTX form plus one cell at XFD1048576 (the last cell of a sheet). `declared`: the
    dimension says so (A1:XFD1048576, caught before the parse); else no dimension at all (the
    reader itself would try to allocate 549,755,813,888 bytes: the worker's limit catches it)."""
    cells = htx_cells()
    cells[(1_048_576, 16_384)] = 1
    return xlsx_xml(path, [("HTX", cells, "A1:XFD1048576" if declared else None)])


def stray_last_row_xlsx(path: Path) -> Path:
    """An HTX form plus a stray cell in row 1,048,576 (declared A1:D1048576)."""
    cells = htx_cells()
    cells[(1_048_576, 1)] = "x"
    return xlsx_xml(path, [("HTX", cells, "A1:D1048576")])


def zip_bomb_xlsx(path: Path, mb: int = 5) -> Path:
    """A valid small HTX form whose worksheet XML is padded with `mb` MB of blanks."""
    return xlsx_xml(path, [("HTX", htx_cells(), "A1:D4")], padding=mb << 20)


def big_notes_value_rows() -> list[list[Any]]:
    """Rows of a 'Ghi chú' (notes) sheet holding a loss of -2e11 VND as a plain number."""
    return [["Ghi chú"], ["Lỗ lũy kế (đồng)", -2e11], ["Ngày lập", dt.datetime(2021, 1, 15)]]
