"""configs/rayservice.yaml, the KubeRay manifest, checked offline without a Kubernetes cluster.

- The RayService against the RayService CRD's `v1` openAPIV3Schema
  (tests/contract/kuberay/ray.io_rayservices.yaml: KubeRay commit feeaf72, Apache-2.0, LICENSE
  beside it), the way an API server would: unknown fields are errors (a CRD's structural schema
  prunes them, and `kubectl apply` validates strictly by default), and the `x-kubernetes-*`
  extensions the CRD uses are each enforced (int-or-string, list keys, its CEL rules) or
  shown to have no bearing on validation (merge strategies).
- `serveConfigV2` against Ray Serve's own schema, and the server config it names loaded, its
  graph built and validated.
- The cluster against the graph: the resources Ray's autoscaler reads from each group (the
  autoscaler's own parser) hold every replica at both autoscaling bounds, the Recorder can only
  run on the head, beside the history volume, and the pods carry the env and metrics port.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import re
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema import ValidationError
from ray.autoscaler._private.kuberay.autoscaling_config import (
    _derive_autoscaling_config_from_ray_cr,
)
from ray.serve._private.build_app import build_app as build_serve_app
from ray.serve.schema import HTTPOptionsSchema, ServeApplicationSchema, ServeDeploySchema

from app.config import ServerConfig, load_server_config, resolve_config_path
from deployments.graph import AppArgs, build_app, validate_graph

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "configs" / "rayservice.yaml"
CRD = ROOT / "tests" / "contract" / "kuberay" / "ray.io_rayservices.yaml"
EPSILON = 1e-9

# ---- the CRD as a validator ---------------------------------------------------------------

BASE = jsonschema.Draft4Validator  # OpenAPI 3.0 schema objects are JSON Schema draft 4/5-ish

# Extensions that only steer server-side apply merges, not what a valid object is.
MERGE_ONLY = {"x-kubernetes-map-type", "x-kubernetes-list-map-keys"}  # map keys: see _list_type
ENFORCED = {"x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-validations"}


def _int_or_string(validator: Any, value: bool, instance: Any, schema: dict) -> Iterator:
    if value and (isinstance(instance, bool) or not isinstance(instance, int | str)):
        yield ValidationError(f"{instance!r} is neither an integer nor a string (int-or-string)")


def _list_type(validator: Any, list_type: str, instance: Any, schema: dict) -> Iterator:
    """`set`: items unique; `map`: items unique by the list-map keys (an absent key takes its
    schema default, as the API server defaults it before checking); `atomic`: no rule."""
    if not isinstance(instance, list) or list_type == "atomic":
        return
    if list_type == "set":
        seen = [json.dumps(item, sort_keys=True) for item in instance]
        for item in {s for s in seen if seen.count(s) > 1}:
            yield ValidationError(f"duplicate item {item} in a list of type set")
        return
    if list_type != "map":
        yield ValidationError(f"unknown x-kubernetes-list-type {list_type!r}")
        return
    keys = schema["x-kubernetes-list-map-keys"]
    properties = schema.get("items", {}).get("properties", {})
    seen_keys: set[str] = set()
    for item in instance:
        if not isinstance(item, dict):
            continue
        key = json.dumps({k: item.get(k, properties.get(k, {}).get("default")) for k in keys})
        if key in seen_keys:
            yield ValidationError(f"duplicate entry {key} in a list keyed by {keys}")
        seen_keys.add(key)


def _cel(validator: Any, rules: list[dict], instance: Any, schema: dict) -> Iterator:
    """The CRD's CEL rules, evaluated where their form is known; any other rule is an error,
    so a newer CRD with rules this check cannot read fails here instead of passing unread."""
    for rule in rules:
        text = rule["rule"].strip()
        if text == "self == oldSelf":
            continue  # a transition rule: it compares with the stored object, on update only
        membership = re.fullmatch(r"self in (\[.*\])", text)
        if membership:
            if instance not in ast.literal_eval(membership.group(1)):
                yield ValidationError(f"{instance!r}: {rule.get('message', text)}")
            continue
        yield ValidationError(f"cannot evaluate the CEL rule {text!r} offline")


def _nullable_type(validator: Any, types: Any, instance: Any, schema: dict) -> Iterator:
    if instance is None and schema.get("nullable"):
        return
    yield from BASE.VALIDATORS["type"](validator, types, instance, schema)


def _noop(validator: Any, value: Any, instance: Any, schema: dict) -> Iterator:
    return iter(())


KubernetesValidator = jsonschema.validators.extend(
    BASE,
    {
        "type": _nullable_type,
        "x-kubernetes-int-or-string": _int_or_string,
        "x-kubernetes-list-type": _list_type,
        "x-kubernetes-validations": _cel,
        **{name: _noop for name in MERGE_ONLY},
    },
)

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


def _closed(node: Any) -> Any:
    """A copy of the schema where every object with listed properties rejects others: what
    pruning plus strict field validation does to unknown fields (the CRD sets no
    x-kubernetes-preserve-unknown-fields; test_every_crd_extension_is_handled keeps it so)."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"):
            out[key] = _closed(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_schema() -> dict[str, Any]:
    # 1 MB of YAML: libyaml's loader where PyYAML has it (~8x faster than the pure-Python one).
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == "ray.io"
    assert crd["spec"]["names"]["kind"] == "RayService"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert v1["served"] and v1["storage"]
    return v1["schema"]["openAPIV3Schema"]


@functools.cache
def _closed_crd_schema() -> dict[str, Any]:
    return _closed(_crd_schema())


def _extensions(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("x-kubernetes-"):
                found.add(key)
            found |= _extensions(value)
    elif isinstance(node, list):
        for item in node:
            found |= _extensions(item)
    return found


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def crd_errors(resource: dict[str, Any]) -> list[str]:
    """Every reason the API server would refuse `resource`, as `path: message` lines."""
    validator = KubernetesValidator(_closed_crd_schema(), format_checker=FORMATS)
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(resource)
    ]
    # metadata is `type: object` in the CRD: the API server checks it as ObjectMeta itself.
    metadata = resource.get("metadata", {})
    unexpected = set(metadata) - {"name", "namespace", "labels", "annotations"}
    if unexpected:
        errors.append(f"metadata: unexpected keys {sorted(unexpected)}")
    name = metadata.get("name", "")
    if not (DNS_LABEL.fullmatch(name) and len(name) <= 63):
        errors.append(f"metadata/name: {name!r} is not a DNS-1123 label")
    if resource.get("apiVersion") != "ray.io/v1" or resource.get("kind") != "RayService":
        errors.append("apiVersion/kind: not ray.io/v1 RayService")
    return errors


# ---- the manifest -------------------------------------------------------------------------


def _documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def _one(kind: str) -> dict[str, Any]:
    (doc,) = [doc for doc in _documents() if doc["kind"] == kind]
    return doc


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return _one("RayService")


@pytest.fixture(scope="module")
def serve_config(service: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(service["spec"]["serveConfigV2"])


@pytest.fixture(scope="module")
def server_config(serve_config: dict[str, Any]) -> ServerConfig:
    (application,) = serve_config["applications"]
    args = AppArgs.model_validate(application["args"])
    return load_server_config(resolve_config_path(args.config))


@pytest.fixture(scope="module")
def node_types(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The node types Ray's autoscaler derives from the cluster spec (its own parser)."""
    ray_cluster = {
        "metadata": {"name": service["metadata"]["name"], "namespace": "default"},
        "spec": service["spec"]["rayClusterConfig"],
    }
    return _derive_autoscaling_config_from_ray_cr(ray_cluster)["available_node_types"]


@pytest.fixture(scope="module")
def replicas(serve_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Each deployment of the built application as Ray Serve would deploy it."""
    (application,) = serve_config["applications"]
    built = build_serve_app(build_app(application["args"]), name=application["name"])
    out = []
    for deployment in built.deployments:
        config = deployment._deployment_config
        scaling = config.autoscaling_config
        options = deployment.ray_actor_options
        out.append(
            {
                "name": deployment.name,
                "min": scaling.min_replicas if scaling else config.num_replicas,
                "max": scaling.max_replicas if scaling else config.num_replicas,
                "need": {
                    "CPU": options.get("num_cpus", 1),
                    "GPU": options.get("num_gpus", 0),
                    **options.get("resources", {}),
                },
            }
        )
    return out


def _containers(service: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cluster = service["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    return [(name, c) for name, group in groups for c in group["template"]["spec"]["containers"]]


# ---- the RayService against the CRD -------------------------------------------------------


def test_manifest_matches_the_rayservice_crd(service: dict[str, Any]) -> None:
    assert crd_errors(service) == []


def test_every_crd_extension_is_handled() -> None:
    """A newer CRD with an extension this check does not know (preserve-unknown-fields, an
    embedded resource) must fail here, not be skipped."""
    assert _extensions(_crd_schema()) <= ENFORCED | MERGE_ONLY


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value

    return mutate


HEAD = "spec.rayClusterConfig.headGroupSpec"
WORKER = "spec.rayClusterConfig.workerGroupSpecs.0"
HEAD_CONTAINER = f"{HEAD}.template.spec.containers.0"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set(f"{WORKER}.maxReplica", 5), "'maxReplica' was unexpected"),
        (_set(f"{HEAD_CONTAINER}.volumeMount", []), "'volumeMount' was unexpected"),
        (_set("spec.serveConfig", "x"), "'serveConfig' was unexpected"),
        (_set(f"{WORKER}.maxReplicas", "5"), "is not of type 'integer'"),
        (_set(f"{WORKER}.maxReplicas", 2**31), "is not a 'int32'"),
        (_set(f"{HEAD}.rayStartParams.metrics-export-port", 8080), "is not of type 'string'"),
        (_set(f"{HEAD_CONTAINER}.resources.limits.cpu", "four"), "does not match"),
        (_set(f"{HEAD_CONTAINER}.resources.limits.cpu", 0.5), "neither an integer nor a string"),
        (_set(f"{HEAD_CONTAINER}.ports.x", {"containerPort": 8080}), "duplicate entry"),
        (_set("spec.managedBy", "someone-else"), "the managedBy field value must be"),
        (_set("spec.rayClusterConfig", None), "None is not of type 'object'"),
    ],
    ids=[
        "misspelled-field",
        "misspelled-pod-field",
        "misspelled-spec-field",
        "wrong-type",
        "int32-overflow",
        "ray-start-param-not-a-string",
        "bad-quantity",
        "float-quantity",
        "duplicate-port",
        "cel-rule",
        "null-not-nullable",
    ],
)
def test_the_crd_check_rejects_mistakes(
    service: dict[str, Any], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    broken = copy.deepcopy(service)
    mutate(broken)
    errors = crd_errors(broken)
    assert any(expected in error for error in errors), errors


def test_an_unreadable_cel_rule_is_an_error() -> None:
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": "size(self) < 3"}]}
    errors = list(KubernetesValidator(schema).iter_errors("abc"))
    assert errors and "cannot evaluate" in errors[0].message


# ---- serveConfigV2 and the server config it names -----------------------------------------


def _unknown_keys(data: dict[str, Any], model: type) -> set[str]:
    return set(data) - set(model.model_fields)


def test_serve_config_v2_is_the_serve_application(serve_config: dict[str, Any]) -> None:
    schema = ServeDeploySchema.model_validate(serve_config)
    # Ray Serve ignores keys it does not know (forward compatibility): a typo would pass it.
    assert _unknown_keys(serve_config, ServeDeploySchema) == set()
    assert _unknown_keys(serve_config["http_options"], HTTPOptionsSchema) == set()
    for application in serve_config["applications"]:
        assert _unknown_keys(application, ServeApplicationSchema) == set()
    assert (schema.http_options.host, schema.http_options.port) == ("0.0.0.0", 8000)

    local = yaml.safe_load((ROOT / "serve_config.yaml").read_text())["applications"]
    (application,) = schema.applications
    (same,) = local
    assert application.import_path == same["import_path"] == "deployments.graph:build_app"
    assert (application.name, application.route_prefix) == (same["name"], same["route_prefix"])
    assert application.args["config"] == "configs/gpu-cluster.yaml"


def test_the_named_server_config_loads_and_validates(server_config: ServerConfig) -> None:
    validate_graph(server_config)
    assert server_config.catalog_path.exists()
    assert all(
        options.num_gpus > 0
        for options in (server_config.encoder.deployment, server_config.decoder.deployment)
    )


# ---- the cluster against the graph --------------------------------------------------------


def _place(demands: list[tuple[str, dict[str, float]]], nodes: list[dict[str, float]]) -> list[str]:
    """First-fit decreasing; the names of the replicas that did not fit. Ray places replicas
    by the same resources."""
    free = [dict(node) for node in nodes]
    left = []
    order = sorted(demands, key=lambda d: (d[1]["GPU"], len(d[1]), d[1]["CPU"]), reverse=True)
    for name, need in order:
        for node in free:
            if all(node.get(k, 0) + EPSILON >= v for k, v in need.items() if v):
                for k, v in need.items():
                    node[k] = node.get(k, 0) - v
                break
        else:
            left.append(name)
    return left


@pytest.mark.parametrize("bound", ["min", "max"])
def test_the_cluster_holds_every_replica(
    service: dict[str, Any],
    node_types: dict[str, dict[str, Any]],
    replicas: list[dict[str, Any]],
    bound: str,
) -> None:
    """At the autoscaling minima the head and the workers KubeRay starts (replicas) hold the
    graph, so it comes up without waiting for the autoscaler; at the maxima the head and every
    group's maxReplicas do."""
    workers = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    count = {g["groupName"]: g["replicas"] if bound == "min" else g["maxReplicas"] for g in workers}
    nodes = [node_types["headgroup"]["resources"]]
    for group, node_type in node_types.items():
        nodes += [node_type["resources"]] * count.get(group, 0)
    demands = [(r["name"], r["need"]) for r in replicas for _ in range(r[bound])]
    assert _place(demands, nodes) == []


def test_gpu_replicas_run_on_gpu_workers_only(
    service: dict[str, Any], node_types: dict[str, dict[str, Any]], replicas: list[dict[str, Any]]
) -> None:
    assert node_types["headgroup"]["resources"].get("GPU", 0) == 0
    gpu_groups = [name for name, t in node_types.items() if t["resources"].get("GPU", 0) > 0]
    assert gpu_groups
    models = ("EncoderDeployment", "Decoder:", "EmbedderDeployment")
    model_replicas = [r for r in replicas if r["name"].startswith(models)]
    kinds = {prefix for prefix in models for r in model_replicas if r["name"].startswith(prefix)}
    assert {"EncoderDeployment", "Decoder:"} <= kinds and all(
        r["need"]["GPU"] > 0 for r in model_replicas
    )
    smallest = min(node_types[g]["resources"]["GPU"] for g in gpu_groups)
    assert all(r["need"]["GPU"] <= smallest for r in model_replicas)
    # nvidia.com/gpu: Kubernetes wants requests equal to limits for extended resources.
    for group in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        if group["groupName"] in gpu_groups:
            resources = group["template"]["spec"]["containers"][0]["resources"]
            assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"]


def test_the_decoder_fits_one_worker(
    server_config: ServerConfig, node_types: dict[str, dict[str, Any]]
) -> None:
    gpus = max(t["resources"].get("GPU", 0) for t in node_types.values())
    assert server_config.decoder.tensor_parallel_size <= gpus


def test_the_recorder_runs_on_the_head_beside_the_history_volume(
    service: dict[str, Any],
    server_config: ServerConfig,
    node_types: dict[str, dict[str, Any]],
    replicas: list[dict[str, Any]],
) -> None:
    (recorder,) = [r for r in replicas if r["name"] == "Recorder"]
    custom = {k: v for k, v in recorder["need"].items() if k not in ("CPU", "GPU")}
    assert custom == dict(server_config.history.deployment.resources) and custom
    for resource, need in custom.items():
        offered = {n: t["resources"].get(resource, 0) for n, t in node_types.items()}
        assert offered.pop("headgroup") >= need, "the head offers the Recorder's resource"
        assert not any(offered.values()), "no worker offers it: the Recorder stays on the head"
        head = node_types["headgroup"]["resources"][resource]
        assert head < 2 * need, "room for one Recorder only (one writer)"

    # The history volume: a PVC (in the manifest) mounted on the head, holding the WAL and a
    # local storage root; no worker mounts it.
    claim = _one("PersistentVolumeClaim")
    assert set(claim["spec"]["accessModes"]) <= {"ReadWriteOnce", "ReadWriteOncePod"}
    assert claim["spec"]["resources"]["requests"]["storage"]
    head_pod = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    volumes = {
        v["name"]
        for v in head_pod["volumes"]
        if v.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"]
    }
    mounts = [
        Path(m["mountPath"])
        for m in head_pod["containers"][0]["volumeMounts"]
        if m["name"] in volumes
    ]
    assert mounts

    history = server_config.history
    remote = "://" in history.storage_root and not history.storage_root.startswith("file://")
    wal = history.wal_dir or (None if remote else str(Path(history.storage_root) / "_wal"))
    assert wal is not None, "a remote storage root needs a local wal_dir"
    local_paths = [Path(wal)] + ([] if remote else [Path(history.storage_root)])
    for path in local_paths:
        assert any(path.is_relative_to(mount) for mount in mounts), path
    for group in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        for volume in group["template"]["spec"].get("volumes", []):
            assert "persistentVolumeClaim" not in volume, "the history volume is the head's"


def test_every_pod_has_the_serve_env_and_metrics(
    service: dict[str, Any], server_config: ServerConfig
) -> None:
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == version("ray")
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    assert all(g["rayStartParams"]["metrics-export-port"] == "8080" for g in groups)
    images = set()
    for group, container in _containers(service):
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"]["value"] == "1", group
        callback = env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"]["value"]
        assert callback == "app.proxy_errors:proxy_middlewares", group
        # Ingress replicas may run on any pod: each needs the API keys.
        assert server_config.auth.keys_env in env, group
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 8080 and ports["serve"] == 8000, group
        images.add(container["image"])
    assert len(images) == 1
