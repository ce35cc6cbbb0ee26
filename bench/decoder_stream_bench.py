"""Streaming chat through this server vs vLLM's own OpenAI server, same tiny model, same run.

Both servers run at once on this machine; rounds alternate between them so drift in the
machine's load hits both. For concurrency 1 and 8 it reports time to first token (p50) and
total completion tokens/s, and the ratios ours / vLLM.

    python bench/decoder_stream_bench.py [--rounds 3] [--requests 16] [--max-tokens 64]

Ours runs the product configuration (LoRA on; base requests run plain until an adapter
request comes, then through the no-op adapter: this bench sends none); vLLM's server runs
the same engine settings without LoRA.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

MODEL_DIR = ROOT / "models" / "llama-tiny-test"
MESSAGES = [{"role": "user", "content": "hello world, tell me about the model server"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_vllm(port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(MODEL_DIR), "--served-model-name", "tiny",
        "--dtype", "float32", "--max-model-len", "512", "--enforce-eager",
        "--gpu-memory-utilization", "0.15", "--port", str(port), "--host", "127.0.0.1",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_ours(history: Path, lora: bool) -> str:
    import ray
    import yaml
    from ray import serve

    from deployments.graph import build_app

    config_path = ROOT / "configs" / "test.yaml"
    if not lora:  # the same server with LoRA off, to see what the adapter path costs
        raw = yaml.safe_load(config_path.read_text())
        raw["decoder"] |= {"max_loras": 0, "no_op_adapter_dir": None}
        config_path = ROOT / "configs" / ".bench-no-lora.yaml"
        config_path.write_text(yaml.safe_dump(raw))
    port = free_port()
    from bench.local_server import cluster_runtime_env

    ray.init(
        address="local",
        include_dashboard=False,
        log_to_driver=False,
        runtime_env=cluster_runtime_env(),
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {"config": str(config_path), "storage_root": str(history)}
    serve.run(build_app(config), name="bench", route_prefix="/")
    return f"http://127.0.0.1:{port}"


async def wait_ready(url: str, headers: dict[str, str], timeout: float = 240) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{url}/v1/models", headers=headers)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(1)
    raise TimeoutError(url)


async def one(http, url: str, model: str, headers: dict, max_tokens: int) -> tuple[float, int]:
    body = {
        "model": model,
        "messages": MESSAGES,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = None
    tokens = 0
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (first or time.perf_counter() - started) * 1000, tokens


async def round_(url, model, headers, concurrency, requests, max_tokens) -> tuple[list, float]:
    import httpx

    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120) as http:

        async def task():
            async with limit:
                return await one(http, url, model, headers, max_tokens)

        started = time.perf_counter()
        results = await asyncio.gather(*(task() for _ in range(requests)))
        wall = time.perf_counter() - started
    return [ttft for ttft, _ in results], sum(tokens for _, tokens in results) / wall


async def measure(targets: dict, rounds: int, requests: int, max_tokens: int) -> dict:
    report: dict = {}
    for concurrency in (1, 8):
        ttfts: dict[str, list[float]] = {name: [] for name in targets}
        rates: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name, (url, model, headers) in targets.items():
                t, rate = await round_(url, model, headers, concurrency, requests, max_tokens)
                ttfts[name] += t
                rates[name].append(rate)
        row = {
            name: {
                "ttft_p50_ms": round(statistics.median(ttfts[name]), 2),
                "tokens_per_s": round(statistics.median(rates[name]), 1),
            }
            for name in targets
        }
        row["ttft_ratio_ours_over_vllm"] = round(
            row["ours"]["ttft_p50_ms"] / row["vllm"]["ttft_p50_ms"], 2
        )
        row["throughput_ratio_ours_over_vllm"] = round(
            row["ours"]["tokens_per_s"] / row["vllm"]["tokens_per_s"], 2
        )
        report[f"concurrency_{concurrency}"] = row
        print(json.dumps({concurrency: row}), flush=True)
    return report


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--no-lora", action="store_true", help="run ours with LoRA off")
    args = parser.parse_args()
    vllm_port = free_port()
    vllm = start_vllm(vllm_port)
    try:
        with tempfile.TemporaryDirectory() as history:
            ours = start_ours(Path(history), lora=not args.no_lora)
            key = {"Authorization": "Bearer pio_sk_test_alpha"}
            vllm_url = f"http://127.0.0.1:{vllm_port}"
            asyncio.run(wait_ready(vllm_url, {}))
            asyncio.run(wait_ready(ours, key))
            targets = {
                "ours": (ours, "pioneer-test/llama-tiny-test", key),
                "vllm": (vllm_url, "tiny", {}),
            }
            report = asyncio.run(measure(targets, args.rounds, args.requests, args.max_tokens))
            print(json.dumps(report, indent=2))
    finally:
        vllm.terminate()
        vllm.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
