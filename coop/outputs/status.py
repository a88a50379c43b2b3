"""`coop status`: per report year and reporting unit, what was received, when, and what was rejected.

Built on the pipeline's own pieces, never a second implementation of them:

- the units and their names: `coop.reference.load_reference()` (the province served, from the
  `province` setting); the units expected in report year Y are `Reference.units_expected(Y)`:
  districts valid on 31/12/Y up to 2024, today's communes from 2025 (units.md, point 6);
- what the raw folder holds now: `coop.ingest.discover.discover` (its `RawFile`s and `FileIssue`s:
  hidden and system files such as `Thumbs.db` are skipped exactly as the run skips them; a
  district folder under 2025 is rejected with the reform reason, ...);
- what was loaded: the published warehouse's ledger `audit.files` (statuses new | changed |
  unchanged | rejected | superseded | removed, rows loaded and quarantined per file) and the
  `audit.file_issues` / `audit.rejected_rows` of the latest published run (`audit.runs`);
- whether a file in the raw folder is newer than what was loaded: its sha256 (the pipeline's
  `coop.run.store.hash_files`, with the run's stat cache `<warehouse folder>/.state/hashes.json`)
  against `audit.files.file_hash`.
- a former commune's lineage (`schemas/reference/commune_lineage.csv`, the file the warehouse's
  `core.unit_lineage` is built from) names the former district(s) of a commune of today.

It reads the warehouse READ_ONLY for a few queries and never takes the run lock, so it works
while a run is going. Stored times are naive UTC; every time shown is Vietnam time
(Asia/Ho_Chi_Minh, UTC+7): "29/11/2026 08:15 (giờ Việt Nam, UTC+7)" in text, ISO 8601 with
"+07:00" in JSON.

Per unit and year the state is (`UnitYear.state`):
  received        the warehouse holds at least one row of it from a file still in the raw folder
  NO USABLE ROWS  a file was loaded, but every row was quarantined
  NOT LOADED      only rejected / superseded files, or files waiting for the next run
  MISSING         nothing sent, or every file sent was removed from the raw folder
  not expected    files sent for a unit that does not report that year (a district from 2025,
                  Kỳ Sơn after 2019): listed with the reason, never someone to call

Per file (`FileState.status`): loaded | superseded | rejected | pending (new or changed since the
published run: the next run reads it) | removed (gone from the raw folder; `in_warehouse` says
whether the warehouse still holds its rows until the next run).

JSON (`coop status --format json`), one object:
  raw_dir, raw_dir_exists, warehouse, published (bool), published_at, province_code, province_name,
  timezone ("Asia/Ho_Chi_Minh"),
  last_run: the latest published run {run_id, started_at, finished_at, status, files_seen,
            files_loaded, files_rejected, rows_loaded, rows_rejected} or null,
  later_run: a run after it that published nothing (unchanged / failed: {run_id, started_at,
             finished_at, status, message}) or null,
  current_year: the latest report year in the raw folder or the warehouse,
  focus_year: the year of "who to call" (`--year`, else current_year),
  years: [{year, level ("district" | "commune"), units_expected, units_received,
           units: [unit]}]  (every unit expected that year, the units files were sent for that
           do not report that year (expected false), and the province folder (level "province",
           unit_code null)),
  unit: {year, unit_code, unit_name, level, area_code, area_name, former_districts:
         [{district_code, district_name}] (communes of today; [] otherwise), expected, received,
         state, rows_loaded, rows_rejected, files: [file], superseded, superseded_sheets:
         [{source_file, sheet}], rejected, pending, removed (lists of source_file)},
  file: {source_file, status, ledger_status, in_warehouse, seen_at, loaded_at, modified_at,
         rows_loaded, rows_rejected, quarantine: {reason_code: rows}, reasons, superseded_sheets},
  missing: [{unit_code, unit_name, level, area_code, area_name, former_districts, state}]: the
           units expected in focus_year without a usable report (who to call),
  province_folder_missing: the province folder (annual plan) of focus_year has no usable file,
  pending_files: source files the next run will read (new or changed),
  other_files: [file] outside any year/unit folder (misplaced, unknown or ambiguous folder),
  error: why the warehouse or the reference could not be read, or null.
"""

from __future__ import annotations

import csv
import functools
import json
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from coop.reference import Unit
from coop.warehouse import queries

if TYPE_CHECKING:
    from rich.console import Console

    from coop.ingest.discover import FileIssue, RawFile
    from coop.reference import Reference

LOADED = "loaded"
SUPERSEDED = "superseded"
REJECTED = "rejected"
PENDING = "pending"  # in the raw folder, new or changed since the published run
REMOVED = "removed"

