"""Issue 8's reproducers: each once answered 500/503; each is a clear 4xx now (or a 200 where
the input was a normal request), in the shape of the door it came in by."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import TINY_ID

DECODER = "pioneer-test/llama-tiny-test"
EXTRACT = {"model_id": TINY_ID, "text": "Tim Cook works for Apple.", "schema": ["person"]}
CHAT = {"model": DECODER, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
GOOD_BODIES: dict[str, dict[str, Any]] = {
    "/inference": EXTRACT,
    "/v1/chat/completions": CHAT,
    "/v1/completions": {"model": DECODER, "prompt": "hi", "max_tokens": 2},
    "/v1/responses": {"model": DECODER, "input": "hi", "max_output_tokens": 2},
    "/v1/messages": {**CHAT, "max_tokens": 2},
}


def shape_of(path: str) -> str:
    if path.startswith("/v1/messages"):
        return "anthropic"
    return "openai" if path.startswith("/v1/") else "native"


def error_text(path: str, response: httpx.Response) -> str:
    """The message, asserting the body is that door's error shape."""
    body = response.json()
    if shape_of(path) == "native":
        return str(body["detail"])
    if shape_of(path) == "openai":
        assert {"message", "type", "param", "code"} <= set(body["error"]), body
        return body["error"]["message"]
    assert body["type"] == "error" and {"type", "message"} <= set(body["error"]), body
    return body["error"]["message"]


def post_raw(client: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


@pytest.mark.parametrize("path", [*GOOD_BODIES, "/inferences/some-id/feedback"])
def test_deeply_nested_json_is_a_400(client: httpx.Client, path: str) -> None:
    """Reproducer 1: `[[[[...]]]]` 1,000 deep escaped the body reader as a RecursionError."""
    for raw in (b"[" * 1000 + b"]" * 1000, b'{"text": ' + b"[" * 100 + b"]" * 100 + b"}"):
        response = post_raw(client, path, raw)
        assert response.status_code == 400, response.text
        assert "nested" in error_text(path, response)


def test_text_longer_than_the_window_is_extracted_in_windows(client: httpx.Client) -> None:
    """Reproducer 2: `"word " * 2000` to the encoder was a 500 (RuntimeError). The tiny
    encoder has 512 positions; this text is ~10,000 tokens."""
    text = "Tim Cook works for Apple in Cupertino. " * 260
    body = {**EXTRACT, "text": text, "schema": ["person", "city"], "threshold": 0.0}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    spans = [span for found in response.json()["result"]["entities"].values() for span in found]
    assert max(span["end"] for span in spans) > len(text) // 2  # offsets into the whole text
    for span in spans:
        assert text[span["start"] : span["end"]] == span["text"]
    words = client.post("/inference", json={**EXTRACT, "text": "word " * 2000})
    assert words.status_code == 200, words.text


def test_long_text_through_chat_is_extracted_too(client: httpx.Client) -> None:
    text = "Tim Cook works for Apple. " * 300
    body = {
        "model": TINY_ID,
        "messages": [{"role": "user", "content": text}],
        "schema": ["person"],
        "threshold": 0.0,
    }
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text


def test_a_schema_that_fills_the_window_is_a_400(client: httpx.Client) -> None:
    label = "very long label " * 200
    for path, body in (
        ("/inference", {**EXTRACT, "schema": [label]}),
        (
            "/v1/chat/completions",
            {"model": TINY_ID, "messages": [{"role": "user", "content": "x"}], "schema": [label]},
        ),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 400, response.text
        assert "schema alone takes" in error_text(path, response)


SURROGATE_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("/inference", {**EXTRACT, "text": "Tim \ud800 Cook"}),
    ("/inference", {**EXTRACT, "schema": ["per\udc00son"]}),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "a\ud800"}]}),
    ("/v1/chat/completions", {**CHAT, "stop": ["\ud800"]}),
    ("/v1/completions", {"model": DECODER, "prompt": "\ud800", "max_tokens": 2}),
    ("/v1/responses", {"model": DECODER, "input": "x\udfff"}),
    ("/v1/messages", {**CHAT, "messages": [{"role": "user", "content": "\ud800"}]}),
]


