"""SQL model runner: `sql/<layer>/<name>.sql` -> table `<layer>.<name>`.

Each model file holds ONE SELECT (CTEs allowed). Dependencies are read from the SQL itself
with sqlglot (duckdb dialect): every table reference that is not a CTE name. Models are run in
topological order inside one explicit transaction, as `CREATE OR REPLACE TABLE ... AS <select>`,
and every table and column gets a `COMMENT ON` from the model file's header block:

    -- @description Chỉ tiêu toàn tỉnh — province indicators. Grain: year × entity_type.
    -- @column year: Năm báo cáo — report year

Columns not described in the file fall back to `sql/columns.toml` (shared descriptions of the
indicator columns). A model column with no description at all is an error. See sql/README.md.

Also here: `create_input_tables(con)`, the one definition of the raw.* and ref.* input tables
shared by the loader and the tests.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import duckdb

from coop.paths import SQL_DIR
from coop.run.state import atomic_write_text, machine_cache_dir, read_json
from coop.warehouse.db import comment_statements, run_in_transaction, sql_literal

log = logging.getLogger(__name__)

LAYERS = ("staging", "core", "marts")
SHARED_COLUMNS_FILE = "columns.toml"


class ModelError(Exception):
    """A model set that cannot be run: parse error, cycle, unknown table, missing description."""


@dataclass
class Model:
    name: str                      # "<layer>.<stem>"
    path: Path
    sql: str                       # the SELECT, header comments included
    deps: set[str] = field(default_factory=set)
    description: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- input tables

_LINEAGE = """
    source_file VARCHAR, sheet VARCHAR, row_number BIGINT,
    year INTEGER, unit_code VARCHAR, file_hash VARCHAR, run_id VARCHAR"""

INPUT_TABLES_DDL: dict[str, str] = {
    "raw.htx": f"""(
    reg_code VARCHAR, name VARCHAR, commune VARCHAR, kind VARCHAR, established_on DATE,
    sector VARCHAR, status VARCHAR, members BIGINT, workers BIGINT, revenue DOUBLE,
    profit DOUBLE, income DOUBLE, rating VARCHAR, ocop_stars BIGINT, high_tech BOOLEAN,{_LINEAGE})""",
    "raw.tht": f"""(
    name VARCHAR, commune VARCHAR, established_on DATE, sector VARCHAR, status VARCHAR,
    members BIGINT, workers BIGINT, revenue DOUBLE, profit DOUBLE, income DOUBLE,{_LINEAGE})""",
    "raw.ho_tro": f"""(
    reg_code VARCHAR, support_type VARCHAR, amount DOUBLE, participants BIGINT,
    decision_no VARCHAR, allocated_on DATE,{_LINEAGE})""",
    "raw.chi_tieu": f"""(
    code VARCHAR, label VARCHAR, unit VARCHAR, target_raw VARCHAR, target_min DOUBLE,
    target_max DOUBLE,{_LINEAGE})""",
    "ref.districts": """(
    district_code VARCHAR, district_name VARCHAR, province_code VARCHAR,
    valid_from DATE, valid_to DATE)""",
    "ref.units": """(
    unit_code VARCHAR, level VARCHAR, unit_name VARCHAR, unit_kind VARCHAR, province_code VARCHAR,
    area_code VARCHAR, valid_from DATE, valid_to DATE, lineage_district_code VARCHAR)""",
    "ref.provinces": """(
    province_code VARCHAR, province_name VARCHAR, era VARCHAR, valid_from DATE, valid_to DATE,
    current_province_code VARCHAR, served BOOLEAN)""",
    "ref.former_communes": """(
    commune_code VARCHAR, commune_name VARCHAR, commune_short VARCHAR, commune_type VARCHAR,
    district_code VARCHAR, province_code VARCHAR)""",
    "ref.commune_lineage": """(
    old_commune_code VARCHAR, old_district_code VARCHAR, old_province_code VARCHAR,
    new_commune_code VARCHAR, new_province_code VARCHAR, split BOOLEAN, is_default BOOLEAN)""",
    "ref.settings": "(key VARCHAR, value VARCHAR)",
    "ref.vocabularies": "(vocabulary VARCHAR, code VARCHAR, label_vi VARCHAR, spellings VARCHAR[], position INTEGER)",
}

# Name key of a unit or commune cell, equal to coop.text.unit_key (tested over every unit name):
# lower case, no diacritics (đ -> d), only letters and digits. 'Xã Chí Đạo' -> 'xachidao'.
UNIT_KEY_MACRO = ("CREATE OR REPLACE MACRO ref.unit_key(s) AS regexp_replace(lower(strip_accents("
                  "replace(replace(s, 'đ', 'd'), 'Đ', 'd'))), '[^0-9a-z]+', '', 'g')")

_LINEAGE_COMMENTS = {
    "source_file": "Tệp nguồn — source file, path relative to the raw folder",
    "sheet": "Trang tính — sheet name in the source workbook",
    "row_number": "Dòng — row number as Excel shows it (1-based)",
    "year": "Năm báo cáo — report year (from the folder)",
    "unit_code": "Mã đơn vị báo cáo — GSO code of the reporting unit from the folder: district (3 digits, report years "
                 "up to 2024) or commune (5 digits, from 2025); NULL for the province folder",
    "file_hash": "Mã băm tệp — sha256 of the source file's bytes",
    "run_id": "Lần chạy — id of the run that loaded the row",
}

INPUT_COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "raw.htx": ("Danh sách HTX, liên hiệp HTX (biểu HTX) — cooperatives register rows as loaded, "
                "one per accepted row", {
        "reg_code": "Mã số HTX — registration / tax code (text, leading zeros kept)",
        "name": "Tên HTX — cooperative name",
        "commune": "Xã, phường, thị trấn — commune",
        "kind": "Loại hình — kind: htx (cooperative) | union (union of cooperatives)",
        "established_on": "Ngày thành lập — date established",
        "sector": "Lĩnh vực — sector code",
        "status": "Tình trạng — status: active | suspended | dissolved",
        "members": "Số thành viên — members (persons)",
        "workers": "Số lao động — regular workers (persons)",
        "revenue": "Doanh thu — revenue, million VND a year",
        "profit": "Lợi nhuận — profit, million VND a year (may be negative)",
        "income": "Thu nhập bình quân — average income, million VND per person a month",
        "rating": "Xếp loại — rating: good | fair | average | weak",
        "ocop_stars": "Sản phẩm OCOP — OCOP stars (3, 4, 5)",
        "high_tech": "Ứng dụng công nghệ cao — applies high technology (yes/no)",
        **_LINEAGE_COMMENTS}),
    "raw.tht": ("Danh sách tổ hợp tác (biểu THT) — cooperative groups register rows as loaded", {
        "name": "Tên tổ hợp tác — group name",
        "commune": "Xã — commune",
        "established_on": "Ngày thành lập / chứng thực hợp đồng — date established",
        "sector": "Lĩnh vực — sector code",
        "status": "Tình trạng — status: active | suspended | dissolved",
        "members": "Số thành viên — members (persons)",
        "workers": "Số lao động — workers (persons)",
        "revenue": "Doanh thu — revenue, million VND a year",
        "profit": "Lợi nhuận — profit, million VND a year",
        "income": "Thu nhập bình quân — average income, million VND per person a month",
        **_LINEAGE_COMMENTS}),
    "raw.ho_tro": ("Hỗ trợ HTX (biểu HO_TRO) — support allocated to cooperatives, rows as loaded", {
        "reg_code": "Mã số HTX — registration code of the supported cooperative",
        "support_type": "Nội dung hỗ trợ — support type code",
        "amount": "Kinh phí — amount, million VND",
        "participants": "Số lượt người — participants (training), persons",
        "decision_no": "Số quyết định — decision number",
        "allocated_on": "Ngày quyết định — allocation date",
        **_LINEAGE_COMMENTS}),
    "raw.chi_tieu": ("Chỉ tiêu kế hoạch (biểu CHI_TIEU) — the province's annual plan rows as loaded", {
        "code": "Mã chỉ tiêu — plan indicator code",
        "label": "Chỉ tiêu — indicator label as written",
        "unit": "Đơn vị tính — unit as written",
        "target_raw": "Kế hoạch — target as written (number or range)",
        "target_min": "Kế hoạch tối thiểu — lower bound of the target",
        "target_max": "Kế hoạch tối đa — upper bound of the target (NULL for 'từ N')",
        **_LINEAGE_COMMENTS}),
    "ref.districts": ("Danh mục huyện, thành phố — reference list of district-level units with validity", {
        "district_code": "Mã huyện — GSO district code (3 digits)",
        "district_name": "Tên huyện, thành phố — district name",
        "province_code": "Mã tỉnh — GSO province code",
        "valid_from": "Hiệu lực từ — valid from (inclusive)",
        "valid_to": "Hiệu lực đến — valid to (exclusive); NULL = still valid",
    }),
    "ref.units": ("Danh mục đơn vị báo cáo — reporting units of the province served: districts of its former provinces "
                  "(report years up to 2024) and its communes of today (from 2025)", {
        "unit_code": "Mã đơn vị — GSO code: 3-digit district or 5-digit commune",
        "level": "Cấp — district | commune",
        "unit_name": "Tên đơn vị — unit name ('Lạc Sơn', 'Thành phố Hòa Bình', 'Xã Lạc Sơn')",
        "unit_kind": "Loại đơn vị — Huyện, Thành phố, Thị xã, Quận | Xã, Phường, Đặc khu",
        "province_code": "Mã tỉnh — the province the unit belonged to while valid",
        "area_code": "Mã tỉnh cũ — former province (area) of the unit: a district's province; "
                     "a commune's former province",
        "valid_from": "Hiệu lực từ — valid from (inclusive); NULL = before the data begins",
        "valid_to": "Hiệu lực đến — valid to (exclusive); NULL = still valid",
        "lineage_district_code": "Mã huyện tra xã cũ — district under which the reference lists the unit's former "
                                 "communes (a merged district: its successor)",
    }),
    "ref.provinces": ("Danh mục tỉnh — the 63 former provinces (until 30/06/2025) "
                      "and the 34 of today (since 01/07/2025)", {
        "province_code": "Mã tỉnh — GSO province code (2 digits; a code may name a former and a current province)",
        "province_name": "Tên tỉnh — province name",
        "era": "Thời kỳ — former | current",
        "valid_from": "Hiệu lực từ — valid from (inclusive)",
        "valid_to": "Hiệu lực đến — valid to (exclusive)",
        "current_province_code": "Tỉnh hiện nay — for a former province, the province of today it is part of; "
                                 "for a current one, itself",
        "served": "Thuộc phạm vi — the province (former or current) belongs to what this warehouse serves",
    }),
    "ref.former_communes": ("Danh mục xã cũ — communes before 1 July 2025 of the former provinces served", {
        "commune_code": "Mã xã cũ — GSO code (5 digits)",
        "commune_name": "Tên xã cũ — full name ('Xã Chí Đạo')",
        "commune_short": "Tên ngắn — name without its kind ('Chí Đạo')",
        "commune_type": "Loại — Xã, Phường, Thị trấn",
        "district_code": "Mã huyện — district the commune belonged to (dataset's last state)",
        "province_code": "Mã tỉnh cũ — former province",
    }),
    "ref.commune_lineage": ("Xã cũ → xã mới — mapping of former communes to the communes of today (2025 reform)", {
        "old_commune_code": "Mã xã cũ — former commune",
        "old_district_code": "Mã huyện cũ — its district",
        "old_province_code": "Mã tỉnh cũ — its province",
        "new_commune_code": "Mã xã mới — commune of today",
        "new_province_code": "Mã tỉnh mới — province of today",
        "split": "Bị chia tách — the former commune was split between several communes of today",
        "is_default": "Mặc định — the dataset's default commune of today for a split former commune "
                      "(always true when not split)",
    }),
    "ref.settings": ("Tham số — pipeline settings (key/value), e.g. backlog_window_years", {
        "key": "Tên tham số — setting name",
        "value": "Giá trị — setting value (text)",
    }),
    "ref.vocabularies": ("Danh mục mã — every code of the categorical columns (sector, status, kind, rating, "
                         "support_type, plan_code) with its official Vietnamese label, from "
                         "schemas/reference/vocabularies.toml; the accepted-values data tests read it", {
        "vocabulary": "Danh mục — vocabulary name: sector | status | support_type | kind | rating | plan_code",
        "code": "Mã — the code stored in the warehouse ('agriculture', 'active')",
        "label_vi": "Tên tiếng Việt — official Vietnamese label (the form's first spelling: 'Nông nghiệp')",
        "spellings": "Cách ghi được chấp nhận — every spelling a clerk may write for the code (case, diacritics and "
                     "spaces around '-', ',', '/' are ignored)",
        "position": "Thứ tự — display order of the code within its vocabulary (1 = first)",
    }),
}


def create_input_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create (if missing) the empty raw.* and ref.* input tables with their types and comments.

    Idempotent: existing tables are kept as they are (only comments are re-applied)."""
    stmts = ["CREATE SCHEMA IF NOT EXISTS raw", "CREATE SCHEMA IF NOT EXISTS ref"]
    for name, cols in INPUT_TABLES_DDL.items():
        stmts.append(f"CREATE TABLE IF NOT EXISTS {name} {cols}")
    stmts += comment_statements(INPUT_COMMENTS)
    stmts.append(UNIT_KEY_MACRO)
    run_in_transaction(con, stmts)
    from schemas.vocabularies import ensure_vocabularies  # shipped vocabularies when empty

    ensure_vocabularies(con)


