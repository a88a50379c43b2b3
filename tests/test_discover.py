"""Discovery of raw files: <year>/<district>/<file>, one test per file-level reason."""

import datetime as dt
import os
from pathlib import Path

import pytest

from coop.ingest.discover import FileIssue, RawFile, discover
from coop.reference import load_reference

REF = load_reference()


def put(root: Path, rel: str, content: bytes = b"x", mtime: float | None = None) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return p


def issues_by_file(issues: list[FileIssue]) -> dict[str, str]:
    return {i.source_file: i.reason_code for i in issues}


def test_accepted_files(tmp_path):
    put(tmp_path, "2020/lac-son/bao cao.xlsx", b"12345", mtime=1_600_000_000)
    put(tmp_path, "2020/Huyện Đà Bắc/b.XLS")
    put(tmp_path, "2019/151/c.ods")
    put(tmp_path, "2020/province/ke-hoach-2021.xlsm")
    put(tmp_path, "2021/tỉnh/plan.csv")
    put(tmp_path, "2018/Yên Thuỷ/d.Csv")
    files, issues = discover(tmp_path, REF)
    assert issues == []
    assert [f.source_file for f in files] == [
        "2018/Yên Thuỷ/d.Csv", "2019/151/c.ods", "2020/Huyện Đà Bắc/b.XLS", "2020/lac-son/bao cao.xlsx",
        "2020/province/ke-hoach-2021.xlsm", "2021/tỉnh/plan.csv",
    ]
    by = {f.source_file: f for f in files}
    f = by["2020/lac-son/bao cao.xlsx"]
    assert isinstance(f, RawFile)
    assert (f.year, f.district.code, f.size) == (2020, "157", 5)
    assert f.path == tmp_path / "2020" / "lac-son" / "bao cao.xlsx"
    assert f.modified_at == dt.datetime(2020, 9, 13, 12, 26, 40, tzinfo=dt.timezone.utc)  # 1.6e9 s
    assert by["2020/Huyện Đà Bắc/b.XLS"].district.code == "150"
    assert by["2019/151/c.ods"].district.code == "151"
    assert by["2020/province/ke-hoach-2021.xlsm"].district is None
    assert by["2021/tỉnh/plan.csv"].is_province and by["2021/tỉnh/plan.csv"].unit_code is None
    assert by["2018/Yên Thuỷ/d.Csv"].unit_code == "158"


def test_each_reason(tmp_path):
    put(tmp_path, "2020/lac-son/ok.xlsx")
    put(tmp_path, "2020/xyz/a.xlsx")                 # unknown district
    put(tmp_path, "2021/Kỳ Sơn/a.xlsx")              # merged into Hòa Bình city on 2020-01-01
    put(tmp_path, "2020/ky-son/a.xlsx")
    put(tmp_path, "nam2020/lac-son/a.xlsx")          # non-year folder
    put(tmp_path, "20201/lac-son/a.xlsx")
    put(tmp_path, "2020/lac-son/a.pdf")              # other extension
    put(tmp_path, "2020/lac-son/noext")
    put(tmp_path, "loose.xlsx")                      # at the root
    put(tmp_path, "2020/loose.xlsx")                 # directly in a year folder
    put(tmp_path, "2020/lac-son/sub/deep.xlsx")      # one level too deep
    files, issues = discover(tmp_path, REF)
    assert [f.source_file for f in files] == ["2020/lac-son/ok.xlsx"]
    assert issues_by_file(issues) == {
        "2020/xyz/a.xlsx": "unknown_district",
        "2021/Kỳ Sơn/a.xlsx": "district_not_valid_for_year",
        "2020/ky-son/a.xlsx": "district_not_valid_for_year",
        "nam2020/lac-son/a.xlsx": "invalid_year_folder",
        "20201/lac-son/a.xlsx": "invalid_year_folder",
        "2020/lac-son/a.pdf": "unsupported_file_type",
        "2020/lac-son/noext": "unsupported_file_type",
        "loose.xlsx": "misplaced_file",
        "2020/loose.xlsx": "misplaced_file",
        "2020/lac-son/sub/deep.xlsx": "misplaced_file",
    }
    for i in issues:
        assert i.severity == "rejected" and i.sheet is None
        assert i.reason.endswith(f" [{i.reason_code}]")
    by = {i.source_file: i.reason for i in issues}
    assert "'xyz'" in by["2020/xyz/a.xlsx"] and "Không nhận ra huyện" in by["2020/xyz/a.xlsx"]
    assert "Kỳ Sơn" in by["2021/Kỳ Sơn/a.xlsx"] and "2021" in by["2021/Kỳ Sơn/a.xlsx"]
    assert "'nam2020'" in by["nam2020/lac-son/a.xlsx"]
    assert ".pdf" in by["2020/lac-son/a.pdf"]


