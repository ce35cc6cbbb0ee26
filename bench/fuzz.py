"""Fuzz the inference and history routes with seeded, mutated requests; report what breaks.

From 1-3 valid seed requests per route (encoder and decoder variants where a route takes both)
it derives mutated ones: type swaps, missing and unknown fields, huge/negative integers, raw
NaN/Infinity/1e999 literals, 1,000+ deep arrays and objects, 100k-char strings, texts longer
than the model's window, invalid UTF-8 bytes, lone surrogates in every string position, wrong
content types, truncated/empty/non-object bodies, bad API keys, hostile ids and query filters.
The same `--seed` sends the same requests. A problem is a response >= 500, an error body not
in its route's shape (native `{"detail"}`, OpenAI `{"error"}`, Anthropic `{"type": "error"}`),
an error body over 4 KiB, or a request over 30 s (or one that got no response at all).

    python bench/fuzz.py [--per-route 1000] [--seed 0] [--url URL] [--concurrency 8]

Without `--url` it builds the tiny offline models and starts its own server (configs/test.yaml)
on a private Ray cluster. Exits 1 when it found any problem. From tests: `run_fuzz(url, n)`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ENCODER = "pioneer-test/gliner2-tiny-test"
DECODER = "pioneer-test/llama-tiny-test"
EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
API_KEY = "pio_sk_test_alpha"
TIMEOUT_S = 30.0
MAX_ERROR_BYTES = 4096
TEXT = "Tim Cook works for Apple in Cupertino."
HELLO = [{"role": "user", "content": "hello world"}]
ID = "{id}"  # stands for the real inference id in seed paths
NATIVE, OPENAI, ANTHROPIC = "native", "openai", "anthropic"

SEEDS: dict[str, tuple[str, str, str, list[Any]]] = {  # route: (method, path, shape, seeds)
    "POST /inference": ("POST", "/inference", NATIVE, [
        {"model_id": ENCODER, "text": TEXT, "schema": {"entities": ["person", "organization"],
         "classifications": [{"task": "sentiment", "labels": ["pos", "neg"]}]}, "threshold": 0.3},
        {"model_id": ENCODER, "text": [TEXT, "Satya Nadella"], "schema": ["person", "city"],
         "include_spans": False, "store": True},
        {"model_id": DECODER, "task": "generate", "messages": HELLO, "max_tokens": 4,
         "temperature": 0.0, "stop": ["\n"]},
    ]),
    "POST /v1/chat/completions": ("POST", "/v1/chat/completions", OPENAI, [
        {"model": DECODER, "messages": [{"role": "system", "content": "Be brief."}, *HELLO],
         "max_tokens": 4, "temperature": 0, "stop": ["\n"], "stream": False, "n": 1, "seed": 7},
        {"model": ENCODER, "schema": {"entities": ["person"]},
         "messages": [{"role": "user", "content": TEXT}], "threshold": 0.3},
    ]),
    "POST /v1/completions": ("POST", "/v1/completions", OPENAI, [
        {"model": DECODER, "prompt": "hello world", "max_tokens": 4, "seed": 1, "echo": False},
        {"model": ENCODER, "prompt": [TEXT], "schema": ["person", "organization"]},
    ]),
    "POST /v1/responses": ("POST", "/v1/responses", OPENAI, [
        {"model": DECODER, "input": "hello world", "instructions": "Be brief.",
         "max_output_tokens": 4, "metadata": {"k": "v"}},
        {"model": ENCODER, "input": [{"role": "user", "content": TEXT}],
         "schema": {"entities": ["person"]}},
    ]),
    "POST /v1/messages": ("POST", "/v1/messages", ANTHROPIC, [
        {"model": DECODER, "max_tokens": 4, "system": "Be brief.", "stop_sequences": ["\n"],
         "messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
         "top_k": 5},
        {"model": ENCODER, "max_tokens": 4, "messages": [{"role": "user", "content": TEXT}],
         "schema": {"entities": ["person"]}},
    ]),
    "POST /v1/embeddings": ("POST", "/v1/embeddings", OPENAI, [
        {"model": EMBEDDER, "input": [TEXT, "hello world"], "encoding_format": "float"},
        {"model": EMBEDDER, "input": [[7592, 2088], [2088]], "encoding_format": "base64",
         "dimensions": 384, "user": "u", "store": False},
    ]),
    "POST /inferences/{id}/feedback": ("POST", f"/inferences/{ID}/feedback", NATIVE, [
        {"verdict": "incorrect", "corrected_output": {"entities": {"person": ["Tim Cook"]}},
         "notes": "fuzz"},
        {"verdict": "correct"},
        {"correction": {"entities": {"organization": ["Apple"]}}},
    ]),
    "GET /inferences": ("GET", "/inferences", NATIVE, [
        {"limit": "5", "model_id": ENCODER, "task": "extract_entities"},
        {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00+02:00", "offset": "0",
         "latency_min": "0", "latency_max": "100000", "project_id": "project-alpha"},
    ]),
    "GET /inferences/{id}": ("GET", f"/inferences/{ID}", NATIVE, [{}]),
}  # fmt: skip


def deep(n: int, obj: bool) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n if obj else b"[" * n + b"]" * n


TYPES: list[Any] = ["s", "", 7, 0.5, True, False, None, [], ["a"], {}, {"k": "v"}, [[1]]]
ODD = ["\x00", "\u202eevil", "\ufeff", "😀" * 50, "<script>x</script>", "%s%n{0}", "\\u0000"]
# Value-replacing mutations. A bytes value in a body is JSON text written into it verbatim.
VALUES: dict[str, Callable[[random.Random], Any]] = {
    "type_swap": lambda r: r.choice(TYPES),
    "big_int": lambda r: r.choice([10**30, -(2**63) - 1, 2**64, 2**63, 2**31, -1, 0]),
    "special_float": lambda r: r.choice(
        [float("nan"), float("inf"), float("-inf"), b"1e999", b"-1e999"]),
    "deep_array": lambda r: deep(r.choice([65, 500, 1100, 5000, 30000]), obj=False),
    "deep_object": lambda r: deep(r.choice([65, 500, 1100, 3000, 10000]), obj=True),
    # these target string positions (json.dumps escapes lone surrogates as "\ud800")
    "surrogate": lambda r: r.choice(["\ud800", "a\udfffb", "\udc00x", "\ud83d"]),
    "invalid_utf8": lambda r: r.choice([b'"\xed\xa0\x80"', b'"\xff"', b'"ok\xc3"']),
    "long_string": lambda r: r.choice(["x" * 100_000, "y" * 60_000, "org/" + "m" * 5000]),
    "window": lambda r: "word " * 2000,
    "odd_unicode": lambda r: r.choice(ODD),
}  # fmt: skip
STRING_KINDS = {"surrogate", "invalid_utf8", "long_string", "window", "odd_unicode"}
TEXT_KEYS = {"text", "content", "prompt", "input", "system", "instructions", "notes"}
INJECT: list[str | bytes] = [
    "' OR 1=1 --", "x'; DROP TABLE inferences; --", "../../etc/passwd", "..%2F..%2Fetc",
    "%00", "\x00", "*", "%", "_", "\ud800", b"\xff", b"\xed\xa0\x80", "null", "NaN",
    "1e999", "-1", "x" * 5000, "\u202e", "😀",
]  # fmt: skip
QUERY_VALUES: dict[str, list[str | bytes]] = {
    "limit": ["-1", "0", "501", "9223372036854775808", "1e3", "1.5", "NaN", "", "10" * 30],
    "offset": ["9223372036854775808", "9223372036854775807", "-1", "1e999", "18446744073709551616"],
    "since": ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-13-45", "now", ""],
    "until": ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1e999", "-1"],
    "latency_min": ["NaN", "Infinity", "-Infinity", "1e999", "-1", "1" * 400],
    "latency_max": ["NaN", "inf", "-0", "1e308", "9223372036854775808"],
}  # fmt: skip
FILTERS = ["model_id", "task", "project_id", "training_job_id"]
BAD_AUTH: list[dict[str, str]] = [{}, {"X-API-Key": "pio_sk_wrong"}, {"Authorization": "Bearer"}]
JSON = "application/json"
WHOLE_BODY: dict[str, list[tuple[bytes | None, str | None]]] = {  # (content, content type)
    "no_body": [(None, None), (None, JSON)],
    "empty_body": [(b"", JSON), (b"   ", JSON)],
    "top_level": [(b, JSON) for b in (b"[]", b"5", b'"x"', b"null", b"true", b"NaN")],
    "deep_top": [(deep(5000, False), JSON), (deep(2000, True), JSON)],
}
SECOND = ["type_swap", "drop_key", "extra_field", "big_int", "special_float", "surrogate"]
BODY_KINDS = [
    "type_swap", "drop_key", "extra_field", "big_int", "special_float", "deep_array",
    "deep_object", "long_string", "window", "invalid_utf8", "surrogate", "odd_unicode",
    "many_items", "surrogate", "content_type", "no_body", "empty_body", "truncated",
    "top_level", "bad_bytes", "deep_top", "auth", "type_swap", "window",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    route: str
    method: str
    url: str  # path and query, already percent-encoded
    content: bytes | None
    headers: dict[str, str]
    what: str  # the mutation, in short
    kind: str  # its family, for grouping


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 15]}...({len(text)} chars)"


def encode(body: Any) -> bytes:
    raws: list[bytes] = []

    def walk(node: Any) -> Any:
        if isinstance(node, bytes):
            raws.append(node)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return [walk(item) for item in node] if isinstance(node, list) else node

    data = json.dumps(walk(body)).encode()
    for index, raw in enumerate(raws):
        data = data.replace(f'"@@raw{index}@@"'.encode(), raw, 1)
    return data


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    found = [(prefix, node)]
    if isinstance(node, dict | list):
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            found += paths(value, (*prefix, key))
    return found


def body_mutation(rng: random.Random, kind: str, body: Any) -> tuple[Any, str]:
    """One named mutation of a JSON body: the new body and what it did."""
    body = copy.deepcopy(body)
    every = paths(body)[1:]
    if not every:
        return body, "nothing left to mutate"
    if kind == "extra_field":
        path, node = rng.choice([(p, v) for p, v in paths(body) if isinstance(v, dict)])
        name = rng.choice(["zz_unknown", "\ud800", "", "__proto__", "k" * 300, "model "])
        node[name] = rng.choice(TYPES)
        return body, f"extra field {short(name)} at body{list(path)}"
    targets = every
    if kind == "drop_key":
        targets = [(p, v) for p, v in every if isinstance(p[-1], str)] or every
    elif kind in STRING_KINDS:
        targets = [(p, v) for p, v in every if isinstance(v, str)] or every
        if kind == "window":
            targets = [(p, v) for p, v in targets if p[-1] in TEXT_KEYS] or targets
    elif kind == "many_items":
        targets = [(p, v) for p, v in every if isinstance(v, list) and v] or every
    elif kind in ("big_int", "special_float") and rng.random() < 0.7:  # mostly numeric fields
        numbers = [(p, v) for p, v in every if type(v) in (int, float)]
        targets = numbers or every
    path, old = rng.choice(targets)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if kind == "drop_key":
        del parent[path[-1]]
        return body, f"drop body{list(path)}"
    if kind == "many_items":
        first = old[:1] if isinstance(old, list) and old else ["a"]
        parent[path[-1]] = value = first * rng.choice([5, 65, 200])
    else:
        parent[path[-1]] = value = VALUES[kind](rng)
    return body, f"body{list(path)} = {short(value)}"


def _q(value: str | bytes, safe: str = "") -> str:
    return quote(
        value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass"), safe
    )


def make_case(rng: random.Random, route: str, kind: str, iid: str, api_key: str) -> Case:
    method, path, _, seeds = SEEDS[route]
    seed = copy.deepcopy(rng.choice(seeds))
    headers, content, query, what = {"X-API-Key": api_key}, None, "", kind
    if kind == "auth":
        headers = dict(rng.choice(BAD_AUTH))
        what = f"headers {headers}"
    elif kind == "bad_id":
        bad = rng.choice([*INJECT, "", " ", "a/b", "00000000-0000-0000-0000-000000000000"])
        path = path.replace(ID, _q(bad, safe=rng.choice(["", "/"])))
        what = f"id={short(bad)}"
    if route == "GET /inferences":
        params: list[tuple[str, str | bytes]] = list(seed.items())
        if kind == "query_filter":
            params.append((name := rng.choice(FILTERS), value := rng.choice(INJECT)))
            what = f"{name}={short(value)}"
        elif kind == "query_extra":
            params += [("limit", "1"), ("limit", "2"), ("zz_unknown", "\ud800"), ("", "x")]
            what = "repeated limit, unknown and empty-named params"
        elif kind == "query_value":
            name = rng.choice(sorted(QUERY_VALUES))
            value = rng.choice(QUERY_VALUES[name] + INJECT[:4])
            params = [(k, v) for k, v in params if k != name] + [(name, value)]
            what = f"{name}={short(value)}"
        query = "?" + "&".join(f"{quote(k)}={_q(v)}" for k, v in params)
    elif method == "POST":
        content, ctype = encode(seed), JSON
        if kind in WHOLE_BODY:
            content, ctype = rng.choice(WHOLE_BODY[kind])
            what = f"body {short(content, 40)} as {ctype}"
        elif kind == "content_type":
            ctype = rng.choice(["text/plain", "application/x-www-form-urlencoded", "a/b;x"])
            content = b"model_id=x&text=y" if ctype.endswith("urlencoded") else content
            what = f"content-type {ctype}"
        elif kind == "truncated":
            cut = rng.randrange(1, len(content))
            content, what = content[:cut], f"JSON truncated to {cut} of {len(content)} bytes"
        elif kind == "bad_bytes":
            prefix = rng.choice([b"\xff\xfe", b"\xef\xbb\xbf", b"\x00", b"\xed\xa0\x80"])
            content, what = prefix + content, f"body prefixed with {prefix!r}"
        elif kind not in ("auth", "bad_id"):
            body, what = body_mutation(rng, kind, seed)
            if rng.random() < 0.25:  # now and then a second mutation on top
                second = rng.choice(SECOND)
                body, extra = body_mutation(rng, second, body)
                what, kind = f"{what}; {extra}", f"{kind}+{second}"
            content = encode(body)
        if ctype:
            headers["Content-Type"] = ctype
    return Case(route, method, path.replace(ID, iid) + query, content, headers, what, kind)


def build_cases(per_route: int, seed: int, iid: str, api_key: str = API_KEY) -> list[Case]:
    """The requests to send: the same (per_route, seed, iid) gives the same list."""
    rng = random.Random(seed)
    cases = []
    for route, (method, path, _, _) in SEEDS.items():
        if route == "GET /inferences":
            kinds = ["query_value", "query_filter", "query_value", "query_extra", "auth"]
        elif method == "GET":
            kinds = ["bad_id", "bad_id", "auth", "bad_id", "bad_id", "bad_id", "valid"]
        else:
            kinds = BODY_KINDS + (["bad_id"] * 3 if ID in path else [])
        for i in range(per_route):
            cases.append(make_case(rng, route, kinds[i % len(kinds)], iid, api_key))
    return cases


def shape_error(shape: str, status: int, data: bytes) -> str | None:
    """Why an error body is not in the route's error shape; None when it is."""
    try:
        body = json.loads(data)
    except ValueError:
        return "not JSON"
    keys = sorted(body) if isinstance(body, dict) else []
    error = body.get("error") if keys else None
    strings = isinstance(error, dict) and isinstance(error.get("message"), str)
    strings = strings and all(isinstance(v, str | None) for v in error.values())
    if shape == NATIVE:
        detail = body.get("detail") if keys else None
        items = isinstance(detail, list) and len(detail) > 0 and all(
            isinstance(i, dict) and {"loc", "msg", "type"} <= set(i) for i in detail)  # fmt: skip
        ok = keys == ["detail"] and (isinstance(detail, str) or bool(status == 422 and items))
    elif shape == OPENAI:
        ok = keys == ["error"] and strings and sorted(error) == ["code", "message", "param", "type"]
    else:
        ok = keys == ["error", "type"] and body["type"] == "error" and strings
        ok = ok and sorted(error) == ["message", "type"]
    return None if ok else f"not the {shape} error shape"