# --------------------------------------------------------------------------- discovery

_DESC_RE = re.compile(r"^\s*--\s*@description\s+(.+?)\s*$")
_COL_RE = re.compile(r"^\s*--\s*@column\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$")


def _parse_header(text: str) -> tuple[str | None, dict[str, str]]:
    desc = None
    cols: dict[str, str] = {}
    for line in text.splitlines():
        if m := _DESC_RE.match(line):
            desc = m.group(1) if desc is None else desc + " " + m.group(1)
        elif m := _COL_RE.match(line):
            cols[m.group(1)] = m.group(2)
    return desc, cols


def _deps(path: Path, sql: str) -> set[str]:
    import sqlglot  # here, not at the top: a run whose models are in the deps cache never imports it
    from sqlglot import exp

    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as e:
        raise ModelError(f"{path}: cannot parse the SQL: {e}") from e
    if len(trees) != 1:
        raise ModelError(f"{path}: a model file must hold exactly one SELECT, found {len(trees)} statements")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise ModelError(f"{path}: a model file must hold one SELECT, found {tree.key.upper()}")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    deps: set[str] = set()
    for t in tree.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            continue  # table functions: range(), generate_series(), read_csv() ...
        name = t.name.lower()
        db = t.db.lower()
        if not db and name in ctes:
            continue
        deps.add(f"{db}.{name}" if db else name)
    return deps


