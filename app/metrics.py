"""Server metrics, each defined once, exported in Prometheus format by Ray's metrics agent.

Ray prefixes every name with `ray_` and adds `_total` to counters; inside a Serve replica,
`ray.serve.metrics` adds `deployment`, `replica` and `application` labels (README, "Metrics").
Serve's own request metrics (`ray_serve_num_http_requests_total`, ...) know the route and
status but not the format or the model; these add what they lack.

Label values are bounded whatever clients send: `route` is the route template (not the path),
`model` a catalog id the resolver answered (else "unknown"), `format` one of three doors.
Recording never fails or slows a request: metrics are made once per process on first use (a
replica's labels come from its context then), a record is a few microseconds with no lock of
ours, and an error is logged at most once a minute and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any, Literal

from ray.serve.metrics import Counter, Gauge, Histogram

logger = logging.getLogger("ray.serve")
UNKNOWN = "unknown"  # no model was resolved (a bad id, a history or catalog route)
UNMATCHED = "unmatched"  # no route matched the path: the path itself is client input
WARN_EVERY_S = 60.0
HOLD_S = 5.0  # gauges are set again this often: half Ray's default export interval (10 s)

Format = Literal["native", "openai", "anthropic"]
# Request latencies span a tiny extraction (ms) to a long generation (minutes).
LATENCY_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000]
FIRST_TOKEN_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000]
MAINTENANCE_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000]
BATCH_TEXTS = [1, 2, 4, 8, 16, 32, 64, 128]

REQUEST_TAGS = ("route", "format", "model", "status")
TOKEN_TAGS = ("model", "format")


# ---- the metrics ---------------------------------------------------------------------------


@cache
def _requests() -> Counter:
    return Counter(
        "pioneer_requests",
        description="HTTP requests answered by the ingress, by route template, format, model "
        "and status code.",
        tag_keys=REQUEST_TAGS,
    )


@cache
def _request_latency() -> Histogram:
    return Histogram(
        "pioneer_request_latency_ms",
        description="Time from a request reaching the ingress app to the last byte of its "
        "answer (a stream's end), in ms.",
        boundaries=LATENCY_MS,
        tag_keys=REQUEST_TAGS,
    )


@cache
def _first_token() -> Histogram:
    return Histogram(
        "pioneer_time_to_first_token_ms",
        description="Time from a generation reaching the gateway to its first generated "
        "token (text, reasoning or tool call) at the ingress, in ms.",
        boundaries=FIRST_TOKEN_MS,
        tag_keys=TOKEN_TAGS,
    )


def _token_counter(kind: str, meaning: str) -> Callable[[], Counter]:
    @cache
    def counter() -> Counter:
        return Counter(f"pioneer_{kind}_tokens", description=meaning, tag_keys=TOKEN_TAGS)

    return counter


_input_tokens = _token_counter("input", "Billed input tokens, not read from a cache.")
_output_tokens = _token_counter("output", "Billed output (generated) tokens.")
_cached_tokens = _token_counter("cached", "Billed input tokens read from the prefix cache.")


@cache
def _encoder_batch() -> Histogram:
    return Histogram(
        "pioneer_encoder_batch_texts",
        description="Texts per GLiNER2 engine call.",
        boundaries=BATCH_TEXTS,
    )


@cache
def _encoder_queue() -> Gauge:
    return Gauge(
        "pioneer_encoder_queue_texts",
        description="Texts an encoder replica has accepted that no engine call has started on "
        "yet (in the batch queue or waiting for the engine).",
    )


@cache
def _rate_limited() -> Counter:
    return Counter(
        "pioneer_rate_limit_rejections",
        description="Requests refused with 429 by a rate limit, by endpoint group, scope "
        "(team, key, ip) and code.",
        tag_keys=("group", "scope", "code"),
    )


@cache
def _credit_refused() -> Counter:
    return Counter(
        "pioneer_credit_rejections",
        description="Inferences refused because their project's credit budget is spent "
        "(402 out_of_credits, 403 credit_ceiling_reached).",
        tag_keys=("code",),
    )


@cache
def _wal_rows() -> Gauge:
    return Gauge(
        "pioneer_recorder_wal_rows",
        description="Rows acknowledged (in the write-ahead log) and not yet in Parquet.",
        tag_keys=("dataset",),
    )


@cache
def _wal_age() -> Gauge:
    return Gauge(
        "pioneer_recorder_wal_age_s",
        description="Age of the oldest row not yet in Parquet, in s (0: none; to about 0.5 s).",
        tag_keys=("dataset",),
    )


@cache
def _flushed_rows() -> Counter:
    return Counter(
        "pioneer_recorder_flushed_rows",
        description="Rows the Recorder's background flushes published to Parquet.",
        tag_keys=("dataset",),
    )


@cache
def _flush_duration() -> Histogram:
    return Histogram(
        "pioneer_recorder_flush_ms",
        description="Duration of a background flush that published rows, in ms.",
        boundaries=MAINTENANCE_MS,
    )


@cache
def _compaction_duration() -> Histogram:
    return Histogram(
        "pioneer_recorder_compaction_ms",
        description="Duration of a background compaction pass over every dataset, in ms.",
        boundaries=MAINTENANCE_MS,
    )


@cache
def _maintenance_failures() -> Counter:
    return Counter(
        "pioneer_recorder_maintenance_failures",
        description="Background flush / compaction passes that failed (retried next tick).",
    )


@cache
def _history_reads() -> Counter:
    return Counter(
        "pioneer_history_reads",
        description="History reads by who answered: `held`, this replica on what it held "
        "(the WAL showed no write since); `snapshot`, this replica after asking the Recorder "
        "what changed; `recorder`, the Recorder itself.",
        tag_keys=("answered_by",),
    )


# ---- recording, never raising --------------------------------------------------------------

_warned_at = 0.0


def _dropped(what: str) -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at > WARN_EVERY_S:
        _warned_at = now
        logger.warning("metric %s not recorded (logged once a minute)", what, exc_info=True)


def _never_raises(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A recording helper: an error in it is logged (once a minute) and dropped."""

    def wrap(record: Callable[..., None]) -> Callable[..., None]:
        @wraps(record)
        def recorded(*args: Any, **kwargs: Any) -> None:
            try:
                record(*args, **kwargs)
            except Exception:
                _dropped(what)

        return recorded

    return wrap


