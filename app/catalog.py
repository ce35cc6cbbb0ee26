"""The model catalog and the fine-tuning job registry: what a `model_id` can name.

Pure data and lookups; the ModelResolver deployment wraps this. Paths in either file are
resolved against the file's own folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

ModelKind = Literal["encoder", "decoder", "embedding"]
# Where a model stands in its life: generally available, early access, or on its way out.
Lifecycle = Literal["ga", "preview", "deprecated"]
# Engines a kind may run on; the builder checks every model has a backend deployed.
ENGINES_BY_KIND: dict[str, set[str]] = {
    "encoder": {"gliner2"},
    "decoder": {"vllm"},
    "embedding": {"torch-embedding"},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeightsSource(_Strict):
    local_dir: Path | None = Field(None, description="A checkpoint directory on this machine.")
    hub_id: str | None = Field(None, description="A Hugging Face hub repository id.")

    @model_validator(mode="after")
    def _exactly_one(self) -> WeightsSource:
        if (self.local_dir is None) == (self.hub_id is None):
            raise ValueError("weights needs exactly one of local_dir or hub_id")
        return self


class CatalogModel(_Strict):
    id: str = Field(min_length=1, description="The id clients send as model / model_id.")
    kind: ModelKind = Field(
        description="encoder (extraction), decoder (generation) or embedding (vectors)."
    )
    engine: str = Field(description="Engine family that serves it, e.g. gliner2 or vllm.")
    weights: WeightsSource
    display_name: str = Field(description="Human-readable label.")
    aliases: list[str] = Field(default_factory=list, description="Other ids that resolve here.")
    demo: bool = Field(False, description="Built offline by `python -m app.models build`.")
    supports_training: bool = Field(False, description="Can be a fine-tuning base.")
    supports_on_demand_inference: bool | None = Field(
        None,
        description="Its fine-tunes can be served on a dedicated deployment (on-demand). "
        "Default: what supports_training says (on-demand serves the fine-tuned model).",
    )
    # `context_length` is the older key of this file; both read the same field.
    context_window: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("context_window", "context_length"),
        description="Max tokens of input (context length).",
    )
    input_price_per_million: float = Field(0.0, ge=0, description="USD per 1M input tokens.")
    output_price_per_million: float = Field(0.0, ge=0, description="USD per 1M output tokens.")
    cache_read_price_per_million: float | None = Field(
        None,
        ge=0,
        description="USD per 1M cached input tokens read. Default: the input price (models.mdx: "
        "a model without an explicit cache discount bills cached input at the input rate).",
    )
    cache_write_price_per_million: float | None = Field(
        None,
        ge=0,
        description="USD per 1M input tokens written to the cache. Default: the input price "
        "(models.mdx: without a separate cache-write line item, writes bill at the input rate).",
    )
    lifecycle: Lifecycle = Field("ga", description="ga, preview or deprecated.")
    reasoning_parser: str | None = Field(
        None,
        description="Decoders: vLLM's reasoning parser for the model's thinking section (e.g. "
        "deepseek_r1 for <think>...</think>). Unset: the model does not reason, and reasoning "
        "parameters are refused with a 400.",
    )
    tool_parser: str | None = Field(
        None,
        description="Decoders: vLLM's tool-call parser (e.g. hermes) for tool_choice auto. "
        "Unset: tools work with tool_choice required or a named function only.",
    )
    dimensions: int | None = Field(
        None,
        ge=1,
        description="Embedding models: the length of their vectors (listed; the engine checks "
        "a request's `dimensions` against the loaded model).",
    )
    created_at: str = Field("2026-01-01T00:00:00Z", description="ISO date shown in listings.")

    @property
    def cache_read_price(self) -> float:
        if self.cache_read_price_per_million is None:
            return self.input_price_per_million
        return self.cache_read_price_per_million

    @property
    def cache_write_price(self) -> float:
        if self.cache_write_price_per_million is None:
            return self.input_price_per_million
        return self.cache_write_price_per_million

    @property
    def on_demand(self) -> bool:
        if self.supports_on_demand_inference is None:
            return self.supports_training
        return self.supports_on_demand_inference

    @model_validator(mode="after")
    def _engine_fits_kind(self) -> CatalogModel:
        if self.engine not in ENGINES_BY_KIND[self.kind]:
            allowed = sorted(ENGINES_BY_KIND[self.kind])
            raise ValueError(
                f"model {self.id!r}: a {self.kind} runs on {allowed}, not {self.engine!r}"
            )
        return self


class JobEntry(_Strict):
    id: str = Field(min_length=1, description="Job id, e.g. job_abc123 or a UUID.")
    base_model: str = Field(description="Catalog id (or alias) of the model it was tuned from.")
    artifact_dir: Path | None = Field(None, description="A full fine-tuned checkpoint folder.")
    adapter_dir: Path | None = Field(None, description="A LoRA adapter folder on the base.")
    project_id: str | None = Field(None, description="Project the job belongs to.")
    display_name: str | None = None
    created_at: str = "2026-01-01T00:00:00Z"

    @model_validator(mode="after")
    def _one_artifact(self) -> JobEntry:
        if (self.artifact_dir is None) == (self.adapter_dir is None):
            raise ValueError(f"job {self.id!r} needs exactly one of artifact_dir or adapter_dir")
        return self


class Catalog(_Strict):
    models: list[CatalogModel]

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        seen: dict[str, str] = {}
        for model in self.models:
            for name in [model.id, *model.aliases]:
                if name in seen:
                    raise ValueError(
                        f"id or alias {name!r} is used by {seen[name]!r} and {model.id!r}"
                    )
                seen[name] = model.id
        return self

    def find(self, name: str) -> CatalogModel | None:
        for model in self.models:
            if name == model.id or name in model.aliases:
                return model
        return None


class JobRegistry(_Strict):
    jobs: list[JobEntry] = Field(default_factory=list)

    def find(self, job_id: str) -> JobEntry | None:
        return next((job for job in self.jobs if job.id == job_id), None)


def _resolve_dir(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def load_catalog(path: Path) -> Catalog:
    catalog = Catalog.model_validate(yaml.safe_load(path.read_text()) or {"models": []})
    base = path.parent
    models = [
        m.model_copy(
            update={"weights": WeightsSource(local_dir=_resolve_dir(m.weights.local_dir, base))}
        )
        if m.weights.local_dir is not None
        else m
        for m in catalog.models
    ]
    return Catalog(models=models)


def load_jobs(path: Path, catalog: Catalog) -> JobRegistry:
    if not path.exists():
        return JobRegistry()
    registry = JobRegistry.model_validate(yaml.safe_load(path.read_text()) or {"jobs": []})
    base = path.parent
    jobs = []
    for job in registry.jobs:
        if catalog.find(job.base_model) is None:
            raise ValueError(f"job {job.id!r}: base_model {job.base_model!r} is not in the catalog")
        if catalog.find(job.id) is not None:
            raise ValueError(f"job id {job.id!r} collides with a catalog model id")
        jobs.append(
            job.model_copy(
                update={
                    key: _resolve_dir(getattr(job, key), base)
                    for key in ("artifact_dir", "adapter_dir")
                    if getattr(job, key) is not None
                }
            )
        )
    return JobRegistry(jobs=jobs)
