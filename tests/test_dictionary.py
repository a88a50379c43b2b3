"""Data dictionary: generated from the warehouse's comments; examples run; drift is caught."""

from __future__ import annotations

import duckdb
import pytest

from coop.outputs.dictionary import DEFAULT_DOC, diff_dictionary, generate_markdown, sql_blocks, write_dictionary
from outputs_fixture import make_fixture_warehouse


@pytest.fixture()
def fixture_wh(tmp_path):
    return make_fixture_warehouse(tmp_path / "wh.duckdb")


def test_document_lists_every_column_with_type_and_comment(fixture_wh):
    doc = generate_markdown(fixture_wh)
    # the fixture's hand-written comments
    assert "Chỉ tiêu toàn tỉnh — province indicators. Grain: year × entity_type." in doc
    assert "| `avg_revenue_mvnd` | DOUBLE | có | triệu đồng/năm | Doanh thu bình quân — mean revenue, million VND a year |" in doc
    assert "| `year` | INTEGER | có | – | Năm báo cáo — report year |" in doc
    # every contract table has its own section, in schema order marts, core, audit
    order = [doc.index(f"\n## {t}\n") for t in ("marts.province_indicators", "core.dim_district", "audit.runs")]
    assert order == sorted(order)
    con = duckdb.connect(str(fixture_wh), read_only=True)
    for schema, table, column, typ in con.execute(
        "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal"
    ).fetchall():
        section = doc.split(f"\n## {schema}.{table}\n")[1].split("\n## ")[0]
        assert f"| `{column}` | {typ} |" in section, (schema, table, column)
    con.close()
    # deterministic: same warehouse, same text
    assert generate_markdown(fixture_wh) == doc


def test_drift_is_detected(fixture_wh, tmp_path):
    doc = write_dictionary(fixture_wh, tmp_path / "warehouse.md")
    assert diff_dictionary(fixture_wh, doc) == []
    con = duckdb.connect(str(fixture_wh))
    con.execute("COMMENT ON COLUMN marts.funding_backlog.waiting_days IS 'Số ngày chờ — days waiting since established'")
    con.close()
    diff = diff_dictionary(fixture_wh, doc)
    assert any(line.startswith("+") and "Số ngày chờ — days waiting" in line for line in diff)


def test_example_queries_run_on_fixture(fixture_wh):
    """The examples over the spec's tables run on the hand-made warehouse too (the unit marts of the
    2025 reform are exercised on the sample warehouse below)."""
    import sqlglot

    blocks = sql_blocks(generate_markdown(fixture_wh))
    assert len(blocks) >= 6
    con = duckdb.connect(str(fixture_wh), read_only=True)
    have = {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    ran = 0
    for sql in blocks:
        used = {f"{t.db}.{t.name}" for t in sqlglot.parse_one(sql, read="duckdb").find_all(sqlglot.exp.Table)}
        reform = any(c in sql for c in ("province_code", "unit_code", "area_code", "commune_code"))
        if used <= have and not reform:  # the fixture has the spec's tables, not units.md's columns
            con.execute(sql).fetchall()
            ran += 1
    con.close()
    assert ran >= 5


def test_committed_document_matches_the_sample_warehouse(sample_build):
    wh = sample_build.wh
    diff = diff_dictionary(wh, DEFAULT_DOC)
    assert not diff, "docs/warehouse.md is out of date; run `coop dictionary`:\n" + "\n".join(diff[:60])


def test_committed_examples_run_on_the_sample_warehouse(sample_build):
    wh = sample_build.wh
    blocks = sql_blocks(DEFAULT_DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    con = duckdb.connect(str(wh), read_only=True)
    for sql in blocks:
        assert con.execute(sql).fetchall(), f"example returns nothing on the sample:\n{sql}"
    con.close()
