"""The GLiNER2 engine: loading checkpoints and running `batch_extract`. No Ray in here."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from gliner2 import GLiNER2, Schema

from app.engines import gliner2_spans, gliner2_tensor_decode, gliner2_windows
from app.engines.gliner2_output import described_relation_keys, merge_described_relations
from app.engines.gliner2_windows import Windows
from app.protocol import ApiError, ApiException, ExtractOptions, ResolvedModel, quoted
from app.weights import locate

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class CompiledSchema:
    schema: Schema
    relation_keys: dict[str, str]  # gliner2's output key -> the relation name asked for


@dataclass
class LoadedEncoder:
    key: str
    model: GLiNER2
    device: str
    dtype: str

    def count_tokens(self, texts: list[str]) -> int:
        tokenizer = self.model.processor.tokenizer
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return sum(len(ids) for ids in encoded)


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("encoder.device is cuda but this replica sees no GPU (num_gpus > 0?)")
    return device


def pick_dtype(dtype: str, device: str) -> str:
    if dtype != "auto":
        return dtype
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def cpu_has_native_bf16() -> bool:
    """avx512_bf16 or AMX: oneDNN then runs bfloat16 matmuls natively. On such a CPU (AMD
    EPYC) the demo encoder ran 1.8-2.0x fp32's texts/s, labels as fp32's, entity F1 0.987-1.0
    against fp32 (bench/span_decode.py --dtypes); without it, bfloat16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: no cheap way to know, and fp32 is the safe choice
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def enable_flash(extractor: GLiNER2) -> bool:
    """gliner2's DisentangledFlash (Triton kernels for DeBERTa's disentangled attention) where
    the backbone is DeBERTa-v2/v3 and the optional package is installed; off otherwise."""
    backbone = getattr(getattr(extractor, "encoder", None), "config", None)
    if type(backbone).__name__ != "DebertaV2Config":
        return False
    try:
        extractor.enable_disentangled_flash()
    except ImportError:
        logger.info("DisentangledFlash not installed (pip install gliner2[disentangled-flash])")
        return False
    except Exception:  # a kernel that cannot run here must not cost the replica its model
        logger.warning(
            "DisentangledFlash could not be enabled; attention stays as is", exc_info=True
        )
        return False
    return True


class GLiNER2Engine:
    """Loads GLiNER2 checkpoints and runs extraction on one device in one precision."""

    def __init__(
        self,
        device: str = "auto",
        dtype: str = "auto",
        torch_threads: int | None = None,
        allow_hub_downloads: bool = False,
        span_decoding: str = "tensor",
        disentangled_flash: bool = True,
    ) -> None:
        if torch_threads:
            torch.set_num_threads(torch_threads)
        if span_decoding not in ("tensor", "library"):
            raise ValueError(f"span_decoding must be 'tensor' or 'library', not {span_decoding!r}")
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.allow_hub_downloads = allow_hub_downloads
        self.span_decoding = span_decoding
        self.disentangled_flash = disentangled_flash

    def load(self, model: ResolvedModel) -> LoadedEncoder:
        where = locate(
            local_dir=model.local_dir,
            hub_id=model.hub_id,
            allow_downloads=self.allow_hub_downloads,
            model_id=model.requested_id,
        )
        if where.status != "available":
            raise ApiException(ApiError.model_unavailable(where.message))
        source = where.path or model.hub_id
        started = time.perf_counter()
        try:
            extractor = GLiNER2.from_pretrained(source, map_location=self.device)
        except Exception as exc:  # a broken or unreachable checkpoint must not kill the replica
            raise ApiException(
                ApiError.model_unavailable(
                    f"Model {quoted(model.requested_id)} could not be loaded from {source}: {exc}. "
                    "Check the catalog entry's weights, or rebuild with `make models`."
                )
            ) from exc
        if self.dtype != "float32":
            extractor = extractor.to(_DTYPES[self.dtype])
        extractor.eval()
        flash = self.disentangled_flash and self.device == "cuda" and enable_flash(extractor)
        tensor = self.span_decoding == "tensor" and gliner2_tensor_decode.install(extractor)
        logger.info(
            "loaded %s from %s on %s/%s in %.1fs (span decoding: %s, DisentangledFlash: %s)",
            model.model_key,
            source,
            self.device,
            self.dtype,
            time.perf_counter() - started,
            "tensor" if tensor else "library",
            "on" if flash else "off",
        )
        return LoadedEncoder(model.model_key, extractor, self.device, self.dtype)

    @staticmethod
    def build_schema(schema: dict[str, Any]) -> CompiledSchema:
        try:
            compiled = Schema.from_dict(schema)
        except Exception as exc:  # pydantic or builder rejection: the client's schema
            raise ApiException(ApiError.invalid(f"schema rejected: {exc}", "schema")) from exc
        return CompiledSchema(compiled, described_relation_keys(schema))

    def extract(
        self,
        loaded: LoadedEncoder,
        texts: list[str],
        schemas: list[CompiledSchema],
        options: ExtractOptions,
        batch_size: int,
    ) -> list[dict[str, Any] | ApiError]:
        """One result per text, or the ApiError that text's request earned (its schema
        leaves no room for text). Texts longer than the window run as windows, merged."""
        model = loaded.model
        window = gliner2_windows.window_of(model)
        sizes: dict[int, int] = {}  # the texts of one request share one schema object
        plans: list[Windows | ApiError] = []
        for text, schema in zip(texts, schemas, strict=True):
            size = sizes.get(id(schema))
            if size is None:
                size = sizes[id(schema)] = gliner2_windows.schema_tokens(model, schema.schema)
            try:
                plans.append(gliner2_windows.plan(model, window, text, schema.schema, size))
            except ApiException as exc:
                plans.append(exc.error)
        # One engine call for whole texts and windows alike, with offsets and confidences on:
        # windows are merged with them, and every span is fitted to the client's text with
        # them, before the result is shaped by the client's include_* flags.
        runnable = [(p, s) for p, s in zip(plans, schemas, strict=True) if isinstance(p, Windows)]
        run_texts = [text for plan, _ in runnable for text in plan.texts]
        run_schemas = [schema for plan, schema in runnable for _ in plan.texts]
        full = ExtractOptions(options.threshold, True, True)
        ran = iter(self._run(model, run_texts, run_schemas, full, batch_size))
        results: list[dict[str, Any] | ApiError] = []
        for plan, schema in zip(plans, schemas, strict=True):
            if isinstance(plan, ApiError):
                results.append(plan)
                continue
            parts = [next(ran) for _ in plan.texts]
            merged = gliner2_windows.merge(plan, parts) if plan.chunks else parts[0]
            shaped = gliner2_spans.shape(gliner2_spans.fit(merged, plan.text), options)
            results.append(merge_described_relations(shaped, schema.relation_keys))
        return results

    @staticmethod
    def _run(
        model: GLiNER2,
        texts: list[str],
        schemas: list[CompiledSchema],
        options: ExtractOptions,
        batch_size: int,
    ) -> list[dict[str, Any]]:
        # More texts than one batch: run them shortest first, so each batch pads to texts of
        # about its own length, and hand the results back in the order asked.
        order = list(range(len(texts)))
        if len(texts) > batch_size:
            order.sort(key=lambda i: len(texts[i]))
        ran = model.batch_extract(
            [texts[i] for i in order],
            [schemas[i].schema for i in order],
            batch_size=batch_size,
            threshold=options.threshold,
            include_confidence=options.include_confidence,
            include_spans=options.include_spans,
        )
        results: list[dict[str, Any]] = [{}] * len(texts)
        for position, index in enumerate(order):
            results[index] = ran[position]
        return results
