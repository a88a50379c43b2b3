"""The incremental build (issue 10, target 2): a run where a few files changed starts from a
copy of the published warehouse and redoes only what those files affect — and the warehouse
is the one a full rebuild gives, table by table and row by row.

One warehouse follows a raw folder through a sequence of changes (one file changed; one added,
one removed and one only touched; a resubmission superseding an older file and a file that
becomes rejected; the resubmission withdrawn), each published by `coop run` (the nightly flow,
incremental). Before each run the full path's plain functions build the same inputs from the
same published file (`full_rebuild`); the two are compared table by table: raw.* (but the run
that loaded a row), staging/core/marts (doubles to 1e-12: `same_value`), ref.*,
audit.files/sheets, the quarantine and file issues of every run, audit.runs' figures. At the
end both are compared with a run on an empty warehouse folder (current state). The files read
and the cached results loaded back are counted: only the affected ones. Expected figures are
worked by hand from the rows written here (tests/pipeline_fixture.py writes HTX files; THT
files are written below).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop.run import planning, steps, store
from coop.run.runner import run_command

REAL = planning.incremental_basis  # before the fixture wraps it
REAL_INGEST = F.ingest_file  # the real reader (the fixture counts its calls)

THT_HEADER = ("Tên THT,Ngày thành lập,Lĩnh vực,Tình trạng,Số thành viên,Số lao động,Doanh thu,Lợi nhuận,"
              "Thu nhập bình quân")

# fractional money on purpose: averages of doubles, compared across builds (`same_value`)
HTX_148_2020 = ["0101,HTX Một,htx,2020-03-01,agriculture,active,10,8,100.1,10.3,3.1,true",
                "0102,HTX Hai,htx,2019-05-01,transport,active,20,,300.7,30.1,4.3,false",
                "0103,HTX Ba,htx,2019-05-01,transport,active,-5,,300,30,4.0,false"]  # members < 0: quarantined
HTX_157_2020 = ["0201,HTX Bốn,htx,2018-01-10,agriculture,active,7,7,200.3,20.7,2.2,false",
                "0202,HTX Năm,htx,2020-02-02,agriculture,dissolved,3,3,,,,false"]
HTX_148_2021 = ["0101,HTX Một,htx,2020-03-01,agriculture,active,11,8,110.9,11.1,3.3,true",
                "0102,HTX Hai,htx,2019-05-01,transport,active,21,,310.1,31.7,4.1,false"]
HTX_157_2021 = ["0201,HTX Bốn,htx,2018-01-10,agriculture,active,8,7,210.7,21.3,2.3,false"]


def tht_csv(rows: list[str]) -> str:
    return THT_HEADER + "\n" + "\n".join(rows) + "\n"


def write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def write_province(raw: Path) -> None:
    write(raw / "2020" / "148" / "htx.csv", F.htx_csv(HTX_148_2020))
    write(raw / "2020" / "157" / "htx.csv", F.htx_csv(HTX_157_2020))
    write(raw / "2020" / "157" / "tht.csv", tht_csv([
        "THT Suối Hoa,2019-05-01,Nông nghiệp,Đang hoạt động,12,10,50.3,5.1,1.7",
        "THT Bãi Nai,2020-06-01,Nông nghiệp,Đang hoạt động,9,9,40.9,4.3,1.3"]))
    write(raw / "2021" / "148" / "htx.csv", F.htx_csv(HTX_148_2021))
    write(raw / "2021" / "157" / "htx.csv", F.htx_csv(HTX_157_2021))
    write(raw / "notes.txt", "not a report\n")  # misplaced: rejected by discovery


def q(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


#: columns naming a run (differ between two warehouses by construction)
RUN_COLUMNS = {"run_id", "first_seen_run", "last_run", "started_at", "finished_at", "built_at", "message"}


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [(s, t) for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "ORDER BY 1, 2").fetchall()]


def snapshot(wh: Path, history: bool = True) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, run-naming columns left out; the quarantine and file issues
    with their run as its rank in audit.runs (all runs with `history`). Without `history`, the
    current state only: the latest published run's quarantine and issues, and the ledger's
    current files without their status (new/changed/unchanged is relative to the previous
    build, and a build from nothing has no removed files)."""
    con = duckdb.connect(str(wh), read_only=True)
    try:
        runs = [r[0] for r in con.execute("SELECT run_id FROM audit.runs ORDER BY started_at, run_id").fetchall()]
        latest = con.execute("SELECT run_id FROM audit.runs WHERE status = 'published' "
                             "ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]
        out: dict[str, list[tuple]] = {}
        for schema, table in _tables(con):
            name = f"{schema}.{table}"
            if name == "meta.build_info" or (name == "audit.runs" and not history):
                continue
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()]
            keep = [c for c in cols if c not in RUN_COLUMNS and not (name == "audit.files" and not history
                                                                      and c == "status")]
            sel = ", ".join(f'"{c}"' for c in keep)
            if name in ("audit.rejected_rows", "audit.file_issues"):
                rows = con.execute(f"SELECT run_id, {sel} FROM {name}").fetchall()
                if history:
                    rows = [(runs.index(r[0]), *r[1:]) for r in rows]
                else:
                    rows = [r[1:] for r in rows if r[0] == latest]
            elif name == "audit.runs":
                rows = con.execute(f"SELECT {sel} FROM {name} ORDER BY started_at, run_id").fetchall()
            elif name == "audit.files" and not history:
                rows = con.execute(f"SELECT {sel} FROM {name} WHERE status <> 'removed'").fetchall()
            else:
                rows = con.execute(f"SELECT {sel} FROM {name}").fetchall()
            out[name] = sorted(rows, key=repr) if name != "audit.runs" else rows
        return out
    finally:
        con.close()


