"""The storage root: a local folder, or any `pyarrow.fs` URI (s3://, gs://, ...).

Files are published atomically. Locally: written under a staging name outside the dataset's
partitions, fsynced, renamed into place, and the folder fsynced. On an object store a single
PUT is already all-or-nothing, so the file is written at its final key.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

STAGING = "_staging"
ROW_GROUP = 32_768  # rows: small enough for DuckDB to skip groups on min/max statistics


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Storage:
    def __init__(self, root: str) -> None:
        if "://" in root and not root.startswith("file://"):
            self.fs, self.base = pafs.FileSystem.from_uri(root)
            self.local = False
        else:
            self.base = str(Path(root.removeprefix("file://")).expanduser().resolve())
            self.fs = pafs.LocalFileSystem()
            self.local = True
            Path(self.base).mkdir(parents=True, exist_ok=True)
        self.root = root

    def full(self, relative: str) -> str:
        return f"{self.base.rstrip('/')}/{relative}"

    def exists(self, relative: str) -> bool:
        return self.fs.get_file_info(self.full(relative)).type != pafs.FileType.NotFound

    def list_parquet(self, prefix: str) -> list[str]:
        """Every published-looking file under `prefix` (relative paths)."""
        selector = pafs.FileSelector(self.full(prefix), recursive=True, allow_not_found=True)
        found = []
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and info.path.endswith(".parquet"):
                relative = info.path[len(self.base.rstrip("/")) + 1 :]
                if f"/{STAGING}/" not in f"/{relative}":
                    found.append(relative)
        return sorted(found)

    def clear_staging(self, dataset: str) -> None:
        if self.local:
            staging = Path(self.full(f"{dataset}/{STAGING}"))
            for leftover in staging.glob("*") if staging.exists() else []:
                leftover.unlink()

    def write_parquet(self, table: pa.Table, relative: str) -> None:
        if not self.local:
            self._make_parent(relative)
            pq.write_table(table, self.full(relative), filesystem=self.fs, row_group_size=ROW_GROUP)
            return
        self._publish_local(
            relative, lambda handle: pq.write_table(table, handle, row_group_size=ROW_GROUP)
        )

    def write_json(self, data: Any, relative: str) -> None:
        payload = json.dumps(data, indent=1).encode()
        if not self.local:
            self._make_parent(relative)
            with self.fs.open_output_stream(self.full(relative)) as out:
                out.write(payload)
            return
        self._publish_local(relative, lambda handle: handle.write(payload))

    def _make_parent(self, relative: str) -> None:
        # Object stores have no folders (a no-op there); hierarchical filesystems need them.
        self.fs.create_dir(self.full(relative).rsplit("/", 1)[0], recursive=True)

    def _publish_local(self, relative: str, write: Any) -> None:
        final = Path(self.full(relative))
        # Beside the dataset's partitions (never inside them), or the root's own for its files.
        folder = relative.split("/", 1)[0] if "/" in relative else ""
        staging = Path(self.full(f"{folder}/{STAGING}" if folder else STAGING))
        staging.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = staging / f"{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        _fsync_dir(final.parent)

    def read_json(self, relative: str) -> Any | None:
        if not self.exists(relative):
            return None
        with self.fs.open_input_stream(self.full(relative)) as stream:
            return json.loads(stream.read())

    def delete(self, relative: str) -> None:
        try:
            self.fs.delete_file(self.full(relative))
        except FileNotFoundError:
            pass

    def read_table(self, files: list[str], columns: list[str] | None = None) -> pa.Table:
        tables = [pq.read_table(self.full(f), columns=columns, filesystem=self.fs) for f in files]
        return pa.concat_tables(tables) if tables else pa.table({})
