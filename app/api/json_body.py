"""Request bodies: bytes in, plain JSON values out, or a 400 that says what is wrong.

What gets past here is what every translator, engine and the history store can hold: strict
UTF-8, standard JSON (no NaN or Infinity, no number that overflows a double), nesting of at
most MAX_DEPTH levels, and no lone UTF-16 surrogate in any string. A lone surrogate (the
escape "\\ud800" or the bytes ED A0 80, both of which Python's json module would take) is not
a character: it cannot be tokenized, stored as UTF-8 or sent back, so it is refused at the
door, the same way on every route, instead of failing somewhere downstream.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from app.protocol import LONE_SURROGATE, ApiError, ApiException, clip

MAX_DEPTH = 64
# After a strict UTF-8 decode a surrogate can only arrive as an escape: without one (and
# with fewer brackets than MAX_DEPTH) the body needs no walk, the common case.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _bad(message: str) -> ApiException:
    return ApiException(ApiError(400, "invalid_json", message))


def too_large(limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"Request body exceeds the limit of {limit} bytes.")


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, enforcing the size limit on what actually arrives."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiException(too_large(limit))
        chunks.append(chunk)
    return parse_json_body(b"".join(chunks))


def _no_constants(name: str) -> Any:
    raise _bad(f"Request body is not valid JSON: {name} is not a JSON number.")


def _finite(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _bad(f"Request body holds the number {clip(literal)}, too large for a double.")
    return value


def parse_json_body(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(
            f"Request body is not valid UTF-8 (bad byte at offset {exc.start}); "
            "send JSON encoded as UTF-8."
        ) from None
    try:
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError:
        raise _bad(f"Request body is nested too deeply (at most {MAX_DEPTH} levels).") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4,300 digits
        raise _bad(f"Request body is not valid JSON: {clip(str(exc), 200)}") from None
    if _SURROGATE_ESCAPE.search(text) or text.count("[") + text.count("{") > MAX_DEPTH:
        check_value(value)
    return value


def check_value(value: Any) -> None:
    """Depth and lone surrogates, walked without recursion (the body may be hostile)."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise _bad(
                    f"Request body is nested more than {MAX_DEPTH} levels deep (at {_where(path)})."
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key, (*path, key))
                    stack.append((child, depth + 1, (*path, key)))
            else:
                stack.extend((child, depth + 1, (*path, i)) for i, child in enumerate(item))


def _check_text(text: str, path: tuple[Any, ...]) -> None:
    found = LONE_SURROGATE.search(text)
    if found:
        raise _bad(
            f"{_where(path)} holds a lone UTF-16 surrogate (\\u{ord(found.group()):04x} at "
            f"character {found.start()}), which is not a Unicode character; send valid text."
        )


def _where(path: tuple[Any, ...]) -> str:
    where = "body"
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else f".{clip(part, 40)}"
    return clip(where, 200)
