"""The read-only side of the warehouse: one way to open the published file and to ask it
for the latest published run, the file ledger and the current state of the audit.

Used by everything that reads the published warehouse without building it — `coop status`,
`coop feedback`, `coop report`, `coop plan` / `runs`, the console summary, the publish
guards and the loader's view of the previous build. A published file is always opened
READ_ONLY (analysts may hold it open too), and closed when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

import duckdb

#: The latest run that published a warehouse: the run whose audit rows are the current state.
LATEST_PUBLISHED_RUN = ("SELECT run_id FROM audit.runs WHERE status = 'published' "
                        "ORDER BY started_at DESC, run_id DESC LIMIT 1")


def connect_read_only(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A READ_ONLY connection to a published warehouse file (the caller closes it)."""
    return duckdb.connect(str(warehouse), read_only=True)


@contextmanager
def read_only(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with read_only(path) as con:` — opened READ_ONLY, always closed."""
    con = connect_read_only(warehouse)
    try:
        yield con
    finally:
        con.close()


def open_problem(warehouse: Path, exc: BaseException) -> str:
    """Why a published warehouse could not be opened, and what to do (Vietnamese, then English)."""
    detail = " ".join(str(exc).split())[:300]
    if "lock" in detail.lower():
        return (f"Không mở được kho dữ liệu {warehouse}: một chương trình khác đang mở nó để ghi (ví dụ duckdb "
                f"không có -readonly); hãy đóng chương trình đó. (The warehouse is held open for writing by "
                f"another program: {detail})")
    return (f"Không đọc được kho dữ liệu {warehouse}: tệp bị hỏng? Khôi phục bằng `coop rollback` hoặc dựng lại "
            f"bằng `coop backfill --all`. (Cannot open the warehouse: {type(exc).__name__}: {detail})")


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """`schema.table` of every table and view of the open database."""
    rows = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() "
                       "UNION SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    return {r[0] for r in rows}


def latest_published_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run id of the latest published run, None when the file records none."""
    try:
        r = con.execute(LATEST_PUBLISHED_RUN).fetchall()
    except duckdb.CatalogException:  # not a coop warehouse (no audit.runs)
        return None
    return str(r[0][0]) if r else None


class RunCounts(TypedDict, total=False):
    """A run's file and row counts, as audit.runs has them (no key at all: the run is not recorded)."""

    files_seen: int
    files_loaded: int
    files_rejected: int
    rows_loaded: int
    rows_rejected: int


def run_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> RunCounts:
    """files_seen/loaded/rejected and rows_loaded/rejected of one run ({} if not recorded)."""
    cols = ("files_seen", "files_loaded", "files_rejected", "rows_loaded", "rows_rejected")
    r = con.execute(f"SELECT {', '.join(cols)} FROM audit.runs WHERE run_id = ? LIMIT 1", [run_id]).fetchall()
    if not r:
        return {}
    seen, loaded, rejected, rows_loaded, rows_rejected = (int(v or 0) for v in r[0])
    return {"files_seen": seen, "files_loaded": loaded, "files_rejected": rejected,
            "rows_loaded": rows_loaded, "rows_rejected": rows_rejected}


def ledger(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """audit.files (the file ledger): source_file -> row; {} when the table is missing."""
    if "audit.files" not in tables(con):
        return {}
    df = con.sql("SELECT * FROM audit.files").pl()
    return {r["source_file"]: r for r in df.to_dicts()}
