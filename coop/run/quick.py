"""`coop run` when nothing changed, known in a tenth of a second: before typer, polars, DuckDB
or Prefect are imported (standard library only; tests/test_quick_unchanged.py checks it).

The full check (`coop.run.runner._fast_unchanged`) discovers and hashes every raw file,
computes the build fingerprint and compares it with the published build's. When that check
finds nothing changed, it also writes `.state/unchanged.json`: what a no-op run reports (its
files, the published build's counts and tables) together with a *snapshot* taken before it
planned: the stat (size, mtime, ctime, inode) of every entry of the raw folder, of every file
of coop's code, SQL, schemas and reference data, of the settings file and of the published
warehouse, and the `COOP_*` environment. The next `coop run` compares a new snapshot with the
recorded one: when they are equal, the inputs are those the full check found unchanged, so the
run is recorded as a no-op from the record (same pending run, run report and console summary
as the full check's) without reading or hashing a file. Any difference, however harmless
(a file touched, a folder added, a setting), and the full check runs instead and writes a new
record. After a publish the first no-op run is therefore a full check, and the nights after it
are quick.

The comparison trusts stat data as git's index and make do: a file rewritten keeps neither its
ctime nor, in practice, its size and mtime together. Entries changed within `RACY_NS` of the
snapshot (two seconds; file system clocks tick coarsely) make it unusable, and so does any
symbolic link in the raw folder (its target's tree is not walked): then no record is written
and every run does the full check. Only a plain `coop run` (optionally `--raw-dir`,
`--warehouse`, `--wait`, `--allow-shrink`) with no Prefect API configured takes this path,
as the full check does; see docs/performance.md, "Nothing changed".
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE, PROJECT_ROOT
from coop.run.state import RunRecord, append_pending_run, read_published, read_retry, state_dir
from coop.settings import config_path

#: The record's name in `.state/` and its layout (another layout is ignored).
RECORD_NAME = "unchanged.json"
LAYOUT = 1
#: An entry whose mtime or ctime is this close to the snapshot (or after it) could change again
#: within one tick of the file system's clock unseen: such a snapshot is not recorded.
RACY_NS = 2_000_000_000
#: What decides a build besides the raw files (every file under these, `__pycache__` aside).
CODE_DIRS = ("coop", "flows", "schemas", "sql")
#: The `coop run` options that do not change what a no-op run is.
_VALUE_OPTIONS = ("--raw-dir", "--warehouse")
_FLAG_OPTIONS = ("--wait", "--allow-shrink")


class Unusable(Exception):
    """The tree cannot be snapshot reliably (a link, an unreadable folder, a racy entry)."""


def _entry(path: str, st: os.stat_result) -> list[Any]:
    kind = "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "o"
    return [path, kind, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode]


def _walk(root: Path, skip: frozenset[str] = frozenset()) -> list[list[Any]]:
    """[relative path, kind, size, mtime_ns, ctime_ns, inode, mode] of every entry under root,
    sorted; `Unusable` on a symbolic link or a folder that cannot be listed."""
    out: list[list[Any]] = []
    cut = len(os.path.join(str(root), ""))  # an entry's path minus this prefix is its relative path
    stack = [str(root)]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as exc:
            raise Unusable(f"cannot list {d}: {exc}") from exc
        for entry in entries:
            if entry.name in skip:
                continue
            if entry.is_symlink():
                raise Unusable(f"symbolic link {entry.path}")
            st = entry.stat(follow_symlinks=False)
            out.append(_entry(entry.path[cut:], st))
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
    out.sort()
    return out


def _one(path: Path) -> list[Any] | None:
    try:
        return _entry(str(path), os.stat(path))
    except FileNotFoundError:
        return None


@dataclass
class Snapshot:
    """The stat of everything a no-op run's outcome depends on (see the module's docstring)."""

    taken_ns: int
    raw: list[list[Any]]
    code: list[list[Any]]
    config: list[Any] | None
    warehouse: list[Any] | None
    env: dict[str, str]
    published: dict[str, Any] = field(default_factory=dict)  # run_id, fingerprint of published.json

    def same_inputs(self, other: Snapshot) -> bool:
        return (self.raw, self.code, self.config, self.warehouse, self.env, self.published) == (
            other.raw, other.code, other.config, other.warehouse, other.env, other.published)

    def racy(self) -> bool:
        """An entry changed within RACY_NS of the snapshot (or after it)."""
        limit = self.taken_ns - RACY_NS
        rows = [*self.raw, *self.code, *(r for r in (self.config, self.warehouse) if r)]
        return any(r[3] >= limit or r[4] >= limit for r in rows)


def snapshot(raw_dir: Path, warehouse: Path) -> Snapshot:
    """Take the snapshot now; `Unusable` when it cannot be trusted."""
    taken = time.time_ns()
    pub = read_published(state_dir(warehouse))
    snap = Snapshot(
        taken_ns=taken,
        raw=_walk(Path(raw_dir)),
        code=[r for d in CODE_DIRS for r in _walk(PROJECT_ROOT / d, frozenset({"__pycache__"}))
              if r[1] == "f" and not r[0].endswith(".pyc")],  # files: a folder's times move with its caches
        config=_one(config_path()),
        warehouse=_one(Path(warehouse)),
        env={k: v for k, v in sorted(os.environ.items()) if k.startswith("COOP_")},
        published={"run_id": pub.get("run_id"), "fingerprint": pub.get("fingerprint")},
    )
    if snap.warehouse is None or not snap.published.get("fingerprint"):
        raise Unusable("nothing published")
    return snap


@dataclass
class Outcome:
    """What a no-op run reports, as the full check found it: the summary's file lists, the
    number of files seen, the published warehouse's state (coop.warehouse.load.published_state)
    and the console tables (rendered as plain text)."""

    files: dict[str, list[str]]
    files_seen: int
    current: dict[str, Any]
    tables: dict[str, str]


def write_record(snap: Snapshot, outcome: Outcome, warehouse: Path) -> bool:
    """Record the snapshot and the outcome of a full no-op check (True), unless the snapshot is
    racy (False: the next run does the full check again)."""
    if snap.racy():
        return False
    from coop.run.state import atomic_write_text, to_json_value

    data = {"layout": LAYOUT, "snapshot": to_json_value(snap), "outcome": to_json_value(outcome)}
    atomic_write_text(state_dir(warehouse) / RECORD_NAME, json.dumps(data, ensure_ascii=False))
    return True


def forget_record(warehouse: Path) -> None:
    try:
        (state_dir(warehouse) / RECORD_NAME).unlink()
    except FileNotFoundError:
        pass


def recorded(raw_dir: Path, warehouse: Path) -> Outcome | None:
    """The recorded outcome when the inputs are exactly as recorded; else None."""
    try:
        data = json.loads((state_dir(warehouse) / RECORD_NAME).read_text(encoding="utf-8"))
        if data.get("layout") != LAYOUT:
            return None
        was = Snapshot(**data["snapshot"])
        outcome = Outcome(**data["outcome"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if read_retry(state_dir(warehouse)):  # a file to read again: never a no-op
        return None
    try:
        now = snapshot(raw_dir, warehouse)
    except Unusable:
        return None
    return outcome if now.same_inputs(was) else None


# --------------------------------------------------------------------------- the no-op run
def fill_noop(outcome: Outcome, warehouse: Path, run: RunRecord, summary: Any) -> None:
    """Make `run` and `summary` a no-op run's and remember the run in .state/pending_runs.jsonl
    (the next published build copies it into audit.runs). The published warehouse is not
    touched. The flow's no-op (with a Prefect server), the full check and the quick path all
    end here."""
    pub = read_published(state_dir(warehouse))
    now = datetime.now(UTC)
    run.status, run.finished_at = "unchanged", now
    run.files_seen = outcome.files_seen
    run.files_loaded = pub.get("files_loaded", 0)
    run.files_rejected = pub.get("files_rejected", 0)
    run.rows_loaded = pub.get("rows_loaded", 0)
    run.rows_rejected = pub.get("rows_rejected", 0)
    run.message = f"inputs identical to the build published by run {pub.get('run_id')}: nothing rebuilt"
    append_pending_run(state_dir(warehouse), run.to_json())
    cur = outcome.current  # the report still shows what the warehouse holds
    summary.status, summary.finished_at, summary.files = "unchanged", now, outcome.files
    summary.rows_loaded, summary.rows_rejected = run.rows_loaded, run.rows_rejected
    summary.districts = cur.get("districts", [])
    summary.quarantine = cur.get("quarantine", {})
    summary.skipped = cur.get("skipped", {})
    summary.file_issues = cur.get("file_issues", [])


def record_noop(outcome: Outcome, warehouse: Path, raw_dir: Path, run_id: str, started: datetime) -> Any:
    """A no-op run of `coop run` without the flow: recorded (`fill_noop`), its run report
    written; returns its RunSummary."""
    from coop.outputs.run_report import RunSummary, write_run_report

    summary = RunSummary(run_id=run_id, kind="nightly", started_at=started, raw_dir=str(raw_dir),
                         warehouse=str(warehouse))
    fill_noop(outcome, warehouse, RunRecord(run_id=run_id, started_at=started, kind="nightly"), summary)
    summary.timings = {"check": round((datetime.now(UTC) - started).total_seconds(), 3)}
    write_run_report(summary, warehouse)  # sets summary.report_path
    return summary


def print_noop(summary: Any, tables: Mapping[str, str], out: IO[str]) -> None:
    """The console summary of a no-op run (the full check prints it too: coop.run.runner)."""
    from coop.outputs.run_report import rejected_files, summary_lines

    rejected = rejected_files(summary)
    lines = [f"coop {summary.kind} run {summary.run_id}: Nothing changed — warehouse kept as published",
             *summary_lines(summary)]
    if tables.get("areas"):
        lines.append(tables["areas"].rstrip("\n"))
    if rejected:
        lines.append("Rejected files: " + "; ".join(rejected))
    lines.append(f"Warehouse: {summary.warehouse}")
    if tables.get("province"):
        lines.append(tables["province"].rstrip("\n"))
    if summary.report_path:
        lines.append(f"Run report: {summary.report_path}")
    out.write("\n".join(lines) + "\n")
    out.flush()


# --------------------------------------------------------------------------- the command line
def run_options(argv: Sequence[str]) -> tuple[Path, Path, bool] | None:
    """(raw folder, warehouse, --wait) of a plain `coop run` command line (without the program
    name); None for any other command line (the full command handles it)."""
    if not argv or argv[0] != "run":
        return None
    raw, wh, wait = DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE, False
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        name, eq, value = a.partition("=")
        if name in _VALUE_OPTIONS:
            if not eq:
                if not args:
                    return None
                value = args.pop(0)
            if not value:
                return None
            if name == "--raw-dir":
                raw = Path(value)
            else:
                wh = Path(value)
        elif a in _FLAG_OPTIONS and not eq:
            wait = wait or a == "--wait"
        else:
            return None
    return raw, wh, wait


def quick_run(argv: Sequence[str], out: IO[str] | None = None) -> int | None:
    """Exit code 0 when `argv` is a plain `coop run` and nothing changed since the record was
    written (the run recorded, its summary printed); None when the full command must run.
    Never raises: any surprise means the full command runs."""
    opts = run_options(argv)
    if opts is None or os.environ.get("COOP_QUICK_CHECK", "1") == "0":
        return None
    raw_dir, warehouse, wait = opts
    try:
        from coop.run.prefect_env import prefect_api_url

        if prefect_api_url():  # with a Prefect server every run goes through the flow (its UI shows it)
            return None
        if not (state_dir(warehouse) / RECORD_NAME).is_file():
            return None
        return _quick_locked(raw_dir, warehouse, wait, out or sys.stdout)
    except Exception:  # noqa: BLE001 — the full command will say what is wrong
        return None


def _quick_locked(raw_dir: Path, warehouse: Path, wait: bool, out: IO[str]) -> int | None:
    from coop.context import new_run_id
    from coop.outputs.run_report import stage_line
    from coop.run.lock import RunLockBusy, RunLockUnavailable, cleanup_stale, run_lock

    started = datetime.now(UTC)
    try:
        with run_lock(warehouse, wait=wait):
            cleanup_stale(warehouse)  # leftovers of a killed run, as the full command does
            outcome = recorded(raw_dir, warehouse)
            if outcome is None:
                return None
            stage_line("check")  # the full check's console line (docs/operations.md)
            summary = record_noop(outcome, warehouse, raw_dir, new_run_id(started), started)
    except (RunLockBusy, RunLockUnavailable):  # the full command says so (exit 75, or why not)
        return None
    try:
        print_noop(summary, outcome.tables, out)
    except OSError:  # a closed stdout: the run is recorded all the same
        pass
    return 0
