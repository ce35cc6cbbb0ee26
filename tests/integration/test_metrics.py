"""Metrics in Prometheus format, scraped from Ray's metrics export under the running server.

Ray exports each process's metrics on an interval (about 10 s), so the scrape is polled until
the counters and histograms have moved by at least what this test did, or a deadline passes.
Other tests of the session may add to any of them: every check is "at least".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bench.local_server import metrics_url
from tests.conftest import TINY_ID
from tests.integration.conftest import APP_NAME

DECODER = "pioneer-test/llama-tiny-test"
LIMITED = "pio_sk_test_limited"  # 3 /inference requests per 4 s (configs/test_keys.yaml)
DEADLINE_S = 90.0
GAUGE_TTL_S = 20.0  # Ray's agent drops a gauge series not set for two export intervals
NATIVE = {"model_id": TINY_ID, "text": "Tim Cook is the CEO of Apple.", "schema": ["person"]}
MESSAGES = [{"role": "user", "content": "hello world"}]


@dataclass(frozen=True)
class Want:
    """A sample summed over every series whose labels include `labels`, and how much it
    must have grown since the first scrape (0: only that it is there)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    at_least: float = 1.0

    def total(self, samples: list[Sample]) -> float:
        return sum(
            s.value
            for s in samples
            if s.name == self.name and all(s.labels.get(k) == v for k, v in self.labels.items())
        )

    def present(self, samples: list[Sample]) -> bool:
        return any(s.name == self.name for s in samples)

    def met(self, samples: list[Sample], before: list[Sample]) -> bool:
        grown = self.total(samples) - self.total(before)
        return grown >= self.at_least and (self.at_least > 0 or self.present(samples))


def scrape() -> list[Sample]:
    text = httpx.get(metrics_url(), timeout=10).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def wait_for(wants: list[Want], before: list[Sample]) -> list[Sample]:
    """The first scrape where every want has grown enough; fails with what had not."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        samples = scrape()
        short = {
            f"{w.name}{w.labels}": (w.total(samples) - w.total(before), w.at_least)
            for w in wants
            if not w.met(samples, before)
        }
        if not short:
            return samples
        if time.monotonic() > deadline:
            pytest.fail(f"metrics did not move within {DEADLINE_S:.0f} s (grew, wanted): {short}")
        time.sleep(1.0)


def requests_with(route: str, fmt: str, model: str, status: int) -> dict[str, str]:
    return {"route": route, "format": fmt, "model": model, "status": str(status)}


def test_counters_and_histograms_move_with_the_right_labels(
    server: str, client: httpx.Client, sdk: openai.OpenAI
) -> None:
    before = scrape()

    for _ in range(3):
        assert client.post("/inference", json=NATIVE).status_code == 200
    unknown = client.post("/inference", json={**NATIVE, "model_id": "pioneer-test/no-such"})
    assert unknown.status_code == 404

    answer = sdk.chat.completions.create(
        model=DECODER, messages=MESSAGES, temperature=0.0, max_tokens=8
    )
    streamed = list(
        sdk.chat.completions.create(
            model=DECODER,
            messages=MESSAGES,
            temperature=0.0,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usages = [answer.usage, *(chunk.usage for chunk in streamed if chunk.usage)]
    assert len(usages) == 2
    prompt_tokens = sum(u.prompt_tokens for u in usages)  # OpenAI's: cached ones included
    completion_tokens = sum(u.completion_tokens for u in usages)
    assert completion_tokens > 0

    limited_status = [
        httpx.post(f"{server}/inference", json=NATIVE, headers={"X-API-Key": LIMITED}).status_code
        for _ in range(5)  # the window holds 3 at most, whatever an earlier test spent
    ]
    assert 429 in limited_status

    native_ok = requests_with("/inference", "native", TINY_ID, 200)
    chat_ok = requests_with("/v1/chat/completions", "openai", DECODER, 200)
    decoder_tokens = {"model": DECODER, "format": "openai"}
    wants = [
        Want("ray_pioneer_requests_total", native_ok, 3),
        Want("ray_pioneer_request_latency_ms_count", native_ok, 3),
        Want("ray_pioneer_requests_total", chat_ok, 2),
        Want("ray_pioneer_request_latency_ms_count", chat_ok, 2),
        Want("ray_pioneer_requests_total", requests_with("/inference", "native", "unknown", 404)),
        # Refused before its handler ran: no model was resolved for it.
        Want("ray_pioneer_requests_total", requests_with("/inference", "native", "unknown", 429)),
        Want(
            "ray_pioneer_rate_limit_rejections_total",
            {"group": "inference", "scope": "key", "code": "inference_rate_limit"},
        ),
        Want("ray_pioneer_time_to_first_token_ms_count", decoder_tokens, 2),
        Want("ray_pioneer_output_tokens_total", decoder_tokens, completion_tokens),
        Want("ray_pioneer_input_tokens_total", {"model": TINY_ID, "format": "native"}, 3),
        Want("ray_pioneer_encoder_batch_texts_count", {}, 3),
    ]
    after = wait_for(wants, before)

    # Input tokens are split by cache status (billing's split); together, OpenAI's prompt.
    prompt = Want("ray_pioneer_input_tokens_total", decoder_tokens).total(after)
    prompt += Want("ray_pioneer_cached_tokens_total", decoder_tokens).total(after)
    prompt -= Want("ray_pioneer_input_tokens_total", decoder_tokens).total(before)
    prompt -= Want("ray_pioneer_cached_tokens_total", decoder_tokens).total(before)
    assert prompt >= prompt_tokens

    # Ray Serve labels each series with where it came from.
    series = [s for s in after if s.name == "ray_pioneer_requests_total"]
    assert {s.labels.get("application") for s in series} == {APP_NAME}
    assert {s.labels.get("deployment") for s in series} == {"Ingress"}
    # Buckets are cumulative: the +Inf one holds every observation.
    buckets = Want("ray_pioneer_request_latency_ms_bucket", {**native_ok, "le": "+Inf"})
    count = Want("ray_pioneer_request_latency_ms_count", native_ok)
    assert buckets.total(after) == count.total(after) > 0


def test_encoder_queue_and_recorder_lag_stay_exported(server: str, client: httpx.Client) -> None:
    assert client.post("/inference", json=NATIVE).status_code == 200
    extracted = time.monotonic()
    queue = Want("ray_pioneer_encoder_queue_texts", at_least=0)
    wants = [
        queue,
        # The test config flushes by hand (flush_interval_s 3600): the bill waits in the WAL.
        Want("ray_pioneer_recorder_wal_rows", {"dataset": "billing"}, 1),
        Want("ray_pioneer_recorder_wal_age_s", {"dataset": "billing"}, at_least=0),
    ]
    samples = wait_for(wants, before=[])
    assert queue.total(samples) >= 0
    # An idle encoder sets no gauge, yet its queue stays in the scrape past Ray's gauge TTL.
    while time.monotonic() - extracted < GAUGE_TTL_S + 10:
        idle_s = time.monotonic() - extracted
        assert queue.present(scrape()), f"queue gauge gone after {idle_s:.0f} s idle"
        time.sleep(2.0)
