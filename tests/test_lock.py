"""One run at a time: the warehouse lock, stale leftovers, the stage pause hook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from coop.settings import local_time

from coop.run.lock import (
    EXIT_BUSY,
    RunLockBusy,
    build_path,
    cleanup_stale,
    lock_path,
    read_holder,
    run_lock,
    stage_checkpoint,
    temp_dir,
)

PY = sys.executable

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from coop.run.lock import run_lock
    with run_lock(Path(sys.argv[1])):
        Path(sys.argv[2]).write_text("held")
        time.sleep(float(sys.argv[3]))
    """
)


def _start_holder(warehouse: Path, tmp_path: Path, seconds: float = 60) -> subprocess.Popen:
    marker = tmp_path / "held.marker"
    proc = subprocess.Popen([PY, "-c", HOLDER, str(warehouse), str(marker), str(seconds)])
    deadline = time.monotonic() + 30
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("lock holder did not start")
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_lock_file_sits_next_to_the_warehouse(tmp_path):
    wh = tmp_path / "wh" / "coop.duckdb"
    assert lock_path(wh) == tmp_path / "wh" / ".coop.lock"
    with run_lock(wh) as p:
        assert p.exists()
        info = json.loads(p.read_text())
        assert info["pid"] == os.getpid()
        assert info["started_at"]
    assert read_holder(wh) is None


def test_second_locker_fails_at_once_naming_the_holder(tmp_path):
    wh = tmp_path / "coop.duckdb"
    proc = _start_holder(wh, tmp_path)
    try:
        holder = read_holder(wh)
        assert holder is not None and holder.pid == proc.pid
        with pytest.raises(RunLockBusy) as err:
            with run_lock(wh):
                pytest.fail("must not get the lock while another process holds it")
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg
        assert local_time(holder.started_at) in msg
        assert "--wait" in msg
    finally:
        _stop(proc)


def test_sigkill_releases_the_lock(tmp_path):
    wh = tmp_path / "coop.duckdb"
    proc = _start_holder(wh, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # the lock file is still there with the dead pid in it, but nobody holds it
    assert lock_path(wh).exists()
    assert read_holder(wh) is None
    with run_lock(wh):
        assert json.loads(lock_path(wh).read_text())["pid"] == os.getpid()


def test_wait_blocks_until_the_holder_finishes(tmp_path):
    wh = tmp_path / "coop.duckdb"
    proc = _start_holder(wh, tmp_path, seconds=60)
    got = threading.Event()

    def waiter():
        with run_lock(wh, wait=True, poll_seconds=0.05):
            got.set()

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        assert not got.is_set(), "--wait must not get the lock while the other run holds it"
        proc.terminate()
        proc.wait(timeout=10)
        assert got.wait(timeout=20), "--wait must get the lock once the other run is gone"
    finally:
        _stop(proc)
        t.join(timeout=5)


def test_reentrant_in_one_process(tmp_path):
    wh = tmp_path / "coop.duckdb"
    with run_lock(wh):
        with run_lock(wh):
            pass
        # still held by us after the inner block
        code = subprocess.run(
            [PY, "-c", f"from coop.run.lock import read_holder; import sys; sys.exit(0 if read_holder({str(wh)!r}) else 1)"]
        ).returncode
        assert code == 0, "the outer lock must survive the inner block"
    code = subprocess.run(
        [PY, "-c", f"from coop.run.lock import read_holder; import sys; sys.exit(0 if read_holder({str(wh)!r}) else 1)"]
    ).returncode
    assert code == 1


def test_cleanup_stale_removes_leftovers_only(tmp_path):
    wh = tmp_path / "coop.duckdb"
    wh.write_bytes(b"published")
    build = build_path(wh, "run1")
    build.write_bytes(b"half built")
    Path(str(build) + ".wal").write_bytes(b"wal")
    scratch = temp_dir(wh, "run1")
    (scratch / "sub").mkdir(parents=True)
    (scratch / "sub" / "x.arrow").write_bytes(b"x")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "run-1.md").write_text("report")
    other = tmp_path / "other.duckdb"
    other.write_bytes(b"another warehouse")
    other_build = build_path(other, "run9")
    other_build.write_bytes(b"another warehouse's build, maybe running")

    cache = tmp_path / ".state" / "cache"
    (cache / "abc").mkdir(parents=True)
    (cache / "abc" / "meta.json").write_text("{}")
    half_entry = cache / ".tmp-abc-123-ffffff"
    half_entry.mkdir()
    (half_entry / "htx.parquet").write_bytes(b"x")
    half_json = tmp_path / ".state" / ".hashes.json.tmp-123-abcdef"
    half_json.write_text("{")
    (tmp_path / ".state" / "hashes.json").write_text("{}")
    half_report = reports / ".run-2.md.tmp-99"
    half_report.write_text("half")

    with pytest.raises(RuntimeError):
        cleanup_stale(wh)  # not holding the lock
    with run_lock(wh):
        removed = cleanup_stale(wh)
    assert set(removed) == {build, Path(str(build) + ".wal"), scratch, half_entry, half_json, half_report}
    assert (cache / "abc" / "meta.json").exists() and (tmp_path / ".state" / "hashes.json").exists()
    assert wh.read_bytes() == b"published"
    assert (reports / "run-1.md").exists()
    assert other_build.exists()
    assert lock_path(wh).exists()


def test_stage_checkpoint_is_a_noop_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("COOP_TEST_PAUSE_AT", raising=False)
    monkeypatch.setenv("COOP_TEST_PAUSE_DIR", str(tmp_path))
    stage_checkpoint("reading")
    monkeypatch.setenv("COOP_TEST_PAUSE_AT", "models")
    stage_checkpoint("reading")
    assert list(tmp_path.iterdir()) == []


