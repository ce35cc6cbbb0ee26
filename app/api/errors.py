"""Errors rendered in the shape of the format the request came in, with the right status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.json_body import too_large
from app.protocol import ApiError, ApiException, clip
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
    # errors.mdx: a request carrying `anthropic-version` gets Anthropic's envelope, any route.
    if path.startswith(("/v1/messages", "/v1/v1/messages")) or "anthropic-version" in headers:
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "native"


def render(
    error: ApiError, fmt: ErrorFormat, headers: dict[str, str] | None = None
) -> JSONResponse:
    status, body = _RENDERERS[fmt](error)
    headers = dict(headers or {})
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    if error.status == 429 and error.scope is not None:  # which limit: rate-limits.mdx
        headers["X-RateLimit-Scope"] = error.scope
        headers["X-RateLimit-Code"] = error.code
    return JSONResponse(body, status_code=status, headers=headers)


MAX_LISTED_ERRORS = 20


def bounded(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as a client may see them: at most MAX_LISTED_ERRORS, each location
    part and message clipped (a location can hold a client's dict key, a message its value)."""
    shown = [
        {**error, "loc": tuple(map(_loc_part, error["loc"])), "msg": clip(error["msg"], 300)}
        for error in errors[:MAX_LISTED_ERRORS]
    ]
    if len(errors) > MAX_LISTED_ERRORS:
        more = len(errors) - MAX_LISTED_ERRORS
        shown.append({"loc": ("body",), "msg": f"and {more} more errors", "type": "too_many"})
    return shown


def _loc_part(part: Any) -> Any:
    return part if isinstance(part, int) else clip(part, 64)


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
                await render(too_large(limit), fmt)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    def fmt_of(request: Request) -> ErrorFormat:
        return error_format(request.url.path, request.headers)

    @app.exception_handler(ApiException)
    async def _api(request: Request, exc: ApiException) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.error.status == 401 else {}
        if exc.inference_id:  # the failure was recorded (and billed) under this id
            headers["X-Inference-Id"] = exc.inference_id
        return render(exc.error, fmt_of(request), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fmt = fmt_of(request)
        errors = bounded(list(exc.errors()))
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
