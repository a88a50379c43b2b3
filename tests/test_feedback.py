"""District feedback: rejected rows as sent, fault highlighted, reason, valid example, no formula."""

from __future__ import annotations

import datetime as dt
import zipfile

import openpyxl
import pytest

from coop.feedback import build_feedback
from outputs_fixture import make_fixture_warehouse

# Lạc Sơn's 2020 HTX file: two title rows, header on row 4, data from row 5.
HEADER = ["STT", "Mã số HTX", "Tên HTX", "Ngày cấp đăng ký", "Lĩnh vực hoạt động", "Tình trạng", "Thành viên"]
ROWS = {
    5: [1, "5400100001", "HTX Nông nghiệp Ân Nghĩa", dt.datetime(2019, 5, 6), "Nông nghiệp", "Đang hoạt động", 12],
    6: [2, "5400100002", "=HYPERLINK(\"http://evil\")", "31/02/2020", "Nông nghiệp", "Đang hoạt động", 9],
    7: [3, "5400100003", "HTX Vận tải Mường Vang", dt.datetime(2018, 1, 2), "Nông nghiep xx", "Đang hoạt động", -4],
}
REJECTED = [
    # source_file, sheet, row_number, column_name, raw_value, reason
    ("2020/lac-son/htx.xlsx", "DS HTX", 6, "established_on", "31/02/2020",
     "Ngày không hợp lệ: 31/02/2020 [invalid_date]"),
    ("2020/lac-son/htx.xlsx", "DS HTX", 7, "sector", "Nông nghiep xx",
     "Lĩnh vực không có trong danh mục: Nông nghiep xx [unknown_category]"),
    ("2020/lac-son/htx.xlsx", "DS HTX", 7, "members", "-4", "[negative_value]"),
    ("2020/148/tht.csv", None, 2, "members", "mười", "Không phải là số: mười [invalid_number]"),
    ("2019/lac-son/old.xlsx", "DS HTX", 5, "name", None, "Thiếu tên [missing_value]"),  # other year
]
ISSUES = [
    ("2020/lac-son/hong.xlsx", None, "Không mở được tệp (tệp hỏng hoặc có mật khẩu) [unreadable_file]"),
]


@pytest.fixture()
def setup(tmp_path):
    raw = tmp_path / "raw"
    (raw / "2020" / "lac-son").mkdir(parents=True)
    (raw / "2020" / "148").mkdir(parents=True)
    (raw / "2019" / "lac-son").mkdir(parents=True)
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
    book.save(raw / "2020" / "lac-son" / "htx.xlsx")
    (raw / "2020" / "lac-son" / "hong.xlsx").write_bytes(b"not a zip")
    (raw / "2020" / "148" / "tht.csv").write_text(
        "Tên THT;Xã;Ngày thành lập;Lĩnh vực;Tình trạng;Số thành viên\n"
        "THT Rau sạch;Dân Chủ;01/02/2020;Nông nghiệp;Đang hoạt động;mười\n", encoding="utf-8-sig")
    wh = make_fixture_warehouse(tmp_path / "wh.duckdb", rejected=REJECTED, file_issues=ISSUES)
    return raw, wh, tmp_path / "out"


def _cells(ws):
    return [[c for c in row] for row in ws.iter_rows()]


def test_one_workbook_per_district_with_problems(setup):
    raw, wh, out = setup
    paths = build_feedback(2020, wh, out, raw)
    assert sorted(p.name for p in paths) == ["phan-hoi-2020-148-thanh-pho-hoa-binh.xlsx",
                                             "phan-hoi-2020-157-lac-son.xlsx"]
    only = build_feedback(2020, wh, out / "one", raw, district="Huyện Lạc Sơn")
    assert [p.name for p in only] == ["phan-hoi-2020-157-lac-son.xlsx"]
    assert build_feedback(2020, wh, out / "none", raw, district="Kỳ Sơn") == []
    from coop.feedback import FeedbackError

    with pytest.raises(FeedbackError, match="Không biết huyện 'Lạc Dương'"):
        build_feedback(2020, wh, out / "none", raw, district="Lạc Dương")


