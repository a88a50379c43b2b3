"""Reading on Dask (docs/scale-out.md, flows/task_runners.py, the `dask_address` setting).

The province: the small generated Đà Nẵng (`sample.generate.generate_small_province(raw, "48")`:
3 districts 2023-2024 and 4 communes 2025, one workbook each = 10 workbooks, so the flow
reads them in 3 batches, one per report year). It is built three times by `coop run`
(`coop.run.runner.run_command`, in this process, on the session's Prefect test API):

- serially (`dask_address` empty: the thread pool of the flow process) — the reference;
- with `COOP_DASK_ADDRESS=local:2` (a LocalCluster of 2 worker processes started by the run);
- on a running LocalCluster of 2 worker processes (`tcp://` address) one of whose worker
  processes is killed (SIGKILL) by a hook in its reader at its second file, mid-batch.

Each Dask-built warehouse must equal the serial one row by row: every table and view of
`marts.*`, `audit.*` and `raw.*`, run ids and run timestamps left out (they differ by
construction). Expected figures are the serial build's, which tests/test_units_warehouse.py
checks against the generator's ground truth for this very province.
"""

from __future__ import annotations

import os
from pathlib import Path

import cloudpickle
import duckdb
import pytest

from coop.ingest import normalize
from coop.run.runner import run_command
from coop.settings import SettingsError, check_dask_address, load_settings
from sample.generate import generate_small_province

PROVINCE = "48"
#: columns that name or time the run that wrote a row: different in every build by construction
RUN_COLUMNS = {"run_id", "first_seen_run", "last_run", "started_at", "finished_at"}
SCHEMAS = ("marts", "audit", "raw")


def snapshot(wh: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every table and view of SCHEMAS: (columns compared, rows sorted), floats to 9 decimals
    (DuckDB's parallel sums may differ in the last bits between two builds, tests/test_crash.py)."""
    con = duckdb.connect(str(wh), read_only=True)
    try:
        rels = con.execute(  # tables and views
            f"SELECT DISTINCT schema_name, table_name FROM duckdb_columns() WHERE schema_name IN {SCHEMAS} "
            "ORDER BY 1, 2").fetchall()
        out = {}
        for schema, name in rels:
            cols = [c for c, t in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "ORDER BY column_index", [schema, name]).fetchall()
                if c not in RUN_COLUMNS and not (t.startswith("TIMESTAMP") and c != "modified_at")]
            rows = con.execute(f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} '
                               f'FROM "{schema}"."{name}"').fetchall()
            rows = [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows]
            out[f"{schema}.{name}"] = (cols, sorted(rows, key=repr))
        return out
    finally:
        con.close()


def assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel][0] == want[rel][0], rel
        assert got[rel][1] == want[rel][1], f"{rel} differs from the serial build"


def build(raw: Path, wh: Path, monkeypatch: pytest.MonkeyPatch, dask_address: str) -> list[str]:
    """`coop run` with that `dask_address`; returns the files read in *this* process."""
    read_here: list[str] = []
    real = normalize.ingest_file

    def recording(raw_file, reference=None, **kw):
        read_here.append(raw_file.source_file)
        return real(raw_file, reference, **kw)

    with monkeypatch.context() as m:
        m.setenv("COOP_PROVINCE", PROVINCE)
        m.setenv("COOP_DASK_ADDRESS", dask_address)
        m.setenv("COOP_NO_PROGRESS", "1")
        m.delenv("PREFECT_API_URL", raising=False)
        m.setattr(normalize, "ingest_file", recording)
        assert run_command(raw, wh, None, False) == 0
    return read_here


@pytest.fixture(scope="module")
def world(tmp_path_factory, prefect_harness):
    base = tmp_path_factory.mktemp("dask")
    raw = base / "raw"
    generate_small_province(raw, PROVINCE)
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.xlsx"))
    assert len(files) == 10 and {f.split("/")[0] for f in files} == {"2023", "2024", "2025"}
    with pytest.MonkeyPatch.context() as mp:
        read_here = build(raw, base / "serial" / "coop.duckdb", mp, "")
    assert sorted(read_here) == files  # serial: every file read in this process, once
    serial = snapshot(base / "serial" / "coop.duckdb")
    # the serial build is a real one: every workbook loaded, register rows in raw.htx
    assert len(serial["audit.files"][1]) == 10
    assert len(serial["raw.htx"][1]) > 50
    return {"base": base, "raw": raw, "files": files, "serial": serial}


def test_local_cluster_of_two_processes_builds_the_same_warehouse(world, monkeypatch):
    """`local:2`: the run starts a LocalCluster of 2 worker processes, reads there (no file is
    read in the flow's process) and publishes a warehouse identical to the serial one."""
    wh = world["base"] / "local2" / "coop.duckdb"
    read_here = build(world["raw"], wh, monkeypatch, "local:2")
    assert read_here == []  # every workbook was read by a Dask worker process
    assert_same(snapshot(wh), world["serial"])


