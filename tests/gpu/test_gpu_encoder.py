"""The GPU path: GLiNER2 on CUDA in fp16/bf16, batched. Skipped where no CUDA device is."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

from app.engines.gliner2_engine import GLiNER2Engine, pick_dtype  # noqa: E402
from app.protocol import ExtractOptions, ResolvedModel  # noqa: E402
from bench.agreement import agreement  # noqa: E402
from bench.encoder_gpu import SCHEMA, make_texts  # noqa: E402
from tests.conftest import MODELS  # noqa: E402

DEMO = ResolvedModel(
    "demo", "demo", "encoder", "gliner2", "demo", "demo", str(MODELS / "gliner2-minilm-demo")
)


@pytest.fixture(scope="module")
def demo_models() -> None:
    from app.models.__main__ import main

    main(["build", "--out", str(MODELS), "--only", "demo-encoder"])


def extract(dtype: str, texts: list[str], batch: int) -> list[dict]:
    engine = GLiNER2Engine(device="cuda", dtype=dtype)
    model = engine.load(DEMO)
    assert next(model.model.parameters()).device.type == "cuda"
    assert next(model.model.parameters()).dtype == getattr(torch, dtype)
    schema = engine.build_schema(SCHEMA)
    return engine.extract(model, texts, [schema] * len(texts), ExtractOptions(0.5), batch)


def test_auto_dtype_on_cuda_is_half_precision() -> None:
    assert pick_dtype("auto", "cuda") in {"bfloat16", "float16"}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_agrees_with_fp32(demo_models: None, dtype: str) -> None:
    texts = make_texts(64)
    reference = extract("float32", texts, 32)
    candidate = extract(dtype, texts, 32)
    scores = agreement(candidate, reference)
    assert scores["reference_spans"] > 0, "the demo finds spans at 0.5: it was fine-tuned"
    assert scores["label_match"] >= 0.9, scores
    assert scores["entity_f1"] >= 0.95, scores
    assert scores["max_confidence_gap"] < 0.1, scores


def test_batching_does_not_change_results(demo_models: None) -> None:
    texts = make_texts(16)
    one_by_one = [extract("float32", [text], 1)[0] for text in texts[:4]]
    batched = extract("float32", texts[:4], 32)
    scores = agreement(batched, one_by_one)
    assert scores["entity_f1"] == 1.0 and scores["label_match"] == 1.0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tensor_decoding_is_gliner2s_on_cuda(dtype: str) -> None:
    """The tensor decoder resolves spans on the GPU; results stay gliner2's exactly."""
    from gliner2 import GLiNER2, Schema

    from app.engines import gliner2_tensor_decode
    from tests.conftest import TINY_DIR
    from tests.unit.test_tensor_decode import SCHEMAS, TEXTS

    def load() -> GLiNER2:
        return GLiNER2.from_pretrained(str(TINY_DIR)).to("cuda", getattr(torch, dtype)).eval()

    library, tensor = load(), load()
    assert gliner2_tensor_decode.install(tensor)
    for name, schema_dict in SCHEMAS.items():
        schema = Schema.from_dict(schema_dict)
        for threshold in (0.0, 0.45):
            kwargs = dict(
                batch_size=4, threshold=threshold, include_confidence=True, include_spans=True
            )
            expected = library.batch_extract(TEXTS, schema, **kwargs)
            assert tensor.batch_extract(TEXTS, schema, **kwargs) == expected, (name, threshold)
