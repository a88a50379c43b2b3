"""Incremental runs: a second run reads no spreadsheet and leaves the published data as it was;
a changed file replaces its rows; a removed file removes them (and the ledger says so); a
backfill re-reads its years; audit.runs accumulates across rebuilds. Reading is counted with
the stand-in reader of tests/pipeline_fixture.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop.run import planning, store
from coop.run.runner import backfill_command, run_command


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _q(wh: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture()
def setup(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # the reading code is the stand-in: keep the real reader's source fingerprint out of it
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader")
    calls = F.install(monkeypatch)
    raw = F.write_raw(tmp_path / "raw")
    wh = tmp_path / "wh" / "coop.duckdb"
    return raw, wh, calls


def test_second_run_reads_nothing_and_keeps_the_data(setup, monkeypatch):
    raw, wh, calls = setup
    assert run_command(raw, wh, None, False) == 0
    assert sorted(calls) == ["2020/148/htx.csv", "2020/157/htx.csv"]
    published = _sha(wh)
    calls.clear()

    # prove that nothing reads a spreadsheet: the reader now explodes if called
    def boom(*a, **k):
        raise AssertionError("a spreadsheet was read")

    import coop.ingest.normalize

    monkeypatch.setattr(coop.ingest.normalize, "ingest_file", boom)
    assert run_command(raw, wh, None, False) == 0
    assert calls == []
    assert _sha(wh) == published  # not even rewritten
    pending = store.read_pending_runs(store.state_dir(wh))
    assert [p["status"] for p in pending] == ["unchanged"]


def test_changed_file_replaces_its_rows_removed_file_removes_them(setup):
    raw, wh, calls = setup
    assert run_command(raw, wh, None, False) == 0
    calls.clear()

    f157 = raw / "2020" / "157" / "htx.csv"
    f157.write_text(F.htx_csv(["0201,HTX Bốn,htx,2018-01-10,agriculture,active,9,9,200,20,2.0,false"]), encoding="utf-8")
    # 4 register rows become 3 (a quarter gone): the rows guard wants the operator's word
    assert run_command(raw, wh, None, False, allow_shrink=True) == 0
    assert calls == ["2020/157/htx.csv"]  # only the changed file was read
    h157 = _sha(f157)
    assert _q(wh, "SELECT reg_code, members, file_hash FROM raw.htx WHERE unit_code='157'") == [("0201", 9, h157)]
    assert _q(wh, "SELECT count(*) FROM raw.htx WHERE unit_code='148'") == [(2,)]
    assert dict(_q(wh, "SELECT source_file, status FROM audit.files")) == {
        "2020/148/htx.csv": "unchanged", "2020/157/htx.csv": "changed", "notes.txt": "rejected"}
    # province figures follow: active 0101 (10), 0102 (20), 0201 (9)
    assert _q(wh, "SELECT active_count, members FROM marts.province_indicators WHERE year=2020 AND entity_type='HTX'") == [(3, 39)]

    calls.clear()
    (raw / "2020" / "148" / "htx.csv").unlink()
    # a unit that reported last night is gone: the publish guard refuses it unless the operator says so
    assert run_command(raw, wh, None, False) == 1
    assert run_command(raw, wh, None, False, allow_shrink=True) == 0
    assert calls == []
    assert _q(wh, "SELECT count(*) FROM raw.htx WHERE unit_code='148'") == [(0,)]
    assert _q(wh, "SELECT count(*) FROM audit.rejected_rows r JOIN (SELECT run_id FROM audit.runs "
                  "WHERE status='published' ORDER BY started_at DESC LIMIT 1) USING (run_id)") == [(0,)]
    assert dict(_q(wh, "SELECT source_file, status FROM audit.files")) == {
        "2020/148/htx.csv": "removed", "2020/157/htx.csv": "unchanged", "notes.txt": "rejected"}
    assert _q(wh, "SELECT active_count, members FROM marts.province_indicators WHERE year=2020 AND entity_type='HTX'") == [(1, 9)]
    # the refused run (a unit gone, without --allow-shrink) is recorded as failed
    assert [r[0] for r in _q(wh, "SELECT status FROM audit.runs ORDER BY started_at")] == [
        "published", "published", "failed", "published"]


def test_backfill_rereads_its_years(setup):
    raw, wh, calls = setup
    assert run_command(raw, wh, None, False) == 0
    calls.clear()
    assert backfill_command(raw, wh, (2020, 2020), False) == 0
    assert sorted(calls) == ["2020/148/htx.csv", "2020/157/htx.csv"]
    calls.clear()
    assert backfill_command(raw, wh, (2018, 2019), False) == 0
    assert calls == []  # no file of those years
    assert _q(wh, "SELECT kind, backfill_years FROM audit.runs ORDER BY started_at") == [
        ("nightly", None), ("backfill", "2020"), ("backfill", "2018-2019")]


def test_reader_change_rereads_everything(setup, monkeypatch):
    """A new reader fingerprint (rules, vocabularies or PARSER_VERSION changed) re-reads every file."""
    raw, wh, calls = setup
    assert run_command(raw, wh, None, False) == 0
    calls.clear()
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader-v2")
    assert run_command(raw, wh, None, False) == 0
    assert sorted(calls) == ["2020/148/htx.csv", "2020/157/htx.csv"]


def test_touched_but_identical_file_is_not_read(setup):
    """A file whose mtime changed but whose bytes did not is hashed again, found identical, not read."""
    raw, wh, calls = setup
    assert run_command(raw, wh, None, False) == 0
    calls.clear()
    f = raw / "2020" / "148" / "htx.csv"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert run_command(raw, wh, None, False) == 0
    assert calls == []


def test_cache_round_trip_keeps_a_real_file_result(tmp_path):
    """A FileResult of the real reader comes back from the cache equal: frames with their
    types, quarantined rows, file issues and sheet infos (also an empty, rejected file)."""
    from coop.ingest.discover import discover
    from coop.ingest.normalize import ingest_file
    from coop.reference import load_reference
    from sample.generate import generate

    raw = tmp_path / "raw"
    generate(raw)
    ref = load_reference()
    files, _ = discover(raw, ref, (2020, 2020))
    results = [ingest_file(f, ref) for f in files]
    picked = [max(results, key=lambda r: r.rejected_rows.height),  # one with quarantine
              max(results, key=lambda r: len(r.forms)),  # several forms
              *[r for r in results if r.rejected][:1]]  # a rejected file, if the sample has one
    state = tmp_path / "state"
    for i, r in enumerate(picked):
        store.store_result(state, f"k{i}", r)
        back = store.load_result(state, f"k{i}")
        assert type(back) is type(r)
        assert (back.source_file, back.year, back.unit_code, back.file_hash) == \
            (r.source_file, r.year, r.unit_code, r.file_hash)
        assert back.modified_at == r.modified_at
        assert sorted(back.forms) == sorted(r.forms)
        for form, df in r.forms.items():
            assert back.forms[form].schema == df.schema
            assert back.forms[form].equals(df)
        assert back.rejected_rows.schema == r.rejected_rows.schema and back.rejected_rows.equals(r.rejected_rows)
        assert back.file_issues == r.file_issues
        assert back.sheets == r.sheets
    assert sorted(p.name for p in (state / "cache").iterdir()) == [f"k{i}.result" for i in range(len(picked))]