RECEIVED = "received"
NO_USABLE = "NO USABLE ROWS"
NOT_LOADED = "NOT LOADED"
MISSING = "MISSING"
NOT_EXPECTED = "not expected"
STATE_VI = {RECEIVED: "đã nhận", NO_USABLE: "không dòng hợp lệ", NOT_LOADED: "chưa nạp được",
            MISSING: "chưa nộp", NOT_EXPECTED: "không thuộc năm"}

# audit.files.status (coop.warehouse.load.ledger_rows) -> what it means here
_LEDGER_LOADED = {"new", "changed", "unchanged"}  # its rows are in the warehouse
_LEDGER = {"new": LOADED, "changed": LOADED, "unchanged": LOADED, "rejected": REJECTED,
           "superseded": SUPERSEDED, "removed": REMOVED}



# --------------------------------------------------------------------------- data
@dataclass
class FileState:
    source_file: str
    status: str  # loaded | superseded | rejected | pending | removed
    ledger_status: str | None = None  # audit.files.status; None when the warehouse never saw the file
    in_warehouse: bool = False  # the published warehouse holds rows of this path (maybe of an earlier version)
    seen_at: str | None = None  # when the published run that first saw this version finished (ISO, +07:00)
    loaded_at: str | None = None  # seen_at of a loaded file
    modified_at: str | None = None  # the file's modification time (ISO, +07:00)
    rows_loaded: int = 0
    rows_rejected: int = 0
    quarantine: dict[str, int] = field(default_factory=dict)  # reason_code -> quarantined rows
    reasons: list[str] = field(default_factory=list)
    superseded_sheets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class UnitYear:
    year: int
    unit_code: str | None  # None = the province folder
    unit_name: str
    level: str  # district | commune | province
    area_code: str | None = None  # former province (a district's own province)
    area_name: str | None = None
    former_districts: list[dict[str, str]] = field(default_factory=list)  # communes of today
    expected: bool = True
    files: list[FileState] = field(default_factory=list)

    def of(self, status: str) -> list[FileState]:
        return [f for f in self.files if f.status == status]

    @property
    def _current(self) -> list[FileState]:
        """Files still in the raw folder whose rows the warehouse holds (a changed one too:
        the warehouse keeps its earlier version until the next run)."""
        return [f for f in self.files if f.in_warehouse and f.status in (LOADED, PENDING)]

    @property
    def received(self) -> bool:
        return any(f.rows_loaded > 0 for f in self._current)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self._current)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self._current)

    @property
    def state(self) -> str:
        if not self.expected:
            return NOT_EXPECTED
        if self.received:
            return RECEIVED
        if self._current:
            return NO_USABLE
        if any(f.status != REMOVED for f in self.files):
            return NOT_LOADED
        return MISSING

    def brief(self) -> dict[str, Any]:
        return {"unit_code": self.unit_code, "unit_name": self.unit_name, "level": self.level,
                "area_code": self.area_code, "area_name": self.area_name,
                "former_districts": self.former_districts, "state": self.state}

    def as_dict(self) -> dict[str, Any]:
        d = {"year": self.year, **self.brief(), "expected": self.expected, "received": self.received,
             "rows_loaded": self.rows_loaded, "rows_rejected": self.rows_rejected,
             "files": [f.as_dict() for f in self.files]}
        for status in (SUPERSEDED, REJECTED, PENDING, REMOVED):
            d[status] = [f.source_file for f in self.of(status)]
        d["superseded_sheets"] = [{"source_file": f.source_file, "sheet": s}
                                  for f in self.files for s in f.superseded_sheets]
        return d


@dataclass
class Status:
    raw_dir: str
    warehouse: str
    published: bool
    raw_dir_exists: bool = True
    province_code: str = ""
    province_name: str = ""
    published_at: str | None = None
    last_run: dict[str, Any] | None = None
    later_run: dict[str, Any] | None = None
    current_year: int | None = None
    focus_year: int | None = None
    years: dict[int, list[UnitYear]] = field(default_factory=dict)
    other_files: list[FileState] = field(default_factory=list)
    error: str | None = None

    def units(self, year: int | None) -> list[UnitYear]:
        return [u for u in self.years.get(year, []) if u.level != "province"] if year is not None else []

    @property
    def missing(self) -> list[UnitYear]:
        """Units expected in focus_year without a usable report: who to call."""
        return [u for u in self.units(self.focus_year) if u.expected and not u.received]

    @property
    def province_folder_missing(self) -> bool:
        year = self.focus_year
        rows = [u for u in self.years.get(year, []) if u.level == "province"] if year is not None else []
        return bool(rows) and not rows[0].received

    @property
    def pending_files(self) -> list[str]:
        files = [f for us in self.years.values() for u in us for f in u.files] + self.other_files
        return sorted(f.source_file for f in files if f.status == PENDING)

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw_dir": self.raw_dir, "raw_dir_exists": self.raw_dir_exists, "warehouse": self.warehouse,
            "published": self.published, "published_at": self.published_at,
            "province_code": self.province_code, "province_name": self.province_name, "timezone": _zone_name(),
            "last_run": self.last_run, "later_run": self.later_run,
            "current_year": self.current_year, "focus_year": self.focus_year,
            "years": [{"year": y, "level": _level(y),
                       "units_expected": sum(1 for u in self.units(y) if u.expected),
                       "units_received": sum(1 for u in self.units(y) if u.expected and u.received),
                       "units": [u.as_dict() for u in us]} for y, us in sorted(self.years.items())],
            "missing": [u.brief() for u in self.missing],
            "province_folder_missing": self.province_folder_missing,
            "pending_files": self.pending_files,
            "other_files": [f.as_dict() for f in self.other_files],
            "error": self.error,
        }