# Ray's metrics agent forgets a gauge series that is not set again within two export
# intervals (about 20 s), so an idle replica's last value would vanish from the scrape: every
# value set is held and set again every HOLD_S by one daemon thread per process.
GaugeOf = Callable[[], Gauge]
_held: dict[tuple[GaugeOf, tuple[tuple[str, str], ...]], float] = {}
_holder: threading.Thread | None = None


def _set_gauge(gauge: GaugeOf, value: float, tags: dict[str, str] | None = None) -> None:
    global _holder
    gauge().set(value, tags=tags)
    _held[(gauge, tuple(sorted((tags or {}).items())))] = value
    if _holder is None:
        _holder = threading.Thread(target=_hold_gauges, name="pioneer-gauges", daemon=True)
        _holder.start()


def _hold_gauges() -> None:
    while True:
        time.sleep(HOLD_S)
        for (gauge, tags), value in list(_held.items()):
            try:
                gauge().set(value, tags=dict(tags) or None)
            except Exception:
                _dropped("a held gauge")


def door_format(path: str) -> Format:
    """The door a path belongs to (app/api/errors.py picks error shapes the same way, and
    also by the anthropic-version header; a door is the path's alone)."""
    if path.startswith(("/v1/messages", "/v1/v1/messages")):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "native"


def source_format(source: str) -> Format:
    """The door of a canonical request's `source` (native, gliner2, openai.chat, ...)."""
    if source.startswith("openai."):
        return "openai"
    if source.startswith("anthropic."):
        return "anthropic"
    return "native"


@dataclass
class RequestLabels:
    """What a request's handlers learn about it for its metrics (the model, once resolved)."""

    model: str = UNKNOWN


_request: ContextVar[RequestLabels | None] = ContextVar("pioneer_request_labels", default=None)


def track_request() -> tuple[RequestLabels, Token[RequestLabels | None]]:
    """Labels for the request now running (and the tasks it starts, which copy the context)."""
    labels = RequestLabels()
    return labels, _request.set(labels)


