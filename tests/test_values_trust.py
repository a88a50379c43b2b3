"""Issue 9, reading part B: values are never silently changed.

Each case is a small file generated here (or a direct call) holding planted cells; the
expected outcome is written by hand from ../shared/spec/forms.md ("Values") and the issue:
the row is quarantined with its reason code, `coop validate` names file, sheet, row and
column in Vietnamese, and loaded + quarantined rows add up to the rows planted.

1. formulas without a calculated value (openpyxl, xlsxwriter, hand-written XML) ->
   `formula_not_calculated`, never NULL, never xlsxwriter's placeholder 0, no row vanishing;
2. NaN, ±inf, 1e308, integers beyond int64 -> `invalid_number`, never NULL; the data test
   `marts_finite_numbers` fails the build on a non-finite mart value;
3. a bare year in a date cell -> `invalid_date` asking for dd/mm/yyyy (not 07/07/1905);
4. the number table of forms.md read exactly so, English-convention numbers quarantined as
   ambiguous, never another number;
5. a CSV line with an unclosed quote does not swallow the lines after it;
6. every reader failure -> a Vietnamese sentence, then "(chi tiết: …)".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from coop.ingest.read import (CELL_PROBLEM, READER_SENTENCES, ReadError, read_sheets, reader_error_kind,
                              reader_error_message)
from coop.ingest.values import (MAX_ABS_NUMBER, CellError, UncalculatedFormula, UnclosedQuote, parse_date,
                                parse_int, parse_number, parse_ocop, parse_reg_code, parse_target, parse_text,
                                parse_yes_no)
from reader_fixtures import HTX_HEAD, G, htx_row, ingest, issues, rejected, write_xls, write_xlsx

ROOT = Path(__file__).resolve().parent.parent


def code_and_message(fn, *args) -> tuple[str, str]:
    with pytest.raises(CellError) as ei:
        fn(*args)
    return ei.value.code, ei.value.message


def accepted(result, form: str = "HTX") -> list[dict]:
    df = result.forms.get(form)
    return [] if df is None else df.sort("row_number").to_dicts()


def counts(result) -> tuple[int, int]:
    """(rows loaded, rows quarantined) over the file's sheets."""
    return sum(s.rows_accepted for s in result.sheets), sum(s.rows_rejected for s in result.sheets)


def validate_text(path: Path) -> str:
    """What `coop validate FILE --unit 157 --year 2020` prints for the file."""
    from coop.ingest.preflight import _text_report, validate_files

    out = io.StringIO()
    _text_report(validate_files([path], "157", 2020), out)
    return out.getvalue()


def assert_named(text: str, path: Path, sheet: str, row: int, column: str, code: str) -> None:
    """`coop validate` output names the file, then sheet, row and column of the cell, in
    Vietnamese, with the reason ending in the code."""
    assert f"Tệp {path}" in text
    line = next((ln for ln in text.splitlines() if f"Trang '{sheet}', dòng {row}, cột " in ln
                 and f"({column})" in ln), None)
    assert line is not None, text
    assert line.rstrip().endswith(f"[{code}]")


# --------------------------------------------------------------------------- hand-written xlsx
def _col(n: int) -> str:
    from coop.ingest.read import _col_letters

    return _col_letters(n)


