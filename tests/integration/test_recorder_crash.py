"""Kill the Recorder with acknowledged rows still only in its WAL: nothing is lost or doubled."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import httpx
import ray
from ray import serve

from tests.conftest import TINY_ID
from tests.integration.conftest import APP_NAME


def _recorder_actor_names() -> list[tuple[str, str]]:
    return [
        (actor["name"], actor["namespace"])
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if "Recorder" in actor["name"]
    ]


def test_acknowledged_rows_survive_a_recorder_crash(
    client: httpx.Client, history_root: Path
) -> None:
    ids = []
    for i in range(12):
        response = client.post(
            "/inference",
            json={"model_id": TINY_ID, "text": f"Crash test {i} at Apple.", "schema": ["company"]},
        )
        assert response.status_code == 200
        ids.append(response.json()["inference_id"])
    wal = history_root / "_wal"
    assert sum(p.stat().st_size for p in (wal / "inferences").glob("*.jsonl")) > 0

    names = _recorder_actor_names()
    assert names, "no Recorder replica found"
    for name, namespace in names:
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # Serve replaces the replica; it replays its WAL
        try:
            response = client.get(f"/inferences/{ids[0]}", timeout=10)
            if response.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("the Recorder did not come back")

    for inference_id in ids:
        assert client.get(f"/inferences/{inference_id}").status_code == 200
    serve.get_deployment_handle("Recorder", APP_NAME).flush.remote().result()
    for dataset in ("inferences", "billing"):
        counts = dict(
            duckdb.execute(
                "SELECT id, count(*) FROM read_parquet(?) WHERE list_contains(?, id) GROUP BY id",
                [str(history_root / dataset / "*" / "*.parquet"), ids],
            ).fetchall()
        )
        assert counts == {inference_id: 1 for inference_id in ids}, dataset
    listed = client.get("/inferences", params={"limit": 500}).json()["inferences"]
    assert sorted(r["id"] for r in listed if r["id"] in set(ids)) == sorted(ids)