def test_ky_son_2019_ok(tmp_path):
    put(tmp_path, "2019/Kỳ Sơn/a.xlsx")
    put(tmp_path, "2018/ky-son/a.xlsx")
    files, issues = discover(tmp_path, REF)
    assert issues == [] and {f.district.code for f in files} == {"151"}


def test_hidden_and_temp_files_skipped(tmp_path):
    put(tmp_path, "2020/lac-son/~$bao cao.xlsx")
    put(tmp_path, "2020/lac-son/.~lock.bao cao.xlsx#")
    put(tmp_path, "2020/lac-son/.hidden.xlsx")
    put(tmp_path, "2020/.gitkeep")
    put(tmp_path, ".gitkeep")
    put(tmp_path, ".state/cache.json")
    put(tmp_path, "2020/lac-son/Thumbs.db")
    files, issues = discover(tmp_path, REF)
    assert files == [] and issues == []


def test_years_filter(tmp_path):
    for y in (2018, 2019, 2020, 2021):
        put(tmp_path, f"{y}/lac-son/a.xlsx")
    put(tmp_path, "2018/xyz/a.xlsx")
    put(tmp_path, "2020/xyz/a.xlsx")
    put(tmp_path, "misc/a.xlsx")
    files, issues = discover(tmp_path, REF, (2019, 2020))
    assert [f.year for f in files] == [2019, 2020]
    assert issues_by_file(issues) == {"2020/xyz/a.xlsx": "unknown_district", "misc/a.xlsx": "invalid_year_folder"}


def test_broken_link_is_unreadable(tmp_path):
    (tmp_path / "2020" / "lac-son").mkdir(parents=True)
    (tmp_path / "2020" / "lac-son" / "a.xlsx").symlink_to(tmp_path / "gone.xlsx")
    files, issues = discover(tmp_path, REF)
    assert files == [] and issues_by_file(issues) == {"2020/lac-son/a.xlsx": "unreadable_file"}


def test_missing_root(tmp_path):
    assert discover(tmp_path / "nope", REF) == ([], [])


def test_deterministic(tmp_path):
    for rel in ["2021/tan-lac/b.xlsx", "2020/lac-son/a.xlsx", "2020/Cao Phong/z.csv", "2020/xyz/q.xlsx",
                "2019/abc/q.xlsx"]:
        put(tmp_path, rel)
    a = discover(tmp_path, REF)
    b = discover(tmp_path, REF)
    assert a == b
    assert [f.source_file for f in a[0]] == sorted(f.source_file for f in a[0])
    assert [i.source_file for i in a[1]] == ["2019/abc/q.xlsx", "2020/xyz/q.xlsx"]


def test_sample_raw_folder():
    """The committed sample read against its generator's ground truth: the files planted as
    refused at discovery are refused with the planted reason, every other file is listed."""
    import json

    root = Path(__file__).resolve().parent.parent / "data"
    truth_path = root / "sample" / "ground_truth.json"
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    discovery_codes = {"invalid_year_folder", "misplaced_file", "unknown_district", "unknown_commune",
                       "ambiguous_unit", "district_after_reform", "commune_before_reform",
                       "district_not_valid_for_year", "unsupported_file_type"}
    planted = {r["source_file"]: r["reason_code"] for r in truth["rejected_files"]
               if r["reason_code"] in discovery_codes}
    assert planted  # the sample plants at least the Kỳ Sơn 2021 file
    files, issues = discover(root / "raw", REF)
    assert issues_by_file(issues) == planted
    assert sorted(f.source_file for f in files) == sorted(set(truth["files"]) - set(planted))
