"""Warehouse: the DuckDB file. load (raw/ref/audit with lineage) -> models (`sql/`) ->
datatests (`sql/tests/`) -> guards -> publish (atomic rename, kept versions).
`queries` is the read-only side (latest published run, audit, marts) used by every output.
"""
