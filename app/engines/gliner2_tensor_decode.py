"""GLiNER2 span decoding as batched tensor operations on the model's device.

gliner2's `batch_extract` finds spans one score row at a time: `torch.where`, then a Python
loop with an `.item()` per candidate (a device sync each on a GPU), then a greedy overlap pass
whose `any(...)` is quadratic in candidates. Here every span row of every text in an encoder
batch is thresholded, ranked and resolved at once on the device, and Python sees only the
spans that survive, once each. Everything else (forward pass, collation, classification,
structure choices, relation pairing, entity attributes, output shapes) stays gliner2's own
code, so results are gliner2's; `tests/unit/test_tensor_decode.py` compares them with
`batch_extract` run unchanged.

`install(model)` gives one model instance three methods of its own: `_extract_from_batch` runs
gliner2's forward, resolves every row here, then hands off to gliner2's one-transfer decoder
(`_extract_from_batch_sync_collapsed`, on CPU too); `_decode_span_probabilities` points
gliner2's per-task decoding at that task's resolved rows; `_find_spans` answers from them.

Why the answer is exact:
- gliner2's greedy resolution (no explicit overlap policy: keep the most confident span that
  overlaps no kept one) of the candidates at or above a threshold keeps a prefix of what it
  keeps from the candidates above any lower floor, since candidates rank by confidence. So one
  resolution per row, above the lowest threshold its sample's schema names, serves them all.
- Character ranges overlap exactly when token ranges do, if word tokens are non-empty,
  disjoint and in order; and no span's stripped text is empty (gliner2 drops those) if no
  token is blank. Both are checked per text; a text where they fail runs gliner2's way.
- Ties rank as gliner2's stable sort ranks them: by `torch.where`'s row-major position.
- Thresholds compare in the scores' dtype, as torch compares a tensor with a Python number.
Rows outside this (validators, explicit overlap policies, another architecture, a threshold
below the floor) run gliner2's own code.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F

Span = tuple[str, float, int, int]  # gliner2's (text, confidence, char_start, char_end)

_active = threading.local()  # the batch (and task) being decoded on this thread
_FIELD_MARKS = ("[E]", "[C]", "[R]")  # what precedes a field name in gliner2's schema tokens
_FLOOR_MARGIN = 1 / 64  # below any threshold once rounded to bf16/fp16 (relative error <= 2^-9)


def install(model: Any) -> bool:
    """Decode `model`'s spans here from now on; False (and nothing changed) where the model
    is not gliner2's span architecture."""
    if getattr(model, "architecture", "span") != "span":
        return False
    model._extract_from_batch = MethodType(_extract_from_batch, model)
    model._decode_span_probabilities = MethodType(_decode_span_probabilities, model)
    model._find_spans = MethodType(_find_spans, model)
    return True


@dataclass
class _Row:
    floor: float  # the lowest threshold this row was resolved for
    spans: list[Span] = field(default_factory=list)  # kept, best first


@dataclass
class _Task:
    shape: tuple[int, int]  # (instances, fields) of its span scores
    text_len: int
    field_names: list[str]  # as gliner2 reads them from the task's schema tokens
    rows: list[_Row]  # instance-major


@dataclass
class _Sample:
    tasks: list[_Task]
    taken: int = 0  # gliner2 decodes a sample's span tasks in order: the next one's index


class _Batch:
    def __init__(self) -> None:
        self.samples: dict[int, _Sample] = {}  # id(start_mapping) -> its span tasks

    def rows_for(
        self,
        start_mapping: Any,
        field_names: list[str],
        span_scores: torch.Tensor,
        text_len: int,
    ) -> dict[int, _Row] | None:
        """The resolved rows of the span task gliner2 decodes next for this sample, keyed by
        where each row's scores sit in memory (what `_find_spans` is handed)."""
        sample = self.samples.get(id(start_mapping))
        if sample is None or sample.taken >= len(sample.tasks):
            return None
        task = sample.tasks[sample.taken]
        sample.taken += 1
        if (
            task.shape != tuple(span_scores.shape[:2])
            or task.text_len != text_len
            or task.field_names != list(field_names)
        ):
            return None  # not the task resolved for this slot: gliner2 decodes it
        instances, fields = task.shape
        return {
            span_scores[inst, :, -text_len:][fidx].data_ptr(): task.rows[inst * fields + fidx]
            for inst in range(instances)
            for fidx in range(fields)
        }