def test_killed_worker_is_retried_and_the_warehouse_is_the_same(world, monkeypatch, tmp_path):
    """A running LocalCluster of 2 worker processes, addressed as `tcp://…`. A worker plugin
    hooks every worker's reader (new ones too): each read is logged (pid, file), and the
    first worker process to reach its second file SIGKILLs itself (once, whichever it is):
    its batch dies half read. Dask reschedules the batch on a living worker, Prefect's task
    run finishes Completed, and the warehouse equals the serial one."""
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import WorkerPlugin

    marker, reads = tmp_path / "killed", tmp_path / "reads.log"

    def arm(marker: str, reads: str) -> None:  # in each worker process (cloudpickled by value)
        import os
        import signal

        import coop.ingest.normalize as n

        real, count = n.ingest_file, [0]

        def reading(raw_file, reference=None, **kw):
            count[0] += 1
            with open(reads, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()} {raw_file.source_file}\n")
            if count[0] == 2:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    pass
                else:
                    os.write(fd, str(os.getpid()).encode())
                    os.close(fd)
                    os.kill(os.getpid(), signal.SIGKILL)  # mid-batch: the first file was read and cached
            return real(raw_file, reference, **kw)

        n.ingest_file = reading

    class KillAtSecondRead(WorkerPlugin):  # a local class: sent by value, set up on every worker
        name = "coop-test-kill-at-second-read"

        def setup(self, worker):
            arm(str(marker), str(reads))

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.register_plugin(KillAtSecondRead())
        armed = set(client.run(os.getpid).values())
        assert len(armed) == 2
        wh = tmp_path / "wh" / "coop.duckdb"
        read_here = build(world["raw"], wh, monkeypatch, cluster.scheduler_address)
        assert read_here == []

    killed = int(marker.read_text())
    assert killed in armed
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # that worker process is gone (the nanny started a new one)
    log = [line.split(" ", 1) for line in reads.read_text(encoding="utf-8").splitlines()]
    by_killed = [f for pid, f in log if int(pid) == killed]
    assert len(by_killed) == 2  # it died at its second file
    others = {f for pid, f in log if int(pid) != killed}
    assert set(by_killed) <= others  # the dead worker's batch was read again elsewhere
    assert others == set(world["files"])  # and every file was read by a living worker
    assert_same(snapshot(wh), world["serial"])
    _assert_reading_tasks_completed(wh)


def _assert_reading_tasks_completed(wh: Path, wait_s: float = 60) -> None:
    """The Prefect view of that run: 3 read-batch task runs (one per year), all Completed —
    the killed one was run again under the same task run, not replaced by a new one. (Task
    run states reach the API as events, recorded asynchronously: polled a while.)"""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        assert str(wh.parent) in str(flow_run.parameters.get("warehouse"))
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
            reading = [r for r in runs if r.name.rsplit("-", 1)[0] == "read-batch"]
            done = len(reading) == 3 and all(r.state is not None and r.state.is_completed() for r in reading)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert len(reading) == 3, [r.name for r in reading]
    assert done, [(r.name, r.state) for r in reading]


def test_a_cluster_without_workers_fails_the_run_with_the_reason(world, monkeypatch, tmp_path, capsys):
    """A scheduler with no worker: the run waits COOP_DASK_WORKER_WAIT_SECONDS, then fails
    with the reason; nothing is published, the failed run is remembered for the next build."""
    from distributed import LocalCluster

    monkeypatch.setenv("COOP_PROVINCE", PROVINCE)
    monkeypatch.setenv("COOP_DASK_WORKER_WAIT_SECONDS", "1")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    wh = tmp_path / "wh" / "coop.duckdb"
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster:  # a tcp:// scheduler
        monkeypatch.setenv("COOP_DASK_ADDRESS", cluster.scheduler_address)
        assert run_command(world["raw"], wh, None, False) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "Không có máy đọc Dask nào sẵn sàng sau 1 giây" in out and "[dask_no_worker]" in out
    assert not wh.exists()
    pending = (wh.parent / ".state" / "pending_runs.jsonl").read_text(encoding="utf-8")
    assert '"status": "failed"' in pending and "dask_no_worker" in pending


# --------------------------------------------------------------------------- the setting, the runner, pickling
def test_dask_address_setting(monkeypatch, tmp_path):
    assert load_settings(tmp_path / "none.toml").dask_address == ""
    toml = tmp_path / "coop.toml"
    toml.write_text('[coop]\ndask_address = " tcp://10.0.0.5:8786 "\n', encoding="utf-8")
    assert load_settings(toml).dask_address == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("COOP_DASK_ADDRESS", "local:4")  # the environment wins
    assert load_settings(toml).dask_address == "local:4"
    for good in ("local:1", "tls://sched.lan:8786", "tcp://[::1]:8786"):
        assert check_dask_address(good) == good
    for bad in ("local:0", "local:", "local:two", "tcp://host", "http://host:8786", "8786", 2):
        with pytest.raises(SettingsError) as e:
            check_dask_address(bad)  # named after where it came from: the environment here
        msg = str(e.value)
        assert msg.startswith("$COOP_DASK_ADDRESS: dask_address") and "không hợp lệ" in msg
        assert msg.endswith("[invalid_setting]")
    # a typo is reported where the value is used, never by load_settings: `coop validate` and the
    # other commands that do not read on Dask keep working
    monkeypatch.delenv("COOP_DASK_ADDRESS")
    toml.write_text('[coop]\ndask_address = "tcp:/sched:8786"\n', encoding="utf-8")
    monkeypatch.setenv("COOP_CONFIG", str(toml))
    assert load_settings().dask_address == "tcp:/sched:8786"
    with pytest.raises(SettingsError, match=f"^{toml}: dask_address 'tcp:/sched:8786' không hợp lệ"):
        check_dask_address(load_settings().dask_address)


