"""Load `FileResult`s into the build DuckDB file, with lineage, plus the ref and audit tables.

Plain functions, no Prefect. The build file is private to one run (see `coop.warehouse.publish`);
nothing here ever opens the published warehouse for writing (the previous published file is
only ATTACHed READ_ONLY to carry its audit history over).

    con = open_build(build_file)                      # storage version DuckDB 1.5 reads
    create_tables(con, reference)                     # raw.* / ref.* (coop.warehouse.models) + audit.*
    stats = load_results(con, results, run_id)        # accepted rows -> raw.*, quarantine -> audit.*
    carry_audit_history(con, published_file)          # previous runs' audit rows
    record_files(con, ledger_rows) ; record_run(con, RunRecord(...))

Lineage on every raw row: `source_file, sheet, row_number` (from reading) and
`year, unit_code, file_hash, run_id` (added here).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from coop.reference import Reference, Unit, load_reference
from coop.run.state import RunRecord as RunRecord  # the audit.runs row (standard library only, for coop.run.quick)
from coop.run.state import utc_naive as utc_naive
from coop.warehouse import queries
from coop.warehouse.db import comment_statements, run_in_transaction, sql_literal, transaction

if TYPE_CHECKING:
    from coop.ingest.discover import FileIssue
    from coop.ingest.normalize import FileResult
    from coop.run.planning import Plan

log = logging.getLogger(__name__)

#: form name in a FileResult -> raw table
FORM_TABLES: dict[str, str] = {"HTX": "raw.htx", "THT": "raw.tht", "HO_TRO": "raw.ho_tro", "CHI_TIEU": "raw.chi_tieu"}

#: Settings written to ref.settings (text values). The SQL models read them.
DEFAULT_SETTINGS: dict[str, str] = {"backlog_window_years": "3"}

#: Storage version of the build (and so of the published) file. DuckDB 2.0 writes a format
#: DuckDB 1.x cannot open; `v1.5.0` keeps the warehouse readable by DuckDB >= 1.5 (analysts'
#: drivers lag). Override with COOP_STORAGE_VERSION (e.g. `v2.0.0`, or `native` for DuckDB's
#: own default).
DEFAULT_STORAGE_VERSION = "v1.5.0"


def storage_version() -> str | None:
    """The storage compatibility version to build with; None = DuckDB's default."""
    v = os.environ.get("COOP_STORAGE_VERSION", DEFAULT_STORAGE_VERSION).strip()
    return None if v.lower() in ("", "native", "default", "latest") else v


#: The memory DuckDB may use while it builds (loading, models, tests): beyond it DuckDB spills
#: to a temporary folder beside the build file (`.<name>.build-<run id>.tmp`, removed with the
#: build's other leftovers). DuckDB's default is 80 % of the machine's memory; at national scale
#: the models alone then took ≈ 0.9 GiB, with this limit 0.56 GiB, the same tables and a little
#: faster (docs/performance.md "National scale"). Override with COOP_BUILD_MEMORY_LIMIT (a DuckDB
#: size, e.g. `2GB`; empty for DuckDB's default).
DEFAULT_BUILD_MEMORY_LIMIT = "512MB"


def build_memory_limit() -> str | None:
    """The `memory_limit` of a build connection; None = DuckDB's default."""
    v = os.environ.get("COOP_BUILD_MEMORY_LIMIT", DEFAULT_BUILD_MEMORY_LIMIT).strip()
    return v or None


# --------------------------------------------------------------------------- audit DDL
_AUDIT_DDL: dict[str, str] = {
    "audit.runs": """(
    run_id VARCHAR, kind VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR,
    files_seen INTEGER, files_loaded INTEGER, files_rejected INTEGER, rows_loaded BIGINT,
    rows_rejected BIGINT, years VARCHAR, backfill_years VARCHAR, message VARCHAR)""",
    "audit.file_issues": """(
    run_id VARCHAR, source_file VARCHAR, sheet VARCHAR, reason VARCHAR, reason_code VARCHAR,
    severity VARCHAR, year INTEGER, unit_code VARCHAR)""",
    "audit.rejected_rows": """(
    run_id VARCHAR, source_file VARCHAR, sheet VARCHAR, row_number BIGINT, column_name VARCHAR,
    raw_value VARCHAR, reason VARCHAR, reason_code VARCHAR, year INTEGER, unit_code VARCHAR,
    file_hash VARCHAR)""",
    "audit.files": """(
    source_file VARCHAR, file_hash VARCHAR, size BIGINT, modified_at TIMESTAMP, status VARCHAR,
    year INTEGER, unit_code VARCHAR, rows_loaded BIGINT, rows_rejected BIGINT,
    first_seen_run VARCHAR, last_run VARCHAR)""",
    "audit.sheets": """(
    source_file VARCHAR, sheet VARCHAR, form VARCHAR, status VARCHAR, header_row INTEGER,
    rows_loaded BIGINT, rows_rejected BIGINT, rows_skipped_title BIGINT,
    rows_skipped_column_numbers BIGINT, rows_skipped_section BIGINT, rows_skipped_total BIGINT,
    rows_skipped_signature BIGINT, rows_skipped_no_data BIGINT, year INTEGER, unit_code VARCHAR,
    file_hash VARCHAR)""",
}

#: audit.sheets: one column per kind of skipped row (coop.ingest.read.SKIP_KINDS)
SHEET_SKIP_COLUMNS: dict[str, str] = {
    "title": "rows_skipped_title", "column_numbers": "rows_skipped_column_numbers",
    "section": "rows_skipped_section", "total": "rows_skipped_total",
    "signature": "rows_skipped_signature", "no_data": "rows_skipped_no_data",
}

