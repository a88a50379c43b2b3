"""Reading: cell types, Excel row numbers, header detection on every tolerated layout.

Every expected value is written by hand from ../shared/spec/forms.md."""

from __future__ import annotations

import datetime as dt

import pytest

from coop.ingest.read import CELL_DATE, CELL_ERROR, CELL_NUMBER, CELL_TEXT, form_sheet, read_sheets
from reader_fixtures import (
    Err, G, HO_TRO_HEAD, HTX_HEAD, THT_HEAD, ho_tro_row, htx_row, ingest, issues, rejected, tht_row,
    write_csv, write_ods, write_xls, write_xlsx,
)


def rows_of(result, form):
    return result.forms[form].sort("row_number").to_dicts()


# --------------------------------------------------------------------------- cell types
def test_cell_kinds_and_values_are_kept(tmp_path):
    p = write_xlsx(tmp_path / "k.xlsx", [G("S", [
        [1234.567], ["1234.567"], [dt.datetime(2020, 5, 6)], [Err("#N/A")], [Err("#DIV/0!")], [None], ["x"],
    ], row0=2)])
    (s,) = read_sheets(p)
    assert s.row_numbers == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    col = s.columns[0]
    kinds = s.kinds[0]
    assert kinds[2:] == [CELL_NUMBER, CELL_TEXT, CELL_DATE, CELL_ERROR, CELL_ERROR, None, CELL_TEXT]
    assert col[2] == 1234.567 and isinstance(col[2], float)
    assert col[3] == "1234.567"  # text stays text: the Vietnamese rules read it as 1234567
    assert col[4] == dt.datetime(2020, 5, 6)
    assert col[5] == "#N/A" and col[6] == "#DIV/0!"


def _official_htx_grid():
    """Title rows, two-row header with merged cells, (1)(2) column numbers, sections, a
    blank row, a total row, signature lines. Excel rows in the comments."""
    top = ["STT", "Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên",
           "Kết quả sản xuất kinh doanh", None]
    bottom = [None] * 7 + ["Doanh thu (triệu đồng)", "Lợi nhuận\n(triệu đồng)"]
    rows = [
        ["UBND HUYỆN LẠC SƠN"],                                            # 1
        ["DANH SÁCH HỢP TÁC XÃ NĂM 2020"],                                 # 2
        ["Đơn vị tính: triệu đồng"],                                       # 3
        [],                                                                 # 4
        top,                                                                # 5
        bottom,                                                             # 6
        [f"({i})" for i in range(1, 10)],                                   # 7
        ["I", None, "Nông nghiệp"],                                         # 8 section
        [1, "5400100001", "HTX Một", dt.datetime(2015, 3, 1), "Nông nghiệp", "Đang hoạt động", 20, 1234.567, 12.5],  # 9
        [],                                                                 # 10 blank
        [2, "5400100002", "HTX Hai", "01/02/2016", "Dịch vụ", "Hoạt động", 15, "3.240", "1,4"],  # 11
        ["II", None, "Vận tải"],                                            # 12 section
        [3, "0100200003", "HTX Ba", "05-06-2018", "Vận tải", "Tạm ngừng", 7, None, "-"],  # 13
        ["Tổng cộng", None, None, None, None, None, 42, 4474.567, 13.9],     # 14 total
        [],                                                                 # 15
        [None] * 8 + ["Lạc Sơn, ngày 15 tháng 01 năm 2021"],               # 16
        ["NGƯỜI LẬP BIỂU"] + [None] * 7 + ["TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH"],  # 17
    ]
    merges = [(4, i, 5, i) for i in range(7)] + [(4, 7, 4, 8)]
    return G("Biểu 01", rows, merges=merges)


