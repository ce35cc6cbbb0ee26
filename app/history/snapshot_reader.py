"""History reads in the ingress replica: its own DuckDB over a snapshot the Recorder sent.

The Recorder sends, per dataset, its published file list and the rows it has acknowledged
but not flushed (`snapshots`); the queries run here, on this replica's cores, against the
files on shared storage plus that tail. The Recorder only copies out what changed since this
replica's last snapshot, so a read costs it a short lock hold, not a query.

Imported on the first history read (it loads duckdb and pyarrow, which the ingress does not
need to start).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa

from app.history.queries import Reading
from app.history.schemas import SCHEMAS
from app.history.snapshots import STORE_ID_FILE, DatasetSnapshot, StoreSnapshot, Version
from app.history.sources import DatasetView, SnapshotReading
from app.history.storage import Storage
from app.history.wal_watch import Stamp, WalWatch

T = TypeVar("T")
MAX_TAIL_CHUNKS = 32  # tails grow a chunk per snapshot; past this they are merged into one
# What reading a listed file that is gone raises (DuckDB's own reader, or an Arrow dataset).
READ_ERRORS = (duckdb.IOException, duckdb.InvalidInputException, OSError, pa.ArrowException)


class SnapshotStale(RuntimeError):
    """The snapshot could not be read as sent: a file it lists was collected since (a
    compaction retired it), or it builds on state this replica no longer holds. A fresh
    snapshot reads fine."""


@dataclass(frozen=True)
class View:
    """One dataset as of a version: its published files and its tail rows."""

    version: Version
    files: list[str]
    tail: pa.Table
    stamp: Stamp | None = None  # the writer's change count just before this view was asked for


class SnapshotReader:
    def __init__(self, storage: Storage, store_id: str) -> None:
        self.storage = storage
        self.store_id = store_id
        self._held: dict[str, View] = {}
        self._lock = threading.Lock()
        self._watch: WalWatch | None = None  # the writer's change counts (wal_watch)

    @classmethod
    def open(cls, root: str, store_id: str) -> SnapshotReader | None:
        """A reader of the writer's storage, or None where this process does not see it (a
        local folder on another node, or another folder by the same name): those replicas
        leave their reads to the Recorder."""
        if "://" not in root and not Path(root, STORE_ID_FILE).is_file():
            return None  # checked first: Storage() would create the folder
        storage = Storage(root)
        identity = storage.read_json(STORE_ID_FILE)
        if not isinstance(identity, dict) or identity.get("id") != store_id:
            return None
        return cls(storage, store_id)

    def views(self, names: Iterable[str]) -> dict[str, View]:
        """What this replica holds of each dataset (the last snapshot it read of it)."""
        with self._lock:
            return {name: self._held[name] for name in names if name in self._held}

    def held(self, names: Iterable[str]) -> dict[str, Version]:
        """The versions held: the Recorder sends only what is newer."""
        return {name: view.version for name, view in self.views(names).items()}

    def stamps(self, names: Iterable[str]) -> dict[str, Stamp] | None:
        """The writer's change counts now, per dataset: taken before a snapshot is asked for,
        they let a later read skip asking while nothing changed (`current`). None: cannot
        tell (no live writer seen from this host)."""
        watch = self._watch
        return watch.stamps(names) if watch is not None else None

    def current(self, names: Iterable[str], views: dict[str, View]) -> bool:
        """Whether `views` still hold every acknowledged row: the writer, alive on this host,
        has changed nothing since just before they were asked for."""
        names = list(names)
        if any(name not in views or views[name].stamp is None for name in names):
            return False
        now = self.stamps(names)
        return now is not None and all(views[name].stamp == now[name] for name in names)

    def forget(self) -> None:
        with self._lock:
            self._held.clear()

    @staticmethod
    def unchanged(snapshot: StoreSnapshot, views: dict[str, View]) -> bool:
        """Whether the snapshot holds nothing new beyond `views` (same versions: same rows)."""
        return all(
            name in views and part.version == views[name].version
            for name, part in snapshot.datasets.items()
        )

    def query(
        self,
        snapshot: StoreSnapshot,
        run: Callable[[Reading], T],
        stamps: dict[str, Stamp] | None = None,
    ) -> T:
        """`run(reading)` over the snapshot: published files plus the tail."""
        return self.run_on(self.adopt(snapshot, stamps), run)

    def adopt(
        self, snapshot: StoreSnapshot, stamps: dict[str, Stamp] | None = None
    ) -> dict[str, View]:
        """The snapshot's views, now held. `stamps`: the counts as `stamps()` saw them before
        the snapshot was asked for."""
        self._watch_writer(snapshot)
        views = {}
        for name, part in snapshot.datasets.items():
            stamp = (stamps or {}).get(name)
            if stamp is not None and stamp.writer_id != snapshot.writer_id:
                stamp = None  # another writer's counts: they vouch for nothing here
            views[name] = self._adopt(name, part, stamp)
        return views

    def _watch_writer(self, snapshot: StoreSnapshot) -> None:
        watch = self._watch
        if watch is not None and watch.writer_id == snapshot.writer_id:
            return
        if snapshot.wal_dir and snapshot.writer_id:
            self._watch = WalWatch(snapshot.wal_dir, snapshot.writer_id)
        else:
            self._watch = None

    def run_on(self, views: dict[str, View], run: Callable[[Reading], T]) -> T:
        """`run(reading)` over these views of the datasets."""
        reading = SnapshotReading(
            self.storage,
            {
                name: DatasetView(SCHEMAS[name], view.files, view.tail)
                for name, view in views.items()
            },
        )
        try:
            return run(reading)
        except READ_ERRORS as exc:
            raise SnapshotStale(str(exc)) from exc

    def _adopt(self, name: str, part: DatasetSnapshot, stamp: Stamp | None = None) -> View:
        """The snapshot's view of one dataset, from what was held plus what was sent."""
        sent = _table(part.tail, SCHEMAS[name])
        with self._lock:
            base = self._held.get(name)
        files, tail = part.files, sent
        if part.files is None or part.tail_start:
            # Sent as changes to what this replica said it held. Another read may have moved
            # on since; within a version's epoch the tail only grows, so it is still a prefix.
            if base is None or base.version.incarnation != part.version.incarnation:
                raise SnapshotStale(f"{name}: sent as changes to a state no longer held")
            if files is None:
                if base.version.files != part.version.files:
                    raise SnapshotStale(f"{name}: sent as changes to a state no longer held")
                files = base.files
            if part.tail_start:
                if base.version.epoch != part.version.epoch or base.tail.num_rows < part.tail_start:
                    raise SnapshotStale(f"{name}: sent as changes to a state no longer held")
                tail = pa.concat_tables([base.tail.slice(0, part.tail_start), sent])
        if tail.num_rows and tail.column(0).num_chunks > MAX_TAIL_CHUNKS:
            tail = tail.combine_chunks()
        view = View(part.version, files, tail, stamp)
        with self._lock:
            current = self._held.get(name)
            if current is None or not _ahead(current.version, view.version):
                self._held[name] = view
        return view


def _ahead(held: Version, other: Version) -> bool:
    """Whether `held` is a later state of the same writer than `other`."""
    return held.incarnation == other.incarnation and (held.files, held.epoch, held.rows) > (
        other.files,
        other.epoch,
        other.rows,
    )


def _table(ipc: bytes | None, schema: pa.Schema) -> pa.Table:
    if ipc is None:
        return schema.empty_table()
    with pa.ipc.open_stream(ipc) as stream:
        return stream.read_all()
