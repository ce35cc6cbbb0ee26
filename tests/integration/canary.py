"""Where a `store: false` payload must not be: searched for with a canary string."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def strings_in_parquet(root: Path) -> str:
    """Every string value in every Parquet file under root (compression hides raw bytes)."""
    found = []
    for path in root.rglob("*.parquet"):
        for column in pq.read_table(path).to_pylist():
            found.extend(str(value) for value in column.values())
    return "\n".join(found)


def _raw_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def assert_kept_nowhere(canary: str, history_root: Path) -> None:
    """Not in the history's files (raw, or as Parquet values) nor in any Ray log."""
    import ray

    session_logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for where, content in [
        ("storage bytes", _raw_bytes(history_root)),
        ("parquet values", strings_in_parquet(history_root).encode()),
        ("server logs", _raw_bytes(session_logs)),
    ]:
        assert canary.encode() not in content, f"store:false payload found in {where}"
