"""Tool use and reasoning as every format hands them to the canonical request."""

from __future__ import annotations

import json
from typing import Any

from app.protocol import ApiError, ApiException, ToolSpec, ToolUse, quoted


def tool_use(
    tools: list[ToolSpec] | None,
    choice: str | None,
    *,
    name: str | None = None,
    parallel: bool | None = None,
    param: str = "tool_choice",
) -> ToolUse | None:
    """The canonical ToolUse; `choice` is auto | none | required | named (with `name`).
    As OpenAI: no tools and a tool_choice is a 400, and so is naming a tool not offered."""
    if not tools:
        if choice not in (None, "none", "auto"):
            raise _invalid("tool_choice needs tools: no tools were given", param)
        return None
    names = [tool.name for tool in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _invalid(f"tool names must be unique; repeated: {', '.join(duplicates)}", "tools")
    if choice == "named" and name not in names:
        raise _invalid(f"tool_choice names {quoted(name)}, which is not among the tools", param)
    return ToolUse(
        tools=tuple(tools),
        choice=choice or "auto",  # type: ignore[arg-type]  # checked by the wire models
        name=name if choice == "named" else None,
        parallel=True if parallel is None else parallel,
    )


def arguments_object(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the object Anthropic's `input` is. A model that wrote
    something else (only possible with tool_choice auto) gets it under `_raw`, not dropped."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": value}


def _invalid(message: str, param: str) -> ApiException:
    return ApiException(ApiError.invalid(message, param, status=400))
