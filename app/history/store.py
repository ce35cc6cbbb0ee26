"""The history store: three datasets and the DuckDB queries over them.

Every query reads a snapshot (published files + unflushed rows), so a record is visible as
soon as its append returns (read-your-writes) and never twice. Every filter value is a bound
parameter; only fixed SQL text is formatted.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.history.dataset import Dataset, Snapshot, _connection
from app.history.records import SCHEMAS, task_filter_parts
from app.history.storage import Storage


@dataclass(frozen=True)
class InferenceFilters:
    limit: int = 100
    offset: int = 0
    model_id: str | None = None
    task: str | None = None
    project_id: str | None = None
    training_job_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    latency_min: float | None = None
    latency_max: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = ["TRUE"], []
        for column in ("model_id", "project_id", "training_job_id"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.task is not None:
            # Documented names (ner, classification, ...) become the recorded task names. One
            # name matches a record with that task among its parts; a combined value
            # (`ner+classification`) matches records with exactly those parts, in any order.
            parts = task_filter_parts(self.task)
            if len(parts) == 1:
                clauses.append("(task = ? OR list_contains(string_split(task, '+'), ?))")
                params += [parts[0], parts[0]]
            else:
                clauses.append("list_sort(list_distinct(string_split(task, '+'))) = ?")
                params.append(sorted(set(parts)))
        for column, op, value in (
            ("created_at", ">=", self.since),
            ("created_at", "<=", self.until),
            ("latency_ms", ">=", self.latency_min),
            ("latency_ms", "<=", self.latency_max),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        return " AND ".join(clauses), params


FEEDBACK_COLUMNS = """
    arg_max(verdict, created_at) AS human_verdict,
    arg_max(corrected_output, created_at) AS human_corrected_output,
    arg_max(notes, created_at) AS human_feedback_notes,
    max(created_at) AS human_feedback_at
