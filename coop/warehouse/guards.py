"""Publish guards (write-audit-publish), versions to roll back to, and the health check of
the published warehouse.

A run builds a private file, runs the models and data tests in it, then — before the atomic
rename — compares it with the published warehouse (`check_publish`). The publish is refused
(exit 1, the published file kept byte for byte, the run recorded as failed in
`.state/pending_runs.jsonl` and in its run report) when:

- the raw folder is missing or cannot be read (`raw_missing`, `raw_unreadable`; checked at
  the start of the run, never overridable), or is empty while a warehouse is published
  (`raw_empty`: an unmounted share looks like an empty folder);
- more than `MAX_FILES_VANISHED_PCT` % of the published files, `MAX_UNITS_VANISHED_PCT` %
  of the reporting units (year x unit) or `MAX_ROWS_VANISHED_PCT` % of the register rows
  (raw.htx + raw.tht) vanish at once (`files_vanished`, `units_vanished`, `rows_vanished`);
- a unit whose rows are in the published warehouse has no file any more
  (`unit_gone`, named; `REFUSE_UNIT_GONE`). A unit whose new file is rejected is *not*
  gone: it sent something (its feedback says what is wrong), and the rows guard still
  watches the totals.

`--allow-shrink` (`GuardSettings.allow_shrink`) lets every guard except `raw_missing`,
`raw_unreadable` and `published_corrupt` through; the run then records what it allowed in
`audit.runs.message`.

Versions: after each publish the published file is copied (a copy, not a hard link: damage
done in place to the published file must not reach its versions) to
`<warehouse folder>/versions/<stem>-<run_id>.duckdb`, read-only (0444), and only the newest
`KEEP_VERSIONS` are kept. `rollback(warehouse, to=None)` publishes one of them again with
the same atomic publish, under the run lock. `cleanup_stale` only removes
`.<name>.build-*`, `.<name>.tmp-*` and `.<name>.publish-*` next to the warehouse (and
`.tmp-` files under `.state/` and `reports/`): the `versions/` folder is never touched.

A published file that DuckDB cannot read (truncated, zeroed header, random bytes, a block
whose checksum fails) is found by `check_warehouse_file` — it opens the file read-only and
reads every block of every table (about half a second for the sample province) — at the
start of every run and by readers (`warehouse_problem`), with the advice to roll back or to
rebuild from raw with `coop backfill --all` (which ignores the published file).

Settings: each module constant below can be overridden by the environment variable
`COOP_GUARD_<NAME>` (e.g. `COOP_GUARD_MAX_ROWS_VANISHED_PCT=35`,
`COOP_GUARD_REFUSE_UNIT_GONE=false`, `COOP_GUARD_KEEP_VERSIONS=14`).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from coop.context import ALL_YEARS, VERSIONS_DIR, WarehouseFiles, new_run_id
from coop.warehouse import queries
from coop.warehouse.load import BuildRejected

if TYPE_CHECKING:
    from coop.outputs.run_report import RunSummary

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- settings
#: Refuse when more than this share (%) of the published files is gone from the raw folder.
MAX_FILES_VANISHED_PCT = 20.0
#: Refuse when more than this share (%) of the reporting units (year x unit) that have rows
#: in the published warehouse have no file any more.
MAX_UNITS_VANISHED_PCT = 20.0
#: Refuse when the register rows (raw.htx + raw.tht) drop by more than this share (%).
MAX_ROWS_VANISHED_PCT = 20.0
#: Refuse when any single unit that has rows in the published warehouse has no file any more.
REFUSE_UNIT_GONE = True
#: Published warehouses kept in `versions/` to roll back to (0 = keep none).
KEEP_VERSIONS = 7

ENV_PREFIX = "COOP_GUARD_"
#: Register tables whose row count the rows guard compares.
REGISTER_TABLES = ("raw.htx", "raw.tht")
#: Names that do not make a raw folder non-empty.
_NOT_REPORTS = {"thumbs.db", "desktop.ini"}
#: How many names a message lists before "and N more".
_LIST_MAX = 15

ADVICE_VI = ("Khôi phục bản đã xuất bản trước đó bằng `coop rollback`, hoặc dựng lại kho từ dữ liệu gốc "
             "bằng `coop backfill --all`.")
ADVICE_EN = "Roll back with `coop rollback`, or rebuild from raw with `coop backfill --all`."


class GuardSettingError(ValueError):
    """A COOP_GUARD_* variable holds a value of the wrong kind."""


def _env_number(name: str, default: float, environ: Mapping[str, str]) -> float:
    raw = environ.get(ENV_PREFIX + name)
    if raw is None or not raw.strip():
        return default
    try:
        v = float(raw.strip().rstrip("%"))
    except ValueError:
        raise GuardSettingError(f"{ENV_PREFIX}{name}={raw!r}: expected a number") from None
    if v < 0:
        raise GuardSettingError(f"{ENV_PREFIX}{name}={raw!r}: must not be negative")
    return v


def _env_bool(name: str, default: bool, environ: Mapping[str, str]) -> bool:
    raw = environ.get(ENV_PREFIX + name)
    if raw is None or not raw.strip():
        return default
    v = raw.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise GuardSettingError(f"{ENV_PREFIX}{name}={raw!r}: expected true or false")


@dataclass(frozen=True)
class GuardSettings:
    """The guard thresholds of one run (defaults: the module constants, then COOP_GUARD_*)."""

    max_files_vanished_pct: float = MAX_FILES_VANISHED_PCT
    max_units_vanished_pct: float = MAX_UNITS_VANISHED_PCT
    max_rows_vanished_pct: float = MAX_ROWS_VANISHED_PCT
    refuse_unit_gone: bool = REFUSE_UNIT_GONE
    keep_versions: int = KEEP_VERSIONS
    allow_shrink: bool = False  # the operator's --allow-shrink

    @classmethod
    def load(cls, allow_shrink: bool = False, environ: Mapping[str, str] | None = None) -> GuardSettings:
        env = os.environ if environ is None else environ
        return cls(
            max_files_vanished_pct=_env_number("MAX_FILES_VANISHED_PCT", MAX_FILES_VANISHED_PCT, env),
            max_units_vanished_pct=_env_number("MAX_UNITS_VANISHED_PCT", MAX_UNITS_VANISHED_PCT, env),
            max_rows_vanished_pct=_env_number("MAX_ROWS_VANISHED_PCT", MAX_ROWS_VANISHED_PCT, env),
            refuse_unit_gone=_env_bool("REFUSE_UNIT_GONE", REFUSE_UNIT_GONE, env),
            keep_versions=int(_env_number("KEEP_VERSIONS", KEEP_VERSIONS, env)),
            allow_shrink=bool(allow_shrink),
        )


# --------------------------------------------------------------------------- failures
@dataclass(frozen=True)
class GuardFailure:
    """One reason not to publish: Vietnamese for people first, English after.

    `code`: raw_missing | raw_unreadable | raw_empty | published_corrupt | published_busy |
    files_vanished | units_vanished | rows_vanished | unit_gone. `overridable`: whether
    `--allow-shrink` lets it through. `items`: the files or units concerned."""

    code: str
    message_vi: str
    message_en: str
    overridable: bool = True
    items: tuple[str, ...] = ()

    def text(self) -> str:
        return f"{self.message_vi}\n  ({self.message_en})"


def blocking(failures: Iterable[GuardFailure], settings: GuardSettings | None = None) -> list[GuardFailure]:
    """The failures that stop the publish under `settings` (all but the overridable ones
    when the operator allowed a shrink)."""
    allow = bool(settings and settings.allow_shrink)
    return [f for f in failures if not (allow and f.overridable)]


def refusal_message(failures: Sequence[GuardFailure]) -> str:
    """The operator's message for a refused publish (console, run report, audit.runs)."""
    lines = ["Không xuất bản: kho dữ liệu đã xuất bản được giữ nguyên "
             "(refused to publish: the last published warehouse is kept as it was)."]
    for f in failures:
        lines.append(f"- {f.text()}")
    if any(f.overridable for f in failures):
        lines.append("Nếu việc bớt dữ liệu này là có chủ ý (tệp được gỡ, đơn vị thôi báo cáo), chạy lại với "
                     "--allow-shrink (if this is intended, run again with --allow-shrink).")
    return "\n".join(lines)


