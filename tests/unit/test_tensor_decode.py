"""The tensor span decoder gives gliner2's own results, exactly.

Each case runs `batch_extract` on two loads of the same checkpoint, one with the tensor
decoder installed, and compares the outputs for equality (confidences included: the same
tensors are read, so they are equal, not merely close). The tiny test encoder has random
weights, so low thresholds give hundreds of overlapping candidates per text, and bfloat16
gives many tied scores: the cases where ranking and resolution can go wrong.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch
from gliner2 import GLiNER2, Schema
from gliner2.inference.candidate_decoder import finalize_spans
from gliner2.inference.schema import RegexValidator

from app.engines import gliner2_tensor_decode
from app.engines.gliner2_engine import GLiNER2Engine
from app.protocol import ExtractOptions, ResolvedModel
from tests.conftest import TINY_DIR

TEXTS = [
    "Tim Cook of Apple announced the iPhone 16 in Cupertino on Monday.",
    "Satya Nadella visited Paris and London; Microsoft bought a startup for $2 billion!",
    "Alice met Bob in Tokyo 🎉🇯🇵 at Nvidia, 日本語も少し。",
    "Zoë Ångström (e\u0301) worked for Société Générale\tin\nBerlin — really.",
    "שלום Mary Smith from Google; مرحبا\u200b Sundar Pichai\u200d joined OpenAI",
    "x",
    "   spaced   out   text   ",
    "Sundar Pichai of Google said the Pixel phone launch went well for the company and its "
    "customers in Seattle, New York, San Francisco and Boston, according to the report.",
]

SCHEMAS: dict[str, dict] = {
    "entity list": {"entities": ["person", "company", "location", "product"]},
    "entity descriptions": {
        "entities": {"person": "a human being", "company": "a business", "city": "a place"}
    },
    "entity options": {
        "entities": {
            "person": {"description": "a human", "dtype": "str", "threshold": 0.35},
            "company": {"dtype": "list", "threshold": 0.6},
            "location": "a place",
        }
    },
    "classification single": {
        "classifications": [{"task": "sentiment", "labels": ["positive", "negative", "neutral"]}]
    },
    "classification multi": {
        "classifications": [
            {
                "task": "topics",
                "labels": {"business": "money", "tech": "computers", "travel": "trips"},
                "multi_label": True,
                "cls_threshold": 0.3,
                "top_k": 2,
            }
        ]
    },
    "structure": {
        "structures": {
            "deal": {
                "fields": [
                    {"name": "buyer", "dtype": "str", "threshold": 0.3},
                    {"name": "target", "dtype": "list", "description": "what was bought"},
                    {"name": "kind", "dtype": "str", "choices": ["merger", "purchase"]},
                    {"name": "tags", "dtype": "list", "choices": ["tech", "finance"]},
                ]
            }
        }
    },
    "relations": {
        "relations": {"works_for": "employment", "located_in": {"threshold": 0.4}, "met": ""}
    },
    "combined": {
        "entities": ["person", "organization"],
        "classifications": [{"task": "tone", "labels": ["formal", "casual"]}],
        "structures": {"event": {"fields": [{"name": "who"}, {"name": "where", "dtype": "str"}]}},
        "relations": ["works_for"],
    },
    "entity attributes": {
        "entities": ["person", "company"],
        "entity_attributes": {
            "role": {"labels": ["executive", "engineer"], "applies_to": ["person"]},
            "size": {"labels": ["big", "small"], "multi_label": True, "threshold": 0.4},
        },
    },
}


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[GLiNER2, GLiNER2]]:
    """(gliner2 as shipped, the same checkpoint decoding as tensors) per dtype."""
    loaded = {}
    for dtype in (torch.float32, torch.bfloat16):
        library = GLiNER2.from_pretrained(str(TINY_DIR)).to(dtype).eval()
        tensor = GLiNER2.from_pretrained(str(TINY_DIR)).to(dtype).eval()
        assert gliner2_tensor_decode.install(tensor)
        loaded[str(dtype)] = (library, tensor)
    return loaded


def cases() -> Iterator[tuple]:
    for name in SCHEMAS:
        for dtype in ("torch.float32", "torch.bfloat16"):
            yield name, dtype


@pytest.mark.parametrize(("schema_name", "dtype"), list(cases()))
def test_batch_extract_is_gliner2s(models, schema_name: str, dtype: str) -> None:
    library, tensor = models[dtype]
    schema = Schema.from_dict(SCHEMAS[schema_name])
    flags = [(False, False), (True, False), (False, True), (True, True)]
    for threshold in (0.0, 0.3, 0.45):  # 0.45 rounds down in bfloat16
        for batch_size, (confidence, spans) in zip((1, 3, 8, 5), flags, strict=True):
            kwargs = dict(
                batch_size=batch_size,
                threshold=threshold,
                include_confidence=confidence,
                include_spans=spans,
            )
            expected = library.batch_extract(TEXTS, schema, **kwargs)
            assert tensor.batch_extract(TEXTS, schema, **kwargs) == expected, kwargs


def test_the_tensor_path_is_the_one_taken(models, monkeypatch) -> None:
    """No span row falls back to gliner2's per-row decoder for ordinary schemas."""
    library, tensor = models["torch.float32"]
    per_row_calls = []
    original = type(tensor)._find_spans
    monkeypatch.setattr(
        type(tensor), "_find_spans", lambda *a: per_row_calls.append(1) or original(*a)
    )
    result = tensor.batch_extract(
        TEXTS, Schema.from_dict(SCHEMAS["combined"]), batch_size=8, threshold=0.0
    )
    assert per_row_calls == []
    assert any(r["entities"]["person"] for r in result), "the tiny model finds spans at 0.0"


