"""The quick nothing-changed check of `coop run` (coop.run.quick, issue 10 target 3): the full
check records what it found with a stat snapshot of the inputs; the next plain `coop run` whose
snapshot is the same records the same no-op run (pending run, run report, console summary)
without typer, polars, DuckDB or Prefect; any change of an input sends it to the full check."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline_fixture as F
from coop.paths import PROJECT_ROOT
from coop.run import planning, quick, store
from coop.run.runner import run_command
from coop.warehouse.publish import file_identity

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
HEAVY = ("polars", "duckdb", "typer", "prefect", "rich", "pandera", "fastexcel")


@pytest.fixture(scope="module")
def published_once(tmp_path_factory, prefect_harness):
    """The small fixture province published once (a real flow run) for the module."""
    root = tmp_path_factory.mktemp("quick")
    with pytest.MonkeyPatch.context() as mp:
        _stand_ins(mp)
        raw = F.write_raw(root / "raw")
        wh = root / "wh" / "coop.duckdb"
        assert run_command(raw, wh, None, False) == 0
    assert not (store.state_dir(wh) / quick.RECORD_NAME).exists()  # a publish writes none
    return root


def _stand_ins(mp: pytest.MonkeyPatch) -> None:
    mp.delenv("PREFECT_API_URL", raising=False)
    mp.delenv("COOP_QUICK_CHECK", raising=False)
    mp.setattr(planning, "reader_fingerprint", lambda: "test-reader")  # the pipeline tests' stand-in reader
    F.install(mp)


@pytest.fixture
def noop(published_once, tmp_path, monkeypatch):
    """A copy of the published province (its files' times kept; published.json told the copy's
    identity, as if it had been published here), then a full nothing-changed check, which
    writes the record: (raw, warehouse, the full check's console output)."""
    _stand_ins(monkeypatch)
    monkeypatch.setattr(quick, "RACY_NS", 0)  # the files were written a moment ago
    shutil.copytree(published_once, tmp_path / "w", ignore=shutil.ignore_patterns("prefect.db*"))
    raw, wh = tmp_path / "w" / "raw", tmp_path / "w" / "wh" / "coop.duckdb"
    state = store.state_dir(wh)
    store.write_published(state, {**store.read_published(state), "identity": file_identity(wh)})
    buf = io.StringIO()
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", buf)
        assert run_command(raw, wh, None, False) == 0
    assert "Nothing changed" in buf.getvalue() and (state / quick.RECORD_NAME).is_file()
    return raw, wh, buf.getvalue()


def _argv(raw: Path, wh: Path, *more: str) -> list[str]:
    return ["run", "--raw-dir", str(raw), "--warehouse", str(wh), *more]


def _same(text: str) -> str:
    return RUN_ID.sub("<run>", text)


def test_quick_check_records_the_same_noop_run_as_the_full_check(noop):
    raw, wh, full_out = noop
    pending_before = store.read_pending_runs(store.state_dir(wh))
    out = io.StringIO()
    assert quick.quick_run(_argv(raw, wh), out) == 0
    assert _same(out.getvalue()) == _same(full_out)  # the same console summary, tables included
    assert "Rows: 4 loaded, 1 quarantined" in out.getvalue()  # the fixture province (F.write_raw)
    full, fast = store.read_pending_runs(store.state_dir(wh))[-2:]
    assert len(store.read_pending_runs(store.state_dir(wh))) == len(pending_before) + 1
    per_run = ("run_id", "started_at", "finished_at")
    assert {k: v for k, v in fast.items() if k not in per_run} == {k: v for k, v in full.items() if k not in per_run}
    assert fast["status"] == "unchanged" and fast["files_seen"] == 3 and fast["rows_loaded"] == 4
    reports = {r.name: r for r in (wh.parent / "reports").glob("run-*.md")}
    full_rep, fast_rep = reports[f"run-{full['run_id']}.md"], reports[f"run-{fast['run_id']}.md"]
    clock = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|\d+\.\d+ s")
    assert clock.sub("<t>", _same(fast_rep.read_text())) == clock.sub("<t>", _same(full_rep.read_text()))


def test_quick_check_imports_nothing_heavy_and_the_command_line_takes_it(noop):
    raw, wh, _ = noop
    code = ("import sys; from coop.run.quick import quick_run; rc = quick_run(sys.argv[1:], open('/dev/null', 'w')); "
            f"print(rc, [m for m in {HEAVY!r} if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code, *_argv(raw, wh)], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, timeout=60)
    assert res.stdout.strip() == "0 []", res.stdout + res.stderr
    res = subprocess.run([sys.executable, "-m", "coop.cli", *_argv(raw, wh)], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, timeout=120)
    assert res.returncode == 0 and "Nothing changed" in res.stdout, res.stdout + res.stderr
    assert [p["status"] for p in store.read_pending_runs(store.state_dir(wh))][-3:] == ["unchanged"] * 3


def _rewrite_same_size(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    p = raw / "2020" / "157" / "htx.csv"
    st = p.stat()
    text = p.read_text(encoding="utf-8").replace("HTX Bốn", "HTX Bồn")  # same length in UTF-8
    p.write_text(text, encoding="utf-8")
    assert p.stat().st_size == st.st_size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime: only ctime tells


def _add_file(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    (raw / "2020" / "157" / "ghi-chu.txt").write_text("ghi chú\n", encoding="utf-8")


def _remove_file(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    (raw / "notes.txt").unlink()


def _replace_warehouse(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    copy = wh.with_name("copy.duckdb")
    shutil.copy2(wh, copy)
    os.replace(copy, wh)  # same bytes, another file (as a rollback would put one)


def _retry_listed(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    store.note_retry(store.state_dir(wh), [("2020/148/htx.csv", "", True)])


def _setting(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("COOP_BACKLOG_WINDOW_YEARS", "5")


def _link(raw: Path, wh: Path, mp: pytest.MonkeyPatch) -> None:
    (raw / "2020" / "lien-ket").symlink_to(raw / "2020" / "157", target_is_directory=True)


@pytest.mark.parametrize("change", [_rewrite_same_size, _add_file, _remove_file, _replace_warehouse, _retry_listed,
                                    _setting, _link])
def test_any_change_of_an_input_sends_the_run_to_the_full_check(noop, change, monkeypatch):
    raw, wh, _ = noop
    change(raw, wh, monkeypatch)
    n = len(store.read_pending_runs(store.state_dir(wh)))
    assert quick.quick_run(_argv(raw, wh), io.StringIO()) is None
    assert len(store.read_pending_runs(store.state_dir(wh))) == n  # nothing recorded by the quick check


def test_a_file_rewritten_with_its_old_size_and_mtime_is_rebuilt(noop):
    raw, wh, _ = noop
    _rewrite_same_size(raw, wh, pytest.MonkeyPatch())
    assert quick.quick_run(_argv(raw, wh), io.StringIO()) is None
    assert run_command(raw, wh, None, False) == 0
    assert store.read_pending_runs(store.state_dir(wh)) == []  # a build was published: pending runs recorded
    assert ("HTX Bồn",) in F.query(wh, "SELECT name FROM raw.htx")


@pytest.mark.parametrize("argv", [["run", "--years", "2020"], ["backfill", "--all"], ["run", "--raw-dir"],
                                  ["--province", "VN", "run"], ["run", "--fresh"], ["status"]])
def test_only_a_plain_coop_run_takes_the_quick_check(argv):
    assert quick.run_options(argv) is None


def test_plain_run_options_are_read_like_the_command_line():
    assert quick.run_options(["run", "--raw-dir=r", "--warehouse", "w/x.duckdb", "--wait", "--allow-shrink"]) == (
        Path("r"), Path("w/x.duckdb"), True)
    assert quick.run_options(["run"])[:2] == (PROJECT_ROOT / "data" / "raw",
                                              PROJECT_ROOT / "data" / "warehouse" / "coop.duckdb")


def test_a_prefect_server_sends_every_run_through_the_flow(noop, monkeypatch):
    raw, wh, _ = noop
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert quick.quick_run(_argv(raw, wh), io.StringIO()) is None


def test_a_code_file_rewritten_in_place_changes_the_snapshot(noop, tmp_path, monkeypatch):
    raw, wh, _ = noop
    project = tmp_path / "project"
    for d in quick.CODE_DIRS:
        (project / d).mkdir(parents=True)
    model = project / "sql" / "m.sql"
    model.write_text("SELECT 1\n", encoding="utf-8")
    monkeypatch.setattr(quick, "PROJECT_ROOT", project)
    before = quick.snapshot(raw, wh)
    assert quick.snapshot(raw, wh).same_inputs(before)
    st = model.stat()
    model.write_text("SELECT 2\n", encoding="utf-8")
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not quick.snapshot(raw, wh).same_inputs(before)


def test_a_snapshot_of_just_changed_files_is_not_recorded(noop, monkeypatch):
    raw, wh, _ = noop
    monkeypatch.setattr(quick, "RACY_NS", 2_000_000_000)
    record = store.state_dir(wh) / quick.RECORD_NAME
    was = record.read_text(encoding="utf-8")
    p = raw / "2020" / "148" / "htx.csv"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns))  # ctime is now: within a clock tick of it
    snap = quick.snapshot(raw, wh)
    assert snap.racy()
    outcome = quick.Outcome(**json.loads(was)["outcome"])
    assert quick.write_record(snap, outcome, wh) is False and record.read_text(encoding="utf-8") == was
