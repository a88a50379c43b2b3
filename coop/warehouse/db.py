"""Small DuckDB helpers shared by the load and model steps.

Public:
    sql_literal(s) -> str                    a SQL string literal ('...' with quotes doubled)
    transaction(con)                         context manager: BEGIN, COMMIT, ROLLBACK on any error
    run_in_transaction(con, stmts) -> None   statements in one explicit transaction
    comment_statements(comments) -> list[str]  COMMENT ON TABLE/COLUMN statements
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import duckdb


def sql_literal(s: object) -> str:
    """`s` as a SQL string literal: single quotes around it, inner single quotes doubled."""
    return "'" + str(s).replace("'", "''") + "'"


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One explicit transaction (DuckDB 2 auto-commits statement by statement otherwise):
    committed when the block ends, rolled back on any error (KeyboardInterrupt included)."""
    con.begin()
    try:
        yield con
        con.commit()
    except BaseException:
        con.rollback()
        raise


def run_in_transaction(con: duckdb.DuckDBPyConnection, stmts: Sequence[str]) -> None:
    """Run statements in one explicit transaction; each result is fetched with `.fetchall()`."""
    with transaction(con):
        for s in stmts:
            con.execute(s).fetchall()


def comment_statements(comments: Mapping[str, tuple[str, Mapping[str, str]]]) -> list[str]:
    """COMMENT ON TABLE / COLUMN statements for {table: (table description, {column: description})}."""
    stmts: list[str] = []
    for name, (tdesc, cdescs) in comments.items():
        stmts.append(f"COMMENT ON TABLE {name} IS {sql_literal(tdesc)}")
        for col, d in cdescs.items():
            stmts.append(f"COMMENT ON COLUMN {name}.{col} IS {sql_literal(d)}")
    return stmts
