"""Publish guards (coop.warehouse.guards): an empty or missing raw folder, a unit gone, too many files,
units or register rows vanishing at once — the publish is refused (exit 1, the published
file byte-identical, the run recorded as failed with a Vietnamese + English message) unless
the operator passes --allow-shrink. The comparison itself (`check_publish`) on small
hand-made warehouses; the whole run on the small fixture province of
tests/pipeline_fixture.py (in-process, under the Prefect test harness)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import pipeline_fixture as F
from coop.run import planning, store
from coop.warehouse import guards
from coop.cli import app
from coop.warehouse.guards import GuardSettings, check_publish, check_raw_dir, check_warehouse_file
from coop.run.runner import run_command


_sha, _q, _flat = F.sha, F.query, F.flat  # shared with the other pipeline tests


# ----------------------------------------------------------------------------- check_publish on small files
UNITS = {"148": ("Thành phố Hòa Bình", "Thành phố"), "150": ("Cao Phong", "Huyện"), "157": ("Lạc Sơn", "Huyện")}


def _wh(path: Path, files: dict[str, tuple[str, int | None, str | None]], htx: int = 100, tht: int = 0) -> Path:
    """A warehouse with just what the guards read: audit.files, raw.htx/raw.tht rows, ref.units."""
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA audit; CREATE SCHEMA raw; CREATE SCHEMA ref")
    con.execute("CREATE TABLE audit.files (source_file VARCHAR, status VARCHAR, year INTEGER, unit_code VARCHAR)")
    con.execute("CREATE TABLE raw.htx AS SELECT range AS i FROM range(?)", [htx])
    con.execute("CREATE TABLE raw.tht AS SELECT range AS i FROM range(?)", [tht])
    con.execute("CREATE TABLE ref.units (unit_code VARCHAR, unit_name VARCHAR, unit_kind VARCHAR)")
    for code, (name, kind) in UNITS.items():
        con.execute("INSERT INTO ref.units VALUES (?, ?, ?)", [code, name, kind])
    for s, (st, y, u) in files.items():
        con.execute("INSERT INTO audit.files VALUES (?, ?, ?, ?)", [s, st, y, u])
    con.close()
    return path


def _ten_units() -> dict[str, tuple[str, int | None, str | None]]:
    """Ten loaded files: 2019 and 2020 for 148, 150, 157, plus four province-folder files."""
    files = {f"{y}/{u}/htx.xlsx": ("unchanged", y, u) for y in (2019, 2020) for u in ("148", "150", "157")}
    files.update({f"{y}/tinh/ke-hoach.xlsx": ("unchanged", y, None) for y in (2018, 2019, 2020, 2021)})
    return files


def test_identical_build_passes(tmp_path):
    files = _ten_units()
    assert check_publish(_wh(tmp_path / "b", files), _wh(tmp_path / "p", files), GuardSettings()) == []


def test_nothing_published_nothing_to_compare(tmp_path):
    assert check_publish(_wh(tmp_path / "b", {}, htx=0), tmp_path / "missing.duckdb", GuardSettings()) == []


def test_one_unit_gone_is_named(tmp_path):
    old = _ten_units()
    new = dict(old)
    new["2020/157/htx.xlsx"] = ("removed", 2020, "157")  # 1 of 10 files (10 %), 1 of 10 units
    failures = check_publish(_wh(tmp_path / "b", new, htx=95), _wh(tmp_path / "p", old), GuardSettings())
    assert [f.code for f in failures] == ["unit_gone"]
    f = failures[0]
    assert f.items == ("2020 · 157 Huyện Lạc Sơn",) and f.overridable
    assert "2020 · 157 Huyện Lạc Sơn" in f.message_vi and "no file any more" in f.message_en
    # the operator's word, or the setting, lets it through
    assert guards.blocking(failures, GuardSettings(allow_shrink=True)) == []
    assert guards.blocking(failures, GuardSettings()) == failures
    off = GuardSettings(refuse_unit_gone=False)
    assert check_publish(tmp_path / "b", tmp_path / "p", off) == []


def test_a_unit_whose_new_file_is_rejected_is_not_gone(tmp_path):
    """The clerk replaced the workbook by something unreadable (discovery cannot even tell
    the unit): the unit still sent a file, its feedback says what is wrong; not a shrink."""
    old = _ten_units()
    new = dict(old)
    del new["2020/157/htx.xlsx"]
    new["2020/157/htx.xlsx"] = ("removed", 2020, "157")
    new["2020/157/cong-van.docx"] = ("rejected", 2020, None)
    assert check_publish(_wh(tmp_path / "b", new, htx=95), _wh(tmp_path / "p", old), GuardSettings()) == []


def test_too_many_files_units_rows_vanish(tmp_path):
    old = _ten_units()
    new = {s: (("removed",) + v[1:] if s.startswith("2019/1") else v) for s, v in old.items()}  # 3 units, 3 files
    failures = check_publish(_wh(tmp_path / "b", new, htx=60, tht=0), _wh(tmp_path / "p", old, htx=90, tht=10),
                             GuardSettings())
    by = {f.code: f for f in failures}
    assert set(by) == {"files_vanished", "units_vanished", "unit_gone", "rows_vanished"}
    assert "3/10 tệp (30%)" in by["files_vanished"].message_vi and "limit 20%" in by["files_vanished"].message_en
    assert by["files_vanished"].items == ("2019/148/htx.xlsx", "2019/150/htx.xlsx", "2019/157/htx.xlsx")
    assert "3 of 10 reporting units" in by["units_vanished"].message_en
    assert "from 100 to 60 (−40%" in by["rows_vanished"].message_en
    # looser settings let the shares through, the named units stay
    loose = GuardSettings(max_files_vanished_pct=50, max_units_vanished_pct=50, max_rows_vanished_pct=50)
    assert [f.code for f in check_publish(tmp_path / "b", tmp_path / "p", loose)] == ["unit_gone"]


def test_rows_share_alone(tmp_path):
    files = _ten_units()
    p = _wh(tmp_path / "p", files, htx=100)
    assert check_publish(_wh(tmp_path / "b1", files, htx=85), p, GuardSettings()) == []  # −15 %
    assert [f.code for f in check_publish(_wh(tmp_path / "b2", files, htx=79), p, GuardSettings())] == ["rows_vanished"]
    assert check_publish(_wh(tmp_path / "b3", files, htx=500), p, GuardSettings()) == []  # growth is fine


def test_settings_from_the_environment():
    s = GuardSettings.load(environ={"COOP_GUARD_MAX_ROWS_VANISHED_PCT": "35%", "COOP_GUARD_MAX_FILES_VANISHED_PCT": "5",
                                    "COOP_GUARD_REFUSE_UNIT_GONE": "off", "COOP_GUARD_KEEP_VERSIONS": "3"},
                            allow_shrink=True)
    assert (s.max_rows_vanished_pct, s.max_files_vanished_pct, s.max_units_vanished_pct) == (35, 5, 20)
    assert (s.refuse_unit_gone, s.keep_versions, s.allow_shrink) == (False, 3, True)
    assert GuardSettings.load(environ={}) == GuardSettings()
    with pytest.raises(guards.GuardSettingError, match="COOP_GUARD_REFUSE_UNIT_GONE"):
        GuardSettings.load(environ={"COOP_GUARD_REFUSE_UNIT_GONE": "maybe"})
    with pytest.raises(guards.GuardSettingError, match="COOP_GUARD_MAX_ROWS_VANISHED_PCT"):
        GuardSettings.load(environ={"COOP_GUARD_MAX_ROWS_VANISHED_PCT": "lots"})


# ----------------------------------------------------------------------------- the raw folder
def test_raw_folder_missing_empty_unreadable(tmp_path, monkeypatch):
    missing = check_raw_dir(tmp_path / "nope")
    assert [f.code for f in missing] == ["raw_missing"] and not missing[0].overridable
    raw = tmp_path / "raw"
    (raw / "2020" / "148").mkdir(parents=True)
    (raw / ".gitkeep").write_text("")
    (raw / "2020" / "148" / "Thumbs.db").write_bytes(b"\0")
    empty = check_raw_dir(raw, published_exists=True)
    assert [f.code for f in empty] == ["raw_empty"] and empty[0].overridable
    assert "trống" in empty[0].message_vi and "is empty" in empty[0].message_en
    assert check_raw_dir(raw, published_exists=False) == []  # nothing published: nothing to protect
    (raw / "2020" / "148" / "htx.xlsx").write_bytes(b"x")
    assert check_raw_dir(raw) == []

    real = os.scandir

    def denied(path="."):
        if Path(path) == raw:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(guards.os, "scandir", denied)
    unreadable = check_raw_dir(raw)
    assert [f.code for f in unreadable] == ["raw_unreadable"] and not unreadable[0].overridable


# ----------------------------------------------------------------------------- a damaged published file
@pytest.mark.parametrize("damage", ["truncated", "zeroed_header", "random_bytes", "last_byte_cut"])
def test_damaged_warehouse_is_detected_with_advice(tmp_path, damage):
    wh = tmp_path / "coop.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("CREATE SCHEMA audit; CREATE TABLE audit.runs AS SELECT 'r' || range AS run_id, range AS n "
                "FROM range(300000)")
    con.close()
    assert check_warehouse_file(wh) is None
    assert check_warehouse_file(tmp_path / "none.duckdb") is None  # nothing published yet: not damage
    size = wh.stat().st_size
    if damage == "truncated":
        os.truncate(wh, size // 2)
    elif damage == "last_byte_cut":
        os.truncate(wh, size - 1)
    elif damage == "zeroed_header":
        with open(wh, "r+b") as f:
            f.write(b"\0" * 8192)
    else:
        wh.write_bytes(os.urandom(size))
    f = check_warehouse_file(wh)
    assert f is not None and f.code == "published_corrupt" and not f.overridable
    for text in (f.message_vi, f.message_en):
        assert "coop rollback" in text and "coop backfill --all" in text
    assert "bị hỏng" in f.message_vi and "IOException" in f.message_en  # the DuckDB detail after the advice
    assert guards.warehouse_problem(wh) == f.text()


HOLDER = "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(60)\n"


def test_a_writer_holding_the_file_is_not_called_damage(tmp_path):
    wh = tmp_path / "coop.duckdb"
    duckdb.connect(str(wh)).close()
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(wh)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        f = check_warehouse_file(wh)
    finally:
        p.kill()
        p.wait()
    assert f is not None and f.code == "published_busy", f
    assert "close it" in f.message_en and "rollback" not in f.message_en


# ----------------------------------------------------------------------------- whole runs
@pytest.fixture()
def published(tmp_path, monkeypatch, prefect_harness):
    """The fixture province published once (2020: units 148 and 157, and notes.txt)."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(planning, "reader_fingerprint", lambda: "test-reader")
    for k in [k for k in os.environ if k.startswith("COOP_GUARD_")]:
        monkeypatch.delenv(k)
    F.install(monkeypatch)
    raw = F.write_raw(tmp_path / "raw")
    wh = tmp_path / "wh" / "coop.duckdb"
    assert run_command(raw, wh, None, False) == 0
    return raw, wh