class PublishRefused(BuildRejected):
    """A guard stopped the publish; the published warehouse is unchanged."""

    def __init__(self, failures: Sequence[GuardFailure]):
        self.failures = list(failures)
        super().__init__(refusal_message(self.failures))


def allowed_note(failures: Sequence[GuardFailure]) -> str | None:
    """What `--allow-shrink` let through (for audit.runs.message), None when nothing."""
    if not failures:
        return None
    return "published with --allow-shrink despite: " + "; ".join(f"{f.code}: {f.message_en}" for f in failures)


def _some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LIST_MAX])
    more = len(items) - _LIST_MAX
    return shown + (f" … (+{more})" if more > 0 else "")


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


# --------------------------------------------------------------------------- start-of-run checks
def check_raw_dir(raw_dir: Path, published_exists: bool = True) -> list[GuardFailure]:
    """The raw folder is there, readable, and (when a warehouse is published) not empty.
    Stops at the first report-like file: cheap on a full share."""
    raw = Path(raw_dir)
    if not raw.is_dir():
        return [GuardFailure(
            "raw_missing",
            f"Không thấy thư mục dữ liệu {raw} (thư mục không tồn tại hoặc ổ mạng chưa được gắn).",
            f"The raw folder {raw} does not exist (or the share is not mounted).", overridable=False)]
    try:
        with os.scandir(raw) as it:
            top = list(it)
    except OSError as e:
        return [GuardFailure(
            "raw_unreadable", f"Không đọc được thư mục dữ liệu {raw}: {e.strerror or e}.",
            f"The raw folder {raw} cannot be read: {type(e).__name__}: {e}.", overridable=False)]
    if not published_exists:
        return []
    stack = [top]
    while stack:
        for entry in stack.pop():
            name = entry.name
            if name.startswith(".") or name.lower() in _NOT_REPORTS:
                continue
            try:
                if entry.is_file():
                    return []
                if entry.is_dir():
                    with os.scandir(entry.path) as it:
                        stack.append(list(it))
            except OSError:  # an unreadable sub-folder: its files are the units' business
                continue
    return [GuardFailure(
        "raw_empty",
        f"Thư mục dữ liệu {raw} trống, không có tệp báo cáo nào (ổ mạng chưa được gắn?); xuất bản sẽ xoá "
        "dữ liệu của mọi đơn vị khỏi kho.",
        f"The raw folder {raw} is empty, no report file at all (share not mounted?); publishing would remove "
        "every unit's data from the warehouse.")]


