"""The graph: one builder binds every deployment from typed config.

`serve_config.yaml` -> `import_path: deployments.graph:build_app` with `args: {config: ...}`.
Everything is validated here, before any replica starts. It lives in `deployments/` because it
imports them all: `app/` never imports `deployments/` (no import cycle).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from app.catalog import load_catalog, load_jobs
from app.config import ServerConfig, load_server_config, resolve_config_path, with_storage_root
from deployments.decoder import DecoderDeployment
from deployments.embedder import EmbedderDeployment
from deployments.encoder import EncoderDeployment
from deployments.ingress import Ingress
from deployments.limiter import Limiter
from deployments.recorder import Recorder
from deployments.resolver import ModelResolver


class AppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str = Field(
        "configs/server.yaml",
        description="Server config YAML; a relative path is taken from the project root.",
    )
    storage_root: str | None = Field(
        None, description="Overrides history.storage_root (a folder or a pyarrow.fs URI)."
    )


def validate_graph(config: ServerConfig) -> None:
    """Cross-file rules: every model has a backend, every preload id exists."""
    catalog = load_catalog(config.catalog_path)
    jobs = load_jobs(config.jobs_path, catalog)
    for model_id in config.decoder.models:
        model = catalog.find(model_id)
        if model is None or model.kind != "decoder":
            raise ValueError(f"decoder.models names {model_id!r}, not a decoder in the catalog")
    for model_id in config.encoder.preload:
        if catalog.find(model_id) is None and jobs.find(model_id) is None:
            raise ValueError(f"encoder.preload names {model_id!r}, which is not in the catalog")
    for model_id in config.embedder.models:
        model = catalog.find(model_id)
        if model is None or model.kind != "embedding":
            raise ValueError(
                f"embedder.models names {model_id!r}, not an embedding model in the catalog"
            )
    named = config.gliner2_api.model_id  # the default may be absent: /gliner-2 then says 404
    if named and catalog.find(named) is None and jobs.find(named) is None:
        raise ValueError(f"gliner2_api.model_id names {named!r}, which is not in the catalog")


def deployment_name(model_id: str) -> str:
    return "Decoder:" + re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id)


def build_graph(config: ServerConfig) -> Application:
    validate_graph(config)
    catalog = load_catalog(config.catalog_path)
    resolver = (
        serve.deployment(ModelResolver)
        .options(name="ModelResolver", **config.resolver.serve_options())
        .bind(
            str(config.catalog_path),
            str(config.jobs_path),
            config.hub.allow_downloads,
            config.encoder.preload,
            config.decoder.models,
            deployed_embedders=config.embedder.models,
        )
    )
    decoders = {}
    for model_id in config.decoder.models:
        model = catalog.find(model_id)
        assert model is not None
        weights = str(model.weights.local_dir or model.weights.hub_id)
        decoders[model.id] = (
            serve.deployment(DecoderDeployment)
            .options(name=deployment_name(model.id), **config.decoder.deployment.serve_options())
            .bind(config.decoder, weights, resolver, model.reasoning_parser)
        )
    encoder = (
        serve.deployment(EncoderDeployment)
        .options(name="EncoderDeployment", **config.encoder.deployment.serve_options())
        .bind(config.encoder, config.hub.allow_downloads, resolver)
    )
    embedder = None
    if config.embedder.models:  # one deployment holds every embedding model (they are small)
        folders: dict[str, str] = {}
        for model_id in config.embedder.models:
            entry = catalog.find(model_id)
            assert entry is not None
            folders[entry.id] = str(entry.weights.local_dir or entry.weights.hub_id)
        embedder = (
            serve.deployment(EmbedderDeployment)
            .options(name="EmbedderDeployment", **config.embedder.deployment.serve_options())
            .bind(config.embedder, folders, resolver)
        )
    recorder = (
        serve.deployment(Recorder)
        .options(name="Recorder", **config.history.deployment.serve_options())
        .bind(config.history)
    )
    limiter = (
        serve.deployment(Limiter)
        .options(name="Limiter", **config.quotas.deployment.serve_options())
        .bind(config.quotas, recorder)
    )
    return (
        serve.deployment(Ingress)
        .options(name="Ingress", **config.ingress.serve_options())
        .bind(
            resolver,
            encoder,
            decoders,
            recorder,
            limiter,
            config.auth,
            config.limits,
            config.quotas,
            config.gliner2_model(),
            embedder=embedder,
        )
    )


def build_app(args: dict | AppArgs | None = None) -> Application:
    parsed = args if isinstance(args, AppArgs) else AppArgs.model_validate(args or {})
    config = load_server_config(resolve_config_path(parsed.config))
    if parsed.storage_root:
        history = with_storage_root(config.history, parsed.storage_root, Path.cwd())
        config = config.model_copy(update={"history": history})
    return build_graph(config)