def _pending(wh: Path) -> list[dict]:
    return store.read_pending_runs(store.state_dir(wh))


def test_empty_or_missing_raw_folder_is_refused(published, tmp_path):
    raw, wh = published
    before = _sha(wh)
    empty = tmp_path / "empty-share"
    empty.mkdir()
    res = CliRunner().invoke(app, ["run", "--raw-dir", str(empty), "--warehouse", str(wh)])
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert "FAILED — nothing published" in out
    assert f"Thư mục dữ liệu {empty} trống" in out and f"The raw folder {empty} is empty" in out
    assert "--allow-shrink" in out and "The last published warehouse is unchanged" in out
    assert _sha(wh) == before
    [p] = _pending(wh)
    assert p["status"] == "failed" and "is empty" in p["message"]
    report = next((wh.parent / "reports").glob(f"run-*{p['run_id']}*.md")).read_text(encoding="utf-8")
    assert "❌ failed" in report and f"The raw folder {empty} is empty" in report

    res = CliRunner().invoke(app, ["run", "--raw-dir", str(tmp_path / "not-mounted"), "--warehouse", str(wh)])
    assert res.exit_code == 1 and "does not exist" in _flat(res.output)
    assert _sha(wh) == before
    assert [p["status"] for p in _pending(wh)] == ["failed", "failed"]

    # the operator says so: an empty warehouse is published, the refused runs land in audit.runs
    assert run_command(empty, wh, None, False, allow_shrink=True) == 0
    assert _q(wh, "SELECT count(*) FROM raw.htx") == [(0,)]
    runs = _q(wh, "SELECT status, message FROM audit.runs ORDER BY started_at")
    assert [r[0] for r in runs] == ["published", "failed", "failed", "published"]
    assert runs[-1][1].startswith("published with --allow-shrink despite: files_vanished")


