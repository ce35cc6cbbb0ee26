"""Stream plumbing shared by the deployments and the ingress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

_END = object()


async def coalesced(items: AsyncIterator[Any]) -> AsyncIterator[list[Any]]:
    """Drain `items` in a task and hand out everything queued each time the caller asks.

    Every hop of a stream (a handle item, an ASGI body message) has a fixed cost; when the
    source is faster than the sink this pays it per batch instead of per item, and when it
    is not, each item still goes out alone, at once. Closing this closes the source.
    """
    queue: asyncio.Queue = asyncio.Queue()

    async def pump() -> None:
        try:
            async with aclosing(items) as source:
                async for item in source:
                    queue.put_nowait(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised to the consumer below
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(_END)

    producer = asyncio.create_task(pump())
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            done = batch[-1] is _END
            ready = [item for item in batch if item is not _END]
            for position, item in enumerate(ready):
                if isinstance(item, BaseException):
                    if position:  # what came before the failure is still the caller's
                        yield ready[:position]
                    raise item
            if ready:
                yield ready
            if done:
                return
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)


async def joined(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """SSE bytes, several events per body message when they are ready together."""
    async with aclosing(coalesced(chunks)) as batches:
        async for batch in batches:
            yield b"".join(batch)
