"""Nothing silently lost in a sheet's layout (issue 9, reading part A).

Every non-blank row below a recognised header is loaded, quarantined, or counted as skipped
with its kind (title, column_numbers, section, total, signature, no_data); a truly blank row
is not counted. The non-blank rows are counted here independently of the reader (the
workbook's XML with zipfile + ElementTree for .xlsx — checked equal to openpyxl on the sample —,
odfpy for .ods, fastexcel's raw string load for .xls, the csv module for .csv),
on a seeded subset of the shipped sample (one file of every year and layout) and on small
hand-made workbooks whose planted rows give the expected counts. Expected figures are
written by hand, never taken from the reader's output.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from collections import defaultdict
from pathlib import Path

import pytest

from coop.ingest.read import SKIP_KINDS, Sheet, CELL_TEXT, form_sheet, read_sheets
from tests.reader_fixtures import (
    G, HO_TRO_HEAD, HTX_HEAD, THT_HEAD, ho_tro_row, htx_row, ingest, issues, rejected, tht_row, write_csv,
    write_xlsx,
)

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"
READABLE = (".xlsx", ".xlsm", ".xls", ".ods", ".csv")


# --------------------------------------------------------------------------- independent counting
def _nonblank(v) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
       "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}


def _rows_xlsx(path: Path) -> dict[str, set[int]]:
    """From the workbook's XML itself (zipfile + ElementTree): a row counts when one of its
    cells has a formula, an inline string, a value, or a shared string that is not blank."""
    import posixpath
    import zipfile
    from xml.etree import ElementTree as ET

    m = "{%s}" % _NS["m"]
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        shared = []
        if "xl/sharedStrings.xml" in names:
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", _NS):
                shared.append("".join(t.text or "" for t in si.iter(m + "t")))
        rels = {r.get("Id"): r.get("Target") for r in ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
                .findall("rel:Relationship", _NS)}
        out = {}
        for sh in ET.fromstring(z.read("xl/workbook.xml")).find("m:sheets", _NS):
            target = rels[sh.get("{%s}id" % _NS["r"])]
            part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
            rows = set()
            for row in ET.fromstring(z.read(part)).iter(m + "row"):
                for c in row.findall("m:c", _NS):
                    v = c.find("m:v", _NS)
                    text = "".join(t.text or "" for t in c.iter(m + "t"))  # inline string
                    if c.find("m:f", _NS) is not None or text.strip():
                        filled = True
                    elif v is None or v.text is None:
                        filled = False
                    elif c.get("t") == "s":
                        filled = bool(shared[int(v.text)].strip())
                    else:
                        filled = bool(v.text.strip())
                    if filled:
                        rows.add(int(row.get("r")))
                        break
            out[sh.get("name")] = rows
    return out


def _rows_ods(path: Path) -> dict[str, set[int]]:
    from odf import teletype
    from odf.opendocument import load
    from odf.table import Table, TableCell, TableRow

    out = {}
    for t in load(str(path)).spreadsheet.getElementsByType(Table):
        rows, r = set(), 0
        for tr in t.getElementsByType(TableRow):
            rep = int(tr.getAttribute("numberrowsrepeated") or 1)
            filled = any(c.getAttribute("valuetype") or teletype.extractText(c).strip()
                         for c in tr.getElementsByType(TableCell))
            if filled:
                rows.update(range(r + 1, r + rep + 1))
            r += rep
        out[t.getAttribute("name")] = rows
    return out


def _rows_xls(path: Path) -> dict[str, set[int]]:
    import fastexcel

    reader = fastexcel.read_excel(path)
    out = {}
    for name in reader.sheet_names:
        sheet = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string")
        batch, errors = sheet.to_arrow_with_errors()
        rows = {i + 1 for j in range(batch.num_columns) for i, v in enumerate(batch.column(j).to_pylist())
                if _nonblank(v)}
        rows |= {e.position[0] + 1 for e in (errors.errors if errors is not None else [])}
        out[name] = rows
    return out


def _rows_csv(path: Path) -> dict[str, set[int]]:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1258", errors="replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    rows, start = set(), 1
    for rec in reader:
        if any(_nonblank(v) for v in rec):
            rows.add(start)
        start = reader.line_num + 1
    return {path.stem: rows}


def nonblank_rows(path: Path) -> dict[str, set[int]]:
    """Sheet name -> Excel row numbers (CSV: the line a record starts on) of the rows with at
    least one cell that is not empty or only spaces — read without the code under test."""
    ext = path.suffix.lower()
    return {".xlsx": _rows_xlsx, ".xlsm": _rows_xlsx, ".ods": _rows_ods, ".xls": _rows_xls,
            ".csv": _rows_csv}[ext](path)


def assert_accounted(result, path: Path) -> dict[str, int]:
    """For every sheet of `result` read as a form: loaded + quarantined + skipped (all kinds)
    = its non-blank rows below the header, counted independently. Returns those counts."""
    rejected_sheets = {i.sheet for i in result.file_issues if i.severity == "rejected"}
    out = {}
    checked = [s for s in result.sheets if s.form and s.name not in rejected_sheets and not result.rejected]
    counted = nonblank_rows(path) if checked else {}
    for s in checked:
        assert s.header_row is not None, (path, s.name)
        assert set(s.rows_skipped) <= set(SKIP_KINDS), s.rows_skipped
        below = sum(1 for r in counted[s.name] if r > s.header_row)
        got = s.rows_accepted + s.rows_rejected + sum(s.rows_skipped.values())
        assert got == below, (f"{path.name} / {s.name}: loaded {s.rows_accepted} + quarantined {s.rows_rejected} "
                              f"+ skipped {s.rows_skipped} = {got}, non-blank rows below header row "
                              f"{s.header_row}: {below}")
        out[s.name] = below
    return out


def sheet_info(result, name: str | None = None):
    return next(s for s in result.sheets if name is None or s.name == name)


def counts(result, name: str | None = None) -> tuple[int, int, dict[str, int]]:
    s = sheet_info(result, name)
    return s.rows_accepted, s.rows_rejected, dict(s.rows_skipped)


# --------------------------------------------------------------------------- the shipped sample
def _sample_subset(seed: int = 9) -> list[Path]:
    """One file of every (year, layout) of the shipped sample (the generator names a layout's
    file the same way every year: 'Bao cao KTTT 2020.xlsx', 'bieu-mau-2020.xlsx', …), chosen
    with a fixed seed: 104 of the 323 files, every year, every format and layout."""
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for p in sorted(RAW.rglob("*")):
        if p.is_file() and p.suffix.lower() in READABLE:
            rel = p.relative_to(RAW)
            groups[(rel.parts[0], re.sub(r"\d{4}", "Y", p.name))].append(p)
    rng = random.Random(seed)
    return [rng.choice(files) for _, files in sorted(groups.items())]


@pytest.fixture(scope="module")
def sample_results():
    from coop.ingest.discover import discover
    from coop.ingest.normalize import ingest_file
    from coop.reference import load_reference

    ref = load_reference()
    raws, _ = discover(RAW, ref)
    by_path = {r.path.resolve(): r for r in raws}
    chosen = _sample_subset()
    return [(p, ingest_file(by_path[p.resolve()], ref)) for p in chosen if p.resolve() in by_path]


def test_sample_subset_covers_every_year_and_layout():
    chosen = _sample_subset()
    years = {p.relative_to(RAW).parts[0] for p in chosen}
    all_years = {p.name for p in RAW.iterdir() if p.is_dir() and p.name.isdigit()}
    assert years == all_years
    assert len(chosen) >= 60
    assert {p.suffix.lower() for p in chosen} == {".xlsx", ".xls", ".ods", ".csv"}


def test_every_sample_sheet_accounts_for_every_nonblank_row(sample_results):
    sheets = 0
    totals = dict.fromkeys(SKIP_KINDS, 0)
    for path, result in sample_results:
        sheets += len(assert_accounted(result, path))
        for s in result.sheets:
            for k, v in s.rows_skipped.items():
                totals[k] += v
    assert sheets >= 150
    # the sample's official layouts carry column numbers, sections, totals and signatures
    assert totals["column_numbers"] > 0 and totals["section"] > 0 and totals["total"] > 0
    assert totals["signature"] > 0
    # the generator writes every signature block as two rows: the date line, then the captions
    assert totals["signature"] % 2 == 0


def test_sample_quarantine_is_only_the_planted_rows(sample_results):
    """No layout row (signature, total, section) of the sample is quarantined: every
    quarantined row of the subset is one the generator planted (ground truth)."""
    import json

    truth = json.loads((RAW.parent / "sample" / "ground_truth.json").read_text(encoding="utf-8"))
    planted = {(d["source_file"], d["sheet"], d["row_number"]) for d in truth["invalid_rows"]}
    superseded = {d["source_file"] for d in truth["superseded"]}  # its rows count nowhere in the truth
    for _, result in sample_results:
        if result.source_file in superseded:
            continue
        for d in result.rejected_rows.to_dicts():
            assert (d["source_file"], d["sheet"], d["row_number"]) in planted, d


# --------------------------------------------------------------------------- header at any depth
def _htx(n: int, code: str, name: str, **over):
    return htx_row(n, code, name, **over)


def test_header_in_row_41_is_found_and_every_row_counted(tmp_path):
    preamble = [["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"], ["Độc lập - Tự do - Hạnh phúc"]]
    preamble += [[f"Đoạn {k}: báo cáo tình hình kinh tế tập thể của huyện, số liệu kèm theo."] for k in range(1, 31)]
    preamble += [["Bảng tóm tắt", 12, 45.5], ["Năm trước", 10, 40]]       # numbers: no header candidate
    preamble += [[f"Ghi chú {k}"] for k in range(1, 7)]                     # rows 35-40
    assert len(preamble) == 40
    rows = preamble + [
        HTX_HEAD,                                                           # 41
        _htx(1, "5400100001", "HTX Một"),                                   # 42
        _htx(2, "5400100002", "HTX Hai"),                                   # 43
        [],                                                                 # 44 blank
        _htx(3, "5400100003", "HTX Ba"),                                    # 45
        ["Tổng cộng"] + [None] * 7 + [60],                                  # 46 total
        [None, None, "Lạc Sơn, ngày 15 tháng 01 năm 2021"],                  # 47 signature (name column)
        [None, None, "NGƯỜI LẬP BIỂU"],                                     # 48 signature
        [None, None, "(Ký, ghi rõ họ tên)"],                                # 49 signature
        [],                                                                 # 50 blank
        [None, None, "Nguyễn Văn An"],                                      # 51 the signer's name
    ]
    p = write_xlsx(tmp_path / "2020" / "157" / "sau.xlsx", [G("S", rows)])
    r = ingest(p)
    assert issues(r) == [] and rejected(r) == []
    assert sheet_info(r).header_row == 41
    assert counts(r) == (3, 0, {"total": 1, "signature": 4})
    assert assert_accounted(r, p) == {"S": 8}


def test_header_scan_below_the_top_rows_is_linear_and_cheap(monkeypatch):
    """A 20,000-row sheet of unique text with no header: the rows below the top ones are
    screened without the costly header matching (bounded cost), and no form is found."""
    import coop.ingest.read as read

    n = 20_000
    cols = [[f"Hộ kinh doanh số {i}" for i in range(n)], [f"Thôn {i % 97} xã {i}" for i in range(n)],
            [f"ghi chú riêng {i}" for i in range(n)]]
    sheet = Sheet("S", True, list(range(1, n + 1)), cols, [[CELL_TEXT] * n for _ in cols])
    form_sheet(Sheet("W", True, [1], [["x"]], [[CELL_TEXT]]))  # one-time set-up (alias tables) outside the count
    calls = []
    real = read.header_key
    monkeypatch.setattr(read, "header_key", lambda s: calls.append(s) or real(s))
    read._is_alias.cache_clear()
    assert form_sheet(sheet) is None
    assert len(calls) <= read.HEADER_SCAN_ROWS * len(cols) + 10


# --------------------------------------------------------------------------- three-row merged header
def test_three_row_merged_header_is_recognised(tmp_path):
    top = ["STT", "Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Tình hình hoạt động",
           None, None, None, None]
    mid = [None] * 6 + ["Số thành viên", "Số lao động", "Kết quả sản xuất kinh doanh", None, None]
    low = [None] * 8 + ["Doanh thu (triệu đồng)", "Lợi nhuận", "Thu nhập bình quân"]
    merges = [(1, i, 3, i) for i in range(6)] + [(1, 6, 1, 10), (2, 6, 3, 6), (2, 7, 3, 7), (2, 8, 2, 10)]
    rows = [
        ["DANH SÁCH HỢP TÁC XÃ NĂM 2020"],                                                 # 1
        top, mid, low,                                                                     # 2-4
        [f"({i})" for i in range(1, 12)],                                                  # 5 column numbers
        [1, "5400100001", "HTX Một", dt.datetime(2015, 3, 1), "Nông nghiệp", "Hoạt động", 20, 8, 1500, 120, 4.5],
        [2, "5400100002", "HTX Hai", dt.datetime(2016, 4, 1), "Dịch vụ", "Hoạt động", 15, 5, 900, 60, 4.0],
        [3, "5400100003", "HTX Ba", dt.datetime(2017, 5, 1), "Vận tải", "Tạm ngừng", 9, None, None, None, None],
        ["Cộng", None, None, None, None, None, 44, 13, 2400, 180],                          # 9 total
    ]
    p = write_xlsx(tmp_path / "m.xlsx", [G("S", rows, merges=merges)])
    (s,) = read_sheets(p)
    fs = form_sheet(s)
    assert fs.form == "HTX" and fs.header_row == 4
    assert {c: fs.columns[c] for c in ("members", "workers", "revenue", "profit", "income")} == \
        {"members": 6, "workers": 7, "revenue": 8, "profit": 9, "income": 10}
    r = ingest(p)
    assert rejected(r) == [] and issues(r) == []
    assert counts(r) == (3, 0, {"column_numbers": 1, "total": 1})
    got = sorted(r.forms["HTX"].select("row_number", "members", "revenue").rows())
    assert got == [(6, 20, 1500.0), (7, 15, 900.0), (8, 9, None)]
    assert_accounted(r, p)


# --------------------------------------------------------------------------- signature blocks
def test_signature_blocks_wherever_they_fall_are_never_quarantined(tmp_path):
    rows = [
        HTX_HEAD,                                                                  # 1
        _htx(1, "5400100001", "HTX Một"),                                          # 2
        _htx(2, "5400100002", "HTX Hai"),                                          # 3
        ["Nơi nhận:"],                                                             # 4 signature (caption)
        ["- Như trên;"],                                                           # 5 …its lines
        ["- Lưu: VT."],                                                            # 6
        [None, None, "Hòa Bình, ngày 10 tháng 01 năm 2021"],                        # 7 date in the name column
        [None, None, "THỦ TRƯỞNG ĐƠN VỊ", None, None, None, None, None, None, None, "KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH"],
        [None, None, "(Ký tên, đóng dấu)"],                                        # 9
        [None, None, "Nguyễn Thị Hoa", None, None, None, None, None, None, None, "Đinh Văn Tuấn"],  # 10 names
    ]
    # a second sheet: the block starts in the STT and code columns, the date has dots
    rows2 = [
        THT_HEAD,                                                                  # 1
        tht_row(1, "THT Rau sạch Bản Mới"),                                        # 2
        ["Người lập biểu", None, None, None, None, "Thủ trưởng đơn vị"],           # 3
        ["(Ký, ghi rõ họ tên)", None, None, None, None, "(Ký, họ tên, đóng dấu)"], # 4
        [None, "Lê Văn Nam"],                                                      # 5 the signer in the name column
        [None, "……, ngày …… tháng …… năm 2021"],                                   # 6
    ]
    p = write_xlsx(tmp_path / "2020" / "157" / "ky.xlsx", [G("HTX", rows), G("THT", rows2)])
    r = ingest(p)
    assert issues(r) == [] and rejected(r) == []
    assert counts(r, "HTX") == (2, 0, {"signature": 7})
    assert counts(r, "THT") == (1, 0, {"signature": 4})
    assert assert_accounted(r, p) == {"HTX": 9, "THT": 5}


def test_signature_block_in_a_csv_is_never_quarantined(tmp_path):
    text = ("STT,Tên tổ hợp tác,Xã,Ngày chứng thực hợp đồng,Lĩnh vực,Tình trạng,Số thành viên\n"   # 1
            "1,THT Chè Đồi Bương,Xã Tân Lập,02/05/2019,Nông nghiệp,Hoạt động,12\n"                  # 2
            "2,THT Mây tre,Xã Tân Lập,03/06/2018,TTCN,Hoạt động,8\n"                                # 3
            ",,,,,,\n"                                                                               # 4 blank
            ",\"Tân Lạc, ngày 12 tháng 01 năm 2021\",,,,,\n"                                         # 5
            "NGƯỜI LẬP BIỂU,,,,THỦ TRƯỞNG ĐƠN VỊ,,\n"                                                # 6
            ",\"(Ký, ghi rõ họ tên)\",,,,,\n"                                                        # 7
            ",Bùi Thị Lan,,,Đinh Công Sơn,,\n")                                                     # 8
    p = write_csv(tmp_path / "tht.csv", text)
    r = ingest(p)
    assert issues(r) == [] and rejected(r) == []
    assert counts(r) == (2, 0, {"signature": 4})
    assert assert_accounted(r, p) == {"tht": 6}


# --------------------------------------------------------------------------- totals, sections, names
def test_names_starting_tong_or_cong_are_records_not_totals(tmp_path):
    htx = [
        HTX_HEAD,                                                                  # 1
        _htx(1, "5400100001", "HTX Tổng hợp Bản Mới"),                             # 2
        _htx(2, "5400100002", "Tổng công ty Sông Đà 5"),                           # 3 a company's name
        _htx(3, "5400100003", "Cộng đồng Du lịch Bản Lác", sector="Du lịch"),       # 4
        ["Tổng cộng"] + [None] * 7 + [60, 30],                                     # 5 total
    ]
    tht = [
        THT_HEAD,                                                                  # 1
        tht_row(1, "THT Đồi Chè"),                                                 # 2
        [2, "Cộng đồng chăn nuôi Bản Lác", "Xã Tân Lập", None, "Nông nghiệp", "Hoạt động", 9, 100],  # 3 no date
        [3, "Tổng đội thanh niên xung kích", "Xã Tân Lập", None, "Dịch vụ", "Hoạt động", 11],        # 4 no date
        [None, "Cộng", None, None, None, None, 32, 400],                           # 5 total
        ["Tổng số"],                                                               # 6 total
    ]
    p = write_xlsx(tmp_path / "2020" / "157" / "t.xlsx", [G("HTX", htx), G("THT", tht)])
    r = ingest(p)
    assert issues(r) == []
    assert counts(r, "HTX") == (3, 0, {"total": 1})
    assert sorted(r.forms["HTX"]["name"].to_list()) == ["Cộng đồng Du lịch Bản Lác", "HTX Tổng hợp Bản Mới",
                                                        "Tổng công ty Sông Đà 5"]
    assert counts(r, "THT") == (1, 2, {"total": 2})
    assert rejected(r) == [("THT", 3, "established_on", "missing_value"),
                           ("THT", 4, "established_on", "missing_value")]
    assert assert_accounted(r, p) == {"HTX": 4, "THT": 5}


def test_letter_stt_with_a_name_and_members_is_a_data_row(tmp_path):
    rows = [
        THT_HEAD,                                                                  # 1
        ["A", "Lĩnh vực nông nghiệp"],                                             # 2 section
        ["a", "Trồng trọt", None, None, None, None, 40],                          # 3 a name and members: data
        ["b", "Nhóm hộ nuôi ong Suối Hoa", None, None, None, None, 9],             # 4 a name and members: data
        ["c", "Tổ hợp tác Đồi Chè"],                                               # 5 a cooperative's name: data
        ["B", "Dịch vụ", None, None, None, None, 21],                              # 6 section with a subtotal
        [1, "THT Vận tải Hòa Bình", "Xã Tân Lập", dt.datetime(2019, 5, 2), "Vận tải", "Hoạt động", 21],  # 7
        ["II.", "LĨNH VỰC KHÁC"],                                                  # 8 section
    ]
    p = write_xlsx(tmp_path / "2020" / "157" / "l.xlsx", [G("S", rows)])
    r = ingest(p)
    assert issues(r) == []
    got = {(row, col) for _, row, col, _ in rejected(r)}
    # rows 3, 4, 5 are records missing their date (and sector, status...): quarantined, not skipped
    assert {row for row, _ in got} == {3, 4, 5}
    assert (4, "established_on") in got and (5, "members") in got
    assert counts(r) == (1, 3, {"section": 3})
    assert assert_accounted(r, p) == {"S": 7}


def test_full_row_with_empty_name_is_quarantined_not_skipped(tmp_path):
    head = HTX_HEAD + ["Ghi chú"]
    rows = [
        head,                                                                      # 1
        _htx(1, "5400100001", "HTX Một") + [None],                                 # 2
        _htx(2, "5400100002", None) + [None],                                      # 3 every cell but the name
        [3, None, None, None, None, None, None, None, 25, 12, 800],               # 4 members, workers, revenue
        [4] + [None] * 16,                                                         # 5 an STT alone
        [None] * 16 + ["đã kiểm tra"],                                             # 6 a note outside the form
        [5, "-", "-", "-"],                                                        # 7 dashes: nothing reported
    ]
    p = write_xlsx(tmp_path / "2020" / "157" / "n.xlsx", [G("S", rows)])
    r = ingest(p)
    assert issues(r) == []
    rej = rejected(r)
    assert ("S", 3, "name", "missing_value") in rej
    assert {row for _, row, _, _ in rej} == {3, 4}
    assert counts(r) == (1, 2, {"no_data": 3})
    assert assert_accounted(r, p) == {"S": 6}


def test_repeated_header_column_numbers_notes_and_titles_are_counted(tmp_path):
    rows = [
        ["DANH SÁCH HỢP TÁC XÃ"],                                                  # 1
        HTX_HEAD,                                                                  # 2
        list(range(1, 17)),                                                        # 3 column numbers
        [None] * 6 + ["(người)", "(người)", "(triệu đồng)", "(triệu đồng)"],       # 4 a line of units
        _htx(1, "5400100001", "HTX Một"),                                          # 5
        ["TRANG 2: CÁC HỢP TÁC XÃ CÒN LẠI"],                                       # 6 a title in capitals
        HTX_HEAD,                                                                  # 7 the header again
        list(range(1, 17)),                                                        # 8 column numbers again
        _htx(2, "5400100002", "HTX Hai"),                                          # 9
        ["Ghi chú: số liệu đến 31/12/2020"],                                       # 10 a note
        [None, None, "Đơn vị tính: triệu đồng"],                                   # 11 a note in the name column
    ]
    p = write_xlsx(tmp_path / "2020" / "157" / "p.xlsx", [G("S", rows)])
    r = ingest(p)
    assert issues(r) == [] and rejected(r) == []
    assert sheet_info(r).header_row == 2
    assert counts(r) == (2, 0, {"column_numbers": 2, "title": 5})
    assert assert_accounted(r, p) == {"S": 9}


# --------------------------------------------------------------------------- two tables side by side
_HTX8 = ["STT", "Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên", "Doanh thu"]


def _htx8(n, code, name):
    return [n, code, name, dt.datetime(2015, 3, 1), "Nông nghiệp", "Hoạt động", 20, 1500]


def _side_by_side(left_head, left_rows, right_head, right_rows, gap=1):
    width = len(left_head)
    rows = [left_head + [None] * gap + right_head]
    for k in range(max(len(left_rows), len(right_rows))):
        lr = left_rows[k] if k < len(left_rows) else [None] * width
        rr = right_rows[k] if k < len(right_rows) else []
        rows.append(list(lr) + [None] * (width - len(lr)) + [None] * gap + list(rr))
    return rows


def test_two_forms_side_by_side_are_rejected_never_mixed(tmp_path):
    rows = _side_by_side(_HTX8, [_htx8(1, "5400100001", "HTX Một"), _htx8(2, "5400100002", "HTX Hai")],
                         HO_TRO_HEAD, [ho_tro_row(1, "5400100009"), ho_tro_row(2, "5400100008"),
                                       ho_tro_row(3, "5400100007")])
    p = write_xlsx(tmp_path / "2020" / "157" / "hai.xlsx", [G("S", rows)])
    r = ingest(p)
    assert r.forms == {} and rejected(r) == []
    (issue,) = r.file_issues  # the sheet is rejected, and it says why (no "no form" for the file)
    assert (issue.sheet, issue.reason_code, issue.severity) == ("S", "two_tables_on_sheet", "rejected")
    assert issue.reason.startswith("Trang 'S' có hai bảng đặt cạnh nhau: danh sách HTX ở cột A–H và "
                                   "kinh phí hỗ trợ ở cột J–P (dòng tiêu đề 1)")
    assert "header row 1: HTX in columns A-H, HO_TRO in columns J-P" in issue.reason
    assert issue.reason.endswith("[two_tables_on_sheet]")
    s = sheet_info(r)
    assert (s.form, s.rows_accepted, s.rows_rejected, s.rows_skipped) == ("HTX", 0, 0, {})


def test_register_without_code_beside_another_table_is_rejected(tmp_path):
    """The reproduction: a register without a code column beside a support table whose
    'Mã số HTX' would have been taken as the register's reg_code. Another sheet still loads."""
    left = ["STT", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"]
    rows = _side_by_side(left, [[1, "HTX Một", dt.datetime(2015, 3, 1), "Nông nghiệp", "Hoạt động", 20]],
                         HO_TRO_HEAD, [ho_tro_row(1, "5400100009")], gap=2)
    good = [THT_HEAD, tht_row(1, "THT Một"), tht_row(2, "THT Hai")]
    p = write_xlsx(tmp_path / "2020" / "157" / "hai2.xlsx", [G("Hai bảng", rows), G("THT", good)])
    r = ingest(p)
    assert not r.rejected
    assert issues(r) == [("Hai bảng", "two_tables_on_sheet", "rejected")]
    assert set(r.forms) == {"THT"} and r.forms["THT"].height == 2
    assert "HO_TRO" not in r.forms and rejected(r) == []
    reason = r.file_issues[0].reason
    assert "cột A–F" in reason and "cột I–O" in reason
    assert counts(r, "THT") == (2, 0, {})


def _gap_at(row, k):
    return list(row[:k]) + [None] + list(row[k:])


def test_one_table_with_an_empty_column_or_a_note_beside_it_loads(tmp_path):
    # an empty column (no header, no value) inside the register: still one table, whether the
    # part left of it is a form by itself (A) or not (C)
    rows = [_gap_at(_HTX8, 5)] + [_gap_at(_htx8(k, f"540010000{k}", f"HTX {k}"), 5) for k in (1, 2, 3)]
    rows_c = [_gap_at(_HTX8, 4)] + [_gap_at(_htx8(k, f"540010001{k}", f"HTX {k}"), 4) for k in (1, 2)]
    # a small table of notes beside a register (no form's header in it): ignored, never mixed
    rows2 = _side_by_side(_HTX8, [_htx8(1, "5400100021", "HTX Một")],
                          ["Hạng mục", "Số lượng"], [["HTX mới", 3], ["HTX giải thể", 1], ["Tổ hợp tác", 7]])
    p = write_xlsx(tmp_path / "2020" / "157" / "mot.xlsx", [G("A", rows), G("B", rows2), G("C", rows_c)])
    r = ingest(p)
    assert issues(r) == [] and rejected(r) == []
    assert counts(r, "A") == (3, 0, {})
    assert counts(r, "B") == (1, 0, {"no_data": 2})  # the notes table's rows below the register's last
    assert counts(r, "C") == (2, 0, {})
    for sheet, n in (("A", 3), ("C", 2)):
        got = r.forms["HTX"].filter(r.forms["HTX"]["sheet"] == sheet)
        assert got["status"].to_list() == ["active"] * n and got["members"].to_list() == [20] * n
        assert got["revenue"].to_list() == [1500.0] * n
    assert assert_accounted(r, p) == {"A": 3, "B": 3, "C": 2}


# --------------------------------------------------------------------------- where the counts go
def _official(tmp_path) -> Path:
    rows = [
        ["UBND HUYỆN LẠC SƠN"], [],
        ["STT", "Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"],  # 3
        [f"({i})" for i in range(1, 8)],                                           # 4
        ["I", None, "Nông nghiệp"],                                                # 5
        [1, "5400100001", "HTX Một", dt.datetime(2015, 3, 1), "Nông nghiệp", "Hoạt động", 20],
        [2, "5400100002", "HTX Hai", "31/02/2016", "Nông nghiệp", "Hoạt động", 15],  # 7 invalid date
        ["Tổng cộng", None, None, None, None, None, 35],                           # 8
        ["Ghi chú: không"],                                                        # 9
        [None, None, "NGƯỜI LẬP BIỂU"],                                            # 10
    ]
    return write_xlsx(tmp_path / "2020" / "157" / "o.xlsx", [G("Biểu 01", rows)])


EXPECTED_SKIPPED = {"column_numbers": 1, "section": 1, "total": 1, "title": 1, "signature": 1}


def test_skipped_counts_survive_the_parsed_file_cache(tmp_path):
    from coop.run.store import load_result, store_result

    r = ingest(_official(tmp_path))
    assert counts(r) == (1, 1, EXPECTED_SKIPPED)
    store_result(tmp_path / "state", "k1", r)
    back = load_result(tmp_path / "state", "k1")
    assert [(s.name, s.form, s.rows_accepted, s.rows_rejected, s.header_row, s.rows_skipped) for s in back.sheets] \
        == [("Biểu 01", "HTX", 1, 1, 3, EXPECTED_SKIPPED)]


def test_audit_sheets_has_one_commented_column_per_kind(tmp_path):
    from coop.warehouse.load import SHEET_SKIP_COLUMNS, create_tables, load_results, open_build

    assert list(SHEET_SKIP_COLUMNS) == list(SKIP_KINDS)
    r = ingest(_official(tmp_path))
    con = open_build(tmp_path / "b.duckdb")
    try:
        create_tables(con)
        stats = load_results(con, [r], "run1")
        cols = con.execute("SELECT column_name, data_type, comment FROM duckdb_columns() "
                           "WHERE schema_name = 'audit' AND table_name = 'sheets'").fetchall()
        got = con.execute("SELECT sheet, form, status, header_row, rows_loaded, rows_rejected, "
                          + ", ".join(SHEET_SKIP_COLUMNS.values()) + ", year, unit_code FROM audit.sheets").fetchall()
        table_comment = con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'audit' "
                                    "AND table_name = 'sheets'").fetchall()[0][0]
    finally:
        con.close()
    types = {c: t for c, t, _ in cols}
    for kind in SKIP_KINDS:
        assert types[f"rows_skipped_{kind}"] == "BIGINT"
    assert all(comment for _, _, comment in cols), [c for c, _, comment in cols if not comment]
    assert "rows_skipped" in table_comment
    assert got == [("Biểu 01", "HTX", "loaded", 3, 1, 1, 1, 1, 1, 1, 1, 0, 2020, "157")]
    assert stats.rows_skipped == EXPECTED_SKIPPED


def test_run_report_shows_skipped_rows_by_kind():
    from coop.outputs.run_report import RunSummary, render_run_report

    text = render_run_report(RunSummary(run_id="r1", status="published", skipped={"signature": 594, "total": 293}))
    section = text.split("## Rows skipped by kind", 1)[1].split("\n## ", 1)[0]
    assert "| signature | 594 |" in section and "| total | 293 |" in section
    assert section.index("signature") < section.index("total")
    assert "None." in render_run_report(RunSummary(run_id="r2")).split("## Rows skipped by kind", 1)[1].split("##")[0]
