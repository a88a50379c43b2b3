"""The night survives each hostile file (issue 9): a whole `coop run` (`run_command`, the
CLI's function, in this process under the Prefect test harness) on a tmp raw folder holding
one good district file (2020/148, 3 HTX rows) and one hostile input in 2020/157. Each run
exits 0, publishes the good file's 3 rows, and records the hostile file's reason code in
audit.file_issues — or, for the inputs the reader now handles (a -2e11 number on a notes
sheet, 10-digit registration codes beside dates, 30,000 rows sharing a code), loads or
quarantines its rows as forms.md says. A file rejected transiently (no read permission) is
read again by the next run once restored."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Callable

import duckdb
import pytest

import hostile_fixtures as H
from reader_fixtures import G, htx_row

from coop.run import cache

GOOD = "2020/148/good.xlsx"


def _q(wh: Path, sql: str, *params: Any) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


@pytest.fixture()
def province(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.setenv("COOP_NO_PROGRESS", "1")
    # colleagues editing the reader while the suite runs must not change what a run reads
    monkeypatch.setattr(cache, "reader_fingerprint", lambda: "hostile-reader")
    raw = tmp_path / "raw"
    H.good_htx(raw / GOOD)
    (raw / "2020" / "157").mkdir(parents=True)
    return raw, tmp_path / "wh" / "coop.duckdb"


def run(raw: Path, wh: Path) -> int:
    from coop.run.runner import run_command

    return run_command(raw, wh, None, False)


def good_rows_loaded(wh: Path) -> None:
    got = _q(wh, "SELECT reg_code, name, members FROM raw.htx WHERE source_file = ? ORDER BY reg_code", GOOD)
    assert got == H.HTX_ROWS
    assert _q(wh, f"SELECT count(*) FROM audit.file_issues WHERE source_file = ? AND run_id = {LATEST}", GOOD) == [(0,)]


LATEST = "(SELECT run_id FROM audit.runs WHERE status = 'published' ORDER BY started_at DESC LIMIT 1)"


def issue_codes(wh: Path, source: str) -> list[str]:
    """The whole-file reason codes of `source` in the latest published run."""
    return [r[0] for r in _q(wh, "SELECT DISTINCT reason_code FROM audit.file_issues WHERE source_file = ? "
                                 f"AND sheet IS NULL AND run_id = {LATEST} ORDER BY 1", source)]


# --------------------------------------------------------------------------- hostile files rejected alone
def _xfd(d: Path) -> str:
    H.xfd_cell_xlsx(d / "xfd.xlsx")
    return "2020/157/xfd.xlsx"


def _xfd_undeclared(d: Path) -> str:  # the reader would abort (exit 134): only the worker dies
    H.xfd_cell_xlsx(d / "xfd-nodim.xlsx", declared=False)
    return "2020/157/xfd-nodim.xlsx"


def _stray(d: Path) -> str:
    H.stray_last_row_xlsx(d / "stray.xlsx")
    return "2020/157/stray.xlsx"


def _bomb(d: Path) -> str:
    H.zip_bomb_xlsx(d / "bomb.xlsx", mb=5)
    return "2020/157/bomb.xlsx"


def _non_utf8(d: Path) -> str:
    with open(os.fsencode(d) + b"/B\xe1o c\xe1o.xlsx", "wb") as fh:  # what unzip leaves from a Windows zip
        fh.write(b"PK\x03\x04 not really")
    return "2020/157/B\\xe1o c\\xe1o.xlsx"


def _symlink_out(d: Path) -> str:
    outside = H.good_htx(d.parents[2] / "elsewhere" / "other.xlsx")
    (d / "link.xlsx").symlink_to(outside)
    return "2020/157/link.xlsx"


CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "cell at XFD1048576 (declared)": (_xfd, "resource_limit"),
    "cell at XFD1048576 (undeclared: worker memory limit)": (_xfd_undeclared, "resource_limit"),
    "stray cell in row 1,048,576": (_stray, "resource_limit"),
    "zip bomb": (_bomb, "resource_limit"),
    "file name not UTF-8": (_non_utf8, "invalid_file_name"),
    "symlink out of the raw folder": (_symlink_out, "outside_raw_folder"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_is_rejected_alone(province, case):
    raw, wh = province
    make, code = CASES[case]
    source = make(raw / "2020" / "157")
    assert run(raw, wh) == 0
    good_rows_loaded(wh)
    assert issue_codes(wh, source) == [code]
    assert _q(wh, "SELECT count(*) FROM raw.htx WHERE source_file = ?", source) == [(0,)]
    assert _q(wh, "SELECT status FROM audit.runs ORDER BY started_at DESC LIMIT 1") == [("published",)]


def test_symlinked_folder_inside_is_reported_not_followed(province):
    raw, wh = province
    (raw / "2020" / "157").rmdir()
    (raw / "2020" / "157").symlink_to(raw / "2020" / "148", target_is_directory=True)
    assert run(raw, wh) == 0
    good_rows_loaded(wh)
    assert issue_codes(wh, "2020/157") == ["symlinked_folder"]
    assert _q(wh, "SELECT count(*) FROM raw.htx") == [(3,)]


# --------------------------------------------------------------------------- inputs the reader now handles
def test_minus_2e11_on_a_notes_sheet_loads(province):
    raw, wh = province
    H.htx_file(raw / "2020" / "157" / "neg.xlsx", [htx_row(1, "0201", "HTX Bốn")],
               [G("Ghi chú", H.big_notes_value_rows())])
    assert run(raw, wh) == 0
    good_rows_loaded(wh)
    assert _q(wh, "SELECT reg_code FROM raw.htx WHERE source_file = '2020/157/neg.xlsx'") == [("0201",)]
    assert issue_codes(wh, "2020/157/neg.xlsx") == []


def test_ten_digit_codes_beside_dates_load(province):
    raw, wh = province
    H.htx_file(raw / "2020" / "157" / "codes.xlsx", [
        htx_row(1, 2500123456, "HTX Bốn", established_on=dt.datetime(2016, 4, 5)),
        htx_row(2, 2500123457, "HTX Năm", established_on=dt.datetime(2018, 7, 9))])
    assert run(raw, wh) == 0
    good_rows_loaded(wh)
    assert _q(wh, "SELECT reg_code, established_on FROM raw.htx WHERE source_file = '2020/157/codes.xlsx' "
                  "ORDER BY 1") == [("2500123456", dt.date(2016, 4, 5)), ("2500123457", dt.date(2018, 7, 9))]


def test_thirty_thousand_rows_sharing_a_code_are_quarantined_with_short_reasons(province):
    raw, wh = province
    n = 30_000
    H.htx_file(raw / "2020" / "157" / "dup.xlsx", [htx_row(i + 1, "0201", f"HTX {i}") for i in range(n)])
    assert run(raw, wh) == 0
    good_rows_loaded(wh)
    got = _q(wh, "SELECT count(DISTINCT row_number), min(reason_code), max(reason_code), max(length(reason)) "
                 f"FROM audit.rejected_rows WHERE source_file = '2020/157/dup.xlsx' AND run_id = {LATEST}")
    assert got[0][:3] == (n, "duplicate_code", "duplicate_code")
    assert got[0][3] < 200  # a count and the first rows, not 30,000 row numbers
    assert _q(wh, "SELECT count(*) FROM raw.htx WHERE source_file = '2020/157/dup.xlsx'") == [(0,)]


# --------------------------------------------------------------------------- a transient failure is not cached
def test_unreadable_file_rejected_then_read_again_once_restored(province, monkeypatch):
    from test_hostile_reading import deny

    raw, wh = province
    locked = H.htx_file(raw / "2020" / "157" / "locked.xlsx", [htx_row(1, "0201", "HTX Bốn")])
    with monkeypatch.context() as mp:
        deny(mp, locked)  # chmod 000 (as root: open raises PermissionError)
        assert run(raw, wh) == 0
    os.chmod(locked, 0o644)
    good_rows_loaded(wh)
    assert issue_codes(wh, "2020/157/locked.xlsx") == ["unreadable_file"]

    assert run(raw, wh) == 0  # the same bytes, restored: read again, not a no-op
    good_rows_loaded(wh)
    assert _q(wh, "SELECT reg_code FROM raw.htx WHERE source_file = '2020/157/locked.xlsx'") == [("0201",)]
    assert _q(wh, "SELECT status FROM audit.runs ORDER BY started_at DESC LIMIT 1") == [("published",)]
    assert issue_codes(wh, "2020/157/locked.xlsx") == []
