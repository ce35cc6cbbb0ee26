"""What the deployments ask of an engine: the contracts behind config's `engine` import paths.

Each deployment imports its engine class by path (`encoder.engine`, `decoder.engine`,
`embedder.engine`) and calls only what is written here, so another engine (a fake in the
unit tests, another model library) plugs in by satisfying these. Derived from the call
sites in deployments/encoder.py, decoder.py and embedder.py; tests/unit/
test_engine_protocols.py checks that the real engines and the fakes still match them.

Engine calls are synchronous and run in a worker thread (the deployment holds a lock
around them), except the decoder's, which are asyncio-native like vLLM's AsyncLLM. An engine
refuses a client's input with `ApiException` (or returns an `ApiError` where noted); any
other exception is an engine failure, which the deployment isolates to the request.
No torch, gliner2, vllm or ray imports here: the contracts must load anywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from app.protocol import (
    ApiError,
    ExtractOptions,
    GenerationEvent,
    ResolvedModel,
    SamplingOptions,
    ToolUse,
)

# ---- encoder (GLiNER2) ---------------------------------------------------------------------


@runtime_checkable
class LoadedEncoderModel(Protocol):
    """One loaded checkpoint; the encoder groups a batch by `key` (one engine call each)."""

    key: str

    def count_tokens(self, texts: list[str]) -> int:
        """The texts' tokens, special tokens not counted: what a request is billed."""
        ...


@runtime_checkable
class EncoderEngine(Protocol):
    device: str  # as resolved ("cuda", "cpu"), reported by the deployment's stats()
    dtype: str

    def load(self, model: ResolvedModel) -> LoadedEncoderModel:
        """The model's weights, ready to extract; ApiException when they cannot be loaded."""
        ...

    def build_schema(self, schema: dict[str, Any]) -> Any:
        """The client's schema compiled for `extract` (opaque to the deployment);
        ApiException when the client's schema is refused."""
        ...

    def extract(
        self,
        loaded: Any,  # what this engine's `load` returned
        texts: list[str],
        schemas: list[Any],  # one compiled schema per text, from `build_schema`
        options: ExtractOptions,
        batch_size: int,
    ) -> list[dict[str, Any] | ApiError]:
        """One result per text, in order, or the ApiError that text's request earned."""
        ...


class EncoderEngineClass(Protocol):
    """How EncoderDeployment constructs its engine from config."""

    def __call__(
        self,
        *,
        device: str,
        dtype: str,
        torch_threads: int | None,
        allow_hub_downloads: bool,
        span_decoding: str,
        disentangled_flash: bool,
    ) -> EncoderEngine: ...


# ---- decoder (vLLM) ------------------------------------------------------------------------


@runtime_checkable
class DecoderEngine(Protocol):
    def render(
        self,
        prompt: str | None,
        messages: list[dict[str, Any]] | None,
        tools: ToolUse | None = None,
        reasoning: bool = False,
    ) -> str:
        """The prompt text the model sees; ApiException when the turns cannot be rendered."""
        ...

    def generate(
        self,
        prompt: str,
        options: SamplingOptions,
        request_id: str,
        adapter_dir: str | None = None,
        *,
        tools: ToolUse | None = None,
        reasoning: bool = False,
        reasoning_parser: str | None = None,
        tool_parser: str | None = None,
    ) -> AsyncIterator[GenerationEvent]:
        """An async generator: GenerationStarted, then deltas and one ChoiceFinished per
        choice. Closing it (aclose) must abort the request in the engine: that is how a
        client that goes away stops the generation."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def unfinished_requests(self) -> int:
        """Requests the engine still holds (a cancelled stream's should not stay)."""
        ...


class DecoderEngineClass(Protocol):
    """How DecoderDeployment constructs its engine from config (one model per engine)."""

    def __call__(
        self,
        model_dir: str,
        *,
        dtype: str,
        max_model_len: int,
        gpu_memory_utilization: float,
        enforce_eager: bool,
        tensor_parallel_size: int,
        cpu_kv_cache_gib: int,
        max_loras: int,
        max_lora_rank: int,
        no_op_adapter_dir: str | None,
        reasoning_parser: str | None = None,
    ) -> DecoderEngine: ...


# ---- embedder ------------------------------------------------------------------------------


@runtime_checkable
class LoadedEmbeddingModel(Protocol):
    key: str  # the embedder groups a batch by it (one engine call each)


@runtime_checkable
class EmbeddingEngine(Protocol):
    device: str
    dtype: str

    def load(self, key: str, path: str) -> LoadedEmbeddingModel: ...

    def pieces(
        self,
        loaded: Any,  # what this engine's `load` returned
        texts: list[str] | None,
        token_ids: list[list[int]] | None,
        dimensions: int | None,
    ) -> list[list[int]] | ApiError:
        """Each input's token ids without special tokens, or why they cannot be embedded."""
        ...

    def embed(self, loaded: Any, pieces: list[list[int]]) -> Any:
        """One float32 vector per input, in order (a numpy array, rows sliceable)."""
        ...


class EmbeddingEngineClass(Protocol):
    """How EmbedderDeployment constructs its engine from config."""

    def __call__(
        self,
        *,
        device: str,
        dtype: str,
        torch_threads: int | None,
        max_batch_size: int,
    ) -> EmbeddingEngine: ...
