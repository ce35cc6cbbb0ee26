"""EncoderDeployment in-process on the fake engine: batching, grouping and failure isolation.

`@serve.batch` runs as it does in a replica; Ray Serve's model multiplexing is replaced by
a local loader (it needs a live replica), and the replica context by a stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ray import serve

from app.config import EncoderConfig
from app.protocol import ApiError, ExtractionCall, ExtractionOutcome, ExtractOptions, ResolvedModel
from deployments.encoder import EncoderDeployment
from tests.unit.fakes import (
    FAKE_ENCODER,
    FakeEncoderEngine,
    LocalMultiplexer,
    fake_replica_context,
    reset_batch_queue,
)

MODEL = ResolvedModel("enc", "enc", "encoder", "gliner2", "enc", "Encoder")
OTHER_MODEL = ResolvedModel("job", "enc", "encoder", "gliner2", "job", "Job")
SCHEMA = {"entities": ["person"]}

Scenario = Callable[[EncoderDeployment, FakeEncoderEngine], Awaitable[Any]]


@pytest.fixture(autouse=True)
def replica(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "get_replica_context", fake_replica_context)
    reset_batch_queue(EncoderDeployment._batched)  # each test runs in a new event loop


def run(scenario: Scenario, **config: Any) -> Any:
    """Start a deployment on the fake engine in a fresh event loop and run `scenario`."""

    async def main() -> Any:
        deployment = object.__new__(EncoderDeployment)
        await deployment.__init__(EncoderConfig(engine=FAKE_ENCODER, **config), False)
        deployment._get_model = LocalMultiplexer(deployment._load)
        engine = deployment._engine
        assert isinstance(engine, FakeEncoderEngine)
        return await scenario(deployment, engine)

    return asyncio.run(main())


def call(*texts: str, model: ResolvedModel = MODEL, threshold: float = 0.5) -> ExtractionCall:
    return ExtractionCall(model, list(texts), SCHEMA, ExtractOptions(threshold))


def texts_of(outcome: ExtractionOutcome | ApiError) -> list[str]:
    assert isinstance(outcome, ExtractionOutcome), outcome
    return [result["text"] for result in outcome.results]


def test_concurrent_requests_share_one_engine_call_and_each_gets_its_own_results() -> None:
    calls = [call("a b", "c"), call("d"), call("e f g"), call("h")]

    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        outcomes = await asyncio.gather(*(deployment.extract(c) for c in calls))
        return outcomes, engine.calls, await deployment.stats()

    outcomes, engine_calls, stats = run(scenario, batch_wait_timeout_s=0.2)
    assert [texts_of(o) for o in outcomes] == [c.texts for c in calls]
    assert [o.input_tokens for o in outcomes] == [3, 1, 3, 1]  # each request's own count
    assert len(engine_calls) == 1
    assert engine_calls[0].texts == ["a b", "c", "d", "e f g", "h"]
    assert engine_calls[0].batch_size == 32  # the configured max_batch_size
    assert stats["batch_texts"] == [5] and stats["loaded_models"] == ["enc"]


def test_a_batch_is_split_by_model_and_options() -> None:
    """One engine call per (model, options) within a batch; answers still match callers."""
    calls = [call("a"), call("b", model=OTHER_MODEL), call("c", threshold=0.9), call("d")]

    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        outcomes = await asyncio.gather(*(deployment.extract(c) for c in calls))
        return outcomes, engine.calls

    outcomes, engine_calls = run(scenario, batch_wait_timeout_s=0.2)
    assert [texts_of(o) for o in outcomes] == [["a"], ["b"], ["c"], ["d"]]
    grouped = sorted((c.model_key, c.options.threshold, tuple(c.texts)) for c in engine_calls)
    assert grouped == [("enc", 0.5, ("a", "d")), ("enc", 0.9, ("c",)), ("job", 0.5, ("b",))]


def test_a_failing_request_is_retried_alone_and_its_neighbours_still_get_answers() -> None:
    calls = [call("fine one"), call("boom"), call("fine two")]

    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        engine.failing_texts = {"boom"}
        outcomes = await asyncio.gather(*(deployment.extract(c) for c in calls))
        return outcomes, engine.calls

    outcomes, engine_calls = run(scenario, batch_wait_timeout_s=0.2)
    assert texts_of(outcomes[0]) == ["fine one"] and texts_of(outcomes[2]) == ["fine two"]
    failed = outcomes[1]
    assert isinstance(failed, ApiError) and failed.status == 500
    assert "EngineFailure" in failed.message
    assert [c.texts for c in engine_calls] == [
        ["fine one", "boom", "fine two"],  # the batch, which fails
        ["fine one"],  # then each request alone
        ["boom"],
        ["fine two"],
    ]


def test_a_text_the_engine_refuses_fails_only_its_own_request() -> None:
    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        engine.refused_texts = {"too long"}
        return await asyncio.gather(
            deployment.extract(call("ok", "too long")), deployment.extract(call("fine"))
        )

    refused, fine = run(scenario, batch_wait_timeout_s=0.2)
    assert isinstance(refused, ApiError) and refused.status == 400
    assert texts_of(fine) == ["fine"]


def test_a_request_larger_than_a_batch_bypasses_the_queue() -> None:
    """More texts than max_batch_size: one engine call of its own, at once, while a small
    request sent just before it still waits for its batch to fill."""
    finished: list[str] = []

    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        async def extract(name: str, c: ExtractionCall) -> ExtractionOutcome | ApiError:
            outcome = await deployment.extract(c)
            finished.append(name)
            return outcome

        small = asyncio.ensure_future(extract("small", call("s")))
        large = asyncio.ensure_future(extract("large", call("x", "y", "z")))
        return await asyncio.gather(small, large), engine.calls, await deployment.stats()

    (small, large), engine_calls, stats = run(scenario, max_batch_size=2, batch_wait_timeout_s=0.3)
    assert texts_of(small) == ["s"] and texts_of(large) == ["x", "y", "z"]
    assert [c.texts for c in engine_calls] == [["x", "y", "z"], ["s"]]
    assert finished == ["large", "small"]
    assert stats["batch_texts"] == [3, 1]


def test_a_schema_the_engine_refuses_never_reaches_the_engine() -> None:
    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        bad = ExtractionCall(MODEL, ["a"], {"entities": []}, ExtractOptions())
        return await deployment.extract(bad), engine.calls

    outcome, engine_calls = run(scenario)
    assert isinstance(outcome, ApiError) and outcome.status == 422 and outcome.param == "schema"
    assert engine_calls == []


def test_a_model_that_cannot_load_is_a_409_and_others_still_serve() -> None:
    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        engine.unloadable = {"job"}
        return await asyncio.gather(
            deployment.extract(call("a", model=OTHER_MODEL)), deployment.extract(call("b"))
        )

    refused, served = run(scenario, batch_wait_timeout_s=0.05)
    assert isinstance(refused, ApiError) and refused.status == 409
    assert texts_of(served) == ["b"]


def test_extract_many_answers_in_the_order_asked() -> None:
    """The ingress's grouped call (app/grouping.py): outcomes line up with its calls."""
    calls = [call("one"), call("boom"), call("three")]

    async def scenario(deployment: EncoderDeployment, engine: FakeEncoderEngine) -> Any:
        engine.failing_texts = {"boom"}
        return await deployment.extract_many(calls)

    first, failed, third = run(scenario, batch_wait_timeout_s=0.05)
    assert texts_of(first) == ["one"] and texts_of(third) == ["three"]
    assert isinstance(failed, ApiError)