def same_value(x: object, y: object) -> bool:
    """Equal, doubles to 1e-12 relative: DuckDB's parallel hash aggregation adds doubles in an
    order that depends on thread timing, so two full builds of the same file already differ in
    the last bits of an average (measured: 3 different core.agg_indicators in 8 runs of the models
    on one file with 2 threads, 1 with 1 thread; docs/performance.md "One changed file")."""
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(x) and math.isnan(y))
    return x == y


def assert_same(a: Path, b: Path, history: bool = True) -> None:
    sa, sb = snapshot(a, history), snapshot(b, history)
    assert sorted(sa) == sorted(sb)
    for name in sa:
        ra, rb = sa[name], sb[name]
        where = f"{name} differs between {a.parent.name}/{a.name} and {b.parent.name}/{b.name}"
        assert len(ra) == len(rb), where
        for x, y in zip(ra, rb, strict=True):
            assert len(x) == len(y) and all(same_value(u, v) for u, v in zip(x, y, strict=True)), \
                f"{where}: {x} != {y}"


def full_rebuild(raw: Path, wh: Path, out: Path) -> None:
    """What flows/nightly.py's full path builds from the warehouse `wh` as published: every file
    read by the real reader, resubmissions chosen, `load_build` (history carried from `wh`), the
    models, the run recorded — the plain functions, without Prefect, into the file `out`."""
    from datetime import UTC, datetime

    from coop.ingest.discover import discover
    from coop.ingest.normalize import select_submissions
    from coop.warehouse import load
    from coop.warehouse.models import run_models

    ref = F.load_reference()
    files, issues = discover(raw, ref)
    plan = planning.plan_from_discovery(files, issues, raw, wh)
    results = steps.load_order([REAL_INGEST(f.raw, ref) for f in plan.files])
    selected = select_submissions(results)
    extra = list(issues) + steps.superseded_issues(results, selected)
    run = load.RunRecord(run_id=f"reference-{out.stem}", started_at=datetime.now(UTC), status="failed")
    built = load.load_build(out, wh, ref, plan, selected, extra, run, load.read_ledger(wh),
                            store.read_pending_runs(store.state_dir(wh)))
    run.files_seen, run.files_loaded, run.files_rejected = built.files_seen, built.files_loaded, built.files_rejected
    run.rows_loaded, run.rows_rejected = built.rows_loaded, built.rows_rejected
    con = load.open_build(out)
    try:
        run_models(con)
    finally:
        con.close()
    run.status, run.finished_at = "published", datetime.now(UTC)
    load.finish_run(out, run)


