"""Chaos run: every kind of client at once while each deployment's replica is killed in turn.

Starts the real app on a private local Ray cluster (`bench/local_server.py`), drives native,
OpenAI and Anthropic clients plus a history reader against it for `--duration` seconds, and
kills (`ray.kill(..., no_restart=True)`) the replica of EncoderDeployment, Recorder, the first
Decoder, Ingress and ModelResolver, one at a time, spaced evenly across the run. Then it waits
for the Recorder, flushes it and checks with DuckDB over the storage root (published Parquet
plus the WAL, as `python -m app.history sql` reads it) that every acknowledged inference has
exactly one billing row and exactly one history row (none for `store: false`).

    python bench/chaos.py                      # 16 clients, 180 s, configs/test.yaml
    python bench/chaos.py --duration 60 --clients 16 --limit-s 30
    python bench/chaos.py --cluster --duration 330  # two nodes; the model node lost too

With `--cluster` the app is deployed (`serve deploy`, configs/cluster.yaml) onto a head and a
model node (`bench/cluster.py`), and between the model and the front-door kills the whole model
node is SIGKILLed, kept down `--node-down-s`, and started again.

Exit code 1 when an acknowledged inference was lost, doubled, stored despite `store: false`,
or has no bill. Recovery per kill = time from the kill to the first successful response of a
request *sent after* the kill, among the kinds that need the killed deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.chaos_accounting import (
    DECODER_KINDS,
    ENCODER_KINDS,
    HISTORY_KINDS,
    NODE_LOSS,
    Kill,
    Result,
    Run,
    check_history,
    needs,
    recovery,
    report,
)
from bench.cluster import MODEL_NODE, ROOT, LocalCluster, deployed_cluster
from bench.local_server import APP_NAME, TEST_CONFIG, build_test_models, local_server

API_KEY = "pio_sk_test_alpha"
CLUSTER_CONFIG = ROOT / "configs" / "cluster.yaml"
# Client order: the first ones get a second client when --clients exceeds the kinds.
CLIENT_KINDS = ("native_extract", "chat_stream", "native_generate", "messages_stream", "history")
CLIENT_KINDS += tuple(k for k in ENCODER_KINDS + DECODER_KINDS if k not in CLIENT_KINDS)
TEXT = "Tim Cook met Satya Nadella in Paris ({n})."


def request_for(run: Run, kind: str, n: int, store: bool) -> tuple[str, dict[str, Any]]:
    text = TEXT.format(n=n)
    messages = [{"role": "user", "content": text}]
    llm = {"model": run.llm, "messages": messages, "max_tokens": 8}
    extract = {"schema": ["person", "location"], "threshold": 0.0}
    native_llm = {"model_id": run.llm, "task": "generate", "messages": messages, "max_tokens": 8}
    encoder_chat = {"model": run.encoder, "messages": messages, "schema": {"entities": ["person"]}}
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "native_extract": ("/inference", {"model_id": run.encoder, "text": text} | extract),
        "native_generate": ("/inference", native_llm),
        "chat": ("/v1/chat/completions", llm),
        "chat_stream": ("/v1/chat/completions", llm | {"stream": True}),
        "chat_encoder": ("/v1/chat/completions", encoder_chat | {"threshold": 0.0}),
        "completions": ("/v1/completions", {"model": run.llm, "prompt": text, "max_tokens": 8}),
        "responses": ("/v1/responses", {"model": run.llm, "input": text, "max_output_tokens": 8}),
        "messages": ("/v1/messages", llm),
        "messages_stream": ("/v1/messages", llm | {"stream": True}),
    }
    path, body = bodies[kind]
    return path, body | {"store": store}


def describe_error(response: httpx.Response, body: bytes) -> tuple[bool, str]:
    """(is the body JSON, a short message) for a failed response."""
    retry = response.headers.get("retry-after")
    retry = f"(Retry-After {retry}) " if retry else ""
    try:
        parsed = json.loads(body)
    except ValueError:
        kind = response.headers.get("content-type", "?").split(";")[0]
        return False, f"{retry}[{kind}] {body[:80].decode(errors='replace')!r}"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return True, f"{retry}{code}: {error.get('message')}"[:110]
    detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
    return True, f"{retry}{detail}"[:110]


def stream_outcome(kind: str, text: str) -> tuple[bool, str]:
    """Did an SSE body end the way a complete answer ends, with no error event in it."""
    if kind == "chat_stream":
        errored = 'data: {"error"' in text
        done = "data: [DONE]" in text
    else:
        errored = "event: error" in text
        done = "event: message_stop" in text
    if errored:
        return False, text[text.find("error") :][:120].replace("\n", " ")
    return done, "" if done else "stream ended without its final event"


async def one_request(
    run: Run, client: httpx.AsyncClient, kind: str, n: int, store: bool
) -> Result:
    start = run.now()
    result = Result(kind, start, start, "?", False, store=store)
    body = b""
    try:
        if kind == "history":
            response = await client.get("/inferences", params={"limit": 20})
            body, stream = response.content, False
        elif kind == "history_get":
            ids = run.stored_ids()
            response = await client.get(f"/inferences/{random.choice(ids)}")
            body, stream = response.content, False
        else:
            path, payload = request_for(run, kind, n, store)
            stream = bool(payload.get("stream"))
            # anthropic-version only where Anthropic's door is: it picks the error format
            extra = {"anthropic-version": "2023-06-01"} if "messages" in kind else {}
            async with client.stream("POST", path, json=payload, headers=extra) as response:
                # kept even if the body is cut short; failed inferences may carry one too
                result.inference_id = response.headers.get("x-inference-id")
                async for chunk in response.aiter_bytes():
                    body += chunk
        result.status = str(response.status_code)
        if not response.is_success:
            result.json_body, result.detail = describe_error(response, body)
        elif kind in HISTORY_KINDS:
            result.ok = True
        else:
            result.ok = result.inference_id is not None
            if stream:
                result.ok, result.detail = stream_outcome(kind, body.decode(errors="replace"))
                if not result.ok:
                    result.status += "-stream-error" if result.detail else "-truncated"
            if result.inference_id is None:
                result.status, result.ok = result.status + "-no-id", False
    except httpx.HTTPError as exc:
        result.status, result.detail = type(exc).__name__, str(exc)[:60]
        if body:
            last = body.decode(errors="replace").strip().splitlines()[-1]
            result.detail += f" (after {len(body)} B; last line {last[:50]!r})"
    result.end = run.now()
    return result


async def client_loop(run: Run, client: httpx.AsyncClient, kind: str, seed: int) -> None:
    rng = random.Random(seed)
    n = 0
    while not run.stop.is_set():
        n += 1
        this = kind
        if kind == "history" and n % 2 == 0 and run.stored_ids():
            this = "history_get"
        store = rng.random() >= 0.25  # a quarter of the inferences say store: false
        result = await one_request(run, client, this, seed * 100_000 + n, store)
        run.results.append(result)
        if not result.ok:
            await asyncio.sleep(0.25)  # fast failures (a refused connection) must not spin


def replica_names(deployment: str) -> list[tuple[str, str]]:
    """Named replica actors look like SERVE_REPLICA::<app>#<deployment>#<id>."""
    import ray

    prefix = f"SERVE_REPLICA::{APP_NAME}#{deployment}#"
    actors = ray.util.list_named_actors(all_namespaces=True)
    return [(a["name"], a["namespace"]) for a in actors if a["name"].startswith(prefix)]