_AUDIT_COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "audit.runs": ("Lần chạy — one row per run of the pipeline (published, unchanged = nothing to rebuild, failed = "
                   "nothing published). Accumulates across rebuilds", {
        "run_id": "Mã lần chạy — run id",
        "kind": "Loại — nightly | backfill",
        "started_at": "Bắt đầu — start time (UTC)",
        "finished_at": "Kết thúc — end time (UTC)",
        "status": "Kết quả — published | unchanged (inputs identical to the published build: nothing rebuilt) | failed "
                  "(nothing published)",
        "files_seen": "Số tệp — raw files seen",
        "files_loaded": "Số tệp nạp — files with at least one form used (not rejected, not wholly superseded)",
        "files_rejected": "Số tệp bị từ chối — files rejected whole",
        "rows_loaded": "Số dòng nạp — accepted rows loaded into raw.* by this run (a run limited to some years counts "
                       "those years only; the other years were kept as published)",
        "rows_rejected": "Số dòng cách ly — quarantined rows (distinct file, sheet, row), same scope as rows_loaded",
        "years": "Năm — report years the run was limited to (NULL = all)",
        "backfill_years": "Năm xử lý lại — report years re-read whatever the cache said (backfill)",
        "message": "Ghi chú — why a run failed, or other note",
    }),
    "audit.file_issues": ("Tệp, trang tính bị từ chối/bỏ qua/thay thế — rejected, ignored or superseded files and "
                          "sheets, per run (current state: rows of the latest published run)", {
        "run_id": "Mã lần chạy — run id",
        "source_file": "Tệp nguồn — path relative to the raw folder",
        "sheet": "Trang tính — sheet name; NULL = the whole file",
        "reason": "Lý do — reason, in Vietnamese with the English code in brackets",
        "reason_code": "Mã lý do — reason code (e.g. unknown_district, unrecognized_sheet, superseded)",
        "severity": "Mức độ — rejected (unusable) | ignored (listed only) | superseded (replaced by a newer "
                    "resubmission)",
        "year": "Năm báo cáo — report year from the folder (NULL when the folder is not a year)",
        "unit_code": "Mã đơn vị báo cáo — reporting unit from the folder: district (up to 2024) or commune (from "
                     "2025); NULL for the province folder or when unknown",
    }),
    "audit.rejected_rows": ("Dòng bị cách ly — quarantined rows, one record per row and bad column, per run (current "
                            "state: rows of the latest published run)", {
        "run_id": "Mã lần chạy — run id",
        "source_file": "Tệp nguồn — path relative to the raw folder",
        "sheet": "Trang tính — sheet name",
        "row_number": "Dòng — row as Excel shows it (1-based)",
        "column_name": "Cột — canonical column at fault (NULL for a whole-row rule)",
        "raw_value": "Giá trị gốc — the value as sent",
        "reason": "Lý do — reason a district clerk understands (Vietnamese, English code in brackets)",
        "reason_code": "Mã lý do — reason code (e.g. invalid_date, duplicate_code)",
        "year": "Năm báo cáo — report year",
        "unit_code": "Mã đơn vị báo cáo — reporting unit: district (up to 2024) or commune (from 2025); NULL for the "
                     "province folder",
        "file_hash": "Mã băm tệp — sha256 of the source file",
    }),
    "audit.files": ("Sổ theo dõi tệp — ledger of every raw file seen: content hash, size, status in the latest run", {
        "source_file": "Tệp nguồn — path relative to the raw folder",
        "file_hash": "Mã băm — sha256 of the file's bytes (NULL when removed before hashing)",
        "size": "Kích thước — bytes",
        "modified_at": "Sửa lần cuối — file modification time (UTC)",
        "status": "Trạng thái — new | changed | unchanged | removed | rejected | superseded (in the latest run)",
        "year": "Năm báo cáo — report year from the folder",
        "unit_code": "Mã đơn vị báo cáo — reporting unit from the folder: district (up to 2024) or commune (from "
                     "2025); NULL for the province folder",
        "rows_loaded": "Số dòng nạp — accepted rows loaded from the file",
        "rows_rejected": "Số dòng cách ly — quarantined rows of the file (distinct sheet, row)",
        "first_seen_run": "Lần chạy đầu — run that first saw the file",
        "last_run": "Lần chạy gần nhất — latest run that saw it (for removed files: the run that noticed the removal)",
    }),
    "audit.sheets": ("Trang tính đã đọc — every sheet of the files in the current build, one row each: where its "
                     "header is and what became of every non-blank row below it (rows_loaded + rows_rejected + "
                     "rows_skipped_* = the non-blank rows below the header; a truly blank row is not counted). Current "
                     "state, rebuilt by every run", {
        "source_file": "Tệp nguồn — path relative to the raw folder",
        "sheet": "Trang tính — sheet name (a .csv file: its file stem)",
        "form": "Biểu — HTX | THT | HO_TRO | CHI_TIEU recognised by the header; NULL = no header of any form",
        "status": "Trạng thái — loaded (rows in raw.* / quarantine) | ignored (no header of any form: listed only) | "
                  "rejected (the sheet is unusable, see audit.current_file_issues: e.g. two_tables_on_sheet, "
                  "form_not_allowed_here) | superseded (replaced by a newer resubmission; the counts are as read)",
        "header_row": "Dòng tiêu đề — Excel row of the lowest header row (NULL = no header)",
        "rows_loaded": "Số dòng nạp — rows of the sheet loaded into raw.*",
        "rows_rejected": "Số dòng cách ly — quarantined rows of the sheet (distinct rows)",
        "rows_skipped_title": "Bỏ qua: dòng tiêu đề, ghi chú — non-blank rows skipped as a title or note line, a "
                              "repeated header or a line of units",
        "rows_skipped_column_numbers": "Bỏ qua: dòng số thứ tự cột — rows of column numbers (1 2 3 … / (1) (2) (3) …)",
        "rows_skipped_section": "Bỏ qua: dòng mục — section rows (STT a Roman numeral or a letter, no record in the "
                                "row)",
        "rows_skipped_total": "Bỏ qua: dòng tổng — total rows (Tổng…/Cộng…, no record in the row)",
        "rows_skipped_signature": "Bỏ qua: phần ký tên — signature block rows (captions, (Ký, ghi rõ họ tên), …, ngày "
                                  "… tháng … năm …, the signer's name)",
        "rows_skipped_no_data": "Bỏ qua: dòng không có số liệu — an STT alone, text only outside the form's columns, a "
                                "single stray cell",
        "year": "Năm báo cáo — report year from the folder",
        "unit_code": "Mã đơn vị báo cáo — reporting unit from the folder: district (up to 2024) or commune (from "
                     "2025); NULL for the province folder",
        "file_hash": "Mã băm tệp — sha256 of the source file",
    }),
}


