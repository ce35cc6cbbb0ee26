"""The Pioneer OpenAPI document as JSON Schema validators, for contract tests.

`openapi.json` here is a copy of `../shared/reference/pioneer/openapi.json` (MIT, see that
folder's LICENSE), so a clean clone can run the contract tests; a test checks the copy still
equals the reference wherever the reference is present.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
REFERENCE_PATH = Path(__file__).resolve().parents[3] / "shared/reference/pioneer/openapi.json"
_URI = "urn:pioneer:openapi"
# RFC 3339: a date, "T", a time, an offset (Z or ±hh:mm). jsonschema checks "date-time" only
# with an optional package; this is the rule it would apply.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def openapi() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text())


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # a format applies to strings only; the type is checked on its own
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # raises on 2026-13-45
    return True


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for components.schemas[name], its `$ref`s resolved in the document."""
    resource = Resource.from_contents(openapi(), default_specification=DRAFT202012)
    registry = Registry().with_resource(_URI, resource)
    checker = jsonschema.FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    return jsonschema.Draft202012Validator(
        {"$ref": f"{_URI}#/components/schemas/{name}"}, registry=registry, format_checker=checker
    )


def errors(name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema, each as `path: message` (empty when valid)."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator(name).iter_errors(instance)
    ]


def assert_valid(name: str, instance: Any) -> None:
    found = errors(name, instance)
    assert not found, f"not a valid {name}:\n" + "\n".join(found)
