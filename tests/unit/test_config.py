"""Config and catalog validation: mistakes fail before anything starts, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from app.catalog import Catalog, load_catalog, load_jobs
from app.config import DeploymentOptions, ServerConfig, load_server_config, resolve_config_path
from deployments.graph import validate_graph

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


MODEL = {
    "id": "org/enc",
    "kind": "encoder",
    "engine": "gliner2",
    "weights": {"local_dir": "enc"},
    "display_name": "Enc",
}


@pytest.mark.parametrize("name", ["server.yaml", "test.yaml", "cluster.yaml", "gpu-cluster.yaml"])
def test_shipped_configs_load_and_validate(name: str) -> None:
    config = load_server_config(ROOT / "configs" / name)
    assert config.catalog_path.is_absolute() and config.catalog_path.exists()
    validate_graph(config)


def test_serve_config_points_at_the_builder() -> None:
    serve_config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = serve_config["applications"][0]
    assert app["import_path"] == "deployments.graph:build_app"
    assert resolve_config_path(app["args"]["config"]).exists()


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="max_batch"):
        ServerConfig.model_validate({"encoder": {"max_batch": 4}})


def test_autoscaling_bounds() -> None:
    with pytest.raises(ValidationError, match="min_replicas"):
        DeploymentOptions.model_validate({"autoscaling": {"min_replicas": 3, "max_replicas": 1}})


def test_serve_options_choose_autoscaling_or_replicas() -> None:
    fixed = DeploymentOptions(num_replicas=2, num_cpus=0.5).serve_options()
    assert fixed["num_replicas"] == 2 and fixed["ray_actor_options"]["num_cpus"] == 0.5
    scaled = DeploymentOptions.model_validate(
        {"num_replicas": None, "autoscaling": {"min_replicas": 1, "max_replicas": 4}}
    ).serve_options()
    assert "num_replicas" not in scaled and scaled["autoscaling_config"]["max_replicas"] == 4
    pinned = DeploymentOptions(resources={"history_disk": 1}).serve_options()
    assert pinned["ray_actor_options"]["resources"] == {"history_disk": 1}


def test_catalog_rejects_duplicate_ids_and_aliases() -> None:
    with pytest.raises(ValidationError, match="used by"):
        Catalog.model_validate(
            {"models": [MODEL, {**MODEL, "id": "other", "aliases": ["org/enc"]}]}
        )


def test_catalog_rejects_an_engine_of_the_wrong_kind() -> None:
    with pytest.raises(ValidationError, match="runs on"):
        Catalog.model_validate({"models": [{**MODEL, "engine": "vllm"}]})


def test_weights_need_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Catalog.model_validate({"models": [{**MODEL, "weights": {}}]})


def test_catalog_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, "catalog.yaml", {"models": [MODEL]}))
    assert catalog.models[0].weights.local_dir == tmp_path / "enc"


def test_job_with_unknown_base_is_rejected(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, "catalog.yaml", {"models": [MODEL]}))
    jobs = write(
        tmp_path,
        "jobs.yaml",
        {"jobs": [{"id": "job_1", "base_model": "nope", "artifact_dir": "j"}]},
    )
    with pytest.raises(ValueError, match="not in the catalog"):
        load_jobs(jobs, catalog)


def test_preload_must_name_a_known_model(tmp_path: Path) -> None:
    write(tmp_path, "catalog.yaml", {"models": [MODEL]})
    config = write(tmp_path, "server.yaml", {"encoder": {"preload": ["missing/model"]}})
    with pytest.raises(ValueError, match="missing/model"):
        validate_graph(load_server_config(config))


def test_decoder_models_must_be_decoders(tmp_path: Path) -> None:
    decoder = {**MODEL, "id": "llm", "kind": "decoder", "engine": "vllm"}
    write(tmp_path, "catalog.yaml", {"models": [MODEL, decoder]})
    good = write(tmp_path, "ok.yaml", {"decoder": {"models": ["llm"]}})
    validate_graph(load_server_config(good))
    bad = write(tmp_path, "bad.yaml", {"decoder": {"models": ["org/enc"]}})
    with pytest.raises(ValueError, match="not a decoder"):
        validate_graph(load_server_config(bad))
