"""Blank district template: contract headers, drop-downs, validation; a filled copy loads."""

from __future__ import annotations

import datetime as dt
import importlib.util
import zipfile

import openpyxl
import pytest

from coop.template import build_template

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


def test_filled_template_round_trips(tmp_path):
    if importlib.util.find_spec("coop.ingest") is None:
        pytest.skip("the reader (coop.ingest) has not landed yet")
    from coop import ingest  # noqa: F401  (the reader's public entry point is used below)

    raw = tmp_path / "raw"
    folder = raw / "2021" / "lac-son"
    path = build_template(2021, folder, "Lạc Sơn")
    expected = _fill(path, 2021)
    result = _ingest_one(raw, path)
    issues = [i for i in result.file_issues if getattr(i, "severity", "rejected") == "rejected"]
    assert not issues, issues
    assert result.rejected_rows.height == 0, result.rejected_rows.to_dicts()
    assert {form: df.height for form, df in result.forms.items() if df.height} == expected
    htx = {r["reg_code"]: r for r in result.forms["HTX"].to_dicts()}
    assert htx["0101234567"]["profit"] == -20 and htx["0101234567"]["high_tech"] is True
    assert htx["5400777666"]["revenue"] == 3240 and htx["5400777666"]["profit"] == 1.5
    assert htx["5400999888"]["kind"] == "union" and htx["5400999888"]["status"] == "suspended"


def _ingest_one(raw, path):
    """Read one file with the reader (FileResult per docs/architecture.md)."""
    from coop.ingest import ingest_file

    return ingest_file(path, raw_dir=raw)


def test_filled_template_loads_through_coop_run(tmp_path):
    """The filled template in a raw folder of its own, through the real nightly run."""
    import subprocess
    import sys

    import duckdb

    if any(importlib.util.find_spec(m) is None for m in ("coop.runner", "coop.ingest", "coop.load")):
        pytest.skip("coop run has not landed yet")
    raw = tmp_path / "raw"
    path = build_template(2021, raw / "2021" / "lac-son", "Lạc Sơn")
    _fill(path, 2021)
    wh = tmp_path / "wh" / "coop.duckdb"
    res = subprocess.run([sys.executable, "-m", "coop.cli", "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
                         capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM audit.rejected_rows").fetchall() == [(0,)]
    issues = con.execute("SELECT source_file, sheet, reason FROM audit.file_issues "
                         "WHERE coalesce(severity, 'rejected') = 'rejected'").fetchall()
    assert issues == []
    assert con.execute("SELECT rows_loaded, rows_rejected FROM audit.runs").fetchall() == [(7, 0)]
    # by hand from _fill: HTX — one active (formed 2021, 25 members, revenue 1250.5, profit -20),
    # one suspended union, one dissolved; THT — two active (one formed 2021), 12 + 9 members
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT entity_type, new_formed, active_count, members, avg_revenue_mvnd, avg_profit_mvnd "
        "FROM marts.province_indicators WHERE year = 2021").fetchall()}
    assert got == {"HTX": (1, 1, 25, 1250.5, -20.0), "THT": (1, 2, 21, 300.0, 25.5)}
    # the establishment support of 0101234567 keeps it out of the backlog; training counts 40 turns
    assert con.execute("SELECT count(*) FROM marts.funding_backlog WHERE year = 2021").fetchall() == [(0,)]
    con.close()


def test_district_by_code_or_spelling_and_unknown_district(tmp_path):
    from typer.testing import CliRunner

    from coop.cli import app
    from coop.template import TemplateError

    assert build_template(2022, tmp_path, "148").name == "bieu-mau-ktt-2022-thanh-pho-hoa-binh.xlsx"
    path = build_template(2022, tmp_path, "huyen lac son")
    assert openpyxl.load_workbook(path)["THT"]["A1"].value == "UBND HUYỆN LẠC SƠN"
    with pytest.raises(TemplateError, match="Không biết huyện 'Lạc Dương'"):
        build_template(2022, tmp_path, "Lạc Dương")
    res = CliRunner().invoke(app, ["template", "--year", "2022", "--district", "Lạc Dương", "--out", str(tmp_path)])
    assert res.exit_code == 1
