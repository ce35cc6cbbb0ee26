"""The gateway when the Recorder fails at the end of a stream (found by bench/chaos.py: the
client got a 200, its tokens, then a cut connection with no final event). Fake handles stand
in for Ray Serve's here; the same path runs for real in bench/chaos.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from app.config import LimitsConfig
from app.gateway import InferenceGateway
from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ChoiceFinished,
    GenerationStarted,
    InferenceRequest,
    ResolvedModel,
    TokenDelta,
)

MODEL = ResolvedModel("m", "m", "decoder", "vllm", "m", "m")


class FakeResponse:
    """What a DeploymentResponse(Generator) offers the gateway."""

    def __init__(self, value: Any = None, error: Exception | None = None, items: Any = ()):
        self.value, self.error, self.items = value, error, list(items)

    async def _fetch_future_result_async(self) -> None:
        return None

    def cancel(self) -> None:
        pass

    def __await__(self) -> Any:
        async def result() -> Any:
            if self.error is not None:
                raise self.error
            return self.value

        return result().__await__()

    async def _stream(self) -> AsyncIterator[Any]:
        for item in self.items:
            yield item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._stream()


class FakeHandle:
    def __init__(self, **methods: Any) -> None:
        self.methods = methods

    def options(self, **_: Any) -> FakeHandle:
        return self

    def __getattr__(self, name: str) -> Any:
        class Method:
            remote = self.methods[name]

        return Method


def run_stream(record: Any) -> tuple[list[Any], GenerationTally]:
    events = [
        [GenerationStarted(3, "p")],
        [TokenDelta(0, "hi", 1)],
        [ChoiceFinished(0, "stop")],
    ]
    decoder = FakeHandle(generate=lambda call: FakeResponse(items=events))
    gateway = InferenceGateway(
        FakeHandle(), FakeHandle(), {"m": decoder}, FakeHandle(record_many=record), LimitsConfig()
    )
    request = InferenceRequest(model_id="m", task="generate", messages=[], stream=True)
    tally = GenerationTally()

    async def consume() -> list[Any]:
        return [event async for event in gateway.generate(request, tally, MODEL)]

    return asyncio.run(consume()), tally


def test_a_recorder_lost_at_the_end_of_a_stream_ends_it_with_an_error_event() -> None:
    seen, tally = run_stream(lambda rows: FakeResponse(error=RuntimeError("actor died")))
    assert isinstance(seen[-1], ApiError) and seen[-1].code == "history_unavailable"
    assert "may or may not" in seen[-1].message  # the rows may have reached the WAL
    assert tally.error == seen[-1]
    assert [type(e) for e in seen[:-1]] == [GenerationStarted, TokenDelta, ChoiceFinished]


def test_a_refused_row_ends_the_stream_saying_it_was_not_recorded() -> None:
    seen, _ = run_stream(lambda rows: FakeResponse(value=[False] * len(rows)))
    assert seen[-1].code == "history_unavailable" and "could not be recorded" in seen[-1].message


def test_a_recorded_stream_ends_normally() -> None:
    seen, tally = run_stream(lambda rows: FakeResponse(value=[True] * len(rows)))
    assert not any(isinstance(e, ApiError) for e in seen) and tally.error is None
