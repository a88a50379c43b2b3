"""The nightly flow: discover -> hash/plan -> read (batches) -> select -> load -> models ->
data tests -> publish -> report.

Only composition lives here; every step is a plain function in `coop.*`. Hooks for the ops
side (see docs/architecture.md, "The nightly flow"):

- the whole run holds `coop.run.lock.run_lock(warehouse)` and starts with `cleanup_stale`;
- `coop.run.lock.stage_checkpoint(stage)` is called at the start of each stage
  (`discover`, `hashing`, `reading`, `loading`, `models`, `tests`, `publish`, `report`): it prints
  the stage's console line on stderr (docs/operations.md, "What the console shows");
- the run report (`coop.outputs.run_report.write_run_report` + Prefect artifacts) is written in
  `report_task`, for published, unchanged and failed runs alike;
- `coop.warehouse.guards`: the raw folder and the published file are checked first
  (`start_failures`), the finished build is compared with the published warehouse just
  before the rename (`guard_publish`: files, units, register rows that vanish), and the
  published file is kept in `versions/` after the rename (`keep_version`).

`nightly_run` returns a `coop.outputs.run_report.RunSummary` (status `published` or `unchanged`); when
nothing could be published it raises `RunFailed` (carrying the summary) so the Prefect flow
run is marked Failed.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote as _quote

from coop.context import RunContext, run_context
from coop.ingest.discover import FileIssue, RawFile, discover
from coop.ingest.normalize import FileResult
from coop.outputs.run_report import RunSummary, progress
from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE
from coop.reference import Reference
from coop.run import planning, steps, store
from coop.run.lock import cleanup_stale, run_lock, stage_checkpoint
from coop.warehouse import guards, load, publish
from coop.warehouse.datatests import DataTestResult
from flows.task_runners import ReadingTaskRunner

#: Reading tasks run at once: one per core (`COOP_READ_WORKERS` overrides), never a thread per batch.
READ_WORKERS = max(1, int(os.environ.get("COOP_READ_WORKERS") or 0) or os.cpu_count() or 1)
#: Batches per worker: enough for the workers to share uneven years, few enough that each
#: task's orchestration (a task run and its states on the API) stays a few percent of the run.
BATCHES_PER_WORKER = 2
#: Smallest batch (files): below it a task's orchestration is no longer small against its work.
BATCH_SIZE = 50


class RunFailed(RuntimeError):
    """The run could not publish; the previous warehouse is unchanged. Carries the summary."""

    def __init__(self, summary: RunSummary):
        self.summary = summary
        super().__init__(summary.error or "run failed")


def _log() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except Exception:  # outside a run context (plain call in a test)  # noqa: BLE001 — a side job never fails the run
        return logging.getLogger("coop.flow")


_T = TypeVar("_T")


def as_is(value: _T) -> _T:
    """`prefect.utilities.annotations.quote(value)`, typed as the value the task receives."""
    return cast(_T, _quote(value))


# --------------------------------------------------------------------------- tasks
# Big inputs (the run context with the reference of every unit, the plan, the results) are passed
# `as_is(...)`: Prefect then hands them over as they are instead of walking every object in them
# looking for futures (measured: ~180,000 visits and most of Prefect's CPU in a cold run).
@task(name="discover", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def discover_task(ctx: RunContext) -> tuple[list[RawFile], list[FileIssue]]:
    raw_files, issues = discover(ctx.raw_dir, ctx.reference, ctx.years)
    return list(raw_files), list(issues)


@task(name="plan", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def plan_task(ctx: RunContext, raw_files: list[RawFile], issues: list[FileIssue], previous: Path) -> planning.Plan:
    return planning.plan_from_discovery(raw_files, issues, ctx.raw_dir, previous, ctx.years, ctx.backfill_years,
                                        ctx.sql_dir, ctx.tests_dir)


@task(name="read-batch", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_batch_task(batch: list[planning.PlannedFile], ctx: RunContext) -> list[FileResult]:
    return steps.read_files(batch, ctx.reference, ctx.state)


@task(name="cached-batch", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def cached_batch_task(batch: list[planning.PlannedFile], ctx: RunContext) -> list[FileResult]:
    return steps.cached_files(batch, ctx.state, ctx.reference)


@task(name="load", cache_policy=NO_CACHE)
def load_task(build: Path, warehouse: Path, reference: Reference, plan: planning.Plan, results: list[FileResult],
              extra_issues: list[Any], run: load.RunRecord, previous: dict[str, Any],
              pending: list[dict[str, Any]]) -> load.BuildLoad:
    return load.load_build(build, warehouse, reference, plan, results, extra_issues, run, previous, pending)


@task(name="load-incremental", cache_policy=NO_CACHE)
def load_incremental_task(build: Path, warehouse: Path, reference: Reference, plan: planning.Plan,
                          picked: steps.IncrementalLoad, extra_issues: list[Any], run: load.RunRecord,
                          previous: dict[str, Any], base_run_id: str, pending: list[dict[str, Any]]) -> load.BuildLoad:
    return load.load_incremental(build, warehouse, reference, plan, picked.results, extra_issues, run, previous,
                                 base_run_id, picked.kept, pending)


@task(name="models", cache_policy=NO_CACHE)
def models_task(build: Path, sql_dir: Path, state: Path | None = None) -> list[str]:
    from coop.warehouse.models import deps_caches, run_models

    con = load.open_build(build)
    try:  # no sqlglot import or parse while the SQL files are the same (a new warehouse's too)
        return run_models(con, sql_dir, deps_cache=deps_caches(state))
    finally:
        con.close()


@task(name="data-tests", cache_policy=NO_CACHE)
def tests_task(build: Path, tests_dir: Path) -> list[DataTestResult]:
    from coop.warehouse.datatests import run_data_tests

    con = load.open_build(build)
    try:
        return run_data_tests(con, tests_dir)
    finally:
        con.close()


@task(name="publish", cache_policy=NO_CACHE)  # no retries: a failed rename leaves the old file; run again
def publish_task(build: Path, warehouse: Path, run: load.RunRecord) -> Path:
    load.finish_run(build, run)
    return publish.publish(build, warehouse)


@task(name="report", cache_policy=NO_CACHE)
def report_task(summary: RunSummary, warehouse: Path) -> Path | None:
    from coop.outputs.run_report import render_run_report, summary_table, write_run_report

    stage_checkpoint("report")
    path = write_run_report(summary, warehouse)
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        key = "coop-run-report"
        from coop.outputs.run_report import data_tests_phrase

        what = f"coop run {summary.run_id}: {summary.status}"  # the console's and the report's words
        if summary.tests:
            what += f"; {data_tests_phrase(summary.tests)}"
        create_markdown_artifact(markdown=render_run_report(summary), key=key, description=what)
        rows = summary_table(summary)
        if rows:
            create_table_artifact(table=rows, key="coop-rows-per-district", description="Rows per district")
    except Exception as e:  # an artifact is a nicety: never fail a run for it  # noqa: BLE001 — a side job never fails the run
        _log().warning("Could not create the Prefect artifact: %s", e)
    return path


def batch_size(n_files: int, workers: int = READ_WORKERS) -> int:
    """Files per task: n / (workers × BATCHES_PER_WORKER), at least BATCH_SIZE — a handful of
    coarse tasks per run whatever the scale (12,000 files on 2 cores: 3,000 per task)."""
    return max(BATCH_SIZE, math.ceil(n_files / max(1, workers * BATCHES_PER_WORKER)))


def _batches(files: list[planning.PlannedFile], workers: int = READ_WORKERS) -> list[list[planning.PlannedFile]]:
    """Group by report year, then chunks of `batch_size` files: a batch holds one year's files."""
    size = batch_size(len(files), workers)
    by_year: dict[Any, list[planning.PlannedFile]] = defaultdict(list)
    for f in files:
        by_year[f.year].append(f)
    out = []
    for _, group in sorted(by_year.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        for i in range(0, len(group), size):
            out.append(group[i:i + size])
    return out


# --------------------------------------------------------------------------- the flow
# the reading tasks run on threads here, or on Dask per the `dask_address` setting (flows/task_runners.py)
@flow(name="coop-nightly", task_runner=ReadingTaskRunner(threads=READ_WORKERS))  # type: ignore[arg-type]
def nightly_run(
    raw_dir: Path = DEFAULT_RAW_DIR,
    warehouse: Path = DEFAULT_WAREHOUSE,
    years: tuple[int, int] | None = None,
    backfill_years: tuple[int, int] | None = None,
    sql_dir: Path | None = None,
    tests_dir: Path | None = None,
    wait: bool = False,
    allow_shrink: bool = False,
    fresh: bool = False,
) -> RunSummary:
    """One run: pick up new and changed files, rebuild, test and publish atomically.

    `years` limits the run to those report years (the other years stay as published);
    `backfill_years` re-reads the files of those years whatever the cache says.
    `allow_shrink` lets the publish guards' shrink checks through (`coop run --allow-shrink`);
    `fresh` rebuilds from nothing, every year re-read, the published file ignored
    (`coop backfill --all`, e.g. when the published file is damaged)."""
    ctx = run_context(raw_dir, warehouse, years=years, backfill_years=backfill_years, allow_shrink=allow_shrink,
                      fresh=fresh, wait=wait, sql_dir=sql_dir, tests_dir=tests_dir)
    raw_dir, warehouse, run_id, started = ctx.raw_dir, ctx.warehouse, ctx.run_id, ctx.started_at
    years, backfill_years, kind = ctx.years, ctx.backfill_years, ctx.kind
    summary = RunSummary(run_id=run_id, kind=kind, status="failed", started_at=started,
                         raw_dir=str(raw_dir), warehouse=str(warehouse),
                         years=None if fresh else (backfill_years or years))
    previous = guards.previous_for(warehouse, run_id, fresh)  # what the build starts from
    log = _log()
    state = ctx.state
    build = ctx.build
    timings: dict[str, float] = {}
    summary.timings = timings
    t = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.monotonic()
        timings[stage] = round(now - t, 3)
        t = now

    with run_lock(warehouse, wait=wait):
        cleanup_stale(warehouse)
        run = load.RunRecord(run_id=run_id, started_at=started, kind=kind, status="failed",
                             years=load.years_text(years),
                             backfill_years="all" if fresh else load.years_text(backfill_years))
        try:
            guard_settings = guards.GuardSettings.load(allow_shrink=allow_shrink)
            refused = guards.blocking(guards.start_failures(raw_dir, warehouse, fresh), guard_settings)
            if refused:
                raise guards.PublishRefused(refused)
            reference = ctx.reference
            stage_checkpoint("discover")
            raw_files, issues = discover_task(as_is(ctx))
            lap("discover")
            stage_checkpoint("hashing", files=len(raw_files))
            plan = plan_task(as_is(ctx), as_is(raw_files), as_is(issues), previous)
            steps.fill_summary_files(summary, plan)
            lap("plan")
            if planning.is_unchanged(plan, warehouse):
                log.info("Nothing changed since the published build: nothing to rebuild.")
                steps.record_unchanged(plan, warehouse, run, summary)
                try:
                    report_task(as_is(summary), warehouse)
                except Exception as e:  # noqa: BLE001 — a side job never fails the run
                    log.warning("Could not write the run report: %s", e)
                return summary

            stage_checkpoint("reading", files=len(plan.to_read))
            ledger = plan.ledger  # audit.files of `previous`, read once by the plan (under the run lock)
            # a copy of the published build with only the affected files redone, when nothing is in doubt
            inc, why_full = planning.incremental_basis(plan, warehouse, ledger, issues, fresh)
            cached = plan.from_cache if inc is None else [f for f in inc.affected if not f.read]
            with progress(len(plan.to_read)):  # 'Đang đọc tệp 120/320 (reading files)', ticked from the tasks
                futures = [read_batch_task.submit(as_is(b), as_is(ctx)) for b in _batches(plan.to_read)]
                futures += [cached_batch_task.submit(as_is(b), as_is(ctx)) for b in _batches(cached)]
                results = [r for f in futures for r in f.result()]
            # one load order whatever was cached, batched or parallel: identical inputs to the load
            results = steps.load_order(results)
            log.info("Read %d file(s), %d from the cache.", len(plan.to_read), len(cached))
            steps.release_readers()
            lap("reading")

            stage_checkpoint("loading")
            from coop.ingest.normalize import select_submissions
            from coop.warehouse.datatests import blocking_failures

            if inc is None:
                log.info("Full build: %s.", why_full)
                selected = select_submissions(results)
                extra_issues = list(issues) + steps.superseded_issues(results, selected)
                built = load_task(build, previous, as_is(reference), as_is(plan), as_is(selected),
                                  as_is(extra_issues), run, as_is(ledger), as_is(store.read_pending_runs(state)))
                steps.release_frames(results, selected)  # in the build now: not held through the models
            else:
                picked = steps.resolve_incremental(inc, results, state, reference)
                log.info("Incremental build: %d file(s) replaced, %d kept as published.",
                         len(picked.replaced) + len(inc.gone), len(picked.kept))
                built = load_incremental_task(build, previous, as_is(reference), as_is(plan), as_is(picked),
                                              as_is(list(issues) + picked.extra_issues), run, as_is(ledger),
                                              inc.base_run_id, as_is(store.read_pending_runs(state)))
                steps.release_frames(results)
            steps.fill_summary_load(summary, built, reference)
            run.files_seen, run.files_loaded = built.files_seen, built.files_loaded
            run.files_rejected, run.rows_loaded = built.files_rejected, built.rows_loaded
            run.rows_rejected = built.rows_rejected
            lap("loading")

            stage_checkpoint("models")
            models_task(build, ctx.sql_dir, state)
            lap("models")

            stage_checkpoint("tests")
            results_tests = tests_task(build, ctx.tests_dir)
            summary.tests = [{"name": r.name, "severity": r.severity, "passed": r.passed,
                              "failing_rows": r.failing_rows, "message": r.message()} for r in results_tests]
            blocking = blocking_failures(results_tests)
            lap("tests")
            if blocking:
                from coop.outputs.run_report import data_tests_phrase

                raise load.BuildRejected(
                    f"{data_tests_phrase(results_tests)}: {len(blocking)} failed at error level, nothing published:\n"
                    + "\n".join(r.message() for r in blocking))

            run.message = guards.guard_publish(build, warehouse, guard_settings)  # raises PublishRefused
            stage_checkpoint("publish")
            run.status = "published"
            run.finished_at = datetime.now(UTC)
            publish_task(build, warehouse, run)
            summary.status = "published"  # from here on the run has succeeded, whatever follows
            summary.finished_at = run.finished_at
        except BaseException as exc:
            publish.discard(build)
            summary.status = "failed"
            summary.error = load.describe_error(exc)
            summary.finished_at = datetime.now(UTC)
            run.status, run.finished_at, run.message = "failed", summary.finished_at, summary.error[:2000]
            try:
                store.append_pending_run(state, run.to_json())
                report_task(as_is(summary), warehouse)
            except Exception as e2:  # never hide the first error  # noqa: BLE001 — a side job never fails the run
                log.warning("Could not record the failed run: %s", e2)
            if isinstance(exc, Exception):
                raise RunFailed(summary) from exc
            raise
        try:
            steps.after_publish(plan, warehouse, run, built)
        except Exception as e:  # only the incremental state: the next run rebuilds instead of skipping  # noqa: BLE001 — a side job never fails the run
            log.warning("Published, but could not update the incremental state: %s", e)
        try:
            guards.keep_version(warehouse, run_id, guard_settings.keep_versions)
        except Exception as e:  # the publish stands; only the copy to roll back to is missing  # noqa: BLE001 — a side job never fails the run
            log.warning("Published, but could not keep a version to roll back to: %s", e)
        lap("publish")
        try:
            report_task(as_is(summary), warehouse)
        except Exception as e:  # noqa: BLE001 — a side job never fails the run
            log.warning("Published, but could not write the run report: %s", e)
        return summary