@pytest.fixture()
def world(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader")
    reads = F.install(monkeypatch)
    bases: list[tuple[bool, str]] = []

    def basis(*a, **k):
        inc, why = REAL(*a, **k)
        bases.append((inc is not None, why))
        return inc, why

    monkeypatch.setattr(planning, "incremental_basis", basis)
    real_cached = steps.cached_files
    loaded: list[str] = []  # cached results loaded back whole (parquet)

    def cached(batch, state, reference=None):
        loaded.extend(f.source_file for f in batch)
        return real_cached(batch, state, reference)

    monkeypatch.setattr(steps, "cached_files", cached)
    raw = tmp_path / "raw"
    write_province(raw)
    return raw, tmp_path / "wh" / "coop.duckdb", reads, loaded, bases


def test_incremental_build_equals_a_full_rebuild_through_a_sequence_of_changes(world, tmp_path):
    raw, inc, reads, loaded, bases = world
    n = 0

    def step(expect_read: list[str], expect_loaded: list[str]) -> None:
        nonlocal n
        n += 1
        reference = tmp_path / f"full-{n}.duckdb"
        full_rebuild(raw, inc, reference)  # the full build of the same inputs, from the same published file
        reads.clear()
        loaded.clear()
        bases.clear()
        assert run_command(raw, inc, None, False, allow_shrink=True) == 0
        assert bases == [(True, "")]  # the incremental path was taken
        assert sorted(reads) == sorted(expect_read)
        assert sorted(loaded) == sorted(expect_loaded)
        assert_same(inc, reference)

    assert run_command(raw, inc, None, False) == 0  # first build: nothing published yet, full
    assert bases == [(False, "no published build recorded for this file")]

    # 1. one file changed: 0201 now 9 members, 0202 gone, 0203 (est. 2020, 4 members) new.
    # The THT file of the same folder keeps its form: not loaded back.
    write(raw / "2020" / "157" / "htx.csv", F.htx_csv([
        "0201,HTX Bốn,htx,2018-01-10,agriculture,active,9,9,200.3,20.7,2.2,false",
        "0203,HTX Sáu,htx,2020-04-04,handicraft,active,4,4,60.9,6.1,1.9,false"]))
    step(["2020/157/htx.csv"], [])
    # 2020 HTX active: 0101 (10), 0102 (20), 0201 (9), 0203 (4); new in 2020: 0101, 0203
    assert q(inc, "SELECT active_count, members, new_formed FROM marts.province_indicators "
                  "WHERE year = 2020 AND entity_type = 'HTX'") == [(4, 43, 2)]
    assert q(inc, "SELECT reg_code FROM raw.htx WHERE source_file = '2020/157/htx.csv' ORDER BY 1") == [
        ("0201",), ("0203",)]

    # 2. one file added (Đà Bắc, 150, reports for 2021), one removed, one only touched (same
    # bytes, new time: not read, taken whole from the cache; the HTX file of its folder is not)
    write(raw / "2021" / "150" / "htx.csv", F.htx_csv([
        "0301,HTX Bảy,htx,2021-02-02,agriculture,active,15,12,80.3,8.7,2.9,false"]))
    (raw / "2021" / "157" / "htx.csv").unlink()
    tht = raw / "2020" / "157" / "tht.csv"
    st = tht.stat()
    os.utime(tht, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    step(["2021/150/htx.csv"], ["2020/157/tht.csv"])
    assert q(inc, "SELECT active_count, members FROM marts.province_indicators "
                  "WHERE year = 2021 AND entity_type = 'HTX'") == [(3, 47)]  # 11 + 21 + 15
    assert q(inc, "SELECT status FROM audit.files WHERE source_file = '2021/157/htx.csv'") == [("removed",)]
    assert q(inc, "SELECT count(*) FROM raw.htx WHERE source_file = '2021/157/htx.csv'") == [(0,)]

    # 3. a resubmission (newer) supersedes the older file of its folder — the older file's
    # outcome changes, so it alone is loaded back from the cache — and a file becomes rejected
    # (no header of any form)
    old = raw / "2020" / "148" / "htx.csv"
    new = write(raw / "2020" / "148" / "htx-nop-lai.csv", F.htx_csv(HTX_148_2020[:2]))
    st = old.stat()
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns + 60_000_000_000))
    write(raw / "2021" / "148" / "htx.csv", "Báo cáo\nkhông có bảng\n")
    step(["2020/148/htx-nop-lai.csv", "2021/148/htx.csv"], ["2020/148/htx.csv"])
    assert dict(q(inc, "SELECT source_file, status FROM audit.files WHERE source_file LIKE '2020/148/%'")) == {
        "2020/148/htx.csv": "superseded", "2020/148/htx-nop-lai.csv": "new"}
    assert q(inc, "SELECT count(*) FROM audit.current_rejected_rows WHERE source_file = '2020/148/htx.csv'") == [(0,)]
    assert q(inc, "SELECT DISTINCT source_file FROM raw.htx WHERE year = 2020 AND unit_code = '148'") == [
        ("2020/148/htx-nop-lai.csv",)]
    assert q(inc, "SELECT status, rows_loaded FROM audit.files WHERE source_file = '2021/148/htx.csv'") == [
        ("rejected", 0)]
    assert q(inc, "SELECT active_count, members FROM marts.province_indicators "
                  "WHERE year = 2021 AND entity_type = 'HTX'") == [(1, 15)]

    # 4. the resubmission withdrawn: the older file is used again (loaded back: its outcome changed)
    new.unlink()
    step([], ["2020/148/htx.csv"])
    assert dict(q(inc, "SELECT source_file, status FROM audit.files WHERE source_file LIKE '2020/148/%'")) == {
        "2020/148/htx.csv": "unchanged", "2020/148/htx-nop-lai.csv": "removed"}
    assert q(inc, "SELECT count(*) FROM audit.current_rejected_rows WHERE source_file = '2020/148/htx.csv'") == [(1,)]

    # and both equal a build from nothing (an empty warehouse folder): the current state
    fresh = tmp_path / "fresh" / "coop.duckdb"
    assert run_command(raw, fresh, None, False) == 0
    assert_same(inc, fresh, history=False)
    # raw rows of files kept as published keep the run that loaded them (docs/architecture.md)
    runs = q(inc, "SELECT count(DISTINCT run_id) FROM raw.htx")[0][0]
    assert runs > 1


