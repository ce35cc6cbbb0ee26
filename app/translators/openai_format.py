"""OpenAI-compatible format: chat completions and text completions, their SSE framing, and
the error body. (The Responses API has its own module: its events differ.)"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ChoiceFinished,
    InferenceRequest,
    ReasoningDelta,
    SamplingOptions,
    TokenDelta,
    ToolCallDelta,
    ToolSpec,
    ToolUse,
)
from app.translators.tools import tool_use
from app.wire.openai_wire import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    NamedToolChoice,
    SamplingFields,
    join_parts,
)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def to_error(error: ApiError) -> tuple[int, dict[str, Any]]:
    # OpenAI reports bad parameters as 400, never FastAPI's 422.
    status = 400 if error.status == 422 else error.status
    error_type = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if error.resolution_url is not None:  # a billing denial: out of credits, or at the ceiling
        error_type = "insufficient_quota"
    code = "rate_limit_exceeded" if status == 429 else error.code  # OpenAI's own code
    body = {"message": error.message, "type": error_type, "param": error.param, "code": code}
    return status, {"error": body}


def sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


DONE = sse("[DONE]")


def usage(tally: GenerationTally) -> dict[str, Any]:
    """OpenAI's usage: prompt_tokens counts the whole prompt, cached_tokens the part of it
    read from the prefix cache (vLLM's own count); reasoning tokens are completion tokens."""
    return {
        "prompt_tokens": tally.prompt_tokens,
        "completion_tokens": tally.completion_tokens,
        "total_tokens": tally.prompt_tokens + tally.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": tally.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": tally.reasoning_tokens},
    }


def pioneer(request: InferenceRequest) -> dict[str, Any]:
    return {"inference_id": request.inference_id, "routed_model": None}


# ---- requests ------------------------------------------------------------------------------


def _shared_sampling(wire: SamplingFields) -> dict[str, Any]:
    """The parameters chat and text completions share, under the same names."""
    return {
        "temperature": wire.temperature,
        "top_p": wire.top_p,
        "n": wire.n,
        "stop": wire.stops(),
        "seed": wire.seed,
        "presence_penalty": wire.presence_penalty,
        "frequency_penalty": wire.frequency_penalty,
    }