def test_official_layout_two_row_header_sections_totals_footer(tmp_path):
    p = write_xlsx(tmp_path / "2020" / "157" / "bc.xlsx", [_official_htx_grid()])
    r = ingest(p)
    assert issues(r) == []
    assert rejected(r) == []
    got = rows_of(r, "HTX")
    assert [x["row_number"] for x in got] == [9, 11, 13]
    assert [x["reg_code"] for x in got] == ["5400100001", "5400100002", "0100200003"]  # leading zero kept
    assert [x["established_on"] for x in got] == [dt.date(2015, 3, 1), dt.date(2016, 2, 1), dt.date(2018, 6, 5)]
    assert [x["sector"] for x in got] == ["agriculture", "trade_services", "transport"]
    assert [x["status"] for x in got] == ["active", "active", "suspended"]
    assert [x["revenue"] for x in got] == [1234.567, 3240.0, None]   # numeric cell kept; "3.240" is 3240
    assert [x["profit"] for x in got] == [12.5, 1.4, None]           # "1,4" is 1.4; "-" is not reported
    assert [x["kind"] for x in got] == ["htx"] * 3 and [x["high_tech"] for x in got] == [False] * 3
    assert {x["sheet"] for x in got} == {"Biểu 01"}
    (info,) = r.sheets
    assert (info.form, info.header_row, info.rows_accepted, info.rows_rejected) == ("HTX", 6, 3, 0)


def test_no_diacritics_upper_case_units_line_breaks_free_order_unknown_columns(tmp_path):
    head = ["TT", "Ghi chú", "SO THANH VIEN (nguoi)", "TEN HOP TAC XA", "MA SO THUE", "NGAY THANH LAP\n(dd/mm/yyyy)",
            "Tinh trang  hoat dong", "LINH VUC", "Số điện thoại", "XA/PHUONG/THI TRAN"]
    rows = [
        ["DANH SACH HTX NAM 2020"],
        head,
        list(range(1, 11)),                                             # 1 2 3 ... numbers row
        ["A", None, None, "Nông nghiệp"],                               # section A
        [1, "mới", 9, "HTX Rau sạch", "'0101234567", "10/10/2019", "dang hoat dong", "nong nghiep", "0912", "Xa A"],
        ["B", None, None, "Dịch vụ"],                                   # section B
        [2, None, "30", "HTX Vận tải Bình An", "5400 100 009", "2020-12-31", "Giải thể", "Giao thong van tai", None, None],
        ["Cộng", None, 39],
    ]
    p = write_xlsx(tmp_path / "a.xlsx", [G("Sheet1", rows)])
    r = ingest(p)
    assert rejected(r) == [] and issues(r) == []
    got = rows_of(r, "HTX")
    assert [x["row_number"] for x in got] == [5, 7]
    assert got[0] == {**got[0], "reg_code": "0101234567", "name": "HTX Rau sạch", "members": 9, "commune": "Xa A",
                      "status": "active", "sector": "agriculture", "established_on": dt.date(2019, 10, 10)}
    assert got[1] == {**got[1], "reg_code": "5400100009", "members": 30, "status": "dissolved",
                      "sector": "transport", "established_on": dt.date(2020, 12, 31), "commune": None}


@pytest.mark.parametrize("writer,ext", [(write_xlsx, "xlsx"), (write_xls, "xls"), (write_ods, "ods")])
def test_used_range_below_row_one_keeps_excel_row_numbers(tmp_path, writer, ext):
    rows = [THT_HEAD, tht_row(1, "THT Chè Tân Minh"), [None], tht_row(2, "THT Mây tre đan", members=8, revenue=150.5)]
    p = writer(tmp_path / f"t.{ext}", [G("DS", rows, row0=3, col0=2)])
    r = ingest(p)
    assert rejected(r) == [] and issues(r) == []
    got = rows_of(r, "THT")
    # header on Excel row 4, data on rows 5 and 7
    assert [x["row_number"] for x in got] == [5, 7]
    assert [x["name"] for x in got] == ["THT Chè Tân Minh", "THT Mây tre đan"]
    assert [x["members"] for x in got] == [12, 8]
    assert [x["revenue"] for x in got] == [300.0, 150.5]
    assert [x["established_on"] for x in got] == [dt.date(2019, 5, 2)] * 2
    assert r.sheets[0].header_row == 4


