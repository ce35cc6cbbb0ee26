"""A segmented write-ahead log of JSON lines, on local disk.

Rows are fsynced before an append returns (one fsync per group of rows). A flush seals the
current segment and starts the next; sealed segments are deleted once their rows are in
Parquet. On start, every segment left is replayed; a torn last line (a crash mid-write) is
skipped, since its append never returned.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot log {type(value).__name__}")


def encode_row(row: dict[str, Any]) -> bytes:
    """One row as a WAL line; raises if the row cannot be held as UTF-8 JSON."""
    return json.dumps(row, default=_encode, ensure_ascii=False).encode() + b"\n"


class WriteAheadLog:
    def __init__(self, directory: Path, schema: pa.Schema) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._timestamps = [f.name for f in schema if pa.types.is_timestamp(f.type)]
        for segment in self.segments():
            if segment.stat().st_size == 0:
                segment.unlink()  # an earlier run's empty segment
        existing = self.segments()
        self._number = (int(existing[-1].stem) + 1) if existing else 1
        self._handle = open(self._path(self._number), "ab")  # noqa: SIM115 - held open
        self._sync_dir()

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:010d}.jsonl"

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl"))

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.write([encode_row(row) for row in rows])

    def write(self, lines: list[bytes]) -> None:
        """Lines made by `encode_row`, in one write and one fsync."""
        self._handle.write(b"".join(lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def seal(self) -> list[Path]:
        """Close the current segment; return every segment before the new one."""
        self._handle.close()
        self._number += 1
        self._handle = open(self._path(self._number), "ab")  # noqa: SIM115
        self._sync_dir()  # the new segment's name must survive a power loss too
        return [p for p in self.segments() if int(p.stem) < self._number]

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def drop(self, segments: list[Path]) -> None:
        for segment in segments:
            segment.unlink(missing_ok=True)
        if segments:
            self._sync_dir()

    def replay(self) -> Iterator[dict[str, Any]]:
        yield from _read(self.segments(), self._timestamps)

    def close(self) -> None:
        self._handle.close()


def _read(segments: list[Path], timestamps: list[str]) -> Iterator[dict[str, Any]]:
    for segment in segments:
        for line in segment.read_bytes().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # torn tail of a crashed append: never acknowledged
            for name in timestamps:
                if isinstance(row.get(name), str):
                    row[name] = datetime.fromisoformat(row[name])
            yield row


def read_segments(directory: Path, schema: pa.Schema) -> Iterator[dict[str, Any]]:
    """Read a WAL folder without writing to it (for readers beside a running server)."""
    timestamps = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    yield from _read(sorted(directory.glob("*.jsonl")), timestamps)
