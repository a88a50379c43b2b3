"""The Prefect environment of coop: every Prefect setting and workaround in one place.

- `PREFECT_OFFLINE` / `offline_prefect()`: no telemetry, no first-run notice, the loopback never
  through a proxy (every coop command, before Prefect is imported).
- `PREFECT_QUIET` / `quiet_prefect()`: Prefect's own console output silenced for `coop run`.
- `prefect_api_url()`: the API this process will talk to, read without importing Prefect.
- `prepare_local_api(warehouse)`: with no `PREFECT_API_URL`, Prefect 3 starts a temporary API
  server (`SubprocessASGIServer`) whose start-up runs Alembic migrations on its SQLite
  database and registers the block types. coop gives that server a database of the
  warehouse's own (`.state/prefect.db`) that is already migrated: copied from a template
  migrated once per machine and Prefect version (`~/.cache/coop/prefect-<version>.db`), and
  stamped (`.state/prefect.db.version`), so the server is started with
  `PREFECT_API_DATABASE_MIGRATE_ON_START=false` and `PREFECT_API_BLOCKS_REGISTER_ON_START=false`
  (Prefect 3 settings) and skips both. A new Prefect version (another stamp) migrates the
  persistent database again, once. Figures: docs/performance.md.

With a long-lived server (`PREFECT_API_URL`, e.g. `prefect server start` next to `coop serve`)
none of this applies: the run talks to that server and starts nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlite3 and subprocess are imported where used: `coop run`'s quick check reads
    import subprocess  # prefect_api_url() only (coop.run.quick)
    from contextlib import AbstractContextManager

#: Offline by default (every coop command, before Prefect is imported; an operator's own value
#: wins): no usage data leaves the machine, no first-run telemetry notice, no "Failed to send
#: telemetry" ERROR when there is no network (settings of Prefect 3.9, checked in its source).
PREFECT_OFFLINE = {
    "DO_NOT_TRACK": "1",  # client SDK analytics and its notice (prefect._internal.analytics)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # server telemetry heartbeat (server/services/telemetry.py)
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",  # run traces (Prefect Cloud only)
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",  # the UI of a `prefect server start`
}
#: The local Prefect API (the temporary server of `coop run`, a `prefect server start`) is on
#: the loopback: never reach it through an HTTP(S)_PROXY (offline, the proxy is unreachable).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: Prefect settings applied (unless already set) before Prefect is imported.
PREFECT_QUIET = {
    **PREFECT_OFFLINE,
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",  # no state lines / tracebacks on the console
    "PREFECT_LOGGING_HANDLERS_DEBUG_LEVEL": "CRITICAL",  # prefect._internal (shutdown noise)
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",  # temporary server start/stop, uvicorn
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # slow machines: wait, don't fail
}

#: Settings for a temporary server whose database is known to be migrated (Prefect 3.9
#: `server.database.migrate_on_start`, `server.api.blocks_register_on_start`).
PREMIGRATED = {
    "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
}
DB_NAME = "prefect.db"
STAMP_NAME = "prefect.db.version"


def offline_prefect() -> None:
    """PREFECT_OFFLINE, and the loopback added to NO_PROXY/no_proxy when a proxy is set."""
    for k, v in PREFECT_OFFLINE.items():
        os.environ.setdefault(k, v)
    if any(os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                                       "all_proxy")):
        hosts = [h.strip() for k in ("NO_PROXY", "no_proxy") for h in os.environ.get(k, "").split(",") if h.strip()]
        hosts += [h for h in LOOPBACK_HOSTS if h not in hosts]
        value = ",".join(dict.fromkeys(hosts))
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = value


def quiet_prefect() -> None:
    offline_prefect()
    for k, v in PREFECT_QUIET.items():
        os.environ.setdefault(k, v)


def prefect_api_url() -> str | None:
    """The Prefect API this process will talk to, without importing Prefect (slow): the
    `PREFECT_API_URL` variable, else the active profile's setting (`prefect config set`)."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    if not (home / "profiles.toml").is_file():
        return None
    try:
        import tomllib

        data = tomllib.loads((home / "profiles.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = os.environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    return (data.get("profiles", {}).get(name, {}) or {}).get("PREFECT_API_URL") or None


def prefect_version() -> str:
    """The installed Prefect's version, without importing it."""
    from importlib.metadata import version

    return version("prefect")


def template_dir() -> Path:
    """Where the migrated template database lives: `COOP_PREFECT_TEMPLATE_DIR`, else
    `$XDG_CACHE_HOME/coop`, else `~/.cache/coop`."""
    d = os.environ.get("COOP_PREFECT_TEMPLATE_DIR")
    if d:
        return Path(d).expanduser()
    from coop.run.state import machine_cache_dir

    return machine_cache_dir()


def _sqlite_url(db: Path) -> str:
    return f"sqlite+aiosqlite:///{db}"


def _copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy (SQLite backup API: WAL content included), written then renamed."""
    import sqlite3

    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(str(src)) as s, sqlite3.connect(str(tmp)) as d:
        s.backup(d)
    s.close()
    d.close()
    os.replace(tmp, dst)


def make_template(path: Path) -> None:
    """Migrate an empty Prefect database at `path` and register the block types (what a
    temporary server does on its first start), in this process. Run in a child process
    (`python -m coop.run.prefect_env --template PATH`): Prefect reads its settings at import."""
    import asyncio

    os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = _sqlite_url(path)
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    async def _go() -> None:
        db = provide_database_interface()
        await db.create_db()
        session = await db.session()
        async with session:
            await run_block_auto_registration(session=session)
            await session.commit()
        engine = await db.engine()
        await engine.dispose()

    asyncio.run(_go())


def ensure_template() -> Path | None:
    """The migrated template for the installed Prefect, made once (a child process) if
    missing; None when it cannot be made (the server then migrates, as Prefect does)."""
    import sqlite3
    import subprocess

    target = template_dir() / f"prefect-{prefect_version()}.db"
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = target.with_name(f"{target.stem}.{os.getpid()}.build.db")
        for p in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
            p.unlink(missing_ok=True)
        env = {**os.environ, "PREFECT_LOGGING_LEVEL": "CRITICAL"}
        done = subprocess.run([sys.executable, "-m", "coop.run.prefect_env", "--template", str(work)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
        if done.returncode != 0 or not work.exists():
            return None
        _copy_sqlite(work, target)  # WAL folded in, then atomically in place
        for p in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
            p.unlink(missing_ok=True)
        return target
    except (OSError, subprocess.SubprocessError, sqlite3.Error):
        return None


def prepare_local_api(warehouse: Path) -> dict[str, str | None]:
    """Before Prefect is imported, with no API configured: point the temporary server at the
    warehouse's own pre-migrated database (see the module doc). Returns the environment
    variables it set, with their previous values, for `restore_env`. Nothing is done when an
    API URL, `PREFECT_API_DATABASE_CONNECTION_URL` or `PREFECT_HOME` is set (the operator's
    choice; tests use their own `PREFECT_HOME`)."""
    import sqlite3

    if prefect_api_url() or "PREFECT_API_DATABASE_CONNECTION_URL" in os.environ or "PREFECT_HOME" in os.environ:
        return {}
    from coop.run.store import state_dir

    state = state_dir(warehouse).resolve()
    state.mkdir(parents=True, exist_ok=True)
    db, stamp = state / DB_NAME, state / STAMP_NAME
    version = prefect_version()
    changes: dict[str, str] = {"PREFECT_API_DATABASE_CONNECTION_URL": _sqlite_url(db)}
    migrated = db.exists() and _read(stamp) == version
    if not db.exists():
        template = ensure_template()
        if template is not None:
            try:
                _copy_sqlite(template, db)
                stamp.write_text(version, encoding="utf-8")
                migrated = True
            except (OSError, sqlite3.Error):
                db.unlink(missing_ok=True)
    if migrated:
        changes.update({k: v for k, v in PREMIGRATED.items() if k not in os.environ})
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    return saved


def after_local_api(warehouse: Path, saved: dict[str, str | None], server_started: bool) -> None:
    """After the flow: stamp the database as migrated by this Prefect version (the temporary
    server migrated it if it started) and restore the environment (in-process callers)."""
    if saved and server_started:
        from coop.run.store import state_dir

        state = state_dir(warehouse).resolve()
        try:
            if (state / DB_NAME).exists():
                (state / STAMP_NAME).write_text(prefect_version(), encoding="utf-8")
        except OSError:
            pass
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class LocalServer:
    """A Prefect API server (Prefect's own app, `prefect.server.api.server:create_app`, run by
    uvicorn exactly as Prefect's `SubprocessASGIServer` runs its temporary server) started by
    coop for one run, on a free loopback port. Started *before* Prefect is imported, so the
    server's start-up overlaps this process's imports and this process never imports the
    server code (Prefect's own temporary server is started from inside the first API call,
    after both). A child process: recorded in the run lock and reaped after a crash
    (coop.run.lock), stopped at the end of the run."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int):
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}/api"

    def wait_ready(self, timeout: float) -> bool:
        """Poll `/health` (never through a proxy) until it answers 200; False if the server
        exited or did not answer within `timeout` seconds."""
        import time
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with opener.open(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) of an AF_INET socket
        return port


def start_local_server() -> LocalServer | None:
    """With no API configured: start Prefect's API server for this run and point
    `PREFECT_API_URL` at it (before Prefect is imported). None when an API is configured or
    `COOP_PREFECT_LOCAL_SERVER=0` or Prefect is imported already (e.g. a run called inside a
    test process): Prefect's own temporary server is then used."""
    import subprocess

    if prefect_api_url() or os.environ.get("COOP_PREFECT_LOCAL_SERVER", "1") == "0":
        return None
    if "prefect" in sys.modules:  # its settings are read already: the variable would not be seen
        return None
    from importlib.util import find_spec

    spec = find_spec("prefect")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    app_dir = str(Path(next(iter(spec.submodule_search_locations))).parent)
    port = _free_port()
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from coop.run.lock import record_children

    record_children()  # in the run lock at once: a run killed before its first stage still gets it reaped
    server = LocalServer(proc, port)
    os.environ["PREFECT_API_URL"] = server.url
    return server


def stop_local_server(server: LocalServer | None) -> None:
    if server is None:
        return
    server.stop()
    if os.environ.get("PREFECT_API_URL") == server.url:
        del os.environ["PREFECT_API_URL"]


def drain_prefect_workers(timeout: float = 5) -> None:
    """Send what Prefect's background workers still hold (API logs, events) while the run's
    server is up; never fails the run."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            try:
                worker.drain_all(timeout=timeout)
            except Exception:  # noqa: BLE001 — best effort: the run's outcome does not depend on its logs
                pass
    except Exception:  # noqa: BLE001 — Prefect's internals moved or failed to import: nothing to drain
        pass


#: Modules Prefect imports only when a flow runs (its engines; FastAPI's encoder for the flow run's
#: parameters; artifacts, for the run report): imported while the temporary API starts, not after.
ENGINE_MODULES = ("prefect.flow_engine", "prefect.task_engine", "fastapi.encoders", "prefect.artifacts")


def preload_engine() -> None:
    """Import `ENGINE_MODULES` now (while this process waits for its temporary API anyway):
    ≈ 0.4 s that the flow's start would otherwise add between the API being up and discovery.
    A module that fails to import is left to fail, or not, where Prefect imports it."""
    from importlib import import_module

    for name in ENGINE_MODULES:
        try:
            import_module(name)
        except Exception:  # noqa: BLE001 — only a head start
            pass


def no_heartbeats() -> AbstractContextManager[object]:
    """Prefect settings for a flow run on coop's temporary API: no flow run heartbeats. They
    let a long-lived server tell a crashed run from a running one; the temporary server stops
    with the run, so no one reads them — and Prefect's heartbeat thread sleeps in one-second
    steps that the flow's end waits for (0–1 s, half a second on average, at every run's end).
    Prefect's own setting (`flows.heartbeat_frequency`: None turns them off), in this context
    only; a run on a configured server keeps them."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def startup_timeout() -> float:
    try:
        return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 120)
    except ValueError:
        return 120.0


def private_ephemeral_database(warehouse: Path) -> str | None:
    """Compatibility: the database URL `prepare_local_api` sets (None when it sets none)."""
    saved = prepare_local_api(warehouse)
    return os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL") if saved else None


def _read(p: Path) -> str | None:
    try:
        return p.read_text(encoding="utf-8").strip()
    except OSError:
        return None


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--template":
        make_template(Path(sys.argv[2]))
    else:
        print("usage: python -m coop.run.prefect_env --template PATH", file=sys.stderr)
        raise SystemExit(2)
