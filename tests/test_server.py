"""The schedule: the project's Prefect deployments, and a run through a real Prefect server.

`test_deployments_declared` checks the declared deployments (no server needed).
`test_run_through_a_real_server` starts `prefect server start` on a free loopback port
(temporary PREFECT_HOME and SQLite database), runs `serve_all()` against it in another
process, triggers the nightly deployment and then the backfill deployment through the API,
waits for both to complete and checks that the warehouse was published (by those runs).
Selected with `-m server`; part of `make test`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ops_helpers import process, shared_prefect_server, tail

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RAW = ROOT / "data" / "raw"


def test_deployments_declared(tmp_path):
    from prefect.schedules import Cron  # noqa: F401

    from flows.deployments import build_deployments

    nightly, backfill = build_deployments(tmp_path / "raw", tmp_path / "wh" / "coop.duckdb")
    assert nightly.name == "nightly"
    (sched,) = nightly.schedules
    assert sched.schedule.cron == "0 1 * * *"
    assert sched.schedule.timezone == "Asia/Ho_Chi_Minh"
    assert nightly.parameters == {"raw_dir": str((tmp_path / "raw").resolve()),
                                  "warehouse": str((tmp_path / "wh" / "coop.duckdb").resolve())}
    assert backfill.name == "backfill"
    assert not backfill.schedules
    from prefect.utilities.callables import parameter_schema

    from flows.backfill import backfill_run

    assert backfill.flow_name == backfill_run.name == "coop-backfill"
    assert nightly.flow_name == "coop-nightly"
    schema = parameter_schema(backfill_run)
    props, required = schema.properties, schema.required
    assert {"from_year", "to_year", "raw_dir", "warehouse"} <= set(props)
    assert not required  # from_year/to_year, or all_years=true: checked by the flow itself
    assert {"type": "integer"} in props["from_year"]["anyOf"]
    # both run the flows by module path (the serve process imports them wherever it runs)
    assert nightly.entrypoint == "flows.deployments.scheduled_nightly"
    assert backfill.entrypoint == "flows.backfill.backfill_run"
    # a busy night: retries with delay for the nightly, a failure hook on both
    from flows.deployments import scheduled_nightly
    from flows.notify import notify_failure

    assert scheduled_nightly.retries == 2 and scheduled_nightly.retry_delay_seconds == 600
    assert notify_failure in scheduled_nightly.on_failure_hooks and notify_failure in scheduled_nightly.on_crashed_hooks
    assert notify_failure in backfill_run.on_failure_hooks


@pytest.mark.server
def test_run_through_a_real_server(tmp_path):
    assert SAMPLE_RAW.is_dir() and any(SAMPLE_RAW.iterdir()), "the shipped sample (data/raw) is missing"
    raw = tmp_path / "raw"
    for year in ("2018", "2019", "2020", "2021"):  # what is checked below; later years would only add reading
        shutil.copytree(SAMPLE_RAW / year, raw / year)
    wh = tmp_path / "wh" / "coop.duckdb"
    client_env = shared_prefect_server()
    # (the server is shared with tests/test_crash.py and stopped at the end of the session)
    client_env["PREFECT_RUNNER_POLL_FREQUENCY"] = "2"  # pick up each triggered run within ~2 s, not 10
    serve_cmd = [sys.executable, "-c",
                 "import sys; from flows.deployments import serve_all; serve_all(sys.argv[1], sys.argv[2])",
                 str(raw), str(wh)]
    with process(serve_cmd, client_env, tmp_path / "serve.log", tmp_path) as served:
        # drive the API from a separate process (this one may hold a Prefect test harness)
        res = subprocess.run([sys.executable, "-c", DRIVER], env=client_env, capture_output=True, text=True,
                             timeout=900, cwd=tmp_path)
        if res.returncode != 0:
            pytest.fail(f"driver failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}\n"
                        f"serve log:\n{tail(tmp_path / 'serve.log')}")
        result = json.loads(res.stdout.strip().splitlines()[-1])
        assert result["nightly"]["cron"] == ["0 1 * * *", "Asia/Ho_Chi_Minh"]
        assert result["nightly"]["state"] == "COMPLETED", (result, tail(tmp_path / "serve.log"))
        assert result["backfill"]["state"] == "COMPLETED", (result, tail(tmp_path / "serve.log"))
        assert served.poll() is None, "coop serve must keep serving"
        # each run left its report as Prefect artifacts (markdown + table)
        reports = [a for a in result["artifacts"] if a["key"] == "coop-run-report"]
        assert len(reports) >= 2 and all(a["type"] == "markdown" for a in reports)
        assert any("# coop backfill run" in a["data"] and "✅ published" in a["data"] for a in reports)
        assert any(a["key"] == "coop-rows-per-district" and a["type"] == "table" for a in result["artifacts"])

    # the warehouse was published by those runs
    import duckdb

    assert wh.exists()
    con = duckdb.connect(str(wh), read_only=True)
    try:
        kinds = [r[0] for r in con.execute("SELECT kind FROM audit.runs WHERE status = 'published' ORDER BY started_at").fetchall()]
        n_htx = con.execute("SELECT count(*) FROM marts.province_indicators WHERE entity_type = 'HTX'").fetchall()[0][0]
    finally:
        con.close()
    assert kinds and kinds[-1] == "backfill"
    assert n_htx >= 4  # 2018..2021
    assert list((wh.parent / "reports").glob("run-*.md"))


DRIVER = r"""
import asyncio, json, time

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment


async def main():
    out = {}
    async with get_client() as client:
        deadline = time.monotonic() + 120
        while True:
            try:
                dep = await client.read_deployment_by_name("coop-nightly/nightly")
                await client.read_deployment_by_name("coop-backfill/backfill")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise SystemExit("deployments not registered in time")
                await asyncio.sleep(1)
        (sched,) = dep.schedules
        out["nightly"] = {"cron": [sched.schedule.cron, sched.schedule.timezone]}
        fr = await run_deployment("coop-nightly/nightly", timeout=600, poll_interval=2)
        out["nightly"]["state"] = fr.state.type.value if fr.state else None
        ids = [fr.id]
        fr = await run_deployment("coop-backfill/backfill", parameters={"from_year": 2020, "to_year": 2021},
                                  timeout=600, poll_interval=2)
        out["backfill"] = {"state": fr.state.type.value if fr.state else None}
        ids.append(fr.id)
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

        # the backfill's work happens in its nightly subflow: collect the runs of both deployments
        subs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=ids)))
        ids += [r.id for r in subs]
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["coop-run-report", "coop-rows-per-district"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
        out["artifacts"] = [{"key": a.key, "type": a.type, "data": str(a.data)[:2000]} for a in arts]
    print(json.dumps(out))


asyncio.run(main())
"""


# --------------------------------------------------------------------------- a busy night (issue 12)
class _Receiver:
    """A webhook receiver on 127.0.0.1 (a `http.server` thread): keeps every JSON body POSTed."""

    def __init__(self):
        import http.server
        import threading

        self.bodies: list[dict] = []
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(n).decode("utf-8")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = _Receiver()
    try:
        yield r
    finally:
        r.close()


def test_notify_posts_json(receiver, monkeypatch):
    """The failure hook POSTs JSON (Vietnamese text first) to COOP_NOTIFY_WEBHOOK; unset = nothing;
    an unreachable URL is a warning, never an exception."""
    from types import SimpleNamespace

    from flows import notify

    flow = SimpleNamespace(name="coop-nightly")
    run = SimpleNamespace(id="1234", name="gentle-fox", deployment_id="d1", run_count=3,
                          parameters={"raw_dir": "/srv/raw"})
    state = SimpleNamespace(name="Failed", message="Flow run encountered an exception: RunFailed: raw folder missing")
    monkeypatch.delenv(notify.ENV_WEBHOOK, raising=False)
    notify.notify_failure(flow, run, state)
    assert receiver.bodies == []
    monkeypatch.setenv(notify.ENV_WEBHOOK, receiver.url)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    notify.notify_failure(flow, run, state)
    (body,) = receiver.bodies
    assert body["event"] == "coop.run.failed" and body["flow"] == "coop-nightly" and body["state"] == "Failed"
    assert body["run_count"] == 3 and body["parameters"] == {"raw_dir": "/srv/raw"}
    assert "raw folder missing" in body["message"]
    assert body["text"].startswith("⚠ coop: lượt chạy coop-nightly") and "THẤT BẠI" in body["text"]
    assert body["ui_url"] == "http://127.0.0.1:4200/runs/flow-run/1234"
    assert "UTC+07:00" in body["at"]
    assert notify.send({"x": 1}, "http://127.0.0.1:1/nothing-listens-here") is False


def test_serve_refuses_without_a_persistent_api(tmp_path):
    """`coop serve` with no PREFECT_API_URL (or one that does not answer) exits 2 at once with
    how to start a server; no traceback, no temporary server."""
    from ops_helpers import clean_env

    coop = str(Path(sys.executable).with_name("coop"))
    env = clean_env(PREFECT_HOME=str(tmp_path / "prefect-home"))
    res = subprocess.run([coop, "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "PREFECT_API_URL chưa đặt" in out
    assert "prefect server start" in out and "PREFECT_API_URL=http://127.0.0.1:4200/api" in out
    assert "Traceback" not in out and "database is locked" not in out
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    res = subprocess.run([coop, "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "does not answer" in out and "Traceback" not in out


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = shared_prefect_server()
    env.update(PREFECT_RUNNER_POLL_FREQUENCY="2", **extra)  # pick up a triggered run within ~2 s
    return env


def _drive(tmp_path: Path, env: dict[str, str], script: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                         timeout=400, cwd=tmp_path)
    if res.returncode != 0:
        pytest.fail(f"driver failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}\n"
                    f"serve log:\n{tail(tmp_path / 'serve.log')}")
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.server
def test_nightly_queues_behind_a_backfill(tmp_path, receiver):
    """Issue 12, done when: a real Prefect server; a backfill holds the warehouse (paused at
    its `loading` stage); the nightly is triggered meanwhile, waits for the `coop-warehouse`
    slot in Prefect instead of failing on the run lock, and completes after the backfill."""
    from pipeline_fixture import write_raw

    raw = write_raw(tmp_path / "raw")
    wh = tmp_path / "wh" / "coop.duckdb"
    pause = tmp_path / "pause"
    # 30 s: the nightly's flow-run process must be up and asking for the slot before the
    # backfill goes on (measured 7-13 s from trigger to asking on a loaded machine)
    env = _serve_env(tmp_path, COOP_TEST_PAUSE_AT="loading", COOP_TEST_PAUSE_SECONDS="30",
                     COOP_TEST_PAUSE_DIR=str(pause), COOP_NOTIFY_WEBHOOK=receiver.url)
    serve_cmd = [sys.executable, "-c",
                 "import sys; from flows.deployments import serve_all; serve_all(sys.argv[1], sys.argv[2])",
                 str(raw), str(wh)]
    with process(serve_cmd, env, tmp_path / "serve.log", tmp_path) as served:
        result = _drive(tmp_path, env, BUSY_NIGHT, str(pause / "loading"), str(raw.resolve()))
        assert served.poll() is None, "coop serve must keep serving"
    bf, nt = result["backfill"], result["nightly"]
    assert bf["state"] == "COMPLETED", (result, tail(tmp_path / "serve.log"))
    assert nt["state"] == "COMPLETED", (result, tail(tmp_path / "serve.log"))
    # the nightly was running (waiting for the slot) while the backfill held it, and finished after it
    assert nt["start"] < bf["end"] < nt["end"], result
    assert nt["waited"] is not None and nt["waited"] >= 2, result
    assert not any("RunLockBusy" in line for line in result["nightly_logs"]), result
    assert result["limit"] == {"limit": 1, "active": True, "active_slots": 0}
    assert receiver.bodies == []  # nothing failed: no notification

    import duckdb

    con = duckdb.connect(str(wh), read_only=True)
    try:
        kinds = [r[0] for r in con.execute("SELECT kind FROM audit.runs WHERE status = 'published' ORDER BY started_at").fetchall()]
    finally:
        con.close()
    assert kinds and kinds[0] == "backfill"


@pytest.mark.server
def test_failed_nightly_retries_then_notifies(tmp_path, receiver):
    """A nightly that cannot run (its raw folder is missing) is retried (here once, 1 s apart),
    then ends Failed and POSTs one notification to the operator's webhook."""
    wh = tmp_path / "wh" / "coop.duckdb"
    env = _serve_env(tmp_path, COOP_NOTIFY_WEBHOOK=receiver.url, COOP_NIGHTLY_RETRIES="1",
                     COOP_NIGHTLY_RETRY_DELAY_SECONDS="1")
    serve_cmd = [sys.executable, "-c",
                 "import sys; from flows.deployments import serve_all; serve_all(sys.argv[1], sys.argv[2])",
                 str(tmp_path / "no-such-raw"), str(wh)]
    with process(serve_cmd, env, tmp_path / "serve.log", tmp_path) as served:
        result = _drive(tmp_path, env, FAILING_NIGHT, str((tmp_path / "no-such-raw").resolve()))
        deadline = time.monotonic() + 30  # the hook runs as the run ends: give it a moment
        while not receiver.bodies and time.monotonic() < deadline:
            time.sleep(0.5)
        assert served.poll() is None
    assert result["state"] == "FAILED", (result, tail(tmp_path / "serve.log"))
    assert result["run_count"] == 2, result  # one retry
    (body,) = receiver.bodies
    assert body["event"] == "coop.run.failed" and body["flow"] == "coop-nightly"
    assert body["flow_run_id"] == result["id"] and body["state"] == "Failed"
    assert "THẤT BẠI" in body["text"]
    assert not wh.exists()


_WAIT_DEPLOYMENTS = r"""
import asyncio, json, sys, time
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment


async def wait_deployments(client, raw_dir):
    # both deployments registered by *this* test's serve process (the server is shared: the
    # previous test's deployments, paused, carry another raw_dir)
    deadline = time.monotonic() + 120
    while True:
        try:
            deps = [await client.read_deployment_by_name(n) for n in ("coop-nightly/nightly", "coop-backfill/backfill")]
            if all(d.parameters.get("raw_dir") == raw_dir and not d.paused for d in deps):
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("deployments not registered in time")
        await asyncio.sleep(0.5)


async def wait_final(client, fid, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        fr = await client.read_flow_run(fid)
        if fr.state and fr.state.is_final():
            return fr
        if time.monotonic() > deadline:
            raise SystemExit(f"flow run {fid} not finished in time: {fr.state}")
        await asyncio.sleep(1)
"""

BUSY_NIGHT = _WAIT_DEPLOYMENTS + r"""

async def main():
    marker = Path(sys.argv[1])
    out = {}
    async with get_client() as client:
        await wait_deployments(client, sys.argv[2])
        bf = await run_deployment("coop-backfill/backfill", parameters={"from_year": 2020, "to_year": 2020},
                                  timeout=0)
        deadline = time.monotonic() + 180
        while not marker.exists():  # the backfill holds the slot and the lock, paused at `loading`
            if time.monotonic() > deadline:
                raise SystemExit("the backfill never reached its loading stage")
            await asyncio.sleep(0.3)
        nt = await run_deployment("coop-nightly/nightly", timeout=0)  # comes due now
        bf = await wait_final(client, bf.id)
        nt = await wait_final(client, nt.id)
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        for _ in range(40):  # a flow run's last log lines may reach the API after its final state
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[nt.id])))
            lines = [l.message for l in logs]
            if any("got the warehouse slot after" in line for line in lines):
                break
            await asyncio.sleep(0.5)
        waited = None
        for line in lines:
            if "got the warehouse slot after" in line:
                waited = float(line.split("after")[1].split()[0])
        lim = await client.read_global_concurrency_limit_by_name("coop-warehouse")
        out = {
            "backfill": {"state": bf.state.type.value, "start": bf.start_time.timestamp(), "end": bf.end_time.timestamp()},
            "nightly": {"state": nt.state.type.value, "start": nt.start_time.timestamp(), "end": nt.end_time.timestamp(),
                        "waited": waited},
            "nightly_logs": lines,
            "limit": {"limit": lim.limit, "active": lim.active, "active_slots": lim.active_slots},
        }
    print(json.dumps(out))


asyncio.run(main())
"""

FAILING_NIGHT = _WAIT_DEPLOYMENTS + r"""

async def main():
    async with get_client() as client:
        await wait_deployments(client, sys.argv[1])
        fr = await run_deployment("coop-nightly/nightly", timeout=0)
        fr = await wait_final(client, fr.id)
        print(json.dumps({"id": str(fr.id), "state": fr.state.type.value, "run_count": fr.run_count}))


asyncio.run(main())
"""
