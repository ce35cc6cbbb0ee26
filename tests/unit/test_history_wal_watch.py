"""Reads that skip the Recorder: an ingress replica on the writer's host stats the WAL, and
while the same writer, alive, has written nothing since its last snapshot, it queries what
it holds without asking. Any acknowledged write, a flush, a new or dead writer, or a host
that cannot see the lock sends the read to the Recorder again; read-your-writes holds."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path

import pytest

from app.history import wal_watch
from app.history.client import HistoryClient
from app.history.queries import InferenceFilters
from app.history.records import feedback_row
from app.history.store import HistoryStore
from app.history.wal_watch import WRITER_LOCK, WalWatch
from tests.unit.test_history_snapshot_reader import FakeRecorder
from tests.unit.test_history_store import open_store, row

ALL = InferenceFilters(limit=500)


def total(client: HistoryClient) -> int:
    return asyncio.run(client.list_inferences(ALL))[1]


def asks(recorder: FakeRecorder, client: HistoryClient) -> tuple[int, int]:
    """One read: (its total, how many times it asked the Recorder for a snapshot)."""
    before = recorder.calls.count("read_snapshot")
    found = total(client)
    return found, recorder.calls.count("read_snapshot") - before


def test_the_writer_names_itself_in_its_lock_and_its_snapshots(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    lock = store.wal_dir / WRITER_LOCK
    assert lock.read_text() == store.writer_id
    snapshot = store.export(["inferences"], {})
    assert snapshot.writer_id == store.writer_id
    assert snapshot.wal_dir == str(store.wal_dir) and Path(snapshot.wal_dir).is_absolute()
    with pytest.raises(Exception, match="another writer"):
        HistoryStore(str(tmp_path), None).open()
    assert lock.read_text() == store.writer_id  # a refused writer left the id as it was
    store.close()


def test_reads_skip_the_recorder_until_something_is_written(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(1)])
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)
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


def test_a_writer_that_is_gone_or_replaced_vouches_for_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(1)])
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)
    assert [asks(recorder, client) for _ in range(3)] == [(1, 1), (1, 1), (1, 0)]
    # The writer's lock released (its process died): its WAL proves nothing, ask.
    fcntl.flock(store._lock_file, fcntl.LOCK_UN)
    assert [asks(recorder, client) for _ in range(2)] == [(1, 1), (1, 1)]
    store.flush()  # (a WAL on another disk would not be replayed by the writer below)
    store.close()
    # A new writer, here with its WAL elsewhere (another host's disk, as this one sees it):
    # the old folder still names the old writer, unlocked; every read asks.
    moved = HistoryStore(str(tmp_path), str(tmp_path / "elsewhere")).open()
    recorder.store = moved
    moved.inferences.append([row(2)])
    assert [asks(recorder, client) for _ in range(2)] == [(2, 1), (2, 1)]
    (tmp_path / "elsewhere").rename(tmp_path / "hidden")  # not visible from this "host"
    moved.inferences.append([row(3)])
    assert [asks(recorder, client) for _ in range(2)] == [(3, 1), (3, 1)]
    moved.close()


def test_a_new_writer_on_the_same_folder_is_watched_afresh(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.inferences.append([row(1)])
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)
    assert [asks(recorder, client) for _ in range(3)] == [(1, 1), (1, 1), (1, 0)]
    store.close()
    again = open_store(tmp_path)  # replays the WAL: the same rows, a new writer id
    recorder.store = again
    assert [asks(recorder, client) for _ in range(3)] == [(1, 1), (1, 1), (1, 0)]
    again.inferences.append([row(2)])
    assert asks(recorder, client) == (2, 1)
    again.close()


def test_without_a_lock_table_every_read_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal_watch, "LOCKS_TABLE", tmp_path / "no-proc-locks")
    store = open_store(tmp_path / "h")
    store.inferences.append([row(1)])
    recorder = FakeRecorder(store)
    client = HistoryClient(recorder)
    assert [asks(recorder, client)[1] for _ in range(4)] == [1, 1, 1, 1]
    store.close()


def test_the_lock_table_is_read_for_exclusive_flocks_on_that_file(tmp_path: Path) -> None:
    lock = tmp_path / WRITER_LOCK
    lock.write_text("writer-a")
    status = os.stat(lock)
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    other = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino + 1}"
    held = wal_watch._held
    assert held(f"1: FLOCK  ADVISORY  WRITE 7 {device} 0 EOF\n", status)
    assert held(
        f"1: POSIX  ADVISORY  WRITE 7 {other} 0 EOF\n2: FLOCK  ADVISORY  WRITE 9 {device} 0 EOF",
        status,
    )
    assert not held(f"1: FLOCK  ADVISORY  WRITE 7 {other} 0 EOF\n", status)
    assert not held(f"1: FLOCK  ADVISORY  READ 7 {device} 0 EOF\n", status)
    assert not held(f"1: POSIX  ADVISORY  WRITE 7 {device} 0 EOF\n", status)
    assert not held(f"1: -> FLOCK  ADVISORY  WRITE 7 {device} 0 EOF\n", status)
    assert not held("", status)
    watch = WalWatch(str(tmp_path), "writer-a")
    assert watch.stamps(["inferences"]) is None  # nobody holds it
    with open(lock) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert watch.stamps([]) == {}
        assert WalWatch(str(tmp_path), "writer-b").stamps([]) is None  # another writer's
        assert watch.stamps(["inferences"]) is None  # no such dataset folder: cannot tell


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
