"""What the serving graph costs on top of the model, as ratios against peers in the same run.

Starts the app as `make serve` configures it (`configs/server.yaml`, history in a temporary
folder) on a private local Ray cluster, then, one phase after another:

1. `GET /health` through the same proxy and ingress, c clients: the graph's floor (req/s).
2. `POST /inference` with the tiny test encoder, one text per request, stored: req/s, and its
   ratio to /health (the model's share is ~1 ms: the rest is the graph); and the same body
   through Ray Serve's floor for this graph (`bench/serve_floor.py`: the same hops, each a
   no-op), the best that ratio could be on this machine.
3. The demo encoder over HTTP, one text and then 8 texts per request, c clients: texts/s.
4. gliner2's `batch_extract` in this process on the same checkpoint and texts at batch 16,
   with the torch threads the server's encoder gets: texts/s, and the HTTP/library ratios;
   also in bfloat16, which the server's `dtype: auto` picks on CPUs with native bf16.

    python bench/serving_overhead.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.local_server import ROOT, build_test_models, local_server

SERVER_CONFIG = ROOT / "configs" / "server.yaml"
TINY = "pioneer-test/gliner2-tiny-test"
DEMO = "pioneer-demo/gliner2-minilm-demo"
DEMO_DIR = ROOT / "models" / "gliner2-minilm-demo"
SCHEMA = {"entities": ["person", "company", "city"]}
SENTENCES = [
    "Tim Cook met Satya Nadella in Paris to discuss a deal between Apple and Microsoft.",
    "Angela Merkel visited the Siemens plant in Munich on Tuesday.",
    "Sundar Pichai said Google will open a new office in Zurich next year.",
    "Marie Curie worked at the University of Paris and won two Nobel prizes.",
]


async def rate(
    url: str, make: Callable[[int], dict[str, Any] | None], seconds: float, clients: int
) -> tuple[float, int]:
    """Requests per second over `seconds` with `clients` in a closed loop; and failures."""
    done = failed = 0
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient, worker: int) -> None:
        nonlocal done, failed
        n = worker
        while time.perf_counter() < deadline:
            body = make(n)
            response = await (http.get(url) if body is None else http.post(url, json=body))
            if response.status_code == 200:
                done += 1
            else:
                failed += 1
            n += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, i) for i in range(clients)))
        return done / (time.perf_counter() - started), failed


def extraction(model_id: str, texts: int) -> Callable[[int], dict[str, Any]]:
    def make(n: int) -> dict[str, Any]:
        batch = [f"{SENTENCES[(n + i) % len(SENTENCES)]} ({n}.{i})" for i in range(texts)]
        return {"model_id": model_id, "text": batch if texts > 1 else batch[0], "schema": SCHEMA}

    return make


def library_texts_per_s(seconds: float, threads: int | None, dtype: str = "float32") -> float:
    import torch
    from gliner2 import GLiNER2

    if threads:
        torch.set_num_threads(threads)
    model = GLiNER2.from_pretrained(str(DEMO_DIR)).to(getattr(torch, dtype))
    model.eval()
    texts = [f"{SENTENCES[i % len(SENTENCES)]} ({i})" for i in range(16)]
    schema = {"entities": {label: "" for label in SCHEMA["entities"]}}
    model.batch_extract(texts, schema, batch_size=16, include_confidence=True, include_spans=True)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.batch_extract(
            texts, schema, batch_size=16, include_confidence=True, include_spans=True
        )
        count += len(texts)
    return count / (time.perf_counter() - started)


async def measure(base: str, seconds: float, clients: int) -> dict[str, tuple[float, int]]:
    from ray import serve

    from bench.serve_floor import ROUTE, floor_app

    await asyncio.to_thread(serve.run, floor_app(), name="floor", route_prefix=ROUTE)
    for model_id in (TINY, DEMO):  # load both before timing
        warm = await asyncio.to_thread(
            httpx.post, f"{base}/inference", json=extraction(model_id, 1)(0), timeout=120
        )
        warm.raise_for_status()
    runs = {
        "health": (f"{base}/health", lambda n: None),
        "no-op floor": (f"{base}{ROUTE}/", extraction(TINY, 1)),
        "tiny, 1 text": (f"{base}/inference", extraction(TINY, 1)),
        "demo, 1 text": (f"{base}/inference", extraction(DEMO, 1)),
        "demo, 8 texts": (f"{base}/inference", extraction(DEMO, 8)),
    }
    return {name: await rate(url, make, seconds, clients) for name, (url, make) in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--config", type=Path, default=SERVER_CONFIG, help="server config")
    args = parser.parse_args()
    if not DEMO_DIR.exists():
        raise SystemExit("the demo encoder is not built: run `make models` first")
    build_test_models()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    from app.config import load_server_config

    threads = load_server_config(args.config).encoder.torch_threads
    with tempfile.TemporaryDirectory() as root, local_server(Path(root), args.config) as base:
        http = asyncio.run(measure(base, args.seconds, args.concurrency))
    library = library_texts_per_s(args.seconds, threads)  # the server is down: no contention
    library_bf16 = library_texts_per_s(args.seconds, threads, "bfloat16")
    print(f"\nc={args.concurrency}, {args.seconds:g} s per phase, stored, {args.config.name}")
    for name, (per_s, failed) in http.items():
        print(f"  {name:<16} {per_s:8.1f} req/s" + (f"  ({failed} failed)" if failed else ""))
    demo_1, demo_8 = http["demo, 1 text"][0], http["demo, 8 texts"][0] * 8
    graph = http["tiny, 1 text"][0] / http["health"][0]
    floor = http["no-op floor"][0] / http["health"][0]
    print(f"  library, b=16    {library:8.1f} texts/s  (torch threads: {threads or 'default'})")
    print(f"  library bf16     {library_bf16:8.1f} texts/s  (what dtype: auto may pick on CPU)")
    print(f"/inference (tiny) / /health:           {graph:.2f}")
    print(f"no-op floor / /health:                 {floor:.2f}  (the best the line above can be)")
    print(f"/inference (tiny) / no-op floor:       {graph / floor:.2f}")
    print(f"demo over HTTP, 1 text / library b=16:  {demo_1 / library:.2f}")
    print(f"demo over HTTP, 8 texts / library b=16: {demo_8 / library:.2f}")


if __name__ == "__main__":
    main()