@dataclass(frozen=True)
class Problem:
    problem: str  # "5xx", "shape", "size", "slow" or "no-response"
    case: Case
    status: int
    excerpt: str  # body size, why its shape is wrong, and its first 300 bytes


@dataclass
class RouteStats:
    sent: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    bad_shape: int = 0
    max_bytes: int = 0
    max_error_bytes: int = 0
    max_ms: float = 0.0


@dataclass
class FuzzReport:
    routes: dict[str, RouteStats]
    problems: list[Problem]

    def of(self, *problems: str) -> list[Problem]:
        return [p for p in self.problems if p.problem in problems]  # e.g. of("5xx", "shape")

    server_errors = property(lambda self: self.of("5xx"))
    bad_shapes = property(lambda self: self.of("shape"))
    oversized = property(lambda self: self.of("size"))
    slow = property(lambda self: self.of("slow", "no-response"))


async def _run(base_url: str, cases: list[Case], concurrency: int) -> FuzzReport:
    report = FuzzReport({route: RouteStats() for route in SEEDS}, [])
    gate = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, case: Case) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                response = await client.request(
                    case.method, case.url, content=case.content, headers=case.headers
                )
                status, data = response.status_code, response.content
            except httpx.HTTPError as exc:
                status, data = 0, f"{type(exc).__name__}: {exc}".encode()
            elapsed = time.perf_counter() - started
        stats = report.routes[case.route]
        stats.sent += 1
        stats.codes[status] += 1
        stats.max_bytes = max(stats.max_bytes, len(data))
        stats.max_ms = max(stats.max_ms, elapsed * 1000)
        found = ["no-response"] if status == 0 else ["5xx"] if status >= 500 else []
        why = shape_error(SEEDS[case.route][2], status, data) if status >= 400 else None
        if status >= 400:
            stats.max_error_bytes = max(stats.max_error_bytes, len(data))
            stats.bad_shape += why is not None
            found += ["shape"] * (why is not None) + ["size"] * (len(data) > MAX_ERROR_BYTES)
        found += ["slow"] * (elapsed > TIMEOUT_S)
        excerpt = (
            f"({len(data)} B{f'; {why}' if why else ''}) {data[:300].decode(errors='replace')}"
        )
        for problem in found:
            report.problems.append(Problem(problem, case, status, excerpt))

    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_S) as client:
        await asyncio.gather(*(one(client, case) for case in cases))
    return report


