"""The tiny Llama's shape, shared by the tiny decoder and the tiny agent: the zero LoRA adapter
built for one (q_proj / v_proj) must fit the other, so the shape is written once."""

from __future__ import annotations

from typing import Any


def tiny_llama_config(tokenizer: Any, **overrides: Any) -> Any:
    """2 layers, hidden 128, head_dim 64 (vLLM's CPU kernels support it), float32."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
        **overrides,
    )
