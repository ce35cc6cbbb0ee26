"""JSON errors for what Ray Serve's HTTP proxy answers by itself.

Most errors are rendered by the ingress, in the caller's format. A few never reach it: when
the ingress replica dies mid-request the proxy sends nothing and uvicorn answers a text/plain
`500 Internal Server Error`; the proxy's own timeout (408) and backpressure (503) replies are
text/plain too. Ray Serve runs Starlette middlewares inside the proxy when
`RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=app.proxy_errors:proxy_middlewares` is set (the
Makefile and the tests set it; a cluster sets it in its nodes' environment); this one turns
those replies into the caller's error shape. A response that had already started (a stream)
cannot be replaced: it just ends, and the client sees a truncated body.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_format, render
from app.protocol import ApiError, clip

LOST_REPLICA = ApiError(
    503,
    "replica_lost",
    "The server process handling this request stopped before it answered; the inference "
    "may or may not have run (GET /inferences shows what did). Retry.",
    retry_after_s=1,
)
_CODES = {408: "timeout", 429: "overloaded", 503: "backend_unavailable"}


def proxy_middlewares() -> list[Middleware]:
    return [Middleware(JsonProxyErrors)]


def _header(message: Message, name: bytes) -> str:
    for key, value in message.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


class JsonProxyErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        held: Message | None = None  # a plain-text error start from the proxy itself
        body = b""

        async def send_json(error: ApiError) -> None:
            nonlocal started
            started = True
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            await render(error, error_format(scope["path"], headers))(scope, receive, send)

        async def guarded(message: Message) -> None:
            nonlocal started, held, body
            if message["type"] == "http.response.start" and not started:
                json_reply = _header(message, b"content-type").startswith("application/json")
                if message["status"] >= 400 and not json_reply:
                    held = message  # replaced once its body (the proxy's text) is complete
                    return
                started = True
            elif message["type"] == "http.response.body" and held is not None:
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    await send_json(_from_proxy(held, body))
                return
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception:
            if started:
                raise
        if not started:
            await send_json(LOST_REPLICA)


def _from_proxy(start: Message, body: bytes) -> ApiError:
    status = start["status"]
    if status >= 500 and status != 503:
        return LOST_REPLICA
    retry = _header(start, b"retry-after")
    text = clip(body.decode("utf-8", "replace").strip() or "The request failed.", 300)
    return ApiError(
        status,
        _CODES.get(status, "proxy_error"),
        text,
        retry_after_s=int(retry) if retry.isdigit() else (1 if status >= 500 else None),
    )