def test_validators_and_explicit_policies_match_too(models) -> None:
    """Validators filter before resolution, and explicit overlap policies use another
    resolver: those rows go gliner2's way, and the answer is still gliner2's."""
    library, tensor = models["torch.float32"]
    schema = Schema().entities(
        {"person": {"description": "a person"}, "money": {"description": "an amount"}}
    )
    schema._entity_metadata["money"]["validators"] = [RegexValidator(r"\$\d+.*")]
    for model_kwargs in ({}, {"overlap_policy": "flat"}, {"overlap_policy": "nested"}):
        kwargs = dict(batch_size=4, threshold=0.1, include_spans=True, **model_kwargs)
        assert tensor.batch_extract(TEXTS, schema, **kwargs) == library.batch_extract(
            TEXTS, schema, **kwargs
        )


def test_engine_long_texts_match() -> None:
    """Texts past the encoder's window run as windows and merge; both decoders agree."""
    words = "Tim Cook of Apple met Satya Nadella of Microsoft in Paris and 東京 🎉".split()
    rng = random.Random(3)
    texts = [" ".join(rng.choice(words) for _ in range(700)), TEXTS[0], TEXTS[2]]
    model = ResolvedModel("t", "t", "encoder", "gliner2", "t", "t", str(TINY_DIR))
    outputs = []
    for decoding in ("library", "tensor"):
        engine = GLiNER2Engine(device="cpu", dtype="float32", span_decoding=decoding)
        loaded = engine.load(model)
        schema = engine.build_schema(SCHEMAS["combined"])
        options = ExtractOptions(threshold=0.2, include_confidence=True, include_spans=True)
        outputs.append(engine.extract(loaded, texts, [schema] * 3, options, batch_size=4))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0]["entities"]["person"]) > 10


@pytest.mark.parametrize("seed", range(6))
def test_greedy_resolution_equals_finalize_spans(seed: int) -> None:
    """Random score grids with many ties: the batched rounds keep exactly what gliner2's
    sequential greedy pass keeps, in the same order."""
    rng = torch.Generator().manual_seed(seed)
    rows, tokens, width = 16, 30, 6
    scores = (torch.randint(0, 12, (rows, tokens, width), generator=rng) / 11).to(torch.bfloat16)
    inside = (torch.arange(tokens)[:, None] + torch.arange(width)[None, :]) < tokens - seed
    valid = inside & (torch.rand(rows, tokens, width, generator=rng) < 0.8)
    kept, rank = gliner2_tensor_decode.resolve_greedy(scores, valid)
    for row in range(rows):
        candidates = [
            (f"{s}:{w}", scores[row, s, w].item(), s, s + w + 1)
            for s in range(tokens)
            for w in range(width)
            if valid[row, s, w]
        ]
        expected = finalize_spans(candidates)
        ours = sorted(
            ((s, w) for s in range(tokens) for w in range(width) if kept[row, s, w]),
            key=lambda sw: rank[row, sw[0] * width + sw[1]].item(),
        )
        assert [f"{s}:{w}" for s, w in ours] == [span[0] for span in expected]


def test_thresholds_compare_in_the_scores_dtype(models) -> None:
    """A threshold just above a bfloat16 score rounds down to it, so torch keeps that span;
    comparing Python floats would drop it."""
    library, tensor = models["torch.bfloat16"]
    schema = Schema.from_dict({"entities": ["person"]})
    found = library.batch_extract(TEXTS[:1], schema, threshold=0.0, include_confidence=True)
    best = max(entity["confidence"] for entity in found[0]["entities"]["person"])
    assert best >= 0.25, "half a bfloat16 step here is > 1e-4"
    threshold = best + 1e-4
    kwargs = dict(threshold=threshold, include_confidence=True)
    expected = library.batch_extract(TEXTS[:1], schema, **kwargs)
    assert expected[0]["entities"]["person"], "torch keeps the span at the rounded threshold"
    assert tensor.batch_extract(TEXTS[:1], schema, **kwargs) == expected


def _close(ours: object, theirs: object, tolerance: float) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return abs(ours - theirs) <= tolerance
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(
            _close(ours[k], theirs[k], tolerance) for k in ours
        )
    if isinstance(ours, list | tuple) and isinstance(theirs, list | tuple):
        return len(ours) == len(theirs) and all(
            _close(a, b, tolerance) for a, b in zip(ours, theirs, strict=True)
        )
    return ours == theirs


def test_engine_sorts_batches_by_length_and_answers_in_order() -> None:
    """Texts past one batch run shortest first (less padding); results come back in the
    order sent, equal to one unsorted batch's (confidences within 1e-4: padding differs)."""
    texts = [TEXTS[7], TEXTS[5], TEXTS[0], TEXTS[7] + " " + TEXTS[1], TEXTS[2], TEXTS[3]]
    model = ResolvedModel("t", "t", "encoder", "gliner2", "t", "t", str(TINY_DIR))
    engine = GLiNER2Engine(device="cpu", dtype="float32")
    loaded = engine.load(model)
    compiled = [engine.build_schema(SCHEMAS["combined"])] * len(texts)
    options = ExtractOptions(threshold=0.3, include_confidence=True, include_spans=True)
    sorted_runs = engine.extract(loaded, texts, compiled, options, batch_size=2)
    one_batch = engine.extract(loaded, texts, compiled, options, batch_size=len(texts))
    assert any(r["entities"]["person"] for r in one_batch)
    assert _close(sorted_runs, one_batch, 1e-4)
