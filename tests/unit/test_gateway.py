"""The gateway (app/gateway.py) with fake handles: what it records and bills, and in what
order. Recorder faults at the end of a stream are in test_gateway_faults.py."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from typing import Any

import pytest

from app.gateway import InferenceGateway
from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ApiException,
    ChoiceFinished,
    ExtractionCall,
    ExtractionOutcome,
    GenerationStarted,
    InferenceRequest,
    ResolvedModel,
    TokenDelta,
)
from tests.unit.fakes import FakeHandle, FakeResponse

ENCODER_MODEL = ResolvedModel("enc", "enc", "encoder", "gliner2", "enc", "Encoder")
DECODER_MODEL = ResolvedModel("llm", "llm", "decoder", "vllm", "llm", "LLM")
STREAM = [
    [GenerationStarted(5, "prompt")],
    [TokenDelta(0, "Hel", 1), TokenDelta(0, "lo", 1)],
    [ChoiceFinished(0, "stop")],
]

Entry = tuple[dict[str, Any], dict[str, Any] | None]  # (billing row, history row or None)


class FakeAdmissions:
    """Admissions' two gateway-facing calls, appended to a shared log of what happened."""

    def __init__(self, log: list[str], refusal: ApiError | None = None) -> None:
        self.log, self.refusal = log, refusal
        self.bills: list[dict[str, Any]] = []

    async def admit_spend(self, project_id: str | None) -> None:
        self.log.append("admit")
        if self.refusal is not None:
            raise ApiException(self.refusal)

    def charged(self, bill: dict[str, Any]) -> None:
        self.log.append("charge")
        self.bills.append(bill)


class Setup:
    """A gateway whose downstream handles log every call to `log`."""

    def __init__(
        self,
        extraction: ExtractionOutcome | ApiError | None = None,
        stream: list[list[Any]] = STREAM,
        kept: bool = True,
        refusal: ApiError | None = None,
    ) -> None:
        self.log: list[str] = []
        self.entries: list[Entry] = []
        self.extraction = extraction or ExtractionOutcome([{"entities": {}}], 7, 1.0)
        self.kept = kept
        self.stream_response = FakeResponse(items=stream)
        self.encoder = FakeHandle(extract_many=self._extract_many)
        self.decoder = FakeHandle(generate=self._generate)
        self.recorder = FakeHandle(record_many=self._record_many)
        self.admissions = FakeAdmissions(self.log, refusal)
        self.gateway = InferenceGateway(
            FakeHandle(),
            self.encoder,
            {"llm": self.decoder},
            self.recorder,
            admissions=self.admissions,  # type: ignore[arg-type]
        )

    def _extract_many(self, calls: list[ExtractionCall]) -> FakeResponse:
        self.log.append("encoder")
        return FakeResponse(value=[self.extraction] * len(calls))

    def _generate(self, call: Any) -> FakeResponse:
        self.log.append("decoder")
        return self.stream_response

    def _record_many(self, entries: list[Entry]) -> FakeResponse:
        self.log.append("record")
        self.entries.extend(entries)
        return FakeResponse(value=[self.kept] * len(entries))

    def entry(self, request: InferenceRequest) -> Entry:
        """The request's one record: a second one would bill twice."""
        mine = [entry for entry in self.entries if entry[0]["id"] == request.inference_id]
        assert len(mine) == 1, f"{len(mine)} records for one inference"
        return mine[0]


def extraction_request(**fields: Any) -> InferenceRequest:
    defaults: dict[str, Any] = {
        "model_id": "enc",
        "task": "extract",
        "texts": ["Ann met Bob"],
        "schema": {"entities": ["person"]},
        "project_id": "proj",
    }
    return InferenceRequest(**{**defaults, **fields})


def generation_request(**fields: Any) -> InferenceRequest:
    messages = [{"role": "user", "content": "hi"}]
    return InferenceRequest(
        model_id="llm", task="generate", messages=messages, stream=True, project_id="proj", **fields
    )


def consume(setup: Setup, request: InferenceRequest, model: ResolvedModel = DECODER_MODEL) -> Any:
    tally = GenerationTally()

    async def run() -> list[Any]:
        return [event async for event in setup.gateway.generate(request, tally, model)]

    return asyncio.run(run()), tally


# ---- extraction ----------------------------------------------------------------------------


def test_an_extraction_is_run_recorded_once_then_charged() -> None:
    setup = Setup()
    request = extraction_request()
    result = asyncio.run(setup.gateway.extract(request, ENCODER_MODEL))
    assert result.results == [{"entities": {}}] and result.input_tokens == 7
    assert setup.log == ["admit", "encoder", "record", "charge"]
    billing, history = setup.entry(request)
    assert billing["status"] == "success" and billing["input_tokens"] == 7
    assert history is not None and json.loads(history["output"]) == {"entities": {}}
    assert setup.admissions.bills == [billing]  # the bill charged is the bill recorded
    assert setup.encoder.options_seen == [{"multiplexed_model_id": "enc"}]


def test_store_false_sends_the_bill_and_no_payload() -> None:
    setup = Setup()
    request = extraction_request(store=False)
    asyncio.run(setup.gateway.extract(request, ENCODER_MODEL))
    billing, history = setup.entry(request)
    assert history is None
    assert billing["input_tokens"] == 7 and "Ann met Bob" not in json.dumps(billing, default=str)


