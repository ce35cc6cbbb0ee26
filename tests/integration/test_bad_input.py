"""Every kind of bad input gets a clear 4xx `{"detail": ...}`: never a 500, never a dead replica."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TINY_ID

GOOD: dict[str, Any] = {
    "model_id": TINY_ID,
    "text": "Tim Cook works for Apple.",
    "schema": ["person"],
}


def with_(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {key: value for key, value in body.items() if value is not ...}


CASES: dict[str, tuple[Any, str]] = {
    # wrong types
    "text is a number": (with_(text=5), "text"),
    "text list holds a number": (with_(text=["ok", 3]), "text"),
    "threshold is a string": (with_(threshold="0.5"), "threshold"),
    "include_spans is a string": (with_(include_spans="yes"), "include_spans"),
    "model_id is a number": (with_(model_id=7), "model_id"),
    "schema is a string": (with_(schema="person"), "schema"),
    "store is a string": (with_(store="no"), "store"),
    "body is a list": ([GOOD], "body"),
    # missing or empty
    "model_id missing": (with_(model_id=...), "model_id"),
    "text missing": (with_(text=...), "text"),
    "schema missing": (with_(schema=...), "schema"),
    "empty model_id": (with_(model_id=""), "model_id"),
    "empty text": (with_(text=""), "text"),
    "blank text": (with_(text="   "), "text"),
    "empty text list": (with_(text=[]), "text"),
    "empty item in text list": (with_(text=["fine", ""]), "text"),
    "empty schema dict": (with_(schema={}), "schema"),
    "empty flat schema": (with_(schema=[]), "schema"),
    "schema with only empty sections": (with_(schema={"entities": []}), "schema"),
    # unknown keys
    "unknown schema key": (with_(schema={"entities": ["a"], "labels": ["b"]}), "labels"),
    "unknown classification key": (
        with_(schema={"classifications": [{"task": "t", "labels": ["a", "b"], "x": 1}]}),
        "x",
    ),
    "unknown field key": (
        with_(schema={"structures": {"s": {"fields": [{"name": "f", "kind": "str"}]}}}),
        "kind",
    ),
    "unknown top-level field": (with_(treshold=0.3), "treshold"),
    # ranges
    "threshold below 0": (with_(threshold=-0.1), "threshold"),
    "threshold above 1": (with_(threshold=1.5), "threshold"),
    "cls_threshold above 1": (
        with_(
            schema={"classifications": [{"task": "t", "labels": ["a", "b"], "cls_threshold": 2}]}
        ),
        "cls_threshold",
    ),
    # duplicates and label counts
    "duplicate entity labels": (with_(schema={"entities": ["a", "a"]}), "duplicate"),
    "duplicate entity objects": (
        with_(schema={"entities": [{"name": "a"}, {"name": "a"}]}),
        "duplicate",
    ),
    "duplicate flat labels": (with_(schema=["a", "a"]), "duplicate"),
    "duplicate classification labels": (
        with_(schema={"classifications": [{"task": "t", "labels": ["a", "a", "b"]}]}),
        "duplicate",
    ),
    "duplicate classification tasks": (
        with_(
            schema={
                "classifications": [
                    {"task": "t", "labels": ["a", "b"]},
                    {"task": "t", "labels": ["c", "d"]},
                ]
            }
        ),
        "duplicate",
    ),
    "duplicate relations": (with_(schema={"relations": ["r", {"name": "r"}]}), "duplicate"),
    "duplicate structure fields": (
        with_(schema={"structures": {"s": {"fields": [{"name": "f"}, {"name": "f"}]}}}),
        "duplicate",
    ),
    "classification with one label": (
        with_(schema={"classifications": [{"task": "t", "labels": ["only"]}]}),
        "at least 2 labels",
    ),
    "structure without fields": (with_(schema={"structures": {"s": {"fields": []}}}), "fields"),
    "field dtype unknown": (
        with_(schema={"structures": {"s": {"fields": [{"name": "f", "dtype": "int"}]}}}),
        "dtype",
    ),
    "too many texts": (with_(text=["a text"] * 65), "at most 64"),
}


@pytest.mark.parametrize("body,mentions", CASES.values(), ids=CASES.keys())
def test_bad_body_is_a_clear_4xx(client: httpx.Client, body: Any, mentions: str) -> None:
    response = client.post("/inference", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert mentions in str(detail), detail
    if isinstance(detail, list):
        assert all({"loc", "msg", "type"} <= set(item) for item in detail)


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/inference",
        content=b'{"model_id": "x", "text": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_non_json_body_is_400(client: httpx.Client) -> None:
    response = client.post("/inference", content=b"model_id=x&text=y")
    assert response.status_code == 400


def test_declared_oversize_body_is_413(client: httpx.Client) -> None:
    response = client.post("/inference", json=with_(text="word " * 20_000))
    assert response.status_code == 413
    assert "65536" in response.json()["detail"]


def test_streamed_oversize_body_is_413(client: httpx.Client) -> None:
    """No Content-Length (chunked): the limit holds on the bytes that arrive."""

    def chunks() -> Any:
        yield b'{"model_id": "x", "text": "'
        for _ in range(100):
            yield b"a" * 1024
        yield b'", "schema": ["a"]}'

    response = client.post(
        "/inference", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_server_is_healthy_after_bad_input(client: httpx.Client) -> None:
    for body in [case[0] for case in CASES.values()]:
        assert client.post("/inference", json=body).status_code < 500
    assert client.get("/health").status_code == 200
    assert client.post("/inference", json=GOOD).status_code == 200