#: The current state of the audit history: rows of the latest published run (a run that
#: rebuilt nothing or failed leaves the warehouse, and so these views, as they were).
_LATEST_PUBLISHED_RUN = ("(SELECT run_id FROM audit.runs WHERE status = 'published' "
                         "ORDER BY started_at DESC, run_id DESC LIMIT 1)")
_AUDIT_VIEWS: dict[str, tuple[str, str]] = {
    "audit.current_rejected_rows": (
        "audit.rejected_rows",
        "Dòng bị cách ly hiện nay — quarantined rows of the latest published run only (the current state; "
        "audit.rejected_rows keeps one copy per published run). Count here, not in the history"),
    "audit.current_file_issues": (
        "audit.file_issues",
        "Tệp, trang tính bị từ chối/bỏ qua/thay thế hiện nay — rejected, ignored or superseded files and sheets of "
        "the latest published run only (the current state; audit.file_issues keeps one copy per published run)"),
}


def audit_view_statements() -> list[str]:
    """CREATE OR REPLACE VIEW audit.current_* (rows of the latest published run) with their
    COMMENT ON, the column comments copied from the history tables."""
    stmts = []
    for view, (table, desc) in _AUDIT_VIEWS.items():
        stmts.append(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table} WHERE run_id = {_LATEST_PUBLISHED_RUN}")
        stmts.append(f"COMMENT ON VIEW {view} IS {sql_literal(desc)}")
        for col, d in _AUDIT_COMMENTS[table][1].items():
            stmts.append(f"COMMENT ON COLUMN {view}.{col} IS {sql_literal(d)}")
    return stmts


# --------------------------------------------------------------------------- build file
def open_build(build_file: Path, storage: str | None = "default") -> duckdb.DuckDBPyConnection:
    """Create (or open) the private build file, in a storage version DuckDB 1.5 can read, with
    DuckDB's memory bounded (`build_memory_limit`).

    `storage="default"` uses `storage_version()` (COOP_STORAGE_VERSION or v1.5.0)."""
    if storage == "default":
        storage = storage_version()
    config: dict[str, Any] = {}
    if storage:
        config["storage_compatibility_version"] = storage
    memory = build_memory_limit()
    if memory:
        config["memory_limit"] = memory
    build_file.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(build_file), config=config)
    # no DuckDB progress bar: it prints to the run's console for any query past 2 s (a spilling
    # model at national scale); the run has its own stage lines. A session setting (not config)
    con.execute("SET enable_progress_bar = false")
    return con


def create_tables(con: duckdb.DuckDBPyConnection, reference: Reference | None = None,
                  settings: Mapping[str, Any] | None = None) -> None:
    """raw.* and ref.* (coop.warehouse.models.create_input_tables), audit.*; fill ref.districts and ref.settings."""
    from coop.warehouse.models import create_input_tables

    create_input_tables(con)
    stmts = ["CREATE SCHEMA IF NOT EXISTS audit"]
    for name, cols in _AUDIT_DDL.items():
        stmts.append(f"CREATE TABLE IF NOT EXISTS {name} {cols}")
    stmts += comment_statements(_AUDIT_COMMENTS)
    stmts += audit_view_statements()
    run_in_transaction(con, stmts)
    from coop.run.ops import create_meta_tables

    create_meta_tables(con)  # meta.schema_version (its row) and meta.build_info (filled by finish_run)

    frames = reference_frames(reference)
    merged = build_settings(reference, settings)
    with transaction(con):
        for table, frame in frames.items():  # noqa: B007  (frame read by DuckDB by name)
            con.execute(f"DELETE FROM {table}").fetchall()
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame").fetchall()
        con.execute("DELETE FROM ref.settings").fetchall()
        con.executemany("INSERT INTO ref.settings (key, value) VALUES (?, ?)", list(merged.items()))


def build_settings(reference: Reference | None = None, settings: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every ref.settings row of a build (the SQL models read them): DEFAULT_SETTINGS, the
    funding backlog window from coop.toml / COOP_BACKLOG_WINDOW_YEARS (`coop.settings`),
    whose plan the province folder holds (`plan_provinces`), the storage version; `settings`
    overrides. The run's build fingerprint includes them, so changing one rebuilds."""
    from coop.settings import load_settings

    merged = dict(DEFAULT_SETTINGS)
    merged["backlog_window_years"] = str(load_settings().backlog_window_years)
    merged.update(plan_provinces(reference))
    for k, v in (settings or {}).items():
        merged[str(k)] = str(v)
    merged.setdefault("storage_version", storage_version() or "native")
    return merged


def plan_provinces(reference: Reference | None = None) -> dict[str, str]:
    """ref.settings keys telling whose plan the province folder holds: `plan_province_current`
    (today's province, from 2025) and `plan_province_former` (before 2025: the setting
    `former_plan_province`, else the only predecessor); a key is left out when there is none
    (the plan is then compared with the whole warehouse, e.g. for VN)."""
    from coop.settings import load_settings

    reference = reference if reference is not None else load_reference()
    out: dict[str, str] = {}
    if reference.is_country or not reference.areas:
        return out
    out["plan_province_current"] = reference.province_code
    former = load_settings().former_plan_province
    if former and former.zfill(2) in reference.areas:
        out["plan_province_former"] = former.zfill(2)
    elif len(reference.areas) == 1:
        out["plan_province_former"] = next(iter(reference.areas))
    return out


def _units_frame(units: list[Unit]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"unit_code": u.code, "level": u.level, "unit_name": u.name, "unit_kind": u.kind or None,
          "province_code": u.province_code, "area_code": u.area_code, "valid_from": u.valid_from,
          "valid_to": u.valid_to, "lineage_district_code": u.lineage_district_code or None} for u in units],
        schema={"unit_code": pl.String, "level": pl.String, "unit_name": pl.String, "unit_kind": pl.String,
                "province_code": pl.String, "area_code": pl.String, "valid_from": pl.Date, "valid_to": pl.Date,
                "lineage_district_code": pl.String})


