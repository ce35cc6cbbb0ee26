"""ModelResolver deployment: owns the catalog and the job registry.

Answers what a `model_id` is (base model, alias or fine-tuning job) and whether this machine
can load it, and keeps which models encoder replicas hold, for readiness and listings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.catalog import Catalog, CatalogModel, JobEntry, JobRegistry, load_catalog, load_jobs
from app.protocol import ApiError, ResolvedModel
from app.weights import locate

# Encoder replicas report every 10 s; a replica silent for longer is taken as gone.
STALE_REPORT_S = 35.0


class ModelResolver:
    def __init__(
        self,
        catalog_path: str,
        jobs_path: str,
        allow_hub_downloads: bool,
        preload: list[str],
        deployed_decoders: list[str] | None = None,
        deployed_embedders: list[str] | None = None,
    ) -> None:
        self._catalog: Catalog = load_catalog(Path(catalog_path))
        self._jobs_path = Path(jobs_path)
        self._jobs_mtime: float | None = None
        self._jobs = JobRegistry()
        self._refresh_jobs()
        self._allow_downloads = allow_hub_downloads
        self._preload = list(preload)
        self._loaded: dict[str, tuple[float, set[str]]] = {}
        self._deployed_decoders = set(deployed_decoders or [])
        self._deployed_embedders = list(deployed_embedders or [])
        self._started: set[str] = set()

    def _refresh_jobs(self) -> None:
        """Re-read the job registry when the file changes: new jobs need no restart."""
        mtime = self._jobs_path.stat().st_mtime if self._jobs_path.exists() else None
        if mtime != self._jobs_mtime:
            self._jobs = load_jobs(self._jobs_path, self._catalog)
            self._jobs_mtime = mtime

    def _lookup(self, model_id: str) -> ResolvedModel | None:
        model = self._catalog.find(model_id)
        if model is not None:
            return ResolvedModel(
                requested_id=model_id,
                model_id=model.id,
                kind=model.kind,
                engine=model.engine,
                model_key=model.id,
                display_name=model.display_name,
                local_dir=str(model.weights.local_dir) if model.weights.local_dir else None,
                hub_id=model.weights.hub_id,
                input_price_per_million=model.input_price_per_million,
                output_price_per_million=model.output_price_per_million,
                cache_read_price_per_million=model.cache_read_price,
                reasoning_parser=model.reasoning_parser,
                tool_parser=model.tool_parser,
            )
        self._refresh_jobs()
        job = self._jobs.find(model_id)
        if job is None:
            return None
        base = self._catalog.find(job.base_model)
        assert base is not None  # load_jobs checked it
        return ResolvedModel(
            requested_id=model_id,
            model_id=base.id,
            kind=base.kind,
            engine=base.engine,
            model_key=job.id,
            display_name=job.display_name or f"{base.display_name} (job {job.id})",
            local_dir=str(job.artifact_dir or base.weights.local_dir or ""),
            hub_id=None if job.artifact_dir else base.weights.hub_id,
            adapter_dir=str(job.adapter_dir) if job.adapter_dir else None,
            training_job_id=job.id,
            input_price_per_million=base.input_price_per_million,
            output_price_per_million=base.output_price_per_million,
            cache_read_price_per_million=base.cache_read_price,
            reasoning_parser=base.reasoning_parser,
            tool_parser=base.tool_parser,
        )

    def _availability(self, model: ResolvedModel) -> tuple[str, str]:
        if model.kind == "decoder" and model.model_id not in self._deployed_decoders:
            return "not_deployed", (
                f"Model {model.requested_id!r} is in the catalog but this server runs no engine "
                f"for it: add {model.model_id!r} to decoder.models in the server config."
            )
        if model.kind == "embedding" and model.model_id not in self._deployed_embedders:
            return "not_deployed", (
                f"Model {model.requested_id!r} is in the catalog but this server runs no engine "
                f"for it: add {model.model_id!r} to embedder.models in the server config."
            )
        if model.adapter_dir and not (Path(model.adapter_dir) / "adapter_config.json").exists():
            return "missing", (
                f"Job {model.requested_id!r} has no LoRA adapter at {model.adapter_dir}. Build "
                "the offline models with `make models`, or fix adapter_dir in the job registry."
            )
        where = locate(
            local_dir=model.local_dir,
            hub_id=model.hub_id,
            allow_downloads=self._allow_downloads,
            model_id=model.requested_id,
        )
        return where.status, where.message

    def _loaded_keys(self) -> set[str]:
        now = time.monotonic()
        keys: set[str] = set()
        for seen, replica_keys in self._loaded.values():
            if now - seen < STALE_REPORT_S:
                keys |= replica_keys
        return keys

    async def resolve(self, model_id: str) -> ResolvedModel | ApiError:
        model = self._lookup(model_id)
        if model is None:
            return ApiError.model_not_found(model_id)
        status, message = self._availability(model)
        if status != "available":
            return ApiError.model_unavailable(message)
        return model

    async def report_loaded(
        self, replica_id: str, model_keys: list[str], what: str = "encoder deployment"
    ) -> None:
        """A replica of `what` (the encoder or the embedder deployment) holds these models."""
        self._loaded[replica_id] = (time.monotonic(), set(model_keys))
        self._started.add(what)

    async def report_started(self, what: str) -> None:
        """A replica of `what` (e.g. "decoder deployment") is up and serving."""
        self._started.add(what)

    async def started(self, what: str) -> bool:
        """Whether any replica of `what` has reported since this resolver started: one that
        never has is still cold-starting (a caller waiting on it gets 425, not 503)."""
        return what in self._started

    def _card(self, entry: CatalogModel | JobEntry, resolved: ResolvedModel) -> dict[str, Any]:
        """One catalog entry with the fields models.mdx documents. `supports_inference` and
        `supports_on_demand_inference` say what this server can serve now (errors.mdx sends a
        client here when a model exists but cannot be served); the rest is the catalog's."""
        status, message = self._availability(resolved)
        if status == "available" and resolved.model_key in self._loaded_keys():
            status = "loaded"
        servable = status in ("available", "loaded")
        base = entry if isinstance(entry, CatalogModel) else self._catalog.find(entry.base_model)
        assert base is not None  # load_jobs checked it
        card: dict[str, Any] = {
            "id": resolved.requested_id,
            "display_name": resolved.display_name,
            "task_type": resolved.kind,
            "engine": resolved.engine,
            "created_at": entry.created_at,
            "status": status,
            "status_message": message,
            "lifecycle": base.lifecycle,
            # models.mdx says "context length"; the name is context_window: both.
            "context_window": base.context_window,
            "context_length": base.context_window,
            "input_price_per_million": base.input_price_per_million,
            "output_price_per_million": base.output_price_per_million,
            "cache_read_price_per_million": base.cache_read_price,
            "cache_write_price_per_million": base.cache_write_price,
            "supports_inference": servable,
            "dimensions": base.dimensions,
        }
        if base.kind == "decoder":  # what agents need to know before sending tools/reasoning
            card |= {
                "supports_reasoning": base.reasoning_parser is not None,
                "supports_tool_choice_auto": base.tool_parser is not None,
                "reasoning_parser": base.reasoning_parser,
                "tool_parser": base.tool_parser,
            }
        if isinstance(entry, CatalogModel):
            card |= {
                "aliases": entry.aliases,
                "demo": entry.demo,
                "supports_training": entry.supports_training,
                "supports_on_demand_inference": servable and entry.on_demand,
            }
        else:  # a fine-tune: served on its own deployment (on-demand), not a training base
            card |= {
                "base_model": resolved.model_id,
                "training_job_id": entry.id,
                "supports_training": False,
                "supports_on_demand_inference": servable,
            }
        # A field with no value is left out rather than sent as null.
        return {key: value for key, value in card.items() if value is not None}

    async def list_models(self, include_jobs: bool = False) -> list[dict[str, Any]]:
        cards = []
        for model in self._catalog.models:
            resolved = self._lookup(model.id)
            assert resolved is not None
            cards.append(self._card(model, resolved))
        if include_jobs:
            self._refresh_jobs()
            for job in self._jobs.jobs:
                resolved = self._lookup(job.id)
                assert resolved is not None
                cards.append(self._card(job, resolved))
        return cards

    async def readiness(self) -> dict[str, Any]:
        loaded = self._loaded_keys()
        waiting = []
        for model_id in [*self._preload, *self._deployed_embedders]:
            resolved = self._lookup(model_id)
            if resolved is None or resolved.model_key not in loaded:
                waiting.append(model_id)
        return {"ready": not waiting, "waiting_for": waiting, "loaded": sorted(loaded)}