@pytest.mark.parametrize("path,body", SURROGATE_FIELDS)
def test_lone_surrogates_are_a_400_on_every_door(
    client: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    """Reproducer 3: lone surrogates were 500s (IndexError, TypeError, EngineGenerateError).
    Sent both ways Python's json accepts: the escape, and the raw (invalid UTF-8) bytes."""
    escaped = json.dumps(body).encode()  # "\\ud800" as an escape
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")  # ED A0 80
    assert escaped != raw
    for content in (escaped, raw):
        response = post_raw(client, path, content)
        assert response.status_code == 400, response.text
        message = error_text(path, response)
        assert "surrogate" in message or "UTF-8" in message


def test_a_lone_surrogate_in_a_correction_is_a_400(client: httpx.Client) -> None:
    created = client.post("/inference", json=EXTRACT)
    inference_id = created.json()["inference_id"]
    path = f"/inferences/{inference_id}/feedback"
    body = {"verdict": "incorrect", "corrected_output": {"person": ["\ud800"]}}
    response = post_raw(client, path, json.dumps(body).encode())
    assert response.status_code == 400, response.text
    assert "surrogate" in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "9999-12-31T23:59:59-14:00"},
        {"until": "0001-01-01T00:00:00+14:00"},
        {"offset": str(2**63)},
    ],
)
def test_history_filters_out_of_range_are_422(client: httpx.Client, query: dict) -> None:
    """Reproducer 5: the UTC conversion overflowed (500); a huge offset reached DuckDB (503)."""
    response = client.get("/inferences", params=query)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", next(iter(query))]


@pytest.mark.parametrize(
    "path,body,param",
    [
        ("/v1/messages", {**CHAT, "top_k": 10**30}, "top_k"),
        ("/v1/chat/completions", {**CHAT, "seed": -(2**63) - 1}, "seed"),
        ("/v1/chat/completions", {**CHAT, "seed": 2**64}, "seed"),
    ],
)
def test_unbounded_integers_are_a_400(
    client: httpx.Client, path: str, body: dict, param: str
) -> None:
    """Reproducer 6: these reached vLLM and came back as 500 EngineGenerateError."""
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert param in error_text(path, response)


def test_in_range_extremes_run(client: httpx.Client) -> None:
    """The largest accepted values are served (top_k past the vocabulary means 'all')."""
    for path, body in (
        ("/v1/messages", {**CHAT, "top_k": 2**31 - 1}),
        ("/v1/chat/completions", {**CHAT, "seed": 2**63 - 1}),
        ("/v1/chat/completions", {**CHAT, "seed": -(2**63)}),
    ):
        response = client.post(path, json=body)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path,body",
    [
        ("/inference", {**EXTRACT, "model_id": "m" * 60_000}),
        ("/v1/chat/completions", {**CHAT, "model": "m" * 60_000}),
        ("/v1/messages", {**CHAT, "model": "m" * 60_000}),
        ("/inference", {**EXTRACT, "schema": {"structures": {"k" * 60_000: {"fields": []}}}}),
    ],
)
def test_errors_do_not_echo_their_input_whole(client: httpx.Client, path: str, body: dict) -> None:
    """Reproducer 7: a 999,000-character model id came back in a 999,223-byte 404."""
    response = client.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert len(response.content) < 2048, len(response.content)
    error_text(path, response)


def test_many_validation_errors_are_listed_in_bounded_size(client: httpx.Client) -> None:
    response = client.post("/inference", json={**EXTRACT, "text": [1] * 5000})
    assert response.status_code == 422
    assert len(response.content) < 4096
    assert "more errors" in response.text
