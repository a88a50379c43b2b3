"""SQL data tests: each `sql/tests/<name>.sql` is a SELECT returning offending rows (zero rows =
pass), with a header

    -- severity: error|warn
    -- description: what the test checks

Error-level failures block publish (`blocking_failures`); warn-level ones are reported only.
A test whose SQL itself fails counts as a failure of its severity, with the database error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from coop.paths import SQL_DIR

SEVERITIES = ("error", "warn")
SAMPLE_ROWS = 5

_SEV_RE = re.compile(r"^\s*--\s*severity\s*:\s*(\S+)\s*$", re.I)
_DESC_RE = re.compile(r"^\s*--\s*description\s*:\s*(.+?)\s*$", re.I)


class DataTestDefinitionError(Exception):
    """A test file without a valid severity or description header."""


@dataclass
class DataTestResult:
    name: str
    severity: str                   # "error" | "warn"
    description: str
    failing_rows: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None        # the database error when the test's SQL could not run

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0 and self.error is None

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.passed

    def message(self) -> str:
        """One readable paragraph: test name, severity, what it checks and a few offending rows."""
        if self.passed:
            return f"[{self.severity}] {self.name}: passed — {self.description}"
        if self.error is not None:
            return f"[{self.severity}] {self.name}: could not run — {self.description}\n    {self.error}"
        lines = [f"[{self.severity}] {self.name}: {self.failing_rows} offending row(s) — {self.description}"]
        for row in self.sample:
            lines.append("    " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
        if self.failing_rows > len(self.sample):
            lines.append(f"    … and {self.failing_rows - len(self.sample)} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "description": self.description,
                "failing_rows": self.failing_rows, "passed": self.passed, "error": self.error,
                "sample": [{k: _jsonable(v) for k, v in r.items()} for r in self.sample]}


def _fmt(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def parse_test_file(path: Path) -> tuple[str, str, str]:
    """-> (severity, description, sql). Raises DataTestDefinitionError on a missing/invalid header."""
    text = Path(path).read_text(encoding="utf-8")
    severity = description = None
    for line in text.splitlines():
        if severity is None and (m := _SEV_RE.match(line)):
            severity = m.group(1).lower()
        elif description is None and (m := _DESC_RE.match(line)):
            description = m.group(1)
    if severity not in SEVERITIES:
        raise DataTestDefinitionError(
            f"{path}: needs a header line '-- severity: error' or '-- severity: warn' (found {severity!r})")
    if not description:
        raise DataTestDefinitionError(f"{path}: needs a header line '-- description: ...'")
    return severity, description, text.strip().rstrip(";").strip()


def run_data_test(con: duckdb.DuckDBPyConnection, path: Path, sample_rows: int = SAMPLE_ROWS) -> DataTestResult:
    severity, description, sql = parse_test_file(path)
    name = Path(path).stem
    try:
        n = con.execute(f"SELECT count(*) FROM (\n{sql}\n) AS offending").fetchall()[0][0]
        sample: list[dict[str, Any]] = []
        if n:
            cur = con.execute(f"SELECT * FROM (\n{sql}\n) AS offending LIMIT {int(sample_rows)}")
            cols = [d[0] for d in cur.description]
            sample = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    except duckdb.Error as e:
        return DataTestResult(name, severity, description, 0, [], error=f"{type(e).__name__}: {e}")
    return DataTestResult(name, severity, description, int(n), sample)


def run_data_tests(con: duckdb.DuckDBPyConnection, tests_dir: Path = SQL_DIR / "tests") -> list[DataTestResult]:
    """Run every `*.sql` in tests_dir (sorted by name). Header errors raise DataTestDefinitionError
    before anything runs."""
    paths = sorted(Path(tests_dir).glob("*.sql"))
    for p in paths:
        parse_test_file(p)
    return [run_data_test(con, p) for p in paths]


def blocking_failures(results: list[DataTestResult]) -> list[DataTestResult]:
    """The error-level tests that failed (offending rows or SQL error): these block publish."""
    return [r for r in results if r.blocking]


def summary(results: list[DataTestResult]) -> str:
    """Short text: counts in the words of every report (`coop.outputs.run_report.data_tests_phrase`:
    '32 data tests: 30 passed, 1 warned, 1 failed'), then the message of every test that did
    not pass (blocking first)."""
    from coop.outputs.run_report import data_tests_phrase

    failed = [r for r in results if not r.passed]
    failed.sort(key=lambda r: (r.severity != "error", r.name))
    return "\n".join([data_tests_phrase(results)] + [r.message() for r in failed])