def districts_frame(reference: Reference | None = None) -> pl.DataFrame:
    """ref.districts rows: the district-level units of the reference (default: the shipped one)."""
    reference = reference if reference is not None else load_reference()
    return _units_frame(reference.districts).select(
        pl.col("unit_code").alias("district_code"), pl.col("unit_name").alias("district_name"),
        "province_code", "valid_from", "valid_to")


def reference_frames(reference: Reference | None = None) -> dict[str, pl.DataFrame]:
    """Every ref.* unit table of the province served: units, districts, provinces, former
    communes and lineage (the last three only when the reference folder has the 2025 files)."""
    reference = reference if reference is not None else load_reference()
    out = {"ref.units": _units_frame(reference.units), "ref.districts": districts_frame(reference)}
    from schemas.vocabularies import vocabularies_frame  # ref.vocabularies: vocabularies.toml

    out["ref.vocabularies"] = vocabularies_frame(reference)
    d = reference.directory
    if not (d / "provinces.csv").exists():
        return out
    areas = list(reference.areas)
    served = set(reference.provinces)
    merge = pl.read_csv(d / "province_merge.csv", infer_schema=False)
    provinces = pl.read_csv(d / "provinces.csv", infer_schema=False).join(
        merge.rename({"former_province_code": "province_code"}), on="province_code", how="left")
    out["ref.provinces"] = provinces.select(
        "province_code", "province_name", "era",
        pl.col("valid_from").replace("", None).str.to_date(), pl.col("valid_to").replace("", None).str.to_date(),
        pl.when(pl.col("era") == "current").then(pl.col("province_code"))
          .otherwise(pl.col("current_province_code")).alias("current_province_code"),
    ).with_columns(pl.col("current_province_code").is_in(list(served)).alias("served"))
    out["ref.former_communes"] = pl.read_csv(d / "former_communes.csv", infer_schema=False).filter(
        pl.col("province_code").is_in(areas))
    out["ref.commune_lineage"] = pl.read_csv(d / "commune_lineage.csv", infer_schema=False).filter(
        pl.col("old_province_code").is_in(areas)).with_columns(
        (pl.col("split") == "true").alias("split"), (pl.col("is_default") == "true").alias("is_default"))
    return out


# --------------------------------------------------------------------------- loading results
@dataclass
class FileLoad:
    """What one file contributed to the build."""

    source_file: str
    year: int | None
    unit_code: str | None
    file_hash: str | None
    rows_loaded: int = 0
    rows_rejected: int = 0  # distinct (sheet, row) quarantined
    rejected_whole: bool = False
    forms: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadStats:
    files: dict[str, FileLoad] = field(default_factory=dict)
    rows_per_table: dict[str, int] = field(default_factory=dict)
    rows_skipped: dict[str, int] = field(default_factory=dict)  # kind -> rows, sheets loaded (audit.sheets)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files.values())

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files.values())


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".", 1)
    return [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "ORDER BY column_index", [schema, name]).fetchall()]


def _issue_dict(i: FileIssue | Mapping[str, Any]) -> dict[str, Any]:
    """A FileIssue (dataclass) or an issue dict -> the audit.file_issues columns."""
    d = i if isinstance(i, Mapping) else dataclasses.asdict(i)
    return {k: d.get(k) for k in ("source_file", "sheet", "reason", "reason_code", "severity")}


def load_results(con: duckdb.DuckDBPyConnection, results: Iterable[FileResult], run_id: str,
                 extra_issues: Iterable[FileIssue | Mapping[str, Any]] = ()) -> LoadStats:
    """Load accepted rows of `results` (selected FileResults) into raw.*, their quarantined rows
    into audit.rejected_rows and their file issues (plus `extra_issues`, e.g. from discovery or
    submission selection) into audit.file_issues — all tagged with `run_id`. One Arrow insert
    per table, in one transaction. Returns per-file counts."""
    results = list(results)
    stats = LoadStats()
    per_form: dict[str, list[pl.DataFrame]] = {f: [] for f in FORM_TABLES}
    rejected: list[pl.DataFrame] = []
    issues: list[dict[str, Any]] = []
    where: dict[str, tuple[int | None, str | None]] = {}

    for r in results:
        fl = FileLoad(r.source_file, r.year, r.unit_code, r.file_hash)
        stats.files[r.source_file] = fl
        where[r.source_file] = (r.year, r.unit_code)
        lineage = [
            pl.lit(r.year, dtype=pl.Int32).alias("year"),
            pl.lit(r.unit_code, dtype=pl.String).alias("unit_code"),
            pl.lit(r.file_hash, dtype=pl.String).alias("file_hash"),
            pl.lit(run_id, dtype=pl.String).alias("run_id"),
        ]
        for form, df in (r.forms or {}).items():
            if form not in FORM_TABLES:
                raise ValueError(f"{r.source_file}: unknown form {form!r} in FileResult")
            if df is None or df.height == 0:
                continue
            per_form[form].append(df.with_columns(lineage))
            fl.forms[form] = df.height
            fl.rows_loaded += df.height
        rj = r.rejected_rows
        if rj is not None and rj.height:
            fl.rows_rejected = rj.select(["sheet", "row_number"]).unique().height
            rejected.append(rj.with_columns(
                pl.lit(r.year, dtype=pl.Int32).alias("year"),
                pl.lit(r.unit_code, dtype=pl.String).alias("unit_code"),
                pl.lit(r.file_hash, dtype=pl.String).alias("file_hash"),
            ))
        for i in r.file_issues or []:
            d = _issue_dict(i)
            issues.append(d)
            if d["sheet"] is None and d["severity"] == "rejected":
                fl.rejected_whole = True
    for extra in extra_issues:
        issues.append(_issue_dict(extra))

    with transaction(con):
        for form, frames in per_form.items():
            table = FORM_TABLES[form]
            if not frames:
                stats.rows_per_table[table] = 0
                continue
            cols = _table_columns(con, table)
            names = [c for c, _ in cols]
            frame = pl.concat([f.select([c for c in names if c in f.columns]) for f in frames],
                              how="diagonal_relaxed")
            missing = [c for c in names if c not in frame.columns]
            if missing:
                frame = frame.with_columns([pl.lit(None).alias(c) for c in missing])
            frame = frame.select(names)  # noqa: F841  (read by DuckDB by name)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame").fetchall()
            stats.rows_per_table[table] = frame.height
        if rejected:
            rej = pl.concat(rejected, how="diagonal_relaxed").with_columns(
                pl.lit(run_id, dtype=pl.String).alias("run_id"))
            keep = [c for c, _ in _table_columns(con, "audit.rejected_rows") if c in rej.columns]
            rej = rej.select(keep)  # noqa: F841
            con.execute("INSERT INTO audit.rejected_rows BY NAME SELECT * FROM rej").fetchall()
        if issues:
            iss = pl.DataFrame(issues, schema={"source_file": pl.String, "sheet": pl.String, "reason": pl.String,
                                               "reason_code": pl.String, "severity": pl.String})
            iss = iss.with_columns(
                pl.lit(run_id, dtype=pl.String).alias("run_id"),
                pl.col("source_file").map_elements(lambda s: where.get(s, (None, None))[0],
                                                   return_dtype=pl.Int32).alias("year"),
                pl.col("source_file").map_elements(lambda s: where.get(s, (None, None))[1],
                                                   return_dtype=pl.String).alias("unit_code"),
            )
            con.execute("INSERT INTO audit.file_issues BY NAME SELECT * FROM iss").fetchall()
        sheets = sheet_rows(results, stats)
        if sheets.height:
            con.execute("INSERT INTO audit.sheets BY NAME SELECT * FROM sheets").fetchall()
    return stats


