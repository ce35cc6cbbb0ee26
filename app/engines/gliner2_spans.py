"""Spans that are the client's own text.

gliner2 appends "." to a text that does not end in sentence punctuation (its processor's
`_normalize_text`), and the model can then return a span that ends on that character, or is
only that character: `{"text": ".", "start": 73, "end": 74}` for a 73-character text. So the
engine asks gliner2 for full results (offsets and confidences on), fits every span back into
the text as sent (trimmed to it, or dropped if nothing of it is left), and only then shapes
the result by the client's include_* flags, with the library's own shaping (the one its
`*_long` methods use to give the same payload as the base API).
"""

from __future__ import annotations

from typing import Any

from gliner2.inference.chunking import _strip_span_metadata

from app.protocol import ExtractOptions

_DROP = object()


def _is_span(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and {"text", "start", "end"} <= value.keys()
        and isinstance(value["start"], int)
        and isinstance(value["end"], int)
    )


def fit(value: Any, text: str) -> Any:
    """`value` with each span inside `text` and `span["text"] == text[start:end]`."""
    fitted = _fit(value, text)
    return None if fitted is _DROP else fitted


def _fit(value: Any, text: str) -> Any:
    if _is_span(value):
        start, end = value["start"], min(value["end"], len(text))
        while end > start and text[end - 1].isspace():  # what trimming the "." left behind
            end -= 1
        if start < 0 or end <= start:
            return _DROP
        return {**value, "start": start, "end": end, "text": text[start:end]}
    if isinstance(value, list):
        return [item for item in (_fit(v, text) for v in value) if item is not _DROP]
    if isinstance(value, dict):
        fitted = {key: _fit(item, text) for key, item in value.items()}
        if any(item is _DROP for item in fitted.values()):
            if {"head", "tail"} <= fitted.keys():
                return _DROP  # a relation with one end gone is no relation
            fitted = {key: None if item is _DROP else item for key, item in fitted.items()}
        return fitted
    return value


def shape(result: dict[str, Any], options: ExtractOptions) -> dict[str, Any]:
    return _strip_span_metadata(result, options.include_confidence, options.include_spans)
