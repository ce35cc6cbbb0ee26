"""Recorder deployment: the persistence actor (one replica: one writer per storage root).

An inference is acknowledged once its billing event (and, unless `store: false`, its history
row) is in the write-ahead log; concurrent records share one fsync (`@serve.batch` as group
commit). Parquet flushes, compaction and clean-up run in the background, off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ray import serve

from app import metrics
from app.config import HistoryConfig
from app.history.queries import InferenceFilters
from app.history.records import UNRECORDED, to_wire
from app.history.snapshots import StoreSnapshot, Version
from app.history.store import HistoryStore

logger = logging.getLogger("ray.serve")
MAINTENANCE_TICK_S = 0.5


@dataclass(frozen=True)
class _Entry:
    billing: dict[str, Any]
    history: dict[str, Any] | None


class Recorder:
    async def __init__(self, config: HistoryConfig) -> None:
        self._config = config
        store = HistoryStore(config.storage_root, config.wal_dir, gc_grace_s=config.gc_grace_s)
        self._store = await asyncio.to_thread(store.open)
        replayed = {name: d.replayed for name, d in self._store.datasets.items()}
        logger.info("history at %s opened; WAL rows replayed: %s", config.storage_root, replayed)
        self._wal_lag = metrics.WalLag()
        self._maintenance = asyncio.create_task(self._maintain())

    async def _maintain(self) -> None:
        last_compaction = time.monotonic()
        while True:
            await asyncio.sleep(MAINTENANCE_TICK_S)
            self._store.beat()
            flushed: dict[str, int] = {}
            try:
                started = time.perf_counter()
                flushed = await asyncio.to_thread(
                    self._store.flush, self._config.flush_records, self._config.flush_interval_s
                )
                if flushed:  # most ticks flush nothing: only real flushes are timed
                    metrics.recorder_flushed(flushed, (time.perf_counter() - started) * 1000)
                if time.monotonic() - last_compaction >= self._config.compact_interval_s:
                    last_compaction = time.monotonic()
                    started = time.perf_counter()
                    await asyncio.to_thread(self._store.compact, self._config.compact_min_files)
                    metrics.recorder_compacted((time.perf_counter() - started) * 1000)
                await asyncio.to_thread(self._store.collect_garbage)
            except Exception:  # the WAL still holds every row; retry next tick
                metrics.recorder_maintenance_failed()
                logger.exception("history maintenance failed; will retry")
            try:  # stats() takes the datasets' locks: off the event loop
                self._wal_lag.observe(await asyncio.to_thread(self._store.stats), flushed)
            except Exception:
                logger.debug("WAL lag not measured this tick", exc_info=True)

    # ---- writes --------------------------------------------------------------------------

    async def record_many(
        self, entries: list[tuple[dict[str, Any], dict[str, Any] | None]]
    ) -> list[bool]:
        """(bill, history row or None) pairs an ingress gathered; durable when it returns. Per
        entry, False: billed, but the history row could not be kept. Groups from every
        ingress replica share one WAL append and fsync."""
        return list(await asyncio.gather(*(self._commit(_Entry(b, h)) for b, h in entries)))

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.0)
    async def _commit(self, entries: list[_Entry]) -> list[bool]:
        return await self._write(entries)

    async def _write(self, entries: list[_Entry]) -> list[bool]:
        return await asyncio.to_thread(self._write_group, entries)

    def _write_group(self, entries: list[_Entry]) -> list[bool]:
        """One WAL append (one fsync) per dataset for a whole group; each row stands alone.

        History rows are checked first, so the bill of a request whose row cannot be kept
        says so ("unrecorded": it ran, and its caller is told it was not recorded). Bills are
        written before history rows: a failed history write never loses a bill."""
        history = self._store.inferences.prepare(
            [e.history for e in entries if e.history is not None]
        )
        kept = iter(item is not None for item in history)
        recorded = [True if e.history is None else next(kept) for e in entries]
        bills = [
            e.billing if ok else {**e.billing, "status": UNRECORDED}
            for e, ok in zip(entries, recorded, strict=True)
        ]
        billed = self._store.billing.append(bills)
        try:
            self._store.inferences.write(history)
        except Exception:
            logger.exception("history append failed for %d rows (bills kept)", len(history))
            return [e.history is None and ok for e, ok in zip(entries, billed, strict=True)]
        return [ok and bill for ok, bill in zip(recorded, billed, strict=True)]

    async def add_feedback(self, row: dict[str, Any]) -> None:
        await asyncio.to_thread(self._store.feedback.append, [row])

    # ---- reads ---------------------------------------------------------------------------

    async def read_snapshot(
        self, names: tuple[str, ...], held: dict[str, Version]
    ) -> StoreSnapshot:
        """An ingress replica's read: the named datasets' files and unflushed rows, beyond
        what it `held`. The query runs there (app/history/client.py), not here. Most reads
        find nothing new: answered here, no thread hop (locks only tried, never waited for)."""
        snapshot = self._store.export(names, held, quick=True)
        if snapshot is None:  # a lock is busy, or rows are to be copied out: off the loop
            snapshot = await asyncio.to_thread(self._store.export, names, held)
        return snapshot

    # The Recorder's own queries: for replicas that cannot see the storage, the Limiter's
    # usage, and the OpenAI door's previous_response_id.

    async def list_inferences(self, filters: InferenceFilters) -> tuple[list[dict], int]:
        rows, total = await asyncio.to_thread(self._store.list_inferences, filters)
        return [to_wire(row) for row in rows], total

    async def get_inference(self, inference_id: str, project_id: str | None) -> dict | None:
        row = await asyncio.to_thread(self._store.get_inference, inference_id, project_id)
        return to_wire(row) if row else None

    async def get_feedback(self, inference_id: str, project_id: str | None) -> dict | None:
        row = await asyncio.to_thread(self._store.get_feedback, inference_id, project_id)
        return to_wire(row) if row else None

    async def usage(self, project_id: str | None, since: Any, until: Any) -> list[dict]:
        return await asyncio.to_thread(self._store.usage, project_id, since, until)

    # ---- operations (tests, tools) -------------------------------------------------------

    async def flush(self) -> dict[str, int]:
        return await asyncio.to_thread(self._store.flush)

    async def compact(self, min_files: int = 2) -> dict[str, int]:
        return await asyncio.to_thread(self._store.compact, min_files)

    async def stats(self) -> dict[str, Any]:
        return self._store.stats()
