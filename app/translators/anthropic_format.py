"""Anthropic-compatible format. So far: its error body (requests arrive with /v1/messages)."""

from __future__ import annotations

from typing import Any

from app.protocol import ApiError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def to_error(error: ApiError) -> tuple[int, dict[str, Any]]:
    status = 400 if error.status == 422 else error.status
    error_type = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return status, {"type": "error", "error": {"type": error_type, "message": error.message}}
