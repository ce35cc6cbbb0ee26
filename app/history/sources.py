"""DuckDB over the history: one connection per process, and each dataset as a FROM source.

Shared by the Recorder's own reads (`store`) and the ingress's snapshot reader, so both query
the same files the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from app.history.queries import Source, Sources
from app.history.storage import Storage

EMPTY_FILE = "date=1970-01-01/empty.parquet"  # zero rows: a manifest's list is never empty

_shared: duckdb.DuckDBPyConnection | None = None
_shared_lock = threading.Lock()


def connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process; each query takes its own cursor (thread-safe)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = duckdb.connect()
        return _shared


def published_source(
    cursor: duckdb.DuckDBPyConnection,
    storage: Storage,
    schema: pa.Schema,
    files: list[str],
    name: str,
) -> tuple[str, list[Any]]:
    """A FROM-clause source over published files, and its parameters, for this cursor.

    Local files go to DuckDB's own Parquet reader; other filesystems are handed over as an
    Arrow dataset (DuckDB scans it with projection and filter pushdown).
    """
    if storage.local:
        full = [storage.full(f) for f in files]
        return "read_parquet(?::VARCHAR[], hive_partitioning = false)", [full]
    dataset = pads.dataset(
        [storage.full(f) for f in files], schema=schema, format="parquet", filesystem=storage.fs
    )
    cursor.register(name, dataset)
    return name, []


def dataset_source(
    cursor: duckdb.DuckDBPyConnection,
    storage: Storage,
    schema: pa.Schema,
    name: str,
    files: list[str],
    tail: pa.Table,
) -> Source | None:
    """Published files plus the rows not yet flushed: every row acknowledged, once. None
    when there is no row at all, so a query can skip the dataset."""
    files = [f for f in files if not f.endswith(EMPTY_FILE)]  # its zero rows: one open less
    if not files and tail.num_rows == 0:
        return None
    if not files:
        cursor.register(f"{name}_tail", tail)
        return f"{name}_tail", []
    published, params = published_source(cursor, storage, schema, files, f"{name}_files")
    if tail.num_rows == 0:
        return published, params  # the common case: no union for the planner to see through
    cursor.register(f"{name}_tail", tail)
    return f"(SELECT * FROM {published} UNION ALL BY NAME SELECT * FROM {name}_tail)", params


@dataclass(frozen=True)
class DatasetView:
    """One dataset as of one instant: its published files and its unflushed rows."""

    schema: pa.Schema
    files: list[str]
    tail: pa.Table


class SnapshotReading:
    """A `queries.Reading` over fixed views: every cursor it opens sees the same rows."""

    def __init__(self, storage: Storage, views: dict[str, DatasetView]) -> None:
        self.storage = storage
        self.views = views

    @contextmanager
    def open(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, Sources]]:
        cursor = connection().cursor()
        try:
            yield (
                cursor,
                {
                    name: dataset_source(
                        cursor, self.storage, view.schema, name, view.files, view.tail
                    )
                    for name, view in self.views.items()
                },
            )
        finally:
            cursor.close()
