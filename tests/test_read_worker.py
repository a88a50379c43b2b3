"""The reader worker's fast paths (coop/ingest/read.py `_read_excel_sheet`, formulas.py
`scan_worksheets`, legacy_text.py `convert_sheets`) equal their slow definitions."""

from __future__ import annotations

import datetime as dt
import zipfile

import xlsxwriter

from coop.ingest import formulas
from coop.ingest.read import _DATE_RENDERING, CELL_BOOL, CELL_DATE, CELL_NUMBER, CELL_TEXT, _date_like, read_workbook

DATE, DUR, TIME = {"num_format": "dd/mm/yyyy"}, {"num_format": "[h]:mm:ss"}, {"num_format": "hh:mm:ss.000"}

# (value, format) per row, column B: every kind of cell beside every other in one column
MIXED = [
    ("STT", None), (2.5, None), ("2", None), ("true", None), (True, None), (False, None), (1.0, None),
    (43832.25, DATE), (3e6, DATE), (-5.0, DATE), (1.5, DUR), (0.5001, TIME), (0.0, DATE), (59.5, DATE), (1e11, DATE),
    ("=1/0", None), ("", None), ("2020-01-02 00:00:00", None), ("12 Nguyễn Trãi", None), ("0912 345 678", None),
    ("-", None), ("+84 912", None), ("Hợp tác xã", None), (None, None), (1234567890123.0, None), ("0101", None),
]


def _write(path, columns):
    """columns: {grid column: [(value, format)]}; column 0 is Excel column C."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("S")
    fmts: dict[str, object] = {}
    for j, cells in columns.items():
        for i, (v, f) in enumerate(cells):
            fmt = fmts.setdefault(str(f), wb.add_format(f)) if f else None
            if isinstance(v, str) and v.startswith("="):
                ws.write_formula(i + 1, j + 2, v, fmt, "#DIV/0!")
            elif isinstance(v, str):
                ws.write_string(i + 1, j + 2, v, fmt)
            elif isinstance(v, bool):
                ws.write_boolean(i + 1, j + 2, v, fmt)
            elif v is not None:
                ws.write_number(i + 1, j + 2, v, fmt)
    wb.close()
    return path


def test_fast_read_equals_the_detailed_read(tmp_path):
    """Read with the boolean load's details only where a cell may be no text (iso_cells=False)
    = read with every cell's detail (iso_cells=True, the definition): same values, same
    kinds, on columns of every mix — dates beside text, numbers beside numeric text, booleans,
    errors, dates out of range, a text that reads like a date, pure text, pure numbers."""
    p = _write(tmp_path / "m.xlsx", {
        0: MIXED,                                                          # everything in one column
        1: [("Tên", None)] + [(f"HTX {k}", None) for k in range(30)],      # text only
        2: [("Vốn", None)] + [(k * 1.5, None) for k in range(30)],         # a header and numbers
        3: [("Ngày", None)] + [(40000.0 + k, DATE) for k in range(30)],    # a header and dates
        4: [("Mã", None)] + [(f"{k:04d}", None) for k in range(30)],       # codes typed as text
        5: [("Ghi chú", None), ("2020-01-02 06:00:00", None), ("x", None)],  # a text like a date
        6: [(k * 0.25, None) for k in range(20)] + [(None, None), (7.0, None)],  # numbers only, a gap
        7: [(True, None), (2.0, None), (None, None), (False, None), (0.0, None)],  # booleans and numbers only
        8: [("0912 345 678", None), ("1e5", None), ("3.240", None)],  # texts the float load takes, no number
    })
    fast, = read_workbook(p, iso_cells=False)
    slow, = read_workbook(p, iso_cells=True)
    assert repr(fast) == repr(slow)
    assert fast.first_column == 2
    kinds = fast.kinds[0][1:]  # MIXED row by row (grid row 0 is the empty Excel row 1)
    assert [kinds[k] for k in (1, 6, 24)] == [CELL_NUMBER] * 3 and kinds[4] == kinds[5] == CELL_BOOL
    assert [kinds[k] for k in (2, 3, 17, 25)] == [CELL_TEXT] * 4
    assert fast.columns[0][8] == dt.datetime(2020, 1, 2, 6) and kinds[7] == CELL_DATE
    assert fast.kinds[1][2:] == [CELL_TEXT] * 30 and fast.kinds[2][2:] == [CELL_NUMBER] * 30
    assert fast.kinds[3][2:] == [CELL_DATE] * 30 and fast.kinds[4][2:] == [CELL_TEXT] * 30
    assert fast.columns[5][2:4] == ["2020-01-02 06:00:00", "x"]
    # a column of numbers only is its float load's values (None where empty); booleans stay booleans
    assert fast.columns[6][1:23] == [k * 0.25 for k in range(20)] + [None, 7.0] and fast.columns[6][23:] == [None] * 9
    assert fast.kinds[6][1:23] == [CELL_NUMBER] * 20 + [None, CELL_NUMBER]
    assert fast.columns[7][1:6] == [True, 2.0, None, False, 0.0]
    assert fast.kinds[7][1:6] == [CELL_BOOL, CELL_NUMBER, None, CELL_BOOL, CELL_NUMBER]
    assert fast.kinds[8][1:4] == [CELL_TEXT] * 3 and fast.columns[8][1:4] == ["0912 345 678", "1e5", "3.240"]


def test_date_like_equals_its_definition():
    """A column is read in detail when a cell's text reads like a rendered date: the joined search
    finds exactly those (or more: a text with a NUL; never less). A cell with a number never reads
    so (its text is digits, or a text without a blank), so no cell's text is left out."""
    texts = ["2020-01-02 06:00:00", "+10113-09-19 00:00:00", "-0001-01-01 00:00:00", "1899-12-31 12:00:00.250",
             "12 Nguyễn Trãi", "2020-01-02", "x 2020-01-02 06:00:00", "", None, "0912 345 678", "20201-01-02 00:00:00",
             "2020-01-02 06:00", "12:30", "1234.5", "true"]
    for t in texts:
        expected = bool(t) and _DATE_RENDERING.match(t) is not None
        assert _date_like(["a", t, "b"]) == expected, t
        assert _date_like([t, None]) == expected, t
    assert _date_like(["a\x002020-01-02 06:00:00"])  # more, never less
    assert not _date_like([]) and not _date_like([None, ""])


