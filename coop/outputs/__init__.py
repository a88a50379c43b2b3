"""Outputs: what people read — the official's report, run reports, unit feedback, blank
templates, the data dictionary and the safe writers of every exported file. They read the
warehouse only through `coop.warehouse.queries`-style read-only connections.
"""
