"""The night survives every hostile file (issue 9), through a whole `coop run` (`run_command`,
the CLI's function, in this process under the Prefect test harness):

- `test_one_night_with_every_hostile_class`: the small generated province (sample/generate.py
  `generate_small_province`, 10 files 2023-2025, with its ground truth) plus every class of the
  hostile corpus (tests/hostile_fixtures.py, each in its own unit folder) in ONE run. The run
  exits 0 and publishes; every good file's rows equal the generator's ground truth; each
  hostile file is rejected alone with its reason, or its rows are loaded / quarantined (sheet,
  row, column, reason) / skipped per kind exactly as planted (audit.current_file_issues,
  audit.current_rejected_rows, audit.sheets, raw.*). A registration code two units list in one
  year counts once in the province figures and the warning data test names it.
- a 30,000-row file sharing one code (the issue's figure) stays linear: short reasons;
- a file rejected transiently (no read permission) is read again by the next run once restored;
- a warehouse folder on a read-only mount stops the run at once with a message, not a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

import hostile_fixtures as H
from coop.ingest.discover import display_name
from coop.run import planning
from reader_fixtures import htx_row

ROOT = Path(__file__).resolve().parent.parent
GOOD = "2020/148/good.xlsx"
LATEST = "(SELECT run_id FROM audit.runs WHERE status = 'published' ORDER BY started_at DESC LIMIT 1)"


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
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "hostile-reader")
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


def issue_codes(wh: Path, source: str) -> list[str]:
    """The whole-file reason codes of `source` in the latest published run."""
    return [r[0] for r in _q(wh, "SELECT DISTINCT reason_code FROM audit.file_issues WHERE source_file = ? "
                                 f"AND sheet IS NULL AND run_id = {LATEST} ORDER BY 1", source)]


# --------------------------------------------------------------------------- every class in one night
RAW_TABLES = ("raw.htx", "raw.tht", "raw.ho_tro", "raw.chi_tieu")


def _warehouse_outcome(con: Any, source: str, want: H.Outcome) -> H.Outcome:
    """What the published warehouse holds for one source file, in the terms of an Outcome."""
    loaded = sum(con.execute(f"SELECT count(*) FROM {t} WHERE source_file = ?", [source]).fetchall()[0][0]
                 for t in RAW_TABLES)
    bad = frozenset(con.execute("SELECT sheet, row_number, column_name, reason_code FROM audit.current_rejected_rows "
                                "WHERE source_file = ?", [source]).fetchall())
    issues = frozenset((s or "", c, sev) for s, c, sev in con.execute(
        "SELECT sheet, reason_code, severity FROM audit.current_file_issues WHERE source_file = ?",
        [source]).fetchall())
    cur = con.execute("SELECT * FROM audit.sheets WHERE source_file = ? AND status = 'loaded'", [source])
    cols = [d[0] for d in cur.description]
    skipped: Counter[str] = Counter()
    header_rows = {}
    for row in cur.fetchall():
        rec = dict(zip(cols, row, strict=True))
        for c, v in rec.items():
            if c.startswith("rows_skipped_") and v:
                skipped[c.removeprefix("rows_skipped_")] += v
        if rec["sheet"] in want.header_rows:
            header_rows[rec["sheet"]] = rec["header_row"]
    values = {}
    for (sheet, row, column) in want.values:
        for t in RAW_TABLES:
            cols_t = [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
            if column in cols_t:
                hit = con.execute(f"SELECT {column} FROM {t} WHERE source_file = ? AND sheet = ? AND row_number = ?",
                                  [source, sheet, row]).fetchall()
                if hit:
                    values[(sheet, row, column)] = hit[0][0]
    return H.Outcome(loaded=loaded, bad=bad, skipped=dict(skipped), issues=issues, values=values,
                     header_rows=header_rows)


def _same(got: H.Outcome, want: H.Outcome) -> bool:
    return (got.loaded, got.bad, dict(got.skipped), got.issues, dict(got.values), dict(got.header_rows)) == \
        (want.loaded, want.bad, {k: v for k, v in want.skipped.items() if v}, want.issues, dict(want.values),
         dict(want.header_rows))


def test_one_night_with_every_hostile_class(tmp_path, monkeypatch, prefect_harness):
    import truth as T
    from sample.generate import generate_small_province

    monkeypatch.setenv("COOP_NO_PROGRESS", "1")
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "hostile-reader")
    raw, wh = tmp_path / "raw", tmp_path / "wh" / "coop.duckdb"
    truth = T.load(generate_small_province(raw, "25"))
    cases = H.corpus()
    sources: dict[str, str] = {}
    for case in cases:
        path = H.build(case, raw)
        sources[case.name] = display_name(os.path.relpath(path, raw).replace(os.sep, "/"))
        if case.deny:
            H.deny(monkeypatch, path)

    started = time.monotonic()
    assert run(raw, wh) == 0
    took = time.monotonic() - started
    print(f"one night, {len(cases)} hostile classes + {len(truth.files)} good files: {took:.1f} s")
    assert _q(wh, "SELECT status FROM audit.runs ORDER BY started_at DESC LIMIT 1") == [("published",)]

    con = duckdb.connect(str(wh), read_only=True)
    try:
        # every good file is loaded, row for row as the generator wrote it
        for form, table, cols in (("HTX", "raw.htx", ("reg_code", "name", "members", "status", "established_on")),
                                  ("THT", "raw.tht", ("name", "members", "status")),
                                  ("HO_TRO", "raw.ho_tro", ("reg_code", "amount"))):
            want = {(r["source_file"], r["sheet"], r["row_number"],
                     *(dt.date.fromisoformat(r[c]) if c == "established_on" else r[c] for c in cols))
                    for r in truth.forms[form]}
            got = set(con.execute(f"SELECT source_file, sheet, row_number, {', '.join(cols)} FROM {table} "
                                  f"WHERE source_file IN (SELECT unnest(?))", [truth.files]).fetchall())
            assert want and got == want, form
        assert con.execute("SELECT count(*) FROM audit.current_file_issues WHERE source_file IN (SELECT unnest(?))",
                           [truth.files]).fetchall() == [(0,)]

        # each hostile class: rejected alone, or its rows loaded / quarantined / skipped as planted
        wrong = []
        for case in cases:
            got = _warehouse_outcome(con, sources[case.name], case.expect)
            if not any(_same(got, o) for o in case.outcomes):
                wrong.append(f"{case.name} [{sources[case.name]}] ({case.issue}"
                             f"{'; built by ' + case.feature if case.feature else ''}):\n"
                             f"    planted  {case.expect}\n    in the warehouse {got}")
        assert not wrong, f"{len(wrong)} of {len(cases)} classes differ:\n" + "\n".join(wrong)

        # a registration code two units list in 2022 counts once, and the warning data test names it
        assert con.execute("SELECT sum(active_count), sum(members) FROM marts.province_indicators "
                           "WHERE year = 2022 AND entity_type = 'HTX'").fetchall() == [(1, 20)]
        sql = (ROOT / "sql" / "tests" / "reg_code_in_several_districts.sql").read_text(encoding="utf-8")
        named = con.execute(sql).fetchall()
        assert [(r[0], r[1], r[2]) for r in named] == [(2022, "2599990001", 2)]
    finally:
        con.close()


# --------------------------------------------------------------------------- the issue's 30,000 rows
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
    raw, wh = province
    locked = H.htx_file(raw / "2020" / "157" / "locked.xlsx", [htx_row(1, "0201", "HTX Bốn")])
    with monkeypatch.context() as mp:
        H.deny(mp, locked)  # chmod 000 (as root: open raises PermissionError)
        assert run(raw, wh) == 0
    os.chmod(locked, 0o644)
    good_rows_loaded(wh)
    assert issue_codes(wh, "2020/157/locked.xlsx") == ["unreadable_file"]

    assert run(raw, wh) == 0  # the same bytes, restored: read again, not a no-op
    good_rows_loaded(wh)
    assert _q(wh, "SELECT reg_code FROM raw.htx WHERE source_file = '2020/157/locked.xlsx'") == [("0201",)]
    assert _q(wh, "SELECT status FROM audit.runs ORDER BY started_at DESC LIMIT 1") == [("published",)]
    assert issue_codes(wh, "2020/157/locked.xlsx") == []


# --------------------------------------------------------------------------- §2: a read-only warehouse mount
def test_a_read_only_warehouse_folder_is_refused_with_a_message(tmp_path, monkeypatch, capsys):
    """The warehouse folder on a read-only mount (EROFS for every write, root included): the run
    exits 1 at once with a Vietnamese sentence then the English one, no traceback, nothing
    changed. Simulated: every open for writing under the folder fails as a read-only mount does
    (the published file, read-only, still opens)."""
    import errno

    from coop.run.runner import run_command

    raw = tmp_path / "raw"
    H.good_htx(raw / GOOD)
    wh = tmp_path / "wh" / "coop.duckdb"
    wh.parent.mkdir()
    wh.write_bytes(b"published")  # what is there stays byte for byte
    folder = str(wh.parent.resolve())
    real_open, real_mkdir = os.open, os.mkdir
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def ro_open(path, flags, *a, **k):
        if flags & writing and os.path.abspath(os.fspath(path)).startswith(folder):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_open(path, flags, *a, **k)

    def ro_mkdir(path, *a, **k):
        if os.path.abspath(os.fspath(path)).startswith(folder + os.sep):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_mkdir(path, *a, **k)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    monkeypatch.setenv("COOP_NO_PROGRESS", "1")
    assert run_command(raw, wh, None, False) == 1
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert "Traceback" not in text
    assert "chỉ đọc" in text and "read-only" in text.lower() and str(wh.parent) in text
    assert wh.read_bytes() == b"published" and sorted(p.name for p in wh.parent.iterdir()) == ["coop.duckdb"]