#: Version of the deps cache's format (`discover_models(deps_cache=...)`).
_DEPS_CACHE_FORMAT = 1


def _sqlglot_version() -> str:
    try:
        return metadata.version("sqlglot")
    except metadata.PackageNotFoundError:
        return "?"


def _deps_key(text: str, version: str) -> str:
    """A model text's key in the deps cache: its text and the sqlglot version that parsed it."""
    return hashlib.sha256(f"{_DEPS_CACHE_FORMAT}\0{version}\0{text}".encode()).hexdigest()


def _read_deps_cache(path: Path) -> dict[str, list[str]]:
    data = read_json(path, {})  # missing or damaged: only a cache, parse again
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items()
            if isinstance(k, str) and isinstance(v, list) and all(isinstance(d, str) for d in v)}


def _write_deps_cache(path: Path, entries: dict[str, list[str]], quiet: bool = False) -> None:
    try:
        atomic_write_text(path, json.dumps(entries, sort_keys=True))
    except OSError as e:  # the next run parses again; never fails the models
        (log.debug if quiet else log.warning)("Could not write the model dependency cache %s: %s", path, e)


#: The models' parsed dependencies, by SQL text (`discover_models`): in a warehouse's `.state/`
#: and in the machine's cache (`coop.run.state.machine_cache_dir`).
MODEL_DEPS_FILE = "model_deps.json"


