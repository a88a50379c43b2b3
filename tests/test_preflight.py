"""`coop validate`: text and JSON output, exit codes, year/district from the path or options."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from coop.cli import app
from reader_fixtures import CHI_TIEU_HEAD, G, HTX_HEAD, htx_row, write_xlsx

runner = CliRunner()


def _clean(tmp_path, folder="2020/lac-son"):
    return write_xlsx(tmp_path / folder / "bc.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một"),
                                                                 htx_row(2, "5400100002", "HTX Hai")])])


def _bad(tmp_path, folder="2020/lac-son"):
    return write_xlsx(tmp_path / folder / "loi.xlsx", [
        G("Danh sách", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một"),
                        htx_row(2, "5400100002", "HTX Hai", established_on="31/02/2020")]),
        G("Ghi chú", [["Ghi chú:"], ["Số liệu tạm tính"]]),
    ])


def test_clean_file_exits_0_with_forms_and_counts(tmp_path):
    p = _clean(tmp_path)
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 0, res.output
    assert "năm 2020" in res.output and "157 Huyện Lạc Sơn" in res.output
    assert "Trang 'HTX'" in res.output and "(HTX)" in res.output and "2 dòng hợp lệ" in res.output
    assert "OK" in res.output


def test_bad_row_exits_1_and_names_sheet_row_column_value_reason(tmp_path):
    p = _bad(tmp_path)
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 1, res.output
    line = next(ln for ln in res.output.splitlines() if "invalid_date" in ln)
    assert "Trang 'Danh sách'" in line and "dòng 3" in line and "established_on" in line and "31/02/2020" in line
    assert "Ngày thành lập" in line                       # the clerk's column header
    assert "unrecognized_sheet" in res.output and "Ghi chú" in res.output
    assert "\x1b[" not in res.output                      # plain when not a terminal


def test_ignored_sheet_alone_does_not_fail(tmp_path):
    p = write_xlsx(tmp_path / "2020" / "157" / "x.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "A")]),
                                                          G("Ghi chú", [["Ghi chú:"], ["-"]])])
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 0, res.output


def test_json_document(tmp_path):
    good, bad = _clean(tmp_path), _bad(tmp_path, folder="2020/da-bac")
    res = runner.invoke(app, ["validate", "--format", "json", str(good), str(bad)])
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc["ok"] is False and doc["exit_code"] == 1
    f1, f2 = doc["files"]
    assert (f1["ok"], f1["year"], f1["unit_code"], f1["rows_accepted"], f1["rows_rejected"]) == (True, 2020, "157", 2, 0)
    assert f1["forms"] == [{"sheet": "HTX", "form": "HTX", "header_row": 1, "rows_accepted": 2, "rows_rejected": 0}]
    assert f1["problems"] == []
    assert f2["ok"] is False and f2["rows_accepted"] == 1 and f2["rows_rejected"] == 1
    row_problems = [p for p in f2["problems"] if p["row"] is not None]
    assert row_problems == [{"sheet": "Danh sách", "row": 3, "column": "established_on",
                             "column_label": "Ngày thành lập", "value": "31/02/2020", "reason_code": "invalid_date",
                             "reason": row_problems[0]["reason"], "severity": "rejected"}]
    assert row_problems[0]["reason"].endswith("[invalid_date]")
    (ign,) = [p for p in f2["problems"] if p["row"] is None]
    assert (ign["sheet"], ign["reason_code"], ign["severity"]) == ("Ghi chú", "unrecognized_sheet", "ignored")


def test_year_and_district_from_options_outside_the_raw_tree(tmp_path):
    p = _clean(tmp_path, folder="desktop")
    res = runner.invoke(app, ["validate", "--format", "json", str(p)])
    assert res.exit_code == 1
    assert json.loads(res.output)["files"][0]["problems"][0]["reason_code"] == "misplaced_file"
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 1 and "--year" in res.output and "--unit" in res.output
    res = runner.invoke(app, ["validate", "--format", "json", "--year", "2020", "--district", "Huyện Lạc Sơn", str(p)])
    assert res.exit_code == 0, res.output
    f = json.loads(res.output)["files"][0]
    assert (f["year"], f["unit_code"], f["rows_accepted"]) == (2020, "157", 2)
    # the report year decides what "after the report year" means
    res = runner.invoke(app, ["validate", "--format", "json", "--year", "2014", "--district", "157", str(p)])
    assert res.exit_code == 1
    assert {p["reason_code"] for p in json.loads(res.output)["files"][0]["problems"]} == {"date_after_report_year"}


def test_unknown_district_option_and_path_wins(tmp_path):
    p = _clean(tmp_path, folder="desktop")
    res = runner.invoke(app, ["validate", "--year", "2020", "--district", "Hà Nội", str(p)])
    assert res.exit_code == 1 and "unknown_district" in res.output
    # a path that follows <year>/<district>/<file> is used even when options are given
    q = _clean(tmp_path, folder="2020/Đà Bắc")
    res = runner.invoke(app, ["validate", "--format", "json", "--year", "2019", "--district", "157", str(q)])
    f = json.loads(res.output)["files"][0]
    assert (f["year"], f["unit_code"]) == (2020, "150")


def test_merged_district_and_province_folder(tmp_path):
    p = _clean(tmp_path, folder="2021/ky-son")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 1 and "district_not_valid_for_year" in res.output
    plan = write_xlsx(tmp_path / "2021" / "province" / "kh.xlsx", [G("KH", [CHI_TIEU_HEAD, [1, "HTX mới", "new_htx", "HTX", "từ 65"]])])
    res = runner.invoke(app, ["validate", "--format", "json", str(plan)])
    assert res.exit_code == 0, res.output
    f = json.loads(res.output)["files"][0]
    assert f["unit_code"] is None and f["forms"][0]["form"] == "CHI_TIEU"
    # a plan in a district folder would be rejected
    wrong = write_xlsx(tmp_path / "2021" / "157" / "kh.xlsx", [G("KH", [CHI_TIEU_HEAD, [1, "HTX mới", "new_htx", "HTX", 65]])])
    res = runner.invoke(app, ["validate", str(wrong)])
    assert res.exit_code == 1 and "form_not_allowed_here" in res.output


def test_unreadable_and_unsupported_files(tmp_path):
    junk = tmp_path / "2020" / "157" / "a.xlsx"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"PK\x03\x04 broken")
    doc = tmp_path / "2020" / "157" / "a.docx"
    doc.write_bytes(b"x")
    res = runner.invoke(app, ["validate", "--format", "json", str(junk), str(doc), str(tmp_path / "none.xlsx")])
    assert res.exit_code == 1
    codes = [[p["reason_code"] for p in f["problems"]] for f in json.loads(res.output)["files"]]
    assert codes == [["unreadable_file"], ["unsupported_file_type"], ["unreadable_file"]]


def test_resubmission_among_given_files_is_noted_without_failing(tmp_path):
    import os

    old = _clean(tmp_path)
    new = write_xlsx(tmp_path / "2020" / "lac-son" / "bc-nop-lai.xlsx",
                     [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")])])
    os.utime(old, (1_600_000_000, 1_600_000_000))
    os.utime(new, (1_600_100_000, 1_600_100_000))
    res = runner.invoke(app, ["validate", "--format", "json", str(old), str(new)])
    assert res.exit_code == 0, res.output
    f_old, f_new = json.loads(res.output)["files"]
    assert [(p["sheet"], p["reason_code"], p["severity"]) for p in f_old["problems"]] == [("HTX", "superseded", "superseded")]
    assert str(new) in f_old["problems"][0]["reason"]
    assert f_new["problems"] == []


def test_terminal_table_keeps_reason_codes(tmp_path):
    import io

    from coop.ingest.preflight import _text_report, validate_files

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    _text_report(validate_files([_bad(tmp_path)], None, None), out)
    assert "[invalid_date]" in out.getvalue() and "31/02/2020" in out.getvalue()


def test_folder_argument_checks_every_file_under_it(tmp_path):
    _clean(tmp_path, folder="raw/2020/lac-son")
    _bad(tmp_path, folder="raw/2020/da-bac")
    (tmp_path / "raw" / "2020" / "da-bac" / "~$loi.xlsx").write_bytes(b"lock file")
    res = runner.invoke(app, ["validate", "--format", "json", str(tmp_path / "raw")])
    assert res.exit_code == 1
    files = json.loads(res.output)["files"]
    assert [(f["file"].split("raw/")[-1], f["ok"]) for f in files] == [("2020/da-bac/loi.xlsx", False),
                                                                        ("2020/lac-son/bc.xlsx", True)]


# ----------------------------------------------------------------------------- the 2025 reform (units.md)
def test_district_folder_for_2025_and_commune_folder_for_2020_are_rejected_naming_the_reform(tmp_path):
    p = _clean(tmp_path, "2025/Huyện Lạc Sơn")
    res = runner.invoke(app, ["validate", "--format", "json", str(p)])
    assert res.exit_code == 1
    f = json.loads(res.output)["files"][0]
    assert [x["reason_code"] for x in f["problems"]] == ["district_after_reform"]
    assert "01/07/2025" in f["problems"][0]["reason"] and "xã" in f["problems"][0]["reason"]
    q = _clean(tmp_path, "2020/xa-lac-son")
    res = runner.invoke(app, ["validate", "--format", "json", str(q)])
    assert res.exit_code == 1
    assert [x["reason_code"] for x in json.loads(res.output)["files"][0]["problems"]] == ["commune_before_reform"]


def test_commune_folders_by_code_or_name_load_from_2025(tmp_path):
    for folder in ["2025/05266", "2025/Xã Lạc Sơn", "2026/xa-lac-son", "2026/Lac Son", "2025/XÃ LẠC SƠN"]:
        p = _clean(tmp_path, folder)
        res = runner.invoke(app, ["validate", "--format", "json", str(p)])
        assert res.exit_code == 0, (folder, res.output)
        f = json.loads(res.output)["files"][0]
        assert (f["unit_code"], f["unit_name"], f["rows_accepted"]) == ("05266", "Xã Lạc Sơn", 2), folder
    res = runner.invoke(app, ["validate", "--format", "json", "--year", "2026", "--unit", "Phường Hòa Bình",
                              str(_clean(tmp_path, "desktop"))])
    assert json.loads(res.output)["files"][0]["unit_code"] == "04795"


# ----------------------------------------------------------------------------- the clerk's verdict (issue 9)
def test_one_bad_row_of_121_says_what_the_province_loads(tmp_path):
    rows = [htx_row(k, f"54001{k:05d}", f"HTX {k}", members=-1 if k == 7 else 20) for k in range(1, 122)]
    p = write_xlsx(tmp_path / "2020" / "157" / "bc.xlsx", [G("HTX", [HTX_HEAD] + rows)])
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 1, res.output
    assert "Kết quả: 120 dòng sẽ được nhận, 1 dòng bị loại — sửa các dòng bị loại rồi gửi lại cả tệp " \
           "(120 rows will be loaded, 1 rejected)" in res.output
    assert "REJECTED" not in res.output and "BỊ TỪ CHỐI" not in res.output
    assert "1 tệp đã kiểm tra: 1 có dòng bị loại; 120 dòng sẽ được nhận, 1 dòng bị loại" in res.output
    f = json.loads(runner.invoke(app, ["validate", "--format", "json", str(p)]).output)["files"][0]
    assert (f["verdict"], f["ok"], f["rows_accepted"], f["rows_rejected"]) == ("partial", False, 120, 1)


def test_a_whole_file_rejection_says_rejected_and_why(tmp_path):
    junk = tmp_path / "2020" / "157" / "a.xlsx"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"PK\x03\x04 broken")
    res = runner.invoke(app, ["validate", str(junk)])
    assert res.exit_code == 1
    verdict = next(ln for ln in res.output.splitlines() if "Kết quả:" in ln)
    assert "TỆP BỊ TỪ CHỐI — không dòng nào được nhận; lý do: " in verdict
    assert "[unreadable_file]" in verdict and "(REJECTED: nothing in this file will be loaded" in verdict
    f = json.loads(runner.invoke(app, ["validate", "--format", "json", str(junk)]).output)["files"][0]
    assert (f["verdict"], f["rows_accepted"]) == ("rejected", 0)


def test_ok_and_superseded_verdicts(tmp_path):
    import os

    old = _clean(tmp_path)
    new = write_xlsx(tmp_path / "2020" / "lac-son" / "bc-nop-lai.xlsx",
                     [G("HTX", [HTX_HEAD, htx_row(1, "5400100001", "HTX Một")])])
    os.utime(old, (1_600_000_000, 1_600_000_000))
    os.utime(new, (1_600_100_000, 1_600_100_000))
    res = runner.invoke(app, ["validate", str(new)])
    assert res.exit_code == 0 and "Kết quả: ĐẠT — 1 dòng sẽ được nhận, không có gì bị loại (OK: 1 row will be loaded)" in res.output
    doc = json.loads(runner.invoke(app, ["validate", "--format", "json", str(old), str(new)]).output)
    assert doc["exit_code"] == 0
    assert [(f["verdict"], f["rows_accepted"]) for f in doc["files"]] == [("superseded", 0), ("ok", 1)]


def test_a_blank_template_is_empty_not_ok(tmp_path):
    from coop.outputs.template import build_template

    p = build_template(2021, tmp_path / "2021" / "157", "157")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 1, res.output
    assert "Kết quả: TRỐNG — Tệp chưa có dòng dữ liệu nào" in res.output and "(EMPTY: the file has no data rows)" in res.output
    assert "[empty_file]" in res.output and "ĐẠT" not in res.output
    f = json.loads(runner.invoke(app, ["validate", "--format", "json", str(p)]).output)["files"][0]
    assert (f["verdict"], f["ok"]) == ("empty", False)
    assert [p["reason_code"] for p in f["problems"] if p["severity"] == "rejected"] == ["empty_file"]


def test_a_relative_path_is_read_from_any_folder(tmp_path, monkeypatch):
    """The reader's worker process runs in the project folder: validate gives it the absolute path."""
    _clean(tmp_path, folder="2020/157")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["validate", "--format", "json", "2020/157/bc.xlsx"])
    assert res.exit_code == 0, res.output
    f = json.loads(res.output)["files"][0]
    assert (f["file"], f["verdict"], f["rows_accepted"]) == ("2020/157/bc.xlsx", "ok", 2)


