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
    SamplingOptions,
    TokenDelta,
)
from app.wire.openai_wire import (
    ChatCompletionRequest,
    CompletionRequest,
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
    return {
        "prompt_tokens": tally.prompt_tokens,
        "completion_tokens": tally.completion_tokens,
        "total_tokens": tally.prompt_tokens + tally.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
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


def chat_to_internal(
    wire: ChatCompletionRequest, *, project_id: str | None, api_key_id: str | None
) -> InferenceRequest:
    response_format = wire.response_format
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": join_parts(m.content)}
        for m in wire.messages
    ]
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
                    "message": {"role": "assistant", "content": tally.text(i), "refusal": None},
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
                if isinstance(event, TokenDelta):
                    choice = {
                        "index": event.index,
                        "delta": {"content": event.text},
                        "logprobs": _chat_logprobs(event.logprobs),
                        "finish_reason": None,
                    }
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

    def __init__(self, requests: list[InferenceRequest], model: str) -> None:
        self.requests = requests
        self.model = model
        self.id = f"cmpl-{requests[0].inference_id}"
        self.created = int(time.time())
        self._echoed: set[tuple[int, int]] = set()  # (prompt, choice) whose echo was sent

    def _echo(self, request: InferenceRequest, tally: GenerationTally) -> str:
        return tally.prompt if request.sampling.echo else ""

    def response(self, tallies: list[GenerationTally], logprobs: list[dict]) -> dict[str, Any]:
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
