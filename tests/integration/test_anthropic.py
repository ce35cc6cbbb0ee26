"""The Anthropic-compatible door, driven by the official `anthropic` SDK, on real vLLM."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.integration.conftest import API_KEY
from tests.integration.test_openai import DECODER

USER = [{"role": "user", "content": "hello world"}]
# This SDK has no sampling arguments any more; the server still takes them from the body.
GREEDY = {"temperature": 0.0}


def test_messages_create(claude: anthropic.Anthropic, client: httpx.Client) -> None:
    message = claude.messages.create(
        model=DECODER,
        max_tokens=12,
        system="You answer briefly.",
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]},
        ],
        extra_body=GREEDY,
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == DECODER
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in {"end_turn", "max_tokens"}
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    inference_id = message.model_extra["x_pioneer"]["inference_id"]
    record = client.get(f"/inferences/{inference_id}").json()
    assert record["format"] == "anthropic.messages"
    assert [m["role"] for m in json.loads(record["input"])] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


def test_max_tokens_and_stop_sequence_reasons(claude: anthropic.Anthropic) -> None:
    long = claude.messages.create(model=DECODER, max_tokens=24, messages=USER, extra_body=GREEDY)
    text = long.content[0].text
    short = claude.messages.create(model=DECODER, max_tokens=2, messages=USER, extra_body=GREEDY)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2
    stop = text[4:7]
    assert stop.strip(), f"greedy text too short to pick a stop sequence: {text!r}"
    stopped = claude.messages.create(
        model=DECODER, max_tokens=24, messages=USER, stop_sequences=[stop], extra_body=GREEDY
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == stop
    assert text.startswith(stopped.content[0].text) and stop not in stopped.content[0].text


def test_messages_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=DECODER, max_tokens=12, messages=USER, extra_body=GREEDY
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    unary = claude.messages.create(model=DECODER, max_tokens=12, messages=USER, extra_body=GREEDY)
    assert "".join(pieces) == final.content[0].text == unary.content[0].text
    assert final.usage.output_tokens == unary.usage.output_tokens


def test_raw_event_order(server: str) -> None:
    body = {"model": DECODER, "max_tokens": 6, "messages": USER, "stream": True}
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=server, timeout=60) as http:
        text = http.post("/v1/messages", json=body, headers=headers).text
    kinds = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    deltas = [k for k in kinds if k == "content_block_delta"]
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        *deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert deltas


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model=DECODER, messages=USER, system="Be brief.")
    created = claude.messages.create(model=DECODER, max_tokens=1, messages=USER, system="Be brief.")
    assert counted.input_tokens == created.usage.input_tokens > 0


def test_errors_as_sdk_exceptions(claude: anthropic.Anthropic, server: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nobody/nothing", max_tokens=5, messages=USER)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(
            model=DECODER, max_tokens=5, messages=USER, extra_body={"temperature": 3.0}
        )
    assert bad.value.body["type"] == "error"
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model=DECODER, max_tokens=0, messages=USER)
    with pytest.raises(anthropic.AuthenticationError):
        stranger = anthropic.Anthropic(base_url=server, api_key="wrong", max_retries=0)
        stranger.messages.create(model=DECODER, max_tokens=5, messages=USER)


def test_store_false_via_extra_body(claude: anthropic.Anthropic, client: httpx.Client) -> None:
    message = claude.messages.create(
        model=DECODER, max_tokens=4, messages=USER, extra_body={"store": False}
    )
    inference_id = message.model_extra["x_pioneer"]["inference_id"]
    assert client.get(f"/inferences/{inference_id}").status_code == 404


def test_pioneer_base_url_with_v1_also_works(server: str) -> None:
    client = anthropic.Anthropic(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)
    assert client.messages.create(model=DECODER, max_tokens=3, messages=USER).content