def deps_caches(state: Path | None) -> list[Path] | None:
    """The dependency caches of a run whose `.state/` is `state`: that folder's file, then the
    machine's (a new warehouse's first run then parses nothing); None without a state folder.
    No home directory to be found: the `.state` file alone."""
    if state is None:
        return None
    caches = [state / MODEL_DEPS_FILE]
    try:
        caches.append(machine_cache_dir() / MODEL_DEPS_FILE)
    except (KeyError, RuntimeError, OSError):
        pass
    return caches


def discover_models(sql_dir: Path = SQL_DIR, deps_cache: Path | Sequence[Path] | None = None) -> dict[str, Model]:
    """All models under sql_dir/<layer>/*.sql, keyed by '<layer>.<stem>', with parsed dependencies.

    `deps_cache` (the flow passes `.state/model_deps.json` and the machine's
    `~/.cache/coop/model_deps.json`, `coop.run.state.machine_cache_dir`): each model's
    dependencies kept by the sha256 of its text and the sqlglot version, so that a run whose
    model files did not change neither imports sqlglot nor parses (≈ 0.5 CPU-s) — a cold run on
    a new warehouse too, from the machine's file. Every file is a cache of the same function
    (its keys hold the text): the first file that has a text's key gives it; each file whose
    content differs from the models of now is rewritten (a file after the first: quietly, a
    read-only home is no concern of a run). Only texts that parsed as one SELECT are kept: a
    model in error is parsed, and refused, every time."""
    paths = [] if deps_cache is None else [deps_cache] if isinstance(deps_cache, Path) else list(deps_cache)
    files = [_read_deps_cache(p) for p in paths]
    cached: dict[str, list[str]] = {}
    for entries in reversed(files):  # the first file wins
        cached.update(entries)
    version = _sqlglot_version() if paths else ""
    seen: dict[str, list[str]] = {}
    models: dict[str, Model] = {}
    for layer in LAYERS:
        d = Path(sql_dir) / layer
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.sql")):
            text = p.read_text(encoding="utf-8")
            name = f"{layer}.{p.stem}".lower()
            desc, cols = _parse_header(text)
            if paths:
                key = _deps_key(text, version)
                hit = cached.get(key)
                deps = set(hit) if hit is not None else _deps(p, text)
                seen[key] = sorted(deps)
            else:
                deps = _deps(p, text)
            models[name] = Model(name=name, path=p, sql=text.strip().rstrip(";").strip(),
                                 deps=deps, description=desc, columns=cols)
    for i, (path, entries) in enumerate(zip(paths, files, strict=True)):
        if seen != entries:  # only the models of now: the file stays small
            _write_deps_cache(path, seen, quiet=i > 0)
    return models