def test_lac_son_workbook(setup):
    raw, wh, out = setup
    path = next(p for p in build_feedback(2020, wh, out, raw) if "lac-son" in p.name)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Tóm tắt", "Ô bị lỗi", "Dòng gốc 1", "Tệp bị từ chối"]
    summary = "\n".join(str(c.value) for row in book["Tóm tắt"].iter_rows() for c in row if c.value)
    assert "Đơn vị: Lạc Sơn (mã 157)" in summary and "Số ô bị lỗi: 3 (trên 2 dòng)" in summary

    # every rejected cell of 2020 for Lạc Sơn, none of 2019
    rows = list(book["Ô bị lỗi"].iter_rows(min_row=2, values_only=True))
    # the column as the clerk's sheet names it
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("2020/lac-son/htx.xlsx", "DS HTX", 6, "Ngày cấp đăng ký", "31/02/2020"),
        ("2020/lac-son/htx.xlsx", "DS HTX", 7, "Thành viên", "-4"),
        ("2020/lac-son/htx.xlsx", "DS HTX", 7, "Lĩnh vực hoạt động", "Nông nghiep xx"),
    ]
    assert rows[0][5] == "Ngày không hợp lệ: 31/02/2020 [invalid_date]"
    assert rows[1][5] == "Không được là số âm [negative_value]"  # code only in the audit -> Vietnamese
    assert "15/03/2020" in rows[0][6] and "31/12/2020" in rows[0][6]
    assert "số nguyên" in rows[1][6]
    assert "Nông nghiệp" in rows[2][6] and "Quản lý chợ" in rows[2][6]
    ws = book["Ô bị lỗi"]
    assert ws["E2"].fill.fgColor.rgb.endswith("F4B6B6") and ws["E3"].quotePrefix  # "-4" stays text

    # the rows as they were sent, header as written, fault highlighted with the reason as comment
    ws = book["Dòng gốc 1"]
    assert [c.value for c in ws[4]] == ["Dòng", *HEADER, "Lý do"]
    sent6 = [c.value for c in ws[5]][:1 + len(HEADER)]
    assert sent6 == [6, *ROWS[6]]
    sent7 = [c.value for c in ws[6]][:1 + len(HEADER)]
    assert sent7 == [7, *ROWS[7]]
    red = {c.column_letter for row in ws.iter_rows(min_row=5) for c in row
           if c.fill.fgColor.rgb and c.fill.fgColor.rgb.endswith("F4B6B6")}
    # column E (date, 1 + index 3), F (sector), H (members): Dòng is A
    assert red == {"E", "F", "H"}
    assert ws["E5"].comment.text.startswith("Ngày không hợp lệ")
    assert ws["D5"].value == '=HYPERLINK("http://evil")' and ws["D5"].data_type == "s" and ws["D5"].quotePrefix

    files = list(book["Tệp bị từ chối"].iter_rows(min_row=2, values_only=True))
    assert files == [("2020/lac-son/hong.xlsx", "(cả tệp)",
                      "Không mở được tệp (tệp hỏng hoặc có mật khẩu) [unreadable_file]",
                      "Mở lại tệp trên máy, bỏ mật khẩu, lưu lại dạng .xlsx rồi gửi lại.")]
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            body = z.read(name).decode("utf-8", "replace")
            assert "<f>" not in body and "<hyperlink" not in body


def test_csv_source_row(setup):
    raw, wh, out = setup
    path = next(p for p in build_feedback(2020, wh, out, raw) if "-148-" in p.name)
    book = openpyxl.load_workbook(path)
    ws = book["Dòng gốc 1"]
    assert [c.value for c in ws[4]][:7] == ["Dòng", "Tên THT", "Xã", "Ngày thành lập", "Lĩnh vực", "Tình trạng",
                                            "Số thành viên"]
    assert [c.value for c in ws[5]][:7] == [2, "THT Rau sạch", "Dân Chủ", "01/02/2020", "Nông nghiệp",
                                           "Đang hoạt động", "mười"]
    assert ws["G5"].fill.fgColor.rgb.endswith("F4B6B6")


def test_sample_feedback_lists_exactly_the_planted_problems(tmp_path):
    import json
    from functools import partial
    from unicodedata import normalize

    nfc = partial(normalize, "NFC")

    from outputs_fixture import PROJECT, sample_warehouse

    wh = sample_warehouse()
    truth = json.loads((PROJECT / "data" / "sample" / "ground_truth.json").read_text(encoding="utf-8"))
    raw = PROJECT / "data" / "raw"
    for year in (2018, 2019, 2020, 2021):
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


