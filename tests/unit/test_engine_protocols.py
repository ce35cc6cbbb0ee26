"""The engine contracts (app/engines/protocols.py) against the real engines, the fakes and the
deployments' call sites. Signatures are compared by inspection, so no model is loaded."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from app.engines.embedding_engine import LoadedEmbedder, TorchEmbeddingEngine
from app.engines.gliner2_engine import GLiNER2Engine, LoadedEncoder
from app.engines.protocols import (
    DecoderEngine,
    DecoderEngineClass,
    EmbeddingEngine,
    EmbeddingEngineClass,
    EncoderEngine,
    EncoderEngineClass,
    LoadedEmbeddingModel,
    LoadedEncoderModel,
)
from app.engines.vllm_engine import VLLMEngine
from tests.conftest import ROOT
from tests.unit import fakes

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
REQUIRED = inspect.Parameter.empty  # a parameter's default when it has none


def caller_parameters(owner: type, name: str) -> list[inspect.Parameter]:
    """The parameters a caller passes to `owner.name` (self left out; static methods kept)."""
    raw = inspect.getattr_static(owner, name)
    if isinstance(raw, staticmethod):
        return list(inspect.signature(raw.__func__).parameters.values())
    return list(inspect.signature(raw).parameters.values())[1:]


def mismatches(contract: list[inspect.Parameter], real: list[inspect.Parameter]) -> list[str]:
    """Why a call the contract allows would fail on `real` (empty: every such call works)."""
    problems: list[str] = []
    takes_any_keyword = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in real)
    real_by_name = {p.name: p for p in real if p.kind not in VARIADIC}
    real_positional = [p for p in real if p.kind in POSITIONAL]
    for index, wanted in enumerate(p for p in contract if p.kind in POSITIONAL):
        if index >= len(real_positional) or real_positional[index].name != wanted.name:
            problems.append(f"positional #{index} should be {wanted.name!r}")
    for wanted in contract:
        have = real_by_name.get(wanted.name)
        if have is None:
            if not (takes_any_keyword and wanted.kind == inspect.Parameter.KEYWORD_ONLY):
                problems.append(f"no parameter {wanted.name!r}")
            continue
        if wanted.kind == inspect.Parameter.KEYWORD_ONLY and have.kind not in BY_NAME:
            problems.append(f"{wanted.name!r} cannot be passed by name")
        if wanted.default is not REQUIRED and have.default is REQUIRED:
            problems.append(f"{wanted.name!r} is optional in the contract but required here")
    named = {p.name for p in contract}
    for extra in real:
        if extra.name not in named and extra.kind not in VARIADIC:
            if extra.default is REQUIRED:
                problems.append(f"{extra.name!r} is required but the contract never passes it")
    return problems


def contract_methods(contract: type) -> list[str]:
    return [n for n, v in vars(contract).items() if callable(v) and not n.startswith("_")]


def contract_attributes(contract: type) -> list[str]:
    return list(vars(contract).get("__annotations__", {}))


ENGINES = [
    pytest.param(EncoderEngine, EncoderEngineClass, GLiNER2Engine, id="gliner2"),
    pytest.param(EncoderEngine, EncoderEngineClass, fakes.FakeEncoderEngine, id="fake-encoder"),
    pytest.param(DecoderEngine, DecoderEngineClass, VLLMEngine, id="vllm"),
    pytest.param(DecoderEngine, DecoderEngineClass, fakes.FakeDecoderEngine, id="fake-decoder"),
    pytest.param(EmbeddingEngine, EmbeddingEngineClass, TorchEmbeddingEngine, id="torch-embed"),
    pytest.param(
        EmbeddingEngine, EmbeddingEngineClass, fakes.FakeEmbeddingEngine, id="fake-embedder"
    ),
]


@pytest.mark.parametrize(("contract", "construction", "engine_class"), ENGINES)
def test_engine_classes_take_every_call_the_contract_allows(
    contract: type, construction: type, engine_class: type
) -> None:
    problems = {
        "__init__": mismatches(
            caller_parameters(construction, "__call__"), caller_parameters(engine_class, "__init__")
        )
    }
    for name in contract_methods(contract):
        if not callable(getattr(engine_class, name, None)):
            problems[name] = ["missing"]
            continue
        problems[name] = mismatches(
            caller_parameters(contract, name), caller_parameters(engine_class, name)
        )
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_check_catches_drift() -> None:
    """The comparison above must fail when an engine drifts from its contract."""

    class Renamed:
        def extract(self, model, texts, schemas, options, batch_size): ...

    class NewRequired:
        def count_tokens(self, text, special_tokens): ...

    class KeywordMadePositional:
        def generate(self, prompt, options, request_id, adapter_dir=None, tools=None): ...

    assert mismatches(
        caller_parameters(EncoderEngine, "extract"), caller_parameters(Renamed, "extract")
    )
    assert mismatches(
        caller_parameters(DecoderEngine, "count_tokens"),
        caller_parameters(NewRequired, "count_tokens"),
    )
    assert mismatches(
        caller_parameters(DecoderEngine, "generate"),
        caller_parameters(KeywordMadePositional, "generate"),
    )


def test_engines_that_start_cheaply_are_instances_of_their_contracts() -> None:
    """runtime_checkable: the attributes the deployments read (device, dtype) are set."""
    assert isinstance(GLiNER2Engine(device="cpu", dtype="float32"), EncoderEngine)
    assert isinstance(TorchEmbeddingEngine(device="cpu"), EmbeddingEngine)
    encoder = fakes.FakeEncoderEngine(
        device="auto",
        dtype="auto",
        torch_threads=None,
        allow_hub_downloads=False,
        span_decoding="tensor",
        disentangled_flash=True,
    )
    assert isinstance(encoder, EncoderEngine)


@pytest.mark.parametrize(
    ("contract", "loaded_class"),
    [
        (LoadedEncoderModel, LoadedEncoder),
        (LoadedEncoderModel, fakes.FakeLoadedEncoder),
        (LoadedEmbeddingModel, LoadedEmbedder),
        (LoadedEmbeddingModel, fakes.FakeLoadedEmbedder),
    ],
)
def test_loaded_models_carry_what_the_deployments_read(contract: type, loaded_class: type) -> None:
    fields = set(getattr(loaded_class, "__dataclass_fields__", {}))
    assert set(contract_attributes(contract)) <= fields
    for name in contract_methods(contract):
        assert not mismatches(
            caller_parameters(contract, name), caller_parameters(loaded_class, name)
        ), name


@pytest.mark.parametrize(
    ("module", "contract"),
    [
        ("deployments/encoder.py", EncoderEngine),
        ("deployments/decoder.py", DecoderEngine),
        ("deployments/embedder.py", EmbeddingEngine),
    ],
)
def test_deployments_use_only_what_the_contract_names(module: str, contract: type) -> None:
    """Every `self._engine.<name>` in the deployment is in its contract: a new call site
    must extend the contract (and so the fakes and this test) with it."""
    tree = ast.parse(Path(ROOT / module).read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_engine"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    }
    assert used, f"{module} no longer calls self._engine: update this test"
    assert used <= set(contract_methods(contract)) | set(contract_attributes(contract))