def _extract_from_batch(
    self: Any,
    batch: Any,
    threshold: float,
    metadata_list: list[dict],
    include_confidence: bool,
    include_spans: bool,
    hidden_states: list[torch.Tensor] | None = None,
) -> list[dict[str, Any]]:
    if not getattr(self, "strict_extraction", True) or any(
        self._metadata_overlap_policy(metadata) is not None for metadata in metadata_list
    ):
        return type(self)._extract_from_batch(
            self, batch, threshold, metadata_list, include_confidence, include_spans, hidden_states
        )
    token_embs, schema_embs = self.processor.extract_embeddings_from_batch(
        self.encode_tokens(batch, hidden_states), batch.input_ids, batch
    )
    raw_logits, pred_counts = self._compute_direct_span_logits_batched(
        batch, token_embs, schema_embs
    )
    _active.batch = resolve_batch(batch, raw_logits, metadata_list, threshold)
    try:
        return self._extract_from_batch_sync_collapsed(
            batch=batch,
            all_schema_embs=schema_embs,
            all_raw_logits=raw_logits,
            all_pred_counts=pred_counts,
            threshold=threshold,
            metadata_list=metadata_list,
            include_confidence=include_confidence,
            include_spans=include_spans,
        )
    finally:
        _active.batch = None


def _decode_span_probabilities(self: Any, *args: Any) -> None:
    # gliner2 calls this positionally: (results, schema_name, task_type, field_names,
    # span_scores, raw_logits, pred_count, text_len, text_tokens, original_text,
    # start_mapping, ...); the same positions are passed on unchanged.
    field_names, span_scores, text_len, start_mapping = args[3], args[4], args[7], args[10]
    current = getattr(_active, "batch", None)
    _active.rows = (
        current.rows_for(start_mapping, field_names, span_scores, text_len) if current else None
    )
    try:
        type(self)._decode_span_probabilities(self, *args)
    finally:
        _active.rows = None


def _find_spans(
    self: Any,
    scores: torch.Tensor,
    threshold: float,
    text_len: int,
    text: str,
    start_map: list[int],
    end_map: list[int],
) -> list[Span]:
    rows = getattr(_active, "rows", None)
    row = rows.get(scores.data_ptr()) if rows else None
    if row is None or threshold < row.floor:
        return type(self)._find_spans(self, scores, threshold, text_len, text, start_map, end_map)
    cut = _as_dtype(threshold, scores.dtype)
    # Already resolved and ranked: gliner2's finalize_spans keeps them as they are.
    return [span for span in row.spans if span[1] >= cut]


@functools.lru_cache(maxsize=256)
def _as_dtype(threshold: float, dtype: torch.dtype) -> float:
    """The threshold as torch compares it with a `dtype` tensor: rounded to that dtype."""
    return torch.tensor(threshold, dtype=dtype).item()


def _thresholds(metadata: dict, default: float) -> list[float]:
    found = [default]
    for key in ("entity_metadata", "field_metadata", "relation_metadata"):
        for meta in (metadata.get(key) or {}).values():
            if isinstance(meta, dict) and isinstance(meta.get("threshold"), int | float):
                found.append(float(meta["threshold"]))
    return found


def _has_validators(metadata: dict) -> bool:
    return any(
        isinstance(meta, dict) and meta.get("validators")
        for key in ("entity_metadata", "field_metadata")
        for meta in (metadata.get(key) or {}).values()
    )


def _decodable(text: str, starts: list[int], ends: list[int]) -> bool:
    """Word tokens non-empty, disjoint and ascending (so char overlap == token overlap), and
    none blank (so no span's stripped text is empty, which gliner2 would drop)."""
    return (
        all(s < e for s, e in zip(starts, ends, strict=True))
        and all(ends[i] <= starts[i + 1] for i in range(len(starts) - 1))
        and all(text[s:e].strip() for s, e in zip(starts, ends, strict=True))
    )


def resolve_batch(
    batch: Any,
    raw_logits: list[list[torch.Tensor | None]],
    metadata_list: list[dict],
    threshold: float,
) -> _Batch:
    """Every span row of the batch thresholded at its sample's floor, ranked and resolved."""
    resolved = _Batch()
    pending: list[tuple[int, _Task, torch.Tensor]] = []  # (sample, task, scores [rows, T, W])
    for index in range(len(batch)):
        metadata = metadata_list[index]
        starts, ends = batch.start_mappings[index], batch.end_mappings[index]
        text = batch.original_texts[index]
        if _has_validators(metadata) or not _decodable(text, starts, ends):
            continue  # gliner2 decodes this sample (validators filter before resolution)
        floor = min(_thresholds(metadata, threshold))
        tasks: list[_Task] = []
        for task_index, logits in enumerate(raw_logits[index]):
            if logits is None:
                continue
            instances, fields = logits.shape[:2]
            text_len = len(starts)
            scores = torch.sigmoid(logits)[:, :, -text_len:].reshape(
                instances * fields, -1, logits.shape[-1]
            )
            tokens = batch.schema_tokens_list[index][task_index]
            names = [tokens[k + 1] for k in range(len(tokens) - 1) if tokens[k] in _FIELD_MARKS]
            rows = [_Row(floor) for _ in range(len(scores))]
            task = _Task((instances, fields), text_len, names, rows)
            tasks.append(task)
            pending.append((index, task, scores))
        if id(starts) in resolved.samples:
            return _Batch()  # shared mapping objects: the slots cannot be told apart
        resolved.samples[id(starts)] = _Sample(tasks)
    if pending:
        _resolve_rows(batch, pending)
    return resolved