def test_stage_checkpoint_pauses_and_marks(tmp_path, monkeypatch):
    monkeypatch.setenv("COOP_TEST_PAUSE_AT", "models")
    monkeypatch.setenv("COOP_TEST_PAUSE_DIR", str(tmp_path))
    monkeypatch.setenv("COOP_TEST_PAUSE_SECONDS", "0")
    stage_checkpoint("models")
    assert (tmp_path / "models").read_text() == str(os.getpid())


def test_exit_code_is_distinct():
    assert EXIT_BUSY not in (0, 1, 2)


# --------------------------------------------------------------------------- through the CLI
HOLD_UNTIL = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from coop.run.lock import run_lock
    with run_lock(Path(sys.argv[1])):
        Path(sys.argv[2]).write_text("held")
        while not Path(sys.argv[3]).exists():
            time.sleep(0.05)
    """
)


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COOP_TEST_"))}
    env["COOP_NO_PROGRESS"] = "1"
    return env


def _hold(wh: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    held, go = tmp_path / "held", tmp_path / "go"
    proc = subprocess.Popen([PY, "-c", HOLD_UNTIL, str(wh), str(held), str(go)])
    deadline = time.monotonic() + 30
    while not held.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "lock holder did not start"
        time.sleep(0.05)
    return proc, go


@pytest.mark.parametrize("command", [["run"], ["backfill", "--from", "2020", "--to", "2021"]])
def test_second_coop_run_exits_at_once_with_the_message(tmp_path, command):
    raw = tmp_path / "raw"
    (raw / "2021").mkdir(parents=True)
    wh = tmp_path / "wh" / "coop.duckdb"
    holder, go = _hold(wh, tmp_path)
    try:
        res = subprocess.run(
            [PY, "-m", "coop.cli", *command, "--raw-dir", str(raw), "--warehouse", str(wh)],
            capture_output=True, text=True, timeout=300, env=_cli_env(), cwd=tmp_path,
        )
        assert res.returncode == EXIT_BUSY, res.stdout + res.stderr
        out = " ".join((res.stdout + res.stderr).split())  # the console may wrap long lines
        assert f"pid {holder.pid}" in out
        assert local_time(read_holder(wh).started_at).split(" (")[0] in out
        assert "--wait" in out
        assert "Traceback" not in out
        assert not wh.exists()  # damaged nothing, built nothing
        assert not list(wh.parent.glob(".coop.duckdb.build-*"))
    finally:
        go.write_text("go")
        holder.wait(timeout=30)


def test_coop_run_wait_waits_for_the_other_run(tmp_path):
    raw = tmp_path / "raw"
    (raw / "2021").mkdir(parents=True)
    wh = tmp_path / "wh" / "coop.duckdb"
    holder, go = _hold(wh, tmp_path)
    log = tmp_path / "run.log"
    env = dict(_cli_env(), COOP_LOG_LEVEL="INFO")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [PY, "-m", "coop.cli", "run", "--wait", "--raw-dir", str(raw), "--warehouse", str(wh)],
            stdout=fh, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
        )

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 120
        while text not in log.read_text():
            assert proc.poll() is None, f"exited before {text!r}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no {text!r}:\n{log.read_text()}"
            time.sleep(0.1)

    try:
        wait_for("Waiting for the run already going")
        assert f"pid {holder.pid}" in " ".join(log.read_text().split())
        time.sleep(1)
        assert proc.poll() is None, "must keep waiting while the other run holds the lock"
        assert "The other run finished" not in log.read_text()
        go.write_text("go")
        holder.wait(timeout=30)
        wait_for("The other run finished; going on.")  # it got the lock and went on
        assert read_holder(wh).pid == proc.pid
    finally:
        go.write_text("go")
        if proc.poll() is None:
            proc.kill()  # no need to let the whole run finish
            proc.wait()
        holder.wait(timeout=30)


# --------------------------------------------------------------------------- orphans of a killed run
ORPHANING_HOLDER = textwrap.dedent(
    """
    import subprocess, sys, time
    from pathlib import Path
    from coop.run.lock import run_lock, stage_checkpoint
    with run_lock(Path(sys.argv[1])):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        stage_checkpoint("reading")  # records the child in the lock file
        Path(sys.argv[2]).write_text(str(child.pid))
        time.sleep(300)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_next_run_stops_what_a_killed_run_left_running(tmp_path, monkeypatch):
    monkeypatch.delenv("COOP_TEST_PAUSE_AT", raising=False)
    wh = tmp_path / "coop.duckdb"
    marker = tmp_path / "child.pid"
    proc = subprocess.Popen([PY, "-c", ORPHANING_HOLDER, str(wh), str(marker)])
    bystander = subprocess.Popen([PY, "-c", "import time; time.sleep(300)"])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "holder did not start"
            time.sleep(0.05)
        child = int(marker.read_text())
        assert json.loads(lock_path(wh).read_text())["children"][0]["pid"] == child
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _alive(child), "the killed run's child outlives it (an orphan)"
        with run_lock(wh):
            cleanup_stale(wh)
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the next run must stop the orphan"
        assert bystander.poll() is None, "processes the killed run did not record are left alone"
    finally:
        for p in (proc, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()
        if marker.exists():
            try:
                os.kill(int(marker.read_text()), signal.SIGKILL)
            except OSError:
                pass


def test_a_finished_run_leaves_no_children_record(tmp_path):
    wh = tmp_path / "coop.duckdb"
    with run_lock(wh):
        child = subprocess.Popen([PY, "-c", "import time; time.sleep(30)"])
        try:
            stage_checkpoint("reading")
            assert json.loads(lock_path(wh).read_text())["children"]
        finally:
            child.kill()
            child.wait()
    assert lock_path(wh).read_text() == ""