def test_only_the_latest_published_run_counts(setup):
    import duckdb

    from coop.feedback import collect_feedback

    raw, wh, _out = setup
    con = duckdb.connect(str(wh))
    con.execute("INSERT INTO audit.runs VALUES ('r0', TIMESTAMP '2021-01-09 01:00', TIMESTAMP '2021-01-09 01:02', "
                "'published', 10, 9, 1000, 1)")
    con.execute("INSERT INTO audit.runs VALUES ('r2', TIMESTAMP '2021-01-11 01:00', NULL, 'failed', 10, 0, 0, 0)")
    for run in ("r0", "r2"):
        con.execute("INSERT INTO audit.rejected_rows VALUES (?, '2020/lac-son/htx.xlsx', 'DS HTX', 5, 'members', "
                    "'12', 'cũ [not_integer]')", [run])
    con.close()
    (lac_son,) = [g for g in collect_feedback(2020, wh, raw) if g.key == "157"]
    assert sorted(c.row_number for c in lac_son.cells) == [6, 7, 7]


def test_nfd_folder_on_disk_is_found(tmp_path):
    import unicodedata

    from coop.feedback import resolve_source

    folder = tmp_path / "2019" / unicodedata.normalize("NFD", "Lương Sơn")
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("x", encoding="utf-8")
    found = resolve_source(tmp_path, "2019/Lương Sơn/a.csv")
    assert found is not None and found.read_text(encoding="utf-8") == "x"
    assert resolve_source(tmp_path, "2019/Lương Sơn/b.csv") is None


def test_sheet_starting_at_c4_is_shown_at_its_own_excel_columns(tmp_path):
    """Used range C4:I6: the reader's grid starts at column C, the clerk's file at A. The row
    as sent must sit under its own letters, the faulty date in F (not D), row 6 as row 6."""
    import xlsxwriter

    from coop.ingest import ingest_file

    raw = tmp_path / "raw"
    (raw / "2020" / "lac-son").mkdir(parents=True)
    src = raw / "2020" / "lac-son" / "lech.xlsx"
    wb = xlsxwriter.Workbook(src)
    ws = wb.add_worksheet("DS HTX")
    ws.write_row(3, 2, HEADER)  # C4: STT, D4 Mã số HTX, E4 Tên HTX, F4 Ngày cấp đăng ký, ..., I4 Thành viên
    ws.write_row(4, 2, [1, "5400100001", "HTX Nông nghiệp Ân Nghĩa", "06/05/2019", "Nông nghiệp",
                        "Đang hoạt động", 12])
    ws.write_row(5, 2, [2, "5400100002", "HTX Vận tải Mường Vang", "31/02/2020", "Nông nghiệp",
                        "Đang hoạt động", 9])  # F6: no 31 February
    wb.close()

    from coop.read import read_sheets

    assert read_sheets(src)[0].first_column == 2  # C, as openpyxl/Excel number it (A=0)
    # the pipeline's own verdict on the file, recorded as the warehouse would
    res = ingest_file(src, raw_dir=raw)
    rejected = [(res.source_file, r["sheet"], r["row_number"], r["column_name"], r["raw_value"], r["reason"])
                for r in res.rejected_rows.iter_rows(named=True)]
    assert [(r[2], r[3], r[4]) for r in rejected] == [(6, "established_on", "31/02/2020")]
    wh = make_fixture_warehouse(tmp_path / "wh.duckdb", rejected=rejected)

    (path,) = build_feedback(2020, wh, tmp_path / "out", raw, district="Lạc Sơn")
    sheet = openpyxl.load_workbook(path)["Dòng gốc 1"]
    # output column A holds the Excel row number; source column k (A=0) is output column k+2
    letters = [c.value for c in sheet[3]]
    assert letters[:10] == ["Cột", "A", "B", "C", "D", "E", "F", "G", "H", "I"]
    assert [c.value for c in sheet[4]][:10] == ["Dòng", "", "", *HEADER]
    row = [c.value for c in sheet[5]]
    assert row[0] == 6
    assert row[1] is None and row[2] is None  # A6, B6 are empty in the clerk's file
    assert row[3] == 2 and row[5] == "HTX Vận tải Mường Vang"
    # the faulty value under "F", highlighted, with the reason; nothing else red
    assert sheet["G3"].value == "F" and sheet["G5"].value == "31/02/2020"
    red = {c.coordinate for r in sheet.iter_rows(min_row=5) for c in r
           if c.fill.fgColor.rgb and c.fill.fgColor.rgb.endswith("F4B6B6")}
    assert red == {"G5"}
    assert sheet["G5"].comment is not None and "31/02/2020" in sheet["G5"].comment.text
    assert sheet["K4"].value == "Lý do"
