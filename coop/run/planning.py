"""The run plan: which raw files this run sees, how each changed since the published build,
which must be read and which come from the parsed-file cache, and the fingerprint of all a
build depends on (a run whose fingerprint equals the published one is a no-op).

The cache key of a file is `sha256(reader fingerprint, content sha256, source_file)`; the
reader fingerprint covers `PARSER_VERSION`, the reading code, the reference data, the
province served and the reading limits, so any change of a reading rule re-reads every file.
A file that cannot be stat'ed or hashed is planned with an empty hash: it is read (and
rejected by the reader with the reason), never fatal to the run. Plain functions; no Prefect.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coop.ingest.discover import FileIssue, RawFile
from coop.paths import PROJECT_ROOT, REFERENCE_DIR, SQL_DIR
from coop.run.store import (
    HashedFile,
    cache_key,
    cached_keys,
    hash_files,
    read_published,
    read_retry,
    state_dir,
    to_json_value,
    utc_from_ns,
)

if TYPE_CHECKING:
    from coop.context import RunContext

log = logging.getLogger(__name__)

#: Bump when reading rules change in a way the source fingerprint below would not notice.
PARSER_VERSION = "1"


#: Source files whose content defines how a spreadsheet is read (part of the cache key).
READER_SOURCES = ("coop/ingest/read.py", "coop/ingest/normalize.py", "coop/ingest/values.py", "coop/text.py",
                  "coop/ingest/discover.py", "coop/reference.py", "schemas/forms.py", "coop/ingest/isolation.py")


def _hash_paths(paths: Iterable[Path], h: hashlib._Hash) -> None:
    for p in paths:
        h.update(str(p.relative_to(PROJECT_ROOT) if p.is_relative_to(PROJECT_ROOT) else p).encode())
        h.update(b"\0")
        h.update(p.read_bytes() if p.exists() else b"<missing>")
        h.update(b"\0")


def reader_fingerprint() -> str:
    """Changes whenever the reading code, the form schemas, the reference data or the
    province served (which decides what each folder means) change."""
    from coop.ingest.isolation import limits_key
    from coop.reference import load_reference

    h = hashlib.sha256(f"parser:{PARSER_VERSION}\nprovince:{load_reference().province_code}\n"
                       f"limits:{limits_key()}".encode())
    paths = [PROJECT_ROOT / s for s in READER_SOURCES]
    if REFERENCE_DIR.is_dir():
        paths += sorted(p for p in REFERENCE_DIR.rglob("*") if p.is_file())
    _hash_paths(paths, h)
    return h.hexdigest()[:20]


def sql_fingerprint(sql_dir: Path = SQL_DIR) -> str:
    """Changes whenever a model, a data test or the loader/model code changes."""
    h = hashlib.sha256(b"sql")
    paths = sorted(p for p in Path(sql_dir).rglob("*") if p.is_file() and p.suffix in (".sql", ".toml"))
    paths += [PROJECT_ROOT / "coop" / "warehouse" / n for n in ("models.py", "datatests.py", "load.py")]
    _hash_paths(paths, h)
    return h.hexdigest()[:20]


@dataclass
class PlannedFile:
    """One raw file in this run: its hash, change status vs the published ledger, and
    whether it must be read (no cache entry, or backfill)."""

    raw: RawFile
    source_file: str
    path: Path
    year: int | None
    unit_code: str | None
    size: int
    mtime_ns: int
    file_hash: str
    status: str  # new | changed | unchanged
    cache_key: str
    read: bool
    hashed_now: bool = False

    @property
    def modified_at(self) -> datetime:
        return utc_from_ns(self.mtime_ns)


@dataclass
class Plan:
    files: list[PlannedFile]
    removed: list[str]  # source files in the previous ledger that are gone (within scope)
    reader_fp: str
    issue_files: dict[str, HashedFile] = field(default_factory=dict)  # files rejected by discovery
    issue_where: dict[str, tuple[int | None, str | None]] = field(default_factory=dict)
    issue_status: dict[str, str] = field(default_factory=dict)  # new | changed | unchanged
    years: tuple[int, int] | None = None
    backfill_years: tuple[int, int] | None = None
    fingerprint: str = ""
    retry: list[str] = field(default_factory=list)  # files of retry.json: this run is never a no-op
    #: what a build is made with besides its files (reader, SQL, tests, settings, storage, schema
    #: version): an incremental build needs the published one's to be the same (`incremental_basis`)
    parts: dict[str, Any] = field(default_factory=dict)
    #: the published ledger (audit.files) the statuses were read against (`plan_from_discovery`):
    #: the flow loads with it instead of opening the published file again
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def to_read(self) -> list[PlannedFile]:
        return [f for f in self.files if f.read]

    @property
    def from_cache(self) -> list[PlannedFile]:
        return [f for f in self.files if not f.read]


def raw_source(raw: RawFile, raw_dir: Path) -> tuple[str, Path]:
    """(source_file relative to raw_dir, absolute path) of a RawFile."""
    path = Path(raw.path)
    if not path.is_absolute():
        path = (Path(raw_dir) / path).resolve()
    return raw.source_file, path


def in_years(year: int | None, years: tuple[int, int] | None) -> bool:
    return years is None or (year is not None and years[0] <= year <= years[1])


def make_plan(raw_files: Sequence[RawFile], raw_dir: Path, state: Path, previous: Mapping[str, Mapping[str, Any]],
              issue_paths: Mapping[str, Path] | None = None, years: tuple[int, int] | None = None,
              backfill_years: tuple[int, int] | None = None) -> Plan:
    """Hash every raw file (stat cache), compare with the previous ledger (`audit.files` of the
    published warehouse: source_file -> row with file_hash, year), and decide which files to
    read: those without a cache entry, and every file of `backfill_years`."""
    raw_dir = Path(raw_dir)
    fp = reader_fingerprint()
    sources: dict[str, tuple[RawFile, Path]] = {}
    for raw in raw_files:
        s, p = raw_source(raw, raw_dir)
        sources[s] = (raw, p)
    all_paths = {s: p for s, (_, p) in sources.items()}
    issue_paths = dict(issue_paths or {})
    for s, p in issue_paths.items():
        all_paths.setdefault(s, p)
    hashed = hash_files(all_paths, state)
    have = cached_keys(state)
    files: list[PlannedFile] = []
    for s, (raw, p) in sorted(sources.items()):
        h = hashed.get(s)
        if h is None:  # vanished between discovery and hashing
            continue
        prev = previous.get(s)
        if prev is None or prev.get("status") == "removed":
            status = "new"
        elif prev.get("file_hash") == h.file_hash:
            status = "unchanged"
        else:
            status = "changed"
        year = raw.year
        key = cache_key(fp, h.file_hash, s)
        read = key not in have or (backfill_years is not None and in_years(year, backfill_years))
        files.append(PlannedFile(raw, s, p, year, raw.unit_code, h.size, h.mtime_ns, h.file_hash,
                                 status, key, read, h.hashed_now))
    current = set(sources) | set(issue_paths)
    removed = sorted(s for s, r in previous.items()
                     if s not in current and r.get("status") != "removed" and in_years(r.get("year"), years))
    issue_hashed = {s: hashed[s] for s in issue_paths if s in hashed}
    issue_status = {}
    for s, hf in issue_hashed.items():
        prev = previous.get(s)
        issue_status[s] = ("new" if prev is None or prev.get("status") == "removed"
                           else "unchanged" if prev.get("file_hash") == hf.file_hash else "changed")
    return Plan(files, removed, fp, issue_hashed, issue_status=issue_status, years=years,
                backfill_years=backfill_years)


def build_fingerprint(plan: Plan, extra: Mapping[str, Any]) -> str:
    """Everything a build depends on: (source_file, hash) of every file (read or rejected),
    the reader and SQL fingerprints and `extra` (settings, storage version, years)."""
    h = hashlib.sha256()
    for f in sorted(plan.files, key=lambda f: f.source_file):
        h.update(f"{f.source_file}\0{f.file_hash}\0{f.modified_at.isoformat()}\n".encode())
    for s, hf in sorted(plan.issue_files.items()):
        h.update(f"issue\0{s}\0{hf.file_hash}\n".encode())
    h.update(f"reader\0{plan.reader_fp}\nsql\0{sql_fingerprint()}\n".encode())
    h.update(json.dumps(to_json_value(dict(extra)), sort_keys=True, default=str).encode())
    return h.hexdigest()


def _where_from_path(source: str) -> tuple[int | None, str | None]:
    """Year (first folder, when four digits) of a file discovery rejected; district unknown."""
    first = source.split("/", 1)[0]
    return (int(first) if first.isdigit() and len(first) == 4 else None), None


def plan_now(ctx: RunContext) -> Plan:
    """Discover and plan as the flow does (its `discover` and `plan` tasks), for what runs before
    it in the run's process: the nothing-changed check and the warm-up (coop.run.runner)."""
    from coop.ingest.discover import discover

    raw_files, issues = discover(ctx.raw_dir, ctx.reference, ctx.years)
    return plan_from_discovery(raw_files, issues, ctx.raw_dir, ctx.warehouse, ctx.years, ctx.backfill_years,
                               ctx.sql_dir, ctx.tests_dir)


