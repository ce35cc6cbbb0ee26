"""The tiny decoder's vLLM engine in-process (no Ray), as the test server's replicas run it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from app.engines.vllm_engine import VLLMEngine
from tests.conftest import MODELS


@contextmanager
def tiny_engine() -> Iterator[VLLMEngine]:
    engine = VLLMEngine(
        str(MODELS / "llama-tiny-test"),
        dtype="float32",
        max_model_len=512,
        gpu_memory_utilization=0.15,
        enforce_eager=True,
        max_loras=2,
        max_lora_rank=8,
        no_op_adapter_dir=str(MODELS / "llama-tiny-test-zero-lora"),
    )
    try:
        yield engine
    finally:
        engine.shutdown()  # its processes would otherwise compete with later tests
        # pytest keeps the fixture's value: let go of vLLM's engine now, while the
        # interpreter can still run its finaliser, not at exit
        engine.engine = None
        gc.collect()
