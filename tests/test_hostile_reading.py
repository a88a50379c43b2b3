"""Reading limits and the file boundary, one hostile input at a time (issue 9): the container
pre-checks, the worker process (memory and time limits, a crash replaced), the reader's own
fixes (numbers beside dates, a reader panic), paths (non-UTF-8 names, symlinks, permissions),
the cache (a transient failure is never cached) and the duplicate reason bounded in size.
The whole-run counterparts are in tests/test_hostile_runs.py."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

import hostile_fixtures as H
from reader_fixtures import G, HTX_HEAD, htx_row, ingest, issues, rejected, write_xlsx

from coop.run import planning, steps, store
from coop.ingest import isolation
from coop.ingest.discover import discover
from coop.ingest.read import CELL_DATE, CELL_NUMBER, CELL_TEXT, excel_datetime, read_sheets
from coop.reference import load_reference

REF = load_reference()


def reason(result, code: str) -> str:
    found = [i.reason for i in result.file_issues if i.reason_code == code and i.sheet is None]
    assert found, issues(result)
    return found[0]


# --------------------------------------------------------------------------- pre-checks
def test_cell_at_xfd1048576_declared_is_rejected_before_the_parse(tmp_path, monkeypatch):
    p = H.xfd_cell_xlsx(tmp_path / "xfd.xlsx")
    calls = []
    monkeypatch.setattr(isolation._POOL, "run", lambda *a: calls.append(a))  # never reaches the reader
    r = ingest(p)
    assert issues(r) == [("", "resource_limit", "rejected")]
    text = reason(r, "resource_limit")
    assert "Trang 'HTX'" in text and "A1:XFD1048576" in text and "1.048.576 dòng × 16.384 cột" in text
    assert "COOP_READ_MAX_SHEET_ROWS" in text and text.endswith("[resource_limit]")
    assert calls == [] and not r.transient


def test_stray_cell_in_the_last_row_is_rejected(tmp_path):
    r = ingest(H.stray_last_row_xlsx(tmp_path / "stray.xlsx"))
    assert issues(r) == [("", "resource_limit", "rejected")]
    assert "A1:D1048576" in reason(r, "resource_limit")


def test_zip_bomb_is_rejected_with_its_ratio(tmp_path):
    p = H.zip_bomb_xlsx(tmp_path / "bomb.xlsx", mb=5)
    assert p.stat().st_size < 20_000
    r = ingest(p)
    assert issues(r) == [("", "resource_limit", "rejected")]
    text = reason(r, "resource_limit")
    assert "xl/worksheets/sheet1.xml" in text and "5 MB" in text and ":1" in text and "COOP_READ_MAX_COMPRESSION_RATIO" in text


@pytest.mark.parametrize("setting, value, words", [
    ("MAX_SHARED_STRINGS_MB", "0.0001", "sharedStrings.xml"),
    ("MAX_SHEETS", "1", "2 trang tính"),
    ("MAX_FILE_MB", "0.001", "Tệp nặng"),
    ("MAX_ZIP_ENTRIES", "3", "thành phần nén"),
    ("MAX_UNCOMPRESSED_MB", "0.001", "giải nén ra"),
    ("MAX_SHEET_CELLS", "10", "vượt giới hạn 10 ô"),
])
def test_each_container_limit_is_a_setting(tmp_path, monkeypatch, setting, value, words):
    p = write_xlsx(tmp_path / "two.xlsx", [G("HTX", [HTX_HEAD, htx_row(1, "0101", "HTX Một")]),
                                           G("Ghi chú", [["Báo cáo năm 2020"]])])
    assert issues(ingest(p)) == [("Ghi chú", "unrecognized_sheet", "ignored")]  # passes by default
    monkeypatch.setenv(f"COOP_READ_{setting}", value)
    r = ingest(p)
    assert issues(r) == [("", "resource_limit", "rejected")]
    assert words in reason(r, "resource_limit") and f"COOP_READ_{setting}" in reason(r, "resource_limit")


def test_limits_read_the_environment(monkeypatch):
    assert isolation.limits().memory_mb == isolation.DEFAULTS["memory_mb"]
    monkeypatch.setenv("COOP_READ_MEMORY_MB", "4096")
    monkeypatch.setenv("COOP_READ_TIME_S", "nonsense")
    lim = isolation.limits()
    assert lim.memory_mb == 4096 and lim.time_s == isolation.DEFAULTS["time_s"]
    assert "memory_mb=4096" in isolation.limits_key(lim)


# --------------------------------------------------------------------------- the worker
def test_undeclared_huge_sheet_is_stopped_by_the_worker_memory_limit_and_the_next_file_reads(tmp_path):
    bad = H.xfd_cell_xlsx(tmp_path / "xfd.xlsx", declared=False)
    good = H.good_htx(tmp_path / "good.xlsx")
    r = ingest(bad)  # the reader aborts (exit 134) in the worker, not in this process
    assert issues(r) == [("", "resource_limit", "rejected")]
    assert "512 GB" in reason(r, "resource_limit") and "COOP_READ_MEMORY_MB" in reason(r, "resource_limit")
    ok = ingest(good)
    assert issues(ok) == [] and ok.forms["HTX"].height == 3


def test_time_limit_rejects_the_file_as_transient(tmp_path, monkeypatch):
    p = H.good_htx(tmp_path / "good.xlsx")
    lim = isolation.limits()
    slow = isolation.Limits(**{**lim.__dict__, "time_s": 0.000001})
    with pytest.raises(isolation.ResourceLimit) as e:
        isolation.read_sheets_limited(p, slow)
    assert e.value.transient and "quá thời gian" in str(e.value) and "COOP_READ_TIME_S" in str(e.value)
    assert [s.name for s in isolation.read_sheets_limited(p)] == ["HTX"]  # a fresh worker


def test_worker_is_reused_across_files(tmp_path):
    p = H.good_htx(tmp_path / "good.xlsx")
    isolation.read_sheets_limited(p)
    pids = set()
    for _ in range(3):
        isolation.read_sheets_limited(p)
        pids |= {w.proc.pid for w in isolation._POOL._idle}
    assert len(pids) == 1


def test_workers_stop_together_and_at_once(tmp_path):
    """`shutdown_workers` (also at exit) hangs up on every idle worker before it waits for any,
    and a worker leaves at EOF without the interpreter's teardown (`_worker_process`), with exit
    code 0. (The teardown took ≈ 0.6 s per worker at the end of every run.)"""
    import threading

    p = H.good_htx(tmp_path / "good.xlsx")
    isolation.shutdown_workers()
    lim = isolation.limits()
    two = isolation.Limits(**{**lim.__dict__, "workers": 2})
    threads = [threading.Thread(target=isolation.read_sheets_limited, args=(p, two)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    workers = list(isolation._POOL._idle)
    assert workers and all(w.alive for w in workers)
    order: list[str] = []
    for w in workers:
        hang_up, close = w.hang_up, w.close
        w.hang_up = lambda h=hang_up, w=w: (order.append(f"hang up {w.proc.pid}"), h())[1]  # type: ignore[method-assign]
        w.close = lambda c=close, w=w: (order.append(f"close {w.proc.pid}"), c())[1]  # type: ignore[method-assign]
    isolation.shutdown_workers()
    assert [w.proc.returncode for w in workers] == [0] * len(workers)
    assert order[:len(workers)] == [f"hang up {w.proc.pid}" for w in workers]  # every worker told first
    assert isolation._POOL._idle == []


def test_files_are_normalized_in_the_worker_as_they_would_be_here(tmp_path, monkeypatch):
    """Reading and normalizing run in the worker process (the parent only waits): the result is
    the one the same code gives in this process, and the Reference is sent to a worker once."""
    good = H.good_htx(tmp_path / "good.xlsx")
    bad = H.htx_file(tmp_path / "bad.xlsx", [htx_row(1, "0101", "HTX Một"), htx_row(2, "0101", "HTX Hai", members=-5)])
    sent = []
    real = isolation._Worker.call

    def spy(self, path, lim, job=None, reference=None):
        sent.append((job is not None, reference is not None and reference is not self.reference))
        return real(self, path, lim, job, reference)

    monkeypatch.setattr(isolation._Worker, "call", spy)
    isolation.shutdown_workers()
    in_worker = [ingest(good), ingest(bad), ingest(good)]
    assert sent == [(True, True), (True, False), (True, False)]  # one worker, the Reference sent once
    monkeypatch.setenv("COOP_READ_ISOLATION", "0")
    here = [ingest(good), ingest(bad), ingest(good)]
    for a, b in zip(in_worker, here, strict=True):
        assert a.forms.keys() == b.forms.keys() and all(a.forms[k].equals(b.forms[k]) for k in a.forms)
        assert a.rejected_rows.equals(b.rejected_rows) and a.file_issues == b.file_issues and a.sheets == b.sheets
    # hand-worked: the code 0101 on both rows, and members -5 on the second
    assert sorted((c, code) for _, _, c, code in rejected(in_worker[1])) == [
        ("members", "negative_value"), ("reg_code", "duplicate_code"), ("reg_code", "duplicate_code")]
    assert in_worker[0].forms["HTX"].height == 3


def test_a_failure_while_normalizing_in_the_worker_is_the_files_issue(tmp_path, monkeypatch):
    """An exception of the normalizing step comes back from the worker as itself: the file is
    rejected with its type and message (not cached: it may be a bug, not the bytes), the run goes on."""
    p = H.good_htx(tmp_path / "good.xlsx")
    monkeypatch.setattr(isolation._POOL, "run", lambda *a: ("raise", ZeroDivisionError("chia cho 0")))
    r = ingest(p)
    assert issues(r) == [("", "unreadable_file", "rejected")] and r.transient
    assert "ZeroDivisionError" in reason(r, "unreadable_file") and "chia cho 0" in reason(r, "unreadable_file")

    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no")

    e = isolation._picklable(Unpicklable("x"))
    assert type(e) is RuntimeError and "Unpicklable: x" in str(e)
    assert type(isolation._picklable(ValueError("v"))) is ValueError


def test_warm_up_reads_into_the_cache_until_told_to_stop(tmp_path):
    """steps.warm_up (reading while the orchestrator starts): files read one at a time into the
    cache until the stop event is set; what it cached is what reading gives."""
    import threading

    raw = tmp_path / "raw"
    for name in ("a", "b", "c"):
        H.good_htx(raw / "2020" / "148" / f"{name}.xlsx")
    files, iss = discover(raw, REF)
    plan = planning.plan_from_discovery(files, iss, raw, tmp_path / "wh" / "coop.duckdb")
    state = store.state_dir(tmp_path / "wh" / "coop.duckdb")  # where the plan looks for cached results
    stop = threading.Event()
    real = steps.read_files
    seen = []

    def read_then_stop(batch, reference, st):
        out = real(batch, reference, st)
        seen.append(batch[0].source_file)
        if len(seen) == 2:
            stop.set()
        return out

    steps.read_files = read_then_stop
    try:
        assert steps.warm_up(plan.to_read, REF, state, stop) == 2
    finally:
        steps.read_files = real
    again = planning.plan_from_discovery(files, iss, raw, tmp_path / "wh" / "coop.duckdb")
    assert [f.source_file for f in again.to_read] == ["2020/148/c.xlsx"]  # the two others are cached
    cached = steps.cached_files([f for f in again.files if not f.read], state, REF)
    from coop.ingest.normalize import ingest_file

    fresh = [ingest_file(f.raw, REF) for f in again.files if not f.read]
    assert [r.forms["HTX"].equals(f.forms["HTX"]) for r, f in zip(cached, fresh, strict=True)] == [True, True]
    assert all(r.forms["HTX"].height == 3 for r in cached)


def test_one_worker_per_core_by_default(monkeypatch):
    monkeypatch.delenv("COOP_READ_WORKERS", raising=False)
    assert isolation.worker_count(isolation.limits()) == (os.cpu_count() or 1)
    monkeypatch.setenv("COOP_READ_WORKERS", "1")
    assert isolation.worker_count(isolation.limits()) == 1


def test_in_process_mode_still_prechecks(tmp_path, monkeypatch):
    monkeypatch.setenv("COOP_READ_ISOLATION", "0")
    assert issues(ingest(H.xfd_cell_xlsx(tmp_path / "xfd.xlsx"))) == [("", "resource_limit", "rejected")]
    assert ingest(H.good_htx(tmp_path / "good.xlsx")).forms["HTX"].height == 3


# --------------------------------------------------------------------------- the reader
def test_numeric_cell_below_minus_1e11_on_a_notes_sheet_does_not_panic(tmp_path):
    p = H.htx_file(tmp_path / "neg.xlsx", [htx_row(1, "0101", "HTX Một")], [G("Ghi chú", H.big_notes_value_rows())])
    r = ingest(p)
    assert issues(r) == [("Ghi chú", "unrecognized_sheet", "ignored")]
    assert r.forms["HTX"]["reg_code"].to_list() == ["0101"]
    notes = next(s for s in read_sheets(p) if s.name == "Ghi chú")
    assert (notes.kinds[1][1], notes.columns[1][1]) == (CELL_NUMBER, -2e11)
    assert (notes.kinds[1][2], notes.columns[1][2]) == (CELL_DATE, dt.datetime(2021, 1, 15))


def test_ten_digit_registration_codes_beside_dates_load(tmp_path):
    rows = [htx_row(1, 2500123456, "HTX Một", established_on=dt.datetime(2015, 3, 1)),
            htx_row(2, 4200987654, "HTX Hai", established_on=dt.datetime(2019, 12, 31))]
    r = ingest(H.htx_file(tmp_path / "codes.xlsx", rows))
    assert issues(r) == [] and rejected(r) == []
    df = r.forms["HTX"]
    assert df["reg_code"].to_list() == ["2500123456", "4200987654"]
    assert df["established_on"].to_list() == [dt.date(2015, 3, 1), dt.date(2019, 12, 31)]


def test_date_formatted_cell_below_minus_1e11_reads_the_sheet_without_it(tmp_path):
    import xlsxwriter

    p = tmp_path / "datecell.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet("HTX")
    f = wb.add_format({"num_format": "dd/mm/yyyy"})
    ws.write_row(0, 0, HTX_HEAD)
    ws.write_row(1, 0, htx_row(1, "0101", "HTX \"Một\" \\ Tân", established_on=None))
    ws.write_number(1, 5, -2e11, f)  # established_on: a date cell no calendar has
    wb.close()
    sheet = read_sheets(p)[0]
    assert sheet.error is None
    assert sheet.columns[2][1] == 'HTX "Một" \\ Tân' and sheet.kinds[2][1] == CELL_TEXT
    assert (sheet.kinds[5][1], sheet.columns[5][1]) == (CELL_NUMBER, -2e11)
    assert rejected(ingest(p)) == [("HTX", 2, "established_on", "invalid_date")]


@pytest.mark.parametrize("payload, expected", [
    ("ExcelDateTime { value: 43832.0, datetime_type: DateTime, is_1904: false }", dt.datetime(2020, 1, 2)),
    ("ExcelDateTime { value: 43832.5, datetime_type: DateTime, is_1904: false }", dt.datetime(2020, 1, 2, 12)),
    ("ExcelDateTime { value: 1.0, datetime_type: DateTime, is_1904: false }", dt.datetime(1900, 1, 1)),
    ("ExcelDateTime { value: 59.0, datetime_type: DateTime, is_1904: false }", dt.datetime(1900, 2, 28)),
    ("ExcelDateTime { value: 61.0, datetime_type: DateTime, is_1904: false }", dt.datetime(1900, 3, 1)),
    ("ExcelDateTime { value: 42370.0, datetime_type: DateTime, is_1904: true }", dt.datetime(2020, 1, 2)),
    ("ExcelDateTime { value: -200000000000.0, datetime_type: DateTime, is_1904: false }", -2e11),
    ("ExcelDateTime { value: 1e300, datetime_type: DateTime, is_1904: false }", 1e300),
    ("nonsense", None),
])
def test_excel_serials_as_calamine_computes_them(payload, expected):
    assert excel_datetime(payload) == expected


def test_a_reader_panic_is_caught_at_the_file_boundary(tmp_path, monkeypatch):
    class PanicException(BaseException):  # what pyo3 raises: not an Exception
        pass

    def panic(path, reference=None, job=None, lim=None):
        raise PanicException("TimeDelta::milliseconds out of bounds")

    monkeypatch.setattr(isolation, "ingest_limited", panic)
    r = ingest(H.good_htx(tmp_path / "good.xlsx"))
    assert issues(r) == [("", "unreadable_file", "rejected")]
    assert "PanicException" in reason(r, "unreadable_file") and r.transient


def test_ctrl_c_is_not_swallowed(tmp_path, monkeypatch):
    def interrupt(path, reference=None, job=None, lim=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(isolation, "ingest_limited", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ingest(H.good_htx(tmp_path / "good.xlsx"))


# --------------------------------------------------------------------------- duplicates stay linear
def test_rows_sharing_a_code_give_short_reasons(tmp_path):
    n = 3_000  # 30,000 in tests/test_hostile_runs.py
    rows = [htx_row(i + 1, "0101", f"HTX {i}") for i in range(n)]
    r = ingest(H.htx_file(tmp_path / "dup.xlsx", rows))
    rej = r.rejected_rows
    assert rej.height == n and set(rej["reason_code"].to_list()) == {"duplicate_code"}
    text = rej["reason"][0]
    assert "3000 dòng (2, 3, 4, 5, 6, …)" in text
    assert rej["reason"].str.len_chars().max() < 200


# --------------------------------------------------------------------------- paths
def _put(root: Path, rel: str, data: bytes = b"x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_non_utf8_names_are_rejected_per_file(tmp_path):
    raw = tmp_path / "raw"
    _put(raw, "2020/148/good.xlsx")
    bad_dir = os.fsencode(raw / "2020" / "148") + b"/B\xe1o c\xe1o.xlsx"  # cp1258 bytes, as unzip leaves them
    with open(bad_dir, "wb") as fh:
        fh.write(b"x")
    folder = os.fsencode(raw / "2020") + b"/Huy\xea\xf2n"
    os.makedirs(folder)
    with open(folder + b"/a.xlsx", "wb") as fh:
        fh.write(b"x")
    files, iss = discover(raw, REF)
    assert [f.source_file for f in files] == ["2020/148/good.xlsx"]
    got = {i.source_file: i.reason_code for i in iss}
    assert got == {"2020/148/B\\xe1o c\\xe1o.xlsx": "invalid_file_name", "2020/Huy\\xea\\xf2n/a.xlsx": "invalid_file_name"}
    assert all(i.source_file.encode("utf-8") and "UTF-8" in i.reason for i in iss)


def test_symlinks_leaving_the_raw_folder_are_rejected(tmp_path):
    raw = tmp_path / "raw"
    outside = _put(tmp_path / "elsewhere", "secret.xlsx")
    _put(raw, "2020/148/good.xlsx")
    (raw / "2020" / "148" / "link.xlsx").symlink_to(outside)
    (raw / "2020" / "157").symlink_to(outside.parent, target_is_directory=True)
    (raw / "2020" / "148" / "inside.xlsx").symlink_to(raw / "2020" / "148" / "good.xlsx")  # read: stays inside
    files, iss = discover(raw, REF)
    assert [f.source_file for f in files] == ["2020/148/good.xlsx", "2020/148/inside.xlsx"]
    assert {i.source_file: i.reason_code for i in iss} == {
        "2020/148/link.xlsx": "outside_raw_folder", "2020/157": "outside_raw_folder"}
    assert all("symlink" in i.reason for i in iss)


def test_symlinked_folder_inside_and_loops_are_reported(tmp_path):
    raw = tmp_path / "raw"
    _put(raw, "2020/148/good.xlsx")
    (raw / "2020" / "157").symlink_to(raw / "2020" / "148", target_is_directory=True)
    (raw / "2020" / "148" / "loop.xlsx").symlink_to(raw / "2020" / "148" / "loop.xlsx")
    (raw / "2020" / "148" / "a.xlsx").symlink_to(raw / "2020" / "148" / "b.xlsx")
    (raw / "2020" / "148" / "b.xlsx").symlink_to(raw / "2020" / "148" / "a.xlsx")
    files, iss = discover(raw, REF)
    assert [f.source_file for f in files] == ["2020/148/good.xlsx"]
    assert {i.source_file: i.reason_code for i in iss} == {
        "2020/157": "symlinked_folder", "2020/148/loop.xlsx": "symlink_loop",
        "2020/148/a.xlsx": "symlink_loop", "2020/148/b.xlsx": "symlink_loop"}


def test_unlistable_folder_is_reported(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    _put(raw, "2020/148/good.xlsx")
    _put(raw, "2020/157/a.xlsx")
    locked = raw / "2020" / "157"
    os.chmod(locked, 0)
    if os.geteuid() == 0:  # root lists every folder: listing it fails as it does for the run's user
        real = os.scandir

        def scandir(path="."):
            if os.path.abspath(os.fspath(path)) == str(locked):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        files, iss = discover(raw, REF)
    finally:
        os.chmod(locked, 0o755)
    assert [f.source_file for f in files] == ["2020/148/good.xlsx"]
    assert {i.source_file: i.reason_code for i in iss} == {"2020/157": "unreadable_file"}


def deny(monkeypatch, target: Path) -> None:
    """Reading `target` fails with PermissionError: chmod 000, or (as root, who reads anyway)
    a monkeypatched open."""
    os.chmod(target, 0)
    if os.geteuid() != 0:
        return
    import builtins

    real = builtins.open
    denied = str(target.resolve())

    def guarded(file, *a, **k):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) == denied:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)


def test_unreadable_file_never_stops_hashing_and_is_read_again_next_time(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    good = H.good_htx(raw / "2020" / "148" / "good.xlsx")
    locked = H.good_htx(raw / "2020" / "157" / "locked.xlsx")
    state = tmp_path / ".state"
    with monkeypatch.context() as mp:
        deny(mp, locked)
        hashed = store.hash_files({"a": good, "b": locked}, state)
        assert hashed["b"].file_hash == "" and hashed["a"].file_hash == store.sha256_file(good)
        files, _ = discover(raw, REF)
        plan = planning.make_plan(files, raw, state, {})
        results = steps.read_files(plan.to_read, REF, state)
    os.chmod(locked, 0o644)
    by = {r.source_file: r for r in results}
    assert issues(by["2020/157/locked.xlsx"]) == [("", "unreadable_file", "rejected")]
    assert "Không có quyền đọc tệp" in reason(by["2020/157/locked.xlsx"], "unreadable_file")
    assert by["2020/148/good.xlsx"].forms["HTX"].height == 3
    assert store.read_retry(state) == {"2020/157/locked.xlsx": ""}
    assert len(store.cached_keys(state)) == 1  # only the good file's result

    files, _ = discover(raw, REF)
    plan = planning.make_plan(files, raw, state, {})
    assert [f.source_file for f in plan.to_read] == ["2020/157/locked.xlsx"]
    again = steps.read_files(plan.to_read, REF, state)
    assert again[0].forms["HTX"].height == 3 and issues(again[0]) == []
    assert store.read_retry(state) == {}


def test_hash_state_survives_a_non_utf8_path(tmp_path):
    d = os.fsencode(tmp_path) + b"/B\xe1o.xlsx"
    with open(d, "wb") as fh:
        fh.write(b"abc")
    p = Path(os.fsdecode(d))
    out = store.hash_files({"x": p}, tmp_path / ".state")
    assert out["x"].file_hash == store.sha256_file(p)
    assert store.hash_files({"x": p}, tmp_path / ".state")["x"].hashed_now is False  # read back from the state


def test_a_transient_failure_is_not_cached_and_blocks_the_no_op(tmp_path, monkeypatch):
    import duckdb

    import coop.ingest.normalize
    from coop.warehouse.publish import file_identity

    raw = tmp_path / "raw"
    H.good_htx(raw / "2020" / "148" / "good.xlsx")
    wh = tmp_path / "wh" / "coop.duckdb"
    wh.parent.mkdir()
    duckdb.connect(str(wh)).close()  # a published warehouse (empty ledger)
    state = store.state_dir(wh)
    files, _ = discover(raw, REF)
    plan = planning.plan_from_discovery(files, [], raw, wh)
    store.write_published(state, {"fingerprint": plan.fingerprint, "identity": file_identity(wh)})
    assert plan.retry == [] and planning.is_unchanged(plan, wh)  # as if that build had been published

    real = coop.ingest.normalize.ingest_file

    def flaky(rawf, reference):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(coop.ingest.normalize, "ingest_file", flaky)
    r = steps.read_files(plan.to_read, REF, state)[0]
    assert issues(r) == [("", "unreadable_file", "rejected")] and r.transient
    assert store.cached_keys(state) == set() and list(store.read_retry(state)) == ["2020/148/good.xlsx"]

    again = planning.plan_from_discovery(files, [], raw, wh)  # same bytes, same fingerprint, but retried
    assert again.fingerprint == plan.fingerprint and again.retry == ["2020/148/good.xlsx"]
    assert not planning.is_unchanged(again, wh) and [f.source_file for f in again.to_read] == ["2020/148/good.xlsx"]

    monkeypatch.setattr(coop.ingest.normalize, "ingest_file", real)
    assert steps.read_files(again.to_read, REF, state)[0].forms["HTX"].height == 3
    assert store.read_retry(state) == {} and len(store.cached_keys(state)) == 1
    assert planning.is_unchanged(planning.plan_from_discovery(files, [], raw, wh), wh)


def test_a_fifo_is_not_read(tmp_path):
    raw = tmp_path / "raw"
    _put(raw, "2020/148/good.xlsx")
    os.mkfifo(raw / "2020" / "148" / "pipe.csv")
    files, iss = discover(raw, REF)
    assert [f.source_file for f in files] == ["2020/148/good.xlsx"]
    assert {i.source_file: i.reason_code for i in iss} == {"2020/148/pipe.csv": "unreadable_file"}


def test_path_problems_of_other_years_are_not_reported_in_a_years_run(tmp_path):
    raw = tmp_path / "raw"
    _put(raw, "2020/148/good.xlsx")
    _put(raw, "2019/148/good.xlsx")
    (raw / "2019" / "157").symlink_to(tmp_path, target_is_directory=True)
    with open(os.fsencode(raw / "2019" / "148") + b"/B\xe1o.xlsx", "wb") as fh:
        fh.write(b"x")
    files, iss = discover(raw, REF, (2020, 2020))
    assert [f.source_file for f in files] == ["2020/148/good.xlsx"] and iss == []
    files, iss = discover(raw, REF)
    assert {i.reason_code for i in iss} == {"outside_raw_folder", "invalid_file_name"}


def test_an_io_error_under_the_reader_is_transient(tmp_path, monkeypatch):
    p = H.good_htx(tmp_path / "good.xlsx")
    monkeypatch.setattr(isolation._POOL, "run", lambda path, lim, *job: ("read", "CalamineError: Io error: Input/output error (os error 5)"))
    r = ingest(p)
    assert issues(r) == [("", "unreadable_file", "rejected")] and r.transient
    monkeypatch.setattr(isolation._POOL, "run", lambda path, lim, *job: ("read", "CalamineError: Zip error: invalid Zip archive"))
    r = ingest(p)
    assert issues(r) == [("", "unreadable_file", "rejected")] and not r.transient  # the bytes are bad: cached


def test_after_reading_the_workers_stop_and_loaded_rows_are_dropped(tmp_path):
    """What the flow does once reading is over (`steps.release_readers`) and once the rows are in
    the build (`steps.release_frames`): no idle worker holds memory through the load and the
    models, and a result keeps its issues and sheets but no rows (national scale: ≈ 0.8 GiB)."""
    from coop.ingest.normalize import REJECTED_ROW_SCHEMA

    good = H.good_htx(tmp_path / "good.xlsx")
    bad = H.htx_file(tmp_path / "bad.xlsx", [htx_row(1, "0101", "HTX Một"), htx_row(2, "0102", "HTX Hai", members=-5)])
    results = [ingest(good), ingest(bad)]
    assert isolation._POOL._idle  # read in a worker, which waits for the next file
    steps.release_readers()
    assert isolation._POOL._idle == []
    rows = results[0].forms["HTX"].height
    assert rows > 0 and results[1].rejected_rows.height == 1
    kept = [(list(r.file_issues), list(r.sheets)) for r in results]
    steps.release_frames(results)
    assert [r.forms for r in results] == [{}, {}]
    assert [(r.rejected_rows.height, r.rejected_rows.schema) for r in results] == [(0, REJECTED_ROW_SCHEMA)] * 2
    assert [(r.file_issues, r.sheets) for r in results] == kept
    assert ingest(good).forms["HTX"].height == rows  # a later read starts a new worker
