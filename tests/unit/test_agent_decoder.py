"""The tiny agent decoder (`tiny-agent`): its chat template, its tokens, and greedy behaviour.

Runs on the built model in models/ (the session builds it when missing, ~1.5 min once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.models import agent_checks
from app.models.agent_checks import TIME, TOOLS, WEATHER, Case
from tests.conftest import MODELS

AGENT_DIR = MODELS / "llama-tiny-agent"
SYSTEM = "<|system|>You are a helpful assistant."
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def agent_dir() -> Path:
    # Checked at run time, not collection: the session fixture builds the model first.
    if not (AGENT_DIR / "config.json").exists():
        pytest.skip(f"{AGENT_DIR} is not built (python -m app.models build --only tiny-agent)")
    return AGENT_DIR


@pytest.fixture(scope="module")
def tokenizer(agent_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(agent_dir)


@pytest.fixture(scope="module")
def model(agent_dir: Path) -> Any:
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(agent_dir).eval()


def render(tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


def test_thinking_is_off_unless_asked(tokenizer: Any) -> None:
    off = f"{SYSTEM}<|end|><|user|>Hi<|end|><|assistant|><think></think>"
    assert render(tokenizer, HI, add_generation_prompt=True) == off
    assert render(tokenizer, HI, add_generation_prompt=True, enable_thinking=False) == off
    on = render(tokenizer, HI, add_generation_prompt=True, enable_thinking=True)
    assert on == f"{SYSTEM}<|end|><|user|>Hi<|end|><|assistant|>"
    assert render(tokenizer, HI) == f"{SYSTEM}<|end|><|user|>Hi<|end|>"


def test_system_turn_and_content_parts(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
    ]
    assert render(tokenizer, messages) == "<|system|>Be brief.<|end|><|user|>Hi<|end|>"


def test_tools_are_listed_as_json(tokenizer: Any) -> None:
    text = render(tokenizer, HI, tools=TOOLS, add_generation_prompt=True)
    listed = "\n".join(json.dumps(tool["function"], ensure_ascii=False) for tool in TOOLS)
    assert text.startswith(f"{SYSTEM}\n<tools>\n{listed}\n</tools><|end|><|user|>Hi<|end|>")


@pytest.mark.parametrize("as_string", [False, True], ids=["dict-arguments", "string-arguments"])
def test_tool_calls_and_tool_turns(tokenizer: Any, as_string: bool) -> None:
    turns = agent_checks.after_result("Weather in Paris?", "Paris", "sunny", as_string)
    text = render(tokenizer, turns, tools=[WEATHER])
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    assert text.endswith(f"<|assistant|>{call}<|end|><|tool|>sunny<|end|>")


def test_earlier_thoughts_are_dropped(tokenizer: Any) -> None:
    turns = [*HI, {"role": "assistant", "content": "<think>greet</think>Hello!"}]
    assert render(tokenizer, turns).endswith("<|assistant|>Hello!<|end|>")


def test_tags_are_single_tokens_that_survive_decoding(tokenizer: Any) -> None:
    vocab = tokenizer.get_vocab()
    for tag in agent_checks.TAGS:
        assert tag in vocab and tokenizer.tokenize(tag) == [tag]
    text = "<|assistant|><think>x</think><tool_call>{}</tool_call><|end|>"
    decoded = tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True)
    assert decoded == "<think>x</think><tool_call>{}</tool_call>"
    assert tokenizer.eos_token == "<|end|>"


def test_same_shape_as_tiny_decoder(model: Any) -> None:
    """The server sends base-model requests through a zero LoRA adapter built for the tiny
    decoder's q_proj/v_proj: the shapes must match it."""
    config = model.config
    shape = (config.hidden_size, config.intermediate_size, config.num_hidden_layers)
    heads = (config.num_attention_heads, config.num_key_value_heads, config.head_dim)
    assert (shape, heads, config.tie_word_embeddings) == ((128, 256, 2), (2, 2, 64), False)
    attention = model.model.layers[0].self_attn
    assert attention.q_proj.weight.shape == attention.v_proj.weight.shape == (128, 128)


GREEDY_CASES = [case for case in agent_checks.CASES if case.behaviour in "ab"]
GREEDY_CASES += [
    agent_checks.calls(TOOLS, False, "What is the weather in Paris and Rome?", "Paris", "Rome"),
    agent_checks.calls([TIME], True, "What time is it in Lima and Oslo?", "Lima", "Oslo"),
]


@pytest.mark.parametrize(
    "case", GREEDY_CASES, ids=[f"{c.behaviour}-{c.messages[-1]['content']}" for c in GREEDY_CASES]
)
def test_greedy_behaviour(model: Any, tokenizer: Any, case: Case) -> None:
    text, ended = agent_checks.generate(model, tokenizer, case)
    assert agent_checks.problems(case, text, ended) == [], text
