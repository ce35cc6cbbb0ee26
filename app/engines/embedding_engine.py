"""Sentence embeddings on torch + transformers, read from a sentence-transformers folder.

No sentence-transformers package: the folder's `modules.json` says which modules run (a
Transformer, then Pooling, then optionally Normalize), `1_Pooling/config.json` how token
vectors are pooled, and `sentence_bert_config.json` the longest sequence the model takes. For
all-MiniLM-L6-v2 that is mean pooling over the attention mask, then L2 normalisation, at most
256 tokens (special tokens included).

Inputs are checked, never cut: a text longer than the model takes is refused with a 400 (as
OpenAI refuses an input over its model's context), where sentence-transformers would silently
drop its tail. A text and its token ids (without special tokens) embed identically: both go
through `wrap`, which adds the tokenizer's own special tokens.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.protocol import ApiError, quoted

logger = logging.getLogger("ray.serve")

# sentence-transformers' module types this engine runs, and the pooling modes it knows
# (concatenated in sentence-transformers' order when several are on).
TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
POOLING_MODES = ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens")
PROBE = "a probe"  # tokenized with and without special tokens to find where they go


@dataclass
class LoadedEmbedder:
    key: str
    model: Any  # a transformers AutoModel
    tokenizer: Any
    prefix: list[int]  # special tokens before the input's own (BERT: [CLS])
    suffix: list[int]  # and after them (BERT: [SEP])
    max_tokens: int  # the longest sequence, special tokens included
    dimensions: int
    pooling: tuple[str, ...]
    normalize: bool
    vocab_size: int
    pad_id: int

    @property
    def max_input_tokens(self) -> int:
        return self.max_tokens - len(self.prefix) - len(self.suffix)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _modules(folder: Path) -> tuple[tuple[str, ...], bool]:
    """The pooling modes and whether vectors are normalised, from the folder's configs. A
    plain transformers folder (no modules.json) pools by mean and does not normalise."""
    modules = _read_json(folder / "modules.json")
    if modules is None:
        return ("mean_tokens",), False
    types = [module.get("type") for module in modules]
    unknown = [t for t in types if t not in (TRANSFORMER, POOLING, NORMALIZE)]
    if unknown or types[:1] != [TRANSFORMER]:
        raise ValueError(f"unsupported sentence-transformers modules {unknown or types}")
    pooling_dir = next((m.get("path", "") for m in modules if m.get("type") == POOLING), None)
    modes: tuple[str, ...] = ("mean_tokens",)
    if pooling_dir is not None:
        config = _read_json(folder / pooling_dir / "config.json") or {}
        modes = tuple(mode for mode in POOLING_MODES if config.get(f"pooling_mode_{mode}"))
        others = [
            key
            for key, on in config.items()
            if key.startswith("pooling_mode_") and on and key[13:] not in POOLING_MODES
        ]
        if others or not modes:
            raise ValueError(f"unsupported pooling {others or 'none'}")
    return modes, NORMALIZE in types


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    full = tokenizer(PROBE)["input_ids"]
    plain = tokenizer(PROBE, add_special_tokens=False)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    raise ValueError("cannot tell where the tokenizer puts its special tokens")


class TorchEmbeddingEngine:
    def __init__(
        self,
        device: str = "auto",
        dtype: str = "float32",
        torch_threads: int | None = None,
        max_batch_size: int = 32,
    ) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.dtype = dtype
        self._torch_dtype = getattr(torch, dtype)
        self._max_batch_size = max_batch_size

    def load(self, key: str, path: str) -> LoadedEmbedder:
        from transformers import AutoModel, AutoTokenizer

        folder = Path(path)
        pooling, normalize = _modules(folder)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, dtype=self._torch_dtype)
        model.to(self.device).eval()
        prefix, suffix = _special_tokens(tokenizer)
        limits = [
            (_read_json(folder / "sentence_bert_config.json") or {}).get("max_seq_length"),
            getattr(model.config, "max_position_embeddings", None),
            tokenizer.model_max_length if tokenizer.model_max_length < 1_000_000 else None,
        ]
        max_tokens = min(int(limit) for limit in limits if limit)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return LoadedEmbedder(
            key=key,
            model=model,
            tokenizer=tokenizer,
            prefix=prefix,
            suffix=suffix,
            max_tokens=max_tokens,
            dimensions=model.config.hidden_size * len(pooling),
            pooling=pooling,
            normalize=normalize,
            vocab_size=len(tokenizer),
            pad_id=pad_id,
        )

    # ---- checks: what a client sent, as word pieces or a 400 --------------------------------

    def pieces(
        self,
        loaded: LoadedEmbedder,
        texts: list[str] | None,
        token_ids: list[list[int]] | None,
        dimensions: int | None,
    ) -> list[list[int]] | ApiError:
        """Each input's token ids without special tokens, or why they cannot be embedded.
        Messages name inputs by index and never quote their text."""
        if dimensions is not None and dimensions != loaded.dimensions:
            return ApiError.invalid(
                f"Model {quoted(loaded.key)} makes {loaded.dimensions}-dimensional embeddings "
                f"and cannot shorten them: send dimensions {loaded.dimensions}, or leave it out.",
                "dimensions",
                status=400,
            )
        if texts is not None:
            encoded = loaded.tokenizer(texts, add_special_tokens=False)["input_ids"]
            ids = [list(piece) for piece in encoded]
        else:
            ids = token_ids or []
            for index, sequence in enumerate(ids):
                bad = next((i for i in sequence if not 0 <= i < loaded.vocab_size), None)
                if bad is not None:
                    return ApiError.invalid(
                        f"input[{index}] holds token id {clip_int(bad)}, outside the vocabulary "
                        f"of {quoted(loaded.key)} (0 to {loaded.vocab_size - 1}).",
                        "input",
                        status=400,
                    )
        longest = loaded.max_input_tokens
        for index, sequence in enumerate(ids):
            if len(sequence) > longest:
                return ApiError(
                    400,
                    "context_length_exceeded",
                    f"input[{index}] is {len(sequence)} tokens; {quoted(loaded.key)} takes at "
                    f"most {longest} per input ({loaded.max_tokens} with its special tokens). "
                    "Shorten or split it.",
                    "input",
                )
        return ids

    # ---- the model ------------------------------------------------------------------------

    def embed(self, loaded: LoadedEmbedder, pieces: list[list[int]]) -> Any:
        """float32 vectors, one row per input, in order. Inputs of like length share a
        forward pass (sorted, then cut into batches), so little of each batch is padding."""
        import numpy as np
        import torch

        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        out = np.empty((len(pieces), loaded.dimensions), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self._max_batch_size):
                chosen = order[start : start + self._max_batch_size]
                vectors = self._forward(loaded, [pieces[i] for i in chosen])
                out[chosen] = vectors.float().cpu().numpy()
        return out

    def _forward(self, loaded: LoadedEmbedder, pieces: list[list[int]]) -> Any:
        import torch

        sequences = [loaded.prefix + p + loaded.suffix for p in pieces]
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), loaded.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            mask[row, : len(sequence)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        hidden = loaded.model(
            input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state
        return pool(hidden, mask, loaded.pooling, loaded.normalize)


def pool(hidden: Any, mask: Any, modes: tuple[str, ...], normalize: bool) -> Any:
    """sentence-transformers' Pooling (then Normalize), for the modes in POOLING_MODES."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    parts = []
    for mode in modes:
        if mode == "cls_token":
            parts.append(hidden[:, 0])
        elif mode == "max_tokens":
            parts.append(hidden.masked_fill(weights == 0, -1e9).max(dim=1).values)
        elif mode == "mean_tokens":
            parts.append((hidden * weights).sum(dim=1) / counts)
        else:  # mean_sqrt_len_tokens
            parts.append((hidden * weights).sum(dim=1) / counts.sqrt())
    vectors = torch.cat(parts, dim=-1)
    return torch.nn.functional.normalize(vectors, p=2, dim=-1) if normalize else vectors


def clip_int(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} digits)"
