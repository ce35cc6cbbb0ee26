"""Reads that skip the Recorder: an ingress replica on the writer's host reads the writer's
change counts (memory-mapped beside the WAL), and while the same writer, alive (a fresh
heartbeat), has changed nothing since its last snapshot, it queries what it holds without
asking. Any acknowledged write, a flush, a new file list, a new or silent writer, or a host
that cannot see the file sends the read to the Recorder again; read-your-writes holds."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.history import wal_watch
from app.history.client import HistoryClient
from app.history.queries import InferenceFilters
from app.history.records import feedback_row
from app.history.store import HistoryStore
from app.history.wal_watch import WalWatch
from tests.unit.test_history_snapshot_reader import FakeRecorder, one_row_held
from tests.unit.test_history_store import bill, open_store, row

ALL = InferenceFilters(limit=500)


def total(client: HistoryClient) -> int:
    return asyncio.run(client.list_inferences(ALL))[1]


def asks(recorder: FakeRecorder, client: HistoryClient) -> tuple[int, int]:
    """One read: (its total, how many times it asked the Recorder for a snapshot)."""
    before = recorder.calls.count("read_snapshot")
    found = total(client)
    return found, recorder.calls.count("read_snapshot") - before


def test_the_writer_counts_each_change_a_reader_would_be_sent(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    snapshot = store.export(["inferences"], {})
    assert snapshot.writer_id == store.writer_id
    assert snapshot.wal_dir == str(store.wal_dir) and Path(snapshot.wal_dir).is_absolute()
    watch = WalWatch(snapshot.wal_dir, snapshot.writer_id)

    def count() -> int:
        stamps = watch.stamps(["inferences"])
        assert stamps is not None
        return stamps["inferences"].changes

    counts = [count()]
    store.inferences.append([row(1)])  # a WAL write
    counts.append(count())
    store.inferences.flush()  # rows leave the tail, a new file list
    counts.append(count())
    store.billing.append([bill(1)])  # another dataset: not this one's count
    counts.append(count())
    assert counts[0] < counts[1] < counts[2] == counts[3]
    with pytest.raises(Exception, match="another writer"):
        HistoryStore(str(tmp_path), None).open()
    assert count() == counts[3]  # a writer refused the lock changed nothing
    store.close()


def test_reads_skip_the_recorder_until_something_is_written(tmp_path: Path) -> None:
    store, recorder, client = one_row_held(tmp_path)
    assert asks(recorder, client) == (1, 1)  # nothing held yet
    assert asks(recorder, client) == (1, 1)  # held, now with the WAL's stamp
    assert [asks(recorder, client) for _ in range(3)] == [(1, 0)] * 3
    store.inferences.append([row(2)])  # acknowledged: the next read must see it
    assert asks(recorder, client) == (2, 1)
    assert asks(recorder, client) == (2, 0)
    store.inferences.flush()  # rows move from the tail into a file: the WAL is sealed
    assert asks(recorder, client) == (2, 1)
    assert asks(recorder, client) == (2, 0)
    store.feedback.append(
        [
            feedback_row(
                "id-000001",
                verdict="incorrect",
                corrected_output=None,
                notes=None,
                project_id=None,
                api_key_id=None,
            )
        ]
    )
    before = recorder.calls.count("read_snapshot")
    rows, _ = asyncio.run(client.list_inferences(ALL))
    assert recorder.calls.count("read_snapshot") == before + 1
    assert {r["id"]: r.get("human_verdict") for r in rows}["id-000001"] == "incorrect"
    store.close()


def test_files_collected_under_a_held_view_are_read_afresh(tmp_path: Path) -> None:
    """A compaction writes no WAL (same rows, other files), so a replica keeps the files it
    held; once they are collected its read goes stale and asks again, once."""
    store = open_store(tmp_path, gc_grace_s=0.0)
    for i in range(3):
        store.inferences.append([row(i)])
        store.inferences.flush()
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)
    assert [asks(recorder, client) for _ in range(3)] == [(3, 1), (3, 1), (3, 0)]
    store.compact(min_files=2)
    store.collect_garbage()
    assert asks(recorder, client) == (3, 1)
    assert asks(recorder, client) == (3, 0)
    store.close()


def test_a_writer_that_is_gone_or_replaced_vouches_for_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, recorder, client = one_row_held(tmp_path)
    assert [asks(recorder, client) for _ in range(3)] == [(1, 1), (1, 1), (1, 0)]
    # No heartbeat for FRESH_S (its process died): its count proves nothing, ask.
    monkeypatch.setattr(wal_watch, "FRESH_S", 0.05)
    time.sleep(0.1)
    assert [asks(recorder, client) for _ in range(2)] == [(1, 1), (1, 1)]
    monkeypatch.undo()
    store.flush()  # (a WAL on another disk would not be replayed by the writer below)
    store.close()
    # A new writer, here with its WAL elsewhere (another host's disk, as this one sees it):
    # the old folder still names the old writer, unlocked; every read asks.
    moved = HistoryStore(str(tmp_path), str(tmp_path / "elsewhere")).open()
    recorder.store = moved
    moved.inferences.append([row(2)])
    assert [asks(recorder, client) for _ in range(2)] == [(2, 1), (2, 1)]
    moved.close()


def test_a_new_writer_on_the_same_folder_is_watched_afresh(tmp_path: Path) -> None:
    store, recorder, client = one_row_held(tmp_path)
    assert [asks(recorder, client) for _ in range(3)] == [(1, 1), (1, 1), (1, 0)]
    store.close()
    again = open_store(tmp_path)  # replays the WAL: the same rows, a new writer id
    recorder.store = again
    assert [asks(recorder, client) for _ in range(3)] == [(1, 1), (1, 1), (1, 0)]
    again.inferences.append([row(2)])
    assert asks(recorder, client) == (2, 1)
    again.close()


def test_a_watch_vouches_only_for_a_live_writer_it_can_see(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    wal = str(store.wal_dir)
    assert WalWatch(wal, store.writer_id).stamps(["inferences", "feedback"]) is not None
    assert WalWatch(wal, "another-writer").stamps(["inferences"]) is None
    assert WalWatch(wal, store.writer_id).stamps(["no-such-dataset"]) is None
    assert WalWatch(str(tmp_path / "not-here"), store.writer_id).stamps(["inferences"]) is None
    watch = WalWatch(wal, store.writer_id)
    assert watch.stamps(["inferences"]) is not None
    monkeypatch.setattr(wal_watch, "FRESH_S", 0.05)
    time.sleep(0.1)  # no heartbeat since: the writer may be gone
    assert watch.stamps(["inferences"]) is None
    store.beat()  # the Recorder's maintenance tick
    assert watch.stamps(["inferences"]) is not None
    store.close()


def test_every_acknowledged_row_is_read_while_the_writer_flushes_and_compacts(
    tmp_path: Path,
) -> None:
    """Read-your-writes through the client (skipping the Recorder wherever it may) while
    rows are appended from threads and a flush, compaction and collection loop races them:
    a row whose append returned is in the next read, and no row is read twice."""
    store = open_store(tmp_path, gc_grace_s=1.0)
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)
    stop = threading.Event()

    def maintain() -> None:
        while not stop.is_set():
            store.flush()
            store.compact(min_files=2)
            store.collect_garbage()

    acknowledged = [0]

    async def write_then_read(worker: int) -> int:
        skipped = 0
        for i in range(30):
            number = worker * 1000 + i
            await asyncio.to_thread(store.inferences.append, [row(number)])
            acknowledged[0] += 1
            before = acknowledged[0]
            for _ in range(2):  # the second read may skip the Recorder: it must agree
                asked = recorder.calls.count("read_snapshot")
                rows, found = await client.list_inferences(ALL)
                skipped += recorder.calls.count("read_snapshot") == asked
                seen = [r["id"] for r in rows]
                assert f"id-{number:06d}" in seen, "an acknowledged row was not read"
                assert len(seen) == len(set(seen)) == found, "a row was read twice"
                assert found >= before, "a row acknowledged before the read was not read"
        return skipped

    async def run() -> list[int]:
        return await asyncio.gather(*(write_then_read(w) for w in range(3)))

    maintainer = threading.Thread(target=maintain)
    maintainer.start()
    try:
        skipped = asyncio.run(run())
    finally:
        stop.set()
        maintainer.join()
    assert total(client) == 90
    assert sum(skipped) > 0  # some reads did skip the Recorder, and still agreed
    store.close()


def test_a_write_landing_while_the_snapshot_travels_is_read_next(tmp_path: Path) -> None:
    """The stamp is taken before the snapshot is asked for: a row acknowledged after the
    Recorder took the snapshot, before the reader got it, makes the next read ask again."""
    store = open_store(tmp_path)
    store.inferences.append([row(1)])
    landing = [row(2), row(3)]

    class WriteInFlight(FakeRecorder):
        async def __call__(self, method: str, *args: Any) -> Any:
            answer = await super().__call__(method, *args)
            if method == "read_snapshot" and landing:
                store.inferences.append([landing.pop(0)])
            return answer

    recorder = WriteInFlight(store)
    client = HistoryClient(recorder)
    assert asks(recorder, client) == (1, 1)  # row 2 lands after this snapshot was taken
    assert asks(recorder, client) == (2, 1)  # row 3 lands likewise
    assert asks(recorder, client) == (3, 1)
    assert asks(recorder, client) == (3, 0)
    store.close()
