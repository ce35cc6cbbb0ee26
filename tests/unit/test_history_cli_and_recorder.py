"""The ad-hoc SQL tools, and the Recorder's promises: a bill survives a history failure, and
one request's bad row never costs the other rows of its group their record."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

from app.config import HistoryConfig
from app.history.__main__ import VIEWS_SQL, connect, main
from app.history.store import HistoryStore
from deployments.recorder import Recorder, _Entry
from tests.unit.test_history_store import bill, row


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = HistoryStore(str(tmp_path), None).open()
    store.inferences.append([row(i) for i in range(3)])
    store.billing.append([bill(i) for i in range(3)])
    store.flush()
    store.inferences.append([row(i) for i in range(3, 5)])  # still only in the WAL
    store.close()
    return tmp_path


def test_sql_views_see_published_and_unflushed_rows(root: Path) -> None:
    con = connect(root)
    assert con.execute("SELECT count(*) FROM inferences").fetchone() == (5,)
    assert con.execute("SELECT count(DISTINCT id) FROM inferences").fetchone() == (5,)
    assert con.execute("SELECT sum(input_tokens) FROM billing").fetchone() == (30,)
    assert con.execute("SELECT count(*) FROM feedback").fetchone() == (0,)


def test_views_sql_runs_in_a_plain_duckdb_from_the_root(root: Path) -> None:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        con = duckdb.connect()
        con.execute(VIEWS_SQL.read_text())
        assert con.execute("SELECT count(*) FROM inferences").fetchone() == (3,)  # published
        assert "date" in [c[0] for c in con.execute("DESCRIBE inferences").fetchall()]
    finally:
        os.chdir(cwd)


def test_cli_sql_usage_and_compact(root: Path, capsys: pytest.CaptureFixture) -> None:
    main(["--root", str(root), "sql", "SELECT count(*) AS n FROM inferences"])
    assert "5" in capsys.readouterr().out
    main(["--root", str(root), "usage"])
    assert "30" in capsys.readouterr().out
    main(["--root", str(root), "compact"])
    held = HistoryStore(str(root), None).open()
    with pytest.raises(SystemExit, match="compacts on its own"):
        main(["--root", str(root), "compact"])
    held.close()


def test_a_history_failure_never_loses_the_bill(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[bool], int, int]:  # the batch body, without Serve
        recorder = Recorder.__new__(Recorder)
        await recorder.__init__(HistoryConfig(storage_root=str(tmp_path)))

        def broken(prepared: list) -> None:
            raise OSError("disk full")

        recorder._store.inferences.write = broken  # type: ignore[method-assign]
        acks = await recorder._write([_Entry(bill(1), row(1)), _Entry(bill(2), None)])
        recorder._maintenance.cancel()
        store = recorder._store
        return list(acks), store.count("billing"), store.count("inferences")

    acks, bills, records = asyncio.run(scenario())
    assert acks == [False, True]  # the stored one reports its history loss; store:false is fine
    assert bills == 2 and records == 0


def _recorded_group(tmp_path: Path, entries: list[_Entry]) -> tuple[list[bool], HistoryStore]:
    async def scenario() -> list[bool]:
        recorder = Recorder.__new__(Recorder)
        await recorder.__init__(HistoryConfig(storage_root=str(tmp_path)))
        recorder._maintenance.cancel()
        scenario.store = recorder._store  # type: ignore[attr-defined]
        return list(await recorder._write(entries))

    acks = asyncio.run(scenario())
    return acks, scenario.store  # type: ignore[attr-defined]


def test_one_unstorable_row_costs_no_other_row_its_record(tmp_path: Path) -> None:
    """Issue 8, reproducer 4: a row that cannot be encoded made the whole group commit fail."""
    unstorable = {**row(2), "latency_ms": 2**70}  # no int64 holds it, with or without repair
    acks, store = _recorded_group(
        tmp_path,
        [_Entry(bill(1), row(1)), _Entry(bill(2), unstorable), _Entry(bill(3), row(3))],
    )
    assert acks == [True, False, True]  # the bad one is told; its neighbours are recorded
    assert store.count("inferences") == 2
    assert store.count("billing") == 3  # every request that ran is billed...
    status = {b["id"]: b["status"] for b in store.billing.snapshot().buffered.to_pylist()}
    assert status == {"id-000001": "success", "id-000002": "unrecorded", "id-000003": "success"}
    store.flush()  # ...and the refused row poisons neither the WAL nor a flush
    assert store.count("inferences") == 2 and store.count("billing") == 3


def test_a_row_with_lone_surrogates_is_kept_with_them_replaced(tmp_path: Path) -> None:
    failed = {**row(1), "status": "failed", "error_message": "bad \ud800 text", "input": '"\udc00"'}
    acks, store = _recorded_group(tmp_path, [_Entry(bill(1), failed), _Entry(bill(2), row(2))])
    assert acks == [True, True]
    store.flush()
    kept = store.get_inference("id-000001", None)
    assert kept is not None and kept["error_message"] == "bad \ufffd text"
    assert kept["input"] == '"\ufffd"'


def test_the_recorder_sends_a_snapshot_not_a_query_result(tmp_path: Path) -> None:
    """An ingress replica's read: the Recorder's files and unflushed rows, as of one instant."""

    async def scenario() -> tuple[Any, Any]:
        recorder = Recorder.__new__(Recorder)
        await recorder.__init__(HistoryConfig(storage_root=str(tmp_path)))
        recorder._maintenance.cancel()
        await recorder._write([_Entry(bill(1), row(1))])
        first = await recorder.read_snapshot(("inferences", "billing"), {})
        held = {name: part.version for name, part in first.datasets.items()}
        again = await recorder.read_snapshot(("inferences", "billing"), held)
        recorder._store.close()
        return first, again

    first, again = asyncio.run(scenario())
    assert first.root == str(tmp_path.resolve()) and first.store_id
    assert (tmp_path / "_store.json").exists()
    inferences = first.datasets["inferences"]
    assert inferences.files == ["inferences/date=1970-01-01/empty.parquet"]
    assert inferences.tail_start == 0 and inferences.tail  # the row, as Arrow IPC bytes
    assert all(part.files is None and part.tail is None for part in again.datasets.values())