def kill_replicas(deployment: str) -> list[str]:
    import ray

    found = replica_names(deployment)
    for name, namespace in found:
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
    return [name for name, _ in found]


def deployment_status(deployment: str) -> str:
    from ray import serve

    app = serve.status().applications.get(APP_NAME)
    found = app.deployments.get(deployment) if app else None
    return str(found.status.value) if found else "MISSING"


async def watch_replacement(run: Run, kill: Kill, timeout_s: float = 300.0) -> None:
    while run.now() - kill.at < timeout_s:
        await asyncio.sleep(0.5)
        names = {name for name, _ in await asyncio.to_thread(replica_names, kill.deployment)}
        if names - set(kill.replicas):
            if await asyncio.to_thread(deployment_status, kill.deployment) == "HEALTHY":
                kill.replaced_at = run.now()
                return


async def chaos(
    run: Run, targets: list[str], interval: float, cluster: LocalCluster | None, down_s: float
) -> None:
    for index, target in enumerate(targets):
        await asyncio.sleep(max(0.0, interval * (index + 1) - run.now()))
        at = run.now()
        if target == NODE_LOSS:
            assert cluster is not None
            run.watchers.append(asyncio.create_task(lose_node(run, cluster, down_s)))
            continue
        killed = await asyncio.to_thread(kill_replicas, target)
        kill = Kill(target, at, killed)
        run.kills.append(kill)
        print(f"[{at:6.1f}s] killed {target}: {', '.join(killed) or 'NO REPLICA FOUND'}")
        run.watchers.append(asyncio.create_task(watch_replacement(run, kill)))


async def lose_node(run: Run, cluster: LocalCluster, down_s: float) -> None:
    """SIGKILL the model node, keep it down `down_s`, start it again; replaced once every
    model deployment is HEALTHY again."""
    killed = [name for d in (run.decoder, "EncoderDeployment") for name, _ in replica_names(d)]
    await asyncio.to_thread(cluster.kill_worker, "models")
    kill = Kill(NODE_LOSS, run.now(), killed)
    run.kills.append(kill)
    print(f"[{kill.at:6.1f}s] lost the model node ({len(killed)} replicas on it)")
    await asyncio.sleep(down_s)
    await asyncio.to_thread(cluster.add_worker, "models", 2, MODEL_NODE)
    print(f"[{run.now():6.1f}s] model node started again")
    while run.now() - kill.at < 600:
        statuses = [
            await asyncio.to_thread(deployment_status, d)
            for d in ("EncoderDeployment", run.decoder)
        ]
        if all(s == "HEALTHY" for s in statuses):
            kill.replaced_at = run.now()
            return
        await asyncio.sleep(1.0)


