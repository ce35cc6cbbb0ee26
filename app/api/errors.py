"""Errors rendered in the shape of the format the request came in, with the right status."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.protocol import ApiError, ApiException
from app.translators import anthropic_format, native, openai_format
from app.translators.validation import summarize

logger = logging.getLogger("ray.serve")
ErrorFormat = Literal["native", "openai", "anthropic"]
_RENDERERS: dict[str, Callable[[ApiError], tuple[int, dict[str, Any]]]] = {
    "native": native.to_error,
    "openai": openai_format.to_error,
    "anthropic": anthropic_format.to_error,
}


def error_format(path: str, headers: Any) -> ErrorFormat:
    if path.startswith(("/v1/messages", "/v1/v1/messages")) or (
        path.startswith("/v1/") and "anthropic-version" in headers
    ):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "native"


def render(
    error: ApiError, fmt: ErrorFormat, headers: dict[str, str] | None = None
) -> JSONResponse:
    status, body = _RENDERERS[fmt](error)
    return JSONResponse(body, status_code=status, headers=headers)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, enforcing the size limit on what actually arrives."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiException(_too_large(limit))
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        error = ApiError(400, "invalid_json", f"Request body is not valid JSON: {exc}")
        raise ApiException(error) from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"Request body exceeds the limit of {limit} bytes.")


class BodySizeLimit:
    """Rejects a declared Content-Length over the limit before the body is read."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            declared = headers.get("content-length", "")
            limit = self.limit()
            if declared.isdigit() and int(declared) > limit:
                fmt = error_format(scope["path"], headers)
                await render(_too_large(limit), fmt)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    def fmt_of(request: Request) -> ErrorFormat:
        return error_format(request.url.path, request.headers)

    @app.exception_handler(ApiException)
    async def _api(request: Request, exc: ApiException) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.error.status == 401 else None
        return render(exc.error, fmt_of(request), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fmt = fmt_of(request)
        errors = list(exc.errors())
        if fmt == "native":
            return JSONResponse(native.validation_error_body(errors), status_code=422)
        return render(ApiError.invalid(summarize(errors), status=400), fmt)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return render(ApiError(exc.status_code, code, str(exc.detail)), fmt_of(request))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return render(ApiError.internal(), fmt_of(request))