def run_fuzz(
    base_url: str, per_route: int, seed: int = 0, api_key: str = API_KEY, concurrency: int = 8
) -> FuzzReport:
    """Make two real inferences (a stored extraction, whose id the id routes get, and a
    generation), then send `per_route` mutated requests to each of the 9 routes."""
    with httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=300) as http:
        for body in (SEEDS["POST /inference"][3][2], SEEDS["POST /inference"][3][0]):
            response = http.post("/inference", json=body)
            response.raise_for_status()
    cases = build_cases(per_route, seed, response.json()["inference_id"], api_key)
    return asyncio.run(_run(base_url, cases, concurrency))


def render(report: FuzzReport, examples: int = 3) -> str:
    rows = [["route", "sent", "2xx", "3xx/4xx by code", "5xx/none", "bad shape", "max bytes",
             "max err bytes", "max ms"]]  # fmt: skip
    for route, s in report.routes.items():
        other = " ".join(f"{c}:{n}" for c, n in sorted(s.codes.items()) if 300 <= c < 500)
        rows.append([route, str(s.sent), str(sum(n for c, n in s.codes.items() if 0 < c < 300)),
                     other or "-", str(sum(n for c, n in s.codes.items() if c >= 500 or c == 0)),
                     str(s.bad_shape), str(s.max_bytes), str(s.max_error_bytes),
                     f"{s.max_ms:.0f}"])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    groups: dict[tuple[str, str, int, str], list[Problem]] = defaultdict(list)
    for p in report.problems:
        groups[(p.case.route, p.problem, p.status, p.case.kind.split("+")[0])].append(p)
    lines.append(f"\n{len(report.problems)} problems in {len(groups)} groups")
    for (route, problem, status, kind), found in sorted(groups.items()):
        lines.append(f"\n[{problem}] {route}: status {status} after {kind} ({len(found)}x)")
        for p in found[:examples]:
            lines.append(
                f"  {p.case.method} {p.case.url[:120]}\n    {p.case.what}\n    -> {p.excerpt}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--per-route", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="fuzz this server instead of starting one")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    def fuzz(url: str) -> FuzzReport:
        return run_fuzz(url, args.per_route, args.seed, API_KEY, args.concurrency)

    if args.url:
        report = fuzz(args.url.rstrip("/"))
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from bench.local_server import build_test_models, local_server

        logging.getLogger("httpx").setLevel(logging.WARNING)  # the build turns on INFO
        build_test_models()
        with tempfile.TemporaryDirectory() as root, local_server(Path(root)) as url:
            started = time.perf_counter()
            report = fuzz(url)
            print(f"fuzzed {url} in {time.perf_counter() - started:.0f} s")
    print(render(report))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
