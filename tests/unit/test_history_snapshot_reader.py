"""History reads off the writer: an ingress-side reader over the Recorder's snapshot (its
published files plus its unflushed tail) answers as the Recorder's own queries do, sees every
acknowledged row exactly once across flushes and compactions, and is sent only changes."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.history import queries
from app.history.client import HistoryClient
from app.history.queries import INFERENCE_DATASETS, InferenceFilters
from app.history.records import feedback_row, to_wire
from app.history.snapshot_reader import SnapshotReader, SnapshotStale
from app.history.store import HistoryStore
from app.history.wal_watch import WalWatch
from tests.unit.test_history_store import NOW, _many_small_files, bill, open_store, row

FILTERS = [
    InferenceFilters(limit=500),
    InferenceFilters(limit=3, offset=2),
    InferenceFilters(limit=500, model_id="m1"),
    InferenceFilters(limit=500, task="extract_entities", since=NOW - timedelta(hours=1)),
    InferenceFilters(limit=5, offset=10_000),
]


def reader_of(store: HistoryStore) -> SnapshotReader:
    reader = SnapshotReader.open(store.storage.base, store.store_id)
    assert reader is not None
    return reader


def read(reader: SnapshotReader, store: HistoryStore, names: tuple[str, ...], run: Any) -> Any:
    """What the ingress does per read: say what it holds, get the changes, query here."""
    return reader.query(store.export(names, reader.held(names)), run)


def listed(reader: SnapshotReader, store: HistoryStore, filters: InferenceFilters) -> Any:
    return read(
        reader,
        store,
        INFERENCE_DATASETS,
        lambda reading: queries.list_inferences(reading, filters),
    )


def test_the_reader_answers_as_the_store_does(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _many_small_files(store, files=4, per_file=5)
    store.inferences.append([row(100, model="m1"), row(101, task="classify_text")])
    store.billing.append([bill(i) for i in range(3)])
    store.feedback.append(
        [
            feedback_row(
                "id-000100",
                verdict="incorrect",
                corrected_output={"a": 1},
                notes="n",
                project_id="p",
                api_key_id=None,
            )
        ]
    )
    reader = reader_of(store)
    for filters in FILTERS:
        assert listed(reader, store, filters) == store.list_inferences(filters)
    one = read(
        reader,
        store,
        INFERENCE_DATASETS,
        lambda reading: queries.get_inference(reading, "id-000100", "p"),
    )
    assert one == store.get_inference("id-000100", "p") and one["human_verdict"] == "incorrect"
    feedback = read(
        reader,
        store,
        ("feedback",),
        lambda reading: queries.get_feedback(reading, "id-000100", None),
    )
    assert feedback == store.get_feedback("id-000100", None)
    usage = read(reader, store, ("billing",), lambda reading: queries.usage(reading))
    assert usage == store.usage() and usage[0]["inferences"] == 3
    store.close()


def test_only_what_changed_is_sent(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(i) for i in range(3)])
    reader = reader_of(store)
    full = store.export(["inferences"], reader.held(["inferences"])).datasets["inferences"]
    assert full.files is not None and full.tail_start == 0 and full.tail is not None
    assert listed(reader, store, InferenceFilters())[1] == 3

    unchanged = store.export(["inferences"], reader.held(["inferences"])).datasets["inferences"]
    assert unchanged.files is None and unchanged.tail is None and unchanged.tail_start == 3

    store.inferences.append([row(3)])
    grown = store.export(["inferences"], reader.held(["inferences"])).datasets["inferences"]
    assert grown.files is None and grown.tail_start == 3  # just the new row
    assert reader.query(store.export(["inferences"], reader.held(["inferences"])), _count) == 4

    store.flush()  # the rows move from the tail to a file: both are sent again
    moved = store.export(["inferences"], reader.held(["inferences"])).datasets["inferences"]
    assert moved.files is not None and moved.tail is None and moved.tail_start == 0
    assert listed(reader, store, InferenceFilters())[1] == 4
    store.close()


def _count(reading: queries.Reading) -> int:
    with reading.open() as (cursor, sources):
        source, params = sources["inferences"]
        return cursor.execute(f"SELECT count(*) FROM {source}", params).fetchone()[0]


def test_a_snapshot_whose_files_were_collected_is_stale(tmp_path: Path) -> None:
    store = open_store(tmp_path, gc_grace_s=0.0)
    _many_small_files(store, files=3, per_file=2)
    reader = reader_of(store)
    old = store.export(INFERENCE_DATASETS, {})
    store.compact(min_files=2)
    assert store.collect_garbage()["inferences"] > 0  # no reader of the store's own holds them
    with pytest.raises(SnapshotStale):
        reader.query(old, _count)
    reader.forget()
    assert listed(reader, store, InferenceFilters())[1] == 6  # a fresh snapshot reads fine
    store.close()


def test_every_acknowledged_row_is_seen_once_while_the_writer_flushes(tmp_path: Path) -> None:
    """Read-your-writes under a racing flush and compaction: a row appended (acknowledged)
    is in the very next read, and no read ever shows a row twice. (Replaced files are kept a
    second here: with no grace at all a tight compaction loop can outrun a retry.)"""
    store = open_store(tmp_path, gc_grace_s=1.0)
    reader = reader_of(store)
    errors: list[BaseException] = []
    stop = threading.Event()
    acknowledged = [0]  # rows whose append has returned, by every worker
    counting = threading.Lock()

    def maintain() -> None:
        while not stop.is_set():
            store.flush()
            store.compact(min_files=2)
            store.collect_garbage()

    def write_then_read(worker: int) -> None:
        try:
            for i in range(40):
                number = worker * 1000 + i
                store.inferences.append([row(number)])
                with counting:
                    acknowledged[0] += 1
                    before = acknowledged[0]
                for attempt in range(2):  # as the ingress does: one retry on a stale snapshot
                    try:
                        rows, total = listed(reader, store, InferenceFilters(limit=500))
                        break
                    except SnapshotStale:
                        if attempt:
                            raise
                        reader.forget()
                seen = [r["id"] for r in rows]
                assert f"id-{number:06d}" in seen, "an acknowledged row was not read"
                assert len(seen) == len(set(seen)) == total, "a row was read twice"
                assert total >= before, "a row acknowledged before the read was not read"
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    maintainer = threading.Thread(target=maintain)
    workers = [threading.Thread(target=write_then_read, args=(w,)) for w in range(3)]
    maintainer.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    maintainer.join()
    assert not errors, errors[0]
    assert listed(reader, store, InferenceFilters(limit=500))[1] == 120
    store.close()


def test_a_reader_elsewhere_sees_no_storage_and_says_so(tmp_path: Path) -> None:
    store = open_store(tmp_path / "here")
    assert SnapshotReader.open(str(tmp_path / "not-here"), store.store_id) is None
    assert not (tmp_path / "not-here").exists()  # looking created nothing
    assert SnapshotReader.open(store.storage.base, "another-store") is None
    store.close()


def test_a_pyarrow_filesystem_root_is_read_through_storage(tmp_path: Path) -> None:
    store = HistoryStore("mock:///bucket/history", str(tmp_path / "wal"), gc_grace_s=0.0).open()
    _many_small_files(store, files=3, per_file=4)
    store.inferences.append([row(100)])
    reader = SnapshotReader(store.storage, store.store_id)  # mock:// lives in one instance
    for filters in FILTERS:
        assert listed(reader, store, filters) == store.list_inferences(filters)
    store.close()


class FakeRecorder:
    """The Recorder's methods the client calls, over a store in this process."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.calls: list[str] = []

    async def __call__(self, method: str, *args: Any) -> Any:
        self.calls.append(method)
        if method == "read_snapshot":
            return self.store.export(*args)
        if method == "add_feedback":
            return self.store.feedback.append(args)
        if method == "list_inferences":
            rows, total = self.store.list_inferences(*args)
            return [to_wire(r) for r in rows], total
        row_ = getattr(self.store, method)(*args)
        return to_wire(row_) if isinstance(row_, dict) else row_


