"""What the Recorder sends a history reader: per dataset, its published files and the rows
it has acknowledged but not yet published (the tail), as of one instant.

Both are taken under the dataset's lock, and a flush publishes its files and drops their rows
from the tail under that same lock, so a row is in exactly one of the two: a reader that
queries the files plus the tail sees every acknowledged row once (read-your-writes).

Readers keep what they were sent and say which `Version` they hold, so the Recorder sends
only what changed: no file list when it is unchanged, and only the rows appended since. No
pyarrow here: the ingress unpickles these (the tail travels as Arrow IPC bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

STORE_ID_FILE = "_store.json"  # at the storage root: {"id": ...}, written once by the writer


@dataclass(frozen=True)
class Version:
    """Which state of one dataset a reader holds."""

    incarnation: str  # the writer process: its counters start again when it restarts
    files: int  # bumped by every manifest the writer publishes
    epoch: int  # bumped whenever rows leave the tail (a flush): the tail is then re-sent
    rows: int  # tail rows held; within an epoch the tail only grows, in order


@dataclass(frozen=True)
class DatasetSnapshot:
    version: Version
    files: list[str] | None  # the published files; None when the reader's list is current
    tail_start: int  # the tail rows below start as the reader already holds them (0: none)
    tail: bytes | None  # Arrow IPC stream of the tail rows from tail_start on; None: no rows


@dataclass(frozen=True)
class StoreSnapshot:
    root: str  # the storage root: an absolute folder or a pyarrow.fs URI
    store_id: str  # STORE_ID_FILE's id: a reader checks that it sees the same storage
    datasets: dict[str, DatasetSnapshot]
    wal_dir: str | None = None  # the writer's WAL folder, as its own host names it
    writer_id: str = ""  # the writer process's id, also in its lock file (wal_watch)
