"""The history queries, written once for every reader: the Recorder's own store (CLI, tests,
the fallback) and the ingress's snapshot reader. No duckdb or pyarrow import here.

Each query takes a `Reading`: one instant's view of the datasets, which hands out DuckDB
cursors with a FROM-clause source per dataset (its published files, plus its unflushed rows
when there are any; None when the dataset holds no row at all). Every filter value is a
bound parameter; only fixed SQL text is formatted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.history.records import task_filter_parts

Source = tuple[str, list[Any]]  # a FROM-clause source and its parameters
Sources = dict[str, Source | None]  # per dataset; None: it holds no row

# What `list_inferences` and `get_inference` read of each dataset.
INFERENCE_DATASETS = ("inferences", "feedback")
# A page's total is counted beside the page (its own cursor, same snapshot): the two scans
# overlap instead of adding up. Threads only block on DuckDB, which releases the GIL.
_BESIDE = ThreadPoolExecutor(max_workers=8, thread_name_prefix="history-count")


class Reading(Protocol):
    """One instant's view of the datasets; every cursor it opens sees the same rows."""

    def open(self) -> AbstractContextManager[tuple[Any, Sources]]: ...


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


FEEDBACK_COLUMNS = (
    "human_verdict",
    "human_corrected_output",
    "human_feedback_notes",
    "human_feedback_at",
)
LATEST_FEEDBACK = """
    SELECT inference_id,
           arg_max(verdict, created_at) AS human_verdict,
           arg_max(corrected_output, created_at) AS human_corrected_output,
           arg_max(notes, created_at) AS human_feedback_notes,
           max(created_at) AS human_feedback_at
    FROM {feedback} WHERE list_contains(?, inference_id) GROUP BY inference_id
"""


def list_inferences(reading: Reading, filters: InferenceFilters) -> tuple[list[dict], int]:
    """One page, newest first, with the latest feedback on each, and the total matched."""
    where, where_params = filters.where()
    with reading.open() as (cursor, sources):
        if sources["inferences"] is None:
            return [], 0
        inferences, params = sources["inferences"]
        total = _BESIDE.submit(_count, reading, where, where_params)
        try:
            page = dicts(
                cursor.execute(
                    f"SELECT * FROM {inferences} WHERE {where} "
                    "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                    [*params, *where_params, filters.limit, filters.offset],
                )
            )
            rows = _with_feedback(cursor, sources["feedback"], page)
        finally:
            counted = total.result()  # never left running on a cursor about to close
    return rows, counted


def _count(reading: Reading, where: str, where_params: list[Any]) -> int:
    with reading.open() as (cursor, sources):
        source = sources["inferences"]
        assert source is not None  # list_inferences checked
        inferences, params = source
        sql = f"SELECT count(*) FROM {inferences} WHERE {where}"
        return cursor.execute(sql, [*params, *where_params]).fetchone()[0]


def get_inference(
    reading: Reading, inference_id: str, project_id: str | None
) -> dict[str, Any] | None:
    with reading.open() as (cursor, sources):
        if sources["inferences"] is None:
            return None
        inferences, params = sources["inferences"]
        scope, scope_params = _project_scope(project_id)
        hit = dicts(
            cursor.execute(
                f"SELECT * FROM {inferences} WHERE id = ? {scope} LIMIT 1",
                [*params, inference_id, *scope_params],
            )
        )
        rows = _with_feedback(cursor, sources["feedback"], hit)
    return rows[0] if rows else None


def _with_feedback(
    cursor: Any, feedback: Source | None, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows with the latest feedback on each (its four columns None where there is
    none), read for just these ids."""
    latest: dict[str, dict[str, Any]] = {}
    if feedback is not None and rows:
        source, params = feedback
        found = cursor.execute(
            LATEST_FEEDBACK.format(feedback=source), [*params, [row["id"] for row in rows]]
        )
        latest = {hit.pop("inference_id"): hit for hit in dicts(found)}
    empty = dict.fromkeys(FEEDBACK_COLUMNS)
    return [{**row, **latest.get(row["id"], empty)} for row in rows]


def get_feedback(
    reading: Reading, inference_id: str, project_id: str | None
) -> dict[str, Any] | None:
    with reading.open() as (cursor, sources):
        if sources["feedback"] is None:
            return None
        feedback, params = sources["feedback"]
        scope, scope_params = _project_scope(project_id)
        rows = dicts(
            cursor.execute(
                f"SELECT * FROM {feedback} WHERE inference_id = ? {scope} "
                "ORDER BY created_at DESC LIMIT 1",
                [*params, inference_id, *scope_params],
            )
        )
    return rows[0] if rows else None


def usage(
    reading: Reading,
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
    with reading.open() as (cursor, sources):
        if sources["billing"] is None:
            return []
        billing, source_params = sources["billing"]
        return dicts(
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


def _project_scope(project_id: str | None) -> tuple[str, list[Any]]:
    return ("AND project_id = ?", [project_id]) if project_id is not None else ("", [])


def dicts(result: Any) -> list[dict[str, Any]]:
    columns = [c[0] for c in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
