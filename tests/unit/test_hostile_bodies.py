"""The body reader, bounded error messages and the proxy's JSON errors, without a server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.api.json_body import MAX_DEPTH, parse_json_body
from app.protocol import MAX_MESSAGE_CHARS, ApiError, ApiException, clip, quoted
from app.proxy_errors import JsonProxyErrors


def refused(raw: bytes) -> str:
    with pytest.raises(ApiException) as caught:
        parse_json_body(raw)
    assert caught.value.error.status == 400
    return caught.value.error.message


@pytest.mark.parametrize(
    "raw,mentions",
    [
        (b"[" * 5000 + b"]" * 5000, "nested"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e999}', "too large"),
        (b'{"text": "\\ud800"}', "surrogate"),
        (b'{"\\udc00": 1}', "surrogate"),
        (b'{"text": "\xed\xa0\x80"}', "UTF-8"),
        (b'{"text": "\xff"}', "UTF-8"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"text": "unterminated', "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_hostile_bodies_are_a_clear_400(raw: bytes, mentions: str) -> None:
    message = refused(raw)
    assert mentions in message
    assert len(message) < 400


def test_the_path_of_a_bad_string_is_named() -> None:
    message = refused(b'{"messages": [{"role": "user", "content": "ok \\ud800"}]}')
    assert "body.messages[0].content" in message


def test_valid_bodies_pass_unchanged() -> None:
    body = {"text": "emoji \U0001f600 and \u00e9", "n": [1, 2.5, None, True], "nested": [[[1]]]}
    assert parse_json_body(json.dumps(body).encode()) == body
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json_body(deep.encode()) is not None


def test_client_values_in_messages_are_bounded_and_encodable() -> None:
    assert len(clip("x" * 10_000)) < 150
    assert clip("a\ud800b") == "a\\ud800b"
    assert quoted("m" * 999_000).startswith("'mmm") and len(quoted("m" * 999_000)) < 150
    assert len(ApiError(404, "x", "y" * 100_000).message) <= MAX_MESSAGE_CHARS + 40


def _run_proxy(app: Any, path: str = "/v1/chat/completions") -> tuple[int, dict, dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": [], "method": "POST"}
    asyncio.run(JsonProxyErrors(app)(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body)


def test_a_replica_lost_before_answering_is_a_json_503() -> None:
    async def proxy_that_lost_its_replica(scope: Any, receive: Any, send: Any) -> None:
        return None  # what Serve's proxy does on RayActorError: sends nothing

    status, headers, body = _run_proxy(proxy_that_lost_its_replica)
    assert status == 503 and body["error"]["code"] == "replica_lost"
    assert headers["retry-after"] == "1"
    status, _, body = _run_proxy(proxy_that_lost_its_replica, "/inference")
    assert status == 503 and "stopped" in body["detail"]


def test_the_proxys_plain_text_errors_become_json() -> None:
    async def proxy_timeout(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 408, "headers": headers})
        await send({"type": "http.response.body", "body": b"Request abc timed out after 5s."})

    status, _, body = _run_proxy(proxy_timeout, "/v1/messages")
    assert status == 408 and body["type"] == "error"
    assert "timed out" in body["error"]["message"]


def test_json_answers_pass_through_untouched() -> None:
    async def ingress(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"detail": "nope"}'})

    assert _run_proxy(ingress, "/inference")[2] == {"detail": "nope"}
