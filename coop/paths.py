"""Where things live by default (the project's own folders)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
REFERENCE_DIR = SCHEMAS_DIR / "reference"
SQL_DIR = PROJECT_ROOT / "sql"
DEFAULT_RAW_DIR = PROJECT_ROOT / "data" / "raw"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse" / "coop.duckdb"
