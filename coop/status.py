"""`coop status`: what was received per year and district, when, and what was rejected.

Reads the published warehouse READ_ONLY (its ledger `audit.files`, `audit.file_issues`,
`audit.rejected_rows`, `audit.runs`, the `raw.*` lineage and `ref.districts`) and looks at
what the raw folder holds now, to say which files arrived but are not loaded yet. It never
takes the run lock and keeps the warehouse open only for the few queries it needs, so it
works while a run is going and never locks analysts or the runner out.

For each report year x district valid that year (plus the province folder): received or
missing, which file(s), when loaded, rows loaded and quarantined, superseded and rejected
files, files waiting for the next run. Districts missing in the latest year are "who to
call".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

SUPERSEDED = "superseded"
REJECTED = "rejected"
LOADED = "loaded"
PENDING = "pending"  # in the raw folder, new or changed since the last published run
PROVINCE = "province"

# ledger statuses (audit.files.status) that mean "its rows are in the warehouse"
_LOADED_STATES = {"loaded", "new", "changed", "unchanged", "ok", "partial", "accepted", "current"}
_GONE_STATES = {"removed", "deleted", "missing"}


@dataclass
class FileState:
    source_file: str
    status: str  # loaded | superseded | rejected | pending
    loaded_at: str | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    superseded_sheets: list[str] = field(default_factory=list)  # sheets replaced by a resubmission


@dataclass
class DistrictYear:
    year: int
    district_code: str | None  # None = province folder
    district_name: str
    received: bool = False
    files: list[FileState] = field(default_factory=list)
    expected: bool = True  # False: the district did not exist that year (files for it are errors)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files if f.status == LOADED)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files if f.status == LOADED)

    def of(self, status: str) -> list[FileState]:
        return [f for f in self.files if f.status == status]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows_loaded"] = self.rows_loaded
        d["rows_rejected"] = self.rows_rejected
        d["superseded"] = [f.source_file for f in self.of(SUPERSEDED)]
        d["superseded_sheets"] = [
            {"source_file": f.source_file, "sheet": sh} for f in self.files for sh in f.superseded_sheets
        ]
        d["rejected"] = [f.source_file for f in self.of(REJECTED)]
        d["pending"] = [f.source_file for f in self.of(PENDING)]
        return d


@dataclass
class Status:
    raw_dir: str
    warehouse: str
    published: bool
    published_at: str | None
    last_run: dict[str, Any] | None
    current_year: int | None
    years: dict[int, list[DistrictYear]]
    other_files: list[FileState]  # files outside any known year x district (misplaced, unknown)
    error: str | None = None

    @property
    def missing_current(self) -> list[DistrictYear]:
        if self.current_year is None:
            return []
        return [d for d in self.years.get(self.current_year, []) if d.expected and not d.received]

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw_dir": self.raw_dir,
            "warehouse": self.warehouse,
            "published": self.published,
            "published_at": self.published_at,
            "last_run": self.last_run,
            "current_year": self.current_year,
            "years": [
                {"year": y, "districts": [d.as_dict() for d in ds]} for y, ds in sorted(self.years.items())
            ],
            "missing_current_year": [
                {"district_code": d.district_code, "district_name": d.district_name} for d in self.missing_current
            ],
            "pending_files": [
                f.source_file for ds in self.years.values() for d in ds for f in d.of(PENDING)
            ]
            + [f.source_file for f in self.other_files if f.status == PENDING],
            "other_files": [asdict(f) for f in self.other_files],
            "error": self.error,
        }


# --------------------------------------------------------------------------- helpers
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", str(text)).replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in text if unicodedata.category(c) != "Mn").lower()
    text = re.sub(r"[\s\-_.]+", " ", text).strip()
    text = re.sub(r"^(huyen|thanh pho|tp|thi xa)\s+", "", text)
    return text.replace(" ", "")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="seconds")
    return str(value)


def _valid_in(year: int, valid_from: Any, valid_to: Any) -> bool:
    end = date(year, 12, 31)
    if valid_from is not None and valid_from > end:
        return False
    return valid_to is None or valid_to > end  # valid_to is exclusive


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_reference_districts() -> list[tuple[str, str, Any, Any]]:
    """The project's reference list, when the warehouse has none (never published)."""
    import csv

    from coop.paths import REFERENCE_DIR

    path = REFERENCE_DIR / "districts.csv"
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            vf = row.get("valid_from") or None
            vt = row.get("valid_to") or None
            out.append(
                (
                    row["district_code"].strip(),
                    row.get("district_name", "").strip(),
                    date.fromisoformat(vf) if vf else None,
                    date.fromisoformat(vt) if vt else None,
                )
            )
    return out


