"""Incremental reading: the file-hash ledger, the parsed-file cache and the run plan.

State lives in `<warehouse folder>/.state/` (default `data/warehouse/.state/`):

- `hashes.json` — stat cache: absolute path -> size, mtime_ns, sha256. When a file's path, size
  and mtime equal the entry, its hash is reused without reading its bytes.
- `cache/<key>/` — one parsed `FileResult` per file: `meta.json` (source, year, district,
  hash, issues, sheets) and one parquet per accepted form plus `rejected.parquet`. Written
  to a temporary folder and renamed into place, so a crash never leaves a half entry.
  `key = sha256(reader fingerprint, file content sha256, source_file)`; the reader
  fingerprint covers `PARSER_VERSION`, the reading code and the reference data, so any
  change of a reading rule or vocabulary re-reads every file.
- `published.json` — fingerprint of the inputs of the last published build and the identity
  of the file published. A run whose inputs have the same fingerprint (same set of
  (source_file, hash), same reader/SQL/settings) and finds that file in place is a no-op.
- `pending_runs.jsonl` — runs not recorded in any published warehouse yet (no-op and failed
  runs); the next published build copies them into `audit.runs`.
- `retry.json` — files whose last read failed in a way the same bytes may not repeat (not
  readable right now, time limit, killed reader: `FileResult.transient`): source_file ->
  hash. Such a result is never cached, and while a file is listed no run is a no-op, so the
  restored file is read again by the next run.

A file that cannot be stat'ed or hashed (no permission, vanished, I/O error) is planned with
an empty hash: it is read (and rejected by the reader with the reason), never fatal to the run.

Plain functions; no Prefect.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from coop.paths import PROJECT_ROOT, REFERENCE_DIR, SCHEMAS_DIR, SQL_DIR

log = logging.getLogger(__name__)

#: Bump when reading rules change in a way the source fingerprint below would not notice.
PARSER_VERSION = "1"

#: Source files whose content defines how a spreadsheet is read (part of the cache key).
READER_SOURCES = ("coop/ingest/read.py", "coop/ingest/normalize.py", "coop/ingest/values.py", "coop/text.py", "coop/ingest/discover.py",
                  "coop/reference.py", "schemas/forms.py", "coop/ingest/isolation.py")

_CHUNK = 1 << 20


# --------------------------------------------------------------------------- small helpers
def state_dir(warehouse: Path) -> Path:
    return Path(warehouse).parent / ".state"


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:  # a damaged state file is only a cache: start afresh
        log.warning("Ignoring unreadable state file %s: %s", path, e)
        return default


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _hash_paths(paths: Iterable[Path], h: "hashlib._Hash") -> None:
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
    paths += [PROJECT_ROOT / "coop" / n for n in ("models.py", "datatests.py", "load.py")]
    _hash_paths(paths, h)
    return h.hexdigest()[:20]


def _utc(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc)


# --------------------------------------------------------------------------- hashing with the stat cache
@dataclass
class HashedFile:
    source_file: str
    path: Path
    size: int
    mtime_ns: int
    file_hash: str
    hashed_now: bool  # bytes were read to compute the hash in this run

    @property
    def modified_at(self) -> datetime:
        return _utc(self.mtime_ns)


def hash_files(paths: Mapping[str, Path], state: Path) -> dict[str, HashedFile]:
    """sha256 of each file (source_file -> path). Reuses the stored hash when path, size and
    mtime equal the stat cache's entry; updates the cache. Files that vanished are skipped; a
    file that cannot be stat'ed or read (no permission, I/O error) gets an empty hash and no
    stat-cache entry (the reader then rejects it with the reason; never fatal to the run)."""
    cache_file = Path(state) / "hashes.json"
    known: dict[str, Any] = _read_json(cache_file, {})
    out: dict[str, HashedFile] = {}
    fresh: dict[str, Any] = {}
    wanted: set[str] = set()
    for source, path in sorted(paths.items()):
        try:
            ident = str(Path(path).resolve())  # keyed by absolute path: another raw folder is another file
        except (OSError, RuntimeError):  # a link loop
            ident = str(Path(path).absolute())
        wanted.add(ident)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as e:  # no permission on the folder, a link loop, I/O error
            log.warning("Cannot stat %s: %s", source, e)
            out[source] = HashedFile(source, Path(path), 0, 0, "", True)
            continue
        k = known.get(ident)
        if k and k.get("size") == st.st_size and k.get("mtime_ns") == st.st_mtime_ns and k.get("sha256"):
            digest, now = k["sha256"], False
        else:
            try:
                digest, now = sha256_file(Path(path)), True
            except OSError as e:  # no read permission, vanished meanwhile, I/O error
                log.warning("Cannot hash %s: %s", source, e)
                out[source] = HashedFile(source, Path(path), st.st_size, st.st_mtime_ns, "", True)
                continue
        out[source] = HashedFile(source, Path(path), st.st_size, st.st_mtime_ns, digest, now)
        fresh[ident] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    # keep entries of files outside this run's scope (e.g. other years); drop vanished ones
    merged = {s: v for s, v in {**known, **fresh}.items() if s in fresh or s not in wanted}
    if merged != known:  # ASCII JSON: a path that is not UTF-8 is stored escaped, never an encode error
        _atomic_write_text(cache_file, json.dumps(merged, ensure_ascii=True, sort_keys=True, indent=0))
    return out


# --------------------------------------------------------------------------- parsed-file cache
def cache_key(reader_fp: str, file_hash: str, source_file: str) -> str:
    return hashlib.sha256(f"{reader_fp}\0{file_hash}\0{source_file}".encode()).hexdigest()[:32]


def _cache_root(state: Path) -> Path:
    return Path(state) / "cache"


def _enc(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"__datetime__": v.isoformat()}
    if isinstance(v, date):
        return {"__date__": v.isoformat()}
    if isinstance(v, Path):
        return str(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _enc(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _enc(x) for k, x in v.items()}
    return v


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "__datetime__" in v and len(v) == 1:
            return datetime.fromisoformat(v["__datetime__"])
        if "__date__" in v and len(v) == 1:
            return date.fromisoformat(v["__date__"])
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


def _build(cls: Any, data: Mapping[str, Any]) -> Any:
    if cls is None or not dataclasses.is_dataclass(cls):
        return data
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _ingest_classes() -> tuple[Any, Any, Any]:
    import coop.ingest.normalize as ingest

    return ingest.FileResult, getattr(ingest, "FileIssue", None), getattr(ingest, "SheetInfo", None)


def store_result(state: Path, key: str, result: Any, replace: bool = False) -> Path:
    """Write one FileResult under `cache/<key>/` (temp folder + rename: crash-safe).
    An existing entry is kept, or with `replace=True` swapped for the new one."""
    root = _cache_root(state)
    final = root / key
    if final.exists() and not replace:
        return final
    tmp = root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        forms = {}
        for form, df in (result.forms or {}).items():
            fname = f"form-{form}.parquet"
            df.write_parquet(tmp / fname)
            forms[form] = fname
        result.rejected_rows.write_parquet(tmp / "rejected.parquet")
        meta = {
            "fields": {f.name: _enc(getattr(result, f.name)) for f in dataclasses.fields(result)
                       if f.name not in ("forms", "rejected_rows")},
            "forms": forms,
            "issue_fields": "file_issues",
            "sheet_fields": "sheets",
        }
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        for p in tmp.iterdir():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if final.exists():  # replace: move the old entry aside first (rename is atomic)
            old = root / f".tmp-old-{key}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            os.rename(final, old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another writer won the race: same content
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_result(state: Path, key: str, modified_at: datetime | None = None) -> Any | None:
    """The cached FileResult under `cache/<key>/`, or None (missing or unreadable entry)."""
    folder = _cache_root(state) / key
    if not (folder / "meta.json").exists():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        FileResult, FileIssue, SheetInfo = _ingest_classes()
        fields = _dec(meta["fields"])
        fields["forms"] = {form: pl.read_parquet(folder / fname) for form, fname in meta["forms"].items()}
        fields["rejected_rows"] = pl.read_parquet(folder / "rejected.parquet")
        fields["file_issues"] = [_build(FileIssue, i) for i in fields.get("file_issues") or []]
        fields["sheets"] = [_build(SheetInfo, s) for s in fields.get("sheets") or []]
        if modified_at is not None and "modified_at" in fields:
            fields["modified_at"] = modified_at
        return _build(FileResult, fields)
    except Exception as e:  # a damaged entry is only a cache miss
        log.warning("Ignoring damaged cache entry %s: %s", folder, e)
        return None


def cached_keys(state: Path) -> set[str]:
    root = _cache_root(state)
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").exists()}


def prune_cache(state: Path, keep: Iterable[str]) -> int:
    """Remove cache entries not in `keep` and leftover temp folders. Returns entries removed."""
    root = _cache_root(state)
    if not root.is_dir():
        return 0
    keep = set(keep)
    n = 0
    for p in root.iterdir():
        if p.name.startswith(".tmp-") or (p.is_dir() and p.name not in keep):
            shutil.rmtree(p, ignore_errors=True)
            n += 0 if p.name.startswith(".tmp-") else 1
    return n


# --------------------------------------------------------------------------- the plan
@dataclass
class PlannedFile:
    """One raw file in this run: its hash, change status vs the published ledger, and
    whether it must be read (no cache entry, or backfill)."""

    raw: Any  # coop.ingest.discover.RawFile
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
        return _utc(self.mtime_ns)


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

    @property
    def to_read(self) -> list[PlannedFile]:
        return [f for f in self.files if f.read]

    @property
    def from_cache(self) -> list[PlannedFile]:
        return [f for f in self.files if not f.read]


def _attr(obj: Any, *names: str) -> Any:
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
        if isinstance(obj, Mapping) and n in obj:
            return obj[n]
    return None


def raw_source(raw: Any, raw_dir: Path) -> tuple[str, Path]:
    """(source_file relative to raw_dir, absolute path) of a RawFile."""
    path = _attr(raw, "path", "abs_path", "full_path")
    source = _attr(raw, "source_file", "rel_path", "relpath")
    if path is None and source is not None:
        path = Path(raw_dir) / source
    path = Path(path)
    if not path.is_absolute():
        path = path.resolve() if path.exists() else (Path(raw_dir) / path).resolve()
    if source is None:
        source = path.relative_to(Path(raw_dir).resolve()).as_posix()
    return str(source), path


def in_years(year: int | None, years: tuple[int, int] | None) -> bool:
    return years is None or (year is not None and years[0] <= year <= years[1])


def make_plan(raw_files: Sequence[Any], raw_dir: Path, state: Path, previous: Mapping[str, Mapping[str, Any]],
              issue_paths: Mapping[str, Path] | None = None, years: tuple[int, int] | None = None,
              backfill_years: tuple[int, int] | None = None) -> Plan:
    """Hash every raw file (stat cache), compare with the previous ledger (`audit.files` of the
    published warehouse: source_file -> row with file_hash, year), and decide which files to
    read: those without a cache entry, and every file of `backfill_years`."""
    raw_dir = Path(raw_dir)
    fp = reader_fingerprint()
    sources: dict[str, tuple[Any, Path]] = {}
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
        year = _attr(raw, "year")
        key = cache_key(fp, h.file_hash, s)
        read = key not in have or (backfill_years is not None and in_years(year, backfill_years))
        files.append(PlannedFile(raw, s, p, year, _attr(raw, "unit_code"), h.size, h.mtime_ns, h.file_hash,
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
    h.update(json.dumps(_enc(dict(extra)), sort_keys=True, default=str).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- published / pending state
def read_published(state: Path) -> dict[str, Any]:
    return _read_json(Path(state) / "published.json", {})


def write_published(state: Path, info: Mapping[str, Any]) -> None:
    _atomic_write_text(Path(state) / "published.json", json.dumps(_enc(dict(info)), ensure_ascii=False, indent=1))


def append_pending_run(state: Path, record: Mapping[str, Any]) -> None:
    """Remember a run that no published warehouse records yet (no-op or failed run)."""
    path = Path(state) / "pending_runs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_enc(dict(record)), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_pending_runs(state: Path) -> list[dict[str, Any]]:
    path = Path(state) / "pending_runs.jsonl"
    out = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:  # a line torn by a crash
                    continue
    except FileNotFoundError:
        pass
    return out


def clear_pending_runs(state: Path, run_ids: Iterable[str]) -> None:
    """Drop the pending runs now recorded in the published warehouse."""
    done = set(run_ids)
    rest = [r for r in read_pending_runs(state) if r.get("run_id") not in done]
    path = Path(state) / "pending_runs.jsonl"
    if not rest:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    _atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rest))


# --------------------------------------------------------------------------- run steps (plain functions the flow composes)
def _issue_value(i: Any, name: str) -> Any:
    return _attr(i, name)


def _where_from_path(source: str) -> tuple[int | None, str | None]:
    """Year (first folder, when four digits) of a file discovery rejected; district unknown."""
    first = source.split("/", 1)[0]
    return (int(first) if first.isdigit() and len(first) == 4 else None), None


def plan_from_discovery(raw_files: Sequence[Any], issues: Sequence[Any], raw_dir: Path, warehouse: Path,
                        years: tuple[int, int] | None = None,
                        backfill_years: tuple[int, int] | None = None,
                        sql_dir: Path = SQL_DIR, tests_dir: Path | None = None) -> Plan:
    """The run plan from discovery's output: hashes, statuses against the published ledger,
    what to read, and the build fingerprint."""
    from coop.warehouse.load import DEFAULT_SETTINGS, read_ledger, storage_version

    raw_dir = Path(raw_dir)
    issue_paths: dict[str, Path] = {}
    issue_where: dict[str, tuple[int | None, str | None]] = {}
    for i in issues:
        s = _issue_value(i, "source_file")
        if not s:
            continue
        p = raw_dir / s
        if p.is_file() and not p.is_symlink():  # a link out of the raw folder is not even hashed
            issue_paths[str(s)] = p
            y = _issue_value(i, "year")
            issue_where[str(s)] = (y, _issue_value(i, "unit_code")) if y is not None else _where_from_path(str(s))
    previous = read_ledger(Path(warehouse))
    plan = make_plan(raw_files, raw_dir, state_dir(warehouse), previous, issue_paths, years, backfill_years)
    plan.issue_where = issue_where
    planned = {f.source_file for f in plan.files}
    plan.retry = sorted(s for s in read_retry(state_dir(warehouse)) if s in planned)
    plan.fingerprint = build_fingerprint(plan, {"settings": DEFAULT_SETTINGS, "storage": storage_version(),
                                                "sql": sql_fingerprint(Path(sql_dir)),
                                                "tests": sql_fingerprint(Path(tests_dir or Path(sql_dir) / "tests")),
                                                "years": years, "issues": sorted(
                                                    (str(_issue_value(i, "source_file")), str(_issue_value(i, "reason_code")))
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
    return bool(pub) and ident is not None and pub.get("fingerprint") == plan.fingerprint and pub.get("identity") == ident


def fill_summary_files(summary: Any, plan: Plan) -> None:
    files: dict[str, list[str]] = {"new": [], "changed": [], "removed": list(plan.removed), "unchanged": []}
    for f in plan.files:
        files[f.status].append(f.source_file)
    for s, st in plan.issue_status.items():
        files[st].append(s)
    summary.files = files


def record_unchanged(plan: Plan, warehouse: Path, run: Any, summary: Any) -> None:
    """A no-op run: remember it in .state/pending_runs.jsonl (the next published build copies
    it into audit.runs) and fill the summary. The published warehouse is not touched."""
    pub = read_published(state_dir(warehouse))
    now = datetime.now(timezone.utc)
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
    summary.file_issues = current.get("file_issues", [])


def _failed_result(f: PlannedFile, exc: BaseException) -> Any:
    """A FileResult for a file whose reading crashed: the file is rejected, the others go on.
    Marked transient: it is not cached, and the next run reads the file again."""
    import coop.ingest.normalize as ingest

    if isinstance(exc, MemoryError):
        code, text = "resource_limit", "Không đủ bộ nhớ để xử lý tệp"
    else:
        code, text = "unreadable_file", "Không đọc được tệp"
    reason = f"{text}: {type(exc).__name__}: {exc} [{code}]"
    issue = ingest.FileIssue(source_file=f.source_file, sheet=None, reason_code=code,
                             reason=reason, severity="rejected")
    res = ingest.FileResult(source_file=f.source_file, year=f.year, unit_code=f.unit_code,
                            file_hash=f.file_hash, modified_at=f.modified_at, forms={},
                            rejected_rows=pl.DataFrame(schema=ingest.REJECTED_ROW_SCHEMA),
                            file_issues=[issue], sheets=[])
    res.transient = True
    return res


_RETRY_LOCK = threading.Lock()


def read_retry(state: Path) -> dict[str, str]:
    """retry.json: source_file -> hash of the files whose last read failed transiently."""
    data = _read_json(Path(state) / "retry.json", {})
    return data if isinstance(data, dict) else {}


def _note_retry(state: Path, results: Sequence[tuple[str, str, bool]]) -> None:
    """Add (transient failure) or drop (read) each (source_file, hash, transient) in retry.json."""
    with _RETRY_LOCK:
        data = read_retry(state)
        new = dict(data)
        for source, digest, transient in results:
            if transient:
                new[source] = digest
            else:
                new.pop(source, None)
        if new != data:
            _atomic_write_text(Path(state) / "retry.json", json.dumps(new, ensure_ascii=True, sort_keys=True))


def read_files(batch: Sequence[PlannedFile], reference: Any, state: Path) -> list[Any]:
    """Read (ingest) each file and store its result in the cache. A file whose reading
    raises (any exception but Ctrl-C/exit/cancellation: a reader panic is a BaseException)
    is rejected (`unreadable_file`); such a result, and any result marked transient, is not
    cached and the file is listed in retry.json, so the next run reads it again."""
    import coop.ingest.normalize
    from coop.ingest.read import is_fatal
    from coop.outputs.run_report import progress_tick

    out = []
    noted: list[tuple[str, str, bool]] = []
    for f in batch:
        try:
            r = coop.ingest.normalize.ingest_file(f.raw, reference)
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
        _note_retry(state, noted)
    except OSError as e:
        log.warning("Could not update %s: %s", Path(state) / "retry.json", e)
    return out


def cached_files(batch: Sequence[PlannedFile], state: Path, reference: Any = None) -> list[Any]:
    """The cached results of unchanged files (a missing/damaged entry is read again)."""
    out, missing = [], []
    for f in batch:
        r = load_result(state, f.cache_key, modified_at=f.modified_at)
        if r is None:
            missing.append(f)
        else:
            out.append(r)
    if missing:
        out += read_files(missing, reference, state)
    return out


def superseded_issues(results: Sequence[Any], selected: Sequence[Any]) -> list[dict[str, Any]]:
    """An issue for every file `select_submissions` dropped whole, unless it already says so."""
    kept = {r.source_file for r in selected}
    noted = {(_attr(i, "source_file"), _attr(i, "reason_code")) for r in selected for i in (r.file_issues or [])}
    out = []
    for r in results:
        if r.source_file in kept or (r.source_file, "superseded") in noted:
            continue
        out.append({"source_file": r.source_file, "sheet": None, "reason_code": "superseded", "severity": "superseded",
                    "reason": "Tệp đã được thay thế bởi bản nộp lại mới hơn trong cùng thư mục [superseded]"})
    return out


def fill_summary_load(summary: Any, built: Any, reference: Any) -> None:
    names = {u.code: u.name for u in reference.units}
    per: dict[tuple, dict[str, Any]] = {}
    for fl in built.stats.files.values():
        key = (fl.year, fl.unit_code)
        d = per.setdefault(key, {"year": fl.year, "unit_code": fl.unit_code,
                                 "unit_name": names.get(fl.unit_code) if fl.unit_code else "Tỉnh (province)",
                                 "rows_loaded": 0, "rows_rejected": 0})
        d["rows_loaded"] += fl.rows_loaded
        d["rows_rejected"] += fl.rows_rejected
    summary.districts = sorted(per.values(), key=lambda d: (d["year"] or 0, d["unit_code"] is None, d["unit_code"] or ""))
    summary.quarantine = dict(built.quarantine)
    summary.file_issues = list(built.issues)
    summary.rows_loaded = built.rows_loaded
    summary.rows_rejected = built.rows_rejected


def after_publish(plan: Plan, warehouse: Path, run: Any, built: Any) -> None:
    """Remember what was published (for the no-op check), drop the pending runs it recorded,
    prune cache entries no current file uses (full runs only)."""
    from coop.warehouse.publish import file_identity

    st = state_dir(warehouse)
    write_published(st, {
        "fingerprint": plan.fingerprint, "run_id": run.run_id, "identity": file_identity(Path(warehouse)),
        "published_at": datetime.now(timezone.utc).isoformat(), "files_loaded": built.files_loaded,
        "files_rejected": built.files_rejected, "rows_loaded": built.rows_loaded, "rows_rejected": built.rows_rejected,
    })
    clear_pending_runs(st, built.pending_recorded)
    if plan.years is None:
        prune_cache(st, {f.cache_key for f in plan.files})