def plan_from_discovery(raw_files: Sequence[RawFile], issues: Sequence[FileIssue], raw_dir: Path, warehouse: Path,
                        years: tuple[int, int] | None = None,
                        backfill_years: tuple[int, int] | None = None,
                        sql_dir: Path = SQL_DIR, tests_dir: Path | None = None) -> Plan:
    """The run plan from discovery's output: hashes, statuses against the published ledger,
    what to read, and the build fingerprint."""
    from coop.warehouse.load import build_settings, read_ledger, storage_version

    raw_dir = Path(raw_dir)
    issue_paths: dict[str, Path] = {}
    issue_where: dict[str, tuple[int | None, str | None]] = {}
    for i in issues:
        s = i.source_file
        if not s:
            continue
        p = raw_dir / s
        if p.is_file() and not p.is_symlink():  # a link out of the raw folder is not even hashed
            issue_paths[s] = p
            issue_where[s] = _where_from_path(s)
    previous = read_ledger(Path(warehouse))
    plan = make_plan(raw_files, raw_dir, state_dir(warehouse), previous, issue_paths, years, backfill_years)
    plan.issue_where = issue_where
    plan.ledger = previous
    planned = {f.source_file for f in plan.files}
    plan.retry = sorted(s for s in read_retry(state_dir(warehouse)) if s in planned)
    from coop.run.ops import SCHEMA_VERSION

    plan.parts = {"reader": plan.reader_fp, "settings": build_settings(), "storage": storage_version(),
                  "sql": sql_fingerprint(Path(sql_dir)),
                  "tests": sql_fingerprint(Path(tests_dir or Path(sql_dir) / "tests")),
                  "schema_version": SCHEMA_VERSION}
    plan.fingerprint = build_fingerprint(plan, {"settings": plan.parts["settings"], "storage": plan.parts["storage"],
                                                "sql": plan.parts["sql"], "tests": plan.parts["tests"],
                                                "years": years, "issues": sorted(
                                                    (str(i.source_file), str(i.reason_code))
                                                    for i in issues)})
    return plan


