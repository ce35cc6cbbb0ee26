"""One dataset (inferences, billing or feedback): WAL + in-memory buffer + Parquet files.

The manifest (`<dataset>/_manifest.json`, replaced atomically) is the list of live files:
readers use it, never a glob, so a flush or a compaction is seen whole or not at all. Order
of a flush: seal the WAL segment, write the Parquet files, publish the new manifest, delete
the segment. A crash at any point leaves either the segment (replayed on start; rows already
published are skipped by id) or a file the manifest does not list (deleted on start).
Files a compaction replaces are retired and deleted once no reader can still be using them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from app.history.records import without_lone_surrogates
from app.history.snapshots import DatasetSnapshot, Version
from app.history.sources import EMPTY_FILE, connection, published_source
from app.history.storage import Storage
from app.history.wal import WriteAheadLog, encode_row

logger = logging.getLogger("ray.serve")
RECENT_IDS = 200_000  # ids published by this process that a late duplicate is checked against


@dataclass
class Snapshot:
    """What a reader sees: published files plus rows not yet flushed."""

    files: list[str]
    buffered: pa.Table
    token: int


@dataclass(frozen=True)
class _Prepared:
    row: dict[str, Any]
    line: bytes  # the row as its WAL line


@dataclass
class _Retired:
    path: str
    retired_at: float
    generation: int


@dataclass
class _State:
    files: list[str] = field(default_factory=list)
    retired: list[_Retired] = field(default_factory=list)


class Dataset:
    def __init__(
        self, name: str, schema: pa.Schema, storage: Storage, wal_dir: Path, *, gc_grace_s: float
    ) -> None:
        self.name = name
        self.schema = schema
        self.storage = storage
        self.gc_grace_s = gc_grace_s
        self.wal = WriteAheadLog(wal_dir / name, schema)
        self._lock = threading.RLock()  # guards the buffer and the file list (short holds)
        # One flush or compaction at a time: two flushes of one buffer would publish it twice.
        self._maintenance = threading.Lock()
        self._buffer: dict[str, dict[str, Any]] = {}
        self._buffered_since: float | None = None
        self._state = _State()
        self._generation = 0
        self._readers: dict[int, int] = {}  # snapshot token -> generation it saw
        self._tokens = itertools.count(1)
        self._buffer_table: pa.Table | None = None
        self._replayed: set[str] = set()  # ids recovered from the WAL: maybe published already
        self._recent: set[str] = set()  # recently published ids (a retried append is dropped)
        self._recent_order: deque[str] = deque()
        self.replayed = 0
        # What a remote reader holds is named by these (see snapshots.Version).
        self._incarnation = uuid.uuid4().hex
        self._files_version = 0
        self._tail_epoch = 0
        # Told of every change a remote reader's Version would show, under the lock and
        # before it is acknowledged (the store counts them for readers: wal_watch).
        self.on_change: Callable[[], None] = _nothing

    # ---- start ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> str:
        return f"{self.name}/_manifest.json"

    def open(self) -> None:
        self.storage.clear_staging(self.name)
        manifest = self.storage.read_json(self.manifest_path)
        if manifest is None:
            self.storage.write_parquet(self.schema.empty_table(), f"{self.name}/{EMPTY_FILE}")
            manifest = {"files": [f"{self.name}/{EMPTY_FILE}"], "retired": []}
            self.storage.write_json(manifest, self.manifest_path)
        self._state = _State(
            files=list(manifest["files"]),
            retired=[_Retired(r["path"], 0.0, 0) for r in manifest.get("retired", [])],
        )
        live = set(self._state.files) | {r.path for r in self._state.retired}
        for orphan in set(self.storage.list_parquet(self.name)) - live:
            self.storage.delete(orphan)  # published but never listed: its rows are in the WAL
        for row in self.wal.replay():
            self._buffer.setdefault(row["id"], row)
        self._replayed = set(self._buffer)
        self.replayed = len(self._replayed)
        if self._buffer:
            self._buffered_since = 0.0  # flush replayed rows at the first chance

    # ---- writes --------------------------------------------------------------------------

    def append(self, rows: list[dict[str, Any]]) -> list[bool]:
        """Durable when it returns: in the WAL (fsynced) and visible to readers. Each row
        stands alone: one that cannot be stored is refused (False), the others are kept."""
        prepared = self.prepare(rows)
        self.write(prepared)
        return [item is not None for item in prepared]

    def prepare(self, rows: list[dict[str, Any]]) -> list[_Prepared | None]:
        """Each row as a WAL line, checked against the Parquet schema too, so one bad row
        can never poison the log, the buffer or a flush that the group's other rows share.
        A row holding lone surrogates is kept with them replaced (U+FFFD); a row that still
        does not fit is refused alone (None). The common case checks the group at once."""
        try:
            self._to_table(rows)
            group_fits = True
        except Exception:
            group_fits = False
        return [self._prepare_row(row, group_fits) for row in rows]

    def _prepare_row(self, row: dict[str, Any], fits: bool) -> _Prepared | None:
        for candidate in (row, without_lone_surrogates(row)):
            try:
                line = encode_row(candidate)
                if not fits:
                    self._to_table([candidate])
                return _Prepared(candidate, line)
            except Exception as exc:
                fits = False
                error = exc
        logger.error(
            "%s row %s refused: %s", self.name, row.get("id"), type(error).__name__
        )  # the type only: the payload may be store-worthy but not log-worthy
        return None

    def write(self, prepared: list[_Prepared | None]) -> None:
        kept = [item for item in prepared if item is not None]
        if not kept:
            return
        with self._lock:
            self.wal.write([item.line for item in kept])
            for item in kept:
                self._buffer.setdefault(item.row["id"], item.row)
            self._buffer_table = None
            self.on_change()
            if self._buffered_since is None:
                self._buffered_since = time.monotonic()

    def flush_due(self, max_rows: int, max_age_s: float) -> bool:
        with self._lock:
            if not self._buffer:
                return False
            age = time.monotonic() - (self._buffered_since or 0.0)
            return len(self._buffer) >= max_rows or age >= max_age_s

    def flush(self) -> int:
        """Publish every buffered row; return how many new rows reached Parquet."""
        with self._maintenance:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            sealed = self.wal.seal()
            pending = dict(self._buffer)
            files = list(self._state.files)
            late = [key for key in pending if key in self._recent]
            for key in late:  # appended again after it was published: drop the copy
                del pending[key]
                del self._buffer[key]
            if late:
                self._rows_left()
        if not pending:
            self.wal.drop(sealed)
            return 0
        table = self._to_table(list(pending.values()))
        day = pc.strftime(table.column("created_at"), format="%Y-%m-%d")
        days = set(day.to_pylist())
        if self._replayed & pending.keys():
            # Only rows replayed from the WAL can be in Parquet already (a crash after the
            # manifest, before the segment was dropped); rows appended since cannot.
            same_days = [f for f in files if f.split("/")[1].removeprefix("date=") in days]
            table, day = self._without_published(table, day, same_days)
        new_files = []
        if table.num_rows:
            for date in sorted(days):
                part = table.filter(pc.equal(day, date)).sort_by(
                    [("created_at", "descending"), ("id", "descending")]
                )
                path = f"{self.name}/date={date}/part-{_stamp()}.parquet"
                self.storage.write_parquet(part, path)
                new_files.append(path)
        with self._lock:
            if new_files:
                self._publish([*self._state.files, *new_files], self._state.retired)
            for key, row in pending.items():
                if self._buffer.get(key) is row:
                    del self._buffer[key]
            self._replayed -= pending.keys()
            self._remember(table.column("id").to_pylist())
            self._rows_left()
            self._buffered_since = time.monotonic() if self._buffer else None
        self.wal.drop(sealed)
        return table.num_rows

    def _rows_left(self) -> None:
        """Rows left the buffer: remote readers' tails start again (a new epoch)."""
        self._buffer_table = None
        self._tail_epoch += 1
        self.on_change()

    def _remember(self, ids: list[str]) -> None:
        self._recent.update(ids)
        self._recent_order.extend(ids)
        while len(self._recent_order) > RECENT_IDS:
            self._recent.discard(self._recent_order.popleft())

    def _without_published(
        self, table: pa.Table, day: pa.Array, files: list[str]
    ) -> tuple[pa.Table, pa.Array]:
        """Drop rows whose id is already in Parquet (a replay after a crash mid-flush)."""
        if not files:
            return table, day
        cursor = connection().cursor()
        try:
            cursor.register("pending_ids", table.select(["id"]))
            source, params = published_source(cursor, self.storage, self.schema, files, "published")
            published = cursor.execute(
                f"SELECT id FROM {source} WHERE id IN (SELECT id FROM pending_ids)", params
            ).fetchall()
        finally:
            cursor.close()
        if not published:
            return table, day
        keep = pc.invert(pc.is_in(table.column("id"), pa.array([row[0] for row in published])))
        return table.filter(keep), day.filter(keep)

    def _to_table(self, rows: list[dict[str, Any]]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _publish(self, files: list[str], retired: list[_Retired]) -> None:
        """Write the manifest, then adopt it: a failed write leaves the state as it was."""
        manifest = {"files": files, "retired": [{"path": r.path} for r in retired]}
        self.storage.write_json(manifest, self.manifest_path)
        self._state = _State(files=files, retired=retired)
        self._files_version += 1
        self.on_change()

    # ---- reads ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._buffer_table is None:
                self._buffer_table = self._to_table(list(self._buffer.values()))
            token = next(self._tokens)
            self._readers[token] = self._generation
            return Snapshot(list(self._state.files), self._buffer_table, token)

    def release(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._readers.pop(snapshot.token, None)

    def export(self, held: Version | None, *, quick: bool = False) -> DatasetSnapshot | None:
        """What a remote reader needs beyond what it `held`: the file list if it changed,
        the tail rows appended since (all of them after a flush). Both as of one instant.
        `quick`: only if that costs nothing (the lock is free, no row to copy), else None."""
        if not self._lock.acquire(blocking=not quick):
            return None
        try:
            version = Version(
                self._incarnation, self._files_version, self._tail_epoch, len(self._buffer)
            )
            same_writer = held is not None and held.incarnation == version.incarnation
            unchanged = same_writer and held.files == version.files
            files = None if unchanged else list(self._state.files)
            start = (
                held.rows
                if same_writer and held.epoch == version.epoch and held.rows <= version.rows
                else 0
            )
            if quick and start < version.rows:
                return None
            # Within an epoch rows are only added, and a dict keeps insertion order.
            rows = list(itertools.islice(self._buffer.values(), start, None))
        finally:
            self._lock.release()
        tail = _ipc(self._to_table(rows)) if rows else None
        return DatasetSnapshot(version, files, start, tail)

    # ---- compaction and clean-up ---------------------------------------------------------

    def compact(self, min_files: int) -> int:
        """Merge each day's small files into one sorted file; return files replaced."""
        with self._maintenance:
            return self._compact(min_files)

    def _compact(self, min_files: int) -> int:
        with self._lock:
            files = [f for f in self._state.files if not f.endswith(EMPTY_FILE)]
        by_day: dict[str, list[str]] = {}
        for path in files:
            by_day.setdefault(path.split("/")[1], []).append(path)
        replaced = 0
        for day, day_files in sorted(by_day.items()):
            if len(day_files) < min_files:
                continue
            # Sorted by model, then newest first, in row groups small enough that a model
            # filter skips most of the file on its min/max statistics.
            table = _first_per_id(
                self.storage.read_table(day_files).sort_by(self._compaction_order())
            )
            merged = f"{self.name}/{day}/compacted-{_stamp()}.parquet"
            self.storage.write_parquet(table.cast(self.schema), merged)
            with self._lock:
                keep = [f for f in self._state.files if f not in set(day_files)]
                now = time.monotonic()
                retiring = [_Retired(f, now, self._generation + 1) for f in day_files]
                self._publish([*keep, merged], [*self._state.retired, *retiring])
                self._generation += 1
            replaced += len(day_files)
        return replaced

    def _compaction_order(self) -> list[tuple[str, str]]:
        first = [("model_id", "ascending")] if "model_id" in self.schema.names else []
        return [*first, ("created_at", "descending"), ("id", "descending")]

    def collect_garbage(self) -> int:
        """Delete retired files no reader can be using: past the grace period (for readers
        outside this process) and older than every snapshot still open here."""
        with self._lock:
            oldest_reader = min(self._readers.values(), default=None)
            now = time.monotonic()
            doomed = [
                r
                for r in self._state.retired
                if now - r.retired_at >= self.gc_grace_s
                and (oldest_reader is None or oldest_reader >= r.generation)
            ]
            if not doomed:
                return 0
            self._publish(self._state.files, [r for r in self._state.retired if r not in doomed])
        for retired in doomed:
            self.storage.delete(retired.path)
        return len(doomed)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "files": len(self._state.files),
                "retired": len(self._state.retired),
                "buffered": len(self._buffer),
                "wal_segments": len(self.wal.segments()),
            }

    def close(self) -> None:
        self.wal.close()


def _nothing() -> None:
    pass


def _first_per_id(table: pa.Table) -> pa.Table:
    """Keep one row per id (a last line of defence: flushes already dedupe)."""
    seen: set[str] = set()
    keep = []
    for key in table.column("id").to_pylist():
        keep.append(key not in seen)
        seen.add(key)
    return table if all(keep) else table.filter(pa.array(keep))


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