def sheet_rows(results: Sequence[FileResult], stats: LoadStats | None = None) -> pl.DataFrame:
    """audit.sheets rows of `results` (one per SheetInfo); adds the skipped rows of the sheets
    loaded to `stats.rows_skipped`."""
    rows = []
    for r in results:
        by_sheet: dict[str, set[str]] = {}
        for i in r.file_issues or []:
            d = _issue_dict(i)
            if d["sheet"] is not None and d["source_file"] == r.source_file:
                by_sheet.setdefault(d["sheet"], set()).add(d["severity"])
        for s in r.sheets or []:
            sev = by_sheet.get(s.name, set())
            status = ("ignored" if not s.form else "rejected" if "rejected" in sev
                      else "superseded" if "superseded" in sev else "loaded")
            skipped = dict(getattr(s, "rows_skipped", None) or {})
            row = {"source_file": r.source_file, "sheet": s.name, "form": s.form, "status": status,
                   "header_row": s.header_row, "rows_loaded": s.rows_accepted, "rows_rejected": s.rows_rejected,
                   "year": r.year, "unit_code": r.unit_code, "file_hash": r.file_hash}
            for kind, col in SHEET_SKIP_COLUMNS.items():
                row[col] = int(skipped.get(kind, 0))
                if stats is not None and status == "loaded" and skipped.get(kind):
                    stats.rows_skipped[kind] = stats.rows_skipped.get(kind, 0) + int(skipped[kind])
            rows.append(row)
    schema = {"source_file": pl.String, "sheet": pl.String, "form": pl.String, "status": pl.String,
              "header_row": pl.Int32, "rows_loaded": pl.Int64, "rows_rejected": pl.Int64,
              **{c: pl.Int64 for c in SHEET_SKIP_COLUMNS.values()},
              "year": pl.Int32, "unit_code": pl.String, "file_hash": pl.String}
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- audit
def record_runs(con: duckdb.DuckDBPyConnection, runs: Sequence[RunRecord]) -> None:
    """Append rows to audit.runs."""
    if not runs:
        return
    cols = list(RunRecord.__dataclass_fields__)
    rows = []
    for r in runs:
        d = dict(r.__dict__)
        d["started_at"] = utc_naive(r.started_at)
        d["finished_at"] = utc_naive(r.finished_at) if r.finished_at else None
        rows.append(d)
    df = pl.DataFrame(rows, schema={  # noqa: F841
        "run_id": pl.String, "started_at": pl.Datetime("us"), "finished_at": pl.Datetime("us"),
        "status": pl.String, "kind": pl.String, "files_seen": pl.Int32, "files_loaded": pl.Int32,
        "files_rejected": pl.Int32, "rows_loaded": pl.Int64, "rows_rejected": pl.Int64, "years": pl.String,
        "backfill_years": pl.String, "message": pl.String}).select(cols)
    with transaction(con):
        con.execute("INSERT INTO audit.runs BY NAME SELECT * FROM df").fetchall()


@dataclass
class LedgerRow:
    source_file: str
    file_hash: str | None
    size: int | None
    modified_at: datetime | None
    status: str
    year: int | None
    unit_code: str | None
    rows_loaded: int = 0
    rows_rejected: int = 0
    first_seen_run: str | None = None
    last_run: str | None = None


def record_files(con: duckdb.DuckDBPyConnection, rows: Sequence[LedgerRow]) -> None:
    """Replace audit.files with the ledger of this build."""
    data = [dict(r.__dict__, modified_at=utc_naive(r.modified_at) if r.modified_at else None) for r in rows]
    df = pl.DataFrame(data, schema={  # noqa: F841
        "source_file": pl.String, "file_hash": pl.String, "size": pl.Int64, "modified_at": pl.Datetime("us"),
        "status": pl.String, "year": pl.Int32, "unit_code": pl.String, "rows_loaded": pl.Int64,
        "rows_rejected": pl.Int64, "first_seen_run": pl.String, "last_run": pl.String})
    with transaction(con):
        con.execute("DELETE FROM audit.files").fetchall()
        if data:
            con.execute("INSERT INTO audit.files BY NAME SELECT * FROM df").fetchall()


def read_ledger(published: Path) -> dict[str, dict[str, Any]]:
    """audit.files of the published warehouse (source_file -> row), {} when there is none."""
    if not Path(published).exists():
        return {}
    try:
        con = queries.connect_read_only(published)
    except duckdb.Error as e:
        log.warning("Cannot open the published warehouse %s to read its ledger: %s", published, e)
        return {}
    try:
        return queries.ledger(con)
    finally:
        con.close()


