"""The SQL model runner: dependencies read from the SQL, order, errors, comments, transactions."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from coop.warehouse.models import SQL_DIR, ModelError, create_input_tables, model_graph, run_models


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def src_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA src").fetchall()
    con.execute("CREATE TABLE src.t AS SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) v(id, label)").fetchall()
    return con


# alpha <- beta <- gamma <- src.t : alphabetical order is the reverse of the dependency order.
# alpha uses a CTE called "gamma" (not a dependency) and reads core.beta in a WHERE EXISTS subquery.
CHAIN = {
    "core/alpha.sql": """-- @description Alpha — last in the chain
-- @column id: Mã — id
WITH gamma AS (SELECT 1 AS one)
SELECT b.id FROM core.beta b, gamma
WHERE EXISTS (SELECT 1 FROM staging.gamma g WHERE g.id = b.id) AND gamma.one = 1
""",
    "core/beta.sql": """-- @description Beta
-- @column id: Mã — id
-- @column label: Nhãn — label
SELECT id, label FROM staging.gamma WHERE id > 1
""",
    "staging/gamma.sql": """-- @description Gamma — reads the input table
-- @column id: Mã — id
-- @column label: Nhãn — label
SELECT id, label FROM src.t, range(1) r(i);
""",
}


def test_order_is_read_from_the_sql(tmp_path):
    d = write(tmp_path, CHAIN)
    assert model_graph(d) == {
        "core.alpha": {"core.beta", "staging.gamma"},
        "core.beta": {"staging.gamma"},
        "staging.gamma": {"src.t"},
    }
    con = src_con()
    assert run_models(con, d) == ["staging.gamma", "core.beta", "core.alpha"]
    assert con.sql("SELECT id FROM core.alpha ORDER BY id").fetchall() == [(2,), (3,)]
    comments = dict(con.sql("SELECT table_name || '.' || column_name, comment FROM duckdb_columns() "
                            "WHERE schema_name IN ('core', 'staging')").fetchall())
    assert comments == {"alpha.id": "Mã — id", "beta.id": "Mã — id", "beta.label": "Nhãn — label",
                        "gamma.id": "Mã — id", "gamma.label": "Nhãn — label"}
    assert con.sql("SELECT comment FROM duckdb_tables() WHERE table_name = 'alpha'").fetchall() == \
        [("Alpha — last in the chain",)]


def test_rerun_replaces_tables(tmp_path):
    d = write(tmp_path, CHAIN)
    con = src_con()
    run_models(con, d)
    con.execute("INSERT INTO src.t VALUES (4, 'd')").fetchall()
    run_models(con, d)
    assert con.sql("SELECT count(*) FROM core.alpha").fetchall() == [(3,)]


def test_cycle_names_the_files(tmp_path):
    d = write(tmp_path, {
        "core/a.sql": "-- @description A\n-- @column x: x\nSELECT x FROM core.b",
        "core/b.sql": "-- @description B\n-- @column x: x\nSELECT x FROM marts.c",
        "marts/c.sql": "-- @description C\n-- @column x: x\nSELECT x FROM core.a",
        "staging/ok.sql": "-- @description ok\n-- @column x: x\nSELECT 1 AS x",
    })
    con = duckdb.connect()
    with pytest.raises(ModelError) as e:
        run_models(con, d)
    msg = str(e.value)
    assert "cycle" in msg.lower()
    for f in ("core/a.sql", "core/b.sql", "marts/c.sql"):
        assert f in msg
    assert "ok.sql" not in msg
    # nothing was built
    assert con.sql("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]


def test_unknown_table_names_file_and_table(tmp_path):
    d = write(tmp_path, {
        "core/a.sql": "-- @description A\n-- @column x: x\nSELECT x FROM core.nowhere JOIN src.t USING (x)",
    })
    with pytest.raises(ModelError) as e:
        run_models(src_con(), d)
    assert "core/a.sql" in str(e.value) and "core.nowhere" in str(e.value)
    assert "src.t" not in str(e.value)


def test_unqualified_unknown_table(tmp_path):
    d = write(tmp_path, {"core/a.sql": "-- @description A\n-- @column x: x\nSELECT x FROM mystery"})
    with pytest.raises(ModelError, match="mystery"):
        run_models(duckdb.connect(), d)


def test_missing_column_description_fails(tmp_path):
    d = write(tmp_path, {
        "staging/a.sql": "-- @description A\n-- @column id: Mã — id\nSELECT id, label, 1 AS extra FROM src.t",
    })
    con = src_con()
    with pytest.raises(ModelError) as e:
        run_models(con, d)
    msg = str(e.value)
    assert "staging.a" in msg and "label" in msg and "extra" in msg and "staging/a.sql" in msg
    assert "id," not in msg.split("description:")[-1]
    # rolled back: the table does not exist
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'staging'").fetchall() == [(0,)]


def test_missing_table_description_fails(tmp_path):
    d = write(tmp_path, {"staging/a.sql": "-- @column id: Mã — id\nSELECT id FROM src.t"})
    with pytest.raises(ModelError, match="@description"):
        run_models(src_con(), d)


def test_shared_column_descriptions(tmp_path):
    d = write(tmp_path, {
        "staging/a.sql": "-- @description A\n-- @column id: own words\nSELECT id, label FROM src.t",
        "columns.toml": '[columns]\nlabel = "Nhãn — shared label"\nid = "shared id"\n',
    })
    con = src_con()
    run_models(con, d)
    assert dict(con.sql("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'a'").fetchall()) \
        == {"id": "own words", "label": "Nhãn — shared label"}


def test_one_select_per_file(tmp_path):
    d = write(tmp_path, {"core/a.sql": "-- @description A\nSELECT 1 AS x; SELECT 2 AS y;"})
    with pytest.raises(ModelError, match="exactly one SELECT"):
        model_graph(d)
    d2 = write(tmp_path / "2", {"core/a.sql": "-- @description A\nDROP TABLE src.t"})
    with pytest.raises(ModelError, match="one SELECT"):
        model_graph(d2)


def test_failing_model_rolls_back_everything(tmp_path):
    d = write(tmp_path, CHAIN)
    con = src_con()
    run_models(con, d)
    before = con.sql("SELECT * FROM core.beta ORDER BY id").fetchall()
    con.execute("INSERT INTO src.t VALUES (9, 'z')").fetchall()
    # beta now fails at run time (division of text); gamma, run before it, must roll back too
    (tmp_path / "core/beta.sql").write_text(
        "-- @description Beta\n-- @column id: id\n-- @column label: l\n"
        "SELECT id, CAST(label AS INTEGER) AS label FROM staging.gamma", encoding="utf-8")
    with pytest.raises(ModelError) as e:
        run_models(con, d)
    assert "core.beta" in str(e.value) and "beta.sql" in str(e.value)
    assert con.sql("SELECT count(*) FROM staging.gamma").fetchall() == [(3,)]
    assert con.sql("SELECT * FROM core.beta ORDER BY id").fetchall() == before


# ----------------------------------------------------------------------------- the project's models


def test_project_graph_reads_dependencies():
    g = model_graph(SQL_DIR)
    assert g["marts.plan_vs_actual"] == {"staging.plan", "marts.province_indicators", "marts.total_indicators",
                                         "marts.current_province_indicators",
                                         "marts.training_turns", "core.fct_support", "ref.units"}
    assert g["marts.current_province_indicators"] == {"core.agg_indicators", "core.fct_register", "ref.units",
                                                      "ref.provinces"}
    assert g["core.fct_register"] == {"staging.htx", "staging.tht", "ref.units", "ref.provinces",
                                      "ref.former_communes", "ref.commune_lineage"}
    assert g["marts.funding_backlog"] == {"core.fct_register", "core.fct_support", "core.dim_district",
                                          "ref.settings"}
    assert g["staging.htx"] == {"raw.htx"}
    assert {"marts.province_indicators", "marts.district_indicators", "marts.sector_indicators",
            "marts.funding_backlog", "marts.plan_vs_actual", "core.dim_district"} <= set(g)


def test_project_models_every_table_and_column_commented():
    con = duckdb.connect()
    create_input_tables(con)
    order = run_models(con)
    assert order.index("core.fct_register") < order.index("core.agg_indicators") \
        < order.index("marts.province_indicators") < order.index("marts.plan_vs_actual")
    uncommented = con.sql("SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
                          "WHERE schema_name IN ('raw', 'ref', 'staging', 'core', 'marts') "
                          "AND (comment IS NULL OR comment = '')").fetchall()
    assert uncommented == []
    tables = con.sql("SELECT schema_name || '.' || table_name, comment FROM duckdb_tables() "
                     "WHERE schema_name IN ('raw', 'ref', 'staging', 'core', 'marts')").fetchall()
    assert len(tables) == 11 + len(order)  # raw.* (4), ref.* (7) and the models
    assert all(c for _, c in tables)
    # the spec's columns, in its words
    cols = {r[0] for r in con.sql("SELECT column_name FROM duckdb_columns() "
                                  "WHERE schema_name = 'marts' AND table_name = 'province_indicators'").fetchall()}
    assert cols == {"year", "entity_type", "new_formed", "active_count", "members", "workers", "avg_revenue_mvnd",
                    "avg_profit_mvnd", "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct",
                    "ocop_count", "high_tech_count", "province_code", "province_name"}  # units.md adds the last two
    comment = con.sql("SELECT comment FROM duckdb_columns() WHERE schema_name = 'marts' "
                      "AND table_name = 'province_indicators' AND column_name = 'avg_revenue_mvnd'").fetchall()[0][0]
    assert "Doanh thu" in comment and "million VND" in comment


def test_create_input_tables_idempotent_and_typed():
    con = duckdb.connect()
    create_input_tables(con)
    con.execute("INSERT INTO ref.settings VALUES ('backlog_window_years', '3')").fetchall()
    create_input_tables(con)  # keeps existing data
    assert con.sql("SELECT * FROM ref.settings").fetchall() == [("backlog_window_years", "3")]
    types = dict(con.sql("SELECT column_name, data_type FROM duckdb_columns() "
                         "WHERE schema_name = 'raw' AND table_name = 'htx'").fetchall())
    assert types["established_on"] == "DATE" and types["members"] == "BIGINT" and types["high_tech"] == "BOOLEAN"
    assert types["row_number"] == "BIGINT" and types["year"] == "INTEGER" and types["revenue"] == "DOUBLE"
    assert {"source_file", "sheet", "unit_code", "file_hash", "run_id"} <= set(types)


def test_open_transaction_is_a_clear_error(tmp_path):
    d = write(tmp_path, CHAIN)
    con = src_con()
    con.begin()
    with pytest.raises(ModelError, match="no open transaction"):
        run_models(con, d)


SPEC_IND = ["new_formed", "active_count", "members", "workers", "avg_revenue_mvnd", "avg_profit_mvnd",
            "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct", "ocop_count", "high_tech_count"]
SPEC_COLUMNS = {  # ../shared/spec/warehouse.md "Tables and views" (at least these, in this order)
    "marts.province_indicators": ["year", "entity_type"] + SPEC_IND,
    "marts.district_indicators": ["year", "district_code", "district_name", "entity_type"] + SPEC_IND,
    "marts.sector_indicators": ["year", "sector", "entity_type"] + SPEC_IND,
    "marts.funding_backlog": ["year", "district_code", "district_name", "reg_code", "name", "established_on",
                              "waiting_days"],
    "marts.plan_vs_actual": ["year", "indicator_code", "target_min", "target_max", "actual", "status"],
    "core.dim_district": ["district_code", "district_name", "valid_from", "valid_to"],
}


def test_project_marts_have_the_spec_columns_first():
    con = duckdb.connect()
    create_input_tables(con)
    run_models(con)
    for table, want in SPEC_COLUMNS.items():
        schema, name = table.split(".")
        got = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = ? "
                                         "AND table_name = ? ORDER BY column_index", [schema, name]).fetchall()]
        assert got[:len(want)] == want, table


def test_stale_column_description_fails(tmp_path):
    d = write(tmp_path, {"staging/a.sql": "-- @description A\n-- @column id: Mã — id\n-- @column gone: old\n"
                                          "SELECT id FROM src.t"})
    with pytest.raises(ModelError, match="gone"):
        run_models(src_con(), d)


def test_deps_cache_gives_the_parsed_dependencies_without_parsing(tmp_path, monkeypatch):
    """`discover_models(deps_cache=...)` (the flow's `.state/model_deps.json`): the same models as
    a parse; a second discovery of the same texts never calls sqlglot; a changed text is parsed
    again; a damaged cache file is only a cache."""
    from coop.warehouse import models as m

    d = write(tmp_path / "sql", CHAIN)
    cache = tmp_path / "state" / "model_deps.json"
    parsed = m.discover_models(d)
    assert m.discover_models(d, cache) == parsed and cache.exists()
    assert m.discover_models(SQL_DIR, tmp_path / "real.json") == m.discover_models(SQL_DIR)  # the shipped models

    def no_parse(path: Path, sql: str) -> set[str]:
        raise AssertionError(f"parsed {path} although its text is in the cache")

    monkeypatch.setattr(m, "_deps", no_parse)
    assert m.discover_models(d, cache) == parsed
    con = src_con()
    assert run_models(con, d, deps_cache=cache) == ["staging.gamma", "core.beta", "core.alpha"]
    monkeypatch.undo()

    # a changed model text: parsed again (its new dependency read), the cache then holds the models of now
    (d / "core" / "beta.sql").write_text(CHAIN["core/beta.sql"].replace("WHERE id > 1", "WHERE id > 1 AND id IN "
                                                                         "(SELECT id FROM src.t)"), encoding="utf-8")
    assert m.discover_models(d, cache)["core.beta"].deps == {"staging.gamma", "src.t"}
    assert len(m._read_deps_cache(cache)) == 3
    cache.write_text("{not json", encoding="utf-8")
    assert m.discover_models(d, cache) == m.discover_models(d)


def test_deps_cache_of_the_machine_serves_a_new_warehouse(tmp_path, monkeypatch):
    """The flow passes `.state/model_deps.json` and the machine's file: a new warehouse (no
    `.state` file yet) takes the machine's entries without a parse and gets its own file; the
    first file wins; an unwritable machine file is only a cache."""
    from coop.warehouse import models as m

    d = write(tmp_path / "sql", CHAIN)
    parsed = m.discover_models(d)
    machine = tmp_path / "home" / "model_deps.json"
    assert m.discover_models(d, [tmp_path / "wh1" / "model_deps.json", machine]) == parsed and machine.exists()

    def no_parse(path: Path, sql: str) -> set[str]:
        raise AssertionError(f"parsed {path} although its text is in the machine's cache")

    monkeypatch.setattr(m, "_deps", no_parse)
    state = tmp_path / "wh2" / "model_deps.json"
    assert m.discover_models(d, [state, machine]) == parsed
    assert m._read_deps_cache(state) == m._read_deps_cache(machine)
    # the first file wins over the second for the same key (both are caches of the same function)
    key = next(iter(m._read_deps_cache(state)))
    fake = {**m._read_deps_cache(machine), key: ["from.machine"]}
    machine.write_text(json.dumps(fake), encoding="utf-8")
    assert m.discover_models(d, [state, machine]) == parsed
    assert m._read_deps_cache(machine) == m._read_deps_cache(state)  # the machine's file rewritten to now
    monkeypatch.undo()
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    assert m.discover_models(d, [state, blocked / "model_deps.json"]) == parsed  # cannot write under a file


def test_deps_cache_keeps_no_model_in_error(tmp_path):
    d = write(tmp_path, {"core/bad.sql": "-- @description Bad\nSELECT 1 AS one; SELECT 2 AS two\n"})
    cache = tmp_path / "model_deps.json"
    for _ in range(2):  # refused every time, not remembered
        with pytest.raises(ModelError, match="exactly one SELECT"):
            run_models(duckdb.connect(), d, deps_cache=cache)
    assert not cache.exists() or json.loads(cache.read_text(encoding="utf-8")) == {}

