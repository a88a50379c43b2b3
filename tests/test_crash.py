"""Crash safety (issue 9, item 8): `coop run` killed with SIGKILL at seeded random moments.

The province: the small generated province (sample/generate.py `generate_small_province`, 10
files 2023-2025) plus one file, `2024/148/them.xlsx`, toggled between two versions (1 HTX row in
state X, 2 in state Y), so that a run after a toggle must re-read, reload, rebuild, test and
publish, and the two states have different marts. Their marts are taken from uninterrupted
runs at the start (which are checked against the generator's ground truth and the toggled
file's rows), so "correct" below means "exactly the marts of the state on disk".

Each of the `KILLS` kills: a real `coop run` subprocess (its own session) in one of four modes,
in a seeded shuffled schedule — the operator's default (no Prefect API: the run starts its own
local Prefect API server as a child process) or on a shared API (`PREFECT_API_URL`), on a raw
folder that changed since the last publish or that did not (the "nothing changed" path: without
an API it never starts Prefect) — is killed with SIGKILL (the run alone, as a real crash) at a
seeded random fraction of that mode's duration (the default mode's measured by uninterrupted
runs first; the shared modes' estimated from it, and measured whenever a run ends before its
kill, which then does not count as one). Then:

- the published file is byte-identical to before the run, or it is the killed run's complete
  new build (published by the rename before the kill: readable, its own run id, the marts of
  the state on disk);
- the next run (a real `run_command`, which takes the lock, cleans up and reaps) exits 0,
  leaves no build file or scratch folder, and publishes exactly the marts of the state on disk;
- no process the killed run started survives it (its whole session: the local Prefect API
  server, reader workers): each is reaped by the next run or ends by itself within seconds.

One more kill, at a known point (paused just before the publish rename with the test-only
`COOP_TEST_PAUSE_AT`): while paused `coop status` works and a second run is turned away (exit 75)
naming the running one; after the kill the file is byte-identical and the next run publishes.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from coop.run.lock import EXIT_BUSY, PUBLISH_RENAME
from ops_helpers import clean_env
from reader_fixtures import HTX_HEAD, G, htx_row, write_xlsx

COOP = [sys.executable, "-m", "coop.cli"]
SEED = 20261129
KILLS = 20
#: The kills' schedule: mode -> how many (shuffled by the seed). "default" = no Prefect API
#: configured (a local API server per run), "shared" = PREFECT_API_URL; "changed" = the raw
#: folder differs from the published build, "same" = the nothing-changed path.
SCHEDULE = {("default", "changed"): 3, ("default", "same"): 9, ("shared", "changed"): 6, ("shared", "same"): 2}
#: A run on the shared API costs about this share of a default one (no server to start): the first
#: estimate of its duration; a run that ends before its kill gives the measured one.
SHARED_SHARE = {"changed": 0.6, "same": 0.45}
EXTRA = "2024/148/them.xlsx"
RUN_TIMEOUT = 600
ORPHAN_GRACE_S = 10.0


# --------------------------------------------------------------------------- helpers
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


def _build_run_id(wh: Path) -> str:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute("SELECT run_id FROM meta.build_info").fetchall()[0][0]
    finally:
        con.close()


def _leftovers(wh: Path) -> list[str]:
    return sorted(p.name for p in wh.parent.iterdir() if ".build-" in p.name or ".tmp-" in p.name
                  or ".publish-" in p.name)


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()  # state, ppid, pgrp, session, ...


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _session(sid: int) -> list[tuple[int, str]]:
    """Live processes (zombies excluded) of session `sid`: a run started with
    start_new_session=True and everything it started (they inherit its session)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[0] != "Z" and int(st[3]) == sid:
                out.append((int(name), _cmdline(int(name))[:160]))
    return out