def test_worksheet_scan_flags_iso_cells_and_formulas(tmp_path):
    """`scan_worksheets` finds the formulas `uncalculated_formulas` finds alone, and flags a
    worksheet with a `t="d"` cell (an ISO date text: calamine's DateTimeIso)."""
    p = _write(tmp_path / "f.xlsx", {0: [("x", None), ("=1/0", None), (1.0, None)]})
    scan = formulas.scan_worksheets(p)
    assert scan is not None and scan.with_formulas == {"xl/worksheets/sheet1.xml"} and not scan.iso_cells
    assert formulas.uncalculated_formulas(p, scan) == formulas.uncalculated_formulas(p)
    iso = tmp_path / "iso.xlsx"
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(iso, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<c r="C4"', b'<c r="D4" t="d"><v>2020-01-02T00:00:00</v></c><c r="C4"')
            dst.writestr(info, data)
    scan = formulas.scan_worksheets(iso)
    assert scan is not None and scan.iso_cells
    sheet, = read_workbook(iso)  # found out by read_workbook itself: every column in detail
    assert sheet.columns[1][3] == dt.datetime(2020, 1, 2) and sheet.kinds[1][3] == CELL_DATE
    assert formulas.scan_worksheets(tmp_path / "no.xls") is None


def test_letter_searches_equal_the_pair_searches():
    """`_after` and `_quoted_d` (a memchr search for the letter, a look at its neighbours, the
    pair searches after `_RARE_LOOKS` letters) = the pair searches they replace, on random pieces
    short and long (letters past the limit), at the start and end of a piece."""
    import random

    rng = random.Random(7)
    alphabet = [b'"', b"'", b"d", b"f", b"<", b":", b"x", b" "]
    pieces = [b"", b"d", b"f", b'"d', b'd"', b'"d"', b"'d'", b"<f", b":f", b'"d\'', b"f<", b"x" * 10 + b"<f"]
    for n in (2, 5, 40, 200, 2000):
        pieces += [b"".join(rng.choices(alphabet, k=n)) for _ in range(300 if n < 200 else 30)]
    pieces += [b"d" * 500 + b'"d"', b"fd" * 300 + b"<f", b"d" * 64 + b"'d'", b"f" * 64 + b":f", b"d" * 65]
    for p in pieces:
        assert formulas._quoted_d(p) == (b'"d"' in p or b"'d'" in p), p
        assert formulas._after(p, b"f", b"<:") == (b"<f" in p or b":f" in p), p