def _attach_read_only(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> set[tuple[str, str]]:
    """ATTACH `path` read-only as `alias`; its (schema, table) pairs. The caller DETACHes."""
    con.execute(f"ATTACH {sql_literal(str(path))} AS {alias} (READ_ONLY)").fetchall()
    try:
        return {(r[0], r[1]) for r in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [alias]).fetchall()}
    except BaseException:
        con.execute(f"DETACH {alias}").fetchall()
        raise


def carry_audit_history(con: duckdb.DuckDBPyConnection, published: Path) -> int:
    """Copy audit.runs / audit.file_issues / audit.rejected_rows of the previous published
    warehouse into this build (ATTACH READ_ONLY; columns matched by name, so older files with
    fewer columns work). Returns the number of runs carried."""
    published = Path(published)
    if not published.exists():
        return 0
    alias = "coop_previous"
    have = _attach_read_only(con, published, alias)
    try:
        n = 0
        with transaction(con):
            for table in ("audit.runs", "audit.file_issues", "audit.rejected_rows"):
                schema, name = table.split(".")
                if (schema, name) not in have:
                    continue
                mine = {c for c, _ in _table_columns(con, table)}
                theirs = [r[0] for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
                    "AND table_name = ? ORDER BY column_index", [alias, schema, name]).fetchall()]
                cols = ", ".join(f'"{c}"' for c in theirs if c in mine)
                con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {alias}.{schema}.{name}").fetchall()
                if table == "audit.runs":
                    n = con.execute(f"SELECT count(*) FROM {alias}.audit.runs").fetchall()[0][0]
    finally:
        con.execute(f"DETACH {alias}").fetchall()
    return n


# --------------------------------------------------------------------------- one build, end to end
class BuildRejected(RuntimeError):
    """The build was made but must not be published (an error-level data test failed)."""


def years_text(years: tuple[int, int] | None) -> str | None:
    if not years:
        return None
    return str(years[0]) if years[0] == years[1] else f"{years[0]}-{years[1]}"


def describe_error(exc: BaseException) -> str:
    """A one-paragraph reason for the operator (no traceback)."""
    if isinstance(exc, (BuildRejected,)):
        return str(exc)
    name = type(exc).__name__
    msg = str(exc).strip()
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted (Ctrl-C)."
    return f"{name}: {msg}" if msg else name


@dataclass
class BuildLoad:
    """What went into a build: per-file counts, the ledger, the issues, and the pending runs
    (no-op / failed runs) it now records."""

    stats: LoadStats
    ledger: list[LedgerRow]
    issues: list[dict[str, Any]]
    quarantine: dict[str, int]
    pending_recorded: list[str]
    files_seen: int = 0
    files_loaded: int = 0
    files_rejected: int = 0

    @property
    def rows_loaded(self) -> int:
        return self.stats.rows_loaded

    @property
    def rows_rejected(self) -> int:
        return self.stats.rows_rejected

    @property
    def rows_skipped(self) -> dict[str, int]:
        """Non-blank rows skipped by kind (title, column_numbers, …) in the sheets this run loaded."""
        return dict(self.stats.rows_skipped)


def ledger_rows(plan: Plan, stats: LoadStats, issues: Sequence[Mapping[str, Any]],
                previous: Mapping[str, Mapping[str, Any]], run_id: str) -> list[LedgerRow]:
    """audit.files for this build: every planned file (new/changed/unchanged, or rejected /
    superseded), every file discovery rejected, and files gone since the previous ledger (removed)."""
    rejected_whole = {i["source_file"] for i in issues
                      if i.get("sheet") is None and i.get("severity") == "rejected"}
    rows: list[LedgerRow] = []

    def first_seen(s: str) -> str:
        p = previous.get(s)
        return (p or {}).get("first_seen_run") or run_id

    superseded = {i["source_file"] for i in issues if i.get("severity") == "superseded"}
    for f in plan.files:
        fl = stats.files.get(f.source_file)
        if f.source_file in rejected_whole:
            status = "rejected"
        elif fl is None or (not fl.forms and f.source_file in superseded):
            status = "superseded"  # every form it carried was replaced by a newer resubmission
        else:
            status = f.status
        rows.append(LedgerRow(f.source_file, f.file_hash, f.size, f.modified_at, status, f.year, f.unit_code,
                              fl.rows_loaded if fl else 0, fl.rows_rejected if fl else 0, first_seen(f.source_file),
                              run_id))
    for s, hf in sorted(plan.issue_files.items()):
        year, dc = plan.issue_where.get(s, (None, None))
        rows.append(LedgerRow(s, hf.file_hash, hf.size, hf.modified_at, "rejected", year, dc, 0, 0, first_seen(s),
                              run_id))
    for s in plan.removed:
        p = previous[s]
        rows.append(LedgerRow(s, p.get("file_hash"), p.get("size"), p.get("modified_at"), "removed", p.get("year"),
                              p.get("unit_code"), 0, 0, p.get("first_seen_run"), run_id))
    seen = {r.source_file for r in rows}
    # out of this run's scope (--years): keep the previous ledger rows as they were
    for s, p in previous.items():
        if s not in seen and not _in_scope(p.get("year"), plan.years):
            rows.append(LedgerRow(s, p.get("file_hash"), p.get("size"), p.get("modified_at"), p["status"],
                                  p.get("year"), p.get("unit_code"), p.get("rows_loaded") or 0,
                                  p.get("rows_rejected") or 0, p.get("first_seen_run"), p.get("last_run")))
        elif s not in seen and p.get("status") == "removed":
            rows.append(LedgerRow(s, p.get("file_hash"), p.get("size"), p.get("modified_at"), "removed",
                                  p.get("year"), p.get("unit_code"), 0, 0, p.get("first_seen_run"), p.get("last_run")))
    return rows


def _in_scope(year: int | None, years: tuple[int, int] | None) -> bool:
    return years is None or (year is not None and years[0] <= year <= years[1])


