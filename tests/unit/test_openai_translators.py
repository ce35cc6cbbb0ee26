"""OpenAI translators without a server: SSE framing, errors after a stream began."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ChoiceFinished,
    GenerationStarted,
    InferenceRequest,
    TokenDelta,
)
from app.translators import openai_format, openai_responses
from app.wire.openai_wire import ChatCompletionRequest, ResponsesRequest

REQUEST_ID = "6f1c0e8e-3b0a-4a57-9a43-1f0a3f1d2c11"


def events(*items: Any, tally: GenerationTally) -> AsyncIterator[Any]:
    async def gen() -> AsyncIterator[Any]:
        for item in items:
            tally.add(item)
            yield item

    return gen()


def collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    async def run() -> list[bytes]:
        return [chunk async for chunk in stream]

    return asyncio.run(run())


def chat_request() -> InferenceRequest:
    wire = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    request = openai_format.chat_to_internal(wire, project_id=None, api_key_id=None)
    request.inference_id = REQUEST_ID
    return request


def test_chat_stream_framing_and_final_chunk() -> None:
    tally = GenerationTally()
    tally.add(GenerationStarted(3, "p"))
    answer = openai_format.ChatAnswer(chat_request(), "m")
    source = events(
        TokenDelta(0, "Hel", 1), TokenDelta(0, "lo", 1), ChoiceFinished(0, "stop"), tally=tally
    )
    chunks = collect(answer.stream(source, tally, include_usage=True))
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
    assert chunks[-1] == b"data: [DONE]\n\n"
    payloads = [json.loads(c[6:]) for c in chunks[:-1]]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [p["choices"][0]["delta"].get("content") for p in payloads[1:3]] == ["Hel", "lo"]
    assert payloads[3]["choices"][0]["finish_reason"] == "stop"
    assert payloads[4]["choices"] == [] and payloads[4]["usage"]["total_tokens"] == 5
    assert payloads[4]["x_pioneer"]["inference_id"] == REQUEST_ID


def test_chat_error_after_start_is_an_event_then_done() -> None:
    tally = GenerationTally()
    answer = openai_format.ChatAnswer(chat_request(), "m")
    source = events(TokenDelta(0, "x", 1), ApiError.internal("engine died"), tally=tally)
    chunks = collect(answer.stream(source, tally, include_usage=False))
    assert chunks[-1] == b"data: [DONE]\n\n"
    error = json.loads(chunks[-2][6:])
    assert error["error"]["message"] == "engine died" and error["error"]["type"] == "server_error"


def test_responses_error_after_start() -> None:
    wire = ResponsesRequest(model="m", input="hi")
    request = openai_responses.to_internal(wire, None, project_id=None, api_key_id=None)
    request.inference_id = REQUEST_ID
    tally = GenerationTally()
    answer = openai_responses.ResponsesAnswer(request, wire)
    chunks = collect(answer.stream(events(ApiError.internal("boom"), tally=tally), tally))
    kinds = [c.split(b"\n")[0] for c in chunks]
    assert kinds[0] == b"event: response.created" and kinds[-1] == b"event: error"
    numbers = [json.loads(c.split(b"data: ")[1])["sequence_number"] for c in chunks]
    assert numbers == list(range(len(chunks)))


def test_previous_response_rebuilds_the_conversation() -> None:
    # as GET /inferences/{id} returns it: the conversation as JSON text (InferenceRecord.input)
    turns = [{"role": "system", "content": "old"}, {"role": "user", "content": "a"}]
    previous = {
        "input": json.dumps(turns),
        "metadata": {"input_kind": "messages"},
        "output": {"text": "b"},
    }
    wire = ResponsesRequest(model="m", input="c", instructions="new")
    request = openai_responses.to_internal(wire, previous, project_id=None, api_key_id=None)
    assert request.messages == [
        {"role": "system", "content": "new"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert openai_responses.inference_id_of(openai_responses.response_id(REQUEST_ID)) == REQUEST_ID


def test_chat_parameters_map_to_sampling() -> None:
    wire = ChatCompletionRequest(
        model="m",
        messages=[{"role": "developer", "content": [{"type": "text", "text": "be"}]}],
        max_tokens=5,
        max_completion_tokens=7,
        stop="END",
        logprobs=True,
        top_logprobs=3,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
    )
    request = openai_format.chat_to_internal(wire, project_id="p", api_key_id="k")
    assert request.messages == [{"role": "system", "content": "be"}]
    sampling = request.sampling
    assert sampling.max_tokens == 7 and sampling.stop == ("END",) and sampling.logprobs == 3
    assert sampling.json_schema == {"type": "object"} and not sampling.json_object


def test_without_include_usage_no_choiceless_chunk() -> None:
    tally = GenerationTally()
    answer = openai_format.ChatAnswer(chat_request(), "m")
    source = events(TokenDelta(0, "a", 1), ChoiceFinished(0, "length"), tally=tally)
    payloads = [json.loads(c[6:]) for c in collect(answer.stream(source, tally, False))[:-1]]
    assert all(p["choices"] for p in payloads)  # OpenAI clients index choices[0]
    assert payloads[-1]["x_pioneer"]["inference_id"] == REQUEST_ID
