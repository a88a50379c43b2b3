"""Run: one run's context, its state between runs (hash ledger, parsed-file cache), its
plan, the lock, the Prefect environment and the operator commands that look at runs.
"""
