"""The resolver and the GLiNER2 engine in-process, on the tiny offline models."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml

from app.engines.gliner2_engine import GLiNER2Engine, cpu_has_native_bf16, pick_dtype
from app.engines.gliner2_output import described_relation_keys, merge_described_relations
from app.protocol import ApiError, ApiException, ExtractOptions, ResolvedModel
from deployments.resolver import ModelResolver
from tests.conftest import ROOT, TINY_DIR, TINY_ID, TINY_JOB_ID


def resolver(jobs_path: Path | None = None) -> ModelResolver:
    configs = ROOT / "configs"
    return ModelResolver(
        str(configs / "catalog.yaml"), str(jobs_path or configs / "jobs.yaml"), False, [TINY_ID]
    )


def test_resolves_ids_aliases_and_jobs() -> None:
    r = resolver()
    base = asyncio.run(r.resolve(TINY_ID))
    alias = asyncio.run(r.resolve("tiny-encoder"))
    job = asyncio.run(r.resolve(TINY_JOB_ID))
    assert isinstance(base, ResolvedModel) and base.model_key == TINY_ID
    assert isinstance(alias, ResolvedModel) and alias.model_key == TINY_ID
    assert isinstance(job, ResolvedModel)
    assert job.model_key == TINY_JOB_ID and job.model_id == TINY_ID
    assert job.training_job_id == TINY_JOB_ID and job.local_dir != base.local_dir


def test_unknown_and_unloadable_models() -> None:
    r = resolver()
    missing = asyncio.run(r.resolve("nope"))
    hub = asyncio.run(r.resolve("fastino/gliner2-base-v1"))
    assert isinstance(missing, ApiError) and missing.status == 404
    assert isinstance(hub, ApiError) and hub.status == 409 and "hf download" in hub.message


def test_new_jobs_are_picked_up_without_restart(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("jobs: []\n")
    r = resolver(jobs)
    assert isinstance(asyncio.run(r.resolve("job_new")), ApiError)
    entry = {"id": "job_new", "base_model": TINY_ID, "artifact_dir": str(TINY_DIR)}
    jobs.write_text(yaml.safe_dump({"jobs": [entry]}))
    import os

    os.utime(jobs, (1, 1))  # a distinct mtime even within one clock tick
    assert asyncio.run(r.resolve("job_new")).model_key == "job_new"


def test_readiness_follows_replica_reports() -> None:
    r = resolver()
    assert asyncio.run(r.readiness())["ready"] is False
    asyncio.run(r.report_loaded("replica-1", [TINY_ID]))
    state = asyncio.run(r.readiness())
    assert state["ready"] is True and state["loaded"] == [TINY_ID]


@pytest.fixture(scope="module")
def engine() -> GLiNER2Engine:
    return GLiNER2Engine(device="cpu", dtype="float32")


def tiny(local_dir: Path = TINY_DIR) -> ResolvedModel:
    return ResolvedModel(TINY_ID, TINY_ID, "encoder", "gliner2", TINY_ID, "tiny", str(local_dir))


def test_engine_extracts_and_counts_tokens(engine: GLiNER2Engine) -> None:
    loaded = engine.load(tiny())
    schema = engine.build_schema({"entities": ["person"]})
    results = engine.extract(loaded, ["Tim Cook", "Apple"], [schema] * 2, ExtractOptions(0.3), 8)
    assert len(results) == 2 and "person" in results[0]["entities"]
    assert loaded.count_tokens(["tim cook"]) == 2


def test_engine_missing_weights_is_409(engine: GLiNER2Engine, tmp_path: Path) -> None:
    with pytest.raises(ApiException) as caught:
        engine.load(tiny(tmp_path / "absent"))
    assert caught.value.error.status == 409 and "make models" in caught.value.error.message


def test_engine_broken_checkpoint_is_409(engine: GLiNER2Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(TINY_DIR, broken)
    (broken / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ApiException) as caught:
        engine.load(tiny(broken))
    assert caught.value.error.status == 409


def test_engine_rejects_schema_gliner2_refuses(engine: GLiNER2Engine) -> None:
    with pytest.raises(ApiException) as caught:
        engine.build_schema({"entities": ["a"], "unknown": 1})
    assert caught.value.error.status == 422


def test_dtype_defaults() -> None:
    native = cpu_has_native_bf16()
    assert pick_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    assert pick_dtype("float16", "cuda") == "float16"


def test_described_relations_are_renamed() -> None:
    keys = described_relation_keys({"relations": {"a": {}, "b": {"description": "d"}}})
    assert keys == {"b: d": "b"}
    result = {"relation_extraction": {"a": [1], "b: d": [2], "b": []}}
    assert merge_described_relations(result, keys) == {"relation_extraction": {"a": [1], "b": [2]}}