def carry_other_years(con: duckdb.DuckDBPyConnection, published: Path, years: tuple[int, int], run_id: str) -> None:
    """For a run limited to `years`: copy the raw rows of the other years from the published
    warehouse (with their original lineage), and the latest published run's quarantine and
    file issues for those years (re-tagged with this run's id, so that "the latest run"
    still describes every year)."""
    published = Path(published)
    if not published.exists():
        return
    alias = "coop_previous_years"
    have = _attach_read_only(con, published, alias)
    try:
        outside = f"(year IS NULL OR year NOT BETWEEN {int(years[0])} AND {int(years[1])})"
        with transaction(con):
            for table in FORM_TABLES.values():
                schema, name = table.split(".")
                if (schema, name) in have:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {alias}.{schema}.{name} "
                                f"WHERE {outside}").fetchall()
            if ("audit", "runs") in have:
                last = con.execute(f"SELECT run_id FROM {alias}.audit.runs WHERE status = 'published' "
                                   "ORDER BY started_at DESC LIMIT 1").fetchall()
                if last:
                    for table in ("audit.file_issues", "audit.rejected_rows"):
                        schema, name = table.split(".")
                        if (schema, name) in have:
                            con.execute(
                                f"INSERT INTO {table} BY NAME SELECT * REPLACE ({sql_literal(run_id)} AS run_id) "
                                f"FROM {alias}.{schema}.{name} WHERE run_id = ? AND {outside}", [last[0][0]]).fetchall()
            if ("audit", "sheets") in have:  # current state: the other years' sheets as published
                con.execute(f"INSERT INTO audit.sheets BY NAME SELECT * FROM {alias}.audit.sheets "
                            f"WHERE {outside}").fetchall()
    finally:
        con.execute(f"DETACH {alias}").fetchall()


def _record_pending(con: duckdb.DuckDBPyConnection, pending: Sequence[Mapping[str, Any]]) -> None:
    """The pending runs (failed or unchanged runs since the last publish) not in audit.runs yet."""
    known = {r[0] for r in con.execute("SELECT run_id FROM audit.runs").fetchall()}
    record_runs(con, [RunRecord.from_json(p) for p in pending if p.get("run_id") not in known])


def skipped_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows skipped per kind (title, total, signature, ...) over the loaded sheets of audit.sheets."""
    sums = con.execute("SELECT " + ", ".join(f"sum({c})" for c in SHEET_SKIP_COLUMNS.values())
                       + " FROM audit.sheets WHERE status = 'loaded'").fetchall()[0]
    return {k: int(n) for k, n in zip(SHEET_SKIP_COLUMNS, sums, strict=True) if n}


def load_build(build: Path, warehouse: Path, reference: Reference, plan: Plan,
               results: Sequence[FileResult], extra_issues: Sequence[FileIssue | Mapping[str, Any]], run: RunRecord,
               previous: Mapping[str, Mapping[str, Any]],
               pending: Sequence[Mapping[str, Any]] = ()) -> BuildLoad:
    """Create the build file and load everything into it: tables, previous audit history,
    (for a --years run) the other years as published, this run's rows, quarantine, issues,
    the ledger, and the pending runs. Checkpoints and closes the file."""
    con = open_build(Path(build))
    try:
        create_tables(con, reference)
        carry_audit_history(con, warehouse)
        if plan.years is not None:
            carry_other_years(con, warehouse, plan.years, run.run_id)
        stats = load_results(con, results, run.run_id, extra_issues)
        issues = ([_issue_dict(i) for r in results for i in (r.file_issues or [])]
                  + [_issue_dict(i) for i in extra_issues])
        quarantine: dict[str, int] = {}
        for r in results:
            if r.rejected_rows is not None and r.rejected_rows.height:
                for code, n in r.rejected_rows.group_by("reason_code").len().iter_rows():
                    quarantine[code] = quarantine.get(code, 0) + n
        ledger = ledger_rows(plan, stats, issues, previous, run.run_id)
        record_files(con, ledger)
        _record_pending(con, pending)
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()
    return _build_load(stats, ledger, issues, quarantine, pending, run.run_id)


def copy_published(published: Path, build: Path) -> None:
    """The build starts as a byte copy of the published file (never opened for writing: the
    copy is). Measured faster than DuckDB's `COPY FROM DATABASE` (docs/performance.md)."""
    import shutil

    Path(build).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(published, build)
    wal = Path(f"{published}.wal")
    if wal.exists():  # a published file is checkpointed; a WAL beside it is copied all the same
        shutil.copyfile(wal, Path(f"{build}.wal"))


def _names_frame(names: Iterable[str]) -> pl.DataFrame:
    return pl.DataFrame({"source_file": sorted(names)}, schema={"source_file": pl.String})


def load_incremental(build: Path, warehouse: Path, reference: Reference, plan: Plan,
                     results: Sequence[FileResult], extra_issues: Sequence[FileIssue | Mapping[str, Any]],
                     run: RunRecord, previous: Mapping[str, Mapping[str, Any]], base_run_id: str,
                     kept: Iterable[str], pending: Sequence[Mapping[str, Any]] = ()) -> BuildLoad:
    """The build as a copy of the published warehouse with only what changed redone.

    Every file not in `kept` loses its raw rows, its sheets and (for this run) its quarantine and
    issues; the rows of `results` (the selected results of the files replaced) are loaded; the
    base run's quarantine and issues of the kept files are recorded again under this run's id
    (the audit history of earlier runs is in the copy already). The ledger is made as in a full
    build. The result equals `load_build` on every current result (tests/test_incremental_build.py),
    but for `run_id` on the raw rows of kept files: the run that loaded them."""
    copy_published(Path(warehouse), Path(build))
    con = open_build(Path(build))
    try:
        # ref.*, comments, views and meta.* are as published: the same reference, settings, loader
        # and schema version (coop.run.planning.incremental_basis)
        keep = _names_frame(set(kept))  # noqa: F841  (read by DuckDB by name)
        gone = _names_frame((set(previous) | {f.source_file for f in plan.files} | set(plan.issue_files))  # noqa: F841
                            - set(kept))
        with transaction(con):
            for table in FORM_TABLES.values():
                con.execute(f"DELETE FROM {table} WHERE source_file IN (SELECT source_file FROM gone)").fetchall()
            con.execute("DELETE FROM audit.sheets WHERE source_file NOT IN (SELECT source_file FROM keep)").fetchall()
            con.execute("DELETE FROM audit.files").fetchall()
            for table in ("audit.rejected_rows", "audit.file_issues"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run.run_id]).fetchall()  # idempotent
                con.execute(f"INSERT INTO {table} BY NAME SELECT * REPLACE (? AS run_id) FROM {table} "
                            "WHERE run_id = ? AND source_file IN (SELECT source_file FROM keep)",
                            [run.run_id, base_run_id]).fetchall()
        stats = load_results(con, results, run.run_id, extra_issues)
        _kept_stats(con, stats, plan, set(kept), run.run_id)
        issue_cols = ("source_file", "sheet", "reason", "reason_code", "severity")
        issues = [dict(zip(issue_cols, r, strict=True)) for r in con.execute(
            "SELECT source_file, sheet, reason, reason_code, severity FROM audit.file_issues WHERE run_id = ?",
            [run.run_id]).fetchall()]
        quarantine = {str(k): int(n) for k, n in con.execute(
            "SELECT reason_code, count(*) FROM audit.rejected_rows WHERE run_id = ? GROUP BY 1",
            [run.run_id]).fetchall()}
        stats.rows_skipped = skipped_rows(con)
        ledger = ledger_rows(plan, stats, issues, previous, run.run_id)
        record_files(con, ledger)
        _record_pending(con, pending)
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()
    return _build_load(stats, ledger, issues, quarantine, pending, run.run_id)


