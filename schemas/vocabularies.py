"""`ref.vocabularies`: the vocabularies of the input contract as a warehouse table.

One row per (vocabulary, code) of `coop.reference` (`schemas/reference/vocabularies.toml`):
the code the warehouse stores (`agriculture`), its official Vietnamese label (the first
spelling: `Nông nghiệp`), every accepted spelling, and its display position. Filled in every
build (`coop.warehouse.load.reference_frames`); the SQL accepted-values data tests
(`sql/tests/accepted_values_*.sql`) read the accepted codes from it, so a vocabulary lives in
one place: vocabularies.toml.
"""

from __future__ import annotations

import duckdb
import polars as pl

from coop.reference import Reference, load_reference

__all__ = ["VOCABULARIES_TABLE", "VOCABULARY_COLUMNS", "vocabularies_frame", "ensure_vocabularies"]

VOCABULARIES_TABLE = "ref.vocabularies"
VOCABULARY_COLUMNS: dict[str, pl.DataType] = {
    "vocabulary": pl.String(), "code": pl.String(), "label_vi": pl.String(),
    "spellings": pl.List(pl.String()), "position": pl.Int32(),
}


def vocabularies_frame(reference: Reference | None = None) -> pl.DataFrame:
    """The rows of ref.vocabularies for `reference` (default: the shipped one), in the file's
    order: vocabulary by vocabulary, codes in display order (position 1, 2, ...)."""
    reference = reference if reference is not None else load_reference()
    rows = [
        {"vocabulary": name, "code": code, "label_vi": voc.labels[code],
         "spellings": list(voc.spellings.get(code) or (voc.labels[code],)), "position": pos}
        for name, voc in reference.vocabularies.items()
        for pos, code in enumerate(voc.codes, start=1)
    ]
    return pl.DataFrame(rows, schema=VOCABULARY_COLUMNS)


def ensure_vocabularies(con: duckdb.DuckDBPyConnection) -> None:
    """Fill an empty ref.vocabularies with the shipped vocabularies (a warehouse made by
    `coop.warehouse.models.create_input_tables` alone, as the tests' fixtures do); a build replaces
    them with its reference's through `coop.warehouse.load.reference_frames`."""
    if con.execute(f"SELECT count(*) FROM {VOCABULARIES_TABLE}").fetchall()[0][0]:
        return
    frame = vocabularies_frame()  # noqa: F841  (read by DuckDB by name)
    con.execute(f"INSERT INTO {VOCABULARIES_TABLE} BY NAME SELECT * FROM frame").fetchall()
