"""Prefect flows composing coop's plain steps (the only place Prefect is imported)."""
