"""History reads off the writer, over the real app: each ingress replica queries the Recorder's
snapshot itself, and every acknowledged record is read exactly once whatever the Recorder is
doing (buffering, flushing, compacting and deleting the files it replaced); while nothing is
written, the replicas do not ask the Recorder at all."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from ray import serve

from tests.conftest import TINY_ID
from tests.integration.conftest import API_KEY, APP_NAME
from tests.integration.test_metrics import Want, scrape, wait_for

SCHEMA = {"entities": ["person", "organization"]}


def recorder() -> Any:
    return serve.get_deployment_handle("Recorder", APP_NAME)


def record(client: httpx.Client, text: str) -> str:
    body = {"model_id": TINY_ID, "text": text, "schema": SCHEMA, "threshold": 0.3}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()["inference_id"]


def listed_ids(server: str, tag: str) -> list[str]:
    """The records whose input carries `tag`, by a fresh connection (so, over the test's two
    ingress replicas, by either of them)."""
    with httpx.Client(base_url=server, headers={"X-API-Key": API_KEY}, timeout=60) as fresh:
        response = fresh.get("/inferences", params={"limit": 500, "model_id": TINY_ID})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["inferences"] if tag in r["input"]]


def test_every_record_is_read_once_through_flushes_and_compaction(
    client: httpx.Client, server: str
) -> None:
    tag = uuid.uuid4().hex
    written: list[str] = []
    for step in ("buffered", "flushed", "compacted"):
        for i in range(3):
            written.append(record(client, f"Tim Cook {tag} {step} {i}"))
            # read-your-writes: the very next read, by either replica, sees it
            assert written[-1] in listed_ids(server, tag)
        if step == "flushed":
            recorder().flush.remote().result()
        if step == "compacted":
            recorder().flush.remote().result()
            recorder().compact.remote(2).result()  # the test config keeps no grace period
        for _ in range(4):
            seen = listed_ids(server, tag)
            assert sorted(seen) == sorted(written), step
            assert len(seen) == len(set(seen)), f"{step}: a record was read twice"


def test_a_record_is_found_by_id_on_every_replica(server: str, client: httpx.Client) -> None:
    inference_id = record(client, "Tim Cook works for Apple.")
    for _ in range(6):  # fresh connections: both replicas answer some of these
        with httpx.Client(base_url=server, headers={"X-API-Key": API_KEY}, timeout=60) as fresh:
            response = fresh.get(f"/inferences/{inference_id}")
        assert response.status_code == 200 and response.json()["id"] == inference_id


def test_reads_skip_the_recorder_while_nothing_is_written(
    server: str, client: httpx.Client
) -> None:
    """The ingress replicas share the Recorder's host here: after a write, each replica's
    first read asks the Recorder (and sees the write), later ones answer from what they hold
    (`answered_by="held"`), and still see it."""
    before = scrape()
    tag = uuid.uuid4().hex
    inference_id = record(client, f"Tim Cook {tag}")
    for _ in range(10):  # fresh connections: both replicas answer some of these
        assert listed_ids(server, tag) == [inference_id]
    wait_for(
        [
            Want("ray_pioneer_history_reads_total", {"answered_by": "snapshot"}, at_least=1),
            Want("ray_pioneer_history_reads_total", {"answered_by": "held"}, at_least=5),
        ],
        before,
    )