def test_a_unit_gone_is_refused_naming_it_then_allowed(published):
    raw, wh = published
    before = _sha(wh)
    (raw / "2020" / "157" / "htx.csv").unlink()
    assert run_command(raw, wh, None, False) == 1
    assert _sha(wh) == before
    assert not list(wh.parent.glob(".coop.duckdb.build-*"))
    [p] = _pending(wh)
    assert p["status"] == "failed"
    assert "Đơn vị đã có báo cáo trong kho nay không còn tệp nào: 2020 · 157 Huyện Lạc Sơn" in p["message"]
    assert "Units that reported in the published warehouse have no file any more: 2020 · 157 Huyện Lạc Sơn" in p["message"]
    assert "--allow-shrink" in p["message"]
    assert _q(wh, "SELECT count(*) FROM raw.htx WHERE unit_code = '157'") == [(2,)]

    assert run_command(raw, wh, None, False, allow_shrink=True) == 0
    assert _q(wh, "SELECT count(*) FROM raw.htx WHERE unit_code = '157'") == [(0,)]
    runs = _q(wh, "SELECT status, message FROM audit.runs ORDER BY started_at")
    assert [r[0] for r in runs] == ["published", "failed", "published"]
    assert "unit_gone" in runs[-1][1] and "2020 · 157 Huyện Lạc Sơn" in runs[-1][1]
    # the next night the unit is simply not there any more: nothing to refuse
    time.sleep(0.01)
    (raw / "2020" / "148" / "htx.csv").write_text(F.htx_csv([
        "0101,HTX Một,htx,2020-03-01,agriculture,active,11,8,100,10,3.0,true",
        "0102,HTX Hai,htx,2019-05-01,transport,active,20,,300,30,4.0,false"]), encoding="utf-8")
    assert run_command(raw, wh, None, False) == 0


