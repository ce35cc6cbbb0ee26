"""OpenAI-compatible format. So far: its error body (requests arrive with the decoder work)."""

from __future__ import annotations

from typing import Any

from app.protocol import ApiError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def to_error(error: ApiError) -> tuple[int, dict[str, Any]]:
    # OpenAI reports bad parameters as 400, never FastAPI's 422.
    status = 400 if error.status == 422 else error.status
    error_type = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"message": error.message, "type": error_type, "param": error.param, "code": error.code}
    return status, {"error": body}