def one_row_held(root: Path) -> tuple[HistoryStore, FakeRecorder, HistoryClient]:
    """A store with one acknowledged row, and a client reading it through a fake Recorder."""
    store = open_store(root)
    store.inferences.append([row(1)])
    recorder = FakeRecorder(store)
    return store, recorder, HistoryClient(recorder)


def test_the_client_reads_here_and_writes_through_the_recorder(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(1), row(2)])
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)

    async def scenario() -> None:
        rows, total = await client.list_inferences(InferenceFilters())
        assert total == 2 and rows[0]["id"] == "id-000001"
        assert rows[0]["metadata"]["format"] == "native"  # as the wire shows it
        feedback = feedback_row(
            "id-000001",
            verdict="correct",
            corrected_output=None,
            notes=None,
            project_id="p",
            api_key_id=None,
        )
        await client.add_feedback(feedback)
        record = await client.get_inference("id-000001", "p")
        assert record is not None and record["human_verdict"] == "correct"
        assert (await client.get_feedback("id-000001", "p"))["verdict"] == "correct"
        assert await client.usage(None, None, None) == []

    asyncio.run(scenario())
    assert set(recorder.calls) == {"read_snapshot", "add_feedback"}  # no query at the writer
    store.close()


def test_the_client_leaves_reads_to_the_recorder_where_storage_is_not_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, recorder, client = one_row_held(tmp_path)
    monkeypatch.setattr(SnapshotReader, "open", classmethod(lambda cls, root, store_id: None))

    async def scenario() -> None:
        assert (await client.list_inferences(InferenceFilters()))[1] == 1
        assert (await client.get_inference("id-000001", None))["id"] == "id-000001"

    asyncio.run(scenario())
    # one snapshot to learn where the storage is; then straight to the Recorder
    assert recorder.calls == ["read_snapshot", "list_inferences", "get_inference"]
    store.close()