def test_any_doubt_is_a_full_rebuild(world):
    """No published build, a fresh run, a --years run, another SQL fingerprint, a published
    file replaced behind the run's back: no incremental basis, with the reason."""
    raw, inc, _, _, _ = world
    from coop.ingest.discover import discover
    from coop.warehouse.load import read_ledger

    def basis(**kw):
        files, issues = discover(raw, F.load_reference(), kw.get("years"))
        plan = planning.plan_from_discovery(files, issues, raw, inc, years=kw.get("years"))
        if "parts" in kw:
            plan.parts = dict(plan.parts, **kw["parts"])
        return REAL(plan, inc, read_ledger(inc), issues, kw.get("fresh", False))

    assert basis()[0] is None  # nothing published
    assert run_command(raw, inc, None, False) == 0
    good, why = basis()
    assert good is not None and why == ""
    assert good.affected == [] and good.others == [] and "2020/148/htx.csv" in good.kept
    assert basis(fresh=True) == (None, "fresh rebuild")
    assert basis(years=(2020, 2020)) == (None, "run limited to some years, or a backfill")
    assert basis(parts={"sql": "another"}) == (None, "reader, SQL, tests, settings, storage or schema version changed")
    st = inc.stat()
    os.utime(inc, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # another file in its place
    assert basis() == (None, "no published build recorded for this file")

