"""Crash safety: `coop run` killed with SIGKILL at each stage.

Setup (once per module):
- A real Prefect server for the runs (PREFECT_API_URL): one server instead of an ephemeral
  one started by every `coop run` keeps this test fast; the flow code is the same.
- `raw_a`: a copy of the sample province (`data/raw`); `raw_b`: the same with one CSV
  changed on disk (a trailing blank line: new content hash, same rows), so that a run on
  `raw_b` after `raw_a` has to re-read, reload, rebuild, test and publish, and the correct
  result has the same marts as A.
- Warehouse A: an uninterrupted `coop run` on `raw_a`; its province figures are checked
  against the generator's ground truth (tests/truth.py), so A is known to be correct.

For each stage: start from a copy of A's warehouse folder (published file + state), run
`coop run` on `raw_b` with `COOP_TEST_PAUSE_AT=<stage>`, wait for the stage marker (while
paused: `coop status` works and a second run is turned away), SIGKILL the process. The
published file must be byte-identical to A's. Then a plain `coop run` (no manual cleanup)
must exit 0, leave no build files behind, publish a new file (a new run in audit.runs) and
have exactly A's marts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from ops_helpers import shared_prefect_server

from coop.run.lock import EXIT_BUSY, PUBLISH_RENAME, STAGES


ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RAW = ROOT / "data" / "raw"
COOP = [sys.executable, "-m", "coop.cli"]
RUN_TIMEOUT = 600
MARKER_TIMEOUT = 300


_SERVER_ENV: dict[str, str] = {}


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return dict(_SERVER_ENV, **extra)


def _coop_run(raw: Path, wh: Path, tmp: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COOP, "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
        env=_env(tmp, **extra),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=tmp,
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _marts(wh: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            # floats to 9 decimals: DuckDB's parallel sums may differ in the last bits between builds
            rows = [tuple(round(v, 9) if isinstance(v, float) else v for v in r)
                    for r in con.execute(f"SELECT * FROM marts.{t}").fetchall()]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def _leftovers(wh: Path) -> list[str]:
    return sorted(p.name for p in wh.parent.iterdir() if ".build-" in p.name or ".tmp-" in p.name)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    _SERVER_ENV.clear()
    _SERVER_ENV.update(shared_prefect_server())
    try:
        yield _world(base)
    finally:
        _SERVER_ENV.clear()


def _world(base: Path) -> dict:
    # the district era of the sample (2018-2021) is enough to kill runs at every stage; the whole
    # sample would only make each of the dozen runs here longer
    later = shutil.ignore_patterns(*[str(y) for y in range(2022, 2031)])
    raw_a = base / "raw_a"
    shutil.copytree(SAMPLE_RAW, raw_a, ignore=later)
    raw_b = base / "raw_b"
    shutil.copytree(SAMPLE_RAW, raw_b, ignore=later)
    csvs = sorted(p for p in raw_b.rglob("*.csv") if p.stat().st_size > 200)
    assert csvs, "the sample has CSV files"
    with csvs[0].open("ab") as fh:
        fh.write(b"\r\n")  # new hash, same rows

    wh_a = base / "a" / "coop.duckdb"
    res = _coop_run(raw_a, wh_a, base)
    assert res.returncode == 0, res.stdout + res.stderr
    con = duckdb.connect(str(wh_a), read_only=True)
    try:
        run_a = con.execute("SELECT run_id FROM audit.runs WHERE status = 'published' ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]
    finally:
        con.close()
    return {"base": base, "raw_a": raw_a, "run_a": run_a, "raw_b": raw_b, "wh_a": wh_a,
            "marts_a": _marts(wh_a), "changed": csvs[0].relative_to(raw_b).as_posix()}


def test_baseline_is_correct(world):
    """Warehouse A's 2020 province figures equal the generator's ground truth."""
    from truth import province_indicators  # tests/truth.py

    want = province_indicators()
    con = duckdb.connect(str(world["wh_a"]), read_only=True)
    try:
        got = {
            (y, e): (n, a, m)
            for y, e, n, a, m in con.execute(
                "SELECT year, entity_type, new_formed, active_count, members FROM marts.province_indicators"
            ).fetchall()
        }
    finally:
        con.close()
    for key in [(2020, "HTX"), (2020, "THT"), (2021, "HTX"), (2021, "THT")]:
        w = want[key]
        assert got[key] == (w["new_formed"], w["active_count"], w["members"]), key


def _while_paused(world: dict, wh: Path, tmp_path: Path, proc: subprocess.Popen) -> None:
    st = subprocess.run([*COOP, "status", "--raw-dir", str(world["raw_b"]), "--warehouse", str(wh),
                         "--format", "json"], capture_output=True, text=True, timeout=120,
                        env=_env(tmp_path), cwd=tmp_path)
    assert st.returncode == 0, st.stdout + st.stderr
    assert json.loads(st.stdout)["last_run"]["run_id"] == world["run_a"]
    second = _coop_run(world["raw_b"], wh, tmp_path)
    assert second.returncode == EXIT_BUSY, second.stdout + second.stderr
    assert f"pid {proc.pid}" in " ".join((second.stdout + second.stderr).split())


@pytest.mark.parametrize("stage", [*STAGES, PUBLISH_RENAME])
def test_sigkill_at_stage(world, stage, tmp_path):
    wh_dir = tmp_path / "wh"
    shutil.copytree(world["wh_a"].parent, wh_dir)
    wh = wh_dir / world["wh_a"].name
    before = _sha(wh)
    markers = tmp_path / "markers"
    log = tmp_path / "killed-run.log"

    with log.open("wb") as fh:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(
            [*COOP, "run", "--raw-dir", str(world["raw_b"]), "--warehouse", str(wh)],
            env=_env(tmp_path, COOP_TEST_PAUSE_AT=stage, COOP_TEST_PAUSE_DIR=str(markers)),
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + MARKER_TIMEOUT
        while not (markers / stage).exists():
            if proc.poll() is not None:
                out = log.read_text(errors="replace")
                pytest.fail(f"run ended (exit {proc.returncode}) before reaching stage {stage!r}:\n{out[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"stage {stage!r} not reached in {MARKER_TIMEOUT} s")
            time.sleep(0.1)
        # while it is paused mid-run: `coop status` works (read-only, no lock) and shows the
        # published state; a second run is turned away without touching anything
        if stage in ("models", PUBLISH_RENAME):
            _while_paused(world, wh, tmp_path, proc)
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 the run itself, mid-stage
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # and anything it started
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)

    assert proc.returncode == -signal.SIGKILL
    assert _sha(wh) == before, f"published warehouse changed by a run killed at {stage!r}"
    assert _marts(wh) == world["marts_a"]  # and readable as it was

    # the next run completes normally, without manual cleanup, and publishes the right content
    res = _coop_run(world["raw_b"], wh, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _leftovers(wh) == []
    assert _sha(wh) != before, "the recovery run must publish a new build"
    assert _marts(wh) == world["marts_a"]
    con = duckdb.connect(str(wh), read_only=True)
    try:
        runs = con.execute("SELECT run_id, status FROM audit.runs ORDER BY started_at").fetchall()
        changed = con.execute("SELECT status FROM audit.files WHERE source_file = ?", [world["changed"]]).fetchall()
    finally:
        con.close()
    assert runs[-1][1] == "published" and runs[-1][0] != world["run_a"]
    assert changed == [("changed",)]


def _alive(pid: int, starttime: int) -> bool:
    """The very process (same pid and start time) still runs (a zombie does not count)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = raw[raw.rfind(")") + 2:].split()  # state, ppid, ..., starttime (field 22)
    return fields[0] != "Z" and int(fields[19]) == starttime


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_sigkill_ephemeral_prefect_server_is_reaped(world, tmp_path):
    """The default operator path: no PREFECT_API_URL, so `coop run` starts Prefect's ephemeral
    API server as a child process. SIGKILL of the run alone (as a real crash) orphans that
    server; the run recorded it (pid, start time) in the lock file, and the next plain
    `coop run` stops it, cleans up and publishes A's marts."""
    from ops_helpers import clean_env

    from coop.run.lock import lock_path

    wh_dir = tmp_path / "wh"
    shutil.copytree(world["wh_a"].parent, wh_dir)
    wh = wh_dir / world["wh_a"].name
    before = _sha(wh)
    markers = tmp_path / "markers"
    log = tmp_path / "killed-run.log"
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = clean_env(PREFECT_HOME=str(home))  # no PREFECT_API_URL: ephemeral mode
    assert "PREFECT_API_URL" not in env
    cmd = [*COOP, "run", "--raw-dir", str(world["raw_b"]), "--warehouse", str(wh)]

    children: list[dict] = []
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            cmd, env=dict(env, COOP_TEST_PAUSE_AT="models", COOP_TEST_PAUSE_DIR=str(markers)),
            stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + MARKER_TIMEOUT
        while not (markers / "models").exists():
            if proc.poll() is not None:
                pytest.fail(f"run ended (exit {proc.returncode}) before models:\n{log.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"stage 'models' not reached in {MARKER_TIMEOUT} s")
            time.sleep(0.1)
        children = json.loads(lock_path(wh).read_text(encoding="utf-8")).get("children") or []
        servers = [c for c in children if "prefect" in _cmdline(c["pid"]) or "uvicorn" in _cmdline(c["pid"])]
        assert servers, f"no Prefect server among the recorded children {children}: " + "; ".join(
            _cmdline(c["pid"]) for c in children)

        os.kill(proc.pid, signal.SIGKILL)  # the run only, not its process group: a real crash
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        orphan_alive = {c["pid"]: _alive(c["pid"], c["starttime"]) for c in servers}
        # record which: normally the orphan outlives its parent (nothing stops it)
        print(f"ephemeral server child(ren) alive right after the kill: {orphan_alive}")

        assert _sha(wh) == before, "published warehouse changed by a run killed at 'models'"
        assert _marts(wh) == world["marts_a"]

        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        for c in children:
            assert not _alive(c["pid"], c["starttime"]), f"orphan {c['pid']} ({_cmdline(c['pid'])}) still running"
        assert _leftovers(wh) == []
        assert _sha(wh) != before, "the recovery run must publish a new build"
        assert _marts(wh)["province_indicators"] == world["marts_a"]["province_indicators"]
    finally:
        for c in children:  # whatever the test leaves: the recorded children, then the group
            if _alive(c["pid"], c["starttime"]):
                try:
                    os.kill(c["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
