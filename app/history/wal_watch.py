"""Whether the writer has changed a dataset since a snapshot, seen without asking it.

The writer counts every change to what a reader of a dataset is sent (a WAL write, rows
leaving the tail at a flush, a new file list) in a small file beside its WAL, mapped into
memory (`ChangeCounts`), before it acknowledges the change. A reader on the same host maps
the same file (`WalWatch`): if a dataset's count is what it was just before a snapshot was
asked for, under the same writer, and that writer is alive, the snapshot is still current
and the reader skips the round trip. It is all memory reads: no syscall, so no wait to get
the GIL back from the replica's other threads (a `/proc/locks` read cost 10 ms that way).

"Alive": the writer names itself in the file and beats a heartbeat there (the Recorder's
maintenance tick, and every change); a reader trusts a heartbeat younger than `FRESH_S`
(CLOCK_MONOTONIC is one clock for the whole host). A writer that died is replaced by a
writer that rewrites the file (same host) or writes elsewhere (another host, whose file this
reader never sees change): either takes longer than `FRESH_S` to start, open the store and
acknowledge a write. Where the file cannot be mapped, the reader asks. No duckdb, no pyarrow.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

WRITER_LOCK = "writer.lock"  # in the WAL folder: the writer's flock (one writer per root)
COUNTS_FILE = "changes"  # in the WAL folder: the writer's id, then a count per dataset
HEADER = struct.Struct("<32sd")  # the writer's id (a uuid4 in hex), its last heartbeat
SLOT = struct.Struct("<24sQ")  # a dataset's name, its change count
FRESH_S = 2.0  # a heartbeat older than this: the writer may be gone, ask it


@dataclass(frozen=True)
class Stamp:
    """One dataset's change count under one writer."""

    writer_id: str
    changes: int


class ChangeCounts:
    """The writer's side. Rewritten in place at each start (never replaced or shrunk, so a
    reader's mapping always sees the live file's bytes)."""

    def __init__(self, wal_dir: Path, writer_id: str, names: Sequence[str]) -> None:
        size = HEADER.size + SLOT.size * len(names)
        fd = os.open(wal_dir / COUNTS_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._offsets = {name: HEADER.size + SLOT.size * i for i, name in enumerate(names)}
        self._counts = dict.fromkeys(names, 0)
        for name, offset in self._offsets.items():
            SLOT.pack_into(self._map, offset, name.encode(), 0)
        self._id = writer_id.encode()
        self.beat()  # last: the new writer's name

    def beat(self) -> None:
        HEADER.pack_into(self._map, 0, self._id, time.monotonic())

    def changed(self, name: str) -> None:
        """Called under the dataset's lock, before the change is acknowledged."""
        self._counts[name] += 1
        SLOT.pack_into(self._map, self._offsets[name], name.encode(), self._counts[name])
        self.beat()

    def close(self) -> None:
        self._map.close()


class WalWatch:
    """The reader's side: stamps of one writer's datasets, from a process on its host."""

    def __init__(self, wal_dir: str, writer_id: str) -> None:
        self.wal_dir = Path(wal_dir)
        self.writer_id = writer_id
        self._id = writer_id.encode()
        self._opening = threading.Lock()
        self._opened = False
        self._map: mmap.mmap | None = None
        self._offsets: dict[str, int] = {}

    def stamps(self, names: Iterable[str]) -> dict[str, Stamp] | None:
        """Each named dataset's stamp now; None when this process cannot vouch that the
        writer it watches is the one writing, and alive (then the Recorder is asked)."""
        if not self._opened:
            self._open()
        counts = self._map
        if counts is None:
            return None
        named, heartbeat = HEADER.unpack_from(counts, 0)
        if named != self._id or time.monotonic() - heartbeat >= FRESH_S:
            return None
        stamps = {}
        for name in names:
            offset = self._offsets.get(name)
            if offset is None:
                return None
            stamps[name] = Stamp(self.writer_id, SLOT.unpack_from(counts, offset)[1])
        return stamps

    def _open(self) -> None:
        with self._opening:
            if self._opened:
                return
            try:
                self._map, self._offsets = _map_counts(self.wal_dir / COUNTS_FILE)
            except (OSError, ValueError):
                self._map = None  # not visible from here: every read asks
            self._opened = True


def _map_counts(path: Path) -> tuple[mmap.mmap, dict[str, int]]:
    with open(path, "rb") as counts:
        mapped = mmap.mmap(counts.fileno(), 0, access=mmap.ACCESS_READ)
    offsets = {}
    for offset in range(HEADER.size, len(mapped) - SLOT.size + 1, SLOT.size):
        name = SLOT.unpack_from(mapped, offset)[0].rstrip(b"\0").decode()
        offsets[name] = offset
    return mapped, offsets
