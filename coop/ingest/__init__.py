"""Ingest: from a file in `data/raw` to typed, validated rows of one file.

discover (which files, which unit and year) -> isolation (limits) -> read (sheets, forms,
legacy text) -> values (cell parsing) -> normalize (rows per form, quarantine, pandera
validation from `schemas/`). `preflight` is the clerk's `coop validate` on the same path.
Nothing here writes to the warehouse.
"""
