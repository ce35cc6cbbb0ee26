"""A real multi-node Ray cluster on one machine: a head and worker nodes, each its own
`ray start --block` process group with its own ports, so one node can be lost (SIGKILL to its
whole group, as a machine that dies) and started again while the others keep running.

The test of the cluster (`tests/cluster/`) and `bench/chaos.py --cluster` share it. Nothing
here touches another Ray on the machine: no `ray stop`, no default ports, its own temp dir.

    with LocalCluster(head_resources={"history_disk": 1, "front_door": 100}) as cluster:
        cluster.add_worker("models", resources={"model_node": 100})
        cluster.deploy(serve_config_path)
        ...
        cluster.kill_worker("models"); cluster.add_worker("models", ...)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.local_server import PROXY_CALLBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
RAY = ROOT / ".venv" / "bin" / "ray"
SERVE = ROOT / ".venv" / "bin" / "serve"


def _bin(path: Path, name: str) -> str:
    return str(path) if path.exists() else name


@dataclass
class Node:
    name: str
    process: subprocess.Popen
    log: Path
    resources: dict[str, float]
    metrics_port: int


@dataclass
class LocalCluster:
    """Head (GCS, dashboard, Serve controller and proxy) plus named worker nodes."""

    head_cpus: int = 2
    head_resources: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Short: Unix socket paths under it must stay below 107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.http_port = free_port()
        self._worker_ports = 20000 + (os.getpid() % 100) * 400  # private worker port ranges
        self._started = 0

    # ---- nodes ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled"),
            "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": PROXY_CALLBACK,
            "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **self.env,
        }
        env.pop("RAY_ADDRESS", None)
        return env

    def _start(self, name: str, args: list[str], cpus: int, resources: dict[str, float]) -> Node:
        metrics_port = free_port()
        self._started += 1  # a fresh worker port range per start: a lost node's may linger
        low = self._worker_ports + 40 * self._started
        command = [
            _bin(RAY, "ray"),
            "start",
            "--block",
            f"--num-cpus={cpus}",
            f"--resources={json.dumps(resources)}",
            f"--metrics-export-port={metrics_port}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--min-worker-port={low}",
            f"--max-worker-port={low + 39}",
            "--object-store-memory=200000000",
            "--disable-usage-stats",
            *args,
        ]
        log = self.temp_dir / f"{name}.log"
        process = subprocess.Popen(  # noqa: S603 - fixed command line
            command,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=self._environment(),
            cwd=ROOT,
            start_new_session=True,  # its own process group: losing the node kills all of it
        )
        node = Node(name, process, log, resources, metrics_port)
        self.nodes[name] = node
        return node

    def start_head(self) -> Node:
        node = self._start(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
                f"--temp-dir={self.temp_dir}",
            ],
            self.head_cpus,
            self.head_resources,
        )
        self._wait_nodes({"head"})
        return node

    def add_worker(
        self, name: str, cpus: int = 2, resources: dict[str, float] | None = None
    ) -> Node:
        node = self._start(
            name,
            [f"--address={self.address}", "--node-ip-address=127.0.0.1"],
            cpus,
            resources or {},
        )
        self._wait_nodes(set(self.nodes))
        return node

    def kill_worker(self, name: str) -> None:
        """Lose a node at once: SIGKILL to every process of it (raylet, workers, agents), as
        a machine that dies; none of them lingers to answer one more request."""
        node = self.nodes.pop(name)
        _signal_group(node.process, signal.SIGKILL)
        node.process.wait(timeout=30)
        _kill_session(node.process.pid)

    def _state(self, kind: str, *extra: str) -> list[dict[str, Any]]:
        """`ray list <kind>` from the state API (empty while it does not answer yet)."""
        result = subprocess.run(  # noqa: S603
            [
                _bin(RAY, "ray"),
                "list",
                kind,
                "--address",
                self.dashboard_url,
                "--format",
                "json",
                "--limit",
                "10000",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=self._environment(),
        )
        return _json_list(result)

    def _alive_resources(self) -> list[dict[str, float]]:
        return [n.get("resources_total", {}) for n in self._state("nodes") if n["state"] == "ALIVE"]

    def _wait_nodes(self, names: set[str], timeout_s: float = 120.0) -> None:
        """Until every started node is alive (each carries a resource named after it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name in names:
                if self.nodes[name].process.poll() is not None:
                    raise RuntimeError(f"ray node {name!r} exited: {self.tail(name, 80)}")
            alive = self._alive_resources()
            if len(alive) >= len(names):
                return
            time.sleep(1.0)
        raise TimeoutError(f"ray nodes {sorted(names)} not alive in {timeout_s:.0f} s")

    def tail(self, name: str, lines: int = 30) -> str:
        node = self.nodes.get(name)
        path = node.log if node else self.temp_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ---- Serve ---------------------------------------------------------------------------

    def serve_config(
        self, server_config: Path, storage_root: Path, app_name: str | None = None
    ) -> Path:
        """serve_config.yaml as shipped, pointed at this cluster's port and the given config."""
        config: dict[str, Any] = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
        config["http_options"]["port"] = self.http_port
        app = config["applications"][0]
        app["args"] = {"config": str(server_config), "storage_root": str(storage_root)}
        app["name"] = app_name or app["name"]
        path = self.temp_dir / "serve_config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def deploy(self, serve_config: Path) -> None:
        subprocess.run(  # noqa: S603
            [_bin(SERVE, "serve"), "deploy", "--address", self.dashboard_url, str(serve_config)],
            check=True,
            capture_output=True,
            timeout=120,
            env=self._environment(),
        )

    def status(self) -> dict[str, Any]:
        """`serve status` as a dict: each application's and deployment's status."""
        result = subprocess.run(  # noqa: S603
            [_bin(SERVE, "serve"), "status", "--address", self.dashboard_url],
            capture_output=True,
            text=True,
            timeout=60,
            env=self._environment(),
        )
        return yaml.safe_load(result.stdout) or {} if result.returncode == 0 else {}

    def wait_running(self, timeout_s: float = 600.0) -> None:
        """Until every application is RUNNING and the proxy answers /ready."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = self.status()
            apps = last.get("applications", {})
            if apps and all(a.get("status") == "RUNNING" for a in apps.values()):
                try:
                    if httpx.get(f"{self.base_url}/ready", timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(2.0)
        raise TimeoutError(f"serve not RUNNING in {timeout_s:.0f} s; last status: {last}")

    def replica_nodes(self) -> dict[str, set[str]]:
        """Deployment name -> the node ids its live replicas run on (Ray's state API)."""
        placed: dict[str, set[str]] = {}
        for actor in self._state("actors", "--filter", "state=ALIVE", "--detail"):
            name = actor.get("name") or ""
            if name.startswith("SERVE_REPLICA::"):
                deployment = name.split("::")[1].split("#")[1]
                placed.setdefault(deployment, set()).add(actor.get("node_id", ""))
        return placed

    def node_ids(self) -> dict[str, str]:
        """Our node name -> Ray node id, matched by the resources each node was started with."""
        ids = {}
        for entry in self._state("nodes"):
            if entry.get("state") != "ALIVE":
                continue
            total = entry.get("resources_total", {})
            for name, node in self.nodes.items():
                if node.resources and all(total.get(k) == v for k, v in node.resources.items()):
                    ids[name] = entry["node_id"]
        return ids

    # ---- lifetime ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Workers first, then the head: SIGTERM (graceful), SIGKILL what is left."""
        for name in [n for n in self.nodes if n != "head"] + ["head"]:
            node = self.nodes.pop(name, None)
            if node is None:
                continue
            _signal_group(node.process, signal.SIGTERM)
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(node.process, signal.SIGKILL)
            _kill_session(node.process.pid)  # e.g. vLLM's engine processes, left orphaned
        shutil.rmtree(self.temp_dir, ignore_errors=True)  # Ray's session: logs, sockets

    def __enter__(self) -> LocalCluster:
        try:
            self.start_head()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# configs/cluster.yaml's placement: the head holds the Recorder's disk and the front door.
HEAD_NODE = {"history_disk": 1.0, "front_door": 100.0}
MODEL_NODE = {"model_node": 100.0}  # the worker: every model replica


@contextmanager
def deployed_cluster(
    server_config: Path, storage_root: Path, app_name: str | None = None, timeout_s: float = 600
) -> Iterator[LocalCluster]:
    """A head and a model node, the app deployed with `serve deploy` and RUNNING."""
    with LocalCluster(head_resources=HEAD_NODE) as cluster:
        cluster.add_worker("models", resources=MODEL_NODE)
        cluster.deploy(cluster.serve_config(server_config, storage_root, app_name))
        try:
            cluster.wait_running(timeout_s=timeout_s)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nhead log:\n{cluster.tail('head')}") from None
        yield cluster


def _kill_session(session: int, timeout_s: float = 10.0) -> None:
    """SIGKILL what is left of a node: a process that left its group is still in its session
    (vLLM's engine core and workers do, and outlive the replica that started them)."""
    deadline = time.monotonic() + timeout_s
    while (survivors := _session_members(session)) and time.monotonic() < deadline:
        for pid in survivors:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _session_members(session: int) -> list[int]:
    """Live processes of a session (field 6 of /proc/<pid>/stat), zombies left out."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _json_list(result: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    """A state-API CLI's JSON output; empty while the API is not answering yet."""
    if result.returncode != 0:
        return []
    try:
        parsed = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return []
    return parsed if isinstance(parsed, list) else []
