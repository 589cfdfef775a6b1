"""Evaluation store backends: embedded DuckDB (default) and PostgreSQL."""
