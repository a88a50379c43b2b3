"""The backfill flow: reprocess report years whether or not their files changed.

A thin Prefect flow around the nightly flow (which does the work, under the one-run lock),
so that an operator can start a backfill from the Prefect UI with `from_year` / `to_year`.
It holds the Prefect warehouse slot (`flows.slot`, concurrency limit `coop-warehouse`) for its
whole body, so a nightly run that comes due meanwhile waits behind it; a Failed or Crashed
backfill POSTs to `COOP_NOTIFY_WEBHOOK` when set (`flows.notify`). No retries: a backfill is
started by someone who watches it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from coop.outputs.run_report import RunSummary
from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE
from flows.notify import notify_failure
from flows.slot import warehouse_slot


@flow(name="coop-backfill", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def backfill_run(
    from_year: int | None = None,
    to_year: int | None = None,
    raw_dir: str | None = None,
    warehouse: str | None = None,
    all_years: bool = False,
    allow_shrink: bool = False,
) -> RunSummary:
    """Reprocess report years `from_year`..`to_year` (after a rule or vocabulary change),
    then rebuild, test and publish like the nightly run. `all_years=True` rebuilds from
    nothing: every year re-read, the published file ignored (`coop backfill --all`, e.g.
    when the published warehouse is damaged). `allow_shrink` lets the publish guards'
    shrink checks through."""
    if not all_years:
        if from_year is None or to_year is None:
            raise ValueError("give from_year and to_year, or all_years=true")
        if from_year > to_year:
            raise ValueError(f"from_year {from_year} is after to_year {to_year}")
    from flows.nightly import nightly_run

    with warehouse_slot("backfill"):
        return nightly_run(
            raw_dir=Path(raw_dir) if raw_dir else DEFAULT_RAW_DIR,
            warehouse=Path(warehouse) if warehouse else DEFAULT_WAREHOUSE,
            backfill_years=None if all_years else (int(from_year or 0), int(to_year or 0)),
            allow_shrink=allow_shrink,
            fresh=all_years,
            wait=True,  # a `coop run` started in a shell (outside Prefect) is waited for too
        )
