"""The native translator against golden files: wire request -> canonical request.

Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/unit`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from app.protocol import ExtractOptions, InferenceRequest, InferenceResult, ResolvedModel
from app.translators import native

GOLDEN = Path(__file__).parent / "golden" / "native"
CASES = sorted(GOLDEN.glob("*.json"))


def canonical(request: InferenceRequest) -> dict:
    data = json.loads(json.dumps(asdict(request)))  # as the golden file holds it
    data.pop("inference_id")  # random per request
    return data


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_to_internal_matches_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    wire = native.parse_request(case["request"])
    internal = native.to_internal(wire, project_id=None, api_key_id="key_1", max_texts=10)
    if os.environ.get("UPDATE_GOLDEN"):
        case["expected"] = canonical(internal)
        path.write_text(json.dumps(case, indent=2) + "\n")
    assert canonical(internal) == case["expected"]


def test_every_golden_schema_compiles_in_gliner2() -> None:
    from gliner2 import Schema

    for path in CASES:
        case = json.loads(path.read_text())
        Schema.from_dict(case["expected"]["schema"])


def test_key_project_overrides_body_project() -> None:
    wire = native.parse_request({"model_id": "m", "text": "t", "schema": ["a"], "project_id": "p"})
    pinned = native.to_internal(wire, project_id="from-key", api_key_id=None, max_texts=5)
    open_ = native.to_internal(wire, project_id=None, api_key_id=None, max_texts=5)
    assert pinned.project_id == "from-key" and open_.project_id == "p"


def _result(batched: bool) -> InferenceResult:
    request = InferenceRequest(
        model_id="job_1", task="extract", texts=["a", "b"][: 2 if batched else 1], batched=batched
    )
    model = ResolvedModel("job_1", "base/m", "encoder", "gliner2", "job_1", "M")
    results = [{"entities": {"x": []}}, {"entities": {"x": ["b"]}}][: 2 if batched else 1]
    return InferenceResult(request, model, results, input_tokens=7, latency_ms=12.34567)


def test_to_response_single_and_batch() -> None:
    single = native.to_response(_result(batched=False))
    assert single["result"] == {"entities": {"x": []}}
    assert single["type"] == "encoder" and single["token_usage"] == 7
    assert single["model_id"] == "job_1" and single["model_used"] == "job_1"
    assert single["latency_ms"] == 12.346
    assert isinstance(native.to_response(_result(batched=True))["result"], list)


def test_default_options_follow_the_contract() -> None:
    wire = native.parse_request({"model_id": "m", "text": "t", "schema": ["a"]})
    internal = native.to_internal(wire, project_id=None, api_key_id=None, max_texts=5)
    assert internal.options == ExtractOptions(0.5, True, True) and internal.store is True
