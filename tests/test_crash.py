"""Crash safety (issue 9, item 8): `coop run` killed with SIGKILL at seeded random moments.

The province: the small generated province (sample/generate.py `generate_small_province`, 10
files 2023-2025) plus one file, `2024/148/them.xlsx`, toggled between two versions (1 HTX row in
state X, 2 in state Y), so that a run after a toggle must re-read, reload, rebuild, test and
publish, and the two states have different marts. Their marts are taken from uninterrupted
runs at the start (which are checked against the generator's ground truth and the toggled
file's rows), so "correct" below means "exactly the marts of the state on disk".

Each of the `KILLS` kills (8 by default; `COOP_TEST_CRASH_KILLS=20` runs the full schedule of
20, docs/performance.md "The test suite"): a real `coop run` subprocess (its own session) in one
of four modes, in a seeded shuffled schedule — the operator's default (no Prefect API: the run
starts its own local Prefect API server as a child process) or on a shared API
(`PREFECT_API_URL`), on a raw folder that changed since the last publish or that did not (the
"nothing changed" path: without an API it never starts Prefect) — is killed with SIGKILL (the
run alone, as a real crash) at a seeded random moment. A run on a changed folder goes through
every stage of the flow (start-up, reading, loading, models, tests, publish); an uninterrupted
default run first measures when each stage starts (from the run's own stage lines,
`coop.run.lock.stage_checkpoint`; the shared mode's start-up is estimated shorter, its other
stages as long), and the changed kills are spread over the stages: the default mode's first one
in its start-up (while its local Prefect API server starts), the others over the later stages
in a seeded order dealt out in turn, so that every stage gets a kill as soon as there are as
many changed kills as stages (6 of the 8: 2 default, 4 shared). Such a kill watches the run's log for
its stage's line and strikes a seeded random share of the stage's measured length later (at
once if the next stage's line comes first), so that it lands in that stage whatever the
machine's load does to the start-up. A nothing-changed run is killed at a seeded random fraction of its
duration (measured, or estimated for the shared mode), as before. A run that ends before its
kill (the machine was faster than measured) is a correct run, not a kill: the mode's timings
are scaled down to it and the kill is tried again. The stage each kill actually hit (the last
stage line in its log) is printed with the schedule. Then:

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
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from coop.run.lock import EXIT_BUSY, PUBLISH_RENAME
from ops_helpers import clean_env
from reader_fixtures import HTX_HEAD, G, htx_row, write_xlsx

COOP = [sys.executable, "-m", "coop.cli"]
SEED = 20261129
#: How many kills (`COOP_TEST_CRASH_KILLS`, default 8; 20 = the full schedule below).
KILLS = int(os.environ.get("COOP_TEST_CRASH_KILLS") or 8)
#: The kills' schedule: mode -> how many (shuffled by the seed). "default" = no Prefect API
#: configured (a local API server per run), "shared" = PREFECT_API_URL; "changed" = the raw
#: folder differs from the published build, "same" = the nothing-changed path.
FULL_SCHEDULE = {("default", "changed"): 3, ("default", "same"): 9, ("shared", "changed"): 6, ("shared", "same"): 2}
#: The shares of another number of kills: the changed runs (which go through every stage)
#: weigh most, the shared API's most of all (no server start-up to wait through before the
#: later stages); every mode gets at least one kill. 8 kills: 2, 1, 4, 1.
SHARES = {("default", "changed"): 2, ("default", "same"): 1, ("shared", "changed"): 4, ("shared", "same"): 1}
#: The windows a changed run's kills are spread over: each from the first stage line of its
#: stages to the next window's (`start` = from the process start: settings, lock, the local
#: Prefect API server, discovery and hashing; `publish` = to the end of the run, report included).
STAGE_WINDOWS = {"start": (), "reading": ("reading",), "loading": ("loading",), "models": ("models",),
                 "tests": ("tests",), "publish": ("publish", "report")}
#: A run on the shared API costs about this share of a changed default one (no server to start):
#: the first estimate of its duration; a run that ends before its kill gives the measured one.
SHARED_CHANGED_SHARE = 0.6
SHARED_SAME_SHARE = 0.45
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


def schedule_counts(kills: int) -> dict[tuple[str, str], int]:
    """How many kills of each mode: the full schedule for 20, else `SHARES` (largest remainder,
    at least one per mode)."""
    if kills == sum(FULL_SCHEDULE.values()):
        return dict(FULL_SCHEDULE)
    assert kills >= len(SHARES), f"COOP_TEST_CRASH_KILLS={kills}: at least {len(SHARES)} (one per mode)"
    total = sum(SHARES.values())
    exact = {m: kills * w / total for m, w in SHARES.items()}
    counts = {m: max(1, int(x)) for m, x in exact.items()}
    while sum(counts.values()) < kills:
        counts[max(exact, key=lambda m: exact[m] - counts[m])] += 1
    while sum(counts.values()) > kills:
        counts[max(counts, key=lambda m: counts[m])] -= 1
    return counts


def _stage_patterns() -> dict[str, re.Pattern[str]]:
    """The console line of each stage (English half, `coop.outputs.run_report.STAGE_WORDS`)."""
    from coop.outputs.run_report import STAGE_WORDS

    return {stage: re.compile(r"\(" + re.escape(en).replace(re.escape("{n} "), r"(?:[\d,.]+ )?") + r"\)")
            for stage, (_, en) in STAGE_WORDS.items()}


def _window_of(stage: str | None) -> str:
    for window, stages in STAGE_WINDOWS.items():
        if stage in stages:
            return window
    return "start"


def _last_stage(text: str) -> str | None:
    """The last stage whose console line the run printed (None: none yet)."""
    found: tuple[int, str] | None = None
    for stage, pat in _stage_patterns().items():
        for m in pat.finditer(text):
            if found is None or m.start() > found[0]:
                found = (m.start(), stage)
    return None if found is None else found[1]


def _timed_run(world: dict, wh: Path, mode: str) -> tuple[int, str, float, dict[str, tuple[float, float]]]:
    """An uninterrupted `coop run` whose output is read as it comes: (exit code, output,
    duration, {window: (start, end)} in seconds from the process start, `STAGE_WINDOWS`)."""
    patterns = _stage_patterns()
    t0 = time.monotonic()
    proc = subprocess.Popen([*COOP, "run", "--raw-dir", str(world["raw"]), "--warehouse", str(wh)],
                            env=world["env"][mode], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=world["base"])
    watchdog = threading.Timer(RUN_TIMEOUT, proc.kill)
    watchdog.start()
    lines, starts = [], {"start": 0.0}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            at = time.monotonic() - t0
            lines.append(line)
            for stage, pat in patterns.items():
                if pat.search(line):
                    starts.setdefault(_window_of(stage), at)
        proc.wait()
    finally:
        watchdog.cancel()
    took = time.monotonic() - t0
    order = [w for w in STAGE_WINDOWS if w in starts]
    windows = {w: (starts[w], starts[order[i + 1]] if i + 1 < len(order) else took) for i, w in enumerate(order)}
    return proc.returncode, "".join(lines), took, windows


def _wait_for_window(proc: subprocess.Popen, log: Path, window: str, delay: float) -> bool:
    """Wait until the run is `delay` seconds into its stage window `window` (from the window's
    first stage line in `log`; `start` from the process start), or has reached the next window
    (then at once: the kill stays in the aimed stage as far as the log can tell). False when
    the run ended first."""
    patterns = _stage_patterns()
    names = list(STAGE_WINDOWS)
    later = {st for w in names[names.index(window) + 1:] for st in STAGE_WINDOWS[w]}
    mine = STAGE_WINDOWS[window]
    entered = time.monotonic() if window == "start" else None
    while True:
        if proc.poll() is not None:
            return False
        text = log.read_text(errors="replace")
        seen = {st for st, pat in patterns.items() if st in later or st in mine if pat.search(text)}
        if seen & later:
            return True
        if entered is None and seen & set(mine):
            entered = time.monotonic()
        if entered is not None and time.monotonic() - entered >= delay:
            return True
        time.sleep(0.02)


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


# --------------------------------------------------------------------------- the seeded kills
def test_sigkills_at_seeded_random_moments(world, tmp_path, monkeypatch):
    monkeypatch.setenv("COOP_NO_PROGRESS", "1")
    raw, stamp = world["raw"], world["stamp"]
    wh = tmp_path / "wh" / "coop.duckdb"
    t_start = time.monotonic()

    # uninterrupted runs: the two states' marts, and how long each mode (and each stage of a
    # changed run) takes on this machine
    _set_state(raw, "X", stamp)
    assert _run_in_process(raw, wh) == 0
    _check_baseline(wh, world["truth"], "X")
    marts = {"X": _marts(wh)}
    took: dict[tuple[str, str], float] = {}
    windows: dict[str, dict[str, tuple[float, float]]] = {}
    _set_state(raw, "Y", stamp)
    code = _code_fingerprint()
    rc, out, took[("default", "changed")], windows["default"] = _timed_run(world, wh, "default")
    assert rc == 0, out
    marts["Y"] = _marts(wh)
    assert marts["X"] != marts["Y"]
    for _ in range(3):
        rc, out, took[("default", "same")], _ = _timed_run(world, wh, "default")
        assert rc == 0, out
        if "Nothing changed" in out:
            break
        # a rebuild is right only when a colleague changed the code meanwhile: then try again
        assert _code_fingerprint() != code, out
        code = _code_fingerprint()
    assert "Nothing changed" in out, out
    assert list(windows["default"]) == list(STAGE_WINDOWS), windows  # a changed run prints every stage's line
    # the shared API's changed run: the same stages after the start, a shorter start (no server
    # to start); estimated, and scaled down whenever such a run ends before its kill
    took[("shared", "changed")] = SHARED_CHANGED_SHARE * took[("default", "changed")]
    after_start = {w: b - a for w, (a, b) in windows["default"].items() if w != "start"}
    start = max(1.0, took[("shared", "changed")] - sum(after_start.values()))
    windows["shared"], t = {"start": (0.0, start)}, start
    for w, length in after_start.items():
        windows["shared"][w] = (t, t + length)
        t += length
    took[("shared", "same")] = SHARED_SAME_SHARE * took[("default", "changed")]
    state = "Y"

    rng = random.Random(SEED)
    counts = schedule_counts(KILLS)
    schedule = [mode for mode, n in counts.items() for _ in range(n)]
    rng.shuffle(schedule)
    assert len(schedule) == KILLS
    # the stage windows of the changed kills: the default mode's first kill in its start-up (where
    # its local Prefect API server starts), then the later stages in a seeded order, dealt out in
    # turn (default mode first): with 2 + 4 changed kills every stage gets one
    later = [w for w in STAGE_WINDOWS if w != "start"]
    dealt: list[str] = []
    while len(dealt) < KILLS:
        dealt += rng.sample(later, len(later))
    n_default = counts[("default", "changed")]
    targets = {"default": ["start"] + dealt[:n_default - 1], "shared": dealt[n_default - 1:]}
    log: list[str] = []
    kills = attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts <= KILLS + 10, "too many runs ended before their kill:\n" + "\n".join(log)
        mode, change = schedule[kills]
        if change == "changed":
            state = "Y" if state == "X" else "X"
            _set_state(raw, state, stamp)
            target = targets[mode][sum(1 for m in schedule[:kills] if m == (mode, change))]
            lo, hi = windows[mode][target]
            delay = rng.uniform(0.05, 0.95) * (hi - lo)  # into the stage, from its first line
        else:
            target = "-"
            delay = rng.uniform(0.02, 0.98) * took[(mode, change)]
        before = _sha(wh)
        before_id = _build_run_id(wh)
        code = _code_fingerprint()
        out = tmp_path / f"run-{attempts}.log"
        with out.open("wb") as fh:  # a file, not a pipe: a full pipe would stall the run
            proc = subprocess.Popen([*COOP, "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
                                    env=world["env"][mode], stdout=fh, stderr=subprocess.STDOUT,
                                    cwd=world["base"], start_new_session=True)
        t0 = time.monotonic()
        try:
            if change == "changed":
                ended = not _wait_for_window(proc, out, target, delay)
            else:
                try:
                    proc.wait(timeout=delay)
                    ended = True
                except subprocess.TimeoutExpired:
                    ended = False
            if not ended:
                os.kill(proc.pid, signal.SIGKILL)  # the run alone, not its session: a real crash
                proc.wait(timeout=30)
                ended = proc.returncode != -signal.SIGKILL  # it ended between the timeout and the kill
            at = time.monotonic() - t0
            left = _session(proc.pid)
            if ended:  # it finished before its moment: a correct run, not a kill; try again shorter
                assert proc.returncode == 0, out.read_text(errors="replace")[-3000:]
                scale = min(1.0, at / took[(mode, change)])
                took[(mode, change)] *= scale
                if change == "changed":  # (only the last window can end with the run)
                    windows[mode] = {w: (a * scale, b * scale) for w, (a, b) in windows[mode].items()}
                log.append(f"  run {attempts} {mode}/{change}: ended in {at:.1f} s before its kill")
                assert _marts(wh) == marts[state]  # it published the state on disk: the next try toggles again
                continue
            kills += 1
            assert proc.returncode == -signal.SIGKILL
            hit = _last_stage(out.read_text(errors="replace")) or "(before any stage line)"

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
            log.append(f"  kill {kills:2d} ({mode}/{change}, aimed at {target}) at {at:5.2f} s of "
                       f"~{took[(mode, change)]:.1f} s, in stage {hit}: "
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
    stages = "; ".join(f"{m}: " + ", ".join(f"{w} {a:.1f}-{b:.1f} s" for w, (a, b) in ws.items())
                       for m, ws in windows.items())
    print(f"\n{KILLS} kills in {attempts} runs, {time.monotonic() - t_start:.1f} s "
          f"(modes measured: {', '.join(f'{m}/{c} {s:.1f} s' for (m, c), s in took.items())}; "
          f"stages of a changed run: {stages}):\n" + "\n".join(log))


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
