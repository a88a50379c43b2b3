"""The input contract written once (issue 11 item 4): the pandera schemas are generated from
FORMS and each column rule is enforced by a pandera Check carrying the rule's reason code;
ref.vocabularies is vocabularies.toml in the warehouse, and the SQL accepted-values data
tests read their codes from it.

Expected reason codes are derived here from the ColumnSpec fields as forms.md states them
(required -> missing_value, minimum -> negative_value / not_positive when strict, vocabulary
-> unknown_category / unknown_plan_code, allowed values -> unknown_category, pattern ->
invalid_reg_code), never from the schema under test."""

from __future__ import annotations

import datetime as dt
import random
import tomllib
import unicodedata

import duckdb
import pandera.errors as pa_errors
import polars as pl
import pytest

import warehouse_fixture as fx
from coop.warehouse import load
from coop.warehouse.datatests import run_data_test, run_data_tests
from coop.warehouse.models import SQL_DIR, create_input_tables, run_models
from coop.reference import REFERENCE_DIR, Vocabulary, load_reference
from schemas.forms import FORMS, SCHEMAS, TYPED_SCHEMAS, validate_frame, validate_frames
from schemas.vocabularies import vocabularies_frame

# one valid typed row per form (every column filled), written by hand from forms.md
VALID = {
    "HTX": {"reg_code": "5400100001", "name": "HTX A", "commune": "Xã A", "kind": "htx",
            "established_on": dt.date(2015, 1, 1), "sector": "agriculture", "status": "active", "members": 10,
            "workers": 4, "revenue": 100.0, "profit": -5.0, "income": 3.5, "rating": "good", "ocop_stars": 4,
            "high_tech": True},
    "THT": {"name": "THT A", "commune": "Xã A", "established_on": dt.date(2015, 1, 1), "sector": "other",
            "status": "active", "members": 5, "workers": 5, "revenue": 10.0, "profit": 1.0, "income": 1.0},
    "HO_TRO": {"reg_code": "5400100001", "support_type": "training", "amount": 10.0, "participants": 25,
               "decision_no": "12/QĐ-UBND", "allocated_on": dt.date(2020, 3, 1)},
    "CHI_TIEU": {"code": "new_htx", "label": "Số HTX thành lập mới", "unit": "HTX", "target_raw": "30 - 40",
                 "target_min": 30.0, "target_max": 40.0},
}


def frame(form: str, **over) -> pl.DataFrame:
    row = {**VALID[form], **over}
    return pl.DataFrame([row], schema=TYPED_SCHEMAS[form]).with_columns(pl.lit(7, dtype=pl.Int64).alias("row_number"))


def expected_violations(form: str) -> list[tuple[str, object, str]]:
    """(typed column, violating value, reason code) for every rule of every column of the form,
    from its ColumnSpec."""
    out: list[tuple[str, object, str]] = []
    for spec in FORMS[form].columns:
        if spec.kind == "target":
            if spec.required:
                out += [("target_raw", None, "missing_value"), ("target_min", None, "invalid_target")]
            continue
        if spec.required:
            out.append((spec.name, None, "missing_value"))
        if spec.minimum is not None:
            out.append((spec.name, spec.minimum if spec.strict_minimum else spec.minimum - 1,
                        "not_positive" if spec.strict_minimum else "negative_value"))
        if spec.vocab is not None:
            out.append((spec.name, "zz_not_a_code", "unknown_plan_code" if spec.vocab == "plan_code"
                        else "unknown_category"))
        if spec.allowed is not None:
            out.append((spec.name, max(spec.allowed) + 1, "unknown_category"))
        if spec.pattern is not None:
            out.append((spec.name, "54A/01", "invalid_reg_code"))
    return out


VIOLATIONS = [(f, c, v, code) for f in FORMS for c, v, code in expected_violations(f)]


