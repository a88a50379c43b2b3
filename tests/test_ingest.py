"""Ingest: quarantine (one test per reason), file/sheet rejections, duplicates, resubmissions,
and the committed sample read back equal to the generator's ground truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from coop.ingest.normalize import REJECTED_ROW_SCHEMA, FileResult, ingest_file, ingest_path, select_submissions
from reader_fixtures import (
    CHI_TIEU_HEAD, Err, G, HO_TRO_HEAD, HTX_HEAD, THT_HEAD, ho_tro_row, htx_row, ingest, issues, reference,
    rejected, tht_row, write_csv, write_xlsx,
)

ROOT = Path(__file__).resolve().parents[1]


def htx_file(tmp_path, bad_row, name="h.xlsx", extra_head=None):
    head = HTX_HEAD + (extra_head or [])
    good = htx_row(1, "5400100001", "HTX Một")
    return write_xlsx(tmp_path / name, [G("HTX", [head, good, bad_row])])


# --------------------------------------------------------------------------- one test per reason
@pytest.mark.parametrize("over,column,code,raw", [
    ({"reg_code": None}, "reg_code", "missing_value", None),
    ({"established_on": None}, "established_on", "missing_value", None),
    ({"sector": None}, "sector", "missing_value", None),
    ({"members": None}, "members", "missing_value", None),
    ({"revenue": "khoảng 500"}, "revenue", "invalid_number", "khoảng 500"),
    ({"members": 25.5}, "members", "not_integer", "25.5"),
    ({"workers": "3,5"}, "workers", "not_integer", "3,5"),
    ({"members": -5}, "members", "negative_value", "-5"),
    ({"revenue": "-1.200"}, "revenue", "negative_value", "-1.200"),
    ({"established_on": "31/02/2020"}, "established_on", "invalid_date", "31/02/2020"),
    ({"established_on": "hôm qua"}, "established_on", "invalid_date", "hôm qua"),
    ({"established_on": dt.datetime(2021, 1, 1)}, "established_on", "date_after_report_year", "01/01/2021"),
    ({"sector": "Chăn nuôi ong mật"}, "sector", "unknown_category", "Chăn nuôi ong mật"),
    ({"status": "Sắp thành lập"}, "status", "unknown_category", "Sắp thành lập"),
    ({"rating": "Xuất sắc"}, "rating", "unknown_category", "Xuất sắc"),
    ({"ocop": "6 sao"}, "ocop_stars", "unknown_category", "6 sao"),
    ({"high_tech": "có lẽ"}, "high_tech", "unknown_category", "có lẽ"),
    ({"kind": "Công ty"}, "kind", "unknown_category", "Công ty"),
    ({"reg_code": "54001A2345"}, "reg_code", "invalid_reg_code", "54001A2345"),
    ({"profit": Err("#N/A")}, "profit", "excel_error", "#N/A"),
    ({"commune": Err("#REF!")}, "commune", "excel_error", "#REF!"),
])
def test_htx_row_quarantined(tmp_path, over, column, code, raw):
    r = ingest(htx_file(tmp_path, htx_row(2, "5400100002", "HTX Hai", **over)), year=2020)
    assert issues(r) == []
    assert r.forms["HTX"]["row_number"].to_list() == [2]            # the good row loads
    recs = r.rejected_rows.to_dicts()
    assert [(x["sheet"], x["row_number"], x["column_name"], x["reason_code"], x["raw_value"]) for x in recs] == \
        [("HTX", 3, column, code, raw)]
    assert recs[0]["source_file"] == "h.xlsx"
    assert recs[0]["reason"].endswith(f"[{code}]") and len(recs[0]["reason"]) > len(code) + 10
    assert r.rejected_rows.schema == pl.Schema(REJECTED_ROW_SCHEMA)
    assert (r.sheets[0].rows_accepted, r.sheets[0].rows_rejected) == (1, 1)


def test_row_with_several_bad_cells_gives_one_record_per_cell(tmp_path):
    bad = htx_row(2, "5400100002", "HTX Hai", members=-1, sector="???", established_on="32/01/2019")
    r = ingest(htx_file(tmp_path, bad))
    assert [(x["row_number"], x["column_name"], x["reason_code"]) for x in r.rejected_rows.to_dicts()] == [
        (3, "established_on", "invalid_date"), (3, "sector", "unknown_category"), (3, "members", "negative_value")]
    assert r.sheets[0].rows_rejected == 1 and r.forms["HTX"].height == 1


def test_excel_error_in_unused_column_is_ignored(tmp_path):
    row = htx_row(2, "5400100002", "HTX Hai") + [Err("#DIV/0!")]
    r = ingest(htx_file(tmp_path, row, extra_head=["Ghi chú"]))
    assert rejected(r) == [] and r.forms["HTX"].height == 2


def test_htx_values_typed(tmp_path):
    row = htx_row(2, "5400100002", "HTX  Hai ", kind="Liên hiệp HTX", rating="Yếu kém", ocop="4*", high_tech="x",
                  income="4,16", profit=-20)
    r = ingest(htx_file(tmp_path, row))
    got = r.forms["HTX"].filter(pl.col("row_number") == 3).to_dicts()[0]
    assert got == {**got, "name": "HTX Hai", "kind": "union", "rating": "weak", "ocop_stars": 4, "high_tech": True,
                   "income": 4.16, "profit": -20.0, "members": 20, "workers": 10, "revenue": 1500.0,
                   "established_on": dt.date(2015, 3, 1)}
    assert r.forms["HTX"].schema["established_on"] == pl.Date
    assert r.forms["HTX"].columns[-3:] == ["source_file", "sheet", "row_number"]


def test_support_not_positive_and_unknown_type(tmp_path):
    rows = [HO_TRO_HEAD, ho_tro_row(1, "5400100001"), ho_tro_row(2, "5400100002", amount=0),
            ho_tro_row(3, "5400100003", support_type="Hỗ trợ giống cây trồng"),
            ho_tro_row(4, "5400100004", allocated_on=None, participants=-3)]
    r = ingest(write_xlsx(tmp_path / "s.xlsx", [G("HT", rows)]))
    assert rejected(r) == [("HT", 3, "amount", "not_positive"), ("HT", 4, "support_type", "unknown_category"),
                           ("HT", 5, "allocated_on", "missing_value"), ("HT", 5, "participants", "negative_value")]
    assert r.forms["HO_TRO"]["reg_code"].to_list() == ["5400100001"]


def test_plan_targets_and_plan_codes(tmp_path):
    rows = [["KẾ HOẠCH NĂM 2021"], CHI_TIEU_HEAD, [1, "HTX thành lập mới", "new_htx", "HTX", "từ 65"],
            [2, "Tăng doanh thu", "htx_revenue_growth_pct", "%", "6 - 8"],
            [3, "Đào tạo", "training_turns", "người", 500],
            [4, "Khác", "no_such_code", "HTX", 3],
            [5, "Thu nhập", "htx_income_growth_pct", "%", "tăng nhiều"],
            [None] * 4 + ["Hòa Bình, ngày 15 tháng 01 năm 2021"]]
    r = ingest(write_xlsx(tmp_path / "kh.xlsx", [G("Kế hoạch", rows)]), year=2021, district=None)
    assert rejected(r) == [("Kế hoạch", 6, "code", "unknown_plan_code"), ("Kế hoạch", 7, "target", "invalid_target")]
    got = r.forms["CHI_TIEU"].select("code", "target_raw", "target_min", "target_max", "row_number").rows()
    assert got == [("new_htx", "từ 65", 65.0, None, 3), ("htx_revenue_growth_pct", "6 - 8", 6.0, 8.0, 4),
                   ("training_turns", "500", 500.0, 500.0, 5)]
    assert r.unit_code is None


# --------------------------------------------------------------------------- duplicates
def test_duplicate_reg_code_quarantines_every_row(tmp_path):
    rows = [HTX_HEAD, htx_row(1, "5400100001", "HTX Một"), htx_row(2, "5400100009", "HTX Hai"),
            htx_row(3, "5400100001", "HTX Một (ghi lại)"), htx_row(4, "5400100003", "HTX Ba")]
    r = ingest(write_xlsx(tmp_path / "d.xlsx", [G("HTX", rows)]))
    assert rejected(r) == [("HTX", 2, "reg_code", "duplicate_code"), ("HTX", 4, "reg_code", "duplicate_code")]
    assert r.forms["HTX"]["reg_code"].to_list() == ["5400100009", "5400100003"]
    assert set(r.rejected_rows["raw_value"].to_list()) == {"5400100001"}


def test_duplicate_group_key_is_commune_and_folded_name(tmp_path):
    rows = [THT_HEAD, tht_row(1, "Tổ hợp tác chăn nuôi Bản Mới"), tht_row(2, "TO HOP TAC CHAN NUOI BAN MOI"),
            tht_row(3, "Tổ hợp tác chăn nuôi Bản Mới", commune="Xã Khác"), tht_row(4, "THT Mây tre")]
    r = ingest(write_xlsx(tmp_path / "g.xlsx", [G("THT", rows)]))
    assert rejected(r) == [("THT", 2, "name", "duplicate_group"), ("THT", 3, "name", "duplicate_group")]
    assert r.forms["THT"]["row_number"].to_list() == [4, 5]


# --------------------------------------------------------------------------- file and sheet rejections
def test_unreadable_file(tmp_path):
    p = tmp_path / "bc.xlsx"
    p.write_bytes(b"<html><body>Bao cao</body></html>")
    r = ingest(p)
    assert issues(r) == [("", "unreadable_file", "rejected")] and r.forms == {} and r.rejected
    assert "bc.xlsx" == r.file_issues[0].source_file
    zipped = write_xlsx(tmp_path / "ok.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "A")])])
    (tmp_path / "cut.xlsx").write_bytes(zipped.read_bytes()[:300])
    assert issues(ingest(tmp_path / "cut.xlsx")) == [("", "unreadable_file", "rejected")]
    assert issues(ingest(tmp_path / "missing.xlsx")) == [("", "unreadable_file", "rejected")]
    # an encrypted workbook is an OLE compound file, not a zip: unreadable, never an exception
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4088
    for name in ("enc.xlsx", "enc.xls"):
        (tmp_path / name).write_bytes(ole)
        assert issues(ingest(tmp_path / name)) == [("", "unreadable_file", "rejected")]


def test_empty_files(tmp_path):
    assert issues(ingest(write_csv(tmp_path / "e.csv", ""))) == [("", "empty_file", "rejected")]
    assert issues(ingest(write_csv(tmp_path / "b.csv", ";;;\r\n\r\n;;\r\n"))) == [("", "empty_file", "rejected")]
    assert issues(ingest(write_xlsx(tmp_path / "e.xlsx", [G("Sheet1", []), G("Sheet2", [])]))) == \
        [("", "empty_file", "rejected")]


def test_no_recognized_form(tmp_path):
    p = write_xlsx(tmp_path / "cv.xlsx", [G("Công văn", [["Kính gửi: Sở Kế hoạch và Đầu tư"], ["Số liệu gửi sau."]])])
    r = ingest(p)
    assert issues(r) == [("", "no_recognized_form", "rejected")] and r.forms == {}


def test_form_not_allowed_here(tmp_path):
    plan = G("KH", [CHI_TIEU_HEAD, [1, "HTX mới", "new_htx", "HTX", 65]])
    htx = G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")])
    # a plan in a district folder: whole file
    r = ingest(write_xlsx(tmp_path / "a.xlsx", [plan]), district="157")
    assert issues(r) == [("", "form_not_allowed_here", "rejected")] and r.forms == {}
    # a register in the province folder: whole file
    r = ingest(write_xlsx(tmp_path / "b.xlsx", [htx]), district=None)
    assert issues(r) == [("", "form_not_allowed_here", "rejected")]
    # both in one district workbook: the plan sheet is rejected, the register loads
    r = ingest(write_xlsx(tmp_path / "c.xlsx", [htx, plan]), district="157")
    assert issues(r) == [("KH", "form_not_allowed_here", "rejected")]
    assert r.forms["HTX"].height == 1 and "CHI_TIEU" not in r.forms


def test_ingest_file_from_discovery(tmp_path):
    from coop.ingest.discover import discover

    raw = tmp_path / "raw"
    write_xlsx(raw / "2020" / "lac-son" / "bc.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")])])
    (f,), _ = discover(raw, reference())
    r = ingest_file(f, reference())
    assert (r.source_file, r.year, r.unit_code, r.modified_at) == ("2020/lac-son/bc.xlsx", 2020, "157", f.modified_at)
    assert r.forms["HTX"]["source_file"].to_list() == ["2020/lac-son/bc.xlsx"]
    assert len(r.file_hash) == 64
    # the convenience form: a path under a raw folder
    assert ingest_file(raw / "2020" / "lac-son" / "bc.xlsx", raw_dir=raw).unit_code == "157"


# --------------------------------------------------------------------------- resubmissions
def _result(path, source, when):
    ref = reference()
    return ingest_path(path, year=2020, district=ref.district_by_code("152"), source_file=source, reference=ref,
                       modified_at=when)


def test_newer_resubmission_supersedes_only_its_forms(tmp_path):
    old = write_xlsx(tmp_path / "lan1.xlsx", [
        G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một"), htx_row(2, "5400100002", "HTX Hai", members=-1)]),
        G("THT", [THT_HEAD, tht_row(1, "THT Một")])])
    new = write_xlsx(tmp_path / "nop-lai.xlsx", [G("HTX (sửa)", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một"),
                                                                 htx_row(2, "5400100002", "HTX Hai")])])
    a = _result(old, "2020/152/lan1.xlsx", dt.datetime(2021, 1, 8, tzinfo=dt.timezone.utc))
    b = _result(new, "2020/152/nop-lai.xlsx", dt.datetime(2021, 1, 25, tzinfo=dt.timezone.utc))
    c = _result(new, "2020/152/z-other-district.xlsx", dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc))
    c.unit_code = "153"
    sel = select_submissions([a, b, c])
    assert [r.source_file for r in sel] == ["2020/152/lan1.xlsx", "2020/152/nop-lai.xlsx", "2020/152/z-other-district.xlsx"]
    old_sel = sel[0]
    assert set(old_sel.forms) == {"THT"}
    assert old_sel.rejected_rows.height == 0                 # the old HTX sheet's quarantine is dropped too
    (sup,) = [i for i in old_sel.file_issues if i.severity == "superseded"]
    assert (sup.source_file, sup.sheet, sup.reason_code) == ("2020/152/lan1.xlsx", "HTX", "superseded")
    assert "2020/152/nop-lai.xlsx" in sup.reason
    assert sel[1].forms["HTX"].height == 2 and sel[2].forms["HTX"].height == 2
    assert set(a.forms) == {"HTX", "THT"} and a.rejected_rows.height == 1   # input untouched


def test_same_mtime_later_name_wins_and_wholly_superseded_file_is_dropped(tmp_path):
    f = write_xlsx(tmp_path / "x.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")])])
    when = dt.datetime(2021, 1, 8, tzinfo=dt.timezone.utc)
    a, b = _result(f, "2020/152/a.xlsx", when), _result(f, "2020/152/b.xlsx", when)
    sel = select_submissions([b, a])
    assert [r.source_file for r in sel] == ["2020/152/b.xlsx"]
    carried = [i for i in sel[0].file_issues if i.severity == "superseded"]
    assert [(i.source_file, i.sheet) for i in carried] == [("2020/152/a.xlsx", "HTX")]
    assert "2020/152/b.xlsx" in carried[0].reason


def test_rejected_file_does_not_compete(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook")
    good = write_xlsx(tmp_path / "g.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")])])
    a = _result(good, "2020/152/g.xlsx", dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc))
    b = _result(bad, "2020/152/bad.xlsx", dt.datetime(2021, 2, 1, tzinfo=dt.timezone.utc))
    sel = select_submissions([a, b])
    assert [r.source_file for r in sel] == ["2020/152/g.xlsx", "2020/152/bad.xlsx"]
    assert sel[0].forms["HTX"].height == 1


# --------------------------------------------------------------------------- the sample province
def _norm(v):
    return v.isoformat() if isinstance(v, dt.date) else v


def test_sample_reads_back_to_ground_truth():
    from coop.ingest.discover import discover

    raw_dir, truth_path = ROOT / "data" / "raw", ROOT / "data" / "sample" / "ground_truth.json"
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    ref = reference()
    raws, disc_issues = discover(raw_dir, ref)
    results = select_submissions([ingest_file(f, ref) for f in raws])
    # the ground truth's unit columns (district_code, area, commune of today…) are the warehouse's
    # business, not the reader's: compare what reading produces (canonical columns + lineage)
    derived = {"district_code", "unit_level", "area_code", "old_commune_code", "commune_code", "approximate"}
    for form, spec in truth["forms"].items():
        # a plan row's unit_code in the truth is the province whose plan it is (the reader leaves it NULL)
        skip = derived | ({"unit_code"} if form == "CHI_TIEU" else set())
        keep = [i for i, c in enumerate(spec["columns"]) if c not in skip]
        cols = [spec["columns"][i] for i in keep]
        expected = sorted(([_norm(row[i]) for i in keep] for row in spec["rows"]), key=lambda r: (r[1], r[2], r[3]))
        got = []
        for r in results:
            df = r.forms.get(form)
            if df is None:
                continue
            for row in df.to_dicts():
                row.update(year=r.year, unit_code=r.unit_code)
                got.append([_norm(row.get(c)) for c in cols])
        got.sort(key=lambda r: (r[1], r[2], r[3]))
        assert len(got) == len(expected), form
        assert got == expected, form
    rej = pl.concat([r.rejected_rows for r in results])
    key = ("source_file", "sheet", "row_number", "column_name", "reason_code", "raw_value")
    assert sorted(tuple(d[k] for k in key) for d in rej.to_dicts()) == \
        sorted(tuple(d[k] for k in key) for d in truth["invalid_rows"])
    all_issues = [i for r in results for i in r.file_issues] + list(disc_issues)
    assert sorted((i.source_file, i.reason_code) for i in all_issues if i.sheet is None and i.severity == "rejected") \
        == sorted((d["source_file"], d["reason_code"]) for d in truth["rejected_files"])
    assert sorted((i.source_file, i.sheet, i.reason_code) for i in all_issues
                  if i.sheet is not None and i.severity == "rejected") == \
        sorted((d["source_file"], d["sheet"], d["reason_code"]) for d in truth.get("rejected_sheets", []))
    assert sorted((i.source_file, i.sheet) for i in all_issues if i.severity == "ignored") == \
        sorted((d["source_file"], d["sheet"]) for d in truth["ignored_sheets"])
    sheets_form = {(r.source_file, s.name): s.form for r in results for s in r.sheets}
    assert sorted((i.source_file, sheets_form.get((i.source_file, i.sheet))) for i in all_issues
                  if i.severity == "superseded") == sorted((d["source_file"], d["form"]) for d in truth["superseded"])


def test_file_result_fields_match_architecture():
    import dataclasses

    assert [f.name for f in dataclasses.fields(FileResult)] == [
        "source_file", "year", "unit_code", "file_hash", "modified_at", "forms", "rejected_rows",
        "file_issues", "sheets"]


def test_broken_sheet_is_rejected_alone(tmp_path):
    import zipfile

    p = write_xlsx(tmp_path / "two.xlsx", [G("A", [THT_HEAD, tht_row(1, "THT Một")]), G("B", [THT_HEAD, tht_row(1, "THT Hai")])])
    src = zipfile.ZipFile(p)
    items = [(i, src.read(i.filename)) for i in src.infolist()]
    src.close()
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(broken, "w") as z:
        for info, data in items:
            if info.filename == "xl/worksheets/sheet2.xml":  # a shared-string index that does not exist
                data = b"<worksheet><sheetData><row r='1'><c r='A1' t='s'><v>99</v></c></row></sheetData></worksheet>"
            z.writestr(info, data)
    r = ingest(broken)
    assert issues(r) == [("B", "unreadable_file", "rejected")]
    assert r.forms["THT"]["name"].to_list() == ["THT Một"]
