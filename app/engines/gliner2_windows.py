"""Texts longer than the encoder's window: overlapping windows, merged back into one result.

A GLiNER2 input is the schema's tokens followed by the text's, and the encoder has a fixed
number of positions (512 for BERT and DeBERTa-v3). A text that does not fit is cut into
word-aligned windows that each fit beside the schema, overlapping so an entity on a cut is
whole in one of them; each window is extracted like any text and gliner2's own merge (the
one its SDK uses for `*_long`) puts spans back at offsets into the whole text and drops the
duplicates the overlaps produce. A schema whose labels alone fill the window is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gliner2.inference.chunking import TextChunk, iter_word_offsets, merge_chunk_results

from app.protocol import ApiError, ApiException

DEFAULT_WINDOW = 512
MIN_TEXT_TOKENS = 16  # a window with less room than this for text is not worth running
OVERLAP_FRACTION = 8  # windows share about 1/8 of their tokens with the next one
# A (sub)word token spans at least one character; SentencePiece may add a word-start piece.
MAX_TOKENS_PER_CHAR = 2


@dataclass(frozen=True)
class Windows:
    """How one text runs: whole (`chunks` None), or as these windows of it."""

    text: str
    chunks: list[TextChunk] | None = None

    @property
    def texts(self) -> list[str]:
        return [self.text] if self.chunks is None else [c.text for c in self.chunks]


def window_of(model: Any) -> int:
    """Positions the encoder can attend over, schema and text together."""
    return int(getattr(model.encoder.config, "max_position_embeddings", 0) or DEFAULT_WINDOW)


def input_tokens(model: Any, text: str, schema: Any) -> int:
    return len(model.processor.transform_record(text, schema).input_ids)


def schema_tokens(model: Any, schema: Any) -> int:
    """What the schema takes of the window (measured beside the shortest text)."""
    return input_tokens(model, "", schema)


def plan(model: Any, window: int, text: str, schema: Any, schema_size: int) -> Windows:
    """Whole when it fits; else windows. Raises a 400 when the schema leaves no room."""
    room = window - schema_size
    if room < MIN_TEXT_TOKENS:
        raise ApiException(
            ApiError.invalid(
                f"The schema alone takes {schema_size} of this model's {window} tokens, "
                f"leaving {max(room, 0)} for text: shorten its labels and descriptions, or "
                "split it over several requests.",
                "schema",
                status=400,
            )
        )
    if schema_size + MAX_TOKENS_PER_CHAR * len(text) <= window:
        return Windows(text)  # short enough that it cannot overflow: skip the tokenizer
    if input_tokens(model, text, schema) <= window:
        return Windows(text)
    return Windows(text, _windows(model, text, schema, room))


def _windows(model: Any, text: str, schema: Any, room: int) -> list[TextChunk]:
    budget = room - 2  # what the text's closing punctuation may add
    words = _pieces(model, text, budget)
    overlap = max(budget // OVERLAP_FRACTION, 1)
    chunks: list[TextChunk] = []
    start = 0
    while start < len(words):
        end, used = start, 0
        while end < len(words) and used + words[end][2] <= budget:
            used += words[end][2]
            end += 1
        end = max(end, start + 1)
        chunk = _chunk(text, words, start, end)
        if end - start > 1 and input_tokens(model, chunk.text, schema) > room:
            # the tokenizer counted differently in context: shrink this window and retry
            budget = max(budget * 3 // 4, 1)
            continue
        chunks.append(chunk)
        if end == len(words):
            break
        back, shared = end, 0
        while back - 1 > start and shared + words[back - 1][2] <= overlap:
            back -= 1
            shared += words[back][2]
        start = back
    return chunks


def _pieces(model: Any, text: str, budget: int) -> list[tuple[int, int, int]]:
    """(start, end, tokens) per word; a word too long for a window is cut into pieces."""
    words = [(start, end) for _, start, end in iter_word_offsets(text)]
    tokenizer = model.processor.tokenizer
    counts = tokenizer([text[s:e].lower() for s, e in words], add_special_tokens=False)["input_ids"]
    pieces = []
    for (start, end), ids in zip(words, counts, strict=True):
        if len(ids) <= budget:
            pieces.append((start, end, max(len(ids), 1)))
            continue
        step = max(budget // MAX_TOKENS_PER_CHAR, 1)
        for cut in range(start, end, step):
            pieces.append((cut, min(cut + step, end), budget))
    return pieces


def _chunk(text: str, words: list[tuple[int, int, int]], start: int, end: int) -> TextChunk:
    first, last = words[start][0], words[end - 1][1]
    return TextChunk(text[first:last], first, last, start, end)


def merge(windows: Windows, results: list[dict[str, Any]]) -> dict:
    """One result for the whole text, spans at offsets into it. Windows run with offsets and
    confidences on (the merge needs them), and the merged result keeps them too."""
    assert windows.chunks is not None
    return merge_chunk_results(
        windows.text, windows.chunks, results, include_confidence=True, include_spans=True
    )