def test_forms_state_the_rules_the_old_models_had():
    """The rules moved from the hand-written models into FORMS, none lost."""
    got = {(f, c, code) for f, c, _, code in VIOLATIONS}
    assert {("HTX", "reg_code", "invalid_reg_code"), ("HO_TRO", "reg_code", "invalid_reg_code"),
            ("HTX", "ocop_stars", "unknown_category"), ("HTX", "kind", "unknown_category"),
            ("HTX", "rating", "unknown_category"), ("HO_TRO", "amount", "not_positive"),
            ("HO_TRO", "participants", "negative_value"), ("THT", "members", "negative_value"),
            ("CHI_TIEU", "code", "unknown_plan_code"), ("CHI_TIEU", "target_min", "invalid_target")} <= got
    assert len(VIOLATIONS) == 16 + 11 + 8 + 4  # HTX, THT, HO_TRO, CHI_TIEU
    assert {c.name: c.default for c in FORMS["HTX"].columns if c.default is not None} == {"kind": "htx",
                                                                                           "high_tech": False}


@pytest.mark.parametrize("form,column,value,code", VIOLATIONS, ids=[f"{f}-{c}-{code}" for f, c, _, code in VIOLATIONS])
def test_each_rule_is_a_pandera_check_with_its_reason_code(form, column, value, code):
    df = frame(form, **{column: value})
    # the generated pandera schema alone refuses the cell, through the Check (or nullable flag)
    # that carries the spec's reason code
    col = SCHEMAS[form].columns[column]
    with pytest.raises(pa_errors.SchemaErrors) as ei:
        SCHEMAS[form].validate(df, lazy=True)
    cases = ei.value.failure_cases.filter(pl.col("column") == column).to_dicts()
    assert len(cases) == 1 and cases[0]["index"] == 0
    case = cases[0]
    if value is None:
        assert case["check"] == "not_nullable" and not col.nullable and col.metadata["null_reason"] == code
    else:
        assert col.checks[case["check_number"]].error == code
    # validate_frame reports exactly that cell with that code, in Vietnamese
    valid, failures = validate_frame(form, df)
    assert valid.height == 0
    assert failures.select("row_index", "column_name", "reason_code").rows() == [(0, column, code)]
    assert failures.get_column("reason").item().endswith(f"[{code}]")


@pytest.mark.parametrize("form", list(FORMS))
def test_valid_row_and_rule_free_columns_accept_anything(form):
    valid, failures = validate_frame(form, frame(form))
    assert failures.height == 0 and valid.height == 1
    ruled = {c for c, _, _ in expected_violations(form)}
    for name in TYPED_SCHEMAS[form]:
        col = SCHEMAS[form].columns[name]
        if name not in ruled:  # optional (or defaulted) and without rule: empty is fine, no check
            assert not col.checks, name
            assert col.nullable or FORMS[form].column(name).default is not None, name
            assert validate_frame(form, frame(form, **{name: None}))[1].height == 0, name


def test_schema_is_generated_from_forms():
    for form, spec in FORMS.items():
        schema = SCHEMAS[form]
        assert list(schema.columns) == list(TYPED_SCHEMAS[form])
        assert not schema.strict  # lineage columns pass through
        for name, col in schema.columns.items():
            assert str(col.dtype) == str(TYPED_SCHEMAS[form][name]), (form, name)
            assert col.metadata["form_column"] in spec.column_names
            for check in col.checks:  # every check names its reason code
                assert check.error in {"negative_value", "not_positive", "unknown_category", "unknown_plan_code",
                                       "invalid_reg_code"}


def test_defaults_fill_instead_of_failing():
    valid, failures = validate_frame("HTX", frame("HTX", kind=None, high_tech=None))
    assert failures.height == 0
    assert valid.select("kind", "high_tech").row(0) == ("htx", False)


def _full_pandera(form: str, df: pl.DataFrame) -> set[tuple[int, str, str]]:
    """The failures of the whole frame by the whole schema (no screen): the reference result."""
    schema = SCHEMAS[form]
    try:
        schema.validate(df, lazy=True)
        return set()
    except pa_errors.SchemaErrors as e:
        out = set()
        for r in e.failure_cases.iter_rows(named=True):
            col = schema.columns[r["column"]]
            code = col.metadata["null_reason"] if r["check_number"] is None else col.checks[r["check_number"]].error
            out.add((r["index"], r["column"], code))
        return out