def cell_xml(row: int, col: int, v) -> str:
    """One `<c>`: str -> inline string, number -> value, ("xml", '<c …>…</c>') as written."""
    ref = f"{_col(col)}{row}"
    if isinstance(v, tuple) and v[0] == "xml":
        return v[1].replace("{ref}", ref)
    if isinstance(v, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
    return f'<c r="{ref}"><v>{v}</v></c>'


def raw_xlsx(path: Path, rows: list[list], *, full_calc: bool = False, sheet: str = "HTX",
             row_xml: dict[int, str] | None = None) -> Path:
    """An .xlsx written as XML by hand: rows of cells from A1 (None = no cell); `row_xml`
    replaces a row's whole `<row>` (1-based) by the XML given."""
    body = []
    for i, row in enumerate(rows, start=1):
        if row_xml and i in row_xml:
            body.append(row_xml[i])
            continue
        cells = "".join(cell_xml(i, j, v) for j, v in enumerate(row) if v is not None)
        body.append(f'<row r="{i}">{cells}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    calc = '<calcPr calcId="124519" fullCalcOnLoad="1"/>' if full_calc else '<calcPr calcId="191029"/>'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
                   'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/'
                   'xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                   '</Types>')
        z.writestr("_rels/.rels", f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                                  f'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                                  f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?><workbook {ns} {rel_ns}><sheets>'
                                      f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets>{calc}'
                                      f'</workbook>')
        z.writestr("xl/_rels/workbook.xml.rels",
                   f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
                   f'org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
                   f'Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0" encoding="UTF-8"?><worksheet {ns}>'
                                               f'<sheetData>{"".join(body)}</sheetData></worksheet>')
    return path


#: a short HTX header: reg_code, name, established_on, sector, status, members, workers, revenue, profit
HEAD = ["Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên", "Số lao động",
        "Doanh thu", "Lợi nhuận"]
COLUMN = {name: i for i, name in enumerate(["reg_code", "name", "established_on", "sector", "status", "members",
                                            "workers", "revenue", "profit"])}


def row(code: str, name: str, **over) -> list:
    base = {"reg_code": code, "name": name, "established_on": "01/03/2015", "sector": "Nông nghiệp",
            "status": "Đang hoạt động", "members": 20, "workers": 10, "revenue": 1500, "profit": 120}
    base.update(over)
    return [base[c] for c in COLUMN]


def formula(text: str, value: str | None = None, t: str | None = None) -> tuple[str, str]:
    """A formula cell as XML: `value` None = no `<v>` at all."""
    tt = f' t="{t}"' if t else ""
    v = "" if value is None else f"<v>{escape(value)}</v>"
    return ("xml", f'<c r="{{ref}}"{tt}><f>{escape(text)}</f>{v}</c>')


# =========================================================================== 1. formulas
def test_openpyxl_formulas_without_values_are_quarantined_and_no_row_vanishes(tmp_path):
    """openpyxl writes `<f>…</f><v/>`: the reader sees empty cells. A revenue formula must not
    load as "not reported"; a row whose name is a formula must not be skipped as blank; a row
    made only of formulas (absent from the reader's grid) is still there."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "HTX"
    ws.append(HTX_HEAD)
    ws.append(htx_row(1, "0101", "HTX Một"))                                  # row 2: loads
    ws.append(htx_row(2, "0102", "HTX Hai", revenue="=K2*2"))                 # row 3: revenue formula
    ws.append(htx_row(3, "0103", '="HTX "&"Ba"'))                             # row 4: name formula
    ws.append(htx_row(4, "0104", "HTX Bốn"))                                  # row 5: loads
    ws.append([None, None, '="HTX "&"Năm"'])                                  # row 6: only a name formula
    path = tmp_path / "2020" / "157" / "htx.xlsx"
    path.parent.mkdir(parents=True)
    wb.save(path)

    r = ingest(path)
    assert [(a["reg_code"], a["revenue"]) for a in accepted(r)] == [("0101", 1500.0), ("0104", 1500.0)]
    bad = rejected(r)
    assert ("HTX", 3, "revenue", "formula_not_calculated") in bad
    assert ("HTX", 4, "name", "formula_not_calculated") in bad
    assert ("HTX", 6, "name", "formula_not_calculated") in bad
    assert {(s, n) for s, n, _, _ in bad} == {("HTX", 3), ("HTX", 4), ("HTX", 6)}
    assert counts(r) == (2, 3)  # 5 data rows planted = 2 loaded + 3 quarantined
    rec = next(x for x in r.rejected_rows.to_dicts() if x["row_number"] == 3)
    assert rec["raw_value"] == "=K2*2" and rec["source_file"] == path.name
    assert rec["reason"].startswith("Ô chứa công thức =K2*2 nhưng tệp không lưu kết quả đã tính")
    assert "Excel" in rec["reason"] and rec["reason"].endswith("[formula_not_calculated]")
    text = validate_text(path)
    assert_named(text, path, "HTX", 3, "revenue", "formula_not_calculated")
    assert_named(text, path, "HTX", 6, "name", "formula_not_calculated")


def test_xlsxwriter_placeholder_zero_is_not_a_value(tmp_path):
    """xlsxwriter stores 0 for a formula written without its result and asks Excel to
    recalculate (`fullCalcOnLoad`): members 0 is not what the clerk's sheet shows. A result
    the program gave (value=25) is kept; an error result stays an Excel error."""
    import xlsxwriter

    path = tmp_path / "htx.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    ws = wb.add_worksheet("HTX")
    ws.write_row(0, 0, HEAD)
    rows = [row("0101", "HTX Một"), row("0102", "HTX Hai"), row("0103", "HTX Ba"), row("0104", "HTX Bốn")]
    for i, values in enumerate(rows, start=1):
        ws.write_row(i, 0, values)
    ws.write_formula(2, COLUMN["members"], "=10+10")                       # row 3: cached 0
    ws.write_formula(3, COLUMN["members"], "=20+5", None, 25)              # row 4: result given
    ws.write_formula(4, COLUMN["name"], '="HTX "&"Bốn"')                   # row 5: text formula, cached 0
    wb.close()

    r = ingest(path)
    assert [(a["reg_code"], a["members"]) for a in accepted(r)] == [("0101", 20), ("0103", 25)]
    assert rejected(r) == [("HTX", 3, "members", "formula_not_calculated"),
                           ("HTX", 5, "name", "formula_not_calculated")]
    assert counts(r) == (2, 2)


def test_hand_written_formula_cells(tmp_path):
    """Without `fullCalcOnLoad` (a workbook Excel saved): a formula with its result loads; a
    calculated empty text (`t="str"`, `<v></v>`, what Excel writes for =\"\") is "not
    reported"; a formula with no `<v>` is quarantined, as is one with an empty `<v/>`; an
    error result stays `excel_error`."""
    rows = [HEAD,
            row("0101", "HTX Một", revenue=formula("1000+500", "1500")),           # 2: result kept
            row("0102", "HTX Hai", profit=formula('IF(1,"","")', "", t="str")),    # 3: calculated ""
            row("0103", "HTX Ba", revenue=formula("H2*2")),                        # 4: no <v>
            row("0104", "HTX Bốn", workers=("xml", '<c r="{ref}"><f>5+5</f><v/></c>')),  # 5: <v/>
            row("0105", "HTX Năm", profit=formula("1/0", "#DIV/0!", t="e"))]       # 6: error result
    path = raw_xlsx(tmp_path / "htx.xlsx", rows)
    r = ingest(path)
    got = {a["reg_code"]: (a["revenue"], a["profit"]) for a in accepted(r)}
    assert got == {"0101": (1500.0, 120.0), "0102": (1500.0, None)}
    assert rejected(r) == [("HTX", 4, "revenue", "formula_not_calculated"),
                           ("HTX", 5, "workers", "formula_not_calculated"),
                           ("HTX", 6, "profit", "excel_error")]
    assert counts(r) == (2, 3)


def test_formula_cells_without_r_and_shared_formulas(tmp_path):
    """Cells without an `r` attribute are counted along their row; a shared formula's
    children (`<f t="shared" si="0"/>`) are found and shown with the master's formula."""
    no_ref = ('<row r="3"><c t="inlineStr"><is><t>0102</t></is></c><c t="inlineStr"><is><t>HTX Hai</t></is></c>'
              '<c t="inlineStr"><is><t>01/03/2015</t></is></c><c t="inlineStr"><is><t>Nông nghiệp</t></is></c>'
              '<c t="inlineStr"><is><t>Đang hoạt động</t></is></c><c><v>20</v></c><c><f>3+4</f></c></row>')
    rows = [HEAD,
            row("0101", "HTX Một", revenue=("xml", '<c r="{ref}"><f t="shared" ref="H2:H4" si="0">G2*100</f></c>')),
            [],
            row("0103", "HTX Ba", revenue=("xml", '<c r="{ref}"><f t="shared" si="0"/></c>')),
            row("0104", "HTX Bốn")]
    path = raw_xlsx(tmp_path / "htx.xlsx", rows, row_xml={3: no_ref})
    r = ingest(path)
    assert [a["reg_code"] for a in accepted(r)] == ["0104"]
    assert rejected(r) == [("HTX", 2, "revenue", "formula_not_calculated"),
                           ("HTX", 3, "workers", "formula_not_calculated"),
                           ("HTX", 4, "revenue", "formula_not_calculated")]
    raws = {x["row_number"]: x["raw_value"] for x in r.rejected_rows.to_dicts()}
    assert raws == {2: "=G2*100", 3: "=3+4", 4: "=G2*100 (chép từ ô H2)"}


def test_formula_outside_the_readers_grid_grows_it(tmp_path):
    """A column holding only formulas without results, left of everything else, is not in
    calamine's grid: the grid grows to the left and every other cell keeps its column."""
    rows = [[None] + HEAD] + [[formula("ROW()-1")] + row(f"010{i}", f"HTX {i}") for i in (1, 2)]
    path = raw_xlsx(tmp_path / "htx.xlsx", rows)
    (sheet,) = read_sheets(path)
    assert sheet.first_column == 0 and sheet.kinds[0][1:] == [CELL_PROBLEM, CELL_PROBLEM]
    assert sheet.columns[1][1] == "0101" and isinstance(sheet.columns[0][2], UncalculatedFormula)
    r = ingest(path)
    assert [a["reg_code"] for a in accepted(r)] == ["0101", "0102"]  # the helper column is no form column
    assert rejected(r) == []


def test_uncalculated_formula_cost_is_small_on_the_sample():
    """The formula check reads only worksheets holding a `<f`; over the sample's workbooks it
    costs a fraction of reading them (measured, see docs/architecture.md)."""
    import time

    from coop.ingest.formulas import uncalculated_formulas
    from coop.ingest.read import read_workbook

    files = sorted((ROOT / "data" / "raw").rglob("*.xlsx"))[:60]
    assert files
    t = time.process_time()
    for f in files:
        assert uncalculated_formulas(f) == {}  # the sample's formulas all hold their results
    scan = time.process_time() - t
    t = time.process_time()
    for f in files:
        try:
            read_workbook(f)
        except ReadError:
            pass  # the sample's deliberately broken files
    read = time.process_time() - t
    assert scan < 0.5 * read, (scan, read)


# =========================================================================== 2. numbers
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 9.3e18,
                                   MAX_ABS_NUMBER, -MAX_ABS_NUMBER, "1.000.000.000.000.000", "99999999999999999999"])
def test_non_finite_and_huge_numbers_are_invalid_never_null(value):
    for fn in (parse_number, parse_int):
        code, message = code_and_message(fn, value)
        assert code == "invalid_number" and message


def test_numbers_just_below_the_bound_and_int64():
    assert parse_number(999_999_999_999_999.0) == 999_999_999_999_999.0
    assert parse_int("999.999.999.999.999") == 999_999_999_999_999
    assert parse_number(-5e14) == -5e14


@pytest.mark.parametrize("fn", [parse_text, parse_yes_no, parse_ocop, parse_reg_code])
def test_nan_is_no_empty_cell_anywhere(fn):
    assert code_and_message(fn, float("nan"))[0] == "invalid_number"
    assert code_and_message(parse_date, float("nan"), 2020)[0] == "invalid_number"


def test_reg_code_typed_as_a_long_number_lost_digits():
    code, message = code_and_message(parse_reg_code, 1.2345678901234567e18)
    assert code == "invalid_reg_code" and "15 chữ số" in message
    assert parse_reg_code(5400123456.0) == "5400123456"
    assert code_and_message(parse_target, 1e300)[0] == "invalid_target"
    assert code_and_message(parse_target, "từ 1.000.000.000.000.000")[0] == "invalid_target"


def number(stored: str) -> tuple[str, str]:
    """A numeric cell holding `stored` exactly as a program wrote it in `<v>`."""
    return ("xml", f'<c r="{{ref}}"><v>{stored}</v></c>')


def test_non_finite_and_huge_cells_in_a_workbook_are_quarantined(tmp_path):
    """Values calamine hands over as they are stored: NaN, INF, 1e308 revenue (an average of
    inf published), workers 9.3e18 (NULL after the int64 cast) -> invalid_number."""
    rows = [HEAD,
            row("0101", "HTX Một"),                                  # 2: loads
            row("0102", "HTX Hai", revenue=number("NaN")),           # 3
            row("0103", "HTX Ba", revenue=number("INF")),            # 4
            row("0104", "HTX Bốn", revenue=number("1e308")),         # 5
            row("0105", "HTX Năm", workers=number("9.3e18")),        # 6
            row("0106", "HTX Sáu", profit=number("-1e309"))]         # 7
    path = raw_xlsx(tmp_path / "2020" / "157" / "htx.xlsx", rows)
    r = ingest(path)
    assert [a["reg_code"] for a in accepted(r)] == ["0101"]
    assert rejected(r) == [("HTX", 3, "revenue", "invalid_number"), ("HTX", 4, "revenue", "invalid_number"),
                           ("HTX", 5, "revenue", "invalid_number"), ("HTX", 6, "workers", "invalid_number"),
                           ("HTX", 7, "profit", "invalid_number")]
    assert counts(r) == (1, 5)
    text = validate_text(path)
    assert_named(text, path, "HTX", 5, "revenue", "invalid_number")
    assert_named(text, path, "HTX", 6, "workers", "invalid_number")
    assert "Số quá lớn" in text


def _marts_test_path() -> Path:
    return ROOT / "sql" / "tests" / "marts_finite_numbers.sql"


def test_marts_finite_numbers_data_test_fails_on_an_infinite_average():
    """With two active HTX of one district and year at revenue 1e308 the average is inf
    (1e308 + 1e308 overflows) and the data test fails the build, naming the mart and the
    column. (On the unchanged fixture every error-level test passes: test_datatests.py.)"""
    import warehouse_fixture as fx
    from coop.warehouse.datatests import run_data_test
    from coop.warehouse.models import run_models

    con = fx.build()
    year, unit = con.execute("SELECT year, unit_code FROM raw.htx WHERE status = 'active' GROUP BY ALL "
                             "HAVING count(*) >= 2 ORDER BY ALL LIMIT 1").fetchone()
    con.execute("UPDATE raw.htx SET revenue = 1e308 WHERE status = 'active' AND year = ? AND unit_code = ?",
                [year, unit])
    run_models(con)
    bad = run_data_test(con, _marts_test_path())
    assert bad.severity == "error" and bad.blocking and bad.failing_rows > 0
    cells = {(s["mart"], s["column_name"], s["value"]) for s in bad.sample}
    assert any(col == "avg_revenue_mvnd" and value in ("inf", "Infinity") for _, col, value in cells), cells


def test_marts_finite_numbers_covers_every_mart():
    sql = _marts_test_path().read_text(encoding="utf-8")
    marts = sorted(p.stem for p in (ROOT / "sql" / "marts").glob("*.sql"))
    assert marts and all(f"FROM marts.{m})" in sql for m in marts)


# =========================================================================== 3. bare years
@pytest.mark.parametrize("value", [2015, 2015.0, "2015", " 2015 ", 1900, 2100,
                                   dt.datetime(1905, 7, 7), dt.date(1905, 7, 7)])
def test_a_year_alone_in_a_date_cell_asks_for_the_full_date(value):
    code, message = code_and_message(parse_date, value, 2020)
    assert code == "invalid_date"
    assert "dd/mm/yyyy" in message and "năm" in message.lower()
    assert "1905" not in message or "Excel hiểu là ngày" in message


def test_dates_near_the_year_range_are_still_dates():
    assert parse_date(43831, 2020) == dt.date(2020, 1, 1)
    assert parse_date(dt.datetime(1905, 7, 7, 8, 30), 2020) == dt.date(1905, 7, 7)  # a time: a real timestamp
    assert parse_date("07/07/1905", 2020) == dt.date(1905, 7, 7)  # written out by the clerk
    assert parse_date(dt.date(1960, 1, 1), 2020) == dt.date(1960, 1, 1)


def test_bare_year_cells_in_a_workbook_and_a_csv(tmp_path):
    """A number 2015, a text '2015', a date-formatted cell holding 2015 (Excel shows
    07/07/1905): each row is quarantined, none loads as 1905."""
    rows = [htx_row(1, "0101", "HTX Một"),
            htx_row(2, "0102", "HTX Hai", established_on=2015),
            htx_row(3, "0103", "HTX Ba", established_on="2015"),
            htx_row(4, "0104", "HTX Bốn", established_on=dt.datetime(1905, 7, 7))]
    path = write_xlsx(tmp_path / "2020" / "157" / "htx.xlsx", [G("HTX", [HTX_HEAD] + rows)])
    r = ingest(path)
    assert [a["established_on"] for a in accepted(r)] == [dt.date(2015, 3, 1)]
    assert rejected(r) == [("HTX", n, "established_on", "invalid_date") for n in (3, 4, 5)]
    reasons = {x["row_number"]: x["reason"] for x in r.rejected_rows.to_dicts()}
    assert all("dd/mm/yyyy" in reasons[n] and "2015" in reasons[n] for n in (3, 4, 5))
    assert "07/07/1905" in reasons[5]
    assert counts(r) == (1, 3)
    assert_named(validate_text(path), path, "HTX", 4, "established_on", "invalid_date")

    csv_path = tmp_path / "2020" / "157" / "htx.csv"
    csv_path.write_text("Mã số HTX;Tên HTX;Ngày thành lập;Lĩnh vực;Tình trạng;Số thành viên\n"
                        "0101;HTX Một;01/03/2015;Nông nghiệp;Đang hoạt động;20\n"
                        "0102;HTX Hai;2015;Nông nghiệp;Đang hoạt động;20\n", encoding="utf-8")
    r = ingest(csv_path)
    assert [a["reg_code"] for a in accepted(r)] == ["0101"]
    assert rejected(r) == [("htx", 3, "established_on", "invalid_date")]


# =========================================================================== 4. separators
#: forms.md "Values", word for word: `3.240` is 3240, `1,4` is 1.4, `1.234,5` is 1234.5,
#: `12 700` is 12700, `1.4` is 1.4; `-`, `–` and empty mean "not reported".
FORMS_MD_TABLE = [("3.240", 3240.0), ("1,4", 1.4), ("1.234,5", 1234.5), ("12 700", 12700.0), ("1.4", 1.4),
                  ("-", None), ("–", None), ("", None)]
#: and what follows from the same two rules ('.' groups thousands, ',' is the decimal mark)
FORMS_MD_CONSEQUENCES = [("1.234.567", 1234567.0), ("1.234.567,89", 1234567.89), ("12 700,5", 12700.5),
                         ("1,234", 1.234), ("0,5", 0.5), ("1.5", 1.5), ("1.50", 1.5), ("1.2345", 1.2345),
                         ("-1.234,5", -1234.5), ("(1.234)", -1234.0)]
#: the English convention, which the contract does not read: quarantined, never another number
AMBIGUOUS = [("1,234.5", "1.234,5"), ("1,234,567", "1.234.567"), ("12,345.67", "12.345,67"),
             ("1 234.5", "1.234,5"), ("-1,234.5", "1.234,5")]


@pytest.mark.parametrize("text,value", FORMS_MD_TABLE + FORMS_MD_CONSEQUENCES)
def test_forms_md_number_table(text, value):
    got = parse_number(text)
    assert got == value if value is None else got == pytest.approx(value, rel=0, abs=1e-12)


@pytest.mark.parametrize("text,vietnamese", AMBIGUOUS)
def test_english_separators_are_quarantined_as_ambiguous(text, vietnamese):
    code, message = code_and_message(parse_number, text)
    assert code == "invalid_number"
    assert "không rõ ràng" in message and f"'{vietnamese}'" in message and f"'{text}'" in message


def test_a_count_grouped_the_english_way_is_never_a_smaller_count():
    """'1,000' members is 1,000 by the contract (1): a count has no decimals, so it is the
    English grouping of 1000 — quarantined, never 1; '1,234' is not an integer (1,234)."""
    code, message = code_and_message(parse_int, "1,000")
    assert code == "invalid_number" and "'1.000'" in message and "'1000'" in message
    code, message = code_and_message(parse_int, "1,234")
    assert code == "not_integer" and "'1.234'" in message
    assert parse_int("1.000") == 1000 and parse_int("12 700") == 12700


def test_separators_in_files(tmp_path):
    """Text cells follow the table; a numeric cell is used as it is (3.24 stays 3.24)."""
    rows = [HEAD,
            row("0101", "HTX Một", revenue="3.240", profit="1,4"),      # 2: 3240 / 1.4
            row("0102", "HTX Hai", revenue=3.24, profit="1.234,5"),     # 3: numeric 3.24 / 1234.5
            row("0103", "HTX Ba", revenue="1,234.5"),                   # 4: ambiguous
            row("0104", "HTX Bốn", members="1,000")]                    # 5: ambiguous count
    path = raw_xlsx(tmp_path / "htx.xlsx", rows)
    r = ingest(path)
    assert [(a["reg_code"], a["revenue"], a["profit"]) for a in accepted(r)] == [
        ("0101", 3240.0, 1.4), ("0102", 3.24, 1234.5)]
    assert rejected(r) == [("HTX", 4, "revenue", "invalid_number"), ("HTX", 5, "members", "invalid_number")]
    csv_path = tmp_path / "htx.csv"
    csv_path.write_text("Mã số HTX;Tên HTX;Ngày thành lập;Lĩnh vực;Tình trạng;Số thành viên;Doanh thu\n"
                        "0101;HTX Một;01/03/2015;Nông nghiệp;Đang hoạt động;12 700;3.240\n"
                        "0102;HTX Hai;01/03/2015;Nông nghiệp;Đang hoạt động;20;1,234.5\n", encoding="utf-8")
    r = ingest(csv_path)
    assert [(a["members"], a["revenue"]) for a in accepted(r)] == [(12700, 3240.0)]
    assert rejected(r) == [("htx", 3, "revenue", "invalid_number")]


# =========================================================================== 5. CSV quotes
CSV_HEAD = "Mã số HTX,Tên HTX,Ngày thành lập,Lĩnh vực,Tình trạng,Số thành viên,Ghi chú\n"


def csv_line(code: str, name: str, note: str = "") -> str:
    return f"{code},{name},01/03/2015,Nông nghiệp,Đang hoạt động,20,{note}\n"


def test_an_unclosed_quote_does_not_swallow_the_lines_after_it(tmp_path):
    text = (CSV_HEAD + csv_line("0101", "HTX Một") + csv_line("0102", '"HTX Hai')   # line 3: quote never closed
            + csv_line("0103", "HTX Ba") + csv_line("0104", '"HTX ""Bốn"", Tân Lập"')  # a real quoted cell
            + csv_line("0105", "HTX Năm"))
    path = tmp_path / "2020" / "157" / "htx.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    r = ingest(path)
    assert [(a["row_number"], a["name"]) for a in accepted(r)] == [
        (2, "HTX Một"), (4, "HTX Ba"), (5, 'HTX "Bốn", Tân Lập'), (6, "HTX Năm")]
    bad = rejected(r)
    assert ("htx", 3, "name", "csv_unbalanced_quote") in bad and {n for _, n, _, _ in bad} == {3}
    assert counts(r) == (4, 1)  # 5 rows planted
    rec = next(x for x in r.rejected_rows.to_dicts() if x["column_name"] == "name")
    assert rec["raw_value"] == '"HTX Hai' and "dấu ngoặc kép" in rec["reason"]
    assert_named(validate_text(path), path, "htx", 3, "name", "csv_unbalanced_quote")


def test_a_cell_with_line_breaks_is_still_one_cell(tmp_path):
    text = (CSV_HEAD + csv_line("0101", '"HTX Hoa\nSen"') + csv_line("0102", '"HTX, Nông nghiệp\nTân Lập"')
            + csv_line("0103", "HTX Ba"))
    path = tmp_path / "htx.csv"
    path.write_text(text, encoding="utf-8")
    r = ingest(path)
    assert [(a["row_number"], a["name"]) for a in accepted(r)] == [
        (2, "HTX Hoa Sen"), (4, "HTX, Nông nghiệp Tân Lập"), (6, "HTX Ba")]
    assert rejected(r) == []


def test_an_unclosed_quote_on_the_last_line_or_in_an_unused_column(tmp_path):
    """The last line open to the end of the file: quarantined. A quote opened in the notes
    column (no form column after it): the row's form cells are certain and it loads."""
    text = (CSV_HEAD + csv_line("0101", "HTX Một", '"ghi chú') + csv_line("0102", "HTX Hai")
            + '0103,"HTX Ba,01/03/2015,Nông nghiệp,Đang hoạt động,20,')
    path = tmp_path / "htx.csv"
    path.write_text(text, encoding="utf-8")
    r = ingest(path)
    assert [a["row_number"] for a in accepted(r)] == [2, 3]
    assert {(n, c) for _, n, c, code in rejected(r) if code == "csv_unbalanced_quote"} >= {(4, "name")}
    assert {n for _, n, _, _ in rejected(r)} == {4}


def test_an_unclosed_quote_past_the_field_size_limit(tmp_path):
    """A quote never closed over more than csv's field limit (128 KiB) used to reject the
    file: the line is read on its own and the 2,000 lines after it load."""
    lines = [csv_line(f"{1000 + i}", f"HTX số {i} {'x' * 60}") for i in range(2000)]
    text = CSV_HEAD + csv_line("0999", '"HTX mở ngoặc') + "".join(lines)
    assert len(text) > csv.field_size_limit()
    path = tmp_path / "htx.csv"
    path.write_text(text, encoding="utf-8")
    r = ingest(path)
    assert counts(r) == (2000, 1)
    assert rejected(r)[0][:2] == ("htx", 2)


def test_other_csv_errors_reject_the_file_naming_the_line(tmp_path):
    path = tmp_path / "htx.csv"
    path.write_text(CSV_HEAD + csv_line("0101", "HTX Một") + csv_line("0102", "y" * 140_000), encoding="utf-8")
    r = ingest(path)
    assert issues(r) == [("", "unreadable_file", "rejected")]
    reason = r.file_issues[0].reason
    assert reason.startswith("Tệp CSV sai cấu trúc ở dòng 3 (chi tiết: csv.Error: field larger than field limit")
    assert reason.endswith("[unreadable_file]")


def test_unclosed_quote_cells_are_problem_cells(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('a,b,c\n1,"x,2\n3,y,z\n', encoding="utf-8")
    (sheet,) = read_sheets(path)
    assert sheet.row_numbers == [1, 2, 3]
    assert [sheet.columns[j][1] for j in range(3)] == ["1", '"x', "2"]
    assert isinstance(sheet.columns[1][1], UnclosedQuote) and isinstance(sheet.columns[2][1], UnclosedQuote)
    assert [sheet.columns[j][2] for j in range(3)] == ["3", "y", "z"]


# =========================================================================== 6. reader messages
def _ole_bytes(encrypted: bool) -> bytes:
    name = "EncryptedPackage" if encrypted else "Workbook"
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000 + name.encode("utf-16-le") + b"\x00" * 2000


def _files(tmp_path: Path) -> dict[str, Path]:
    """One real file per reader failure (built here), keyed by READER_SENTENCES."""
    good = write_xlsx(tmp_path / "src" / "good.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "0101", "HTX Một")])])
    xls = write_xls(tmp_path / "src" / "good.xls", [G("HTX", [HTX_HEAD, htx_row(1, "0101", "HTX Một")])])
    out: dict[str, Path] = {}

    def put(kind: str, name: str, data: bytes) -> None:
        p = tmp_path / kind / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[kind] = p

    put("password", "htx.xlsx", _ole_bytes(True))
    put("xls_as_xlsx", "htx.xlsx", xls.read_bytes())
    put("xlsx_as_xls", "htx.xls", good.read_bytes())
    put("xlsx_as_ods", "htx.ods", good.read_bytes())
    put("html", "htx.xls", "<html><body><table><tr><td>Tên HTX</td></tr></table></body></html>".encode())
    put("pdf", "htx.xlsx", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    put("text", "htx.xlsx", "Tên HTX,Xã\nHTX Một,Tân Lập\n".encode())
    put("truncated", "htx.xlsx", good.read_bytes()[: len(good.read_bytes()) // 2])
    put("not_excel", "htx.xls", bytes(range(256)) * 8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "không phải bảng tính")
    put("not_workbook", "htx.xlsx", buf.getvalue())
    src = zipfile.ZipFile(good)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            z.writestr(info, data)
    put("xml", "htx.xlsx", buf.getvalue())
    return out


def test_every_reader_failure_of_a_real_file_gets_its_sentence(tmp_path):
    """Each file is rejected whole (`unreadable_file`) with the Vietnamese sentence first and
    calamine's words after '(chi tiết: '."""
    for kind, path in _files(tmp_path).items():
        r = ingest(path)
        assert issues(r) == [("", "unreadable_file", "rejected")], kind
        reason = r.file_issues[0].reason
        assert reason.startswith(READER_SENTENCES[kind] + " (chi tiết: "), (kind, reason)
        assert "CalamineError" in reason and "Context" not in reason and reason.endswith(") [unreadable_file]")


class PanicException(BaseException):  # what pyo3 raises for a Rust panic
    pass


@pytest.mark.parametrize("error,suffix,kind", [
    (PermissionError(13, "Permission denied"), ".xlsx", "permission"),
    (FileNotFoundError(2, "No such file or directory"), ".csv", "missing"),
    (OSError(5, "Input/output error"), ".xlsx", "io"),
    ("CalamineError: calamine error: Xls error: Workbook is password protected", ".xls", "password"),
    ("CalamineError: calamine error: Xls error: Cfb error: Invalid OLE (signature \\x50\\x4b\\x03\\x04\\x14\\x00"
     "\\x00\\x00 invalid, not an office document?)", ".xls", "xlsx_as_xls"),
    ("CalamineError: calamine error: Xls error: Cfb error: Invalid OLE (60 bytes is too small, signature "
     "\\x3c\\x68\\x74\\x6d\\x6c\\x3e\\x3c\\x62 invalid, not an office document?)", ".xls", "html"),
    ("CalamineError: calamine error: Ods error: 'mimetype' file not found in archive", ".ods", "xlsx_as_ods"),
    ("CalamineError: calamine error: Xlsx error: Zip error: invalid Zip archive: Could not find EOCD", ".xlsx",
     "truncated"),
    ("CalamineError: calamine error: Xlsx error: File not found '_rels/.rels'", ".xlsx", "not_workbook"),
    ("CalamineError: calamine error: Xlsx error: Xml error: syntax error: tag not closed", ".xlsx", "xml"),
    ("BadZipFile: Bad CRC-32 for file 'xl/worksheets/sheet1.xml'", ".xlsx", "zip"),
    ("CalamineCellError: calamine cell error: #NAME?", ".xlsx", "cells"),
    ("CannotRetrieveCellDataError: cannot retrieve cell data at (3, 4)", ".xlsx", "cells"),
    ("CalamineError: calamine error: Ods error: Invalid value", ".ods", "not_ods"),
    ("CalamineError: calamine error: Xls error: Cfb error: Invalid OLE (signature \\x2f\\xc7 invalid)", ".xls",
     "not_excel"),
    (PanicException("TimeDelta::milliseconds out of bounds"), ".xlsx", "panic"),
    (csv.Error("field larger than field limit (131072)"), ".csv", "csv"),
    (ValueError("something new"), ".xlsx", "unknown"),
])
def test_reader_error_mapping(error, suffix, kind):
    detail = error if isinstance(error, str) else None
    msg = reader_error_message(error, suffix)
    assert reader_error_kind(detail or msg.split("(chi tiết: ", 1)[1], suffix) == kind
    assert msg.startswith(READER_SENTENCES[kind] + " (chi tiết: ")
    if detail is None:
        assert type(error).__name__ in msg or "csv.Error" in msg
    else:
        assert msg.endswith(f"(chi tiết: {detail})")


def test_reader_message_for_a_sheet_a_line_and_an_existing_message():
    msg = reader_error_message("CalamineError: cell out of range\nContext:\n 0: x", ".xlsx", sheet="HTX")
    assert msg == ("Không đọc được trang 'HTX' (các trang khác của tệp vẫn được đọc): trang tính bị hỏng hoặc có nội "
                   "dung bộ đọc không hiểu; mở bằng Excel, lưu lại rồi gửi lại (chi tiết: CalamineError: cell out of "
                   "range)")
    assert reader_error_message(csv.Error("x"), ".csv", line=7).startswith("Tệp CSV sai cấu trúc ở dòng 7 (chi tiết: ")
    once = reader_error_message("CalamineError: Could not find EOCD", ".xlsx")
    assert reader_error_message(once, ".xlsx") == once  # a message is never wrapped twice
    vi = "Tệp CSV không lưu theo bảng mã UTF-8"
    assert reader_error_message(vi, ".csv") == vi  # the reader's own sentence is kept


def test_a_sheet_the_reader_fails_on_is_named(tmp_path, monkeypatch):
    """One broken sheet: its issue names it in Vietnamese, the other sheet loads."""
    import coop.ingest.read as R

    path = write_xlsx(tmp_path / "htx.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "0101", "HTX Một")]),
                                              G("Hỏng", [["x"]])])
    real = R._read_excel_sheet

    def broken(reader, idx, name, *rest):
        if name == "Hỏng":
            raise PanicException("calamine cell error at (0, 0)")
        return real(reader, idx, name, *rest)

    monkeypatch.setattr(R, "_read_excel_sheet", broken)
    monkeypatch.setenv("COOP_READ_ISOLATION", "0")
    r = ingest(path)
    assert [a["reg_code"] for a in accepted(r)] == ["0101"]
    (issue,) = [i for i in r.file_issues if i.sheet == "Hỏng"]
    assert issue.reason.startswith("Không đọc được trang 'Hỏng' (các trang khác của tệp vẫn được đọc): bộ đọc bảng "
                                   "tính gặp lỗi nội bộ")
    assert "(chi tiết: PanicException: calamine cell error at (0, 0))" in issue.reason


def test_reader_messages_are_documented():
    """docs/operations.md "Reader messages" lists every sentence."""
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = doc.split("### Reader messages", 1)[1].split("\n## ", 1)[0]
    assert set(READER_SENTENCES) >= {"password", "truncated", "csv", "sheet", "unknown"}
    for kind, sentence in READER_SENTENCES.items():
        assert f"`{kind}`" in section and sentence in section, kind


def test_problem_cells_survive_the_reading_worker(tmp_path):
    """Sheets come back from the isolated reader process pickled: the marks stay."""
    from coop.ingest.isolation import read_sheets_limited

    path = raw_xlsx(tmp_path / "htx.xlsx", [HEAD, row("0101", "HTX Một", revenue=formula("1+1"))])
    (sheet,) = read_sheets_limited(path)
    cell = sheet.columns[COLUMN["revenue"]][1]
    assert isinstance(cell, UncalculatedFormula) and cell == "=1+1"
    assert sheet.kinds[COLUMN["revenue"]][1] == CELL_PROBLEM


def test_an_unquoted_decimal_comma_in_a_csv_never_loads_a_shifted_number(tmp_path):
    # `1234,5` without quotes in a comma-separated file splits into 1234 | 5: the line has one
    # cell more than every other row, so it is quarantined, never loaded as revenue 1234
    head = "Mã số HTX,Tên HTX,Ngày thành lập,Lĩnh vực,Tình trạng,Số thành viên,Doanh thu\n"
    body = ("0101,HTX Một,01/03/2015,Nông nghiệp,Đang hoạt động,20,1234\n"
            "0102,HTX Hai,01/03/2015,Nông nghiệp,Đang hoạt động,20,1234,5\n"
            "0103,HTX Ba,01/03/2015,Nông nghiệp,Đang hoạt động,20,\"1234,5\"\n")
    path = tmp_path / "2020" / "157" / "htx.csv"
    path.parent.mkdir(parents=True)
    path.write_text(head + body, encoding="utf-8")
    r = ingest(path)
    assert [(a["row_number"], a["name"], a["revenue"]) for a in accepted(r)] == [
        (2, "HTX Một", 1234.0), (4, "HTX Ba", 1234.5)]
    bad = rejected(r)
    assert {n for _, n, _, _ in bad} == {3} and ("htx", 3, "revenue", "csv_extra_cells") in bad
    assert counts(r) == (2, 1)  # 3 rows planted
    assert_named(validate_text(path), path, "htx", 3, "revenue", "csv_extra_cells")
