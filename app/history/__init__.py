"""Inference history, billing and feedback: a WAL in front of Parquet, queried with DuckDB."""