def test_the_client_retries_a_stale_snapshot_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, recorder, client = one_row_held(tmp_path)
    real_query = SnapshotReader.query
    failures = iter([True])

    def flaky(self: SnapshotReader, snapshot: Any, run: Any, stamps: Any = None) -> Any:
        if next(failures, False):
            raise SnapshotStale("a listed file was collected")
        return real_query(self, snapshot, run, stamps)

    monkeypatch.setattr(SnapshotReader, "query", flaky)
    total = asyncio.run(client.list_inferences(InferenceFilters()))[1]
    assert total == 1 and recorder.calls == ["read_snapshot", "read_snapshot"]
    store.close()


def test_with_nothing_new_the_read_runs_beside_the_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query over what the replica holds starts while the Recorder is asked; it is the
    answer only when the Recorder's snapshot holds nothing newer (read-your-writes kept).
    (A replica on another host than the writer's: it cannot watch the WAL, so it asks.)"""
    store = open_store(tmp_path)
    store.inferences.append([row(1)])
    client = HistoryClient(FakeRecorder(store))
    calls: list[str] = []
    real_query, real_run_on = SnapshotReader.query, SnapshotReader.run_on
    monkeypatch.setattr(WalWatch, "stamps", lambda self, names: None)

    def query(self: SnapshotReader, snapshot: Any, run: Any, stamps: Any = None) -> Any:
        calls.append("snapshot")
        return real_query(self, snapshot, run, stamps)

    def run_on(self: SnapshotReader, views: Any, run: Any) -> Any:
        calls.append("views")
        return real_run_on(self, views, run)

    monkeypatch.setattr(SnapshotReader, "query", query)
    monkeypatch.setattr(SnapshotReader, "run_on", run_on)

    async def totals() -> list[int]:
        found = []
        for step in range(5):
            if step == 3:
                store.inferences.append([row(2)])  # acknowledged: the next read must see it
            found.append((await client.list_inferences(InferenceFilters()))[1])
        await asyncio.sleep(0.1)  # a discarded guess finishes in its thread
        return found

    assert asyncio.run(totals()) == [1, 1, 1, 2, 2]
    # 1st: nothing held; 2nd: learns nothing changes; 3rd: the guess answers; 4th: a guess
    # starts but a row came in, so the snapshot answers; 5th: no guess after a change.
    # (the 4th read's guess runs in a thread beside it: counted, not ordered)
    assert calls.count("snapshot") == 4 and calls.count("views") == 6
    assert calls[:5] == ["snapshot", "views", "snapshot", "views", "views"]
    store.close()


def test_a_quick_snapshot_is_only_taken_when_it_costs_nothing(tmp_path: Path) -> None:
    """The Recorder answers in its event loop only when no lock is busy and no row needs
    copying out; otherwise it takes the snapshot in a thread (quick answers None)."""
    store = open_store(tmp_path)
    store.inferences.append([row(1)])
    assert store.export(["inferences"], {}, quick=True) is None  # a row to copy out
    full = store.export(["inferences"], {})
    held = {"inferences": full.datasets["inferences"].version}
    assert store.export(["inferences"], held, quick=True) is not None  # nothing new
    busy = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with store.inferences._lock:
            busy.set()
            release.wait()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    busy.wait()
    try:
        assert store.export(["inferences"], held, quick=True) is None  # never waits
    finally:
        release.set()
        holder.join()
    store.close()
