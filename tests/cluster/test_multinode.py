"""The server on a real two-node Ray cluster: deployed with `serve deploy`, models on the worker
node, the Recorder on the node with the history disk, and the worker lost under load.

A head (`history_disk`: the Recorder; `front_door`: ingress, resolver, limiter; the proxy) and a
worker (`model_node`: the encoder and decoder replicas) are two `ray start --block` process
groups on this machine (`bench/cluster.py`). The worker is SIGKILLed while clients send
requests, then started again. Every answer meanwhile is a success or an error in its format's
shape; the controller brings the replicas back; afterwards not one acknowledged inference is
missing or doubled in history or billing, as a restarted server would read them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from bench.cluster import MODEL_NODE, LocalCluster, deployed_cluster
from tests.conftest import ROOT, TINY_ID, report_line

pytestmark = pytest.mark.cluster

API_KEY = "pio_sk_test_alpha"
LLM = "pioneer-test/llama-tiny-test"
CONFIG = ROOT / "configs" / "cluster.yaml"
RETRYABLE = {"425", "429", "502", "503", "504"}  # statuses a lost node may cause, with a body


@dataclass
class Deployed:
    cluster: LocalCluster
    base_url: str
    storage_root: Path


@pytest.fixture(scope="module")
def deployed(offline_models: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    storage_root = tmp_path_factory.mktemp("cluster-history")
    try:
        with deployed_cluster(CONFIG, storage_root) as cluster:
            yield Deployed(cluster, cluster.base_url, storage_root)
    except TimeoutError as exc:
        pytest.fail(str(exc))


def http(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=60)


def extract(client: httpx.Client, n: int, store: bool = True) -> httpx.Response:
    body = {"model_id": TINY_ID, "text": f"Tim Cook met Satya Nadella in Paris ({n}).",
            "schema": ["person", "location"], "threshold": 0.0, "store": store}  # fmt: skip
    return client.post("/inference", json=body)


def chat(client: httpx.Client, n: int, store: bool = True) -> httpx.Response:
    body = {"model": LLM, "messages": [{"role": "user", "content": f"Hello {n}"}],
            "max_tokens": 4, "store": store}  # fmt: skip
    return client.post("/v1/chat/completions", json=body)


def test_replicas_are_placed_by_custom_resources(deployed: Deployed) -> None:
    nodes = deployed.cluster.node_ids()
    placed = deployed.cluster.replica_nodes()
    assert set(nodes) == {"head", "models"}
    assert placed["EncoderDeployment"] == {nodes["models"]}
    decoders = [name for name in placed if name.startswith("Decoder:")]
    assert decoders and all(placed[name] == {nodes["models"]} for name in decoders)
    for light in ("Recorder", "Ingress", "ModelResolver", "Limiter"):
        assert placed[light] == {nodes["head"]}, light


def test_every_format_through_the_heads_proxy(deployed: Deployed) -> None:
    with http(deployed.base_url) as client:
        native = extract(client, 0)
        assert native.status_code == 200, native.text
        inference_id = native.json()["inference_id"]
        entities = native.json()["result"]["entities"]
        assert set(entities) == {"person", "location"}
        stored = client.get(f"/inferences/{inference_id}")  # read-your-writes, across nodes
        assert stored.status_code == 200 and stored.json()["id"] == inference_id

    sdk = openai.OpenAI(base_url=f"{deployed.base_url}/v1", api_key=API_KEY, max_retries=0)
    completion = sdk.chat.completions.create(
        model=LLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert completion.choices[0].message.content is not None
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    streamed = sdk.chat.completions.create(
        model=LLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True
    )
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in streamed)

    claude = anthropic.Anthropic(base_url=deployed.base_url, api_key=API_KEY, max_retries=0)
    message = claude.messages.create(
        model=LLM, max_tokens=4, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.usage.output_tokens > 0

    with http(deployed.base_url) as client:
        listed = client.get("/inferences", params={"limit": 10}).json()
        assert listed["total"] >= 4  # one native, two chat, one Anthropic


@dataclass
class Load:
    """Clients sending native extractions and OpenAI chats until told to stop."""

    base_url: str
    stop: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, bool] = field(default_factory=dict)  # inference id -> store
    outcomes: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # answers in no format's shape
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, kind: str, seed: int) -> None:
        n = 0
        with http(self.base_url) as client:
            while not self.stop.is_set():
                n += 1
                store = n % 4 != 0  # a quarter say store: false
                send = extract if kind == "extract" else chat
                try:
                    response = send(client, seed * 100_000 + n, store)
                except httpx.HTTPError as exc:  # no answer at all: never acceptable
                    with self.lock:
                        self.bad.append(f"{kind}: {exc!r}")
                    continue
                try:
                    self.judge(kind, response, store)
                except Exception as exc:  # noqa: BLE001 - a client thread must report, not die
                    with self.lock:
                        self.bad.append(f"{kind}: {exc!r}")
                if response.status_code != 200:
                    time.sleep(0.25)  # a fast refusal must not spin

    def judge(self, kind: str, response: httpx.Response, store: bool) -> None:
        status = str(response.status_code)
        with self.lock:
            self.outcomes[f"{kind} {status}"] += 1
            if status == "200":
                inference_id = response.headers.get("x-inference-id")
                if inference_id is None:
                    self.bad.append(f"{kind} 200 without X-Inference-Id")
                else:
                    self.acked[inference_id] = store
                return
            try:
                body = response.json()
            except ValueError:
                self.bad.append(f"{kind} {status} not JSON: {response.text[:100]!r}")
                return
            shaped = "detail" in body if kind == "extract" else "message" in body.get("error", {})
            if status not in RETRYABLE or not shaped:
                self.bad.append(f"{kind} {status}: {response.text[:160]}")
            elif "retry-after" not in response.headers and status in {"425", "503"}:
                self.bad.append(f"{kind} {status} without Retry-After: {response.text[:100]}")

    def __enter__(self) -> Load:
        self.threads = [
            threading.Thread(target=self.client, args=(kind, i), daemon=True)
            for i, kind in enumerate(["extract", "extract", "chat", "chat"])
        ]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def wait_for_success(base_url: str, timeout_s: float) -> float:
    """Seconds until an extraction and a chat both succeed again."""
    started = time.monotonic()
    with http(base_url) as client:
        for send in (extract, chat):
            while True:
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"{send.__name__} not back within {timeout_s:.0f} s")
                try:
                    if send(client, 0, store=False).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1.0)
    return time.monotonic() - started


def test_losing_the_model_node_under_load_loses_nothing(
    deployed: Deployed, request: pytest.FixtureRequest
) -> None:
    cluster = deployed.cluster
    with Load(deployed.base_url) as load:
        time.sleep(8)  # load running before the loss
        before = len(load.acked)
        cluster.kill_worker("models")
        lost_at = time.monotonic()
        time.sleep(15)  # the node stays down: the controller sees it dead
        cluster.add_worker("models", cpus=2, resources=MODEL_NODE)
        back = wait_for_success(deployed.base_url, timeout_s=420)
        recovery_s = time.monotonic() - lost_at
        time.sleep(5)  # load again on the new replicas
    assert before > 0, load.outcomes
    assert {key.split()[0] for key in load.outcomes if key.endswith(" 200")} == {"extract", "chat"}
    assert not load.bad, load.bad[:10]
    assert any(key.endswith(" 200") for key in load.outcomes)
    failed = {k: v for k, v in load.outcomes.items() if not k.endswith(" 200")}
    assert failed, "the node loss went unnoticed: the test did not test it"
    replaced = cluster.replica_nodes()
    assert replaced["EncoderDeployment"] == {cluster.node_ids()["models"]}

    # What a restarted server reads: published Parquet plus the WAL, once the writer is gone.
    with http(deployed.base_url) as client:
        some = [i for i, store in list(load.acked.items())[-5:] if store]
        for inference_id in some:
            assert client.get(f"/inferences/{inference_id}").status_code == 200
    cluster.shutdown()
    counts = history_counts(deployed.storage_root, load.acked)
    report_line(
        request.config,
        f"cluster: model node lost under load; {len(load.acked)} acknowledged, "
        f"{sum(failed.values())} refused in shape; back after {recovery_s:.0f} s "
        f"(first success {back:.0f} s after restart); {counts}",
    )
    assert counts == {"lost": 0, "missing bills": 0, "doubled": 0, "stored despite store:false": 0}


def history_counts(root: Path, acked: dict[str, bool]) -> dict[str, int]:
    import pyarrow as pa

    from app.history.__main__ import connect

    con = connect(root)
    con.register("acked", pa.table({"id": list(acked), "store": list(acked.values())}))
    per = {
        name: dict(
            con.execute(
                f"SELECT id, count(*) FROM {name} WHERE id IN (SELECT id FROM acked) GROUP BY id"
            ).fetchall()
        )
        for name in ("inferences", "billing")
    }
    doubled = sum(
        con.execute(
            f"SELECT count(*) FROM (SELECT id FROM {n} GROUP BY id HAVING count(*) > 1)"
        ).fetchone()[0]
        for n in ("inferences", "billing")
    )
    return {
        "lost": sum(1 for i, s in acked.items() if s and per["inferences"].get(i, 0) == 0),
        "missing bills": sum(1 for i in acked if per["billing"].get(i, 0) == 0),
        "doubled": doubled,
        "stored despite store:false": sum(
            1 for i, s in acked.items() if not s and i in per["inferences"]
        ),
    }