def is_unchanged(plan: Plan, warehouse: Path) -> bool:
    """True when the published warehouse was built from exactly these inputs (and is still the
    file that build published): nothing to rebuild. Never for --years runs or backfills."""
    from coop.warehouse.publish import file_identity

    if plan.years is not None or plan.backfill_years is not None or plan.retry:
        return False
    pub = read_published(state_dir(warehouse))
    ident = file_identity(Path(warehouse))
    return (bool(pub) and ident is not None and pub.get("fingerprint") == plan.fingerprint
            and pub.get("identity") == ident)


# --------------------------------------------------------------------------- incremental build
@dataclass
class Incremental:
    """How this run's build starts from a copy of the published warehouse (docs/architecture.md,
    "Incremental build"). `affected` files are read (or, unchanged in bytes but e.g. touched,
    taken whole from the cache) and their rows replaced; `others` are the cached files of the
    same (year, unit) folders, whose selection among resubmissions may change: only their
    metadata is looked at first (`coop.run.steps.resolve_incremental`); every other file is
    `kept`: its rows, quarantine, sheets and issues are carried from the published build."""

    base_run_id: str                       # latest published run of the warehouse copied
    affected: list[PlannedFile]
    others: list[PlannedFile]
    kept: set[str]
    gone: set[str]                         # previous files that are no longer planned (removed, ...)
    keys: set[tuple[int | None, str | None]]
    #: the base run's audit.file_issues rows of `others`: source_file -> sorted
    #: (sheet, reason, reason_code, severity, year, unit_code)
    previous_issues: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def _naive(t: Any) -> Any:
    from coop.warehouse.load import utc_naive

    return utc_naive(t) if isinstance(t, datetime) else t


