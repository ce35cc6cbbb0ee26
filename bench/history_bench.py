"""History at scale: write N records, then time GET /inferences against DuckDB on one file.

1. Writes N records (default 1,000,000) through the Recorder's own write path
   (`HistoryStore`: WAL append with one fsync per group of 256, Parquet flushes), reports
   records/s, then compacts.
2. Starts the real Ray Serve app on that storage root, as `make serve` runs it, and times
   `GET /inferences` with a model_id + task filter over HTTP (p50, p90), against the same
   query (the app's own filter SQL) run by DuckDB directly on the one compacted Parquet
   file, in the same run. The ratio is the figure.
3. With `--scaling`: the same GET from `--clients` concurrent clients for `--seconds`, with
   1 and then 2 ingress replicas (each a fresh app): requests/s and p50 per replica count.
   History reads run in the ingress replicas, so this is what adding replicas buys; on a
   machine with few cores the replicas share them, and the figure says how much that is.

    python bench/history_bench.py [--records 1000000] [--requests 200]
    python bench/history_bench.py --records 200000 --scaling [--clients 8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Ray runs its workers (the server's replicas) at nice 15 by default, the baseline runs here
# at this process's priority: on a shared machine any other process would take the server's
# cores first. Same priority, so the ratio compares code (RAY_worker_niceness=15: Ray's own).
os.environ.setdefault("RAY_worker_niceness", "0")

from app.history.queries import InferenceFilters  # noqa: E402
from app.history.store import HistoryStore  # noqa: E402

MODELS = [f"org/model-{i}" for i in range(20)]
TASKS = ["extract_entities", "classify_text", "extract_entities+classify_text", "extract_json"]
GROUP = 256  # rows per WAL append: what the Recorder's group commit gathers under load


def make_rows(count: int, start: datetime, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        rows.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "user_id": "key_bench",
                "api_key_id": "key_bench",
                "model_id": rng.choice(MODELS),
                "model_name": "bench",
                "task": rng.choice(TASKS),
                "input": f"text number {i}",  # the contract's string; the schema is metadata
                "output": json.dumps({"entities": {"a": [f"t{i}"]}}),
                "latency_ms": rng.randint(5, 500),
                "tokens": 12,
                "input_tokens": 12,
                "output_tokens": 0,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "source": "api",
                "format": "native",
                "status": "success",
                "created_at": start + timedelta(milliseconds=i),
                "project_id": "project-alpha",
                "training_job_id": None,
                "provider": "self-hosted",
                "base_model": "org/base",
                "metadata": json.dumps({"input_kind": "text", "schema": {"entities": ["a"]}}),
            }
        )
    return rows


def write(root: Path, count: int, flush_records: int) -> dict:
    store = HistoryStore(str(root), None).open()
    rows = make_rows(count, datetime(2026, 11, 26, tzinfo=UTC))
    started = time.perf_counter()
    for offset in range(0, count, GROUP):
        store.inferences.append(rows[offset : offset + GROUP])
        if store.inferences.flush_due(flush_records, 3600):
            store.inferences.flush()
    store.inferences.flush()
    write_s = time.perf_counter() - started
    files = store.inferences.stats()["files"]
    started = time.perf_counter()
    store.compact(min_files=2)
    store.collect_garbage()
    compact_s = time.perf_counter() - started
    compacted = [f for f in store.inferences.snapshot().files if "compacted" in f]
    store.close()
    return {
        "records": count,
        "write_s": round(write_s, 2),
        "records_per_s": round(count / write_s),
        "files_before_compaction": files,
        "compact_s": round(compact_s, 2),
        "compacted_file": str(root / compacted[0]),
    }


def p(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q) - 1], 2)


def direct(compacted: str, model: str, task: str, requests: int) -> list[float]:
    import duckdb

    con = duckdb.connect()
    where, params = InferenceFilters(model_id=model, task=task).where()  # the app's own filter
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        con.execute(
            f"SELECT count(*) FROM read_parquet(?) WHERE {where}", [compacted, *params]
        ).fetchone()
        con.execute(
            f"SELECT * FROM read_parquet(?) WHERE {where} "
            "ORDER BY created_at DESC, id DESC LIMIT 100",
            [compacted, *params],
        ).fetchall()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


HEADERS = {"X-API-Key": "pio_sk_test_alpha"}


@contextmanager
def app_on(root: Path, ingress_replicas: int | None = None) -> Iterator[str]:
    """The test config's app on `root`, on its own local cluster run as `make serve` runs it
    (`bench/local_server`); yields its base URL. The test config runs 2 ingress replicas
    unless `ingress_replicas` says otherwise."""
    from ray import serve

    from app.config import load_server_config, with_storage_root
    from bench.local_server import local_cluster, wait_ready
    from deployments.graph import build_graph

    config = load_server_config(ROOT / "configs" / "test.yaml")
    update = {"history": with_storage_root(config.history, str(root), Path.cwd())}
    if ingress_replicas is not None:
        update["ingress"] = config.ingress.model_copy(update={"num_replicas": ingress_replicas})
    with local_cluster() as base_url:
        serve.run(build_graph(config.model_copy(update=update)), name="bench", route_prefix="/")
        wait_ready(base_url)
        yield base_url


def over_http(root: Path, model: str, task: str, requests: int) -> tuple[list[float], int]:
    import httpx

    params = {"model_id": model, "task": task, "limit": 100}
    timings = []
    with (
        app_on(root) as base_url,
        httpx.Client(base_url=base_url, headers=HEADERS, timeout=60) as http,
    ):
        total = http.get("/inferences", params=params).json()["total"]  # warm-up
        for _ in range(requests):
            started = time.perf_counter()
            response = http.get("/inferences", params=params)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return timings, total


def under_load(root: Path, replicas: int, params: dict, clients: int, seconds: float) -> dict:
    """`clients` clients, each its own connection, GETting for `seconds` after a warm-up."""
    import httpx

    timings: list[float] = []
    errors: list[int] = []
    until = [0.0]
    lock = threading.Lock()
    begin = threading.Barrier(clients + 1)

    def client(base_url: str) -> None:
        with httpx.Client(base_url=base_url, headers=HEADERS, timeout=60) as http:
            for _ in range(3):  # warm-up: every replica opens its reader
                http.get("/inferences", params=params)
            begin.wait()
            while time.perf_counter() < until[0]:
                started = time.perf_counter()
                response = http.get("/inferences", params=params)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status_code == 200:
                        timings.append(elapsed)
                    else:
                        errors.append(response.status_code)

    with app_on(root, ingress_replicas=replicas) as base_url:
        threads = [threading.Thread(target=client, args=(base_url,)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        until[0] = time.perf_counter() + 3600
        begin.wait()
        started = time.perf_counter()
        until[0] = started + seconds
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    return {
        "ingress_replicas": replicas,
        "clients": clients,
        "requests_per_s": round(len(timings) / elapsed, 1),
        "p50_ms": p(timings, 50),
        "p90_ms": p(timings, 90),
        "errors": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--flush-records", type=int, default=10_000)
    parser.add_argument("--scaling", action="store_true", help="also: 1 vs 2 ingress replicas")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (--scaling)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per replica count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "history"
        report = write(root, args.records, args.flush_records)
        print(json.dumps(report), flush=True)
        model, task = MODELS[3], "classify_text"
        direct_ms = direct(report["compacted_file"], model, task, args.requests)
        http_ms, total = over_http(root, model, task, args.requests)
        check = HistoryStore(str(root), None).open()
        rows, expected = check.list_inferences(InferenceFilters(model_id=model, task=task))
        check.close()
        assert total == expected and len(rows) == 100
        report |= {
            "filter": {"model_id": model, "task": task, "matching": total},
            "direct_duckdb_ms": {"p50": p(direct_ms, 50), "p90": p(direct_ms, 90)},
            "http_get_inferences_ms": {"p50": p(http_ms, 50), "p90": p(http_ms, 90)},
        }
        report["http_over_direct_p50"] = round(
            report["http_get_inferences_ms"]["p50"] / report["direct_duckdb_ms"]["p50"], 2
        )
        del report["compacted_file"]
        if args.scaling:
            params = {"model_id": model, "task": task, "limit": 100}
            report["scaling"] = [
                under_load(root, replicas, params, args.clients, args.seconds)
                for replicas in (1, 2)
            ]
            first, second = report["scaling"]
            report["requests_per_s_2_over_1"] = round(
                second["requests_per_s"] / first["requests_per_s"], 2
            )
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
