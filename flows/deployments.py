"""The schedule: Prefect deployments declared in code and served by `coop serve`.

- `coop-nightly/nightly`: the nightly run, cron `0 1 * * *` in Asia/Ho_Chi_Minh; flow
  `scheduled_nightly` below (the nightly flow's work, under the warehouse slot, with retries).
- `coop-backfill/backfill`: no schedule; started by hand (Prefect UI or API) with
  `from_year` and `to_year`.

A busy night (issue 12):
- both hold the one Prefect global concurrency limit `coop-warehouse` (1 slot; `flows.slot`)
  for their whole body: a nightly run that comes due during a backfill waits for it in
  Prefect and runs after it, instead of failing on the run lock;
- the nightly is retried `COOP_NIGHTLY_RETRIES` times (default 2), `COOP_NIGHTLY_RETRY_DELAY_SECONDS`
  apart (default 600); when the last attempt fails the flow run is Failed;
- a Failed or Crashed run POSTs JSON to `COOP_NOTIFY_WEBHOOK` when set (`flows.notify`).

`serve_all()` refuses to serve without a persistent Prefect API (`PREFECT_API_URL` set and
answering): deployments served by a temporary API would vanish with it. Then it creates the
concurrency limit, registers both deployments and runs flow runs as they come due, until
interrupted. Works offline against a local `prefect server start`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow

from coop.outputs.run_report import RunSummary
from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE
from flows.nightly import nightly_run
from flows.notify import notify_failure
from flows.slot import LOCAL_API, WAREHOUSE_LIMIT, ServeRefused, ensure_limit, require_persistent_api, warehouse_slot  # noqa: F401

NIGHTLY_CRON = "0 1 * * *"
TIMEZONE = "Asia/Ho_Chi_Minh"
NIGHTLY_DEPLOYMENT = "nightly"
BACKFILL_DEPLOYMENT = "backfill"
ENV_RETRIES = "COOP_NIGHTLY_RETRIES"
ENV_RETRY_DELAY = "COOP_NIGHTLY_RETRY_DELAY_SECONDS"
DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY_SECONDS = 600


def _int_env(name: str, default: int) -> int:
    raw = (os.environ.get(name) or "").strip()
    return int(raw) if raw else default


@flow(
    name="coop-nightly",  # the deployment stays `coop-nightly/nightly`
    description="Nightly run under the warehouse slot, with retries and a failure notification.",
    task_runner=nightly_run.task_runner.duplicate(),  # the nightly's tasks are submitted to it
    retries=_int_env(ENV_RETRIES, DEFAULT_RETRIES),
    retry_delay_seconds=_int_env(ENV_RETRY_DELAY, DEFAULT_RETRY_DELAY_SECONDS),
    on_failure=[notify_failure],
    on_crashed=[notify_failure],
    log_prints=True,
)
def scheduled_nightly(raw_dir: str | None = None, warehouse: str | None = None,
                      allow_shrink: bool = False) -> RunSummary:
    """The nightly run (`flows.nightly.nightly_run`'s work, in this flow run) under the
    warehouse slot. Waits for a `coop run` started in a shell too (the file lock)."""
    with warehouse_slot("nightly"):
        return nightly_run.fn(raw_dir=Path(raw_dir) if raw_dir else DEFAULT_RAW_DIR,
                              warehouse=Path(warehouse) if warehouse else DEFAULT_WAREHOUSE,
                              allow_shrink=allow_shrink, wait=True)


def build_deployments(raw_dir: Path | None = None, warehouse: Path | None = None) -> list[Any]:
    """The project's deployments (Prefect `RunnerDeployment`s), not yet registered."""
    from prefect.deployments.runner import EntrypointType  # type: ignore[attr-defined]  # re-exported by Prefect, not declared
    from prefect.schedules import Cron

    from flows.backfill import backfill_run

    params = {
        "raw_dir": str(Path(raw_dir or DEFAULT_RAW_DIR).resolve()),
        "warehouse": str(Path(warehouse or DEFAULT_WAREHOUSE).resolve()),
    }
    nightly = scheduled_nightly.to_deployment(
        name=NIGHTLY_DEPLOYMENT,
        schedule=Cron(NIGHTLY_CRON, timezone=TIMEZONE),
        parameters=params,
        description="Nightly run: pick up new and changed district files, rebuild, test, publish.",
        tags=["coop", "nightly"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    backfill = backfill_run.to_deployment(
        name=BACKFILL_DEPLOYMENT,
        parameters=params,  # from_year / to_year are required: given when the run is started
        description="Backfill: reprocess report years from_year..to_year whether or not their files changed.",
        tags=["coop", "backfill"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return [nightly, backfill]


def serve_all(raw_dir: Path | None = None, warehouse: Path | None = None) -> None:
    """Check the persistent API (ServeRefused), create the `coop-warehouse` concurrency
    limit, register the deployments and serve them until interrupted (`coop serve`)."""
    from prefect import serve

    require_persistent_api()
    ensure_limit(WAREHOUSE_LIMIT, 1)
    serve(*build_deployments(raw_dir, warehouse))
