"""DecoderDeployment in-process on the fake engine: streams, cancellation, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from app.config import DecoderConfig
from app.protocol import (
    ApiError,
    ChoiceFinished,
    GenerationCall,
    GenerationEvent,
    GenerationStarted,
    ResolvedModel,
    SamplingOptions,
    TokenDelta,
)
from deployments.decoder import DecoderDeployment
from tests.unit.fakes import FAKE_DECODER, FakeDecoderEngine, FakeHandle, FakeResponse

MODEL = ResolvedModel("llm", "llm", "decoder", "vllm", "llm", "LLM")
ADAPTED = ResolvedModel(
    "job_1", "llm", "decoder", "vllm", "job_1", "Job", adapter_dir="/adapters/job_1"
)

Scenario = Callable[[DecoderDeployment, FakeDecoderEngine], Awaitable[Any]]


def run(scenario: Scenario, resolver: Any = None) -> Any:
    async def main() -> Any:
        deployment = DecoderDeployment(DecoderConfig(engine=FAKE_DECODER), "/models/llm", resolver)
        engine = deployment._engine
        assert isinstance(engine, FakeDecoderEngine)
        return await scenario(deployment, engine)

    return asyncio.run(main())


def call(request_id: str = "req-1", model: ResolvedModel = MODEL) -> GenerationCall:
    messages = [{"role": "user", "content": "say hello"}]
    return GenerationCall(model, None, messages, SamplingOptions(), request_id)


async def drain(stream: AsyncIterator[list[GenerationEvent]]) -> list[list[GenerationEvent]]:
    return [batch async for batch in stream]


def test_a_stream_carries_every_engine_event_in_order() -> None:
    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        engine.token_delay_s = 0.001
        return await drain(deployment.generate(call(model=ADAPTED))), engine

    batches, engine = run(scenario)
    events = [event for batch in batches for event in batch]
    assert events == [
        GenerationStarted(3, "user: say hello"),
        TokenDelta(0, "Hello", 1),
        TokenDelta(0, " there", 1),
        TokenDelta(0, " friend", 1),
        ChoiceFinished(0, "stop"),
    ]
    assert all(batches)  # no empty item crosses the handle
    assert engine.generate_calls == [
        {"prompt": "user: say hello", "request_id": "req-1", "adapter_dir": "/adapters/job_1"}
    ]
    assert engine.finished == ["req-1"] and engine.aborted == []


def test_a_cancelled_stream_aborts_the_engine_request() -> None:
    """Ray Serve cancels the replica's task when the caller goes away (client disconnect,
    `.cancel()`): the engine's stream must be closed, and the request counted cancelled."""

    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        engine.token_delay_s = 30.0  # stalls after GenerationStarted: mid-generation
        received: list[list[GenerationEvent]] = []

        async def consume() -> None:
            async for batch in deployment.generate(call("req-cancel")):
                received.append(batch)

        task = asyncio.create_task(consume())
        while not received:
            await asyncio.sleep(0.001)
        assert engine.unfinished_requests() == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return received, engine, await deployment.stats()

    received, engine, stats = run(scenario)
    assert received == [[GenerationStarted(3, "user: say hello")]]
    assert engine.aborted == ["req-cancel"] and engine.finished == []
    assert stats == {"unfinished_requests": 0, "cancelled_request_ids": ["req-cancel"]}


def test_closing_the_stream_between_items_aborts_the_engine_request() -> None:
    """A consumer that stops taking items (closes the generator) stops the engine too."""

    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        engine.token_delay_s = 30.0
        async with aclosing(deployment.generate(call("req-closed"))) as stream:
            first = await anext(stream)
        # read at once: by the time the loop gets to finalize a forgotten generator, any
        # stream would be closed; this one must be closed by the close itself
        return first, list(engine.aborted), engine.unfinished_requests()

    first, aborted, unfinished = run(scenario)
    assert first == [GenerationStarted(3, "user: say hello")]
    assert aborted == ["req-closed"] and unfinished == 0


def test_an_engine_failure_ends_the_stream_with_an_error_and_the_replica_serves_on() -> None:
    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        engine.fail_after_tokens = 1
        failed = await drain(deployment.generate(call("req-fail")))
        engine.fail_after_tokens = None
        served = await drain(deployment.generate(call("req-next")))
        return failed, served

    failed, served = run(scenario)
    events = [event for batch in failed for event in batch]
    assert events[:2] == [GenerationStarted(3, "user: say hello"), TokenDelta(0, "Hello", 1)]
    assert isinstance(events[-1], ApiError) and events[-1].status == 500
    assert "EngineFailure" in events[-1].message and len(events) == 3
    assert [event for batch in served for event in batch][-1] == ChoiceFinished(0, "stop")


def test_tokens_made_just_before_an_engine_failure_still_reach_the_caller() -> None:
    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        engine.fail_at_end = True
        return await drain(deployment.generate(call("req-fail")))

    events = [event for batch in run(scenario) for event in batch]
    assert [type(event) for event in events] == [
        GenerationStarted,
        TokenDelta,
        TokenDelta,
        TokenDelta,
        ApiError,
    ]


def test_a_prompt_the_engine_cannot_render_is_one_error_item() -> None:
    refusal = ApiError.invalid("no chat template", "messages", status=400)

    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        engine.refuse_render = refusal
        batches = await drain(deployment.generate(call()))
        counted = await deployment.count_tokens(None, [{"role": "user", "content": "x"}])
        return batches, counted, engine.generate_calls

    batches, counted, generate_calls = run(scenario)
    assert batches == [[refusal]] and counted == refusal and generate_calls == []


def test_count_tokens_counts_the_rendered_prompt() -> None:
    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        return await deployment.count_tokens(None, [{"role": "user", "content": "a b c"}])

    assert run(scenario) == 4  # "user: a b c"


def test_a_replica_reports_to_the_resolver_that_it_started() -> None:
    reports: list[str] = []

    def report_started(what: str) -> FakeResponse:
        reports.append(what)
        return FakeResponse(value=None)

    async def scenario(deployment: DecoderDeployment, engine: FakeDecoderEngine) -> Any:
        while not reports:
            await asyncio.sleep(0.001)
        deployment._reporting.cancel()
        return reports

    assert run(scenario, FakeHandle(report_started=report_started)) == ["decoder deployment"]
