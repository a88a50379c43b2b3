"""Unit feedback: rejected rows as sent (re-read with coop.ingest.read), fault highlighted, reason,
valid example, no formula; one workbook per commune from 2025, per district before.

The warehouse is built by the real nightly run (`coop run` through the CLI, in the test
process) over small workbooks written here by hand; expected values (cells, rows, columns,
names, codes) are typed from these fixtures and from ../shared/spec/units.md, never taken
from the code under test.
Units (schemas/reference): 05266 Xã Lạc Sơn and 04795 Phường Hòa Bình (former Hòa Bình
province, 17); districts 157 Huyện Lạc Sơn, 148 Thành phố Hòa Bình, 152 Huyện Lương Sơn,
151 Kỳ Sơn (until 01/01/2020).
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from coop.outputs.feedback import FeedbackError, build_feedback, clerk_message, collect_feedback, reason_vi
from pipeline_fixture import coop_in_process
from reader_fixtures import HTX_HEAD, G, htx_row, write_xls, write_xlsx

PROJECT = Path(__file__).resolve().parent.parent
RED = "F4B6B6"

# Lạc Sơn's 2020 HTX file: two title rows, header on row 4, data from row 5.
HEADER = ["STT", "Mã số HTX", "Tên HTX", "Ngày cấp đăng ký", "Lĩnh vực hoạt động", "Tình trạng", "Thành viên"]
ROWS = {
    5: [1, "5400100001", "HTX Nông nghiệp Ân Nghĩa", dt.datetime(2019, 5, 6), "Nông nghiệp", "Đang hoạt động", 12],
    6: [2, "5400100002", "=HYPERLINK(\"http://evil\")", "31/02/2020", "Nông nghiệp", "Đang hoạt động", 9],
    7: [3, "5400100003", "HTX Vận tải Mường Vang", dt.datetime(2018, 1, 2), "Nông nghiep xx", "Đang hoạt động", -4],
}
# Lương Sơn's 2020 file whose used range starts at C4 (row 6 has no 31 February)
LECH_ROWS = [
    [1, "5400500001", "HTX Nông nghiệp Cao Sơn", "06/05/2019", "Nông nghiệp", "Đang hoạt động", 12],
    [2, "5400500002", "HTX Vận tải Lâm Sơn", "31/02/2020", "Nông nghiệp", "Đang hoạt động", 9],
]
# 2025, one bad row per commune
LAC_SON_2025 = [  # .xlsx, title rows, header on row 4: the bad row is Excel row 6 (members -4)
    htx_row(1, "5400300001", "HTX Chè Lạc Sơn", commune="Xã Lạc Sơn", established_on=dt.datetime(2025, 3, 1)),
    htx_row(2, "5400300002", "HTX Mây tre Lạc Sơn", commune="Xã Lạc Sơn", members=-4),
]
HOA_BINH_2025 = [  # .xls (openpyxl cannot read it: only coop.ingest.read can), header on row 1: bad row is row 2
    htx_row(1, "5400400001", "HTX Dịch vụ Hòa Bình", commune="Phường Hòa Bình", established_on="31/02/2025"),
    htx_row(2, "5400400002", "HTX Rau sạch Hòa Bình", commune="Phường Hòa Bình"),
]


def _write_lac_son_2020(path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "DS HTX"
    ws["A1"] = "UBND HUYỆN LẠC SƠN"
    ws["A2"] = "DANH SÁCH HỢP TÁC XÃ NĂM 2020"
    for c, h in enumerate(HEADER, start=1):
        ws.cell(4, c, h)
    for r, values in ROWS.items():
        for c, v in enumerate(values, start=1):
            cell = ws.cell(r, c, v)
            if isinstance(v, str):
                cell.data_type = "s"  # a text cell that looks like a formula, as a clerk might paste it
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def _write_raw(raw: Path) -> None:
    _write_lac_son_2020(raw / "2020" / "lac-son" / "htx.xlsx")
    (raw / "2020" / "lac-son" / "hong.xlsx").write_bytes(b"not a zip")
    (raw / "2020" / "148").mkdir(parents=True)
    (raw / "2020" / "148" / "tht.csv").write_text(
        "Tên THT;Xã;Ngày thành lập;Lĩnh vực;Tình trạng;Số thành viên\n"
        "THT Rau sạch;Dân Chủ;01/02/2020;Nông nghiệp;Đang hoạt động;mười\n", encoding="utf-8-sig")
    (raw / "2020" / "148" / "cu.csv").write_bytes(  # a code page that is neither UTF-8 nor a Vietnamese one
        "Название;Город\nТест;Москва\nПривет;мир\n".encode("cp1251"))
    write_xlsx(raw / "2020" / "Lương Sơn" / "lech.xlsx", [G("DS HTX", [HEADER, *LECH_ROWS], row0=3, col0=2)])
    # Kỳ Sơn no longer exists in 2020: the file is rejected whole, its folder gets its own feedback
    write_xlsx(raw / "2020" / "ky-son" / "htx.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400600001", "HTX Kỳ Sơn")])])
    write_xlsx(raw / "2019" / "lac-son" / "old.xlsx", [G("DS HTX", [HEADER, [1, "5400100009", "HTX Cũ",
                                                                          dt.datetime(2019, 1, 1), "Nông nghiệp",
                                                                          "Đang hoạt động", "nhiều"]])])
    write_xlsx(raw / "2025" / "Xã Lạc Sơn" / "htx.xlsx", [G("DS HTX", [
        ["UBND XÃ LẠC SƠN"], ["DANH SÁCH HỢP TÁC XÃ NĂM 2025"], [], HTX_HEAD, *LAC_SON_2025])])
    write_xls(raw / "2025" / "04795" / "htx.xls", [G("HTX", [HTX_HEAD, *HOA_BINH_2025])])
    # a district folder after the reform
    write_xlsx(raw / "2026" / "Huyện Lạc Sơn" / "htx.xlsx",
               [G("HTX", [HTX_HEAD, htx_row(1, "5400700001", "HTX Huyện")])])


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_harness):
    """(raw folder, warehouse) after a real `coop run` (the CLI, in this process) over the fixtures above."""
    tmp = tmp_path_factory.mktemp("feedback")
    raw = tmp / "raw"
    _write_raw(raw)
    wh = tmp / "wh" / "coop.duckdb"
    code, out = coop_in_process("run", "--raw-dir", raw, "--warehouse", wh)
    assert code == 0 and wh.exists(), out[-3000:]
    return raw, wh


def _sheet_rows(ws, min_row=1):
    return list(ws.iter_rows(min_row=min_row, values_only=True))


def _red(ws, min_row):
    return {c.coordinate for row in ws.iter_rows(min_row=min_row) for c in row
            if c.fill.fgColor.rgb and str(c.fill.fgColor.rgb).endswith(RED)}


def _no_formula(path):
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            body = z.read(name).decode("utf-8", "replace")
            assert "<f>" not in body and "<hyperlink" not in body


# ------------------------------------------------------------------ 2025: communes
def test_2025_one_workbook_per_commune_with_its_own_row(built, tmp_path):
    raw, wh = built
    paths = build_feedback(2025, wh, tmp_path, raw)
    assert [p.name for p in paths] == ["phan-hoi-2025-04795-phuong-hoa-binh.xlsx",
                                       "phan-hoi-2025-05266-xa-lac-son.xlsx"]
    hoa_binh, lac_son = (openpyxl.load_workbook(p) for p in paths)

    summary = "\n".join(str(r[0]) for r in _sheet_rows(lac_son["Tóm tắt"]) if r[0])
    assert "Đơn vị: Xã Lạc Sơn (mã 05266, tỉnh Hòa Bình cũ)" in summary
    assert "Số ô bị lỗi: 1 (trên 1 dòng)" in summary and "thư mục của xã, phường (2025/05266/)" in summary
    assert [r[:5] for r in _sheet_rows(lac_son["Ô bị lỗi"], 2)] == [
        ("2025/Xã Lạc Sơn/htx.xlsx", "DS HTX", 6, "Số thành viên", "-4")]
    assert _sheet_rows(lac_son["Ô bị lỗi"], 2)[0][5].endswith("[negative_value]")
    ws = lac_son["Dòng gốc 1"]
    assert ws["A1"].value == "Tệp: 2025/Xã Lạc Sơn/htx.xlsx — trang tính: DS HTX"
    assert "Dòng tiêu đề cột: dòng 4." in ws["A2"].value
    assert [c.value for c in ws[3]][:17] == ["Cột", *"ABCDEFGHIJKLMNOP"]
    assert [c.value for c in ws[4]] == ["Dòng", *HTX_HEAD, "Lý do"]
    assert [c.value for c in ws[5]][:17] == [6, *LAC_SON_2025[1]]  # the row as sent, re-read from the file
    assert len(list(ws.iter_rows(min_row=5))) == 1
    assert _red(ws, 5) == {"J5"}  # Số thành viên: source column I, output column J
    assert "[negative_value]" in ws["J5"].comment.text
    assert _sheet_rows(lac_son["Tệp bị từ chối"], 2) == [("Không có tệp nào bị từ chối.", None, None, None)]

    summary = "\n".join(str(r[0]) for r in _sheet_rows(hoa_binh["Tóm tắt"]) if r[0])
    assert "Đơn vị: Phường Hòa Bình (mã 04795, tỉnh Hòa Bình cũ)" in summary
    assert [r[:5] for r in _sheet_rows(hoa_binh["Ô bị lỗi"], 2)] == [
        ("2025/04795/htx.xls", "HTX", 2, "Ngày thành lập", "31/02/2025")]
    ws = hoa_binh["Dòng gốc 1"]
    assert [c.value for c in ws[4]] == ["Dòng", *HTX_HEAD, "Lý do"]
    assert [c.value for c in ws[5]][:17] == [2, *HOA_BINH_2025[0]]  # an .xls row: only coop.ingest.read reads it
    assert _red(ws, 5) == {"G5"} and "[invalid_date]" in ws["G5"].comment.text
    for p in paths:
        _no_formula(p)


def test_2025_one_commune_by_code_or_name_and_units_refused(built, tmp_path):
    raw, wh = built
    assert [p.name for p in build_feedback(2025, wh, tmp_path / "a", raw, "Lạc Sơn")] == [
        "phan-hoi-2025-05266-xa-lac-son.xlsx"]  # a bare name means the unit of that year: the commune
    assert [p.name for p in build_feedback(2025, wh, tmp_path / "b", raw, unit="04795")] == [
        "phan-hoi-2025-04795-phuong-hoa-binh.xlsx"]
    assert build_feedback(2025, wh, tmp_path / "c", raw, "Phường Kỳ Sơn") == []  # reports, nothing rejected
    with pytest.raises(FeedbackError, match=r"không còn cấp huyện.*\[district_after_reform\]"):
        build_feedback(2025, wh, tmp_path / "d", raw, "Huyện Lạc Sơn")
    with pytest.raises(FeedbackError, match=r"\[commune_before_reform\]"):
        build_feedback(2020, wh, tmp_path / "d", raw, "05266")
    with pytest.raises(FeedbackError, match=r"Không nhận ra xã/phường 'Lạc Dương'.*\[unknown_commune\]"):
        build_feedback(2025, wh, tmp_path / "d", raw, "Lạc Dương")
    assert not (tmp_path / "d").exists()


def test_cli_feedback_unit_and_district_alias(built, tmp_path):
    from typer.testing import CliRunner

    from coop.cli import app

    raw, wh = built
    base = ["feedback", "--raw-dir", str(raw), "--warehouse", str(wh), "--out", str(tmp_path)]
    res = CliRunner().invoke(app, [*base, "--year", "2025", "--unit", "05266"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"Phản hồi: {tmp_path / 'phan-hoi-2025-05266-xa-lac-son.xlsx'}"
    res = CliRunner().invoke(app, [*base, "--year", "2022", "--district", "Kỳ Sơn"])
    assert res.exit_code == 1 and "không tồn tại vào năm 2022" in res.output, res.output
    res = CliRunner().invoke(app, [*base, "--year", "2024", "--unit", "Huyện Lạc Sơn"])
    assert res.exit_code == 0 and "không có dòng hay tệp nào bị từ chối ở Huyện Lạc Sơn" in res.output


def test_district_folder_after_reform_gets_its_own_feedback(built, tmp_path):
    raw, wh = built
    (path,) = build_feedback(2026, wh, tmp_path, raw)
    assert path.name == "phan-hoi-2026-thu-muc-huyen-lac-son.xlsx"
    book = openpyxl.load_workbook(path)
    assert book["Tóm tắt"]["A2"].value == "Đơn vị: Thư mục 'Huyện Lạc Sơn'"
    ((sf, sheet, reason, fix),) = _sheet_rows(book["Tệp bị từ chối"], 2)
    assert (sf, sheet) == ("2026/Huyện Lạc Sơn/htx.xlsx", "(cả tệp)")
    assert "không còn cấp huyện" in reason and reason.endswith("[district_after_reform]")
    assert "xã, phường" in fix


# ------------------------------------------------------------------ up to 2024: districts
def test_2020_one_workbook_per_district_and_folder(built, tmp_path):
    raw, wh = built
    paths = build_feedback(2020, wh, tmp_path, raw)
    assert [p.name for p in paths] == ["phan-hoi-2020-148-thanh-pho-hoa-binh.xlsx",
                                       "phan-hoi-2020-152-huyen-luong-son.xlsx",
                                       "phan-hoi-2020-157-huyen-lac-son.xlsx",
                                       "phan-hoi-2020-thu-muc-ky-son.xlsx"]
    only = build_feedback(2020, wh, tmp_path / "one", raw, district="Huyện Lạc Sơn")
    assert [p.name for p in only] == ["phan-hoi-2020-157-huyen-lac-son.xlsx"]
    # Kỳ Sơn joined Hòa Bình city on 01/01/2020: asked by name, refused with the reason
    with pytest.raises(FeedbackError, match=r"không tồn tại vào năm 2020.*\[district_not_valid_for_year\]"):
        build_feedback(2020, wh, tmp_path / "none", raw, "Kỳ Sơn")
    ky_son = openpyxl.load_workbook(paths[3])
    ((sf, _sheet, reason, _fix),) = _sheet_rows(ky_son["Tệp bị từ chối"], 2)
    assert sf == "2020/ky-son/htx.xlsx" and reason.endswith("[district_not_valid_for_year]")


def test_lac_son_2020_workbook(built, tmp_path):
    raw, wh = built
    (path,) = build_feedback(2020, wh, tmp_path, raw, "157")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Tóm tắt", "Ô bị lỗi", "Dòng gốc 1", "Tệp bị từ chối"]
    summary = "\n".join(str(r[0]) for r in _sheet_rows(book["Tóm tắt"]) if r[0])
    assert "Đơn vị: Huyện Lạc Sơn (mã 157, tỉnh Hòa Bình)" in summary and "Số ô bị lỗi: 3 (trên 2 dòng)" in summary
    assert "thư mục của huyện (2020/157/)" in summary

    # every rejected cell of 2020 for Lạc Sơn (none of 2019), the column as the clerk's sheet names it
    rows = _sheet_rows(book["Ô bị lỗi"], 2)
    assert [r[:5] for r in rows] == [
        ("2020/lac-son/htx.xlsx", "DS HTX", 6, "Ngày cấp đăng ký", "31/02/2020"),
        ("2020/lac-son/htx.xlsx", "DS HTX", 7, "Thành viên", "-4"),
        ("2020/lac-son/htx.xlsx", "DS HTX", 7, "Lĩnh vực hoạt động", "Nông nghiep xx"),
    ]
    assert [r[5].rsplit("[", 1)[1] for r in rows] == ["invalid_date]", "negative_value]", "unknown_category]"]
    assert "15/03/2020" in rows[0][6] and "31/12/2020" in rows[0][6]
    assert "số nguyên" in rows[1][6]
    assert "Nông nghiệp" in rows[2][6] and "Quản lý chợ" in rows[2][6]
    ws = book["Ô bị lỗi"]
    assert ws["E2"].fill.fgColor.rgb.endswith(RED) and ws["E3"].quotePrefix  # "-4" stays text

    # the rows as they were sent, header as written, fault highlighted with the reason as comment
    ws = book["Dòng gốc 1"]
    assert [c.value for c in ws[4]] == ["Dòng", *HEADER, "Lý do"]
    assert [c.value for c in ws[5]][:1 + len(HEADER)] == [6, *ROWS[6]]
    assert [c.value for c in ws[6]][:1 + len(HEADER)] == [7, *ROWS[7]]
    # column E (date, 1 + index 3), F (sector), H (members): Dòng is A
    assert _red(ws, 5) == {"E5", "F6", "H6"}
    assert "[invalid_date]" in ws["E5"].comment.text
    assert ws["D5"].value == '=HYPERLINK("http://evil")' and ws["D5"].data_type == "s" and ws["D5"].quotePrefix

    # a reader error: a Vietnamese sentence first, the technical detail after it
    ((sf, sheet, reason, fix),) = _sheet_rows(book["Tệp bị từ chối"], 2)
    assert (sf, sheet) == ("2020/lac-son/hong.xlsx", "(cả tệp)")
    assert reason.startswith("Tệp bị hỏng hoặc không phải bảng tính Excel (chi tiết: CalamineError: ")
    assert reason.endswith("Could not find EOCD) [unreadable_file]") and "Context" not in reason
    assert fix == "Mở lại tệp trên máy, bỏ mật khẩu, lưu lại dạng .xlsx rồi gửi lại."
    _no_formula(path)


def test_csv_source_row_and_csv_not_utf8(built, tmp_path):
    raw, wh = built
    (path,) = build_feedback(2020, wh, tmp_path, raw, "Thành phố Hòa Bình")
    book = openpyxl.load_workbook(path)
    ws = book["Dòng gốc 1"]
    assert [c.value for c in ws[4]][:7] == ["Dòng", "Tên THT", "Xã", "Ngày thành lập", "Lĩnh vực", "Tình trạng",
                                            "Số thành viên"]
    assert [c.value for c in ws[5]][:7] == [2, "THT Rau sạch", "Dân Chủ", "01/02/2020", "Nông nghiệp",
                                           "Đang hoạt động", "mười"]
    assert _red(ws, 5) == {"G5"}
    ((sf, _sheet, reason, _fix),) = _sheet_rows(book["Tệp bị từ chối"], 2)
    assert sf == "2020/148/cu.csv"
    # the reader's own Vietnamese sentence: the encodings accepted and how to save the file again
    assert "bảng mã" in reason and "UTF-8" in reason and "Windows-1258" in reason and "CSV UTF-8" in reason
    assert reason.endswith("[unreadable_file]")


def test_sheet_starting_at_c4_is_shown_at_its_own_excel_columns(built, tmp_path):
    """Used range C4:I6: the reader's grid starts at column C, the clerk's file at A. The row
    as sent must sit under its own letters, the faulty date in F (not D), row 6 as row 6."""
    from coop.ingest.read import read_sheets

    raw, wh = built
    assert read_sheets(raw / "2020" / "Lương Sơn" / "lech.xlsx")[0].first_column == 2  # C (A=0)
    (path,) = build_feedback(2020, wh, tmp_path, raw, district="Lương Sơn")
    sheet = openpyxl.load_workbook(path)["Dòng gốc 1"]
    # output column A holds the Excel row number; source column k (A=0) is output column k+2
    assert [c.value for c in sheet[3]][:10] == ["Cột", "A", "B", "C", "D", "E", "F", "G", "H", "I"]
    assert [c.value for c in sheet[4]][:10] == ["Dòng", "", "", *HEADER]
    row = [c.value for c in sheet[5]]
    assert row[0] == 6 and row[1] is None and row[2] is None  # A6, B6 are empty in the clerk's file
    assert row[3:10] == LECH_ROWS[1]
    assert sheet["G3"].value == "F" and sheet["G5"].value == "31/02/2020"
    assert _red(sheet, 5) == {"G5"}  # the faulty value under "F"; nothing else red
    assert "31/02/2020" in sheet["G5"].comment.text
    assert sheet["K4"].value == "Lý do"


# ------------------------------------------------------------------ re-reading, audit state, messages
def test_source_changed_or_broken_after_the_run(built, tmp_path):
    raw, wh = built
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    (copy / "2025" / "04795" / "htx.xls").write_bytes(b"\xd0\xcf\x11\xe0 broken")
    write_xlsx(copy / "2025" / "Xã Lạc Sơn" / "htx.xlsx", [G("DS HTX", [
        ["UBND XÃ LẠC SƠN"], ["DANH SÁCH HỢP TÁC XÃ NĂM 2025"], [], HTX_HEAD, *LAC_SON_2025,
        htx_row(3, "5400300003", "HTX mới thêm", commune="Xã Lạc Sơn")])])
    hoa_binh, lac_son = (openpyxl.load_workbook(p) for p in build_feedback(2025, wh, tmp_path / "out", copy))
    note = hoa_binh["Dòng gốc 1"]["A2"].value
    assert note.startswith("Không đọc lại được tệp gốc: Tệp bị hỏng hoặc không phải bảng tính Excel (chi tiết: ")
    assert "Cfb error" in note and "“Ô bị lỗi”" in note
    assert [r[:5] for r in _sheet_rows(hoa_binh["Ô bị lỗi"], 2)] == [  # the audit's values still stand
        ("2025/04795/htx.xls", "HTX", 2, "Ngày thành lập", "31/02/2025")]
    ws = lac_son["Dòng gốc 1"]
    assert "tệp trong thư mục đã thay đổi sau lần tỉnh kiểm tra" in ws["A2"].value
    assert [c.value for c in ws[5]][:17] == [6, *LAC_SON_2025[1]]


def test_removed_file_is_left_out(built, tmp_path):
    raw, wh = built
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    (copy / "2025" / "04795" / "htx.xls").unlink()
    assert [p.name for p in build_feedback(2025, wh, tmp_path / "out", copy)] == [
        "phan-hoi-2025-05266-xa-lac-son.xlsx"]


def test_only_the_latest_published_run_counts(built, tmp_path):
    import duckdb

    raw, wh0 = built
    wh = tmp_path / "coop.duckdb"
    shutil.copy(wh0, wh)
    con = duckdb.connect(str(wh))
    con.execute("INSERT INTO audit.runs (run_id, started_at, status) VALUES "
                "('r0', TIMESTAMP '2000-01-09 01:00', 'published'), ('r2', TIMESTAMP '2999-01-11 01:00', 'failed')")
    for run in ("r0", "r2"):
        con.execute("INSERT INTO audit.rejected_rows (run_id, source_file, sheet, row_number, column_name, raw_value, "
                    "reason, reason_code, year, unit_code) VALUES (?, '2020/lac-son/htx.xlsx', 'DS HTX', 5, "
                    "'members', '12', 'cũ [not_integer]', 'not_integer', 2020, '157')", [run])
    con.close()
    (lac_son,) = collect_feedback(2020, wh, raw, "157")
    assert (lac_son.key, lac_son.name) == ("157", "Huyện Lạc Sơn")
    assert sorted(c.row_number for c in lac_son.cells) == [6, 7, 7]


def test_warehouse_of_an_older_layout_is_refused_in_vietnamese(tmp_path):
    from outputs_fixture import make_fixture_warehouse  # audit.* without reason_code / unit_code

    wh = make_fixture_warehouse(tmp_path / "old.duckdb", rejected=[
        ("2020/lac-son/htx.xlsx", "DS HTX", 6, "established_on", "31/02/2020", "x [invalid_date]")])
    with pytest.raises(FeedbackError, match=r"chạy lại `coop run` \(chi tiết: BinderException"):
        build_feedback(2020, wh, tmp_path / "out", tmp_path)


def test_nfd_folder_on_disk_is_found(tmp_path):
    import unicodedata

    from coop.outputs.feedback import resolve_source

    folder = tmp_path / "2019" / unicodedata.normalize("NFD", "Lương Sơn")
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("x", encoding="utf-8")
    found = resolve_source(tmp_path, "2019/Lương Sơn/a.csv")
    assert found is not None and found.read_text(encoding="utf-8") == "x"
    assert resolve_source(tmp_path, "2019/Lương Sơn/b.csv") is None


def test_feedback_has_no_reader_of_its_own():
    import coop.outputs.feedback as fb

    assert not hasattr(fb, "_read_grid") and not hasattr(fb, "_folder_key") and not hasattr(fb, "_aliases")
    source = Path(fb.__file__).read_text(encoding="utf-8")
    assert "openpyxl" not in source and "districts.csv" not in source and "getattr(" not in source


@pytest.mark.parametrize(("reason", "sheet", "expected"), [
    ("Không đọc được tệp (hỏng, có mật khẩu hoặc không đúng định dạng .xlsx): CalamineError: calamine error: "
     "Xlsx error: Zip error: invalid Zip archive: Could not find EOCD\nContext:\n    0: Could not open workbook "
     "[unreadable_file]", None,
     "Tệp bị hỏng hoặc không phải bảng tính Excel (chi tiết: CalamineError: calamine error: Xlsx error: Zip error: "
     "invalid Zip archive: Could not find EOCD) [unreadable_file]"),
    ("Không đọc được tệp (hỏng, có mật khẩu hoặc không đúng định dạng .xls): CalamineError: calamine error: Xls "
     r"error: Cfb error: Invalid OLE (signature \x50\x4b\x03\x04\x14\x00\x00\x00 invalid, not an office document?) "
     "[unreadable_file]", None,
     r"Tệp thực chất là bảng tính .xlsx nhưng mang đuôi .xls (chi tiết: CalamineError: calamine error: Xls error: "
     r"Cfb error: Invalid OLE (signature \x50\x4b\x03\x04\x14\x00\x00\x00 invalid, not an office document?)) "
     "[unreadable_file]"),
    ("Không đọc được trang 'HTX' (hỏng): CalamineError: cell out of range [unreadable_file]", "HTX",
     "Trang tính 'HTX' bị hỏng, không đọc được (các trang khác của tệp vẫn được đọc) (chi tiết: CalamineError: "
     "cell out of range) [unreadable_file]"),
    ("Không đọc được tệp (PermissionError: Permission denied) [unreadable_file]", None,
     "Máy chủ của tỉnh không có quyền đọc tệp (báo người quản trị) (chi tiết: PermissionError: Permission denied) "
     "[unreadable_file]"),
    ("Ngày không tồn tại: 31/02/2025 [invalid_date]", None, "Ngày không tồn tại: 31/02/2025 [invalid_date]"),
])
def test_clerk_message(reason, sheet, expected):
    assert clerk_message(reason, sheet=sheet) == expected


def test_reason_code_only_becomes_vietnamese():
    assert reason_vi("[negative_value]", "negative_value") == "Không được là số âm [negative_value]"
    assert reason_vi(None, "district_after_reform") == (
        "Từ năm 2025 không còn cấp huyện: báo cáo do xã, phường gửi [district_after_reform]")


def test_sample_feedback_lists_exactly_the_planted_problems(tmp_path, sample_build):
    import json
    from functools import partial
    from unicodedata import normalize

    nfc = partial(normalize, "NFC")

    wh = sample_build.wh
    truth = json.loads((PROJECT / "data" / "sample" / "ground_truth.json").read_text(encoding="utf-8"))
    raw = PROJECT / "data" / "raw"
    years = sorted(int(p.name) for p in raw.iterdir() if p.name.isdigit())
    assert years
    for year in years:
        shown_cells, shown_files = set(), set()
        for path in build_feedback(year, wh, tmp_path / str(year), raw):
            book = openpyxl.load_workbook(path)
            for r in book["Ô bị lỗi"].iter_rows(min_row=2, values_only=True):
                shown_cells.add((r[0], r[2], None if r[4] in (None, "") else str(r[4])))
            for r in book["Tệp bị từ chối"].iter_rows(min_row=2, values_only=True):
                if r[1] is not None:
                    shown_files.add((r[0], r[2].rsplit("[", 1)[-1].rstrip("]")))
        # exported text is NFC; the truth keeps paths as the generator spelled them on disk
        planted = {(nfc(r["source_file"]), r["row_number"], r["raw_value"]) for r in truth["invalid_rows"]
                   if r["source_file"].startswith(f"{year}/")}
        assert shown_cells >= planted, planted - shown_cells
        # duplicates quarantine every row of the key: those rows may add cells; nothing else may
        extra = {c for c in shown_cells - planted}
        dup_files = {nfc(r["source_file"]) for r in truth["invalid_rows"] if r["reason_code"].startswith("duplicate")}
        assert all(c[0] in dup_files for c in extra), extra
        files = {(nfc(f["source_file"]), f["reason_code"]) for f in truth["rejected_files"]
                 + truth.get("rejected_sheets", []) if f["source_file"].startswith(f"{year}/")}
        assert {f for f in shown_files if f[1] != "superseded"} == files
