"""Run bookkeeping: the steps around reading and publishing that the flow composes.

Reading a planned batch (each file behind the reader's limits; a crash rejects that file
alone, never cached), loading cached results, the run summary's file/row figures, the
no-op run record, and what is remembered after a publish. Plain functions; no Prefect.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from coop.ingest import normalize
from coop.ingest.normalize import REJECTED_ROW_SCHEMA, FileIssue, FileResult
from coop.ingest.read import is_fatal
from coop.outputs.run_report import RunSummary, progress_tick
from coop.run import quick
from coop.run.planning import Incremental, Plan, PlannedFile
from coop.run.store import (
    clear_pending_runs,
    load_meta,
    load_result,
    note_retry,
    prune_cache,
    state_dir,
    store_result,
    write_published,
)

if TYPE_CHECKING:
    from threading import Event

    from coop.reference import Reference
    from coop.warehouse.load import BuildLoad, RunRecord

log = logging.getLogger(__name__)

def summary_files(plan: Plan) -> dict[str, list[str]]:
    """Source files by change kind (new, changed, removed, unchanged): `RunSummary.files`."""
    files: dict[str, list[str]] = {"new": [], "changed": [], "removed": list(plan.removed), "unchanged": []}
    for f in plan.files:
        files[f.status].append(f.source_file)
    for s, st in plan.issue_status.items():
        files[st].append(s)
    return files


def fill_summary_files(summary: RunSummary, plan: Plan) -> None:
    summary.files = summary_files(plan)


def noop_outcome(plan: Plan, warehouse: Path) -> quick.Outcome:
    """What a run whose plan is unchanged reports (coop.run.quick.Outcome; no console tables)."""
    from coop.warehouse.load import published_state

    return quick.Outcome(files=summary_files(plan), files_seen=len(plan.files) + len(plan.issue_files),
                         current=published_state(Path(warehouse)), tables={})


def record_unchanged(plan: Plan, warehouse: Path, run: RunRecord, summary: RunSummary) -> None:
    """A no-op run of the flow: remembered in .state/pending_runs.jsonl and the summary filled
    (coop.run.quick.fill_noop). The published warehouse is not touched."""
    quick.fill_noop(noop_outcome(plan, warehouse), warehouse, run, summary)


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


def warm_up(files: Sequence[PlannedFile], reference: Reference | None, state: Path, stop: Event) -> int:
    """Read files into the cache one at a time (`read_files`) until `stop` is set; returns how
    many were read. The runner calls it while the temporary Prefect API starts (docs/performance.md,
    "Reading while the orchestrator starts"): the flow's plan then finds those files cached, with
    the very result reading them would give."""
    n = 0
    for f in files:
        if stop.is_set():
            break
        read_files([f], reference, state)
        n += 1
    return n


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


def load_order(results: Sequence[FileResult]) -> list[FileResult]:
    """The one order results are selected and loaded in: (year, source file), whatever was read,
    cached, batched or run in parallel (the flow sorts its results the same way)."""
    return sorted(results, key=lambda r: (r.year is None, r.year or 0, r.source_file))


@dataclass
class IncrementalLoad:
    """What an incremental build changes: the selected results to load (with only their own
    files' issues), the issues to record beside them, the files whose rows are replaced."""

    results: list[FileResult]
    extra_issues: list[dict[str, Any]]
    replaced: set[str]              # files whose rows, quarantine, sheets and issues are rebuilt
    kept: set[str]                  # files carried as published
    from_cache: list[str] = field(default_factory=list)  # others loaded whole: their selection changed


def release_readers() -> None:
    """Reading is over: stop the idle reader workers now rather than at their idle timeout, so
    their memory is not held through loading and the models (≈ 0.1–0.15 GiB each; docs/performance.md
    "National scale"). A later read in this process starts new ones."""
    from coop.ingest.isolation import shutdown_workers

    shutdown_workers()


def release_frames(*groups: Sequence[FileResult]) -> None:
    """The rows of these results are in the build: drop their frames (forms, quarantined rows) and
    keep the rest (issues, sheets). Prefect keeps every task's result in its flow run context
    until the flow ends, so the rows of a national run (≈ 0.6 GiB) would otherwise stay in memory
    through the models; the objects themselves are emptied, not just forgotten."""
    for group in groups:
        for r in group:
            r.forms = {}
            r.rejected_rows = r.rejected_rows.clear()


def _issue_rows(source: str, selected: Sequence[FileResult], extras: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """audit.file_issues rows (sheet, reason, reason_code, severity, year, unit_code) a build
    records for `source`, given the selected results and the selection's extra issues."""
    where = {r.source_file: (r.year, r.unit_code) for r in selected}
    y, u = where.get(source, (None, None))
    rows: list[tuple[Any, ...]] = [(i.sheet, i.reason, i.reason_code, i.severity, y, u)
                                   for r in selected for i in (r.file_issues or []) if i.source_file == source]
    rows += [(d.get("sheet"), d.get("reason"), d.get("reason_code"), d.get("severity"), y, u)
             for d in extras if d.get("source_file") == source]
    return sorted(rows, key=repr)


def resolve_incremental(inc: Incremental, results: Sequence[FileResult], state: Path,
                        reference: Reference | None = None) -> IncrementalLoad:
    """Choose among resubmissions again in the (year, unit) folders this run touches.

    `results` are the affected files' whole results (read now, or from the cache). The other
    files of those folders are looked at through their cached metadata only (`load_meta`: sheets
    and issues, no rows); one whose outcome (forms kept or superseded, and so its recorded
    issues) differs from the published build's is loaded whole from the cache and replaced
    too; the rest are carried as published, never loaded."""
    from coop.ingest.normalize import select_submissions

    full: dict[str, FileResult] = {r.source_file: r for r in results}
    light: dict[str, FileResult] = {}
    missing: list[PlannedFile] = []
    for f in inc.others:
        m = load_meta(state, f.cache_key, modified_at=f.modified_at)
        if m is None:
            missing.append(f)
        else:
            light[f.source_file] = m
    for r in cached_files(missing, state, reference) if missing else []:  # no usable entry: read again
        full[r.source_file] = r
    group = load_order([*full.values(), *light.values()])
    selected = select_submissions(group)
    extras = superseded_issues(group, selected)
    changed = [s for s in light if _issue_rows(s, selected, extras) != inc.previous_issues.get(s, [])]
    if changed:
        by_name = {f.source_file: f for f in inc.others}
        for r in cached_files([by_name[s] for s in changed], state, reference):
            full[r.source_file] = r
            light.pop(r.source_file, None)
        group = load_order([*full.values(), *light.values()])
        selected = select_submissions(group)
        extras = superseded_issues(group, selected)
    replaced = set(full)
    out: list[FileResult] = []
    carried: list[dict[str, Any]] = []
    for r in selected:
        own = [i for i in (r.file_issues or []) if i.source_file in replaced]
        if r.source_file in replaced:
            out.append(replace(r, file_issues=own) if len(own) != len(r.file_issues or []) else r)
        else:  # a file kept as published carrying issues of a replaced file dropped whole
            carried += [dataclasses.asdict(i) for i in own]
    carried += [d for d in extras if d.get("source_file") in replaced]
    kept = set(inc.kept) | set(light)
    return IncrementalLoad(out, carried, replaced, kept, sorted(changed))


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
        "rows_rejected": built.rows_rejected, "parts": plan.parts,
    })
    clear_pending_runs(st, built.pending_recorded)
    if plan.years is None:
        prune_cache(st, {f.cache_key for f in plan.files})
