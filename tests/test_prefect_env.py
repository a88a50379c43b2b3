"""coop.run.prefect_env: the temporary Prefect API gets a pre-migrated database of the warehouse's
own, so a run with no server configured does not wait for Alembic migrations; the flow reads
in a few coarse batches on a pool bounded by the cores."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ops_helpers import clean_env

from coop.run import prefect_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_prefect_env(monkeypatch, tmp_path):
    for k in [k for k in os.environ if k.startswith("PREFECT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.prefect/profiles.toml of the machine
    monkeypatch.setenv("COOP_PREFECT_TEMPLATE_DIR", str(tmp_path / "templates"))
    return tmp_path


def _fake_template(tmp: Path) -> Path:
    t = tmp / "templates" / f"prefect-{prefect_env.prefect_version()}.db"
    t.parent.mkdir(parents=True)
    with sqlite3.connect(t) as c:
        c.execute("CREATE TABLE alembic_version (version_num TEXT)")
        c.execute("INSERT INTO alembic_version VALUES ('head')")
    c.close()
    return t


def test_new_warehouse_gets_a_copy_of_the_template_and_skips_migrations(no_prefect_env):
    tmp = no_prefect_env
    _fake_template(tmp)
    wh = tmp / "wh" / "coop.duckdb"
    saved = prefect_env.prepare_local_api(wh)
    db = tmp / "wh" / ".state" / "prefect.db"
    assert os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] == f"sqlite+aiosqlite:///{db.resolve()}"
    assert os.environ["PREFECT_API_DATABASE_MIGRATE_ON_START"] == "false"
    assert os.environ["PREFECT_API_BLOCKS_REGISTER_ON_START"] == "false"
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT version_num FROM alembic_version").fetchall() == [("head",)]
    c.close()
    assert (db.parent / "prefect.db.version").read_text() == prefect_env.prefect_version()
    prefect_env.after_local_api(wh, saved, server_started=True)
    for k in ("PREFECT_API_DATABASE_CONNECTION_URL", *prefect_env.PREMIGRATED):
        assert k not in os.environ  # restored: nothing leaks into a later run in this process


def test_database_of_another_prefect_version_is_migrated_then_stamped(no_prefect_env):
    tmp = no_prefect_env
    state = tmp / "wh" / ".state"
    state.mkdir(parents=True)
    (state / "prefect.db").write_bytes(b"")
    (state / "prefect.db.version").write_text("2.0.0")
    saved = prefect_env.prepare_local_api(tmp / "wh" / "coop.duckdb")
    assert "PREFECT_API_DATABASE_MIGRATE_ON_START" not in os.environ  # the server migrates it
    prefect_env.after_local_api(tmp / "wh" / "coop.duckdb", saved, server_started=True)
    assert (state / "prefect.db.version").read_text() == prefect_env.prefect_version()


def test_operator_choices_are_respected(no_prefect_env, monkeypatch):
    tmp = no_prefect_env
    for k, v in (("PREFECT_API_URL", "http://127.0.0.1:4200/api"), ("PREFECT_HOME", str(tmp / "ph")),
                 ("PREFECT_API_DATABASE_CONNECTION_URL", "sqlite+aiosqlite:////x.db")):
        monkeypatch.setenv(k, v)
        assert prefect_env.prepare_local_api(tmp / "wh" / "coop.duckdb") == {}
        assert not (tmp / "wh" / ".state" / "prefect.db").exists()
        monkeypatch.delenv(k)


def test_runner_keeps_the_names():
    from coop.run import runner

    assert runner.PREFECT_OFFLINE is prefect_env.PREFECT_OFFLINE
    assert runner.quiet_prefect is prefect_env.quiet_prefect


def test_batches_are_coarse_and_per_year():
    from types import SimpleNamespace

    from flows.nightly import BATCH_SIZE, _batches, batch_size

    files = [SimpleNamespace(year=2018 + i % 9, n=i) for i in range(12_000)]
    batches = _batches(files, workers=2)
    assert all(len({f.year for f in b}) == 1 for b in batches)
    assert sorted(f.n for b in batches for f in b) == list(range(12_000))
    assert len(batches) <= 2 * 9  # a handful of tasks, not one per 50 files (240)
    assert batch_size(10, workers=2) == BATCH_SIZE
    assert batch_size(12_000, workers=2) == 3_000


def test_flow_pool_is_bounded_by_the_cores(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.nightly import READ_WORKERS, nightly_run

    monkeypatch.setenv("COOP_DASK_ADDRESS", "")  # no Dask: the flow's thread pool (flows/task_runners.py)
    with nightly_run.task_runner.duplicate() as runner:  # what a flow run starts with
        assert isinstance(runner._inner, ThreadPoolTaskRunner)
        assert runner._inner._max_workers == READ_WORKERS <= (os.cpu_count() or 1)


def test_run_without_server_uses_the_premigrated_database(tmp_path):
    """A real `coop run` with no Prefect API configured: the template is made once, copied to
    the warehouse's `.state/`, and the temporary server records the flow run in it."""
    from pipeline_fixture import write_raw

    raw = write_raw(tmp_path / "raw")  # two small files: what is checked is Prefect's database, not the reading
    wh = tmp_path / "wh" / "coop.duckdb"
    env = clean_env(HOME=str(tmp_path / "home"), COOP_PREFECT_TEMPLATE_DIR=str(tmp_path / "templates"))
    env.pop("XDG_CACHE_HOME", None)
    done = subprocess.run([sys.executable, "-m", "coop.cli", "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "templates" / f"prefect-{prefect_env.prefect_version()}.db").exists()
    state = tmp_path / "wh" / ".state"
    assert (state / "prefect.db.version").read_text() == prefect_env.prefect_version()
    with sqlite3.connect(state / "prefect.db") as c:
        names = [r[0] for r in c.execute("SELECT f.name FROM flow_run r JOIN flow f ON f.id = r.flow_id")]
        events = dict(c.execute("SELECT event, count(*) FROM events GROUP BY 1").fetchall())
    c.close()
    assert names == ["coop-nightly"]
    # on its own temporary API the flow runs without heartbeats (prefect_env.no_heartbeats); the
    # states and the run report's artifacts are recorded as ever
    assert "prefect.flow-run.heartbeat" not in events and events["prefect.flow-run.Completed"] == 1, events
    assert events["prefect.artifact.created"] == 2, events
    # the models' parsed dependencies are kept for the machine too (a new warehouse's first run needs no parse)
    machine = tmp_path / "home" / ".cache" / "coop" / "model_deps.json"
    assert machine.exists() and machine.read_text() == (state / "model_deps.json").read_text()
    # while the temporary API started, files were read into the cache (coop.run.runner.WarmUp); the
    # flow then took them from there: the same rows as reading them (write_raw's docstring)
    import re

    import duckdb

    warm = re.search(r"Read (\d+) file\(s\) into the cache while the orchestrator started", done.stderr)
    assert warm and 1 <= int(warm.group(1)) <= 2, done.stderr[-3000:]
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT reg_code, members FROM raw.htx ORDER BY reg_code").fetchall() == [
            ("0101", 10), ("0102", 20), ("0201", 7), ("0202", 3)]
        assert con.execute("SELECT count(*) FROM audit.rejected_rows").fetchall() == [(1,)]


def test_no_heartbeats_only_inside_its_context():
    """The flow on coop's own temporary API runs without heartbeats (no one reads them, and the
    flow's end waited for Prefect's heartbeat thread); the setting is back outside the context."""
    from prefect.settings import get_current_settings

    before = get_current_settings().flows.heartbeat_frequency
    with prefect_env.no_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == before


def test_preload_engine_imports_what_a_flow_run_imports():
    code = ("import sys; from coop.run import prefect_env; prefect_env.preload_engine(); "
            "print(all(m in sys.modules for m in prefect_env.ENGINE_MODULES))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.strip() == "True", done.stderr[-2000:]
