"""The history store: three datasets and the DuckDB queries over them (the writer's side).

The Recorder owns it. Its reads (the CLI, tests, and ingress replicas that cannot reach the
storage) query a local snapshot: published files + unflushed rows, so a record is visible as
soon as its append returns (read-your-writes) and never twice. Ingress replicas that can
reach the storage are sent a `StoreSnapshot` (`export`) and query it themselves
(`snapshot_reader`). The SQL is in `queries`, shared by both.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

from app.history import queries
from app.history.dataset import Dataset
from app.history.queries import InferenceFilters
from app.history.schemas import SCHEMAS
from app.history.snapshots import STORE_ID_FILE, StoreSnapshot, Version
from app.history.sources import DatasetView, SnapshotReading
from app.history.storage import Storage
from app.history.wal_watch import WRITER_LOCK, ChangeCounts


class LockedError(RuntimeError):
    pass


class HistoryStore:
    def __init__(self, root: str, wal_dir: str | None, *, gc_grace_s: float = 60.0) -> None:
        self.storage = Storage(root)
        if wal_dir is None and not self.storage.local:
            raise ValueError("a remote storage root needs history.wal_dir on local disk")
        self.wal_dir = (Path(wal_dir) if wal_dir else Path(self.storage.base) / "_wal").absolute()
        self.datasets = {
            name: Dataset(name, schema, self.storage, self.wal_dir, gc_grace_s=gc_grace_s)
            for name, schema in SCHEMAS.items()
        }
        self._lock_file: IO[str] | None = None
        self.store_id = ""
        self.writer_id = uuid.uuid4().hex  # names this writer to readers: see wal_watch
        self._changes: ChangeCounts | None = None

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
        self._lock_file = open(self.wal_dir / WRITER_LOCK, "a")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise LockedError(
                f"another writer (a running server?) holds {self.wal_dir / WRITER_LOCK}"
            ) from None
        self._changes = ChangeCounts(self.wal_dir, self.writer_id, list(self.datasets))
        for name, dataset in self.datasets.items():
            dataset.on_change = partial(self._changes.changed, name)
        identity = self.storage.read_json(STORE_ID_FILE)
        if identity is None:
            identity = {"id": uuid.uuid4().hex}
            self.storage.write_json(identity, STORE_ID_FILE)
        self.store_id = identity["id"]
        for dataset in self.datasets.values():
            dataset.open()
        return self

    def beat(self) -> None:
        """Tell readers on this host the writer is alive (the Recorder's maintenance tick)."""
        if self._changes:
            self._changes.beat()

    def close(self) -> None:
        for dataset in self.datasets.values():
            dataset.close()
        if self._changes:
            self._changes.close()
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

    def export(
        self, names: Iterable[str], held: dict[str, Version], *, quick: bool = False
    ) -> StoreSnapshot | None:
        """For a reader elsewhere: each named dataset's files and tail, beyond what it held.
        `quick`: only if no lock is busy and no row needs copying out, else None."""
        datasets = {}
        for name in names:
            part = self.datasets[name].export(held.get(name), quick=quick)
            if part is None:
                return None
            datasets[name] = part
        root = self.storage.base if self.storage.local else self.storage.root
        return StoreSnapshot(root, self.store_id, datasets, str(self.wal_dir), self.writer_id)

    @contextmanager
    def _reading(self, *names: str) -> Iterator[SnapshotReading]:
        """A reading of the named datasets as of now: published files + unflushed rows."""
        snapshots = {name: self.datasets[name].snapshot() for name in names}
        try:
            yield SnapshotReading(
                self.storage,
                {
                    name: DatasetView(self.datasets[name].schema, snap.files, snap.buffered)
                    for name, snap in snapshots.items()
                },
            )
        finally:
            for name, snap in snapshots.items():
                self.datasets[name].release(snap)

    def list_inferences(self, filters: InferenceFilters) -> tuple[list[dict[str, Any]], int]:
        with self._reading(*queries.INFERENCE_DATASETS) as reading:
            return queries.list_inferences(reading, filters)

    def get_inference(self, inference_id: str, project_id: str | None) -> dict | None:
        with self._reading(*queries.INFERENCE_DATASETS) as reading:
            return queries.get_inference(reading, inference_id, project_id)

    def get_feedback(self, inference_id: str, project_id: str | None) -> dict | None:
        with self._reading("feedback") as reading:
            return queries.get_feedback(reading, inference_id, project_id)

    def usage(
        self,
        project_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Tokens and cost per project and model over a time range, from the billing data."""
        with self._reading("billing") as reading:
            return queries.usage(reading, project_id, since, until)

    def count(self, name: str, where: str = "TRUE", params: list[Any] | None = None) -> int:
        """Rows of a dataset matching fixed SQL (tests and tools; never user input)."""
        with self._reading(name) as reading, reading.open() as (cursor, sources):
            if sources[name] is None:
                return 0
            source, source_params = sources[name]
            return cursor.execute(
                f"SELECT count(*) FROM {source} WHERE {where}", source_params + (params or [])
            ).fetchone()[0]

    def stats(self) -> dict[str, Any]:
        return {name: d.stats() for name, d in self.datasets.items()}