def _kept_stats(con: duckdb.DuckDBPyConnection, stats: LoadStats, plan: Plan, kept: set[str], run_id: str) -> None:
    """FileLoad of every kept file a full build would have among its selected results, from the
    build itself: a file with sheets, rows, quarantine or an issue placed in its folder (a file
    dropped whole by a resubmission has none of them), with its rows per form in raw.* and its
    quarantined (sheet, row) pairs of this run: the counts a full build takes from the results."""
    keep = _names_frame(kept)  # noqa: F841
    inside = "source_file IN (SELECT source_file FROM keep)"
    present = {r[0] for r in con.execute(
        f"SELECT source_file FROM audit.sheets WHERE {inside} UNION "
        f"SELECT source_file FROM audit.file_issues WHERE run_id = ? AND year IS NOT NULL AND {inside}",
        [run_id]).fetchall()}
    forms: dict[str, dict[str, int]] = {}
    for form, table in FORM_TABLES.items():
        for src, n in con.execute(f"SELECT source_file, count(*) FROM {table} WHERE {inside} GROUP BY 1").fetchall():
            forms.setdefault(src, {})[form] = int(n)
    rejected = dict(con.execute(
        f"SELECT source_file, count(DISTINCT (sheet, row_number)) FROM audit.rejected_rows "
        f"WHERE run_id = ? AND {inside} GROUP BY 1", [run_id]).fetchall())
    planned = {f.source_file: f for f in plan.files}
    for src in sorted(present | set(forms) | set(rejected)):
        f = planned.get(src)
        if f is None:
            continue
        stats.files[src] = FileLoad(src, f.year, f.unit_code, f.file_hash,
                                    rows_loaded=sum(forms.get(src, {}).values()),
                                    rows_rejected=int(rejected.get(src, 0)), forms=dict(forms.get(src, {})))


def _build_load(stats: LoadStats, ledger: list[LedgerRow], issues: list[dict[str, Any]], quarantine: dict[str, int],
                pending: Sequence[Mapping[str, Any]], run_id: str) -> BuildLoad:
    in_scope = [x for x in ledger if x.last_run == run_id and x.status != "removed"]
    return BuildLoad(
        stats=stats, ledger=ledger, issues=issues, quarantine=quarantine,
        pending_recorded=[p["run_id"] for p in pending],  # every pending record is a RunRecord.to_json
        files_seen=len(in_scope),
        files_loaded=sum(1 for f in stats.files.values() if f.forms),
        files_rejected=sum(1 for x in in_scope if x.status == "rejected"),
    )


def finish_run(build: Path, run: RunRecord) -> None:
    """Record this run in the build's audit.runs, CHECKPOINT and close (just before publish)."""
    con = open_build(Path(build))
    try:
        con.execute("DELETE FROM audit.runs WHERE run_id = ?", [run.run_id]).fetchall()  # idempotent
        record_runs(con, [run])
        from coop.run.ops import write_build_info

        write_build_info(con, run.run_id, run.finished_at)  # meta.build_info: the build this file is
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()


def published_state(published: Path) -> dict[str, Any]:
    """What the published warehouse holds now, for the report of a run that rebuilt nothing:
    rows per year and district (ledger), quarantine by reason and file issues of the latest
    published run. Empty dict when there is no readable warehouse."""
    published = Path(published)
    if not published.exists():
        return {}
    try:
        con = queries.connect_read_only(published)
    except duckdb.Error:
        return {}
    try:
        run_id = queries.latest_published_run(con)
        districts = [
            {"year": y, "unit_code": dc, "unit_name": n if dc else "Tỉnh (province)",
             "rows_loaded": int(a or 0), "rows_rejected": int(b or 0)}
            for y, dc, n, a, b in con.execute(
                "SELECT f.year, f.unit_code, d.unit_name, sum(f.rows_loaded), sum(f.rows_rejected) "
                "FROM audit.files f LEFT JOIN ref.units d USING (unit_code) "
                "WHERE f.status NOT IN ('removed', 'rejected', 'superseded') GROUP BY ALL ORDER BY ALL").fetchall()]
        quarantine = dict(con.execute("SELECT reason_code, count(*) FROM audit.rejected_rows WHERE run_id = ? "
                                      "GROUP BY 1", [run_id]).fetchall())
        issue_cols = ("source_file", "sheet", "reason_code", "reason", "severity")
        issues = [dict(zip(issue_cols, r, strict=True)) for r in con.execute(
            "SELECT source_file, sheet, reason_code, reason, severity FROM audit.file_issues WHERE run_id = ? "
            "ORDER BY 1, 2", [run_id]).fetchall()]
        skipped: dict[str, int] = {}
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'audit' "
                       "AND table_name = 'sheets'").fetchall()[0][0]:  # warehouses built before it have none
            skipped = skipped_rows(con)
    except duckdb.Error:
        return {}
    finally:
        con.close()
    return {"run_id": run_id, "districts": districts, "quarantine": quarantine, "file_issues": issues,
            "skipped": skipped}