def test_paths_that_are_no_file(tmp_path):
    import os

    d = tmp_path / "2020" / "157"
    d.mkdir(parents=True)
    (d / "vong.xlsx").symlink_to(d / "vong.xlsx")
    (d / "hong.xlsx").symlink_to(d / "khong-co.xlsx")
    os.mkfifo(d / "ong.csv")
    with open(os.fsencode(d) + b"/B\xe1o.xlsx", "wb") as fh:  # a name unzip left in Windows-1258 bytes
        fh.write(b"x")
    res = runner.invoke(app, ["validate", "--format", "json", str(d / "vong.xlsx"), str(d / "hong.xlsx"),
                              str(d / "ong.csv"), os.fsdecode(os.fsencode(d) + b"/B\xe1o.xlsx")])
    assert res.exit_code == 1
    files = json.loads(res.output)["files"]
    assert [[p["reason_code"] for p in f["problems"]] for f in files] == [
        ["symlink_loop"], ["unreadable_file"], ["unreadable_file"], ["invalid_file_name"]]
    assert files[3]["file"].endswith("B\\xe1o.xlsx") and "UTF-8" in files[3]["problems"][0]["reason"]
    assert "liên kết (symlink) hỏng" in files[1]["problems"][0]["reason"]
    assert "Không phải tệp bảng tính thường" in files[2]["problems"][0]["reason"]
