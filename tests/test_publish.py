"""Atomic publish (coop.warehouse.publish) and the flow's failure paths: a failing error-level data test
or a broken model leaves the previous warehouse byte-identical and no build file behind; an
analyst's read-only connection keeps working through a publish."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop.run import planning, store
from coop.warehouse import load, publish
from coop.paths import SQL_DIR


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _make(path: Path, value: str) -> None:
    con = load.open_build(path)
    con.execute("CREATE TABLE t AS SELECT ? AS v", [value]).fetchall()
    publish.finalize_build(con)


ANALYST = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    print(con.execute("SELECT v, count(*) OVER () FROM t").fetchall(), flush=True)
"""


def test_reader_keeps_working_through_publish(tmp_path):
    """An analyst in another process keeps a read-only connection open across a publish."""
    import subprocess
    import sys

    target = tmp_path / "coop.duckdb"
    _make(target, "old")
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(target)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        def ask() -> str:
            analyst.stdin.write("q\n")
            analyst.stdin.flush()
            return analyst.stdout.readline().strip()

        assert ask() == "[('old', 1)]"
        build = tmp_path / ".coop.duckdb.build-r2"
        _make(build, "new")
        publish.publish(build, target)
        # the open connection still reads the file it opened (the old inode), again and again
        assert ask() == "[('old', 1)]"
        assert ask() == "[('old', 1)]"
        analyst.stdin.write("quit\n")
        analyst.stdin.flush()
        assert analyst.wait(timeout=60) == 0
    finally:
        if analyst.poll() is None:
            analyst.kill()
    # a new connection sees the new build
    fresh = duckdb.connect(str(target), read_only=True)
    assert fresh.execute("SELECT v FROM t").fetchall() == [("new",)]
    fresh.close()
    assert not build.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coop.duckdb"]


def test_publish_refuses_a_build_in_another_folder(tmp_path):
    (tmp_path / "a").mkdir()
    _make(tmp_path / "a" / "b.duckdb", "x")
    with pytest.raises(publish.PublishError):
        publish.publish(tmp_path / "a" / "b.duckdb", tmp_path / "coop.duckdb")
    assert not (tmp_path / "coop.duckdb").exists()


def test_discard_removes_build_and_wal(tmp_path):
    b = tmp_path / ".coop.duckdb.build-x"
    b.write_bytes(b"x")
    (tmp_path / ".coop.duckdb.build-x.wal").write_bytes(b"y")
    publish.discard(b)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- through the flow
@pytest.fixture()
def published(tmp_path, monkeypatch, prefect_harness):
    """A warehouse published once from the small fixture province."""
    from flows.nightly import nightly_run

    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader")  # stand-in reader
    F.install(monkeypatch)
    raw = F.write_raw(tmp_path / "raw")
    wh = tmp_path / "wh" / "coop.duckdb"
    s = nightly_run(raw_dir=raw, warehouse=wh)
    assert s.status == "published"
    return raw, wh


def _leftovers(wh: Path) -> list[str]:
    return sorted(p.name for p in wh.parent.iterdir() if ".build-" in p.name or ".tmp-" in p.name)


def test_failing_error_test_blocks_publish_and_keeps_the_warehouse(tmp_path, published):
    from flows.nightly import RunFailed, nightly_run

    raw, wh = published
    before = _sha(wh)
    tests_dir = tmp_path / "tests_sql"
    shutil.copytree(SQL_DIR / "tests", tests_dir)
    (tests_dir / "zz_injected_failure.sql").write_text(
        "-- severity: error\n-- description: injected failure: every HTX is an offender\n"
        "SELECT reg_code, name FROM raw.htx\n", encoding="utf-8")
    with pytest.raises(RunFailed) as ei:
        nightly_run(raw_dir=raw, warehouse=wh, tests_dir=tests_dir)
    s = ei.value.summary
    assert s.status == "failed"
    assert "zz_injected_failure" in s.error and "4 offending row" in s.error
    assert _sha(wh) == before
    assert _leftovers(wh) == []
    # the failed run is remembered and lands in audit.runs with the next published build
    pending = store.read_pending_runs(store.state_dir(wh))
    assert [p["status"] for p in pending] == ["failed"]
    # with the project's tests the inputs equal the published build's: nothing to rebuild
    s_unchanged = nightly_run(raw_dir=raw, warehouse=wh)
    assert s_unchanged.status == "unchanged"
    assert _sha(wh) == before
    # its report still says what the warehouse holds (read from the published file)
    assert s_unchanged.quarantine == {"negative_value": 1}
    assert {(d["unit_code"], d["rows_loaded"], d["rows_rejected"]) for d in s_unchanged.districts} == {
        ("148", 2, 1), ("157", 2, 0)}
    assert [i["source_file"] for i in s_unchanged.file_issues] == ["notes.txt"]
    with open(raw / "2020" / "157" / "htx.csv", "a", encoding="utf-8") as f:
        f.write("0203,HTX Sáu,htx,2020-06-01,agriculture,active,4,4,50,5,1.5,false\n")
    assert nightly_run(raw_dir=raw, warehouse=wh).status == "published"
    con = duckdb.connect(str(wh), read_only=True)
    statuses = [r[0] for r in con.execute("SELECT status FROM audit.runs ORDER BY started_at").fetchall()]
    con.close()
    assert statuses == ["published", "failed", "unchanged", "published"]
    assert store.read_pending_runs(store.state_dir(wh)) == []


def test_broken_model_keeps_the_warehouse(tmp_path, published):
    from flows.nightly import RunFailed, nightly_run

    raw, wh = published
    before = _sha(wh)
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    p = sql / "marts" / "province_indicators.sql"
    p.write_text(p.read_text(encoding="utf-8") + "\nTHIS IS NOT SQL", encoding="utf-8")
    with pytest.raises(RunFailed) as ei:
        nightly_run(raw_dir=raw, warehouse=wh, sql_dir=sql)
    assert ei.value.summary.status == "failed"
    assert _sha(wh) == before
    assert _leftovers(wh) == []


def test_cli_failure_exits_nonzero_cleanly(tmp_path):
    """`coop run` that cannot publish (here: an impossible storage version setting) exits 1,
    says why and that the last published warehouse is unchanged, and prints no traceback and
    no Prefect noise (ephemeral mode, a real subprocess)."""
    import os
    import subprocess
    import sys

    (tmp_path / "raw" / "2020").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COOP_"))}
    env.update({"COOP_STORAGE_VERSION": "v0.0.0-not-a-version", "COOP_NO_PROGRESS": "1"})
    r = subprocess.run([sys.executable, "-m", "coop.cli", "run", "--raw-dir", str(tmp_path / "raw"),
                        "--warehouse", str(tmp_path / "wh" / "coop.duckdb")],
                       env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "FAILED — nothing published" in out
    assert "Why:" in out and "not-a-version" in out
    assert "The last published warehouse is unchanged" in out
    assert "Traceback" not in r.stdout + r.stderr
    assert "prefect" not in r.stderr.lower() and "Flow run" not in r.stdout + r.stderr
    assert not (tmp_path / "wh" / "coop.duckdb").exists()
    assert [p.name for p in (tmp_path / "wh").iterdir() if ".build-" in p.name] == []
