"""coop: district collective-economy spreadsheets -> the province's DuckDB warehouse."""

__version__ = "0.1.0"
