"""The history store on a temp folder: durability, exactly-once, compaction, queries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.history.dataset import Dataset
from app.history.queries import InferenceFilters
from app.history.store import HistoryStore, LockedError
from app.history.wal import WriteAheadLog

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def row(i: int, *, day: int = 0, model: str = "m", task: str = "extract_entities") -> dict:
    return {
        "id": f"id-{i:06d}",
        "user_id": "u",
        "model_id": model,
        "task": task,
        "input": '{"text": "t"}',
        "output": "{}",
        "latency_ms": i,
        "tokens": 2,
        "input_tokens": 2,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "source": "api",
        "format": "native",
        "status": "success",
        "created_at": NOW - timedelta(days=day, seconds=i),
        "project_id": "p",
        "metadata": "{}",
    }


def bill(i: int) -> dict:
    return {
        "id": f"id-{i:06d}",
        "project_id": "p",
        "model_id": "m",
        "input_tokens": 10,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 1e-6,
        "status": "success",
        "created_at": NOW,
    }


def open_store(root: Path, **kwargs: Any) -> HistoryStore:
    return HistoryStore(str(root), None, gc_grace_s=kwargs.get("gc_grace_s", 0.0)).open()


def ids(store: HistoryStore, **filters: Any) -> list[str]:
    rows, _ = store.list_inferences(InferenceFilters(limit=500, **filters))
    return [r["id"] for r in rows]


def test_rows_are_readable_before_and_after_a_flush(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(i) for i in range(5)])
    before = ids(store)
    assert before == [f"id-{i:06d}" for i in range(5)]  # newest first
    assert store.flush()["inferences"] == 5
    assert ids(store) == before and store.count("inferences") == 5
    store.close()


def test_unflushed_rows_survive_a_restart_exactly_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(i) for i in range(3)])
    store.billing.append([bill(i) for i in range(3)])
    store.close()  # as good as a crash: nothing was flushed
    store = open_store(tmp_path)
    assert store.inferences.replayed == 3 and store.count("inferences") == 3
    store.flush()
    store.close()
    store = open_store(tmp_path)
    assert store.count("inferences") == 3 and store.count("billing") == 3
    store.close()


def test_crash_after_publish_before_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(i) for i in range(4)])

    def crash() -> None:
        raise OSError("power cut")

    monkeypatch.setattr(store.inferences, "_publish", lambda *args: crash())
    with pytest.raises(OSError):
        store.inferences.flush()
    monkeypatch.undo()
    store.close()
    store = open_store(tmp_path)  # the unlisted file is removed; the WAL replays
    assert store.count("inferences") == 4
    store.flush()
    assert store.count("inferences") == 4
    assert len(store.storage.list_parquet("inferences")) == 2  # the empty file + one part
    store.close()


def test_crash_after_manifest_before_wal_drop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(i) for i in range(4)])

    def crash(segments: list[Path]) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(store.inferences.wal, "drop", crash)
    with pytest.raises(OSError):
        store.inferences.flush()  # published, but the segment stays
    monkeypatch.undo()
    store.close()
    store = open_store(tmp_path)
    assert store.inferences.replayed == 4
    assert store.flush()["inferences"] == 0  # already published: skipped by id
    assert store.count("inferences") == 4
    store.close()


def test_the_same_id_twice_is_kept_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.billing.append([bill(1), bill(1)])
    store.flush()
    store.billing.append([bill(1)])
    store.flush()
    assert store.count("billing") == 1
    store.close()


def test_a_torn_wal_tail_is_skipped(tmp_path: Path) -> None:
    from app.history.schemas import INFERENCES

    wal = WriteAheadLog(tmp_path / "wal", INFERENCES)
    wal.append([row(1)])
    wal.close()
    segment = wal.segments()[-1]
    segment.write_bytes(segment.read_bytes() + b'{"id": "half-writ')
    replayed = list(WriteAheadLog(tmp_path / "wal", INFERENCES).replay())
    assert [r["id"] for r in replayed] == ["id-000001"]
    assert replayed[0]["created_at"] == row(1)["created_at"]


def test_one_writer_per_root(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(LockedError, match="another writer"):
        open_store(tmp_path)
    store.close()


def _many_small_files(store: HistoryStore, files: int, per_file: int) -> None:
    for f in range(files):
        rows = [row(f * per_file + i, day=i % 2, model=f"m{i % 3}") for i in range(per_file)]
        store.inferences.append(rows)
        store.inferences.flush()


def test_compaction_merges_files_and_keeps_results(tmp_path: Path) -> None:
    store = open_store(tmp_path, gc_grace_s=0.0)
    _many_small_files(store, files=20, per_file=6)
    assert store.inferences.stats()["files"] == 1 + 2 * 20
    queries = [
        InferenceFilters(limit=500),
        InferenceFilters(limit=7, offset=3, model_id="m1"),
        InferenceFilters(limit=500, since=NOW - timedelta(hours=1)),
    ]
    before = [store.list_inferences(q) for q in queries]
    assert store.compact(min_files=2)["inferences"] == 40
    assert store.inferences.stats()["files"] == 1 + 2  # one file per day, plus the empty one
    assert [store.list_inferences(q) for q in queries] == before
    assert store.collect_garbage()["inferences"] == 40
    assert len(store.storage.list_parquet("inferences")) == 3
    store.close()
    reopened = open_store(tmp_path)
    assert [reopened.list_inferences(q) for q in queries] == before
    reopened.close()


def test_reads_during_compaction_never_fail(tmp_path: Path) -> None:
    store = open_store(tmp_path, gc_grace_s=0.0)
    _many_small_files(store, files=30, per_file=4)
    expected = store.count("inferences")
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                rows, total = store.list_inferences(InferenceFilters(limit=500))
                assert total == expected and len(rows) == expected
                assert len({r["id"] for r in rows}) == expected  # never doubled
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(3):
            store.compact(min_files=2)
            store.collect_garbage()
            _many_small_files(store, files=2, per_file=0)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert not errors, errors[0]
    store.close()


def test_files_in_use_by_a_reader_are_not_deleted(tmp_path: Path) -> None:
    store = open_store(tmp_path, gc_grace_s=0.0)
    _many_small_files(store, files=3, per_file=2)
    snapshot = store.inferences.snapshot()
    store.compact(min_files=2)
    assert store.collect_garbage()["inferences"] == 0  # the snapshot still needs them
    store.inferences.release(snapshot)
    assert store.collect_garbage()["inferences"] > 0
    store.close()


def test_filters_bind_their_values(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append(
        [row(1, model="a", task="extract_entities+classify_text"), row(2, model="b")]
    )
    assert ids(store, model_id="a") == ["id-000001"]
    assert ids(store, task="classify_text") == ["id-000001"]
    assert ids(store, task="extract_entities") == ["id-000001", "id-000002"]
    assert ids(store, model_id="a' OR '1'='1") == []
    assert ids(store, latency_min=2) == ["id-000002"]
    assert ids(store, project_id="other") == []
    assert store.get_inference("id-000001", "other") is None
    assert store.get_inference("id-000001", "p")["model_id"] == "a"
    store.close()


def test_usage_groups_by_project_and_model(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.billing.append([bill(i) for i in range(4)])
    store.flush()
    store.billing.append([{**bill(9), "project_id": "q", "status": "failed"}])
    usage = store.usage()
    assert [(u["project_id"], u["inferences"], u["input_tokens"]) for u in usage] == [
        ("p", 4, 40),
        ("q", 1, 10),
    ]
    assert usage[1]["failed"] == 1
    assert store.usage(project_id="q")[0]["project_id"] == "q"
    assert store.usage(since=NOW + timedelta(seconds=1)) == []
    store.close()


def test_dataset_names_its_files_by_day(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(1, day=0), row(2, day=3)])
    store.flush()
    days = sorted({p.split("/")[1] for p in store.storage.list_parquet("inferences")})
    assert days == ["date=1970-01-01", "date=2026-11-23", "date=2026-11-26"]
    assert isinstance(store.inferences, Dataset)
    store.close()


def test_a_pyarrow_filesystem_root_works_end_to_end(tmp_path: Path) -> None:
    """An object-store-like root (Arrow's in-memory mock://), as s3:// would be on a cluster."""
    store = HistoryStore("mock:///bucket/history", str(tmp_path / "wal"), gc_grace_s=0.0).open()
    assert not store.storage.local
    _many_small_files(store, files=3, per_file=4)
    store.inferences.append([row(100)])  # still buffered
    expected = store.list_inferences(InferenceFilters(limit=500))
    assert expected[1] == 13
    assert store.compact(min_files=2)["inferences"] == 6
    assert store.list_inferences(InferenceFilters(limit=500)) == expected
    assert store.collect_garbage()["inferences"] == 6
    assert ids(store, model_id="m1")
    store.close()


def test_a_remote_root_needs_a_local_wal() -> None:
    with pytest.raises(ValueError, match="wal_dir"):
        HistoryStore("mock:///bucket/history", None)


def test_concurrent_flushes_publish_each_row_once(tmp_path: Path) -> None:
    """The Recorder's background flush and an explicit flush can meet; rows stay single."""
    store = open_store(tmp_path)
    store.billing.append([bill(i) for i in range(50)])
    store.close()
    store = open_store(tmp_path)  # replayed rows: due at once, as after a crash
    threads = [threading.Thread(target=store.flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = [f for f in store.storage.list_parquet("billing") if "empty" not in f]
    assert store.storage.read_table(files).num_rows == 50
    assert store.count("billing") == 50
    store.close()


def test_feedback_compacts_too(tmp_path: Path) -> None:
    from app.history.records import feedback_row

    store = open_store(tmp_path)
    for verdict in ("correct", "incorrect", "correct"):
        row_ = feedback_row(
            "id-1",
            verdict=verdict,
            corrected_output=None,
            notes=None,
            project_id="p",
            api_key_id=None,
        )
        store.feedback.append([row_])
        store.feedback.flush()
    assert store.compact(min_files=2)["feedback"] == 3
    assert store.count("feedback") == 3
    store.close()


def test_a_failed_manifest_write_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    store.billing.append([bill(i) for i in range(3)])

    def broken(data: Any, relative: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.storage, "write_json", broken)
    with pytest.raises(OSError):
        store.billing.flush()
    assert store.count("billing") == 3  # still buffered, not also listed as published
    monkeypatch.undo()
    store.flush()
    assert store.count("billing") == 3
    files = [f for f in store.storage.list_parquet("billing") if "empty" not in f]
    store.close()
    reopened = open_store(tmp_path)  # the file the failed flush wrote is unlisted: removed
    assert reopened.count("billing") == 3
    assert len([f for f in reopened.storage.list_parquet("billing") if "empty" not in f]) == 1
    assert len(files) == 2
    reopened.close()


def test_a_late_duplicate_is_not_shown_twice(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.billing.append([bill(1)])
    store.flush()
    store.billing.append([bill(1)])
    assert store.count("billing") == 2  # visible until the flush drops the copy
    store.flush()
    assert store.count("billing") == 1
    store.close()
