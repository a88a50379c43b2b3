"""Run bookkeeping: the steps around reading and publishing that the flow composes.

Reading a planned batch (each file behind the reader's limits; a crash rejects that file
alone, never cached), loading cached results, the run summary's file/row figures, the
no-op run record, and what is remembered after a publish. Plain functions; no Prefect.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from coop.ingest import normalize
from coop.ingest.normalize import REJECTED_ROW_SCHEMA, FileIssue, FileResult
from coop.ingest.read import is_fatal
from coop.outputs.run_report import RunSummary, progress_tick
from coop.run.planning import Plan, PlannedFile
from coop.run.store import (
    append_pending_run,
    clear_pending_runs,
    load_result,
    note_retry,
    prune_cache,
    read_published,
    state_dir,
    store_result,
    write_published,
)

if TYPE_CHECKING:
    from coop.reference import Reference
    from coop.warehouse.load import BuildLoad, RunRecord

log = logging.getLogger(__name__)

def fill_summary_files(summary: RunSummary, plan: Plan) -> None:
    files: dict[str, list[str]] = {"new": [], "changed": [], "removed": list(plan.removed), "unchanged": []}
    for f in plan.files:
        files[f.status].append(f.source_file)
    for s, st in plan.issue_status.items():
        files[st].append(s)
    summary.files = files


def record_unchanged(plan: Plan, warehouse: Path, run: RunRecord, summary: RunSummary) -> None:
    """A no-op run: remember it in .state/pending_runs.jsonl (the next published build copies
    it into audit.runs) and fill the summary. The published warehouse is not touched."""
    pub = read_published(state_dir(warehouse))
    now = datetime.now(UTC)
    run.status, run.finished_at = "unchanged", now
    run.files_seen = len(plan.files) + len(plan.issue_files)
    run.files_loaded = pub.get("files_loaded", 0)
    run.files_rejected = pub.get("files_rejected", 0)
    run.rows_loaded = pub.get("rows_loaded", 0)
    run.rows_rejected = pub.get("rows_rejected", 0)
    run.message = f"inputs identical to the build published by run {pub.get('run_id')}: nothing rebuilt"
    append_pending_run(state_dir(warehouse), run.to_json())
    summary.status = "unchanged"
    summary.finished_at = now
    summary.rows_loaded = run.rows_loaded
    summary.rows_rejected = run.rows_rejected
    from coop.warehouse.load import published_state

    current = published_state(Path(warehouse))  # the report still shows what the warehouse holds
    summary.districts = current.get("districts", [])
    summary.quarantine = current.get("quarantine", {})
    summary.skipped = current.get("skipped", {})
    summary.file_issues = current.get("file_issues", [])


def _failed_result(f: PlannedFile, exc: BaseException) -> FileResult:
    """A FileResult for a file whose reading crashed: the file is rejected, the others go on.
    Marked transient: it is not cached, and the next run reads the file again."""
    if isinstance(exc, MemoryError):
        code, text = "resource_limit", "Không đủ bộ nhớ để xử lý tệp"
    else:
        code, text = "unreadable_file", "Không đọc được tệp"
    reason = f"{text}: {type(exc).__name__}: {exc} [{code}]"
    issue = FileIssue(source_file=f.source_file, sheet=None, reason_code=code, reason=reason, severity="rejected")
    res = FileResult(source_file=f.source_file, year=f.year, unit_code=f.unit_code, file_hash=f.file_hash,
                     modified_at=f.modified_at, forms={}, rejected_rows=pl.DataFrame(schema=REJECTED_ROW_SCHEMA),
                     file_issues=[issue], sheets=[])
    res.transient = True
    return res


def read_files(batch: Sequence[PlannedFile], reference: Reference | None, state: Path) -> list[FileResult]:
    """Read (ingest) each file and store its result in the cache. A file whose reading
    raises (any exception but Ctrl-C/exit/cancellation: a reader panic is a BaseException)
    is rejected (`unreadable_file`); such a result, and any result marked transient, is not
    cached and the file is listed in retry.json, so the next run reads it again."""
    out: list[FileResult] = []
    noted: list[tuple[str, str, bool]] = []
    for f in batch:
        try:
            r = normalize.ingest_file(f.raw, reference)
        except BaseException as e:  # noqa: BLE001 — one bad file never stops the others
            if is_fatal(e):
                raise
            log.warning("Reading %s failed: %s: %s", f.source_file, type(e).__name__, e)
            r = _failed_result(f, e)
        transient = bool(getattr(r, "transient", False))
        if not transient:
            try:
                store_result(state, f.cache_key, r, replace=True)
            except Exception as e:  # noqa: BLE001 — the cache is only a cache: read again next run
                log.warning("Could not cache the result of %s: %s", f.source_file, e)
                transient = True
        noted.append((f.source_file, f.file_hash, transient))
        out.append(r)
        progress_tick(f.source_file)  # the flow's "Reading files" display, when there is one
    try:
        note_retry(state, noted)
    except OSError as e:
        log.warning("Could not update %s: %s", Path(state) / "retry.json", e)
    return out


def cached_files(batch: Sequence[PlannedFile], state: Path,
                 reference: Reference | None = None) -> list[FileResult]:
    """The cached results of unchanged files (a missing/damaged entry is read again)."""
    out: list[FileResult] = []
    missing: list[PlannedFile] = []
    for f in batch:
        r = load_result(state, f.cache_key, modified_at=f.modified_at)
        if r is None:
            missing.append(f)
        else:
            out.append(r)
    if missing:
        out += read_files(missing, reference, state)
    return out


def superseded_issues(results: Sequence[FileResult], selected: Sequence[FileResult]) -> list[dict[str, Any]]:
    """An issue for every file `select_submissions` dropped whole, unless it already says so."""
    kept = {r.source_file for r in selected}
    noted = {(i.source_file, i.reason_code) for r in selected for i in (r.file_issues or [])}
    out: list[dict[str, Any]] = []
    for r in results:
        if r.source_file in kept or (r.source_file, "superseded") in noted:
            continue
        out.append({"source_file": r.source_file, "sheet": None, "reason_code": "superseded", "severity": "superseded",
                    "reason": "Tệp đã được thay thế bởi bản nộp lại mới hơn trong cùng thư mục [superseded]"})
    return out


def fill_summary_load(summary: RunSummary, built: BuildLoad, reference: Reference) -> None:
    names = {u.code: u.name for u in reference.units}
    per: dict[tuple[int | None, str | None], dict[str, Any]] = {}
    for fl in built.stats.files.values():
        key = (fl.year, fl.unit_code)
        d = per.setdefault(key, {"year": fl.year, "unit_code": fl.unit_code,
                                 "unit_name": names.get(fl.unit_code) if fl.unit_code else "Tỉnh (province)",
                                 "rows_loaded": 0, "rows_rejected": 0})
        d["rows_loaded"] += fl.rows_loaded
        d["rows_rejected"] += fl.rows_rejected
    summary.districts = sorted(per.values(),
                               key=lambda d: (d["year"] or 0, d["unit_code"] is None, d["unit_code"] or ""))
    summary.quarantine = dict(built.quarantine)
    summary.skipped = dict(getattr(built, "rows_skipped", None) or {})
    summary.file_issues = list(built.issues)
    summary.rows_loaded = built.rows_loaded
    summary.rows_rejected = built.rows_rejected


def after_publish(plan: Plan, warehouse: Path, run: RunRecord, built: BuildLoad) -> None:
    """Remember what was published (for the no-op check), drop the pending runs it recorded,
    prune cache entries no current file uses (full runs only)."""
    from coop.warehouse.publish import file_identity

    st = state_dir(warehouse)
    write_published(st, {
        "fingerprint": plan.fingerprint, "run_id": run.run_id, "identity": file_identity(Path(warehouse)),
        "published_at": datetime.now(UTC).isoformat(), "files_loaded": built.files_loaded,
        "files_rejected": built.files_rejected, "rows_loaded": built.rows_loaded,
        "rows_rejected": built.rows_rejected,
    })
    clear_pending_runs(st, built.pending_recorded)
    if plan.years is None:
        prune_cache(st, {f.cache_key for f in plan.files})
