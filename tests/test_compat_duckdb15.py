"""The published warehouse opens in DuckDB 1.5 (analysts' drivers lag behind DuckDB 2.0).

DuckDB 1.5 runs in a side environment, `.venv-duckdb15/` at the project root, built from the
hash-pinned `requirements-duckdb15.lock` by `make venv-duckdb15` (`make test` builds it first).
Nothing is installed at test time: without that environment the tests fail, saying how to build it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop.warehouse import load, publish

ROOT = Path(__file__).resolve().parent.parent
SIDE_LOCK = ROOT / "requirements-duckdb15.lock"
SIDE_PYTHON = ROOT / ".venv-duckdb15" / "bin" / "python"
BUILD_HINT = "build it with `make venv-duckdb15` (from requirements-duckdb15.lock; `make test` does this first)"

READER = r"""
import json, sys, duckdb
out = {"version": duckdb.__version__}
try:
    con = duckdb.connect(sys.argv[1], read_only=True)
except Exception as e:
    out["error"] = str(e)
    print(json.dumps(out)); sys.exit(0)
tables = con.execute("SELECT schema_name, table_name, comment FROM duckdb_tables() ORDER BY 1, 2").fetchall()
out["tables"] = {f"{s}.{t}": c for s, t, c in tables}
out["counts"] = {f"{s}.{t}": con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchall()[0][0] for s, t, _ in tables}
out["undescribed_columns"] = con.execute(
    "SELECT count(*) FROM duckdb_columns() WHERE NOT internal AND (comment IS NULL OR comment = '')").fetchall()[0][0]
out["province"] = con.execute("SELECT year, entity_type, active_count, members FROM marts.province_indicators "
                              "ORDER BY 1, 2").fetchall()
print(json.dumps(out, default=str))
"""


def _side_python() -> Path:
    if not SIDE_PYTHON.exists():
        pytest.fail(f"the DuckDB 1.5 side environment is missing: no {SIDE_PYTHON}; {BUILD_HINT}", pytrace=False)
    return SIDE_PYTHON


def _pinned_15() -> str:
    m = re.search(r"^duckdb==(\S+)", SIDE_LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    assert m, f"no duckdb==... pin in {SIDE_LOCK}"
    return m.group(1)


def _read_with_15(path: Path) -> dict:
    r = subprocess.run([str(_side_python()), "-c", READER, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{r.stderr}\n(is {SIDE_PYTHON.parent.parent.name} complete? {BUILD_HINT})"
    return json.loads(r.stdout)


def _build_and_publish(tmp_path: Path, storage: str | None = "default") -> Path:
    from coop.warehouse.models import run_models

    raw = F.write_raw(tmp_path / "raw")
    files, issues = F.discover(raw, F.load_reference(), None)
    target = tmp_path / "wh" / "coop.duckdb"
    build = tmp_path / "wh" / ".coop.duckdb.build-t"
    con = load.open_build(build, storage=storage)
    load.create_tables(con, F.load_reference())
    load.load_results(con, [F.ingest_file(f, None) for f in files], "run-1", extra_issues=issues)
    run_models(con)
    publish.finalize_build(con)
    return publish.publish(build, target)


def test_published_warehouse_opens_in_duckdb_15(tmp_path):
    wh = _build_and_publish(tmp_path)
    got = _read_with_15(wh)
    assert got["version"].startswith("1.5."), got["version"]
    pinned = _pinned_15()
    assert got["version"] == pinned, (
        f"the side environment has duckdb {got['version']}, the lock pins {pinned}; {BUILD_HINT}")
    assert "error" not in got, got.get("error")
    con = duckdb.connect(str(wh), read_only=True)
    want_tables = {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert set(got["tables"]) == want_tables
    assert {"marts.province_indicators", "marts.funding_backlog", "raw.htx", "audit.rejected_rows"} <= want_tables
    assert all(got["tables"].values())  # table descriptions survive
    assert got["undescribed_columns"] == 0
    assert got["counts"]["raw.htx"] == 4
    # 2020 HTX: 3 active, 10 + 20 + 7 members (see tests/pipeline_fixture.py)
    assert ["2020", "HTX", 3, 37] in [[str(r[0]), r[1], r[2], r[3]] for r in got["province"]]


def test_native_duckdb2_storage_would_not_open_in_15(tmp_path):
    """The control: without the compatibility setting DuckDB 1.5 refuses the file, so the
    test above does check something."""
    wh = _build_and_publish(tmp_path, storage=None)
    got = _read_with_15(wh)
    assert "error" in got and "version" in got["error"].lower()
