"""The gateway when the Recorder fails at the end of a stream (found by bench/chaos.py: the
client got a 200, its tokens, then a cut connection with no final event). Fake handles stand
in for Ray Serve's here; the same path runs for real in bench/chaos.py."""

from __future__ import annotations

import asyncio
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
from tests.unit.fakes import FakeHandle, FakeResponse

MODEL = ResolvedModel("m", "m", "decoder", "vllm", "m", "m")


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


def test_callers_sharing_a_failed_encoder_call_each_get_their_own_inference_id() -> None:
    """Concurrent extractions travel as one encoder call; when it fails, the one failure is
    shared by its callers, and each must still name its own recorded inference."""
    encoder_model = ResolvedModel("e", "e", "encoder", "gliner2", "e", "e")
    recorded: list[str] = []

    def record_many(entries: list) -> FakeResponse:
        recorded.extend(billing["id"] for billing, _ in entries)
        return FakeResponse(value=[True] * len(entries))

    encoder = FakeHandle(extract_many=lambda calls: FakeResponse(error=RuntimeError("died")))
    gateway = InferenceGateway(
        FakeHandle(), encoder, {}, FakeHandle(record_many=record_many), LimitsConfig()
    )
    requests = [
        InferenceRequest(model_id="e", task="extract", texts=["a"], schema={"entities": ["x"]})
        for _ in range(4)
    ]

    async def run() -> list[object]:
        return await asyncio.gather(
            *(gateway.extract(r, encoder_model) for r in requests), return_exceptions=True
        )

    outcomes = asyncio.run(run())
    assert [o.inference_id for o in outcomes] == [r.inference_id for r in requests]
    assert all(o.error.status == 503 for o in outcomes)
    assert sorted(recorded) == sorted(r.inference_id for r in requests)  # billed as failed
