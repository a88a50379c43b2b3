"""The published warehouse opens in DuckDB 1.5 (analysts' drivers lag behind DuckDB 2.0).

A side environment with `duckdb==1.5.*` is created once under the user's cache folder
(`$XDG_CACHE_HOME/coop-tests/duckdb15`, default `~/.cache/...`); the test skips, saying
why, only when that package cannot be installed (e.g. no network on first use)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import pipeline_fixture as F
from coop import load, publish

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coop-tests" / "duckdb15"

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
    py = CACHE / "bin" / "python"
    ok = CACHE / ".ok"
    if ok.exists() and py.exists():
        return py
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(CACHE)], check=True, capture_output=True, timeout=300)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "duckdb==1.5.*"], capture_output=True, text=True,
                           timeout=600)
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"cannot create the DuckDB 1.5 side environment: {e}")
    if r.returncode != 0:
        pytest.skip(f"duckdb==1.5.* cannot be installed in the side environment: {r.stderr.strip()[-300:]}")
    ok.write_text("duckdb 1.5\n", encoding="utf-8")
    return py


def _read_with_15(path: Path) -> dict:
    r = subprocess.run([str(_side_python()), "-c", READER, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _build_and_publish(tmp_path: Path, storage: str | None = "default") -> Path:
    from coop.models import run_models

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
