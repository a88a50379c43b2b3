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
from pathlib import Path

import pytest
from ops_helpers import process, shared_prefect_server, tail

pytest.importorskip("flows.nightly")

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
    assert set(required) == {"from_year", "to_year"}
    assert props["from_year"]["type"] == "integer"
    # both run the flows by module path (the serve process imports them wherever it runs)
    assert nightly.entrypoint == "flows.nightly.nightly_run"
    assert backfill.entrypoint == "flows.backfill.backfill_run"


@pytest.mark.server
def test_run_through_a_real_server(tmp_path):
    for needed in ("coop.discover", "coop.ingest", "coop.runner"):  # the pipeline, end to end
        pytest.importorskip(needed)
    if not SAMPLE_RAW.is_dir() or not any(SAMPLE_RAW.iterdir()):
        pytest.skip("no sample data in data/raw")
    raw = tmp_path / "raw"
    shutil.copytree(SAMPLE_RAW, raw)
    wh = tmp_path / "wh" / "coop.duckdb"
    client_env = shared_prefect_server()
    # (the server is shared with tests/test_crash.py and stopped at the end of the session)
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