@pytest.mark.parametrize("form", list(FORMS))
def test_screen_agrees_with_pandera_on_random_frames(form):
    """validate_frame runs pandera only on the rows and columns its one-pass screen flags:
    on random frames (valid, violating, null and NaN cells) it finds exactly what pandera
    finds over the whole frame."""
    rnd = random.Random(11)
    choices = {c: [VALID[form][c], None] for c in TYPED_SCHEMAS[form]}
    for c, v, _ in expected_violations(form):
        if v is not None:
            choices[c].append(v)
    for c, dtype in TYPED_SCHEMAS[form].items():
        if dtype == pl.Float64:
            choices[c].append(float("nan"))
    for size in (1, 5, 40):
        rows = [{c: rnd.choice(vs) for c, vs in choices.items()} for _ in range(size)]
        df = pl.DataFrame(rows, schema=TYPED_SCHEMAS[form])
        valid, failures = validate_frame(form, df)
        expect = _full_pandera(form, _defaults(form, df))
        assert set(failures.select("row_index", "column_name", "reason_code").rows()) == expect
        assert valid.height == size - len({i for i, _, _ in expect})


def _defaults(form: str, df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns([pl.col(c.name).fill_null(c.default) for c in FORMS[form].columns if c.default is not None])


def test_validate_frames_equals_one_call_per_frame():
    frames = [frame("HTX", members=-1), frame("HTX"), pl.concat([frame("HTX", sector="bees"), frame("HTX", name=None)]),
              frame("HTX").head(0), frame("HTX", kind=None)]
    batched = validate_frames("HTX", frames)
    assert len(batched) == len(frames)
    for df, (valid, failures) in zip(frames, batched):
        one_valid, one_failures = validate_frame("HTX", df)
        assert valid.equals(one_valid) and failures.equals(one_failures)
    assert batched[2][1].select("row_index", "column_name").rows() == [(0, "sector"), (1, "name")]


# ------------------------------------------------------------------ ref.vocabularies
def _toml_rows() -> list[tuple]:
    """vocabularies.toml read here with tomllib, not through coop.reference."""
    data = tomllib.loads((REFERENCE_DIR / "vocabularies.toml").read_text(encoding="utf-8"))
    nfc = lambda s: " ".join(unicodedata.normalize("NFC", s).split())  # noqa: E731
    return [(name, code, nfc(spellings[0]), [nfc(s) for s in spellings], pos)
            for name, codes in data["vocab"].items()
            for pos, (code, spellings) in enumerate(codes.items(), start=1)]


def _table_rows(con) -> list[tuple]:
    return con.execute("SELECT vocabulary, code, label_vi, spellings, position FROM ref.vocabularies "
                       "ORDER BY rowid").fetchall()


def test_ref_vocabularies_equals_vocabularies_toml_in_a_build(tmp_path):
    con = load.open_build(tmp_path / "b.duckdb")
    load.create_tables(con)
    rows = _table_rows(con)
    assert rows == _toml_rows()
    assert {r[0] for r in rows} == {"sector", "status", "support_type", "kind", "rating", "plan_code"}
    assert ("sector", "agriculture", "Nông nghiệp") in {r[:3] for r in rows}
    comments = con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = 'ref' "
                           "AND table_name = 'vocabularies'").fetchall()
    assert [c for c, _ in comments] == ["vocabulary", "code", "label_vi", "spellings", "position"]
    assert all(text for _, text in comments)
    assert con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'ref' "
                       "AND table_name = 'vocabularies'").fetchall()[0][0].startswith("Danh mục mã")
    # a second build (same file) replaces the rows, it does not append
    load.create_tables(con)
    assert _table_rows(con) == _toml_rows()
    con.close()


