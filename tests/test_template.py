"""Blank template: contract headers, drop-downs, validation; a filled copy loads; the unit of the
year (a commune from 2025, a district up to 2024) on the title, a unit not reporting that year refused.

Expected titles and reasons are typed from ../shared/spec/units.md and the reference files
(05266 Xã Lạc Sơn, 157 Huyện Lạc Sơn, 151 Kỳ Sơn until 01/01/2020, 148 Thành phố Hòa Bình)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest

from coop.outputs.template import TemplateError, build_template

PROJECT = Path(__file__).resolve().parent.parent
COOP = PROJECT / ".venv" / "bin" / "coop"

# First accepted header of each column, typed from ../shared/spec/forms.md
HEADERS = {
    "HTX": ["Mã số HTX", "Tên HTX", "Xã", "Loại hình", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên",
            "Số lao động", "Doanh thu (triệu đồng)", "Lợi nhuận (triệu đồng)",
            "Thu nhập bình quân (triệu đồng/người/tháng)", "Xếp loại", "OCOP", "Ứng dụng công nghệ cao"],
    "THT": ["Tên THT", "Xã", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên", "Số lao động",
            "Doanh thu (triệu đồng)", "Lợi nhuận (triệu đồng)", "Thu nhập bình quân (triệu đồng/người/tháng)"],
    "Hỗ trợ HTX": ["Mã số HTX", "Nội dung hỗ trợ", "Số tiền (triệu đồng)", "Số lượt", "Số quyết định",
                   "Ngày quyết định"],
}
HEADER_ROW = 4


@pytest.fixture(scope="module")
def template_path(tmp_path_factory):
    return build_template(2021, tmp_path_factory.mktemp("tpl"), "Lạc Sơn")


def _validations(ws):
    out = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            out[rng.split(":")[0].rstrip("0123456789")] = dv
    return out


def test_sheets_and_headers(template_path):
    book = openpyxl.load_workbook(template_path)
    assert book.sheetnames == ["Hướng dẫn", "HTX", "THT", "Hỗ trợ HTX"]
    for sheet, headers in HEADERS.items():
        assert [c.value for c in book[sheet][HEADER_ROW]] == headers
    text = "\n".join(str(c.value) for row in book["Hướng dẫn"].iter_rows() for c in row if c.value)
    assert "HƯỚNG DẪN ĐIỀN BIỂU MẪU BÁO CÁO KINH TẾ TẬP THỂ NĂM 2021" in text
    assert "không sau ngày 31/12/2021" in text
    assert book["HTX"]["A1"].value == "UBND HUYỆN LẠC SƠN"


def test_dropdowns_and_validation(template_path):
    book = openpyxl.load_workbook(template_path)
    htx = _validations(book["HTX"])
    # columns by hand: D kind, E established_on, F sector, G status, H members, I workers, J revenue,
    # K profit (no rule: may be negative), L income, M rating, N OCOP, O high tech
    assert htx["F"].type == "list" and "Nông nghiệp" in htx["F"].formula1 and "Quỹ tín dụng nhân dân" in htx["F"].formula1
    assert htx["G"].formula1 == '"Đang hoạt động,Tạm ngừng hoạt động,Giải thể"'
    assert htx["D"].formula1 == '"HTX,Liên hiệp HTX"'
    assert htx["M"].formula1 == '"Tốt,Khá,Trung bình,Yếu"'
    assert htx["N"].formula1 == '"3,4,5"'
    assert htx["O"].formula1 == '"Có,Không"'
    assert (htx["H"].type, htx["H"].operator, htx["H"].formula1) == ("whole", "greaterThanOrEqual", "0")
    assert (htx["J"].type, htx["J"].operator, htx["J"].formula1) == ("decimal", "greaterThanOrEqual", "0")
    assert "K" not in htx
    assert htx["E"].type == "date" and htx["E"].operator in (None, "between")
    # 31/12/2021 as an Excel serial
    assert int(htx["E"].formula2) == (dt.date(2021, 12, 31) - dt.date(1899, 12, 30)).days
    sup = _validations(book["Hỗ trợ HTX"])
    assert (sup["C"].type, sup["C"].operator, sup["C"].formula1) == ("decimal", "greaterThan", "0")
    assert "Thành lập mới" in sup["B"].formula1 and "Xúc tiến thương mại" in sup["B"].formula1
    assert sup["F"].type == "date"
    with zipfile.ZipFile(template_path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/sheet"):
                assert "<f>" not in z.read(name).decode()


def _fill(path, year):
    """Fill the template as a clerk would (typed cells, a text number, dropdown labels)."""
    book = openpyxl.load_workbook(path)
    htx = book["HTX"]
    rows = [
        ["0101234567", "HTX Nông nghiệp Thống Nhất", "Xã Vũ Bản", "HTX", dt.datetime(year, 3, 15), "Nông nghiệp",
         "Đang hoạt động", 25, 12, 1250.5, -20, 4.2, "Khá", "4", "Có"],
        ["5400999888", "Liên hiệp HTX Vận tải Mường", "Thị trấn Vụ Bản", "Liên hiệp HTX", dt.datetime(2015, 1, 2),
         "Vận tải", "Tạm ngừng hoạt động", 7, None, None, None, None, None, None, "Không"],
        ["5400777666", "HTX Dịch vụ Ân Nghĩa", None, None, dt.datetime(year - 1, 12, 31), "Thương mại - dịch vụ",
         "Giải thể", 0, 0, "3.240", "1,5", None, "Yếu", None, None],
    ]
    for r, values in enumerate(rows, start=HEADER_ROW + 1):
        for c, v in enumerate(values, start=1):
            htx.cell(r, c, v)
    tht = book["THT"]
    for r, values in enumerate([
        ["THT Chăn nuôi Bò", "Xã Ân Nghĩa", dt.datetime(year, 6, 1), "Nông nghiệp", "Đang hoạt động", 12, 12, 300,
         25.5, 1.4],
        ["THT Dệt thổ cẩm", "Xã Vũ Bản", dt.datetime(2019, 2, 2), "Tiểu thủ công nghiệp", "Đang hoạt động", 9, None,
         None, None, None],
    ], start=HEADER_ROW + 1):
        for c, v in enumerate(values, start=1):
            tht.cell(r, c, v)
    sup = book["Hỗ trợ HTX"]
    for r, values in enumerate([
        ["0101234567", "Thành lập mới", 30, None, "123/QĐ-UBND", dt.datetime(year, 9, 1)],
        ["5400999888", "Đào tạo", 15.5, 40, None, dt.datetime(year, 10, 10)],
    ], start=HEADER_ROW + 1):
        for c, v in enumerate(values, start=1):
            sup.cell(r, c, v)
    book.save(path)
    return {"HTX": 3, "THT": 2, "HO_TRO": 2}


def _ingest_one(raw, path):
    """Read one file with the reader (FileResult per docs/architecture.md)."""
    from coop.ingest.normalize import ingest_file

    return ingest_file(path, raw_dir=raw)


def test_filled_template_round_trips(tmp_path):
    raw = tmp_path / "raw"
    path = build_template(2021, raw / "2021" / "lac-son", "Lạc Sơn")
    expected = _fill(path, 2021)
    result = _ingest_one(raw, path)
    issues = [i for i in result.file_issues if i.severity == "rejected"]
    assert not issues, issues
    assert result.rejected_rows.height == 0, result.rejected_rows.to_dicts()
    assert {form: df.height for form, df in result.forms.items() if df.height} == expected
    htx = {r["reg_code"]: r for r in result.forms["HTX"].to_dicts()}
    assert htx["0101234567"]["profit"] == -20 and htx["0101234567"]["high_tech"] is True
    assert htx["5400777666"]["revenue"] == 3240 and htx["5400777666"]["profit"] == 1.5
    assert htx["5400999888"]["kind"] == "union" and htx["5400999888"]["status"] == "suspended"


def _coop(*args, cwd):
    return subprocess.run([str(COOP), *map(str, args)], capture_output=True, text=True, timeout=900, cwd=str(cwd))


def test_filled_templates_load_through_coop_run(tmp_path, prefect_harness):
    """A district's 2021 template and a commune's 2026 template, filled, through the real nightly
    run (`coop run` through the CLI, in this process)."""
    import duckdb

    from pipeline_fixture import coop_in_process

    raw = tmp_path / "raw"
    _fill(build_template(2021, raw / "2021" / "lac-son", "Lạc Sơn"), 2021)
    _fill(build_template(2026, raw / "2026" / "05266", "05266"), 2026)
    wh = tmp_path / "wh" / "coop.duckdb"
    code, out = coop_in_process("run", "--raw-dir", raw, "--warehouse", wh)
    assert code == 0, out[-3000:]
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM audit.rejected_rows").fetchall() == [(0,)]
    issues = con.execute("SELECT source_file, sheet, reason FROM audit.file_issues "
                         "WHERE coalesce(severity, 'rejected') = 'rejected'").fetchall()
    assert issues == []
    assert con.execute("SELECT rows_loaded, rows_rejected FROM audit.runs").fetchall() == [(14, 0)]
    assert sorted(con.execute("SELECT DISTINCT year, unit_code FROM audit.files").fetchall()) == [
        (2021, "157"), (2026, "05266")]
    # by hand from _fill (dates relative to the year): HTX — one active (formed that year, 25 members,
    # revenue 1250.5, profit -20), one suspended union, one dissolved; THT — two active (one formed
    # that year), 12 + 9 members
    for year in (2021, 2026):
        got = {r[0]: r[1:] for r in con.execute(
            "SELECT entity_type, new_formed, active_count, members, avg_revenue_mvnd, avg_profit_mvnd "
            "FROM marts.province_indicators WHERE year = ?", [year]).fetchall()}
        assert got == {"HTX": (1, 1, 25, 1250.5, -20.0), "THT": (1, 2, 21, 300.0, 25.5)}, year
        # the establishment support of 0101234567 keeps it out of the backlog
        assert con.execute("SELECT count(*) FROM marts.funding_backlog WHERE year = ?", [year]).fetchall() == [(0,)]
    con.close()


def _title(path, sheet="HTX"):
    """A1 of a sheet, read back with the project's reader."""
    from coop.ingest.read import read_sheets

    sh = next(s for s in read_sheets(path) if s.name == sheet)
    return sh.text(0, 0) if sh.first_column == 0 and sh.row_numbers[0] == 1 else None


