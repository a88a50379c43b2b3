"""The schedule: Prefect deployments declared in code and served by `coop serve`.

- `coop-nightly/nightly`: the nightly run, cron `0 1 * * *` in Asia/Ho_Chi_Minh.
- `coop-backfill/backfill`: no schedule; started by hand (Prefect UI or API) with
  `from_year` and `to_year`.

`serve_all()` registers both with the Prefect API (`PREFECT_API_URL`) and runs flow runs
as they come due, until interrupted. Works offline against a local `prefect server start`.
"""

from __future__ import annotations

from pathlib import Path

from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE

NIGHTLY_CRON = "0 1 * * *"
TIMEZONE = "Asia/Ho_Chi_Minh"
NIGHTLY_DEPLOYMENT = "nightly"
BACKFILL_DEPLOYMENT = "backfill"


def build_deployments(raw_dir: Path | None = None, warehouse: Path | None = None) -> list:
    """The project's deployments (Prefect `RunnerDeployment`s), not yet registered."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.backfill import backfill_run
    from flows.nightly import nightly_run

    params = {
        "raw_dir": str(Path(raw_dir or DEFAULT_RAW_DIR).resolve()),
        "warehouse": str(Path(warehouse or DEFAULT_WAREHOUSE).resolve()),
    }
    nightly = nightly_run.to_deployment(
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
    """Register the deployments and serve them until interrupted (`coop serve`)."""
    from prefect import serve

    serve(*build_deployments(raw_dir, warehouse))