def test_build_writes_its_references_vocabularies(tmp_path):
    """Filled from coop.reference in every build: another reference's vocabularies replace the
    shipped ones."""
    import dataclasses

    ref = load_reference()
    vocabs = dict(ref.vocabularies)
    vocabs["sector"] = Vocabulary.build("sector", {"agriculture": ["Nông nghiệp"], "fishery": ["Thủy sản", "Nuôi cá"]})
    other = dataclasses.replace(ref, vocabularies=vocabs)
    con = load.open_build(tmp_path / "b.duckdb")
    load.create_tables(con, other)
    assert con.execute("SELECT code, label_vi, spellings, position FROM ref.vocabularies WHERE vocabulary = 'sector' "
                       "ORDER BY position").fetchall() == [("agriculture", "Nông nghiệp", ["Nông nghiệp"], 1),
                                                           ("fishery", "Thủy sản", ["Thủy sản", "Nuôi cá"], 2)]
    assert vocabularies_frame(other).filter(pl.col("vocabulary") == "sector").height == 2
    con.close()


def test_input_tables_alone_carry_the_shipped_vocabularies():
    con = duckdb.connect()
    create_input_tables(con)
    assert _table_rows(con) == _toml_rows()
    create_input_tables(con)  # idempotent
    assert len(_table_rows(con)) == len(_toml_rows())


# ------------------------------------------------------------------ accepted-values tests read ref.vocabularies
# (test file, vocabulary, a code the fixture uses, the column naming it in the failing rows)
READS = [
    ("accepted_values_sector", "sector", "handicraft", "sector"),
    ("accepted_values_support", "support_type", "training", "support_type"),
    ("accepted_values_register", "status", "suspended", "status"),
    ("accepted_values_register", "kind", "htx", "kind"),
    ("accepted_values_plan_code", "plan_code", "new_tht", "indicator_code"),
]


@pytest.fixture(scope="module")
def built():
    con = fx.build()
    run_models(con)
    return con


@pytest.mark.parametrize("test,vocabulary,code,column", READS, ids=[f"{t}-{v}" for t, v, _, _ in READS])
def test_accepted_values_fail_when_a_code_leaves_ref_vocabularies(built, test, vocabulary, code, column):
    con = built.cursor()
    path = SQL_DIR / "tests" / f"{test}.sql"
    assert run_data_test(con, path).passed
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM ref.vocabularies WHERE vocabulary = ? AND code = ?", [vocabulary, code])
        r = run_data_test(con, path)
        assert not r.passed and r.failing_rows > 0 and r.error is None
        assert {row[column] for row in r.sample} == {code}
    finally:
        con.execute("ROLLBACK")
    assert run_data_test(con, path).passed


def test_accepted_values_take_a_new_code_from_ref_vocabularies():
    con = fx.build()
    con.execute("UPDATE raw.htx SET sector = 'fishery' WHERE reg_code = 'H1'").fetchall()
    run_models(con)
    path = SQL_DIR / "tests" / "accepted_values_sector.sql"
    r = run_data_test(con, path)
    assert not r.passed and {row["sector"] for row in r.sample} == {"fishery"}
    con.execute("INSERT INTO ref.vocabularies VALUES ('sector', 'fishery', 'Thủy sản', ['Thủy sản'], 12)").fetchall()
    assert run_data_test(con, path).passed


def test_no_accepted_values_test_hard_codes_a_vocabulary():
    codes = {code for name, voc in load_reference().vocabularies.items() for code in voc.codes}
    for path in sorted((SQL_DIR / "tests").glob("accepted_values_*.sql")):
        sql = path.read_text(encoding="utf-8")
        quoted = {c for c in codes if f"'{c}'" in sql}
        assert quoted == set(), f"{path.name} hard-codes {sorted(quoted)}"
    assert all(r.passed for r in run_data_tests(_built_fresh()) if r.name.startswith("accepted_values_"))


def _built_fresh():
    con = fx.build()
    run_models(con)
    return con