def model_graph(sql_dir: Path = SQL_DIR) -> dict[str, set[str]]:
    """Model name -> the tables its SQL reads (models and input tables alike)."""
    return {name: set(m.deps) for name, m in discover_models(sql_dir).items()}


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.sql("SELECT schema_name, table_name FROM duckdb_tables() "
                   "UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    out = set()
    for schema, table in rows:
        out.add(f"{schema}.{table}".lower())
        if schema == "main":
            out.add(table.lower())
    return out


def _order(models: dict[str, Model], existing: set[str]) -> list[str]:
    unknown = []
    for m in models.values():
        for dep in sorted(m.deps):
            if dep not in models and dep not in existing:
                unknown.append(f"{m.path} reads unknown table {dep!r} (neither a model in sql/ nor an input table)")
    if unknown:
        raise ModelError("Unknown table reference:\n  " + "\n  ".join(unknown))
    graph = {name: {d for d in m.deps if d in models} for name, m in models.items()}
    ts = graphlib.TopologicalSorter(graph)
    try:
        # static_order is not stable across runs; sort each ready batch for reproducibility.
        ts.prepare()
    except graphlib.CycleError as e:
        cycle = e.args[1]
        files = " -> ".join(str(models[n].path) for n in cycle)
        raise ModelError(f"Dependency cycle between models: {' -> '.join(cycle)}\n  files: {files}") from e
    order: list[str] = []
    while ts.is_active():
        ready = sorted(ts.get_ready())
        order.extend(ready)
        ts.done(*ready)
    return order


def _shared_columns(sql_dir: Path) -> dict[str, str]:
    p = Path(sql_dir) / SHARED_COLUMNS_FILE
    if not p.exists():
        return {}
    data = tomllib.loads(p.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.get("columns", {}).items()}


def run_models(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR,
               deps_cache: Path | Sequence[Path] | None = None) -> list[str]:
    """Build every model as a table, in dependency order, in one transaction; comment every
    table and column. Returns the model names in run order. Raises ModelError (and leaves the
    database as it was) on a parse error, cycle, unknown table, failing SQL or a column without
    a description. `deps_cache`: see `discover_models`."""
    models = discover_models(sql_dir, deps_cache)
    order = _order(models, _existing_tables(con))
    shared = _shared_columns(sql_dir)
    try:
        con.begin()
    except duckdb.TransactionException as e:
        raise ModelError("run_models needs a connection with no open transaction "
                         f"(it builds all models in one transaction of its own): {e}") from e
    try:
        for name in order:
            m = models[name]
            layer = name.split(".", 1)[0]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}").fetchall()
            try:
                con.execute(f"CREATE OR REPLACE TABLE {name} AS\n{m.sql}\n").fetchall()
            except duckdb.Error as e:
                raise ModelError(f"Model {name} ({m.path}) failed: {e}") from e
            _comment(con, m, shared)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return order


def _comment(con: duckdb.DuckDBPyConnection, m: Model, shared: dict[str, str]) -> None:
    schema, table = m.name.split(".", 1)
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "ORDER BY column_index", [schema, table]).fetchall()]
    missing = [c for c in cols if c not in m.columns and c not in shared]
    problems = []
    if not m.description:
        problems.append("no '-- @description ...' line")
    if missing:
        problems.append("columns without a description: " + ", ".join(missing)
                        + " (add '-- @column <name>: ...' lines or entries in sql/columns.toml)")
    stale = sorted(set(m.columns) - set(cols))
    if stale:
        problems.append("'@column' lines for columns the model does not have: " + ", ".join(stale))
    if problems:
        raise ModelError(f"Model {m.name} ({m.path}): " + "; ".join(problems))
    con.execute(f"COMMENT ON TABLE {m.name} IS {sql_literal(m.description)}").fetchall()
    for c in cols:
        con.execute(f'COMMENT ON COLUMN {m.name}."{c}" IS {sql_literal(m.columns.get(c) or shared[c])}').fetchall()