def untrack_request(token: Token[RequestLabels | None]) -> None:
    _request.reset(token)


def note_model(model_id: str) -> None:
    labels = _request.get()
    if labels is not None:
        labels.model = model_id


@_never_raises("pioneer_requests")
def request_done(route: str | None, fmt: str, model: str, status: int, latency_ms: float) -> None:
    tags = {"route": route or UNMATCHED, "format": fmt, "model": model, "status": str(status)}
    _requests().inc(tags=tags)
    _request_latency().observe(latency_ms, tags=tags)


@_never_raises("pioneer_*_tokens")
def tokens_billed(source: str, bill: dict[str, Any]) -> None:
    """A durable bill's tokens (Pioneer's split: input excludes cache reads)."""
    tags = {"model": bill.get("base_model") or UNKNOWN, "format": source_format(source)}
    for counter, key in (
        (_input_tokens, "input_tokens"),
        (_output_tokens, "output_tokens"),
        (_cached_tokens, "cache_read_tokens"),
    ):
        if (count := bill.get(key) or 0) > 0:  # a counter takes positive steps only
            counter().inc(count, tags=tags)


@_never_raises("pioneer_time_to_first_token_ms")
def first_token(model_id: str | None, source: str, latency_ms: float) -> None:
    tags = {"model": model_id or UNKNOWN, "format": source_format(source)}
    _first_token().observe(latency_ms, tags=tags)


@_never_raises("pioneer_encoder_batch_texts")
def encoder_batch(texts: int) -> None:
    _encoder_batch().observe(texts)


@_never_raises("pioneer_encoder_queue_texts")
def encoder_queue(texts: int) -> None:
    _set_gauge(_encoder_queue, texts)


@_never_raises("pioneer_rate_limit_rejections")
def rate_limit_rejected(group: str, scope: str | None, code: str) -> None:
    _rate_limited().inc(tags={"group": group, "scope": scope or UNKNOWN, "code": code})


@_never_raises("pioneer_credit_rejections")
def credit_rejected(code: str) -> None:
    _credit_refused().inc(tags={"code": code})


@_never_raises("pioneer_recorder_flush_ms")
def recorder_flushed(rows_by_dataset: dict[str, int], duration_ms: float) -> None:
    _flush_duration().observe(duration_ms)
    for dataset, rows in rows_by_dataset.items():
        if rows > 0:
            _flushed_rows().inc(rows, tags={"dataset": dataset})


@_never_raises("pioneer_recorder_compaction_ms")
def recorder_compacted(duration_ms: float) -> None:
    _compaction_duration().observe(duration_ms)


@_never_raises("pioneer_recorder_maintenance_failures")
def recorder_maintenance_failed() -> None:
    _maintenance_failures().inc()


@_never_raises("pioneer_history_reads")
def history_read(answered_by: Literal["held", "snapshot", "recorder"]) -> None:
    _history_reads().inc(tags={"answered_by": answered_by})


class WalLag:
    """The Recorder's unflushed rows per dataset, from HistoryStore.stats() taken each
    maintenance tick: the count as it is, the age from the tick that first saw rows waiting
    (reset when rows were flushed), so to about one tick."""

    def __init__(self) -> None:
        self._waiting_since: dict[str, float] = {}
        self._last_rows: dict[str, int] = {}

    def observe(self, stats: dict[str, dict[str, Any]], flushed: dict[str, int]) -> None:
        try:
            now = time.monotonic()
            for dataset, numbers in stats.items():
                rows = int(numbers.get("buffered", 0))
                emptied = dataset in flushed or rows < self._last_rows.get(dataset, 0)
                if rows == 0:
                    self._waiting_since.pop(dataset, None)
                elif emptied or dataset not in self._waiting_since:
                    self._waiting_since[dataset] = now
                self._last_rows[dataset] = rows
                age = now - self._waiting_since.get(dataset, now)
                _set_gauge(_wal_rows, rows, {"dataset": dataset})
                _set_gauge(_wal_age, age, {"dataset": dataset})
        except Exception:
            _dropped("pioneer_recorder_wal_*")
