"""Concurrent callers' items sent downstream as one call.

Each handle call costs the ingress (and the callee) a Ray round trip. The gateway groups the
Recorder's rows (each inference waits until its bill and history row are durable: one call
and one fsync per group) and the encoder's extraction calls per model (a busy encoder gets
its next batch in one piece). A `Grouped` sends an item at once when no call is out (no added
latency at low load) and otherwise gathers what arrives meanwhile into the next call. A
further call overlaps the ones out (up to `max_in_flight`) only once `overlap_at` worth of
items wait (`weight` each): a second call carrying one request would make the callee run a
batch of one, and the rest wait for the call after it. A failed call fails each of its callers
with the same exception object: callers must not mutate it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Grouped(Generic[Item, Result]):
    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[list[Result]]],
        max_in_flight: int = 2,
        max_items: int = 256,
        overlap_at: int = 1,
        weight: Callable[[Item], int] = lambda item: 1,
    ) -> None:
        self._send = send
        self._max_in_flight = max_in_flight
        self._max_items = max_items
        self._overlap_at = overlap_at
        self._weight = weight
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._waiting_weight = 0
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """The item's own result once its group's call returns, or that call's exception."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._waiting_weight += self._weight(item)
        self._start_next()
        return await future

    def _may_start(self) -> bool:
        if not self._waiting or len(self._in_flight) >= self._max_in_flight:
            return False
        return not self._in_flight or self._waiting_weight >= self._overlap_at

    def _start_next(self) -> None:
        while self._may_start():
            group = self._waiting[: self._max_items]
            del self._waiting[: self._max_items]
            self._waiting_weight -= sum(self._weight(item) for item, _ in group)
            # A fresh context: a caller that is cancelled must not cancel the others' call.
            task = asyncio.get_running_loop().create_task(
                self._deliver(group), context=contextvars.Context()
            )
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._start_next()

    async def _deliver(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._send([item for item, _ in group])
            if len(results) != len(group):
                raise RuntimeError(f"{len(results)} results for {len(group)} items")
        except BaseException as exc:  # every caller in the group gets the call's failure
            failure = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            for _, future in group:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)