def _resolve_rows(batch: Any, pending: list[tuple[int, _Task, torch.Tensor]]) -> None:
    first = pending[0][2]
    device, width = first.device, first.shape[-1]
    longest = max(scores.shape[1] for _, _, scores in pending)
    samples = sorted({index for index, _, _ in pending})
    slot = {index: n for n, index in enumerate(samples)}
    # Per row: its sample and its floor.
    row_sample = torch.tensor(
        [slot[index] for index, _, scores in pending for _ in range(len(scores))], device=device
    )
    floors = torch.tensor(
        [task.rows[0].floor for _, task, scores in pending for _ in range(len(scores))],
        device=device,
    )
    valid_span = _valid_spans(batch, samples, longest, width, device)[row_sample]
    scores = torch.cat(
        [F.pad(s, (0, 0, 0, longest - s.shape[1]), value=float("nan")) for _, _, s in pending]
    )
    floor_cut = (floors * (1 - _FLOOR_MARGIN) - 1e-6).clamp(min=0)[:, None, None]
    valid = valid_span & (scores.float() >= floor_cut)  # NaN (padding) is never valid
    busy = valid.flatten(1).any(1).nonzero().squeeze(1)  # rows with any candidate
    if not len(busy):
        return
    scores, valid = scores[busy], valid[busy]
    kept, rank = resolve_greedy(scores, valid)

    where = kept.nonzero()
    row, start, span_width = where.unbind(1)
    order = torch.argsort(row * rank.shape[1] + rank[row, start * width + span_width])
    where = where[order]
    confidences = scores[tuple(where.unbind(1))].tolist()
    where[:, 0] = busy[where[:, 0]]
    owners = [(index, task, r) for index, task, s in pending for r in range(len(s))]
    for (r, s, w), confidence in zip(where.tolist(), confidences, strict=True):
        index, task, task_row = owners[r]
        char_start = batch.start_mappings[index][s]
        char_end = batch.end_mappings[index][s + w]
        text = batch.original_texts[index][char_start:char_end].strip()
        task.rows[task_row].spans.append((text, confidence, char_start, char_end))


def _valid_spans(
    batch: Any, samples: list[int], longest: int, width: int, device: torch.device
) -> torch.Tensor:
    """[samples, T, W]: span (s, w) lies inside the text. (Its stripped text is never empty:
    texts with a blank token are left to gliner2, see `_decodable`.)"""
    offsets = torch.arange(longest)[:, None] + torch.arange(width)[None, :]  # s + w
    text_lens = torch.tensor([len(batch.start_mappings[i]) for i in samples])
    return (offsets[None] < text_lens[:, None, None]).to(device)


def resolve_greedy(scores: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gliner2's greedy overlap resolution for every row at once.

    `scores`/`valid`: [rows, T, W], span (s, w) covering tokens s..s+w. Returns the kept mask
    and each candidate's rank in its row ([rows, T*W], 0 = best: confidence descending, ties
    by row-major position). Rounds: a live span whose rank beats every live span overlapping
    it is kept (all better ones that overlap it are already gone, so the sequential greedy
    pass keeps it too); live spans overlapping it are dropped. Each round keeps at least the
    best live span of every row.
    """
    rows, tokens, width = scores.shape
    flat = scores.float().masked_fill(~valid, float("-inf")).reshape(rows, -1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand(rows, -1))
    priority = (flat.shape[1] - rank).reshape(rows, tokens, width) * valid  # > 0 when valid
    alive = valid.clone()
    kept = torch.zeros_like(valid)
    while bool(alive.any()):  # one device sync per round
        live = priority * alive
        best_near = _span_max(_token_max(live), width)
        chosen = alive & (live == best_near)
        kept |= chosen
        touched = _span_max(_token_max(chosen.to(priority.dtype)), width) > 0
        alive &= ~touched
    return kept, rank


def _token_max(values: torch.Tensor) -> torch.Tensor:
    """[rows, T, W] span values -> [rows, T]: the largest value of any span covering token t."""
    rows, tokens, width = values.shape
    # reach[s, o]: the largest value among spans starting at s that cover s + o
    reach = values.flip(-1).cummax(-1).values  # columns reversed: j = W - 1 - o
    # token t is covered from s = t - o, o = W-1-j: diagonal entries reach[t + j - (W-1), j]
    padded = F.pad(reach, (0, 0, width - 1, 0))
    row_stride, token_stride, width_stride = padded.stride()
    diagonals = padded.as_strided(
        (rows, tokens, width), (row_stride, token_stride, token_stride + width_stride)
    )
    return diagonals.amax(-1)


def _span_max(per_token: torch.Tensor, width: int) -> torch.Tensor:
    """[rows, T] -> [rows, T, W]: the largest token value inside span (s, w)."""
    windows = F.pad(per_token, (0, width - 1)).unfold(1, width, 1)  # [s, w] = value[s + w]
    return windows.cummax(-1).values