"""


class LockedError(RuntimeError):
    pass


class HistoryStore:
    def __init__(self, root: str, wal_dir: str | None, *, gc_grace_s: float = 60.0) -> None:
        self.storage = Storage(root)
        if wal_dir is None and not self.storage.local:
            raise ValueError("a remote storage root needs history.wal_dir on local disk")
        self.wal_dir = Path(wal_dir) if wal_dir else Path(self.storage.base) / "_wal"
        self.datasets = {
            name: Dataset(name, schema, self.storage, self.wal_dir, gc_grace_s=gc_grace_s)
            for name, schema in SCHEMAS.items()
        }
        self._lock_file = None

    @property
    def inferences(self) -> Dataset:
        return self.datasets["inferences"]

    @property
    def billing(self) -> Dataset:
        return self.datasets["billing"]

    @property
    def feedback(self) -> Dataset:
        return self.datasets["feedback"]

    def open(self) -> HistoryStore:
        """Take the writer lock (one writer per root), recover and replay every dataset."""
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.wal_dir / "writer.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise LockedError(
                f"another writer (a running server?) holds {self.wal_dir / 'writer.lock'}"
            ) from None
        for dataset in self.datasets.values():
            dataset.open()
        return self

    def close(self) -> None:
        for dataset in self.datasets.values():
            dataset.close()
        if self._lock_file:
            self._lock_file.close()

    # ---- writes --------------------------------------------------------------------------

    def flush(self, max_rows: int = 0, max_age_s: float = 0.0) -> dict[str, int]:
        """Flush the datasets that are due (all of them with the defaults)."""
        flushed = {}
        for name, dataset in self.datasets.items():
            if dataset.flush_due(max_rows, max_age_s) or (max_rows == 0 and max_age_s == 0):
                flushed[name] = dataset.flush()
        return flushed

    def compact(self, min_files: int = 2) -> dict[str, int]:
        return {name: d.compact(min_files) for name, d in self.datasets.items()}

    def collect_garbage(self) -> dict[str, int]:
        return {name: d.collect_garbage() for name, d in self.datasets.items()}

    # ---- reads ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self, *names: str) -> Any:
        """A cursor with a `<name>_all` view-like source per dataset: published + buffered."""
        cursor = _connection().cursor()
        snapshots: list[tuple[Dataset, Snapshot]] = []
        try:
            sources: dict[str, tuple[str, list[Any]]] = {}
            for name in names:
                dataset = self.datasets[name]
                snapshot = dataset.snapshot()
                snapshots.append((dataset, snapshot))
                published, params = dataset.source_sql(cursor, snapshot.files, f"{name}_files")
                cursor.register(f"{name}_buffer", snapshot.buffered)
                sql = f"(SELECT * FROM {published} UNION ALL BY NAME SELECT * FROM {name}_buffer)"
                sources[name] = (sql, params)
            yield cursor, sources
        finally:
            cursor.close()
            for dataset, snapshot in snapshots:
                dataset.release(snapshot)

    def list_inferences(self, filters: InferenceFilters) -> tuple[list[dict[str, Any]], int]:
        where, where_params = filters.where()
        with self._reading("inferences", "feedback") as (cursor, sources):
            inferences, inf_params = sources["inferences"]
            feedback, fb_params = sources["feedback"]
            total = cursor.execute(
                f"SELECT count(*) FROM {inferences} WHERE {where}", inf_params + where_params
            ).fetchone()[0]
            sql = f"""
                WITH page AS (
                    SELECT * FROM {inferences} WHERE {where}
                    ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?
                ),
                latest AS (
                    SELECT inference_id, {FEEDBACK_COLUMNS} FROM {feedback}
                    WHERE inference_id IN (SELECT id FROM page) GROUP BY inference_id
                )
                SELECT page.*, latest.* EXCLUDE (inference_id)
                FROM page LEFT JOIN latest ON latest.inference_id = page.id
                ORDER BY page.created_at DESC, page.id DESC
            """
            params = inf_params + where_params + [filters.limit, filters.offset] + fb_params
            rows = _dicts(cursor.execute(sql, params))
        return rows, total

    def get_inference(self, inference_id: str, project_id: str | None) -> dict | None:
        with self._reading("inferences", "feedback") as (cursor, sources):
            inferences, inf_params = sources["inferences"]
            feedback, fb_params = sources["feedback"]
            scope, scope_params = (
                ("AND project_id = ?", [project_id]) if project_id is not None else ("", [])
            )
            sql = f"""
                WITH hit AS (
                    SELECT * FROM {inferences} WHERE id = ? {scope} LIMIT 1
                ),
                latest AS (
                    SELECT inference_id, {FEEDBACK_COLUMNS} FROM {feedback}
                    WHERE inference_id = ? GROUP BY inference_id
                )
                SELECT hit.*, latest.* EXCLUDE (inference_id)
                FROM hit LEFT JOIN latest ON latest.inference_id = hit.id
            """
            params = inf_params + [inference_id, *scope_params] + fb_params + [inference_id]
            rows = _dicts(cursor.execute(sql, params))
        return rows[0] if rows else None

    def get_feedback(self, inference_id: str, project_id: str | None) -> dict | None:
        with self._reading("feedback") as (cursor, sources):
            feedback, params = sources["feedback"]
            scope, scope_params = (
                ("AND project_id = ?", [project_id]) if project_id is not None else ("", [])
            )
            rows = _dicts(
                cursor.execute(
                    f"SELECT * FROM {feedback} WHERE inference_id = ? {scope} "
                    "ORDER BY created_at DESC LIMIT 1",
                    params + [inference_id, *scope_params],
                )
            )
        return rows[0] if rows else None

    def usage(
        self,
        project_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Tokens and cost per project and model over a time range, from the billing data."""
        clauses, params = ["TRUE"], []
        for sql, value in (
            ("project_id = ?", project_id),
            ("created_at >= ?", since),
            ("created_at <= ?", until),
        ):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        with self._reading("billing") as (cursor, sources):
            billing, source_params = sources["billing"]
            return _dicts(
                cursor.execute(
                    f"""
                    SELECT project_id,
                           -- what ran: the job, else the base model (aliases fold in)
                           coalesce(training_job_id, base_model, model_id) AS model_id,
                           count(*) AS inferences,
                           count(*) FILTER (WHERE status <> 'success') AS failed,
                           sum(input_tokens) AS input_tokens,
                           sum(output_tokens) AS output_tokens,
                           sum(cache_read_tokens) AS cache_read_tokens,
                           sum(cache_write_tokens) AS cache_write_tokens,
                           round(sum(cost_usd), 9) AS cost_usd
                    FROM {billing} WHERE {" AND ".join(clauses)}
                    GROUP BY ALL ORDER BY project_id NULLS FIRST, model_id
                    """,
                    source_params + params,
                )
            )

    def count(self, name: str, where: str = "TRUE", params: list[Any] | None = None) -> int:
        """Rows of a dataset matching fixed SQL (tests and tools; never user input)."""
        with self._reading(name) as (cursor, sources):
            source, source_params = sources[name]
            return cursor.execute(
                f"SELECT count(*) FROM {source} WHERE {where}", source_params + (params or [])
            ).fetchone()[0]

    def stats(self) -> dict[str, Any]:
        return {name: d.stats() for name, d in self.datasets.items()}


def _dicts(result: Any) -> list[dict[str, Any]]:
    columns = [c[0] for c in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