def test_hidden_sheets_and_forms_recognized_by_header_not_name(tmp_path):
    sheets = [
        G("Tổng hợp", [["BẢNG TỔNG HỢP NHANH"], ["Hạng mục", "Số lượng"], ["Hợp tác xã", 40]], row0=1, col0=1),
        G("THT", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")]),               # holds form HTX
        G("HTX", [THT_HEAD, tht_row(1, "THT Một")]),                              # holds form THT
        G("Sheet3", [HO_TRO_HEAD, ho_tro_row(1, "5400100001")], hidden=True),    # hidden HO_TRO
    ]
    p = write_xlsx(tmp_path / "bc.xlsx", sheets)
    assert [s.visible for s in read_sheets(p)] == [True, True, True, False]
    r = ingest(p)
    assert issues(r) == [("Tổng hợp", "unrecognized_sheet", "ignored")]
    assert {f: df.height for f, df in r.forms.items()} == {"HTX": 1, "THT": 1, "HO_TRO": 1}
    assert r.forms["HTX"]["sheet"].to_list() == ["THT"]
    assert r.forms["THT"]["sheet"].to_list() == ["HTX"]
    ho = r.forms["HO_TRO"].to_dicts()[0]
    assert ho == {**ho, "sheet": "Sheet3", "reg_code": "5400100001", "support_type": "training", "amount": 25.0,
                  "participants": 40, "decision_no": "12/QĐ-UBND", "allocated_on": dt.date(2020, 6, 1), "row_number": 2}
    assert [(s.name, s.form) for s in r.sheets] == [("Tổng hợp", None), ("THT", "HTX"), ("HTX", "THT"),
                                                    ("Sheet3", "HO_TRO")]


def test_tht_told_from_htx_by_missing_reg_code(tmp_path):
    head = ["STT", "Tên đơn vị", "Xã", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"]
    p = write_xlsx(tmp_path / "x.xlsx", [G("S", [head, [1, "Tổ Mây tre", "Xã A", "01/01/2019", "TTCN", "Hoạt động", 5]])])
    r = ingest(p)
    assert list(r.forms) == ["THT"]
    assert r.forms["THT"].to_dicts()[0]["sector"] == "handicraft"


def test_csv_with_bom_semicolon_multiline_header_and_text_numbers(tmp_path):
    text = (
        'DANH SACH HTX NAM 2020;;;;;;;\r\n'                                              # line 1
        'Mã số HTX;"Tên HTX";Ngày thành lập;Lĩnh vực;Tình trạng;"Số thành\nviên";Doanh thu;Thu nhập BQ\r\n'  # 2-3
        '5400100001;HTX Một;01/02/2015;Nông nghiệp;Đang hoạt động;1.200;1.234,5;4,2\r\n'   # 4
        ';;;;;;;\r\n'                                                                       # 5 blank
        '0100100002;  HTX   Hai ;2016-03-04;Du lịch;Hoạt động;12 700;1.4;-\r\n'            # 6
    )
    p = write_csv(tmp_path / "htx-2020.csv", text, bom=True)
    r = ingest(p)
    assert rejected(r) == [] and issues(r) == []
    got = rows_of(r, "HTX")
    assert [x["row_number"] for x in got] == [4, 6]
    assert {x["sheet"] for x in got} == {"htx-2020"}
    assert [x["name"] for x in got] == ["HTX Một", "HTX Hai"]
    assert [x["members"] for x in got] == [1200, 12700]
    assert [x["revenue"] for x in got] == [1234.5, 1.4]
    assert [x["income"] for x in got] == [4.2, None]
    assert [x["established_on"] for x in got] == [dt.date(2015, 2, 1), dt.date(2016, 3, 4)]
    assert [x["reg_code"] for x in got] == ["5400100001", "0100100002"]


def test_csv_comma_without_bom(tmp_path):
    text = ("Tên THT,Xã,Ngày thành lập,Lĩnh vực,Tình trạng,Thành viên,Lợi nhuận\n"
            'THT Một,Xã A,3/4/2018,Điện,Hoạt động,6,"1,5"\n')
    r = ingest(write_csv(tmp_path / "tht.csv", text))
    (row,) = rows_of(r, "THT")
    assert (row["row_number"], row["name"], row["sector"], row["profit"], row["established_on"]) == \
        (2, "THT Một", "electricity", 1.5, dt.date(2018, 4, 3))


def test_form_sheet_skips_counted(tmp_path):
    p = write_xlsx(tmp_path / "o.xlsx", [_official_htx_grid()])
    (s,) = read_sheets(p)
    fs = form_sheet(s)
    assert fs.form == "HTX" and fs.header_row == 6
    assert [s.row_numbers[i] for i in fs.data_rows] == [9, 11, 13]
    # rows 10 and 15 are truly blank (not counted); 16-17 are the signature block
    assert fs.skipped == {"column_numbers": 1, "section": 2, "total": 1, "signature": 2}
    assert fs.columns["revenue"] == 7 and fs.columns["profit"] == 8


def test_no_header_sheet_is_none(tmp_path):
    p = write_xlsx(tmp_path / "n.xlsx", [G("Thư", [["Kính gửi: UBND tỉnh"], ["Tên đơn vị", "Ghi chú"]])])
    (s,) = read_sheets(p)
    assert form_sheet(s) is None


def test_section_labels_in_name_column_without_stt_and_typed_cells(tmp_path):
    head = ["Mã số thuế", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên", "UDCNC"]
    rows = [
        head,
        [None, "I. NÔNG NGHIỆP"],                                                      # 2 section
        ["5400100001", "HTX Một", 43900, "Nông nghiệp", "Hoạt động", 10, True],        # 3 serial date, bool yes
        [None, "B) Dịch vụ", None, None, None, 3],                                     # 4 section
        [5400100002, "HTX Hai", "2019-01-31", "Dịch vụ", "Hoạt động", 4, "Không"],      # 5 numeric code
        [None, "Tổng số", None, None, None, 14],                                       # 6 total
    ]
    r = ingest(write_xlsx(tmp_path / "s.xlsx", [G("S", rows)]))
    assert rejected(r) == [] and issues(r) == []
    got = rows_of(r, "HTX")
    assert [x["row_number"] for x in got] == [3, 5]
    assert [x["established_on"] for x in got] == [dt.date(2020, 3, 10), dt.date(2019, 1, 31)]  # serial 43900
    assert [x["high_tech"] for x in got] == [True, False]
    assert [x["reg_code"] for x in got] == ["5400100001", "5400100002"]


def test_xlsm_is_read_like_xlsx(tmp_path):
    p = write_xlsx(tmp_path / "a.xlsx", [G("S", [THT_HEAD, tht_row(1, "THT Một")])])
    q = tmp_path / "a.xlsm"
    q.write_bytes(p.read_bytes())
    assert rows_of(ingest(q), "THT")[0]["name"] == "THT Một"


def test_csv_in_an_unsupported_code_page_is_unreadable(tmp_path):
    """UTF-16 (BOM) and Windows-1258 are decoded (tests/test_legacy_text.py); a CSV in a code page that
    is neither UTF-8 nor Vietnamese is rejected whole with a reason naming the encodings accepted."""
    p = tmp_path / "htx.csv"
    p.write_bytes("Название;Город\nТест;Москва\nПривет;мир\n".encode("cp1251"))
    r = ingest(p)
    assert issues(r) == [("", "unreadable_file", "rejected")]
    assert "UTF-8" in r.file_issues[0].reason and "Windows-1258" in r.file_issues[0].reason