def incremental_basis(plan: Plan, warehouse: Path, previous: Mapping[str, Mapping[str, Any]],
                      issues: Sequence[FileIssue], fresh: bool = False) -> tuple[Incremental | None, str]:
    """Whether this run may build from a copy of the published warehouse, and what changes.

    Returns (Incremental, "") or (None, why not). Any doubt is a full rebuild: a `fresh` run, a
    run limited to some years or a backfill, no published build recorded in `.state/published.json`
    or another file in its place (rolled back, replaced), other reader/SQL/test/settings/storage
    fingerprints or schema version, a published file that cannot be read or whose latest published
    run is not the one recorded."""
    import duckdb

    from coop.warehouse import queries
    from coop.warehouse.publish import file_identity

    if fresh:
        return None, "fresh rebuild"
    if plan.years is not None or plan.backfill_years is not None:
        return None, "run limited to some years, or a backfill"
    pub = read_published(state_dir(warehouse))
    ident = file_identity(Path(warehouse))
    if not pub or ident is None or pub.get("identity") != ident:
        return None, "no published build recorded for this file"
    if not plan.parts or to_json_value(pub.get("parts")) != to_json_value(plan.parts):
        return None, "reader, SQL, tests, settings, storage or schema version changed"
    discovered = {i.source_file for i in issues if i.source_file}
    affected: list[PlannedFile] = []
    for f in plan.files:
        prev = previous.get(f.source_file)
        if (f.read or f.status != "unchanged" or prev is None or f.source_file in discovered
                or _naive(prev.get("modified_at")) != _naive(f.modified_at)):
            affected.append(f)
    planned = {f.source_file for f in plan.files}
    gone = {s for s, p in previous.items() if s not in planned and p.get("status") != "removed"}
    keys = {(f.year, f.unit_code) for f in affected}
    # a file gone that took part in choosing among resubmissions (not rejected whole) frees its forms
    keys |= {(previous[s].get("year"), previous[s].get("unit_code")) for s in gone
             if previous[s].get("status") != "rejected"}
    names = {f.source_file for f in affected}
    others = [f for f in plan.files if f.source_file not in names and (f.year, f.unit_code) in keys]
    kept = planned - names - {f.source_file for f in others}
    try:
        con = queries.connect_read_only(Path(warehouse))
    except duckdb.Error as e:
        return None, f"published warehouse unreadable: {e}"
    try:
        base = queries.latest_published_run(con)
        if not base or base != pub.get("run_id"):
            return None, "the published file's latest run is not the one recorded"
        prev_issues: dict[str, list[tuple[Any, ...]]] = {f.source_file: [] for f in others}
        if others:
            rows = con.execute(
                "SELECT source_file, sheet, reason, reason_code, severity, year, unit_code FROM audit.file_issues "
                "WHERE run_id = ? AND source_file IN (SELECT unnest(?::VARCHAR[]))",
                [base, sorted(prev_issues)]).fetchall()
            for r in rows:
                prev_issues[r[0]].append(tuple(r[1:]))
    except duckdb.Error as e:
        return None, f"published warehouse unreadable: {e}"
    finally:
        con.close()
    return Incremental(base, affected, others, kept, gone, keys,
                       {s: sorted(v, key=repr) for s, v in prev_issues.items()}), ""