def test_bad_setting_fails_the_run_before_anything_starts(world, monkeypatch, tmp_path, capsys):
    """`coop run` with a typo in dask_address: exit 1, the reason printed, no Prefect API
    database prepared, nothing built."""
    monkeypatch.setenv("COOP_PROVINCE", PROVINCE)
    monkeypatch.setenv("COOP_DASK_ADDRESS", "local:zero")
    wh = tmp_path / "wh" / "coop.duckdb"
    assert run_command(world["raw"], wh, None, False) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "dask_address 'local:zero' không hợp lệ" in out and "[invalid_setting]" in out
    assert not wh.exists() and not (wh.parent / ".state" / "prefect.db").exists()


def test_runner_follows_the_setting_when_the_run_starts(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_run
    from flows.task_runners import ReadingTaskRunner

    assert isinstance(nightly_run.task_runner, ReadingTaskRunner)
    monkeypatch.setenv("COOP_DASK_ADDRESS", "local:3")
    with nightly_run.task_runner.duplicate() as r:  # what Prefect does when a flow run starts
        assert isinstance(r._inner, DaskTaskRunner) and r._inner._client is None  # no cluster before a submit
        assert {k: r._inner.cluster_kwargs[k] for k in ("n_workers", "threads_per_worker", "processes")} == \
            {"n_workers": 3, "threads_per_worker": 1, "processes": True}
    with nightly_run.task_runner.for_address("") as r:  # runner.py passes the setting it read
        assert isinstance(r._inner, ThreadPoolTaskRunner)
    with nightly_run.task_runner.for_address("tcp://10.0.0.5:8786") as r:
        assert r._inner.address == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("COOP_DASK_ADDRESS", "")
    with nightly_run.task_runner.duplicate() as r:
        assert isinstance(r._inner, ThreadPoolTaskRunner)


def test_what_a_worker_gets_pickles(world, monkeypatch):
    """A batch's parameters (plan entries and the run context with its Reference) survive
    cloudpickle (what Dask sends), and are small: paths and hashes, not file contents."""
    from coop.context import run_context
    from coop.ingest.discover import discover
    from coop.run import planning

    monkeypatch.setenv("COOP_PROVINCE", PROVINCE)
    ctx = run_context(world["raw"], world["base"] / "p" / "coop.duckdb")
    raw_files, issues = discover(ctx.raw_dir, ctx.reference, None)
    plan = planning.plan_from_discovery(raw_files, issues, ctx.raw_dir, ctx.warehouse)
    batch = plan.to_read
    data = cloudpickle.dumps({"batch": batch, "ctx": ctx})
    back = cloudpickle.loads(data)
    assert [(f.source_file, f.file_hash, f.cache_key, f.path) for f in back["batch"]] == \
        [(f.source_file, f.file_hash, f.cache_key, f.path) for f in batch]
    assert back["ctx"].reference.province_code == ctx.reference.province_code
    assert back["ctx"].state == ctx.state and back["ctx"].settings == ctx.settings
    assert len(cloudpickle.dumps(batch)) < 1000 * len(batch)  # < 1 kB a file


def test_worker_checks(tmp_path):
    """coop.run.scaleout: a worker of another release, without the raw folder or without the
    shared .state/ is named with the reason; a fit worker passes."""
    from coop.run.scaleout import problems, reader_identity, worker_report

    f = tmp_path / "raw.xlsx"
    f.write_bytes(b"12345")
    token = tmp_path / ".tmp-dask-probe-x"
    token.write_text("abc", encoding="utf-8")
    me = reader_identity()
    fit = worker_report((str(f), 5), (str(token), "abc"))
    assert fit["sample"] is True and fit["state"] is True and fit["identity"] == me
    assert problems(me, {"tcp://a:1": fit}, str(f), str(tmp_path)) == []
    unfit = worker_report((str(tmp_path / "gone.xlsx"), 5), (str(token), "other"))
    unfit["identity"] = dict(me, polars="0.0.1")
    found = problems(me, {"tcp://a:1": unfit}, str(f), str(tmp_path))
    assert [m.rsplit("[", 1)[1] for m in found] == ["dask_worker_mismatch]", "dask_raw_not_shared]",
                                                    "dask_state_not_shared]"]
    assert all(m.startswith("Máy đọc Dask worker tcp://a:1") for m in found)
    assert "polars: 0.0.1 != " in found[0]
