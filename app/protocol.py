"""The canonical, format-free types that cross deployment handles.

Every wire format translates into `InferenceRequest` and back from `InferenceResult`; errors
travel as `ApiError` values and each format renders them in its own shape. Plain dataclasses:
picklable, and free of torch, ray and the wire models.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["extract", "generate", "embed"]
MAX_MESSAGE_CHARS = 2000
# A UTF-16 surrogate on its own: Python strings can hold one, UTF-8 and tokenizers cannot.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clip(value: object, limit: int = 100) -> str:
    """A client's value as an error message may show it: bounded and always encodable
    (a lone surrogate comes out as its escape, not as a character UTF-8 cannot hold)."""
    text = str(value)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def quoted(value: object, limit: int = 100) -> str:
    return repr(clip(value, limit))


SourceFormat = Literal[
    "native",
    "gliner2",
    "openai.chat",
    "openai.completions",
    "openai.responses",
    "anthropic.messages",
    "openai.embeddings",
]


@dataclass(frozen=True)
class ApiError:
    """An error as a value. `code` is a stable machine string; `message` says what to do."""

    status: int
    code: str
    message: str
    param: str | None = None
    retry_after_s: int | None = None  # sent as Retry-After: the client may try again then
    scope: str | None = None  # a rate limit's scope (team, key, ip): X-RateLimit-Scope
    resolution_url: str | None = None  # a billing denial's page to resolve it

    def __post_init__(self) -> None:
        # Messages quote client values; however they were built, their size stays bounded.
        if len(self.message) > MAX_MESSAGE_CHARS:
            object.__setattr__(self, "message", clip(self.message, MAX_MESSAGE_CHARS))

    @classmethod
    def invalid(cls, message: str, param: str | None = None, status: int = 422) -> ApiError:
        return cls(status, "invalid_request", message, param)

    @classmethod
    def model_not_found(cls, model_id: str) -> ApiError:
        return cls(
            404,
            "model_not_found",
            f"Model {quoted(model_id)} was not found. GET /base-models lists the models this "
            "server serves; a fine-tuned model is addressed by its job id.",
            "model_id",
        )

    @classmethod
    def model_unavailable(cls, message: str) -> ApiError:
        """In the catalog but not servable here (errors.mdx: 409 Conflict)."""
        return cls(409, "model_unavailable", message, "model_id")

    @classmethod
    def internal(cls, message: str = "The server failed to process the request.") -> ApiError:
        return cls(500, "internal_error", message)


class ApiException(Exception):
    """Raised inside the ingress to short-circuit into the caller's error format."""

    def __init__(self, error: ApiError, inference_id: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.inference_id = inference_id  # set once the failure was recorded under this id


@dataclass(frozen=True)
class ResolvedModel:
    """What the resolver says a `model_id` is and where its weights live."""

    requested_id: str
    model_id: str  # canonical catalog id of the base model
    kind: Literal["encoder", "decoder", "embedding"]
    engine: str
    model_key: str  # multiplexing key: the job id for fine-tunes, else the catalog id
    display_name: str
    local_dir: str | None = None
    hub_id: str | None = None
    training_job_id: str | None = None
    adapter_dir: str | None = None  # a LoRA adapter on the base model (decoder jobs)
    input_price_per_million: float = 0.0
    output_price_per_million: float = 0.0
    cache_read_price_per_million: float = 0.0
    reasoning_parser: str | None = None  # vLLM's name; None: the model does not reason
    tool_parser: str | None = None  # vLLM's name; None: only required/named tool choice

    @property
    def base_model(self) -> str:
        return self.model_id


@dataclass(frozen=True)
class ExtractOptions:
    threshold: float = 0.5
    include_confidence: bool = True
    include_spans: bool = True


@dataclass(frozen=True)
class SamplingOptions:
    """Generation parameters, format-free (each translator maps its own names here)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None  # None: none; 0: the chosen token's; k: plus the top k
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    echo: bool = False


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, its arguments' JSON schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolUse:
    """The tools offered and how the model may use them (OpenAI's tool_choice, normalised):
    `auto` lets the model choose (needs the model's tool parser); `required` forces at least one
    call and `named` forces one call of `name` (both through structured outputs, any model);
    `none` renders the tools but never parses calls."""

    tools: tuple[ToolSpec, ...]
    choice: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None
    parallel: bool = True


@dataclass
class InferenceRequest:
    """One inference, whatever door it came in by."""

    model_id: str
    task: Task
    texts: list[str] = field(default_factory=list)
    batched: bool = False  # the client sent a list: answer with a list
    token_ids: list[list[int]] | None = None  # embed: inputs sent as token ids, not texts
    schema: dict[str, Any] | None = None  # GLiNER2 dict form (SchemaInput)
    options: ExtractOptions = field(default_factory=ExtractOptions)
    # generate: chat turns in the Hugging Face chat-template form: {role, content} with role
    # system/user/assistant/tool; an assistant turn may carry `tool_calls` ([{id, type:
    # "function", function: {name, arguments (JSON text)}}]), a tool turn its `tool_call_id`.
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None  # generate: a raw prompt (completions)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    tools: ToolUse | None = None
    # Pioneer does not enable reasoning by default (openapi ReasoningConfig): True asks a
    # reasoning model to think; `show_reasoning` False keeps the trace out of the answer.
    reasoning: bool = False
    show_reasoning: bool = True
    stream: bool = False
    store: bool = True
    project_id: str | None = None
    api_key_id: str | None = None
    source: SourceFormat = "native"
    inference_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class ExtractionCall:
    """What the ingress sends the encoder deployment."""

    model: ResolvedModel
    texts: list[str]
    schema: dict[str, Any]
    options: ExtractOptions


@dataclass(frozen=True)
class ExtractionOutcome:
    results: list[dict[str, Any]]
    input_tokens: int
    engine_ms: float


@dataclass(frozen=True)
class GenerationCall:
    """What the ingress sends a decoder deployment."""

    model: ResolvedModel
    prompt: str | None
    messages: list[dict[str, Any]] | None
    sampling: SamplingOptions
    request_id: str
    tools: ToolUse | None = None
    reasoning: bool = False


@dataclass(frozen=True)
class GenerationStarted:
    prompt_tokens: int  # all of the prompt, cached or not
    prompt: str  # the rendered prompt (for echo)
    cached_tokens: int = 0  # of prompt_tokens, served from vLLM's prefix cache (its own count)


@dataclass(frozen=True)
class TokenDelta:
    """Answer text of a choice, and the tokens the engine step made (reasoning and tool-call
    tokens included: their text travels as ReasoningDelta / ToolCallDelta; `text` may be "")."""

    index: int  # which of the n choices
    text: str
    tokens: int
    logprobs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ReasoningDelta:
    """Reasoning text of a choice (the model's <think> section, split off by its parser).
    Its tokens are counted in the TokenDelta of the same engine step."""

    index: int
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call of choice `index`. The first piece of call `call` carries its
    id and name; `arguments` pieces concatenate to the call's JSON arguments."""

    index: int
    call: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class ChoiceFinished:
    index: int
    finish_reason: str  # stop | length | tool_calls
    stop_sequence: str | None = None
    reasoning_tokens: int = 0  # of the choice's tokens, those inside its reasoning section


GenerationEvent = (
    GenerationStarted | TokenDelta | ReasoningDelta | ToolCallDelta | ChoiceFinished | ApiError
)


@dataclass(frozen=True)
class InferenceResult:
    request: InferenceRequest
    model: ResolvedModel
    results: list[dict[str, Any]]
    input_tokens: int
    latency_ms: float
