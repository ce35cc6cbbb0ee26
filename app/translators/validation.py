"""Validation errors as one line of text, for the formats whose error body is a message."""

from __future__ import annotations

from typing import Any


def summarize(errors: list[dict[str, Any]]) -> str:
    """One line naming each bad field; never echoes the input (it may be `store: false`)."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
