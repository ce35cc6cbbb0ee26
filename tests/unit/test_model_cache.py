"""The ingress's cache of the resolver's answers: no hop per request, fresh within ~TTL_S."""

from __future__ import annotations

import asyncio

import pytest

from app import model_cache
from app.model_cache import ResolvedCache
from app.protocol import ApiError, ApiException, ResolvedModel

MODEL = ResolvedModel("m", "m", "encoder", "gliner2", "m", "m")


class Resolver:
    def __init__(self) -> None:
        self.calls = 0
        self.answer: ResolvedModel | ApiError = MODEL
        self.down = False

    async def __call__(self, model_id: str) -> ResolvedModel | ApiError:
        self.calls += 1
        if self.down:
            raise ApiException(ApiError(503, "backend_unavailable", "resolver lost"))
        return self.answer


def test_one_call_per_id_then_answers_from_the_cache() -> None:
    async def scenario() -> int:
        resolver = Resolver()
        cache = ResolvedCache(resolver)
        for _ in range(50):
            assert await cache.resolve("m") is MODEL
        return resolver.calls

    assert asyncio.run(scenario()) == 1


def test_a_changed_answer_arrives_after_the_ttl_without_a_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_cache, "TTL_S", 0.05)

    async def scenario() -> None:
        resolver = Resolver()
        cache = ResolvedCache(resolver)
        await cache.resolve("m")
        resolver.answer = ApiError.model_not_found("m")  # the job was removed
        await asyncio.sleep(0.1)
        assert await cache.resolve("m") is MODEL  # stale, while it asks again
        await asyncio.sleep(0.01)
        with pytest.raises(ApiException) as caught:
            await cache.resolve("m")
        assert caught.value.error.status == 404

    asyncio.run(scenario())


def test_the_last_answers_stand_while_the_resolver_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_cache, "TTL_S", 0.0)

    async def scenario() -> None:
        resolver = Resolver()
        cache = ResolvedCache(resolver)
        await cache.resolve("m")
        resolver.down = True
        for _ in range(5):
            assert await cache.resolve("m") is MODEL
            await asyncio.sleep(0.01)
        with pytest.raises(ApiException):  # an id never seen still needs the resolver
            await cache.resolve("other")

    asyncio.run(scenario())


def test_client_ids_cannot_grow_it_without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_cache, "MAX_IDS", 10)

    async def scenario() -> ResolvedCache:
        resolver = Resolver()
        resolver.answer = ApiError.model_not_found("x")
        cache = ResolvedCache(resolver)
        for i in range(100):
            with pytest.raises(ApiException):
                await cache.resolve(f"random-{i}")
        with pytest.raises(ApiException):
            await cache.resolve("x" * 10_000)
        return cache

    cache = asyncio.run(scenario())
    assert len(cache._answers) <= 10
    assert all(len(key) <= model_cache.MAX_ID_CHARS for key in cache._answers)
