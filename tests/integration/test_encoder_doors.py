"""GLiNER2 through the OpenAI and Anthropic doors: the same extraction as POST /inference."""

from __future__ import annotations

import json

import anthropic
import httpx
import jsonschema
import openai
import pytest

from tests.conftest import TINY_ID

TEXT = "Tim Cook works for Apple in Cupertino."
SCHEMA = {"entities": ["person", "organization", "location"]}
EXTRA = {"schema": SCHEMA, "threshold": 0.3}


def test_four_doors_give_the_same_extraction(
    client: httpx.Client, sdk: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    native = client.post(
        "/inference", json={"model_id": TINY_ID, "text": TEXT, "schema": SCHEMA, "threshold": 0.3}
    ).json()
    chat = sdk.chat.completions.create(
        model=TINY_ID, messages=[{"role": "user", "content": TEXT}], extra_body=EXTRA
    )
    response = sdk.responses.create(model=TINY_ID, input=TEXT, extra_body=EXTRA)
    message = claude.messages.create(
        model=TINY_ID, max_tokens=64, messages=[{"role": "user", "content": TEXT}], extra_body=EXTRA
    )
    results = [
        json.loads(chat.choices[0].message.content),
        json.loads(response.output_text),
        json.loads(message.content[0].text),
    ]
    assert results == [native["result"]] * 3
    assert chat.usage.prompt_tokens == native["token_usage"] and chat.usage.completion_tokens == 0
    assert message.usage.input_tokens == native["token_usage"]
    ids = {
        "native": native["inference_id"],
        "openai.chat": chat.model_extra["x_pioneer"]["inference_id"],
        "openai.responses": response.model_extra["x_pioneer"]["inference_id"],
        "anthropic.messages": message.model_extra["x_pioneer"]["inference_id"],
    }
    for fmt, inference_id in ids.items():
        record = client.get(f"/inferences/{inference_id}").json()
        assert record["format"] == fmt and record["task"] == "extract_entities"
        assert record["output"] == native["result"]


def test_completions_and_streams_on_an_encoder(
    sdk: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    unary = json.loads(
        sdk.completions.create(model=TINY_ID, prompt=TEXT, extra_body=EXTRA).choices[0].text
    )
    chunks = list(
        sdk.chat.completions.create(
            model=TINY_ID,
            messages=[{"role": "user", "content": TEXT}],
            stream=True,
            extra_body=EXTRA,
        )
    )
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) == 1 and json.loads(deltas[0]) == unary
    with claude.messages.stream(
        model=TINY_ID, max_tokens=64, messages=[{"role": "user", "content": TEXT}], extra_body=EXTRA
    ) as stream:
        assert json.loads("".join(stream.text_stream)) == unary
    events = list(sdk.responses.create(model=TINY_ID, input=TEXT, stream=True, extra_body=EXTRA))
    assert json.loads(events[-1].response.output_text) == unary


def test_response_format_json_schema_validates(sdk: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "person": {"type": "string", "description": "who"},
            "company": {"type": "string"},
            "places": {"type": "array", "items": {"type": "string"}},
            "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
            "employees": {"type": "integer"},
            "public": {"type": "boolean"},
        },
        "required": ["person", "company", "places", "sentiment"],
        "additionalProperties": False,
    }
    answer = sdk.chat.completions.create(
        model=TINY_ID,
        messages=[{"role": "user", "content": TEXT}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        extra_body={"threshold": 0.3},
    )
    payload = json.loads(answer.choices[0].message.content)
    jsonschema.validate(payload, schema)
    assert set(schema["required"]) <= set(payload)


def test_encoder_refusals(sdk: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": TEXT}]
    with pytest.raises(openai.BadRequestError, match="schema"):
        sdk.chat.completions.create(model=TINY_ID, messages=messages)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        sdk.chat.completions.create(
            model=TINY_ID, messages=messages, temperature=0.5, extra_body=EXTRA
        )
    with pytest.raises(anthropic.BadRequestError, match="stop_sequences"):
        claude.messages.create(
            model=TINY_ID, max_tokens=5, messages=messages, stop_sequences=["x"], extra_body=EXTRA
        )
    with pytest.raises(openai.BadRequestError, match="classification"):
        bad = {"schema": {"classifications": [{"task": "t", "labels": ["only"]}]}}
        sdk.chat.completions.create(model=TINY_ID, messages=messages, extra_body=bad)
    with pytest.raises(openai.BadRequestError, match="LLM"):
        sdk.chat.completions.create(
            model="pioneer-test/llama-tiny-test", messages=messages, extra_body=EXTRA
        )


def test_store_false_on_an_encoder(sdk: openai.OpenAI, client: httpx.Client) -> None:
    answer = sdk.chat.completions.create(
        model=TINY_ID,
        messages=[{"role": "user", "content": TEXT}],
        extra_body={**EXTRA, "store": False},
    )
    inference_id = answer.model_extra["x_pioneer"]["inference_id"]
    assert client.get(f"/inferences/{inference_id}").status_code == 404
