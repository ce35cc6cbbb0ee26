"""Calls from the ingress to a deployment handle: a bounded wait for a replica, and what a
lost, overloaded or still-starting deployment answers. No request logic here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.config import LimitsConfig
from app.protocol import ApiError, ApiException

logger = logging.getLogger("ray.serve")

# Deployments whose replicas report to the resolver (it knows whether one ever started).
WARMING_KNOWN = frozenset({"encoder deployment", "decoder deployment", "embedder deployment"})


def backend_down(what: str, exc: Exception, retry_after_s: int) -> ApiException:
    """A lost or full deployment: 503 with Retry-After, whatever the path that met it."""
    from ray.serve.exceptions import BackPressureError

    logger.error("%s call failed: %s", what, type(exc).__name__)
    if isinstance(exc, BackPressureError):  # a full queue: busy replicas, or none (restarting)
        message = f"The {what} has no free capacity (busy, or restarting); retry with backoff."
        return ApiException(ApiError(503, "overloaded", message, retry_after_s=retry_after_s))
    message = f"The {what} is unavailable right now; retry shortly."
    return ApiException(ApiError(503, "backend_unavailable", message, retry_after_s=retry_after_s))


async def assigned(
    response: Any,
    what: str,
    limits: LimitsConfig,
    warming: Callable[[str], Awaitable[bool]] | None = None,
) -> None:
    """Wait, up to the limit, for Ray Serve to hand a call to a replica.

    While a deployment has no live replica (one was lost and is restarting) Serve queues its
    calls with no limit; past ours the call is withdrawn and the caller told to come back.
    `_fetch_future_result_async` is what `DeploymentResponse._to_object_ref` (a DeveloperAPI)
    awaits, without needing the call to be by reference. A deployment that has never had a
    replica up (the server is starting) answers 425 Too Early, errors.mdx's cold start."""
    try:
        await asyncio.wait_for(response._fetch_future_result_async(), limits.replica_wait_s)
    except TimeoutError:
        response.cancel()
        logger.warning("no %s replica took a call within %.1f s", what, limits.replica_wait_s)
        if warming is not None and await warming(what):  # no replica ever started: too early
            raise ApiException(
                ApiError(
                    425,
                    "model_warming",
                    f"The {what} is still warming up (starting its first replica); retry in "
                    f"{limits.retry_after_s} s.",
                    retry_after_s=limits.retry_after_s,
                )
            ) from None
        raise ApiException(
            ApiError(
                503,
                "backend_unavailable",
                f"No {what} replica could take the request within {limits.replica_wait_s:g} "
                f"s (one is restarting, or all are at capacity); retry in "
                f"{limits.retry_after_s} s.",
                retry_after_s=limits.retry_after_s,
            )
        ) from None
