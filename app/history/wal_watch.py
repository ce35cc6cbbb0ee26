"""Whether the writer has acknowledged anything since a snapshot, seen without asking it.

The Recorder acknowledges a row only once it is in its write-ahead log (appended, fsynced),
and nothing else changes which rows a reader must see: a flush moves rows from the tail into
files (and seals a segment), a compaction swaps files for one holding the same rows. So a
reader on the writer's own host can stat the WAL instead of calling the Recorder: if the
segments (names and sizes) are as they were just before a snapshot was asked for, the same
writer still holds them, and it is alive, that snapshot still holds every acknowledged row.

"Alive and the same writer": the writer holds an exclusive `flock` on `writer.lock` and wrote
its id into it. The lock is looked for in `/proc/locks`, which lists only this kernel's locks
visible from this process: a writer on another host, in another container, or dead, is not
there, and the reader asks the Recorder as before. Where the check cannot vouch (no such
file, another OS), it says so and the caller asks. Neither duckdb nor pyarrow here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WRITER_LOCK = "writer.lock"  # in the WAL folder: the writer's flock, and its id as content
LOCKS_TABLE = Path("/proc/locks")
SEGMENT_SUFFIX = ".jsonl"

Segments = tuple[tuple[str, int], ...]  # one dataset's WAL segments: (name, size), in order


@dataclass(frozen=True)
class Stamp:
    """One dataset's WAL as one writer left it at one instant."""

    writer_id: str
    segments: Segments


class WalWatch:
    """Stamps of a writer's WAL folder, from a process on the same host."""

    def __init__(self, wal_dir: str, writer_id: str) -> None:
        self.wal_dir = Path(wal_dir)
        self.writer_id = writer_id

    def stamps(self, names: Iterable[str]) -> dict[str, Stamp] | None:
        """Each named dataset's stamp now; None when this process cannot vouch that the
        writer it watches is the one writing, and alive (then the Recorder is asked)."""
        if not self._writer_alive_here():
            return None
        try:
            return {name: Stamp(self.writer_id, self._segments(name)) for name in names}
        except OSError:
            return None

    def _segments(self, name: str) -> Segments:
        with os.scandir(self.wal_dir / name) as entries:
            found = [
                (entry.name, entry.stat().st_size)
                for entry in entries
                if entry.name.endswith(SEGMENT_SUFFIX)
            ]
        return tuple(sorted(found))

    def _writer_alive_here(self) -> bool:
        """The lock file names this writer, and a process this kernel shows holds it."""
        try:
            with open(self.wal_dir / WRITER_LOCK, "rb") as lock:
                named = lock.read(256).decode("ascii", "replace").strip()
                status = os.fstat(lock.fileno())
            if named != self.writer_id:
                return False
            table = LOCKS_TABLE.read_text()
        except OSError:
            return False
        return _held(table, status)


def unchanged(held: Stamp | None, now: Stamp | None) -> bool:
    return held is not None and held == now


def _held(table: str, status: os.stat_result) -> bool:
    """Whether `/proc/locks` shows an exclusive flock on the file `status` describes. Its
    lines read `1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF`, the device
    numbers in hex; a waiting request (`1: -> FLOCK ...`) holds nothing."""
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1:4] == ["FLOCK", "ADVISORY", "WRITE"]:
            if fields[5] == device:
                return True
    return False
