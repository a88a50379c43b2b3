"""Value parsing to forms.md "Values" (expected values worked out by hand)."""

import datetime as dt
import pickle

import pytest

from coop.ingest.values import (
    CellError,
    format_raw,
    is_blank,
    is_excel_error,
    parse_date,
    parse_int,
    parse_number,
    parse_ocop,
    parse_reg_code,
    parse_target,
    parse_text,
    parse_yes_no,
)


def code_of(fn, *args):
    with pytest.raises(CellError) as ei:
        fn(*args)
    err = ei.value
    assert err.message and not err.message.endswith("]")
    assert err.reason == f"{err.message} [{err.code}]"
    return err.code


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize(
    "text,value",
    [
        ("3.240", 3240.0),        # dot groups thousands
        ("1,4", 1.4),             # comma is the decimal mark
        ("1.234,5", 1234.5),
        ("12 700", 12700.0),      # space groups thousands
        ("12\u00a0700", 12700.0),  # no-break space too
        ("1.4", 1.4),             # single dot not followed by exactly 3 digits: decimal point
        ("0.25", 0.25),
        ("1.234.567", 1234567.0),
        ("12 700,5", 12700.5),
        ("401", 401.0),
        (" 58 ", 58.0),
        ("-20", -20.0),           # losses may be negative
        ("-1.234,5", -1234.5),
        ("1,234", 1.234),         # comma is decimal even before three digits
        ("0.500", 0.5),           # a leading 0 is no thousands group
        ("1234.567", 1234.567),   # first group longer than 3 digits: no thousands grouping
        ("3.240,00", 3240.0),
    ],
)
def test_parse_number_text(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("empty", [None, "", "  ", "-", "–", "—"])  # a NaN cell is invalid_number (test_values_trust)
def test_parse_number_not_reported(empty):
    assert parse_number(empty) is None


def test_parse_number_numeric_cells_kept():
    assert parse_number(1234.567) == 1234.567  # never re-read as "1.234,567"
    assert parse_number(3240) == 3240.0
    assert isinstance(parse_number(7), float)


@pytest.mark.parametrize("bad", ["abc", "12a", "1.2.3,4,5", "1,2,3", "1.23.4", True, dt.date(2020, 1, 1)])
def test_parse_number_invalid(bad):
    assert code_of(parse_number, bad) == "invalid_number"


def test_parse_int():
    assert parse_int("3.240") == 3240
    assert parse_int(25.0) == 25
    assert parse_int("-") is None
    assert code_of(parse_int, "1,5") == "not_integer"
    assert code_of(parse_int, 2.5) == "not_integer"
    assert code_of(parse_int, "mười") == "invalid_number"


# ------------------------------------------------------------------ dates
@pytest.mark.parametrize(
    "value,expected",
    [
        ("15/03/2020", dt.date(2020, 3, 15)),
        ("5/3/2020", dt.date(2020, 3, 5)),
        ("05-03-2020", dt.date(2020, 3, 5)),
        ("05.03.2020", dt.date(2020, 3, 5)),
        ("2020-03-05", dt.date(2020, 3, 5)),
        ("29/02/2020", dt.date(2020, 2, 29)),
        (dt.date(2019, 7, 1), dt.date(2019, 7, 1)),
        (dt.datetime(2019, 7, 1, 0, 0), dt.date(2019, 7, 1)),
        # Excel 1900 serials: 43831 = 2020-01-01, 43466 = 2019-01-01, 1 = 1900-01-01, 60 = the fake 29/02/1900
        (43831, dt.date(2020, 1, 1)),
        (43831.0, dt.date(2020, 1, 1)),
        (43466, dt.date(2019, 1, 1)),
        (61, dt.date(1900, 3, 1)),
        (1, dt.date(1900, 1, 1)),
        ("43831", dt.date(2020, 1, 1)),  # a serial that a CSV export wrote as text
        ("2005-05-14 00:00:00", dt.date(2005, 5, 14)),  # a datetime cell read as text
        ("15/03/2020 00:00", dt.date(2020, 3, 15)),
    ],
)
def test_parse_date_accepted(value, expected):
    assert parse_date(value, 2020) == expected


@pytest.mark.parametrize("empty", [None, "", "-", "–"])
def test_parse_date_empty(empty):
    assert parse_date(empty, 2020) is None


@pytest.mark.parametrize("bad", ["31/02/2020", "29/02/2019", "32/01/2020", "15/13/2020", "2020-02-30",
                                 "15 tháng 3", "03/15/2020", 43831.5, 0, -5, True])
def test_parse_date_invalid(bad):
    assert code_of(parse_date, bad, 2020) == "invalid_date"


def test_parse_date_after_report_year():
    assert parse_date("31/12/2020", 2020) == dt.date(2020, 12, 31)
    assert code_of(parse_date, "01/01/2021", 2020) == "date_after_report_year"
    assert code_of(parse_date, dt.date(2021, 3, 1), 2020) == "date_after_report_year"
    assert code_of(parse_date, 44197, 2020) == "date_after_report_year"  # 44197 = 2021-01-01
    assert parse_date("01/01/2021", None) == dt.date(2021, 1, 1)  # no report year: no limit


def test_date_message_is_vietnamese():
    with pytest.raises(CellError) as ei:
        parse_date("31/02/2020", 2020)
    assert "Ngày không tồn tại" in ei.value.message and "31/02/2020" in ei.value.message
    assert ei.value.reason.endswith("[invalid_date]")


# ------------------------------------------------------------------ yes/no
@pytest.mark.parametrize("yes", ["x", "X", "có", "Có", "CÓ", "1", 1, 1.0, True, " x "])
def test_yes(yes):
    assert parse_yes_no(yes) is True


@pytest.mark.parametrize("no", [None, "", "không", "Không", "0", 0, False, "-"])
def test_no(no):
    assert parse_yes_no(no) is False


@pytest.mark.parametrize("bad", ["maybe", "2", 2, "xx"])
def test_yes_no_unknown(bad):
    assert code_of(parse_yes_no, bad) == "unknown_category"


# ------------------------------------------------------------------ text, codes
def test_parse_text():
    assert parse_text("  HTX  Nông\nnghiệp ") == "HTX Nông nghiệp"
    assert parse_text(12.0) == "12"
    assert parse_text(12.5) == "12.5"
    assert parse_text(7) == "7"
    assert parse_text("") is None
    assert parse_text(None) is None


@pytest.mark.parametrize(
    "value,expected",
    [
        ("5400123456", "5400123456"),
        ("0101234567", "0101234567"),  # leading zero kept
        ("'0101234567", "0101234567"),  # Excel text apostrophe removed
        ("54 0012 3456", "5400123456"),
        ("0101234567-001", "0101234567-001"),
        (5400123456, "5400123456"),    # integer numeric cell -> its digits
        (5400123456.0, "5400123456"),
        ("", None),
        (None, None),
    ],
)
def test_parse_reg_code(value, expected):
    assert parse_reg_code(value) == expected


@pytest.mark.parametrize("bad", ["54A0123", "540/123", "---", 12.5, "MST 123"])
def test_parse_reg_code_invalid(bad):
    assert code_of(parse_reg_code, bad) == "invalid_reg_code"


# ------------------------------------------------------------------ Excel errors
@pytest.mark.parametrize("err", ["#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!", " #n/a "])
def test_excel_errors(err):
    assert is_excel_error(err)
    for fn in (parse_number, parse_int, parse_text, parse_reg_code, parse_yes_no, parse_ocop):
        assert code_of(fn, err) == "excel_error"
    assert code_of(parse_date, err, 2020) == "excel_error"
    assert code_of(parse_target, err) == "excel_error"


@pytest.mark.parametrize("ok", ["N/A", "#1", "", None, 0, 1.5, "#"])
def test_not_excel_errors(ok):
    assert not is_excel_error(ok)


def test_fastexcel_error_cells(tmp_path):
    """Documented behaviour of fastexcel 0.21 on formula error cells (coop/ingest/values.py docstring):
    in a string column an error cell reads as null; openpyxl gives the error text."""
    import fastexcel
    import openpyxl
    import xlsxwriter

    path = tmp_path / "err.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("s")
    ws.write_row(0, 0, ["a", "b"])
    ws.write_formula(1, 0, "=NA()", None, "#N/A")
    ws.write(1, 1, "x")
    wb.close()
    rows = fastexcel.read_excel(path).load_sheet(0, header_row=None, dtypes="string").to_polars().rows()
    assert rows == [("a", "b"), (None, "x")]
    cell = openpyxl.load_workbook(path, data_only=True).active["A2"].value
    assert is_excel_error(cell)
    # a fixed-dtype load lists the error cell with calamine's variant in the detail
    sheet = fastexcel.read_excel(path).load_sheet(0, header_row=None, dtypes="float", schema_sample_rows=1)
    _, errors = sheet.to_arrow_with_errors()
    details = {e.position: e.detail for e in errors.errors}
    assert "Error(NA)" in details[(1, 0)]


# ------------------------------------------------------------------ plan targets, OCOP
@pytest.mark.parametrize(
    "value,expected",
    [
        (65, (65.0, 65.0)),
        ("65", (65.0, 65.0)),
        ("500", (500.0, 500.0)),
        ("6 - 8", (6.0, 8.0)),
        ("6-8%", (6.0, 8.0)),
        ("6–8 %", (6.0, 8.0)),
        ("3 - 5 %", (3.0, 5.0)),
        ("từ 65", (65.0, None)),
        ("Từ 65", (65.0, None)),
        ("tu 65", (65.0, None)),
        (">= 65", (65.0, None)),
        ("1,5 - 2,5", (1.5, 2.5)),
        ("1.000", (1000.0, 1000.0)),
    ],
)
def test_parse_target(value, expected):
    assert parse_target(value) == expected


@pytest.mark.parametrize("bad", ["nhiều", "", None, "8 - 6", "6 - ", "khoảng 6"])
def test_parse_target_invalid(bad):
    assert code_of(parse_target, bad) == "invalid_target"


@pytest.mark.parametrize("value,stars", [(3, 3), (4.0, 4), ("5", 5), ("3 sao", 3), ("4*", 4), ("4 *", 4),
                                         ("5 SAO", 5), ("OCOP 4 sao", 4), ("3 sao OCOP", 3), (None, None), ("", None), ("-", None)])
def test_parse_ocop(value, stars):
    assert parse_ocop(value) == stars


@pytest.mark.parametrize("bad", [2, 6, "6 sao", "ba sao", 3.5])
def test_parse_ocop_invalid(bad):
    assert code_of(parse_ocop, bad) == "unknown_category"


def test_misc_helpers():
    assert is_blank(None) and is_blank("  ") and is_blank(float("nan")) and not is_blank(0)
    assert format_raw(12.0) == "12" and format_raw(dt.date(2020, 2, 3)) == "03/02/2020"
    err = pickle.loads(pickle.dumps(CellError("invalid_date", "Ngày không tồn tại")))
    assert (err.code, err.message) == ("invalid_date", "Ngày không tồn tại")