def _end_session(sid: int) -> None:
    """Whatever a test leaves of a killed run's session: SIGKILL, by pid (processes it started)."""
    for pid, _ in _session(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _extra(version: str) -> bytes:
    """The toggled file: state X lists 1 HTX, state Y 2 (Kim Bôi's neighbour 148, 2024)."""
    return VERSIONS[version]


VERSIONS: dict[str, bytes] = {}
LAST: dict = {}  # the warehouse the kills left (correct), reused by the paused test
EXTRA_ROWS = {"X": [("2599880001", "HTX Sông Đà", 31)],
              "Y": [("2599880001", "HTX Sông Đà", 31), ("2599880002", "HTX Thung Nai", 17)]}


def _make_versions(tmp: Path) -> None:
    for v, rows in EXTRA_ROWS.items():
        p = write_xlsx(tmp / f"them-{v}.xlsx", [G("HTX", [HTX_HEAD] + [
            htx_row(k, code, name, members=m) for k, (code, name, m) in enumerate(rows, 1)])])
        VERSIONS[v] = p.read_bytes()


def _set_state(raw: Path, state: str, stamp: list[int]) -> None:
    p = raw / EXTRA
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(_extra(state))
    stamp[0] += 10
    os.utime(p, (stamp[0], stamp[0]))  # a new mtime each time: the stat cache never trusts an old hash


def _code_fingerprint() -> str:
    """What a build depends on besides the raw files: the reading code, the SQL, the settings.
    When a colleague edits one of them while this test runs, the next run rightly rebuilds."""
    from coop.run import planning

    settings = (Path(__file__).resolve().parent.parent / "coop.toml").read_bytes()
    return planning.reader_fingerprint() + planning.sql_fingerprint() + hashlib.sha256(settings).hexdigest()


def _run_in_process(raw: Path, wh: Path) -> int:
    from coop.run.runner import run_command

    return run_command(raw, wh, None, False)


# --------------------------------------------------------------------------- the world
@pytest.fixture(scope="module")
def world(tmp_path_factory, prefect_harness):
    import prefect.settings

    import truth as T
    from sample.generate import generate_small_province

    base = tmp_path_factory.mktemp("crash")
    raw = base / "raw"
    truth = T.load(generate_small_province(raw, "25"))
    _make_versions(base)
    api = prefect.settings.PREFECT_API_URL.value()  # the session's Prefect API (tests/conftest.py)
    env = {"default": clean_env(), "shared": clean_env(PREFECT_API_URL=api)}
    assert "PREFECT_API_URL" not in env["default"]
    return {"base": base, "raw": raw, "truth": truth, "env": env, "stamp": [1_800_000_000]}


def _coop_run(world: dict, wh: Path, mode: str, **extra: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    res = subprocess.run([*COOP, "run", "--raw-dir", str(world["raw"]), "--warehouse", str(wh)],
                         env=dict(world["env"][mode], **extra), capture_output=True, text=True,
                         timeout=RUN_TIMEOUT, cwd=world["base"])
    return res, time.monotonic() - t0


def _check_baseline(wh: Path, truth, state: str) -> None:
    """The first build is right: every good file's HTX rows as generated, the toggled file's
    rows as written, and the 2023 province figures of the ground truth (the toggle is in 2024)."""
    import truth as T

    con = duckdb.connect(str(wh), read_only=True)
    try:
        got = set(con.execute("SELECT source_file, row_number, reg_code, members FROM raw.htx").fetchall())
        want = {(r["source_file"], r["row_number"], r["reg_code"], r["members"]) for r in truth.forms["HTX"]}
        want |= {(EXTRA, k + 1, code, m) for k, (code, _, m) in enumerate(EXTRA_ROWS[state], 1)}
        assert got == want
        by_province = T.province_indicators_by_province(truth)
        for (year, province, etype), e in by_province.items():
            if year == 2023:
                assert con.execute("SELECT active_count, members FROM marts.province_indicators WHERE year = ? AND "
                                   "province_code = ? AND entity_type = ?", [year, province, etype]).fetchall() == \
                    [(e["active_count"], e["members"])], (year, province, etype)
    finally:
        con.close()


# --------------------------------------------------------------------------- twenty kills
def test_twenty_sigkills_at_seeded_random_moments(world, tmp_path, monkeypatch):
    monkeypatch.setenv("COOP_NO_PROGRESS", "1")
    raw, stamp = world["raw"], world["stamp"]
    wh = tmp_path / "wh" / "coop.duckdb"
    t_start = time.monotonic()

    # uninterrupted runs: the two states' marts, and how long each mode takes on this machine
    _set_state(raw, "X", stamp)
    assert _run_in_process(raw, wh) == 0
    _check_baseline(wh, world["truth"], "X")
    marts = {"X": _marts(wh)}
    took: dict[tuple[str, str], float] = {}
    _set_state(raw, "Y", stamp)
    res, took[("default", "changed")] = _coop_run(world, wh, "default")
    assert res.returncode == 0, res.stdout + res.stderr
    marts["Y"] = _marts(wh)
    assert marts["X"] != marts["Y"]
    res, took[("default", "same")] = _coop_run(world, wh, "default")
    assert res.returncode == 0 and "Nothing changed" in res.stdout, res.stdout + res.stderr
    for change, share in SHARED_SHARE.items():
        took[("shared", change)] = share * took[("default", "changed")]
    state = "Y"

    rng = random.Random(SEED)
    schedule = [mode for mode, n in SCHEDULE.items() for _ in range(n)]
    rng.shuffle(schedule)
    assert len(schedule) == KILLS
    log: list[str] = []
    kills = attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts <= KILLS + 10, "too many runs ended before their kill:\n" + "\n".join(log)
        mode, change = schedule[kills]
        if change == "changed":
            state = "Y" if state == "X" else "X"
            _set_state(raw, state, stamp)
        before = _sha(wh)
        before_id = _build_run_id(wh)
        code = _code_fingerprint()
        delay = rng.uniform(0.02, 0.98) * took[(mode, change)]
        out = tmp_path / f"run-{attempts}.log"
        with out.open("wb") as fh:  # a file, not a pipe: a full pipe would stall the run
            proc = subprocess.Popen([*COOP, "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
                                    env=world["env"][mode], stdout=fh, stderr=subprocess.STDOUT,
                                    cwd=world["base"], start_new_session=True)
        t0 = time.monotonic()
        try:
            try:
                proc.wait(timeout=delay)
                ended = True
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)  # the run alone, not its session: a real crash
                proc.wait(timeout=30)
                ended = proc.returncode != -signal.SIGKILL  # it ended between the timeout and the kill
            at = time.monotonic() - t0
            left = _session(proc.pid)
            if ended:  # it finished before its moment: a correct run, not a kill; try again shorter
                assert proc.returncode == 0, out.read_text(errors="replace")[-3000:]
                took[(mode, change)] = min(took[(mode, change)], at)
                log.append(f"  run {attempts} {mode}/{change}: ended in {at:.1f} s before its kill")
                assert _marts(wh) == marts[state]
                if change == "changed":
                    state = "Y" if state == "X" else "X"  # try the same toggle again
                    _set_state(raw, state, stamp)
                continue
            kills += 1
            assert proc.returncode == -signal.SIGKILL

            # the published file: as before, or the killed run's complete new build
            after = _sha(wh)
            if after != before:
                assert change == "changed", "a nothing-changed run replaced the published file"
                assert _build_run_id(wh) != before_id
                assert _marts(wh) == marts[state], "a partial build was published"
            published_by_killed = after != before

            # the next run: cleans up, reaps, publishes exactly the state on disk
            t1 = time.monotonic()
            assert _run_in_process(raw, wh) == 0
            next_took = time.monotonic() - t1
            assert _leftovers(wh) == []
            assert _marts(wh) == marts[state]
            if change == "changed" and not published_by_killed:
                assert _sha(wh) != before and _build_run_id(wh) != before_id, "the next run must publish a new build"
            rebuilt = _sha(wh) != before
            if change == "same" and _code_fingerprint() == code:  # nothing changed, so nothing to rebuild
                assert not rebuilt, f"kill {kills} ({mode}/same) at {at:.2f} s: the next run rebuilt\n" + "\n".join(log)

            # nothing the killed run started survives it
            deadline = time.monotonic() + ORPHAN_GRACE_S
            alive = _session(proc.pid)
            while alive and time.monotonic() < deadline:
                time.sleep(0.1)
                alive = _session(proc.pid)
            log.append(f"  kill {kills:2d} ({mode}/{change}) at {at:5.2f} s of ~{took[(mode, change)]:.1f} s: "
                       f"{'published by the killed run' if published_by_killed else 'file unchanged'}"
                       f"{', rebuilt by the next run' if rebuilt else ''} ({next_took:.1f} s); "
                       f"{len(left)} process(es) of the run left at the kill")
            assert alive == [], f"kill {kills} ({mode}/{change}) at {at:.2f} s left {alive}\n" + "\n".join(log)
        finally:
            _end_session(proc.pid)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    LAST.update(wh=wh, state=state)
    print(f"\n{KILLS} kills in {attempts} runs, {time.monotonic() - t_start:.1f} s "
          f"(modes measured: {', '.join(f'{m}/{c} {s:.1f} s' for (m, c), s in took.items())}):\n" + "\n".join(log))


# --------------------------------------------------------------------------- one kill at a known point
def test_sigkill_paused_just_before_the_rename(world, tmp_path, monkeypatch, capsys):
    """Killed after the build file is checkpointed, closed and synced, just before the atomic
    rename. While it is paused there: `coop status` reads the published state, a second run is
    turned away naming the first. After the kill: byte-identical; the next run publishes."""
    from coop.outputs.status import collect_status

    monkeypatch.setenv("COOP_NO_PROGRESS", "1")
    raw, stamp = world["raw"], world["stamp"]
    wh = tmp_path / "wh" / "coop.duckdb"
    if LAST:  # the kills' warehouse, correct for the state on disk: no build to wait for
        shutil.copytree(LAST["wh"].parent, wh.parent, ignore=shutil.ignore_patterns(".*.lock"))
        state = LAST["state"]
    else:
        state = "X"
        _set_state(raw, state, stamp)
        assert _run_in_process(raw, wh) == 0
    run_before = _build_run_id(wh)
    before = _sha(wh)
    _set_state(raw, "Y" if state == "X" else "X", stamp)
    markers = tmp_path / "markers"
    out = tmp_path / "killed-run.log"
    with out.open("wb") as fh:
        proc = subprocess.Popen([*COOP, "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
                                env=dict(world["env"]["shared"], COOP_TEST_PAUSE_AT=PUBLISH_RENAME,
                                         COOP_TEST_PAUSE_DIR=str(markers)),
                                stdout=fh, stderr=subprocess.STDOUT, cwd=world["base"], start_new_session=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (markers / PUBLISH_RENAME).exists():
            assert proc.poll() is None, out.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the run never reached the rename"
            time.sleep(0.1)
        assert collect_status(raw, wh).last_run["run_id"] == run_before  # read-only, no lock: works meanwhile
        capsys.readouterr()
        assert _run_in_process(raw, wh) == EXIT_BUSY  # a second run is turned away, touching nothing
        assert f"pid {proc.pid}" in " ".join("".join(capsys.readouterr()).split())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _end_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert _sha(wh) == before
    assert _run_in_process(raw, wh) == 0
    assert _leftovers(wh) == [] and _sha(wh) != before and _build_run_id(wh) != run_before
    assert _session(proc.pid) == []