async def drive(
    base_url: str,
    args: argparse.Namespace,
    encoder: str,
    llm: str,
    decoder: str,
    cluster: LocalCluster | None = None,
) -> Run:
    run = Run(encoder, llm, decoder)
    targets = ["EncoderDeployment", "Recorder", decoder, "Ingress", "ModelResolver"]
    if cluster is not None:  # the node loss between the model and the front-door kills
        targets.insert(3, NODE_LOSS)
    headers = {"X-API-Key": args.api_key}
    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=args.timeout_s, limits=limits
    ) as client:
        kinds = [CLIENT_KINDS[i % len(CLIENT_KINDS)] for i in range(args.clients)]
        clients = [
            asyncio.create_task(client_loop(run, client, kind, i + 1))
            for i, kind in enumerate(kinds)
        ]
        interval = args.duration / (len(targets) + 1)
        chaos_task = asyncio.create_task(chaos(run, targets, interval, cluster, args.node_down_s))
        await asyncio.sleep(args.duration)
        chaos_task.cancel()
        deadline = run.now() + args.grace
        while run.now() < deadline and any(
            recovery(run, kill, needs(kill.deployment, decoder)) is None for kill in run.kills
        ):
            await asyncio.sleep(1.0)  # keep the load on until every kill has recovered
        run.stop.set()
        print(f"[{run.now():6.1f}s] load stopping; waiting for requests in flight")
        await asyncio.gather(*clients)
    return run


def settle_and_flush(timeout_s: float = 180.0) -> str:
    """Wait for a healthy Recorder, then flush its buffers to Parquet."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while deployment_status("Recorder") != "HEALTHY" and time.monotonic() < deadline:
        time.sleep(1.0)
    handle = serve.get_deployment_handle("Recorder", app_name=APP_NAME)
    last = ""
    while time.monotonic() < deadline:
        try:
            return f"flushed {handle.flush.remote().result(timeout_s=60)}"
        except Exception as exc:  # noqa: BLE001 - reported, and retried until the deadline
            last = f"{type(exc).__name__}: {exc}"[:200]
            time.sleep(2.0)
    return f"FLUSH FAILED ({last}); checking the WAL as it is"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="server config (default configs/test.yaml; cluster.yaml)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--limit-s", type=float, default=30.0, help="latency to count as too long")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="client timeout")
    parser.add_argument("--grace", type=float, default=60.0, help="more load, until recovery")
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--storage-root", type=Path, help="history root (default: a temp dir)")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="a two-node cluster (bench/cluster.py, configs/cluster.yaml) via serve deploy; "
        "the model node is lost and started again among the replica kills",
    )
    parser.add_argument("--node-down-s", type=float, default=20.0, help="--cluster: node down")
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    from app.config import load_server_config, resolve_config_path
    from deployments.graph import deployment_name

    args.config = args.config or (CLUSTER_CONFIG if args.cluster else TEST_CONFIG)
    config = load_server_config(resolve_config_path(str(args.config)))
    encoder, llm = config.encoder.preload[0], config.decoder.models[0]
    decoder = deployment_name(llm)
    args.storage_root = args.storage_root or Path(tempfile.mkdtemp(prefix="chaos-history-"))
    if importlib.util.find_spec("app.proxy_errors") is None:
        print("note: app.proxy_errors is missing; Ray's own proxy errors stay as they are")
        os.environ.setdefault("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", "")
    build_test_models()
    print(f"starting the server (config {args.config}, history {args.storage_root})")
    with serving(args) as (base_url, cluster):
        print(f"ready at {base_url}; {args.clients} clients for {args.duration:.0f} s")
        run = asyncio.run(drive(base_url, args, encoder, llm, decoder, cluster))
        print(settle_and_flush())
        checks, billed = check_history(args.storage_root, run)
        return report(run, args, decoder, checks, billed)


@contextmanager
def serving(args: argparse.Namespace) -> Iterator[tuple[str, LocalCluster | None]]:
    """The app on one local node, or deployed onto a two-node cluster (driver connected)."""
    if not args.cluster:
        with local_server(args.storage_root, config=args.config) as base_url:
            yield base_url, None
        return
    import ray

    with deployed_cluster(args.config, args.storage_root, APP_NAME) as cluster:
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            yield cluster.base_url, cluster
        finally:
            ray.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
