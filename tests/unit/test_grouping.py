"""Grouped calls (app/grouping.py): the Recorder's records of concurrent requests share calls."""

from __future__ import annotations

import asyncio

import pytest

from app.grouping import Grouped


class Downstream:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail

    async def send(self, items: list[int]) -> list[int]:
        self.calls.append(items)
        await asyncio.sleep(0.01)  # a round trip: what arrives meanwhile waits for the next
        if self.fail:
            raise ConnectionError("recorder lost")
        return [item * 10 for item in items]


def test_concurrent_items_share_calls_and_each_gets_its_own_result() -> None:
    downstream = Downstream()

    async def main() -> list[int]:
        grouped = Grouped(downstream.send, max_in_flight=1)
        return list(await asyncio.gather(*(grouped.submit(i) for i in range(50))))

    assert asyncio.run(main()) == [i * 10 for i in range(50)]
    assert sorted(i for call in downstream.calls for i in call) == list(range(50))
    assert downstream.calls[0] == [0]  # the first goes at once: no waiting at low load
    assert len(downstream.calls) == 2  # the rest arrived during the first call


def test_a_lone_item_is_sent_at_once() -> None:
    downstream = Downstream()

    async def main() -> float:
        grouped = Grouped(downstream.send)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await grouped.submit(7)
        return loop.time() - started

    assert asyncio.run(main()) < 0.05 and downstream.calls == [[7]]


def test_a_failed_call_fails_every_caller_in_its_group() -> None:
    downstream = Downstream(fail=True)

    async def main() -> list[object]:
        grouped = Grouped(downstream.send, max_in_flight=1)
        return await asyncio.gather(*(grouped.submit(i) for i in range(5)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, ConnectionError) for o in outcomes)


def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    downstream = Downstream()

    async def main() -> int:
        grouped = Grouped(downstream.send, max_in_flight=1)
        first = asyncio.create_task(grouped.submit(1))
        second = asyncio.create_task(grouped.submit(2))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(main()) == 20
    assert [1] in downstream.calls  # the cancelled caller's item was still delivered


def test_groups_are_capped() -> None:
    downstream = Downstream()

    async def main() -> None:
        grouped = Grouped(downstream.send, max_in_flight=1, max_items=8)
        await asyncio.gather(*(grouped.submit(i) for i in range(40)))

    asyncio.run(main())
    assert max(len(call) for call in downstream.calls) == 8


async def settle() -> None:
    """Let submitted tasks and the calls they start run until they wait on the downstream."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_further_call_overlaps_only_once_enough_weight_waits() -> None:
    downstream = Downstream()

    async def main() -> None:
        grouped = Grouped(downstream.send, max_in_flight=2, overlap_at=6, weight=lambda i: i)
        first = asyncio.create_task(grouped.submit(1))
        await settle()
        small = [asyncio.create_task(grouped.submit(2)), asyncio.create_task(grouped.submit(3))]
        await settle()
        assert downstream.calls == [[1]]  # 5 waiting: below overlap_at, no second call yet
        await asyncio.gather(first, *small)
        assert downstream.calls == [[1], [2, 3]]  # they went once the first call returned

        busy = asyncio.create_task(grouped.submit(1))
        await settle()
        heavy = [asyncio.create_task(grouped.submit(i)) for i in (2, 4)]
        await settle()
        assert downstream.calls[-2:] == [[1], [2, 4]]  # 6 waiting: overlaps the call out
        await asyncio.gather(busy, *heavy)

    asyncio.run(main())
