"""Every returned span is the client's text: 0 <= start < end <= len(text) and
text[start:end] == span["text"], for any unicode (randomized, fixed seed). gliner2 appends a
"." to a text without final punctuation and used to return spans on it, outside the text."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx

from tests.conftest import TINY_ID

PIECES = [
    "Tim", "Cook", "Paris", "Apple", "1891", "x", ".", "!", "?", "...", "\u2014",
    "\U0001f600", "\U0001f469\u200d\U0001f469\u200d\U0001f467", "e\u0301", "\u65e5\u672c\u8a9e",
    "\u3002", "\u3001", "\u300c\u5f15\u7528\u300d", "\u05e9\u05dc\u05d5\u05dd",
    "\u0645\u0631\u062d\u0628\u0627", "\u200b", "\u200d", "\ufeff", "\t", "\n", "\u00a0",
    "\u0130stanbul", "\u00df", "\ufb01", "\u216b", "\u01c5", "\u03a3\u0391\u03a3",
]  # fmt: skip
SCHEMA = {
    "entities": {"person": "", "city": ""},
    "structures": {"p": {"fields": [{"name": "name", "dtype": "str"}, {"name": "tags"}]}},
    "relations": ["works for"],
}


def random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    while len(texts) < count:
        words = [rng.choice(PIECES) + rng.choice(["", " ", " ", "\n"]) for _ in range(12)]
        text = "".join(words[: rng.randint(1, 12)])
        if text.strip():
            texts.append(text)
    return texts


def spans(value: Any) -> Iterator[dict]:
    if isinstance(value, dict):
        if {"text", "start", "end"} <= value.keys():
            yield value
        for item in value.values():
            yield from spans(item)
    elif isinstance(value, list):
        for item in value:
            yield from spans(item)


def test_every_span_is_the_clients_text(client: httpx.Client) -> None:
    texts = [*random_texts(seed=8, count=63), "Tim Cook was born in 1891. \u65e5\u672c\u8a9e\u3002"]
    body = {"model_id": TINY_ID, "text": texts, "schema": SCHEMA, "threshold": 0.0}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    checked = 0
    for text, result in zip(texts, response.json()["result"], strict=True):
        for span in spans(result):
            assert 0 <= span["start"] < span["end"] <= len(text), (text, span)
            assert text[span["start"] : span["end"]] == span["text"], (text, span)
            checked += 1
    assert checked > 500  # threshold 0 on a random tiny model: spans everywhere


def test_without_offsets_span_texts_are_still_the_clients(client: httpx.Client) -> None:
    texts = random_texts(seed=9, count=32)
    body = {
        "model_id": TINY_ID,
        "text": texts,
        "schema": {"entities": ["person", "city"]},
        "threshold": 0.0,
        "include_spans": False,
        "include_confidence": False,
    }
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    for text, result in zip(texts, response.json()["result"], strict=True):
        for found in result["entities"].values():
            assert all(isinstance(item, str) and item and item in text for item in found)