def test_published_file_checked_once_per_run_while_unchanged(tmp_path, monkeypatch):
    """`refuse_at_start` (the runner, under the run lock) reads the published file; the flow's
    own `start_failures` right after does not read it again while the file is the very same —
    once; a file changed in between (or a later check) is read again."""
    raw = tmp_path / "raw"
    (raw / "2024" / "X").mkdir(parents=True)
    (raw / "2024" / "X" / "a.csv").write_text("a\n", encoding="utf-8")
    wh = tmp_path / "coop.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("CREATE SCHEMA audit; CREATE TABLE audit.runs AS SELECT range AS n FROM range(10)")
    con.close()
    calls: list[Path] = []
    real = guards.check_warehouse_file

    def counted(path: Path) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(guards, "check_warehouse_file", counted)
    assert guards.refuse_at_start(raw, wh) is None and len(calls) == 1
    assert guards.start_failures(raw, wh) == [] and len(calls) == 1  # the flow's check: taken from the start
    assert guards.start_failures(raw, wh) == [] and len(calls) == 2  # once only
    assert guards.refuse_at_start(raw, wh) is None and len(calls) == 3
    with open(wh, "r+b") as f:  # damaged between the runner's check and the flow's
        f.write(b"\0" * 8192)
    os.utime(wh, ns=(wh.stat().st_atime_ns, wh.stat().st_mtime_ns + 1))
    failures = guards.start_failures(raw, wh)
    assert len(calls) == 4 and [f.code for f in failures] == ["published_corrupt"]