def test_commune_template_2026_reads_back_and_validates_empty(tmp_path):
    folder = tmp_path / "2026" / "05266"
    path = build_template(2026, folder, "05266")
    assert path.name == "bieu-mau-ktt-2026-05266-xa-lac-son.xlsx"
    for sheet in ("HTX", "THT", "Hỗ trợ HTX"):
        assert _title(path, sheet) == "UBND XÃ LẠC SƠN"
    text = "\n".join(str(c.value) for row in openpyxl.load_workbook(path)["Hướng dẫn"].iter_rows()
                     for c in row if c.value)
    assert "thư mục 2026/05266/" in text and "không còn cấp huyện" in text

    res = _coop("validate", "--format", "json", path, cwd=tmp_path)  # year and unit from the path
    assert res.returncode == 1, res.stdout + res.stderr  # a blank template is not ready to send (issue 9)
    doc = json.loads(res.stdout)
    (f,) = doc["files"]
    assert (doc["ok"], f["ok"], f["year"], f["unit_code"], f["unit_name"]) == (False, False, 2026, "05266", "Xã Lạc Sơn")
    assert (f["verdict"], f["rows_accepted"], f["rows_rejected"]) == ("empty", 0, 0)
    assert f["verdict_text"].startswith("TRỐNG — Tệp chưa có dòng dữ liệu nào")
    assert [(m["sheet"], m["form"], m["header_row"], m["rows_accepted"]) for m in f["forms"]] == [
        ("HTX", "HTX", HEADER_ROW, 0), ("THT", "THT", HEADER_ROW, 0), ("Hỗ trợ HTX", "HO_TRO", HEADER_ROW, 0)]
    # the instructions sheet, listed only; and the file has no data row
    assert [(p["sheet"], p["reason_code"], p["severity"]) for p in f["problems"]] == [
        ("Hướng dẫn", "unrecognized_sheet", "ignored"), (None, "empty_file", "rejected")]