# --------------------------------------------------------------------------- helpers
def _level(year: int) -> str:
    from coop.reference import REFORM_YEAR

    return "commune" if year >= REFORM_YEAR else "district"


def _nfc(path: str) -> str:
    return unicodedata.normalize("NFC", str(path))


def _zone_name() -> str:
    from coop.settings import local_zone

    return local_zone()


def zone_label() -> str:
    from coop.settings import zone_label as label

    return label()


def _vn(value: Any) -> datetime | None:
    """A stored time (naive = UTC) in the operators' zone (the `timezone` setting)."""
    from coop.settings import to_local

    return to_local(value)


def _iso(value: Any) -> str | None:
    t = _vn(value)
    return t.isoformat(timespec="seconds") if t else None


def when(value: Any, zone: bool = True) -> str:
    """'29/11/2026 08:15 (giờ Việt Nam, UTC+07:00)' (zone=False: '29/11/2026 08:15')."""
    from coop.settings import local_time

    return local_time(value, marker=zone)


@functools.lru_cache(maxsize=8)
def _lineage(path: Path) -> dict[str, tuple[str, ...]]:
    """new commune code -> its former district codes (commune_lineage.csv, the source of
    core.unit_lineage)."""
    out: dict[str, list[str]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                new, old = (row.get("new_commune_code") or "").strip(), (row.get("old_district_code") or "").strip()
                if new and old and old not in out.setdefault(new, []):
                    out[new].append(old)
    except FileNotFoundError:  # a reference folder of the district era only
        return {}
    return {k: tuple(sorted(v)) for k, v in out.items()}


def former_districts(reference: Reference, unit: Unit | None,
                     index: dict[str, Unit] | None = None) -> list[dict[str, str]]:
    """[{district_code, district_name}] a commune of today was formed from (the lineage rows
    whose new_commune_code is the commune); [] for a district. `index`: code -> unit of the
    reference (else `reference.unit_by_code`)."""
    if unit is None or unit.level != "commune":
        return []
    out = []
    for code in _lineage(Path(reference.directory) / "commune_lineage.csv").get(unit.code, ()):
        d = index.get(code) if index is not None else reference.unit_by_code(code)
        out.append({"district_code": code, "district_name": d.full_name if d is not None else code})
    return out


def _unit_row(reference: Reference, year: int, unit: Unit, expected: bool, index: dict[str, Unit]) -> UnitYear:
    return UnitYear(year=year, unit_code=unit.code, unit_name=unit.full_name, level=unit.level,
                    area_code=unit.area_code or None,
                    area_name=reference.area_name(unit.area_code) if unit.area_code else None,
                    former_districts=former_districts(reference, unit, index), expected=expected)


_PROVINCE = object()  # placement: the province folder


def _place_by_path(reference: Reference, source_file: str) -> tuple[int | None, Unit | object | None]:
    """(year, unit | _PROVINCE | None) of a file discovery did not turn into a RawFile, from
    the reference's own folder matching: the unit its folder names, or the one candidate of a
    rejected match (a district folder under 2025 -> that district, not expected that year)."""
    from coop.ingest.discover import MAX_YEAR, MIN_YEAR
    from coop.reference import REFORM_YEAR

    parts = PurePosixPath(source_file).parts
    year = int(parts[0]) if len(parts) > 1 and parts[0].isdigit() and len(parts[0]) == 4 else None
    if year is None or not (MIN_YEAR <= year <= MAX_YEAR):
        return None, None
    if len(parts) != 3:
        return year, None
    if reference.is_province_folder(parts[1]):
        return year, _PROVINCE
    match = reference.find_unit(parts[1], year)
    if match.unit is not None:
        return year, match.unit
    level = "commune" if year >= REFORM_YEAR else "district"
    cands = [u for u in match.candidates if u.level == level] or list(match.candidates)
    return year, (cands[0] if len(cands) == 1 else None)


# --------------------------------------------------------------------------- the published warehouse
@dataclass
class _Published:
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # NFC source_file -> audit.files row
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # latest published run's
    quarantine: dict[str, dict[str, int]] = field(default_factory=dict)  # source_file -> reason_code -> rows
    runs: list[dict[str, Any]] = field(default_factory=list)  # audit.runs, oldest first
    last_run: dict[str, Any] | None = None  # the latest published run


def _read_published(warehouse: Path) -> _Published:

    out = _Published()
    con = queries.connect_read_only(warehouse)
    try:
        tables = {f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
        if "audit.runs" in tables:
            cols = ("run_id", "started_at", "finished_at", "status", "files_seen", "files_loaded",
                    "files_rejected", "rows_loaded", "rows_rejected", "message")
            out.runs = [dict(zip(cols, r, strict=True)) for r in con.execute(
                f"SELECT {', '.join(cols)} FROM audit.runs ORDER BY started_at NULLS FIRST").fetchall()]
            published = [r for r in out.runs if r["status"] == "published"]
            out.last_run = published[-1] if published else None
        run_id = out.last_run["run_id"] if out.last_run else None
        if "audit.files" in tables:
            have = {r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'audit' "
                "AND table_name = 'files'").fetchall()}
            unit = "unit_code" if "unit_code" in have else "district_code AS unit_code"  # before the 2025 reform
            file_cols = ("source_file", "file_hash", "size", "modified_at", "status", "year", "unit_code",
                         "rows_loaded", "rows_rejected", "first_seen_run", "last_run")
            sel = ", ".join(unit if c == "unit_code" else c for c in file_cols)
            for r in con.execute(f"SELECT {sel} FROM audit.files").fetchall():
                rec = dict(zip(file_cols, r, strict=True))
                out.ledger[_nfc(rec["source_file"])] = rec
        # the current state is the latest published run's rows (earlier runs' are history)
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        if "audit.file_issues" in tables:
            for sf, sheet, code, reason, severity in con.execute(
                    f"SELECT source_file, sheet, reason_code, reason, severity FROM audit.file_issues {where} "
                    "ORDER BY source_file, sheet NULLS FIRST, reason_code", params).fetchall():
                out.issues.setdefault(_nfc(sf), []).append(
                    {"sheet": sheet, "reason_code": code, "reason": reason, "severity": severity})
        if "audit.rejected_rows" in tables:
            for sf, code, n in con.execute(
                    "SELECT source_file, reason_code, count(DISTINCT (coalesce(sheet, ''), row_number)) "
                    f"FROM audit.rejected_rows {where} GROUP BY ALL ORDER BY ALL", params).fetchall():
                out.quarantine.setdefault(_nfc(sf), {})[code] = int(n)
    finally:
        con.close()
    return out


def _seen_at(rec: dict[str, Any], runs: list[dict[str, Any]]) -> Any:
    """When the published run that first saw this version of the file finished: the ledger's
    last run for a file new or changed in it; else the first published run from the file's
    first run on that started after the file was last modified (its first run when unknown)."""
    by_id = {r["run_id"]: r for r in runs}
    last = by_id.get(rec.get("last_run"))
    if rec.get("status") in ("new", "changed") or rec.get("status") == "removed":
        return (last or {}).get("finished_at")
    first = by_id.get(rec.get("first_seen_run"))
    if first is None:
        return (last or {}).get("finished_at")
    modified, start = rec.get("modified_at"), first.get("started_at")
    for r in runs:
        if r["status"] != "published" or r.get("started_at") is None or (start and r["started_at"] < start):
            continue
        if last and last.get("started_at") and r["started_at"] > last["started_at"]:
            break
        if modified is None or r["started_at"] >= modified:
            return r.get("finished_at")
    return first.get("finished_at")


def _later_run(warehouse: Path, last: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run after the latest published one that published nothing (a no-op or a failure),
    from the run's own `.state/pending_runs.jsonl`."""
    from coop.run.store import read_pending_runs, state_dir
    from coop.warehouse.load import RunRecord

    later = []
    for p in read_pending_runs(state_dir(warehouse)):
        try:
            r = RunRecord.from_json(p)
        except (TypeError, ValueError):
            continue
        start = r.started_at.replace(tzinfo=None) if r.started_at.tzinfo is None else \
            r.started_at.astimezone(UTC).replace(tzinfo=None)
        if last is None or last.get("started_at") is None or start > last["started_at"]:
            later.append((start, r))
    if not later:
        return None
    start, r = max(later, key=lambda x: x[0])
    return {"run_id": r.run_id, "started_at": _iso(start), "finished_at": _iso(r.finished_at),
            "status": r.status, "message": r.message}


def _hashes(paths: dict[str, Path], warehouse: Path) -> dict[str, str]:
    """sha256 of each file, by the pipeline's own hashing and stat cache (coop.run.cache)."""
    from coop.run.store import hash_files, sha256_file, state_dir

    if not paths:
        return {}
    try:
        return {s: h.file_hash for s, h in hash_files(paths, state_dir(warehouse)).items()}
    except OSError:  # the warehouse folder is read-only for this user: hash without the stat cache
        out = {}
        for s, p in paths.items():
            try:
                out[s] = sha256_file(p)
            except OSError:
                continue
        return out


# --------------------------------------------------------------------------- assemble
def collect_status(raw_dir: Path, warehouse: Path, year: int | None = None,
                   reference: Reference | None = None) -> Status:
    """Everything `coop status` shows, as data. `year`: only that report year."""
    from coop.ingest.discover import MAX_YEAR, MIN_YEAR, discover
    from coop.reference import load_reference

    raw_dir, warehouse = Path(raw_dir), Path(warehouse)
    st = Status(raw_dir=str(raw_dir), warehouse=str(warehouse), published=warehouse.exists(),
                raw_dir_exists=raw_dir.is_dir())
    if reference is None:
        try:
            reference = load_reference()
        except Exception as exc:  # noqa: BLE001 - a bad province setting or reference folder: say so
            st.error = f"Không đọc được dữ liệu tham chiếu đơn vị (cannot load the reference): {exc}"
            return st
    st.province_code, st.province_name = reference.province_code, reference.province_name
    index = {u.code: u for u in reference.units}

    pub = _Published()
    if st.published:
        try:
            pub = _read_published(warehouse)
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: say so, still show the raw folder
            st.error = f"Không đọc được kho dữ liệu (cannot read the published warehouse) {warehouse}: {exc}"
    if pub.last_run:
        st.last_run = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in pub.last_run.items()}
        st.published_at = _iso(pub.last_run.get("finished_at"))
    if st.published:
        st.later_run = _later_run(warehouse, pub.last_run)

    years_filter = (year, year) if year is not None else None
    raw_files, issues = discover(raw_dir, reference, years_filter)
    in_scope = (lambda y: y == year) if year is not None else (lambda y: True)  # noqa: E731
    ledger = {sf: rec for sf, rec in pub.ledger.items() if rec.get("year") is None or in_scope(rec["year"])}

    # what the raw folder holds now: discovery's files and issues
    on_disk: dict[str, RawFile] = {_nfc(r.source_file): r for r in raw_files}
    disk_issues: dict[str, list[FileIssue]] = {}
    for i in issues:
        disk_issues.setdefault(_nfc(i.source_file), []).append(i)
    known = {sf: raw_dir / r.source_file for sf, r in on_disk.items()
             if sf in ledger and ledger[sf].get("status") != "removed"}
    hashes = _hashes(known, warehouse)

    def from_ledger(sf: str, rec: dict[str, Any], status: str) -> FileState:
        iss = pub.issues.get(sf, [])
        seen = _seen_at(rec, pub.runs)
        return FileState(
            source_file=sf, status=status, ledger_status=rec.get("status"),
            in_warehouse=rec.get("status") in _LEDGER_LOADED, seen_at=_iso(seen),
            loaded_at=_iso(seen) if status == LOADED else None, modified_at=_iso(rec.get("modified_at")),
            rows_loaded=int(rec.get("rows_loaded") or 0), rows_rejected=int(rec.get("rows_rejected") or 0),
            quarantine=dict(pub.quarantine.get(sf, {})),
            reasons=[_issue_text(i) for i in iss if not (i["sheet"] and i["severity"] == SUPERSEDED)],
            superseded_sheets=[i["sheet"] for i in iss if i["sheet"] and i["severity"] == SUPERSEDED])

    files: dict[str, FileState] = {}
    for sf, raw in on_disk.items():
        rec = ledger.get(sf)
        if rec is None or rec.get("status") == "removed":
            files[sf] = FileState(sf, PENDING, ledger_status=rec.get("status") if rec else None,
                                  modified_at=_iso(raw.modified_at),
                                  reasons=["chưa nạp, chờ lần chạy tới (new: not loaded yet)"])
        elif sf in hashes and hashes[sf] != rec.get("file_hash"):
            f = from_ledger(sf, rec, PENDING)
            f.modified_at, f.loaded_at = _iso(raw.modified_at), None
            f.reasons = ["đã sửa sau lần nạp gần nhất, chờ lần chạy tới (changed since it was loaded)"]
            f.quarantine, f.superseded_sheets = {}, []
            files[sf] = f
        else:
            files[sf] = from_ledger(sf, rec, _LEDGER.get(rec["status"], REJECTED))
    for sf, iss in disk_issues.items():  # rejected by discovery, whatever the ledger says
        rec = ledger.get(sf)
        f = from_ledger(sf, rec, REJECTED) if rec is not None and rec.get("status") != "removed" \
            else FileState(sf, REJECTED)
        f.in_warehouse, f.loaded_at, f.rows_loaded, f.rows_rejected = False, None, 0, 0
        f.reasons = [i.reason for i in iss]
        files[sf] = f
    for sf, rec in ledger.items():  # in the warehouse's ledger, no longer in the raw folder
        if sf in files:
            continue
        if rec.get("status") == "removed":
            f = from_ledger(sf, rec, REMOVED)
            f.reasons = [f"đã xoá khỏi thư mục; lần chạy lúc {when(_seen_at(rec, pub.runs))} đã bỏ khỏi kho "
                         "(removed from the raw folder and from the warehouse)"]
        elif not st.raw_dir_exists:  # nothing to compare with: the ledger as it is
            f = from_ledger(sf, rec, _LEDGER.get(rec["status"], REJECTED))
        else:
            f = from_ledger(sf, rec, REMOVED)
            # the next run drops it only when it publishes: a unit left without any file makes
            # the publish guard refuse (unit_gone) until the operator confirms with --allow-shrink
            f.reasons = ["đã xoá khỏi thư mục; kho còn giữ số liệu của tệp cho tới lần chạy công bố tiếp theo "
                         "(nếu đơn vị không còn tệp nào, lần chạy sẽ từ chối công bố: chạy `coop run --allow-shrink` "
                         "khi việc gỡ tệp là có chủ ý) (removed from the raw folder; the warehouse keeps its rows "
                         "until a run publishes — a unit left without files needs "
                         "`coop run --allow-shrink`)"] + f.reasons
        files[sf] = f

    # place every file under (year, unit)
    placed: dict[tuple[int, str], list[FileState]] = {}
    years: set[int] = set()
    for sf in sorted(files):
        disk, rec = on_disk.get(sf), ledger.get(sf)
        y: int | None
        unit: Unit | object | None  # a unit, _PROVINCE (the province folder) or None (not placed)
        if disk is not None:
            y, unit = disk.year, (disk.unit if disk.unit is not None else _PROVINCE)
        elif rec is not None and rec.get("unit_code") in index:
            y, unit = rec.get("year"), index[rec["unit_code"]]
        else:
            y, unit = _place_by_path(reference, sf)
            if y is None and rec is not None:
                y = rec.get("year")
        if y is not None:
            years.add(int(y))
        if y is None or unit is None:
            st.other_files.append(files[sf])
            continue
        key = (int(y), unit.code if isinstance(unit, Unit) else "")  # "" = the province folder
        placed.setdefault(key, []).append(files[sf])
    if year is not None:
        years = {year}
    elif st.raw_dir_exists:
        years |= {int(p.name) for p in raw_dir.iterdir()
                  if p.is_dir() and p.name.isdigit() and len(p.name) == 4 and MIN_YEAR <= int(p.name) <= MAX_YEAR}

    for y in sorted(years):
        rows = []
        expected = reference.units_expected(y)
        codes = {u.code for u in expected}
        for u in expected:
            r = _unit_row(reference, y, u, True, index)
            r.files = placed.pop((y, u.code), [])
            rows.append(r)
        for (py, code) in sorted(k for k in placed if k[0] == y and k[1] and k[1] not in codes):
            r = _unit_row(reference, y, index[code], False, index)
            r.files = placed.pop((py, code))
            rows.append(r)
        prov = UnitYear(y, None, f"Tỉnh {reference.province_name} (thư mục province)", "province",
                        files=placed.pop((y, ""), []))
        rows.append(prov)
        st.years[y] = rows
    for fs in placed.values():
        st.other_files.extend(fs)
    st.current_year = max(years) if years else None
    st.focus_year = year if year is not None else st.current_year
    return st


def _issue_text(issue: dict[str, Any]) -> str:
    text = issue.get("reason") or issue.get("reason_code") or ""
    return f"trang '{issue['sheet']}': {text}" if issue.get("sheet") else text


# --------------------------------------------------------------------------- output
def _short(sf: str) -> str:
    return PurePosixPath(sf).name


def _area_text(u: UnitYear) -> str:
    """'157 Huyện Lạc Sơn; tỉnh Hòa Bình cũ' (commune of today), 'tỉnh Hòa Bình' (district)."""
    if u.level == "commune":
        districts = ", ".join(f"{d['district_code']} {d['district_name']}" for d in u.former_districts)
        return "; ".join(x for x in (districts, f"tỉnh {u.area_name} cũ" if u.area_name else "") if x)
    return f"tỉnh {u.area_name}" if u.area_name else ""


def _who_text(u: UnitYear) -> str:
    """'05266 Xã Lạc Sơn — huyện cũ: 157 Huyện Lạc Sơn; tỉnh cũ: Hòa Bình'."""
    head = f"{u.unit_code} {u.unit_name}"
    if u.level == "commune":
        parts = []
        if u.former_districts:
            parts.append("huyện cũ: " + ", ".join(f"{d['district_code']} {d['district_name']}"
                                                 for d in u.former_districts))
        if u.area_name:
            parts.append(f"tỉnh cũ: {u.area_name}")
        head += (" — " + "; ".join(parts)) if parts else ""
    elif u.area_name:
        head += f" — tỉnh {u.area_name}"
    if u.state != MISSING:
        head += f" [{STATE_VI[u.state]} ({u.state})]"
    return head


def _notes(u: UnitYear) -> list[str]:
    notes = []
    for f in u.files:
        name = _short(f.source_file)
        if f.status == SUPERSEDED:
            notes.append(f"bị thay thế (superseded): {name}")
        elif f.status == REJECTED:
            notes.append(f"bị từ chối (rejected): {name}" + (f" — {'; '.join(f.reasons)}" if f.reasons else ""))
        elif f.status == PENDING:
            label = "đã sửa, chờ lần chạy tới (changed, waiting for next run)" if f.ledger_status in _LEDGER \
                and f.ledger_status != "removed" else "chờ lần chạy tới (waiting for next run)"
            notes.append(f"{label}: {name}")
        elif f.status == REMOVED:
            notes.append(f"{f.reasons[0] if f.reasons else 'đã xoá (removed)'}: {name}")
        else:
            notes.extend(f"{name}: {r}" for r in f.reasons if r)
            if f.quarantine:
                notes.append(f"{name}: cách ly (quarantined) "
                             + ", ".join(f"{c} {n}" for c, n in sorted(f.quarantine.items())))
        notes.extend(f"{name}: trang '{s}' bị thay thế (superseded sheet)" for s in f.superseded_sheets)
    return notes


def render_text(status: Status, console: Console, full: bool | None = None) -> None:
    """Tables per year. The focus year (`--year`, else the current year) lists every unit;
    other years list the units with files and summarise the missing ones (`full=True`: every
    unit of every year)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    if status.published:
        run = status.last_run or {}
        line = f"[bold]Kho dữ liệu (warehouse)[/] {escape(status.warehouse)}: "
        if run:
            line += (f"công bố lần cuối (last published) {escape(when(status.published_at))}, "
                     f"lần chạy (run) {escape(str(run.get('run_id')))}")
        else:
            line += "chưa có lần chạy nào được ghi (no published run recorded)"
        console.print(line)
        if status.later_run:
            lr = status.later_run
            console.print(Text(f"Lần chạy sau đó (later run) {lr['run_id']} lúc {when(lr['started_at'])}: "
                               f"{lr['status']}" + (f" — {lr['message']}" if lr.get("message") else ""),
                               style="yellow" if lr["status"] != "unchanged" else ""))
    else:
        console.print(f"[bold yellow]Kho dữ liệu {escape(status.warehouse)} chưa được công bố lần nào "
                      "(the warehouse has not been published yet).[/]")
    if status.error:
        console.print(f"[bold red]{escape(status.error)}[/]")
    console.print(f"Thư mục báo cáo (raw folder) {escape(status.raw_dir)}"
                  + ("" if status.raw_dir_exists else " [bold red]không tồn tại (not found)[/]"))
    if status.province_name:
        console.print(f"Tỉnh (province) {escape(status.province_code)} {escape(status.province_name)}; "
                      f"giờ hiển thị: {zone_label()}")

    for year, rows in sorted(status.years.items()):
        focus = year == status.focus_year
        show_all = focus if full is None else full
        level = _level(year)
        units = [u for u in rows if u.level != "province"]
        expected = [u for u in units if u.expected]
        got = sum(1 for u in expected if u.received)
        what = "xã, phường (communes of today)" if level == "commune" else "huyện (districts)"
        title = f"{year} — {what}: {got}/{len(expected)} đã nhận (received)"
        if year == status.current_year:
            title += " — năm hiện tại (current year)"
        t = Table(title=title, title_justify="left", show_lines=False)
        keep = {"no_wrap": True}
        for col, kw in (("mã (code)", keep), ("đơn vị (unit)", keep),
                        ("huyện cũ; tỉnh cũ (former district; province)" if level == "commune" else "tỉnh (province)",
                         {"min_width": 24}),
                        ("tình trạng (state)", keep), ("tệp, nạp lúc (file, loaded at UTC+7)", {"min_width": 20}),
                        ("dòng (rows)", {"justify": "right"}), ("cách ly (quarantined)", {"justify": "right"})):
            t.add_column(col, **kw)
        shown = 0
        notes: list[tuple[UnitYear, str]] = []
        for u in rows:
            if not show_all and not u.files:
                continue
            shown += 1
            state = u.state
            current = year == status.focus_year
            style_state = {RECEIVED: "green", NOT_EXPECTED: "yellow"}.get(
                state, "bold red" if current else "yellow")
            loaded = [f for f in u.files if f.status in (LOADED, PENDING) and f.in_warehouse]
            file_lines = "\n".join(
                _short(f.source_file) + (f" ({when(f.seen_at, zone=False)})" if f.seen_at else "") for f in loaded)
            alarm = current and u.expected and not u.received and u.level != "province"
            t.add_row(Text(u.unit_code or "province"), Text(u.unit_name), Text(_area_text(u)),
                      Text(f"{STATE_VI[state]} ({state})", style=style_state), Text(file_lines or "—"),
                      f"{u.rows_loaded:,}" if loaded else "—", f"{u.rows_rejected:,}" if loaded else "—",
                      style="bold red" if alarm else None)
            notes += [(u, n) for n in _notes(u)]
        if shown:
            console.print(t)
        else:
            console.print(Text(title, style="italic"))
        if notes:  # below the table, one line each: the reasons are long Vietnamese sentences
            console.print(f"Ghi chú năm {year} (notes):")
            for u, n in notes:
                console.print(Text(f"  {u.unit_code or 'province'} {u.unit_name} — {n}"), soft_wrap=True)
        if not show_all:
            missing = [u for u in expected if not u.received]
            if missing:
                names = ", ".join(f"{u.unit_code} {u.unit_name}" for u in missing[:12])
                more = f" … và {len(missing) - 12} đơn vị khác (and more: coop status --year {year})" \
                    if len(missing) > 12 else ""
                console.print(Text(f"  Năm {year} chưa có báo cáo dùng được (no usable report): {names}{more}",
                                   style="yellow"), soft_wrap=True)

    if status.other_files:
        console.print("[bold]Tệp ngoài mọi thư mục năm/đơn vị hợp lệ (files outside any known year/unit folder):[/]")
        for f in status.other_files:
            console.print(Text(f"  {f.source_file} ({f.status}{': ' + f.reasons[0] if f.reasons else ''})"),
                          soft_wrap=True)
    pending = status.pending_files
    if pending:
        console.print(f"[bold yellow]{len(pending)} tệp trong thư mục chưa được nạp, chờ lần chạy tới "
                      "(file(s) not loaded yet; next `coop run`):[/]")
        for sf in pending:
            console.print(Text(f"  {sf}"))
    if status.focus_year is None:
        return
    y = status.focus_year
    expected = [u for u in status.units(y) if u.expected]
    missing = status.missing
    if missing:
        console.print(f"[bold red]Cần gọi (who to call) — chưa có báo cáo dùng được năm {y}: "
                      f"{len(missing)}/{len(expected)} đơn vị (no usable report):[/]")
        for u in missing:
            console.print(Text(f"  {_who_text(u)}", style="bold red"), soft_wrap=True)
    else:
        console.print(f"[green]Tất cả {len(expected)} đơn vị đã nộp báo cáo năm {y} (every unit has reported).[/]")
    if status.province_folder_missing:
        console.print(Text(f"Kế hoạch năm {y} của tỉnh (thư mục province, biểu CHI_TIEU): chưa có "
                           "(the province's annual plan has not been received).", style="yellow"))


def status_command(raw_dir: Path, warehouse: Path, fmt: str = "text", year: int | None = None) -> int:
    """`coop status`. Exit 0 (it is a report, not a check); 1 when the warehouse exists but
    cannot be read (a damaged file: the advice of `coop.warehouse.guards`), or the reference cannot be loaded."""
    from coop.warehouse.guards import warehouse_problem

    problem = warehouse_problem(Path(warehouse))
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    status = collect_status(Path(raw_dir), Path(warehouse), year=year)
    if fmt == "json":
        sys.stdout.write(json.dumps(status.as_dict(), ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        from rich.console import Console

        tty = sys.stdout.isatty()
        render_text(status, Console(highlight=False, width=None if tty else 200))
    return 1 if status.error else 0
