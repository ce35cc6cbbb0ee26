"""Greedy output through the API equals vLLM's own greedy output for the same prompt."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODELS
from tests.integration.conftest import API_KEY
from tests.integration.test_openai import DECODER, MESSAGES


@pytest.fixture(scope="module")
def reference_llm():  # noqa: ANN201 - vllm.LLM
    from vllm import LLM

    llm = LLM(
        model=str(MODELS / "llama-tiny-test"),
        dtype="float32",
        max_model_len=512,
        enforce_eager=True,
        gpu_memory_utilization=0.15,
    )
    yield llm
    import gc

    engine_core = getattr(llm.llm_engine, "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        engine_core.shutdown()  # its processes would otherwise compete with later tests
    del llm
    gc.collect()


def test_greedy_chat_and_completion_equal_vllm(server: str, reference_llm) -> None:  # noqa: ANN001
    from vllm import SamplingParams

    sdk = openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)
    tokenizer = reference_llm.get_tokenizer()
    prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    params = SamplingParams(temperature=0.0, max_tokens=24)
    expected_chat = reference_llm.generate([prompt], params)[0].outputs[0].text
    expected_text = reference_llm.generate(["hello world"], params)[0].outputs[0].text

    chat = sdk.chat.completions.create(
        model=DECODER, messages=MESSAGES, temperature=0.0, max_tokens=24
    )
    text = sdk.completions.create(
        model=DECODER, prompt="hello world", temperature=0.0, max_tokens=24
    )
    assert chat.choices[0].message.content == expected_chat
    assert text.choices[0].text == expected_text