def test_district_template_2024_and_by_code_or_spelling(tmp_path):
    path = build_template(2024, tmp_path, "Lạc Sơn")
    assert path.name == "bieu-mau-ktt-2024-157-huyen-lac-son.xlsx"
    assert _title(path) == "UBND HUYỆN LẠC SƠN"
    text = "\n".join(str(c.value) for row in openpyxl.load_workbook(path)["Hướng dẫn"].iter_rows()
                     for c in row if c.value)
    assert "thư mục 2024/157/" in text and "do huyện, thành phố, thị xã gửi" in text
    path = build_template(2022, tmp_path, "148")
    assert path.name == "bieu-mau-ktt-2022-148-thanh-pho-hoa-binh.xlsx"
    assert _title(path, "THT") == "UBND THÀNH PHỐ HÒA BÌNH"
    assert _title(build_template(2022, tmp_path / "b", "huyen lac son")) == "UBND HUYỆN LẠC SƠN"
    assert _title(build_template(2025, tmp_path / "c", "Phường Hòa Bình")) == "UBND PHƯỜNG HÒA BÌNH"
    # Kỳ Sơn existed on 31/12/2019 (it joined Hòa Bình city on 01/01/2020)
    assert _title(build_template(2019, tmp_path / "d", "Kỳ Sơn")) == "UBND HUYỆN KỲ SƠN"


