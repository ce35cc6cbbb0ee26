"""The ingress replica's side of the history: reads run here, writes go to the Recorder.

A read asks the Recorder for one thing, a snapshot (its published files and its unflushed
tail, only what changed since this replica's last one), and runs the query in this replica's
own DuckDB (`snapshot_reader`). So reads scale with ingress replicas, and the one Recorder
replica does a short lock hold per read instead of the query. On the Recorder's host a read
does not even ask while the writer's change counts show nothing new (`wal_watch`).

Where this replica cannot see the Recorder's storage (a local folder on another node), reads
go to the Recorder's own query methods, as before; it looks again every `RECHECK_S`.
This module imports neither duckdb nor pyarrow; the reader is imported on the first read.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from app import metrics
from app.history import queries
from app.history.queries import INFERENCE_DATASETS, InferenceFilters, Reading
from app.history.records import to_wire
from app.history.snapshots import StoreSnapshot

logger = logging.getLogger("ray.serve")
T = TypeVar("T")
READER_MODULE = "app.history.snapshot_reader"
RECHECK_S = 60.0

CallRecorder = Callable[..., Awaitable[Any]]  # (method name, *args) -> its answer


class HistoryClient:
    def __init__(self, call_recorder: CallRecorder) -> None:
        self._call = call_recorder  # InferenceGateway.history: bounded waits, 503s
        self._reader: Any = None  # a snapshot_reader.SnapshotReader once opened
        self._stale: type[Exception] = RuntimeError  # snapshot_reader.SnapshotStale, once loaded
        self._recorder_reads_until = 0.0  # storage not visible here: the Recorder reads
        self._opening = asyncio.Lock()
        self._guessing: dict[tuple[str, ...], bool] = {}  # per datasets read: see _guess

    # ---- reads ---------------------------------------------------------------------------

    async def list_inferences(self, filters: InferenceFilters) -> tuple[list[dict], int]:
        def run(reading: Reading) -> tuple[list[dict], int]:
            rows, total = queries.list_inferences(reading, filters)
            return [to_wire(row) for row in rows], total

        return await self._read(INFERENCE_DATASETS, run, "list_inferences", filters)

    async def get_inference(self, inference_id: str, project_id: str | None) -> dict | None:
        def run(reading: Reading) -> dict | None:
            row = queries.get_inference(reading, inference_id, project_id)
            return to_wire(row) if row else None

        return await self._read(INFERENCE_DATASETS, run, "get_inference", inference_id, project_id)

    async def get_feedback(self, inference_id: str, project_id: str | None) -> dict | None:
        def run(reading: Reading) -> dict | None:
            row = queries.get_feedback(reading, inference_id, project_id)
            return to_wire(row) if row else None

        return await self._read(("feedback",), run, "get_feedback", inference_id, project_id)

    async def usage(
        self, project_id: str | None, since: datetime | None, until: datetime | None
    ) -> list[dict]:
        def run(reading: Reading) -> list[dict]:
            return queries.usage(reading, project_id, since, until)

        return await self._read(("billing",), run, "usage", project_id, since, until)

    # ---- writes --------------------------------------------------------------------------

    async def add_feedback(self, row: dict[str, Any]) -> None:
        await self._call("add_feedback", row)

    # ---- the snapshot --------------------------------------------------------------------

    async def _read(
        self,
        names: Sequence[str],
        run: Callable[[Reading], T],
        recorder_method: str,
        *args: Any,
    ) -> T:
        """`run` over a fresh snapshot here; the Recorder's own `recorder_method` where this
        replica cannot read the storage. A snapshot that fails to read (a file collected
        after a compaction) is asked for again once; if that fails too, the Recorder reads."""
        for attempt in range(2):
            if time.monotonic() < self._recorder_reads_until:
                break
            reader = self._reader
            views = reader.views(names) if reader else {}
            if reader is not None and reader.current(names, views):
                try:  # nothing written since these views: no need to ask the Recorder
                    answer = await asyncio.to_thread(reader.run_on, views, run)
                    metrics.history_read("held")
                    return answer
                except self._stale:
                    reader.forget()
                    continue
            stamps = reader.stamps(names) if reader else None  # before asking: see current()
            held = {name: view.version for name, view in views.items()}
            asked = asyncio.ensure_future(self._call("read_snapshot", tuple(names), held))
            guess = self._guess(reader, names, views, run)
            try:
                snapshot = await asked
                reader = await self._reader_for(snapshot)
            except BaseException:
                _discard(guess)
                raise
            if reader is None:
                _discard(guess)
                break
            try:
                unchanged = reader is self._reader and reader.unchanged(snapshot, views)
                self._guessing[tuple(names)] = unchanged
                if guess is not None and unchanged:
                    reader.adopt(snapshot, stamps)  # the same views, stamped afresh
                    answer = await guess
                else:
                    _discard(guess)
                    answer = await asyncio.to_thread(reader.query, snapshot, run, stamps)
                metrics.history_read("snapshot")
                return answer
            except self._stale:
                logger.info("history snapshot went stale (attempt %d); reading afresh", attempt)
                reader.forget()
        answer = await self._call(recorder_method, *args)
        metrics.history_read("recorder")
        return answer

    def _guess(
        self, reader: Any, names: Sequence[str], views: dict, run: Callable[[Reading], T]
    ) -> asyncio.Future[T] | None:
        """The query over what this replica already holds, started while the Recorder is
        asked: if its snapshot turns out to hold nothing newer (no write since), the guess
        is the answer, and the round trip cost no extra time. Only tried while the last
        snapshot of these datasets held nothing new, so a stream of writes wastes nothing."""
        if reader is None or len(views) < len(names) or not self._guessing.get(tuple(names)):
            return None
        return asyncio.ensure_future(asyncio.to_thread(reader.run_on, views, run))

    async def _reader_for(self, snapshot: StoreSnapshot) -> Any:
        if self._reader is not None and self._reader.store_id == snapshot.store_id:
            return self._reader
        async with self._opening:
            if self._reader is None or self._reader.store_id != snapshot.store_id:
                self._reader = await self._open(snapshot)
            return self._reader

    async def _open(self, snapshot: StoreSnapshot) -> Any:
        try:
            module = await asyncio.to_thread(importlib.import_module, READER_MODULE)
            self._stale = module.SnapshotStale
            reader = await asyncio.to_thread(
                module.SnapshotReader.open, snapshot.root, snapshot.store_id
            )
        except Exception:
            logger.exception("history storage %s could not be opened here", snapshot.root)
            reader = None
        if reader is None:
            logger.warning(
                "history storage %s is not visible from this replica: the Recorder answers "
                "its history reads (checked again in %.0f s)",
                snapshot.root,
                RECHECK_S,
            )
            self._recorder_reads_until = time.monotonic() + RECHECK_S
        return reader


def _discard(guess: asyncio.Future | None) -> None:
    """A guess not used: let it finish in its thread, its result (or error) unread."""
    if guess is not None:
        guess.add_done_callback(lambda done: done.cancelled() or done.exception())