def chat_message(message: ChatMessage) -> dict[str, Any]:
    """One turn in the canonical (chat-template) form."""
    turn: dict[str, Any] = {
        "role": "system" if message.role == "developer" else message.role,
        "content": join_parts(message.content),
    }
    if message.tool_calls:
        turn["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id is not None:
        turn["tool_call_id"] = message.tool_call_id
    return turn


def chat_tools(wire: ChatCompletionRequest) -> ToolUse | None:
    specs = [
        ToolSpec(t.function.name, t.function.description, t.function.parameters)
        for t in wire.tools or []
    ]
    choice = wire.tool_choice
    if isinstance(choice, NamedToolChoice):
        return tool_use(
            specs, "named", name=choice.function.name, parallel=wire.parallel_tool_calls
        )
    return tool_use(specs, choice, parallel=wire.parallel_tool_calls)


def chat_reasoning(wire: ChatCompletionRequest) -> tuple[bool, bool]:
    """(think, show the thinking): off unless asked, as Pioneer does."""
    if wire.reasoning is not None:
        return wire.reasoning.wanted(), wire.reasoning.shown()
    return wire.reasoning_effort not in (None, "none"), True


def chat_to_internal(
    wire: ChatCompletionRequest, *, project_id: str | None, api_key_id: str | None
) -> InferenceRequest:
    response_format = wire.response_format
    messages = [chat_message(m) for m in wire.messages]
    reasoning, show_reasoning = chat_reasoning(wire)
    return InferenceRequest(
        model_id=wire.model,
        task="generate",
        messages=messages,
        sampling=SamplingOptions(
            **_shared_sampling(wire),
            max_tokens=wire.max_completion_tokens or wire.max_tokens,
            logprobs=(wire.top_logprobs or 0) if wire.logprobs else None,
            json_schema=(response_format.json_schema or {}).get("schema")
            if response_format and response_format.type == "json_schema"
            else None,
            json_object=bool(response_format and response_format.type == "json_object"),
        ),
        tools=chat_tools(wire),
        reasoning=reasoning,
        show_reasoning=show_reasoning,
        stream=wire.stream,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="openai.chat",
    )


def completion_to_internal(
    wire: CompletionRequest, prompt: str, *, project_id: str | None, api_key_id: str | None
) -> InferenceRequest:
    return InferenceRequest(
        model_id=wire.model,
        task="generate",
        prompt=prompt,
        sampling=SamplingOptions(
            **_shared_sampling(wire),
            max_tokens=wire.max_tokens,
            logprobs=wire.logprobs,
            echo=wire.echo,
        ),
        stream=wire.stream,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="openai.completions",
    )


# ---- chat responses ------------------------------------------------------------------------


def _chat_logprobs(entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if entries is None:
        return None
    return {
        "content": [
            {
                "token": e["token"],
                "logprob": e["logprob"],
                "bytes": list(e["token"].encode()),
                "top_logprobs": [
                    {
                        "token": t["token"],
                        "logprob": t["logprob"],
                        "bytes": list(t["token"].encode()),
                    }
                    for t in e["top_logprobs"]
                ],
            }
            for e in entries
        ]
    }


class ChatAnswer:
    """Builds a chat.completion (or its chunks) for one request."""

    def __init__(self, request: InferenceRequest, model: str) -> None:
        self.request = request
        self.model = model
        self.id = f"chatcmpl-{request.inference_id}"
        self.created = int(time.time())
        self.logprobs: dict[int, list[dict[str, Any]]] = {}

    def keep_logprobs(self, event: Any) -> None:
        if isinstance(event, TokenDelta) and event.logprobs is not None:
            self.logprobs.setdefault(event.index, []).extend(event.logprobs)

    def response(self, tally: GenerationTally) -> dict[str, Any]:
        n = self.request.sampling.n
        wants_logprobs = self.request.sampling.logprobs is not None
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": i,
                    "message": self._message(tally, i),
                    "logprobs": _chat_logprobs(self.logprobs.get(i, []))
                    if wants_logprobs
                    else None,
                    "finish_reason": tally.finish_reason(i) or "stop",
                }
                for i in range(n)
            ],
            "usage": usage(tally),
            "x_pioneer": pioneer(self.request),
        }

    def _message(self, tally: GenerationTally, index: int) -> dict[str, Any]:
        calls = tally.tool_calls(index)
        text = tally.text(index)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if calls and not text else text,  # as OpenAI, for a pure call
            "refusal": None,
        }
        reasoning = tally.reasoning_text(index)
        if reasoning is not None and self.request.show_reasoning:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = [call.as_message() for call in calls]
        return message

    def _delta(self, event: Any) -> dict[str, Any] | None:
        """A chunk's choice for one engine event; None for nothing to send."""
        if isinstance(event, TokenDelta):
            if not event.text and event.logprobs is None:
                return None
            delta: dict[str, Any] = {"content": event.text}
            logprobs = _chat_logprobs(event.logprobs)
        elif isinstance(event, ReasoningDelta):
            if not event.text:
                return None
            delta, logprobs = {"reasoning_content": event.text}, None
        elif isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.call}
            if event.id is not None:  # the first piece: OpenAI sends id, type and name once
                call |= {"id": event.id, "type": "function"}
                call["function"] = {"name": event.name, "arguments": event.arguments}
            else:
                call["function"] = {"arguments": event.arguments}
            delta, logprobs = {"tool_calls": [call]}, None
        else:
            return None
        return {"index": event.index, "delta": delta, "logprobs": logprobs, "finish_reason": None}

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        base = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        return sse(base | extra)

    async def stream(
        self,
        events: AsyncIterator[Any],
        tally: GenerationTally,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        for i in range(self.request.sampling.n):
            delta = {"role": "assistant", "content": ""}
            yield self._chunk(
                [{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}]
            )
        async with aclosing(events) as source:  # closing us closes the source
            async for event in source:
                choice = self._delta(event)
                if choice is not None:
                    yield self._chunk([choice])
                elif isinstance(event, ChoiceFinished):
                    choice = {"index": event.index, "delta": {}, "logprobs": None}
                    finish = choice | {"finish_reason": event.finish_reason}
                    yield self._chunk([finish], x_pioneer=pioneer(self.request))
                elif isinstance(event, ApiError):
                    yield sse(to_error(event)[1])
                    yield DONE
                    return
        if include_usage:  # OpenAI sends this choice-less chunk only when asked
            yield self._chunk([], usage=usage(tally), x_pioneer=pioneer(self.request))
        yield DONE


# ---- text completions ----------------------------------------------------------------------


def _completion_logprobs(entries: list[dict[str, Any]] | None, offset: int) -> dict | None:
    if entries is None:
        return None
    offsets, position = [], offset
    for e in entries:
        offsets.append(position)
        position += len(e["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


class CompletionAnswer:
    """Builds a text_completion (or its chunks) for one or more prompts."""

    def __init__(
        self, requests: list[InferenceRequest], model: str, include_usage: bool = False
    ) -> None:
        self.requests = requests
        self.model = model
        self.include_usage = include_usage
        self.id = f"cmpl-{requests[0].inference_id}"
        self.created = int(time.time())
        self._echoed: set[tuple[int, int]] = set()  # (prompt, choice) whose echo was sent
        self.logprobs: list[dict[int, list[dict[str, Any]]]] = [{} for _ in requests]

    def keep(self, position: int, event: Any) -> None:
        if isinstance(event, TokenDelta) and event.logprobs is not None:
            self.logprobs[position].setdefault(event.index, []).extend(event.logprobs)

    def _echo(self, request: InferenceRequest, tally: GenerationTally) -> str:
        return tally.prompt if request.sampling.echo else ""

    def response(self, tallies: list[GenerationTally]) -> dict[str, Any]:
        logprobs = self.logprobs
        choices = []
        for p, (request, tally) in enumerate(zip(self.requests, tallies, strict=True)):
            n = request.sampling.n
            for i in range(n):
                echo = self._echo(request, tally)
                entries = logprobs[p].get(i, []) if request.sampling.logprobs is not None else None
                choices.append(
                    {
                        "index": p * n + i,
                        "text": echo + tally.text(i),
                        "logprobs": _completion_logprobs(entries, len(echo)),
                        "finish_reason": tally.finish_reason(i) or "stop",
                    }
                )
        total = GenerationTally(
            prompt_tokens=sum(t.prompt_tokens for t in tallies),
            cached_tokens=sum(t.cached_tokens for t in tallies),
            tokens={i: t.completion_tokens for i, t in enumerate(tallies)},
        )
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage(total),
            "x_pioneer": pioneer(self.requests[0])
            | {"inference_ids": [r.inference_id for r in self.requests]},
        }

    async def stream(self, runs: AsyncIterator[Any]) -> AsyncIterator[bytes]:
        """Each prompt's generation in turn (its choices numbered after the earlier ones)."""
        tallies = []
        async for run in runs:
            async with aclosing(run.events) as source:  # closing us closes the source
                async for event in source:
                    if isinstance(event, ApiError):
                        yield sse(to_error(event)[1])
                        yield DONE
                        return
                    if isinstance(event, (TokenDelta, ChoiceFinished)):
                        yield self.delta_chunk(run.position, run.request, event, run.tally)
            tallies.append(run.tally)
        if self.include_usage:  # the choice-less usage chunk only when asked, as OpenAI does
            total = GenerationTally(
                prompt_tokens=sum(t.prompt_tokens for t in tallies),
                cached_tokens=sum(t.cached_tokens for t in tallies),
                tokens={i: t.completion_tokens for i, t in enumerate(tallies)},
            )
            yield self.chunk([], usage=usage(total), x_pioneer=pioneer(self.requests[0]))
        yield DONE

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        base = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        return sse(base | extra)

    def delta_chunk(
        self, prompt_index: int, request: InferenceRequest, event: Any, tally: GenerationTally
    ) -> bytes:
        n = request.sampling.n
        if isinstance(event, TokenDelta):
            first = (prompt_index, event.index) not in self._echoed
            self._echoed.add((prompt_index, event.index))
            echo = self._echo(request, tally) if first else ""
            choice = {
                "index": prompt_index * n + event.index,
                "text": echo + event.text,
                "logprobs": _completion_logprobs(event.logprobs, 0),
                "finish_reason": None,
            }
        else:
            choice = {
                "index": prompt_index * n + event.index,
                "text": "",
                "logprobs": None,
                "finish_reason": event.finish_reason,
            }
            return self.chunk([choice], x_pioneer=pioneer(self.requests[0]))
        return self.chunk([choice])