def test_template_without_unit_titled_for_the_level_of_the_year(tmp_path):
    assert build_template(2026, tmp_path).name == "bieu-mau-ktt-2026.xlsx"
    assert _title(tmp_path / "bieu-mau-ktt-2026.xlsx").startswith("UBND XÃ/PHƯỜNG")
    assert _title(build_template(2024, tmp_path)).startswith("UBND HUYỆN/THÀNH PHỐ")


@pytest.mark.parametrize(("unit", "year", "code", "words"), [
    ("Kỳ Sơn", 2022, "district_not_valid_for_year", "không tồn tại vào năm 2022"),
    ("Huyện Lạc Sơn", 2026, "district_after_reform", "không còn cấp huyện"),
    ("157", 2025, "district_after_reform", "không còn cấp huyện"),
    ("Xã Lạc Sơn", 2022, "commune_before_reform", "do huyện gửi"),
    ("Lạc Dương", 2022, "unknown_district", "Không nhận ra huyện/thành phố 'Lạc Dương'"),
    ("Lạc Dương", 2026, "unknown_commune", "Không nhận ra xã/phường 'Lạc Dương'"),
])
def test_unit_not_reporting_that_year_is_refused(tmp_path, unit, year, code, words):
    from typer.testing import CliRunner

    from coop.cli import app

    with pytest.raises(TemplateError) as err:
        build_template(year, tmp_path, unit)
    assert words in str(err.value) and f"[{code}]" in str(err.value)
    for option in ("--unit", "--district"):
        res = CliRunner().invoke(app, ["template", "--year", str(year), option, unit, "--out", str(tmp_path)])
        assert res.exit_code == 1 and words in res.output, res.output
    assert list(tmp_path.iterdir()) == []  # no workbook for a unit that does not report that year


def test_cli_unit_and_district_alias(tmp_path):
    from typer.testing import CliRunner

    from coop.cli import app

    res = CliRunner().invoke(app, ["template", "--year", "2026", "--unit", "Xã Lạc Sơn", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["template", "--year", "2024", "--district", "157", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bieu-mau-ktt-2024-157-huyen-lac-son.xlsx",
                                                          "bieu-mau-ktt-2026-05266-xa-lac-son.xlsx"]
