"""The GLiNER2 engine: loading checkpoints and running `batch_extract`. No Ray in here."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch
from gliner2 import GLiNER2, Schema

from app.engines.gliner2_output import described_relation_keys, merge_described_relations
from app.protocol import ApiError, ApiException, ExtractOptions, ResolvedModel
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
    if device != "cuda":
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


class GLiNER2Engine:
    """Loads GLiNER2 checkpoints and runs extraction on one device in one precision."""

    def __init__(
        self,
        device: str = "auto",
        dtype: str = "auto",
        torch_threads: int | None = None,
        allow_hub_downloads: bool = False,
    ) -> None:
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.allow_hub_downloads = allow_hub_downloads

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
                    f"Model {model.requested_id!r} could not be loaded from {source}: {exc}. "
                    "Check the catalog entry's weights, or rebuild with `make models`."
                )
            ) from exc
        if self.dtype != "float32":
            extractor = extractor.to(_DTYPES[self.dtype])
        extractor.eval()
        logger.info(
            "loaded %s from %s on %s/%s in %.1fs",
            model.model_key,
            source,
            self.device,
            self.dtype,
            time.perf_counter() - started,
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
    ) -> list[dict[str, Any]]:
        results = loaded.model.batch_extract(
            texts,
            [schema.schema for schema in schemas],
            batch_size=batch_size,
            threshold=options.threshold,
            include_confidence=options.include_confidence,
            include_spans=options.include_spans,
        )
        return [
            merge_described_relations(result, schema.relation_keys)
            for result, schema in zip(results, schemas, strict=True)
        ]