def test_a_failed_extraction_is_recorded_once_as_failed_and_raised_with_its_id() -> None:
    refusal = ApiError.invalid("schema rejected", "schema")
    setup = Setup(extraction=refusal)
    request = extraction_request()
    with pytest.raises(ApiException) as raised:
        asyncio.run(setup.gateway.extract(request, ENCODER_MODEL))
    assert raised.value.error == refusal and raised.value.inference_id == request.inference_id
    billing, history = setup.entry(request)
    assert billing["status"] == "failed" and billing["input_tokens"] == 0
    assert history is not None and history["error_message"] == "schema rejected"


def test_a_refused_project_runs_nothing_and_records_nothing() -> None:
    spent = ApiError(402, "insufficient_credits", "The project's credit budget is spent.")
    setup = Setup(refusal=spent)
    with pytest.raises(ApiException) as raised:
        asyncio.run(setup.gateway.extract(extraction_request(), ENCODER_MODEL))
    assert raised.value.error == spent
    assert setup.log == ["admit"] and setup.entries == []


def test_a_history_row_the_recorder_refuses_is_still_billed_and_the_result_withheld() -> None:
    setup = Setup(kept=False)
    with pytest.raises(ApiException) as raised:
        asyncio.run(setup.gateway.extract(extraction_request(), ENCODER_MODEL))
    assert raised.value.error.code == "history_unavailable"
    assert setup.log == ["admit", "encoder", "record", "charge"]


def test_concurrent_extractions_are_each_recorded_once() -> None:
    setup = Setup()
    requests = [extraction_request(texts=[f"text {i}"]) for i in range(5)]

    async def run() -> list[Any]:
        return await asyncio.gather(*(setup.gateway.extract(r, ENCODER_MODEL) for r in requests))

    asyncio.run(run())
    for request in requests:
        setup.entry(request)
    assert setup.log.count("charge") == 5


# ---- generation ----------------------------------------------------------------------------


def test_a_stream_is_recorded_once_at_its_end_with_its_tokens() -> None:
    setup = Setup()
    request = generation_request()
    events, tally = consume(setup, request)
    assert [type(e) for e in events] == [GenerationStarted, TokenDelta, TokenDelta, ChoiceFinished]
    assert setup.log == ["admit", "decoder", "record", "charge"]
    billing, history = setup.entry(request)
    assert (billing["input_tokens"], billing["output_tokens"]) == (5, 2)
    assert billing["status"] == "success"
    assert history is not None and json.loads(history["output"])["text"] == "Hello"


def test_a_stream_with_store_false_sends_no_payload() -> None:
    setup = Setup()
    request = generation_request(store=False)
    consume(setup, request)
    billing, history = setup.entry(request)
    assert history is None and billing["output_tokens"] == 2


def test_a_client_that_leaves_mid_stream_cancels_the_call_and_is_billed_for_what_it_got() -> None:
    setup = Setup()
    request = generation_request()
    tally = GenerationTally()

    async def leave_after_first_token() -> None:
        async with aclosing(setup.gateway.generate(request, tally, DECODER_MODEL)) as events:
            async for event in events:
                if isinstance(event, TokenDelta):
                    break

    asyncio.run(leave_after_first_token())
    assert setup.stream_response.cancelled  # reaches the replica: the engine aborts
    billing, history = setup.entry(request)
    # billed for the tokens it was handed: the second of that batch never reached it
    assert billing["status"] == "failed" and billing["output_tokens"] == 1
    assert history is not None and history["error_type"] == "timeout"  # client_disconnected
    assert setup.log.count("charge") == 1


def test_an_error_as_the_first_event_is_raised_recorded_once_and_the_call_cancelled() -> None:
    refused = ApiError.invalid("prompt too long", "messages", status=400)
    setup = Setup(stream=[[refused]])
    request = generation_request()
    with pytest.raises(ApiException) as raised:
        consume(setup, request)
    assert raised.value.error == refused and raised.value.inference_id == request.inference_id
    assert setup.stream_response.cancelled
    assert setup.entry(request)[0]["status"] == "failed"


@pytest.mark.parametrize(
    ("model", "status"),
    [
        (ENCODER_MODEL, 400),  # an encoder asked to generate
        (ResolvedModel("gone", "gone", "decoder", "vllm", "gone", "Gone"), 409),  # not deployed
    ],
)
def test_a_model_that_cannot_generate_here_is_refused_and_recorded_once(
    model: ResolvedModel, status: int
) -> None:
    setup = Setup()
    request = generation_request()
    with pytest.raises(ApiException) as raised:
        consume(setup, request, model)
    assert raised.value.error.status == status
    assert "decoder" not in setup.log
    assert setup.entry(request)[0]["status"] == "failed"


def test_a_failed_stream_is_billed_as_failed() -> None:
    died = [[GenerationStarted(5, "prompt")], [ApiError.internal("generation failed")]]
    setup = Setup(stream=died)
    request = generation_request()
    events, tally = consume(setup, request)
    assert isinstance(events[-1], ApiError) and tally.error == events[-1]
    billing, history = setup.entry(request)
    assert billing["status"] == "failed"
    assert history is not None and history["status"] == "failed"


def test_a_replica_lost_mid_stream_ends_it_with_a_503_that_says_when_to_retry() -> None:
    """Found on the two-node cluster: a decoder node lost mid-generation gave a 503 with no
    Retry-After, unlike every other 503 of a lost deployment."""
    setup = Setup(stream=[[GenerationStarted(5, "prompt")]])
    setup.stream_response.error = RuntimeError("ActorDiedError: the replica's node was lost")
    request = generation_request()
    events, tally = consume(setup, request)
    error = events[-1]
    assert isinstance(error, ApiError) and tally.error == error
    assert error.status == 503 and error.retry_after_s == setup.gateway.retry_after_s > 0
    assert setup.entry(request)[0]["status"] == "failed"
