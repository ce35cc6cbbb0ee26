"""The resolver's answers, kept in the ingress: resolution without a hop per request.

The ModelResolver stays the owner of the catalog and the job registry; each ingress replica
keeps what it answered per model id for TTL_S and then serves that answer while it asks
again in the background (stale-while-revalidate). So a request never waits for the resolver
for an id it has seen, an edit of jobs.yaml reaches every ingress within about TTL_S plus one
call, a new job id routes at once (a miss asks the resolver), and while the resolver is lost
its last answers stand.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable

from app.protocol import ApiError, ApiException, ResolvedModel

TTL_S = 1.0
MAX_IDS = 4096  # ids are client input: the cache is bounded, by count and by id length
MAX_ID_CHARS = 256

Answer = ResolvedModel | ApiError


class ResolvedCache:
    def __init__(self, fetch: Callable[[str], Awaitable[Answer]]) -> None:
        self._fetch = fetch
        self._answers: dict[str, tuple[float, Answer]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task] = set()

    async def resolve(self, model_id: str) -> ResolvedModel:
        cached = self._answers.get(model_id)
        if cached is None:
            answer = await self._ask(model_id)
        else:
            at, answer = cached
            if time.monotonic() - at > TTL_S and model_id not in self._refreshing:
                self._refresh(model_id)
        if isinstance(answer, ApiError):
            raise ApiException(answer)
        return answer

    async def _ask(self, model_id: str) -> Answer:
        answer = await self._fetch(model_id)
        if len(model_id) <= MAX_ID_CHARS:
            if len(self._answers) >= MAX_IDS and model_id not in self._answers:
                self._answers.clear()
            self._answers[model_id] = (time.monotonic(), answer)
        return answer

    def _refresh(self, model_id: str) -> None:
        async def again() -> None:
            try:
                await self._ask(model_id)
            except ApiException:  # the resolver is away: the last answer stands meanwhile
                pass
            finally:
                self._refreshing.discard(model_id)

        self._refreshing.add(model_id)
        # A fresh context: Ray Serve cancels the calls of a cancelled request, not this one.
        task = asyncio.get_running_loop().create_task(again(), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
