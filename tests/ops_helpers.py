"""Helpers for the operations tests: subprocesses in their own process group, a real
Prefect server on a free loopback port with a private PREFECT_HOME and SQLite database."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

PREFECT = str(Path(sys.executable).with_name("prefect"))


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any Prefect or test-hook settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COOP_TEST_"))}
    env.update({"COOP_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left in it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)


def tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    fh = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)
        fh.close()


def wait_healthy(api: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited ({proc.returncode}):\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout} s:\n{tail(log)}")


def premigrated_prefect_db(name: str, folder: Path | None = None) -> Path | None:
    """A folder (`folder`, else a new temporary one) holding `name`: a copy of coop's migrated
    Prefect database template (`coop.run.prefect_env.ensure_template`: migrated once per
    machine and Prefect version, ~/.cache/coop). A server started on it with
    `PREMIGRATED_ENV` skips the migrations and block registration (10-20 CPU-s each start).
    None when the template cannot be made (the server then migrates a new database)."""
    import sqlite3

    from coop.run.prefect_env import ensure_template

    template = ensure_template()
    if template is None:
        return None
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="coop-prefect-db-"))
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(template)) as src, sqlite3.connect(str(folder / name)) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return folder


#: Settings of a Prefect server whose database is a copy of the migrated template.
PREMIGRATED_ENV = {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false", "PREFECT_API_BLOCKS_REGISTER_ON_START": "false"}


@contextmanager
def prefect_server(workdir: Path) -> Iterator[dict[str, str]]:
    """Start `prefect server start` on a free loopback port; yield the environment a client
    needs (PREFECT_API_URL, PREFECT_HOME...). Stopped (whole process group) on exit. Its
    SQLite database starts as a copy of the migrated template (`premigrated_prefect_db`)."""
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = clean_env(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'server.db'}",
    )
    if premigrated_prefect_db("server.db", home) is not None:
        env.update(PREMIGRATED_ENV)
    log = workdir / "prefect-server.log"
    with process([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log, workdir) as srv:
        _SERVER_PROCS.append(srv)
        wait_healthy(api, srv, log)
        yield dict(env, PREFECT_API_URL=api)


_SERVER_PROCS: list[subprocess.Popen] = []


_shared: dict[str, object] = {}


def shared_prefect_server() -> dict[str, str]:
    """One Prefect server for the whole test session (started on first use, stopped at exit),
    so that the crash and server tests pay its start-up once. Returns the client environment."""
    if "env" in _shared:
        proc = _shared["proc"]
        if proc.poll() is None:  # type: ignore[union-attr]
            return dict(_shared["env"])  # type: ignore[arg-type]
    workdir = Path(tempfile.mkdtemp(prefix="coop-prefect-"))
    cm = prefect_server(workdir)
    env = cm.__enter__()
    _shared.update(env=env, proc=_SERVER_PROCS[-1], cm=cm, workdir=workdir)

    def _close() -> None:
        try:
            cm.__exit__(None, None, None)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(_close)
    return dict(env)