def _table_columns(con, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


# --------------------------------------------------------------------------- reading the warehouse
@dataclass
class _Published:
    districts: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # source_file -> row
    file_year_district: dict[str, tuple[int | None, str | None]] = field(default_factory=dict)
    rows_loaded: dict[str, int] = field(default_factory=dict)
    rows_rejected: dict[str, int] = field(default_factory=dict)
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_run: dict[str, Any] | None = None
    run_times: dict[str, Any] = field(default_factory=dict)  # run_id -> finished (in run order)
    loaded_run: dict[str, str] = field(default_factory=dict)  # source_file -> run that loaded its rows


def _read_published(warehouse: Path) -> _Published:
    import duckdb

    out = _Published()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {
            f"{s}.{t}" for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        if "ref.districts" in tables:
            out.districts = con.execute(
                "SELECT district_code, district_name, valid_from, valid_to FROM ref.districts ORDER BY district_code"
            ).fetchall()

        if "audit.runs" in tables:
            cols = _table_columns(con, "audit", "runs")
            sel = [c for c in ("run_id", "started_at", "finished_at", "status", "files_seen", "files_loaded",
                               "rows_loaded", "rows_rejected") if c in cols]
            rows = con.execute(
                f"SELECT {', '.join(sel)} FROM audit.runs ORDER BY started_at NULLS FIRST"
            ).fetchall()
            for r in rows:
                rec = dict(zip(sel, r))
                out.run_times[str(rec.get("run_id"))] = rec.get("finished_at") or rec.get("started_at")
            recs = [dict(zip(sel, r)) for r in rows]
            good = [r for r in recs if str(r.get("status") or "").lower() in ("published", "unchanged", "success")]
            last = (good or recs)[-1] if recs else None
            if last:
                out.last_run = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in last.items()}

        # rows per source file, the file's year/district and the run that loaded it (raw.* lineage)
        for t in ("raw.htx", "raw.tht", "raw.ho_tro", "raw.chi_tieu"):
            if t not in tables:
                continue
            for sf, year, dc, run, n in con.execute(
                f"SELECT source_file, any_value(year), any_value(district_code), max(run_id), count(*) "
                f"FROM {t} GROUP BY source_file"
            ).fetchall():
                sf = _unicode_key(sf)
                out.rows_loaded[sf] = out.rows_loaded.get(sf, 0) + int(n)
                out.file_year_district.setdefault(sf, (year, dc))
                if run is not None:
                    out.loaded_run.setdefault(sf, str(run))

        if "audit.rejected_rows" in tables:
            cols = _table_columns(con, "audit", "rejected_rows")
            where = ""
            if "audit.files" in tables and "file_hash" in cols and "file_hash" in _table_columns(con, "audit", "files"):
                where = " WHERE (source_file, file_hash) IN (SELECT source_file, file_hash FROM audit.files)"
            for sf, n in con.execute(
                "SELECT source_file, count(DISTINCT (coalesce(sheet, ''), row_number)) "
                f"FROM audit.rejected_rows{where} GROUP BY source_file"
            ).fetchall():
                out.rows_rejected[_unicode_key(sf)] = int(n)

        if "audit.files" in tables:  # the ledger: the current state of every raw file
            cols = _table_columns(con, "audit", "files")
            sel = [c for c in ("source_file", "file_hash", "size", "modified_at", "status", "first_seen_run",
                               "last_run", "year", "district_code", "rows_loaded", "rows_rejected") if c in cols]
            for r in con.execute(f"SELECT {', '.join(sel)} FROM audit.files").fetchall():
                rec = dict(zip(sel, r))
                sf = rec["source_file"] = _unicode_key(rec["source_file"])
                out.ledger[sf] = rec
                if "year" in rec:
                    out.file_year_district[sf] = (rec.get("year"), rec.get("district_code"))
                if rec.get("rows_loaded") is not None:
                    out.rows_loaded[sf] = int(rec["rows_loaded"])
                if rec.get("rows_rejected") is not None:
                    out.rows_rejected[sf] = int(rec["rows_rejected"])

        if "audit.file_issues" in tables:
            # issues accumulate per run; the current state is the rows of the latest published run
            cols = _table_columns(con, "audit", "file_issues")
            sel = [c for c in ("source_file", "sheet", "reason_code", "reason", "severity", "run_id") if c in cols]
            where, params = "", []
            if "run_id" in cols and out.last_run and out.last_run.get("run_id") is not None:
                where, params = " WHERE run_id = ?", [str(out.last_run["run_id"])]
            for r in con.execute(f"SELECT {', '.join(sel)} FROM audit.file_issues{where}", params).fetchall():
                rec = dict(zip(sel, r))
                rec["source_file"] = _unicode_key(rec["source_file"])
                out.issues.setdefault(rec["source_file"], []).append(rec)
    finally:
        con.close()
    return out


def _issue_kind(issue: dict[str, Any]) -> str | None:
    code = (issue.get("reason_code") or "").lower()
    sev = (issue.get("severity") or "").lower()
    reason = (issue.get("reason") or "").lower()
    if sev == SUPERSEDED or code == SUPERSEDED or "[superseded]" in reason:
        return SUPERSEDED
    if sev == "ignored" or code == "unrecognized_sheet" or "[unrecognized_sheet]" in reason:
        return "ignored"
    if issue.get("sheet"):
        return "sheet"  # one sheet rejected: the file itself may still have loaded
    return REJECTED


# --------------------------------------------------------------------------- the raw folder
def _raw_files(raw_dir: Path) -> list[tuple[str, Path]]:
    if not raw_dir.is_dir():
        return []
    out = []
    for root, dirs, files in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.startswith("~$"):
                continue
            p = Path(root) / name
            out.append((PurePosixPath(*p.relative_to(raw_dir).parts).as_posix(), p))
    return out


def _usable(files: list[FileState]) -> bool:
    """A usable report: at least one loaded file with at least one row loaded."""
    return any(f.status == LOADED and f.rows_loaded > 0 for f in files)


def _unicode_key(path: str) -> str:
    return unicodedata.normalize("NFC", path)


# --------------------------------------------------------------------------- assemble
def collect_status(raw_dir: Path, warehouse: Path) -> Status:
    """Everything `coop status` shows, as data."""
    raw_dir, warehouse = Path(raw_dir), Path(warehouse)
    published = warehouse.exists()
    pub = _Published()
    error = None
    if published:
        try:
            pub = _read_published(warehouse)
        except Exception as exc:  # a corrupt or foreign file: say so, still show the raw folder
            error = f"Cannot read the published warehouse {warehouse}: {exc}"
    districts = pub.districts or _load_reference_districts()
    by_fold: dict[str, str] = {}
    names: dict[str, str] = {}
    for code, name, _vf, _vt in districts:
        names[code] = name
        by_fold[_fold(code)] = code
        by_fold[_fold(name)] = code

    try:  # the project's own folder-name matching (coop.reference), when present
        from coop.reference import load_reference

        matcher = load_reference()
    except Exception:  # noqa: BLE001
        matcher = None

    def place(source_file: str) -> tuple[int | None, str | None, bool]:
        """(year, district_code, known) of a path relative to the raw folder."""
        if source_file in pub.file_year_district:
            y, dc = pub.file_year_district[source_file]
            if dc is not None:  # NULL means the province folder, or a folder that matched nothing
                return (int(y) if y is not None else None), dc, True
        parts = PurePosixPath(source_file).parts
        if len(parts) != 3 or not re.fullmatch(r"\d{4}", parts[0]):
            return None, None, False
        if matcher is not None:
            try:
                if matcher.is_province_folder(parts[1]):
                    return int(parts[0]), None, True
                d = matcher.find_district(parts[1])
                return int(parts[0]), (d.code if d else None), d is not None
            except Exception:  # noqa: BLE001 - fall back to the simple matcher below
                pass
        folder = _fold(parts[1])
        if folder in ("province", "tinh"):
            return int(parts[0]), None, True
        code = by_fold.get(folder)
        return int(parts[0]), code, code is not None

    # the raw folder now, compared with the ledger
    on_disk = {_unicode_key(sf): p for sf, p in _raw_files(raw_dir)}
    ledger = {_unicode_key(k): v for k, v in pub.ledger.items()}

    files: dict[str, FileState] = {}
    for sf, rec in ledger.items():
        status_ = str(rec.get("status") or LOADED).lower()
        if status_ in _GONE_STATES:
            continue
        kinds = [_issue_kind(i) for i in pub.issues.get(sf, [])]
        if status_ == SUPERSEDED:
            st = SUPERSEDED
        elif status_ in (REJECTED, "unusable", "failed"):
            st = REJECTED
        elif status_ in _LOADED_STATES:
            st = LOADED
        else:
            st = SUPERSEDED if SUPERSEDED in kinds else REJECTED if REJECTED in kinds else LOADED
        run = pub.loaded_run.get(sf) or rec.get("last_run") or rec.get("first_seen_run")
        loaded_at = pub.run_times.get(str(run)) if run is not None else None
        files[sf] = FileState(
            source_file=sf,
            status=st,
            loaded_at=_iso(loaded_at),
            rows_loaded=pub.rows_loaded.get(sf, 0),
            rows_rejected=pub.rows_rejected.get(sf, 0),
            reasons=[i.get("reason") or i.get("reason_code") or "" for i in pub.issues.get(sf, [])],
            superseded_sheets=[i["sheet"] for i in pub.issues.get(sf, [])
                               if i.get("sheet") and _issue_kind(dict(i, sheet=None)) == SUPERSEDED],
        )
    # files with rows but no ledger entry (older warehouse without audit.files)
    for sf, n in pub.rows_loaded.items():
        key = _unicode_key(sf)
        if key not in files:
            files[key] = FileState(source_file=key, status=LOADED, rows_loaded=n,
                                   rows_rejected=pub.rows_rejected.get(sf, 0))
    for sf, issues in pub.issues.items():
        key = _unicode_key(sf)
        if key not in files and (not on_disk or key in on_disk):
            kinds = [_issue_kind(i) for i in issues]
            st = SUPERSEDED if SUPERSEDED in kinds else REJECTED if REJECTED in kinds else LOADED
            files[key] = FileState(source_file=key, status=st, reasons=[i.get("reason") or "" for i in issues])

    # what is on disk but new or changed since the published run
    for sf, path in on_disk.items():
        rec = ledger.get(sf)
        changed = rec is None
        if rec is not None and rec.get("file_hash"):
            try:
                st = path.stat()
            except OSError:
                continue
            same_size = rec.get("size") is None or int(rec["size"]) == st.st_size
            changed = (not same_size) or _sha256(path) != rec["file_hash"]
        elif rec is None and sf in files:
            changed = False  # known from the lineage only
        if changed:
            prev = files.get(sf)
            files[sf] = FileState(source_file=sf, status=PENDING,
                                  reasons=["changed since it was loaded"] if prev else ["not loaded yet"])
    # a file gone from the raw folder is still in the warehouse until the next run: say so
    if raw_dir.is_dir():
        for sf, f in files.items():
            if sf not in on_disk and f.status != PENDING:
                f.reasons.append("removed from the raw folder; the next run drops it")

    # years: the raw folder's and the warehouse's
    years: set[int] = set()
    placed: dict[tuple[int, str | None], list[FileState]] = {}
    other: list[FileState] = []
    for sf in sorted(files):
        y, dc, known = place(sf)
        if y is not None:
            years.add(y)
        if y is None or not known:
            other.append(files[sf])
            continue
        placed.setdefault((y, dc), []).append(files[sf])
    if raw_dir.is_dir():
        for child in raw_dir.iterdir():
            if child.is_dir() and re.fullmatch(r"\d{4}", child.name):
                years.add(int(child.name))

    table: dict[int, list[DistrictYear]] = {}
    for y in sorted(years):
        rows = []
        valid_codes = {c for c, _n, vf, vt in districts if _valid_in(y, vf, vt)}
        for code, name, vf, vt in districts:
            fs = placed.pop((y, code), [])
            if code not in valid_codes and not fs:
                continue
            rows.append(DistrictYear(y, code, name, received=_usable(fs), files=fs,
                                     expected=code in valid_codes))
        fs = placed.pop((y, None), [])
        rows.append(DistrictYear(y, None, "Tỉnh (province folder)", received=_usable(fs),
                                 files=fs))
        table[y] = rows
    for fs in placed.values():  # a district code not in the list
        other.extend(fs)

    published_at = None
    if published:
        published_at = _iso(datetime.fromtimestamp(warehouse.stat().st_mtime, tz=timezone.utc))
    return Status(
        raw_dir=str(raw_dir),
        warehouse=str(warehouse),
        published=published,
        published_at=published_at,
        last_run=pub.last_run,
        current_year=max(years) if years else None,
        years=table,
        other_files=other,
        error=error,
    )


# --------------------------------------------------------------------------- output
def _when(iso: str) -> str:
    """'2026-11-26T23:06:37+00:00' -> '2026-11-26 23:06 UTC' (text output only)."""
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(iso)


def _short(sf: str) -> str:
    return PurePosixPath(sf).name


def render_text(status: Status, console) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    if status.published:
        run = status.last_run or {}
        console.print(
            f"[bold]Warehouse[/] {escape(status.warehouse)}: last published {status.published_at}"
            + (f" by run {escape(str(run.get('run_id')))} ({escape(str(run.get('status')))})" if run.get("run_id") else "")
        )
    else:
        console.print(f"[bold yellow]Warehouse {escape(status.warehouse)} has not been published yet.[/]")
    if status.error:
        console.print(f"[bold red]{escape(status.error)}[/]")
    console.print(f"Raw folder {escape(status.raw_dir)}")

    for year, rows in sorted(status.years.items()):
        current = year == status.current_year
        t = Table(title=f"{year}" + (" (current year)" if current else ""), title_justify="left", show_lines=False)
        for col, kw in (("district", {}), ("name", {}), ("state", {}), ("files (loaded at)", {}),
                        ("rows", {"justify": "right"}), ("quarantined", {"justify": "right"}), ("notes", {})):
            t.add_column(col, **kw)
        for d in rows:
            code = d.district_code or PROVINCE
            if not d.expected:
                state = Text("not expected", style="yellow")
            elif d.received:
                state = Text("received", style="green")
            elif d.of(LOADED):
                state = Text("NO USABLE ROWS", style="bold red" if current else "yellow")
            elif d.files:
                state = Text("NOT LOADED", style="bold red" if current else "yellow")
            else:
                state = Text("MISSING", style="bold red" if current else "red")
            loaded = [f for f in d.files if f.status == LOADED]
            file_lines = "\n".join(
                f"{_short(f.source_file)}" + (f" ({_when(f.loaded_at)})" if f.loaded_at else "") for f in loaded
            )
            notes = []
            for f in d.of(SUPERSEDED):
                notes.append(f"superseded: {_short(f.source_file)}")
            for f in d.of(REJECTED):
                notes.append(f"rejected: {_short(f.source_file)}" + (f" — {f.reasons[0]}" if f.reasons else ""))
            for f in d.of(PENDING):
                notes.append(f"waiting for next run: {_short(f.source_file)}")
            for f in loaded:
                notes.extend(f"{_short(f.source_file)}: {r}" for r in f.reasons if r)
            style = "bold red" if (current and d.expected and not d.received) else None
            t.add_row(Text(code), Text(d.district_name), state, Text(file_lines or "—"),
                      f"{d.rows_loaded:,}" if d.files else "—", f"{d.rows_rejected:,}" if d.files else "—",
                      Text("\n".join(notes)), style=style)
        console.print(t)

    if status.other_files:
        console.print("[bold]Files outside any known year/district folder:[/]")
        for f in status.other_files:
            console.print(Text(f"  {f.source_file} ({f.status}{': ' + f.reasons[0] if f.reasons else ''})"))
    pending = status.as_dict()["pending_files"]
    if pending:
        console.print(f"[bold yellow]{len(pending)} file(s) in the raw folder not loaded yet[/] (next `coop run`):")
        for sf in pending:
            console.print(Text(f"  {sf}"))
    missing = status.missing_current
    if status.current_year is not None:
        if missing:
            console.print(f"[bold red]Who to call — no usable report for {status.current_year}:[/]")
            for d in missing:
                console.print(Text(f"  {d.district_code or PROVINCE} {d.district_name}", style="bold red"))
        else:
            console.print(f"[green]Every district has reported for {status.current_year}.[/]")


def status_command(raw_dir: Path, warehouse: Path, fmt: str = "text") -> int:
    """`coop status`. Exit 0 (it is a report, not a check); 1 when the warehouse exists but
    cannot be read."""
    status = collect_status(Path(raw_dir), Path(warehouse))
    if fmt == "json":
        sys.stdout.write(json.dumps(status.as_dict(), ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        from rich.console import Console

        tty = sys.stdout.isatty()
        render_text(status, Console(highlight=False, width=None if tty else 200))
    return 1 if status.error else 0