def _is_lock_error(e: BaseException) -> bool:
    s = str(e).lower()
    return "lock" in s and ("conflicting" in s or "could not set" in s)


def check_warehouse_file(path: Path) -> GuardFailure | None:
    """None when `path` is missing (nothing published yet) or a readable DuckDB file: opened
    read-only, every table read in full (each block's checksum verified). Else the failure,
    with the advice to roll back or rebuild."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        con = queries.connect_read_only(path)
    except Exception as e:  # noqa: BLE001 — duckdb.Error, OSError
        return _corrupt(path, e)
    try:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                             "WHERE database_name = current_database()").fetchall()
        for schema, table in tables:
            con.execute(f'SELECT count(*), sum(hash(COLUMNS(*))) FROM "{schema}"."{table}"').fetchall()
    except Exception as e:  # noqa: BLE001 — whatever a damaged file raises, it is reported as damaged
        return _corrupt(path, e)
    finally:
        con.close()
    return None


def _corrupt(path: Path, e: BaseException) -> GuardFailure:
    detail = " ".join(str(e).split())[:300]
    if _is_lock_error(e):
        return GuardFailure(
            "published_busy",
            f"Kho dữ liệu {path} đang bị một chương trình khác mở để ghi (ví dụ duckdb mở không có -readonly); "
            "hãy đóng chương trình đó rồi chạy lại.",
            f"The warehouse {path} is held open for writing by another program (e.g. the duckdb CLI without "
            f"-readonly); close it and run again. ({type(e).__name__}: {detail})", overridable=False)
    return GuardFailure(
        "published_corrupt",
        f"Kho dữ liệu đã xuất bản {path} bị hỏng, không đọc được. {ADVICE_VI}",
        f"The published warehouse {path} is damaged and cannot be read ({type(e).__name__}: {detail}). "
        f"{ADVICE_EN}", overridable=False)


def warehouse_problem(path: Path) -> str | None:
    """For readers (`coop status` and the like): None when the published file is missing or
    readable, else a message (Vietnamese, then English with the DuckDB detail) with advice."""
    f = check_warehouse_file(path)
    return f.text() if f else None


#: The published file `refuse_at_start` found readable in this process, by path: its identity
#: then (`_identity`). The flow's `start_failures` that follows under the same run lock takes it
#: (once) instead of reading every table again (≈ 0.25 CPU-s at ×16) when the file is the same.
_VERIFIED_AT_START: dict[str, tuple[int, ...]] = {}


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _verified_at_start(path: Path) -> bool:
    """True (once) when `refuse_at_start` found this very file readable earlier in the process."""
    seen = _VERIFIED_AT_START.pop(str(path.absolute()), None)
    return seen is not None and seen == _identity(path)


def start_failures(raw_dir: Path, warehouse: Path, fresh: bool = False, *,
                   remember: bool = False) -> list[GuardFailure]:
    """Checks made before anything is read: the raw folder, then (unless the run rebuilds
    from nothing, `fresh`) the published file's health. `remember` (`refuse_at_start`): a
    readable published file is noted, so that the flow's own check of the same run, under the
    same lock, does not read it again while it is unchanged."""
    warehouse = Path(warehouse)
    out = check_raw_dir(raw_dir, published_exists=warehouse.exists())
    if out and not out[0].overridable:
        return out
    if not fresh:
        if remember:
            _VERIFIED_AT_START.pop(str(warehouse.absolute()), None)
        elif _verified_at_start(warehouse):
            return out
        before = _identity(warehouse) if remember else None
        bad = check_warehouse_file(warehouse)
        if bad:
            out.append(bad)
        elif before is not None and before == _identity(warehouse):
            _VERIFIED_AT_START[str(warehouse.absolute())] = before
    return out


def refuse_at_start(raw_dir: Path, warehouse: Path, *, kind: str = "nightly",
                    years: tuple[int, int] | None = None, backfill_years: tuple[int, int] | None = None,
                    allow_shrink: bool = False, fresh: bool = False) -> RunSummary | None:
    """`start_failures`, and when one blocks: record the run as failed (pending runs and run
    report, no Prefect) and return its `RunSummary`; else None. Call under the run lock."""
    started = datetime.now(UTC)
    refused = blocking(start_failures(raw_dir, warehouse, fresh, remember=True),
                       GuardSettings(allow_shrink=allow_shrink))
    if not refused:
        return None
    return record_refusal(raw_dir, warehouse, refused, kind=kind, started=started, years=years,
                          backfill_years=backfill_years)


def record_refusal(raw_dir: Path, warehouse: Path, failures: Sequence[GuardFailure], *, kind: str,
                   started: datetime, years: tuple[int, int] | None = None,
                   backfill_years: tuple[int, int] | None = None) -> RunSummary:
    """A failed run that never built anything: `.state/pending_runs.jsonl` (the next published
    build copies it into audit.runs) and its run report. Returns the RunSummary."""
    from coop.outputs.run_report import RunSummary, write_run_report
    from coop.run import store
    from coop.warehouse import load

    msg = refusal_message(failures)
    now = datetime.now(UTC)
    run = load.RunRecord(run_id=new_run_id(started), started_at=started, finished_at=now, kind=kind,
                         status="failed", years=load.years_text(years),
                         backfill_years="all" if backfill_years == ALL_YEARS else load.years_text(backfill_years),
                         message=msg[:2000])
    summary = RunSummary(run_id=run.run_id, kind=kind, status="failed", started_at=started, finished_at=now,
                         raw_dir=str(raw_dir), warehouse=str(warehouse),
                         years=None if backfill_years == ALL_YEARS else (backfill_years or years), error=msg)
    try:
        store.append_pending_run(store.state_dir(Path(warehouse)), run.to_json())
        write_run_report(summary, Path(warehouse))
    except OSError as e:  # e.g. a read-only warehouse folder: the console still says why
        log.warning("Could not record the refused run: %s", e)
    return summary


# --------------------------------------------------------------------------- the publish guard
@dataclass
class _Snapshot:
    files: dict[str, tuple[str, int | None, str | None]] = field(default_factory=dict)  # source -> (status, year, unit)
    register_rows: int = 0
    names: dict[str, str] = field(default_factory=dict)


def _snapshot(path: Path) -> _Snapshot:
    con = queries.connect_read_only(path)
    try:
        have = {f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
        snap = _Snapshot()
        if "audit.files" in have:
            snap.files = {s: (st, y, u) for s, st, y, u in con.execute(
                "SELECT source_file, status, year, unit_code FROM audit.files").fetchall()}
        snap.register_rows = sum(int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
                                 for t in REGISTER_TABLES if t in have)
        if "ref.units" in have:
            for code, name, kind in con.execute("SELECT unit_code, unit_name, unit_kind FROM ref.units").fetchall():
                name = name or ""
                snap.names[code] = name if not kind or name.startswith(kind) else f"{kind} {name}"
        return snap
    finally:
        con.close()


def _folder(source_file: str) -> str:
    return source_file.rsplit("/", 1)[0] if "/" in source_file else ""


def _unit_label(year: int | None, unit: str | None, names: Mapping[str, str]) -> str:
    y = "?" if year is None else str(year)
    if unit is None:
        return f"{y} · tỉnh (province folder)"
    return f"{y} · {unit} {names.get(unit, '')}".rstrip()


def check_publish(build_path: Path, published_path: Path,
                  settings: GuardSettings | None = None) -> list[GuardFailure]:
    """Compare a finished build with the published warehouse; the reasons not to publish
    (every one, overridable or not: see `blocking`). [] when nothing is published or the
    published file cannot be read (the start-of-run check reports that)."""
    settings = settings or GuardSettings.load()
    published_path = Path(published_path)
    if not published_path.exists():
        return []
    try:
        old = _snapshot(published_path)
    except Exception as e:  # noqa: BLE001 — damaged: nothing to compare with
        log.warning("Publish guards: cannot read the published warehouse %s (%s); nothing to compare with.",
                    published_path, e)
        return []
    new = _snapshot(Path(build_path))
    out: list[GuardFailure] = []

    # files
    old_present = {s for s, (st, _, _) in old.files.items() if st != "removed"}
    new_present = {s for s, (st, _, _) in new.files.items() if st != "removed"}
    vanished = sorted(old_present - new_present)
    share = _pct(len(vanished), len(old_present))
    if vanished and share > settings.max_files_vanished_pct:
        out.append(GuardFailure(
            "files_vanished",
            f"{len(vanished)}/{len(old_present)} tệp ({share:.0f}%) có trong kho đang xuất bản không còn trong "
            f"thư mục dữ liệu (ngưỡng {settings.max_files_vanished_pct:g}%): {_some(vanished)}.",
            f"{len(vanished)} of {len(old_present)} files ({share:.0f}%) of the published warehouse are gone from "
            f"the raw folder (limit {settings.max_files_vanished_pct:g}%).", items=tuple(vanished)))

    # units: (year, unit) with rows in the published warehouse, and whether they still sent anything
    reported: dict[tuple[int | None, str | None], list[str]] = {}
    for s, (st, y, u) in old.files.items():
        if st not in ("removed", "rejected", "superseded"):
            reported.setdefault((y, u), []).append(s)
    still = {(y, u) for s, (st, y, u) in new.files.items() if st != "removed" and u is not None}
    folders = {_folder(s) for s in new_present}
    gone = sorted((k for k, files in reported.items()
                   if k not in still and not any(_folder(s) in folders for s in files)),
                  key=lambda k: (k[0] or 0, k[1] is None, k[1] or ""))
    names = {**old.names, **new.names}
    labels = [_unit_label(y, u, names) for y, u in gone]
    share = _pct(len(gone), len(reported))
    if gone and share > settings.max_units_vanished_pct:
        out.append(GuardFailure(
            "units_vanished",
            f"{len(gone)}/{len(reported)} đơn vị-năm ({share:.0f}%) có dữ liệu trong kho không còn tệp nào "
            f"(ngưỡng {settings.max_units_vanished_pct:g}%).",
            f"{len(gone)} of {len(reported)} reporting units x years ({share:.0f}%) with rows in the published "
            f"warehouse have no file any more (limit {settings.max_units_vanished_pct:g}%).", items=tuple(labels)))
    if gone and settings.refuse_unit_gone:
        out.append(GuardFailure(
            "unit_gone",
            f"Đơn vị đã có báo cáo trong kho nay không còn tệp nào: {_some(labels)}.",
            f"Units that reported in the published warehouse have no file any more: {_some(labels)}.",
            items=tuple(labels)))

    # register rows
    lost = old.register_rows - new.register_rows
    share = _pct(lost, old.register_rows)
    if lost > 0 and share > settings.max_rows_vanished_pct:
        out.append(GuardFailure(
            "rows_vanished",
            f"Số dòng sổ đăng ký HTX/THT giảm từ {old.register_rows:,} xuống {new.register_rows:,} "
            f"(−{share:.0f}%, ngưỡng {settings.max_rows_vanished_pct:g}%).",
            f"Register rows (raw.htx + raw.tht) drop from {old.register_rows:,} to {new.register_rows:,} "
            f"(−{share:.0f}%, limit {settings.max_rows_vanished_pct:g}%)."))
    return out


def guard_publish(build_path: Path, published_path: Path, settings: GuardSettings) -> str | None:
    """For the flow: raise `PublishRefused` when a guard blocks; else the note of what
    `--allow-shrink` let through (None when nothing)."""
    failures = check_publish(build_path, published_path, settings)
    refused = blocking(failures, settings)
    if refused:
        raise PublishRefused(refused)
    if failures:
        log.warning("Publishing with --allow-shrink despite: %s", "; ".join(f.message_en for f in failures))
    return allowed_note(failures)


def previous_for(warehouse: Path, run_id: str, fresh: bool) -> Path:
    """The published file a run compares its inputs with and carries history from: the
    warehouse itself, or — rebuilding from nothing (`coop backfill --all`) — a path that
    does not exist, in the same folder (so the state folder is the same)."""
    warehouse = Path(warehouse)
    return warehouse.parent / f".{warehouse.name}.tmp-{run_id}-none" if fresh else warehouse


# --------------------------------------------------------------------------- versions
@dataclass(frozen=True)
class Version:
    run_id: str
    path: Path
    size: int

    @property
    def published_at(self) -> datetime | None:
        try:
            return datetime.strptime(self.run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None


def versions_dir(warehouse: Path) -> Path:
    return WarehouseFiles(warehouse).versions


def version_path(warehouse: Path, run_id: str) -> Path:
    return WarehouseFiles(warehouse).version(run_id)


def list_versions(warehouse: Path) -> list[Version]:
    """The versions kept for `warehouse`, newest first."""
    warehouse = Path(warehouse)
    folder = versions_dir(warehouse)
    prefix, suffix = f"{warehouse.stem}-", warehouse.suffix
    out = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for e in entries:
        n = e.name
        if n.startswith(prefix) and n.endswith(suffix) and len(n) > len(prefix) + len(suffix):
            try:
                size = e.stat().st_size
            except OSError:
                continue
            out.append(Version(n[len(prefix):len(n) - len(suffix)], Path(e.path), size))
    return sorted(out, key=lambda v: v.run_id, reverse=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tmp(folder: Path) -> None:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for e in entries:
        if e.name.startswith(".") and ".tmp-" in e.name:
            try:
                os.unlink(e.path)
            except OSError:
                pass


def keep_version(warehouse: Path, run_id: str, keep: int | None = None) -> Path | None:
    """Copy the just-published warehouse to `versions/<stem>-<run_id>.duckdb` (read-only),
    then keep only the newest `keep` (default: the setting). Call under the run lock, right
    after the publish. Returns the version's path (None when versions are off)."""
    warehouse = Path(warehouse)
    keep = GuardSettings.load().keep_versions if keep is None else int(keep)
    folder = versions_dir(warehouse)
    dest = None
    if keep > 0:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_tmp(folder)  # a copy a killed run left half-written
        dest = version_path(warehouse, run_id)
        tmp = folder / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copyfile(warehouse, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # 0444
            os.replace(tmp, dest)
            _fsync_dir(folder)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
    prune_versions(warehouse, keep)
    return dest


def prune_versions(warehouse: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` versions. Returns the deleted paths."""
    removed = []
    for v in list_versions(warehouse)[max(0, int(keep)):]:
        try:
            v.path.unlink()
            removed.append(v.path)
        except FileNotFoundError:
            pass
    if removed:
        log.info("Removed %d old version(s): %s", len(removed), ", ".join(p.name for p in removed))
    return removed


def published_run_id(path: Path) -> str | None:
    """The run that built the file at `path` (its latest published run), None if unreadable."""
    try:
        with queries.read_only(path) as con:
            return queries.latest_published_run(con)
    except Exception:  # noqa: BLE001 — unreadable file: no run to name (documented above)
        return None


def _run_counts(path: Path, run_id: str) -> queries.RunCounts:
    try:
        with queries.read_only(path) as con:
            return queries.run_counts(con, run_id)
    except Exception:  # noqa: BLE001 — the counts only decorate the rollback's audit row
        return {}


# --------------------------------------------------------------------------- rollback
class RollbackError(RuntimeError):
    """Nothing to roll back to, or the version asked for is not usable. Nothing was changed."""


@dataclass
class RollbackResult:
    run_id: str  # the rollback's own id (audit.runs / pending runs)
    to_run: str  # the run whose warehouse is now published
    replaced: str | None  # the run whose warehouse was published before (None: missing/damaged)
    version: Path
    changed: bool = True


def _pick(versions: list[Version], to: str | None, current: str | None) -> Version:
    if not versions:
        raise RollbackError("Chưa có bản nào để khôi phục (no version kept: versions are made at each publish, "
                            f"the newest {KEEP_VERSIONS} by default).")
    listing = ", ".join(v.run_id for v in versions)
    if to:
        exact = [v for v in versions if v.run_id == to]
        match = exact or [v for v in versions if v.run_id.startswith(to)]
        if not match:
            raise RollbackError(f"Không có bản {to} (no version of run {to}; kept: {listing}).")
        if len(match) > 1:
            raise RollbackError(f"{to} khớp nhiều bản (ambiguous: {', '.join(v.run_id for v in match)}).")
        return match[0]
    ids = [v.run_id for v in versions]
    if current is None:
        candidates = versions  # the published file is missing or damaged: the newest good version
    elif current in ids:
        candidates = versions[ids.index(current) + 1:]
    else:
        candidates = [v for v in versions if v.run_id < current]
    for v in candidates:
        bad = check_warehouse_file(v.path)
        if bad is None:
            return v
        log.warning("Version %s is damaged, skipped: %s", v.path.name, bad.message_en)
    raise RollbackError(f"Không còn bản nào cũ hơn bản đang xuất bản ({current}) để khôi phục "
                        f"(no usable version older than the published run {current}; kept: {listing}).")


def rollback(warehouse: Path, to: str | None = None, wait: bool = False) -> RollbackResult:
    """Publish a kept version again (atomically, under the run lock): `to` (a run id or a
    unique prefix), else the newest version older than the published one (the newest
    readable one when the published file is missing or damaged). Recorded as a run
    (kind `rollback`, status `rolled_back`) in `.state/pending_runs.jsonl`; the next
    published build copies it into audit.runs. Raises RollbackError, RunLockBusy."""
    from coop.run import store
    from coop.run.lock import cleanup_stale, run_lock
    from coop.warehouse import load, publish

    warehouse = Path(warehouse)
    started = datetime.now(UTC)
    with run_lock(warehouse, wait=wait):
        cleanup_stale(warehouse)
        _remove_tmp(versions_dir(warehouse))
        current = published_run_id(warehouse) if check_warehouse_file(warehouse) is None else None
        target = _pick(list_versions(warehouse), to, current)
        if target.run_id == current:
            return RollbackResult("", target.run_id, current, target.path, changed=False)
        bad = check_warehouse_file(target.path)
        if bad is not None:
            raise RollbackError(f"Bản {target.path.name} bị hỏng, không dùng được (the version is damaged): "
                                f"{bad.message_en}")
        run_id = new_run_id(started)
        stage = warehouse.parent / f".{warehouse.name}.publish-{run_id}"
        try:
            shutil.copyfile(target.path, stage)
            os.chmod(stage, 0o644)
            publish.publish(stage, warehouse)
        except BaseException:
            publish.discard(stage)
            raise
        counts = _run_counts(warehouse, target.run_id)
        run = load.RunRecord(
            run_id=run_id, started_at=started, finished_at=datetime.now(UTC), kind="rollback",
            status="rolled_back", **counts,
            message=f"rolled back to the warehouse of run {target.run_id} ({VERSIONS_DIR}/{target.path.name}); "
                    f"replaced {'run ' + current if current else 'a missing or damaged file'}")
        try:
            store.append_pending_run(store.state_dir(warehouse), run.to_json())
        except OSError as e:
            log.warning("Rolled back, but could not record it in the pending runs: %s", e)
        return RollbackResult(run_id, target.run_id, current, target.path)


def rollback_command(warehouse: Path, to: str | None = None, wait: bool = False, list_only: bool = False) -> int:
    """`coop rollback`: 0 rolled back (or already that version), 1 nothing to roll back to,
    75 another run holds the lock."""
    from rich.console import Console

    from coop.run.lock import EXIT_BUSY, RunLockBusy

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    warehouse = Path(warehouse)
    if list_only:
        current = published_run_id(warehouse)
        versions = list_versions(warehouse)
        if not versions:
            out.print(f"Chưa có bản nào trong {versions_dir(warehouse)} (no version kept yet).")
            return 0
        out.print(f"Các bản có thể khôi phục (versions kept, newest first) in {versions_dir(warehouse)}:")
        for v in versions:
            when = v.published_at.strftime("%Y-%m-%d %H:%M UTC") if v.published_at else "?"
            mark = "  ← đang xuất bản (published)" if v.run_id == current else ""
            out.print(f"  {v.run_id}  {when}  {v.size / 1e6:.1f} MB{mark}")
        return 0
    try:
        res = rollback(warehouse, to=to, wait=wait)
    except RunLockBusy as e:
        err.print(f"[yellow]{e}[/yellow]", soft_wrap=True)
        return EXIT_BUSY
    except RollbackError as e:
        err.print(f"[red]{e}[/red] Nothing was changed.", soft_wrap=True)
        return 1
    if not res.changed:
        out.print(f"Bản của lần chạy {res.to_run} đang được xuất bản; không có gì thay đổi "
                  f"(the warehouse of run {res.to_run} is already published).")
        return 0
    out.print(f"Đã khôi phục kho về bản của lần chạy {res.to_run} "
              f"(rolled back: {warehouse} is now the warehouse of run {res.to_run}; "
              f"it replaced {'run ' + res.replaced if res.replaced else 'a missing or damaged file'}).")
    out.print("Lần chạy tới sẽ dựng lại từ thư mục dữ liệu như thường lệ: sửa dữ liệu gốc trước nếu cần "
              "(the next run rebuilds from the raw folder as usual: "
              "fix the raw files first if they caused the problem).")
    return 0
