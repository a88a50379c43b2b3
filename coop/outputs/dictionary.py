"""The data dictionary (`coop dictionary`): `docs/warehouse.md` generated from the warehouse.

Everything in the document comes from the published DuckDB file itself — the tables and
views (`duckdb_tables()`, `duckdb_views()`), their columns and types
(`duckdb_columns()`), and the descriptions the models set with `COMMENT ON` — plus the
grain of each contract table and the unit implied by a column's name suffix when its
comment does not say it. The output is deterministic (no timestamps, fixed order), so a
test regenerates it and compares with the committed file.

The example analyst queries below are part of the document; a test runs every ```sql block
of the committed document against the sample warehouse.

Public functions:
    describe(warehouse, schemas=None) -> list[TableDoc]
    generate_markdown(warehouse) -> str
    write_dictionary(warehouse, out) -> Path
    sql_blocks(markdown) -> list[str]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from coop.paths import PROJECT_ROOT
from coop.warehouse import queries

DEFAULT_DOC = PROJECT_ROOT / "docs" / "warehouse.md"

# Schemas documented, in this order; others found in the file are appended (except these).
SCHEMA_ORDER = ("marts", "core", "audit", "ref")
HIDDEN_SCHEMAS = {"information_schema", "pg_catalog", "raw", "staging", "main", "temp"}

# Grain of the contract's tables (../shared/spec/warehouse.md), used when the table comment
# does not state it.
GRAIN = {
    "marts.province_indicators": "một dòng cho mỗi năm × loại hình (year × entity_type)",
    "marts.district_indicators": "năm × huyện × loại hình (year × district × entity_type)",
    "marts.sector_indicators": "năm × lĩnh vực × loại hình (year × sector × entity_type)",
    "marts.funding_backlog": "năm × HTX đang chờ hỗ trợ (year × awaiting HTX)",
    "marts.plan_vs_actual": "năm × chỉ tiêu kế hoạch (year × indicator)",
    "core.dim_district": "một dòng cho mỗi huyện, thành phố (district)",
    "audit.runs": "một dòng cho mỗi lần chạy (run)",
    "audit.file_issues": "tệp hoặc trang tính bị từ chối (rejected file or sheet)",
    "audit.rejected_rows": "dòng bị cách ly × cột lỗi (quarantined row and column)",
}

# Units implied by a column name, when the comment does not give one.
UNIT_SUFFIXES = (
    ("_mvnd_month", "triệu đồng/người/tháng"),
    ("_mvnd", "triệu đồng"),
    ("_pct", "%"),
    ("_days", "ngày"),
    ("_count", "số đơn vị"),
)
UNIT_NAMES = {
    "avg_revenue_mvnd": "triệu đồng/năm", "avg_profit_mvnd": "triệu đồng/năm", "new_formed": "số đơn vị",
    "active_count": "số đơn vị",
    "target_min": "theo chỉ tiêu", "target_max": "theo chỉ tiêu", "actual": "theo chỉ tiêu",
    "revenue": "triệu đồng/năm", "profit": "triệu đồng/năm", "income": "triệu đồng/người/tháng",
    "amount": "triệu đồng", "members": "người", "workers": "người", "participants": "lượt người",
}

EXAMPLES: list[tuple[str, str]] = [
    ("Chỉ tiêu toàn tỉnh của một năm (HTX và THT) — the province table of a year",
     "SELECT entity_type, new_formed, active_count, members,\n"
     "       round(avg_revenue_mvnd, 1) AS avg_revenue_mvnd,\n"
     "       round(avg_profit_mvnd, 1) AS avg_profit_mvnd,\n"
     "       round(avg_income_mvnd_month, 2) AS avg_income_mvnd_month\n"
     "FROM marts.province_indicators\n"
     "WHERE year = 2020 AND province_code = '17'  -- Hòa Bình as it was in 2020\n"
     "ORDER BY entity_type;"),
    ("Chuỗi số liệu theo địa bàn tỉnh cũ qua năm 2025 — the series per former-province area across the reform",
     "SELECT year, area_name, active_count, new_formed, revenue_growth_pct\n"
     "FROM marts.area_indicators\n"
     "WHERE entity_type = 'HTX' AND area_code = '17'  -- the former Hòa Bình area, 2018 to today\n"
     "ORDER BY year;"),
    ("Tỉnh hiện nay, tính lùi trước 2025, kèm cờ đủ báo cáo — today's province, restated, with completeness",
     "SELECT year, province_name, active_count, new_formed, complete, areas_missing, units_reported, units_expected\n"
     "FROM marts.current_province_indicators\n"
     "WHERE entity_type = 'HTX'\n"
     "ORDER BY year;"),
    ("Xã, phường hiện nay qua các năm (tính lùi) — a commune of today over history",
     "SELECT year, commune_code, commune_name, active_count, approximate\n"
     "FROM marts.commune_indicators\n"
     "WHERE entity_type = 'HTX' AND commune_code = '05266'  -- Xã Lạc Sơn\n"
     "ORDER BY year;"),
    ("HTX chờ hỗ trợ qua năm 2025, theo mã số — the backlog followed by registration code across the reform",
     "SELECT reg_code, name, list(year ORDER BY year) AS backlog_years, list(unit_code ORDER BY year) AS reported_by\n"
     "FROM marts.funding_backlog\n"
     "WHERE year BETWEEN 2024 AND 2026\n"
     "GROUP BY reg_code, name\n"
     "HAVING min(year) < 2025 AND max(year) >= 2025\n"
     "ORDER BY reg_code;"),
    ("Huyện có nhiều HTX nhất năm 2020 — districts ranked by active HTX",
     "SELECT district_code, district_name, active_count, members\n"
     "FROM marts.district_indicators\n"
     "WHERE year = 2020 AND entity_type = 'HTX'\n"
     "ORDER BY active_count DESC, district_code;"),
    ("HTX chờ hỗ trợ thành lập mới theo huyện — funding backlog by district",
     "SELECT district_name, count(*) AS awaiting, max(waiting_days) AS longest_wait_days\n"
     "FROM marts.funding_backlog\n"
     "WHERE year = 2020\n"
     "GROUP BY district_name\n"
     "ORDER BY awaiting DESC, district_name;"),
    ("Kế hoạch và thực hiện — plan vs actual with status",
     "SELECT year, indicator_code, target_min, target_max, actual, status\n"
     "FROM marts.plan_vs_actual\n"
     "ORDER BY year, indicator_code;"),
    ("Doanh thu bình quân theo lĩnh vực — mean revenue by sector",
     "SELECT sector, entity_type, active_count, round(avg_revenue_mvnd, 1) AS avg_revenue_mvnd\n"
     "FROM marts.sector_indicators\n"
     "WHERE year = 2020\n"
     "ORDER BY entity_type, active_count DESC, sector;"),
    ("Dòng bị cách ly theo lý do (trạng thái hiện tại) — quarantined cells by reason, current state",
     "SELECT reason_code, count(*) AS cells\n"
     "FROM audit.current_rejected_rows  -- the latest published run's (audit.rejected_rows keeps every run's)\n"
     "GROUP BY reason_code\n"
     "ORDER BY cells DESC, reason_code;"),
    ("Lần chạy gần nhất — the latest run",
     "SELECT run_id, started_at, finished_at, status, files_loaded, rows_loaded, rows_rejected\n"
     "FROM audit.runs\n"
     "ORDER BY started_at DESC\n"
     "LIMIT 1;"),
]


@dataclass
class ColumnDoc:
    name: str
    type: str
    nullable: bool
    comment: str
    unit: str


@dataclass
class TableDoc:
    schema: str
    name: str
    kind: str  # "bảng" (table) or "view"
    comment: str
    grain: str
    columns: list[ColumnDoc] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _unit(column: str) -> str:
    if column in UNIT_NAMES:
        return UNIT_NAMES[column]
    for suffix, unit in UNIT_SUFFIXES:
        if column.endswith(suffix):
            return unit
    return ""


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def describe(warehouse: Path, schemas: list[str] | None = None) -> list[TableDoc]:
    """Tables/views of the documented schemas with their columns and comments."""
    con = queries.connect_read_only(warehouse)
    try:
        rels = con.execute(
            "SELECT schema_name, table_name, 'bảng' AS kind, comment FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT internal AND NOT temporary "
            "UNION ALL SELECT schema_name, view_name, 'view', comment FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
        ).fetchall()
        cols = con.execute(
            "SELECT schema_name, table_name, column_name, data_type, is_nullable, comment, column_index "
            "FROM duckdb_columns() WHERE database_name = current_database() AND NOT internal "
            "ORDER BY schema_name, table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    found = sorted({r[0] for r in rels})
    wanted = schemas or [s for s in SCHEMA_ORDER if s in found] + [
        s for s in found if s not in SCHEMA_ORDER and s not in HIDDEN_SCHEMAS
    ]
    by_table: dict[tuple[str, str], list[ColumnDoc]] = {}
    for s, t, c, typ, nullable, comment, _i in cols:
        by_table.setdefault((s, t), []).append(
            ColumnDoc(c, typ, bool(nullable), _one_line(comment), _unit(c))
        )
    out: list[TableDoc] = []
    for schema in wanted:
        for s, t, kind, comment in sorted(r for r in rels if r[0] == schema):
            q = f"{s}.{t}"
            m = re.search(r"(?:Grain|Hạt|Mức chi tiết)\s*:\s*(.+?)(?:\.\s|$)", comment or "", re.IGNORECASE)
            grain = m.group(1).strip().rstrip(".") if m else GRAIN.get(q, "")
            out.append(TableDoc(s, t, kind, _one_line(comment), _one_line(grain), by_table.get((s, t), [])))
    return out


def generate_markdown(warehouse: Path) -> str:
    docs = describe(warehouse)
    lines = [
        "# Từ điển dữ liệu — the warehouse data dictionary",
        "",
        "<!-- Generated by `coop dictionary` from the warehouse's own comments "
        "(duckdb_tables(), duckdb_columns()). Do not edit by hand: change the COMMENT ON in the "
        "models and regenerate. A test fails when this file and the warehouse disagree. -->",
        "",
        "Kho dữ liệu kinh tế tập thể của tỉnh: một tệp DuckDB (mặc định `data/warehouse/coop.duckdb`), "
        "mở ở chế độ chỉ đọc. Tiền tính bằng triệu đồng; thu nhập bằng triệu đồng/người/tháng.",
        "",
        "The province's collective-economy warehouse: one DuckDB file, opened read-only "
        "(`duckdb.connect('data/warehouse/coop.duckdb', read_only=True)`). Money is million VND; "
        "income is million VND per person a month. Definitions of the indicators: "
        "`../shared/spec/warehouse.md`; units over time (the 2025 reform): `../shared/spec/units.md` "
        "and [reform.md](reform.md).",
        "",
        "## Cho người phân tích — for analysts",
        "",
        "- **Read-only, always.** `duckdb.connect('data/warehouse/coop.duckdb', read_only=True)` (Python), "
        "`duckdb -readonly data/warehouse/coop.duckdb` (CLI). A run builds a separate file and swaps it in "
        "atomically, so you never see a half-built state and never block a run.",
        "- **Reconnect to see a new publish.** An open connection keeps the file it opened (a snapshot). "
        "Check what you are looking at with `SELECT max(run_id) FROM audit.runs WHERE status = 'published'` "
        "(or `SELECT * FROM meta.build_info`) and reconnect when the nightly run has published.",
        "- **DuckDB 2 API.** A relation from `con.sql()` has no `fetchone()`: use `.fetchall()`, `.pl()`, "
        "`.df()`; after `con.execute(...)` fetch the result before the next statement on the same "
        "connection. The file is written in storage version v1.5 so DuckDB 1.5 clients can open it.",
        "- **Current state vs history.** `audit.rejected_rows` and `audit.file_issues` keep one copy per "
        "published run; what is wrong *now* is `audit.current_rejected_rows` / `audit.current_file_issues`.",
        "- **Labels.** Codes (sector, status, support type, kind, rating, plan code) have their official "
        "Vietnamese label in `ref.vocabularies` (`label_vi`); units in `core.dim_unit`, provinces in "
        "`ref.provinces`.",
        "- **Across the 2025 reform.** The continuous series is `marts.area_indicators` (per former "
        "province); today's province restated is `marts.current_province_indicators` (mind `complete`); "
        "`marts.province_indicators` is the province as it was that year.",
        "",
        "## Bảng — tables",
        "",
        "| bảng / table | loại | mức chi tiết / grain | mô tả / description |",
        "|---|---|---|---|",
    ]
    for t in docs:
        short = re.split(r"\s*(?:Grain|Hạt|Mức chi tiết)\s*:", t.comment or "", maxsplit=1, flags=re.IGNORECASE)[0]
        lines.append(f"| [`{t.qualified}`](#{t.schema}{t.name}) | {t.kind} | {t.grain or '–'} "
                     f"| {short.rstrip(' .') or '–'} |")
    for t in docs:
        lines += [
            "",
            f"## {t.qualified}",
            "",
            t.comment or "_(chưa có mô tả — no description)_",
            "",
            f"Mức chi tiết (grain): {t.grain or '–'}",
            "",
            "| cột / column | kiểu / type | null | đơn vị / unit | mô tả / description |",
            "|---|---|---|---|---|",
        ]
        for c in t.columns:
            lines.append(
                f"| `{c.name}` | {c.type} | {'có' if c.nullable else 'không'} | {c.unit or '–'} | {c.comment or '–'} |"
            )
    lines += [
        "",
        "## Truy vấn mẫu — example queries",
        "",
        "Each query below runs as written against the sample warehouse (a test executes them).",
    ]
    for title, sql in EXAMPLES:
        lines += ["", f"### {title}", "", "```sql", sql, "```"]
    return "\n".join(lines) + "\n"


def write_dictionary(warehouse: Path, out: Path = DEFAULT_DOC) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(generate_markdown(warehouse), encoding="utf-8")
    return out


def sql_blocks(markdown: str) -> list[str]:
    """The ```sql code blocks of a markdown document."""
    return [m.group(1).strip() for m in re.finditer(r"```sql\n(.*?)```", markdown, re.DOTALL)]


def diff_dictionary(warehouse: Path, doc: Path = DEFAULT_DOC) -> list[str]:
    """Unified diff between the document on disk and what the warehouse says (empty = agree)."""
    import difflib

    current = Path(doc).read_text(encoding="utf-8").splitlines() if Path(doc).exists() else []
    fresh = generate_markdown(warehouse).splitlines()
    return list(difflib.unified_diff(current, fresh, str(doc), "warehouse", lineterm=""))
