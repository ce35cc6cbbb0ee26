"""Decoder deployment: one vLLM engine per replica; tokens stream back through the handle.

Thin by design: the engine (import path from config) holds every vllm call. A caller that
goes away (client disconnect, `.cancel()`) reaches `generate` as a cancellation, and closing
the engine's stream aborts the request in vLLM.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.config import DecoderConfig
from app.engines.protocols import DecoderEngine, DecoderEngineClass
from app.protocol import ApiError, ApiException, GenerationCall, GenerationEvent, ToolUse
from app.streams import coalesced
from deployments.encoder import import_object

logger = logging.getLogger("ray.serve")


REPORT_INTERVAL_S = 10.0  # as the encoder's: a restarted resolver hears within this


class DecoderDeployment:
    def __init__(
        self,
        config: DecoderConfig,
        model_dir: str,
        resolver: Any = None,
        reasoning_parser: str | None = None,
    ) -> None:
        engine_cls: DecoderEngineClass = import_object(config.engine)
        # the model's reasoning parser (catalog) is engine-wide in vLLM: structured outputs
        # hold their grammar back until the reasoning section ends
        extra = {"reasoning_parser": reasoning_parser} if reasoning_parser else {}
        self._engine: DecoderEngine = engine_cls(
            model_dir,
            dtype=config.dtype,
            max_model_len=config.max_model_len,
            gpu_memory_utilization=config.gpu_memory_utilization,
            enforce_eager=config.enforce_eager,
            tensor_parallel_size=config.tensor_parallel_size,
            cpu_kv_cache_gib=config.cpu_kv_cache_gib,
            max_loras=config.max_loras,
            max_lora_rank=config.max_lora_rank,
            no_op_adapter_dir=config.no_op_adapter_dir,
            **extra,
        )
        self._cancelled: deque[str] = deque(maxlen=1000)
        self._resolver = resolver
        if resolver is not None:  # the engine is up: callers waiting on it are not too early
            self._reporting = asyncio.get_running_loop().create_task(self._report_started())

    async def _report_started(self) -> None:
        while True:
            try:
                await self._resolver.report_started.remote("decoder deployment")
            except Exception as exc:  # the resolver restarts: tell the next one
                logger.debug("resolver did not take the report: %s", exc)
            await asyncio.sleep(REPORT_INTERVAL_S)

    async def generate(self, call: GenerationCall) -> AsyncIterator[list[GenerationEvent]]:
        """Lists of events: whatever the engine produced since the last item was taken.

        Each item crossing the handle costs a few ms; coalescing keeps that cost per batch
        of tokens instead of per token when the engine is faster than the stream drains,
        and costs nothing when it is not (the first event always goes alone, at once)."""
        try:
            prompt = self._engine.render(call.prompt, call.messages, call.tools, call.reasoning)
            stream = self._engine.generate(
                prompt,
                call.sampling,
                call.request_id,
                call.model.adapter_dir,
                tools=call.tools,
                reasoning=call.reasoning,
                reasoning_parser=call.model.reasoning_parser,
                tool_parser=call.model.tool_parser,
            )
            async with aclosing(coalesced(stream)) as batches:
                async for batch in batches:
                    yield batch
        except asyncio.CancelledError:
            self._cancelled.append(call.request_id)  # closing the stream aborted it in vLLM
            raise
        except ApiException as exc:
            yield [exc.error]
        except Exception as exc:  # an engine failure ends this stream, not the replica
            logger.exception("generation failed: %s", type(exc).__name__)
            yield [ApiError.internal(f"generation failed: {type(exc).__name__}")]

    async def count_tokens(
        self,
        prompt: str | None,
        messages: list | None,
        tools: ToolUse | None = None,
        reasoning: bool = False,
    ) -> int | ApiError:
        """The rendered prompt's tokens (tools and the thinking switch rendered as a
        generation with them would be)."""
        try:
            return self._engine.count_tokens(
                self._engine.render(prompt, messages, tools, reasoning)
            )
        except ApiException as exc:
            return exc.error

    async def stats(self) -> dict[str, object]:
        return {
            "unfinished_requests": self._engine.unfinished_requests(),
            "cancelled_request_ids": list(self._cancelled),
        }
