"""Assertions shared by the suites."""

from __future__ import annotations

import math
from typing import Any


def assert_close(actual: Any, expected: Any, tol: float = 1e-4, path: str = "$") -> None:
    """Equal structure and strings; floats within `tol` (batch padding moves the last bits)."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)) and isinstance(expected, (int, float)), path
        assert math.isclose(actual, expected, abs_tol=tol), f"{path}: {actual} != {expected}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {type(actual).__name__} is not a dict"
        assert set(actual) == set(expected), f"{path}: keys {set(actual)} != {set(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], tol, f"{path}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{path}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{path}: {len(actual)} != {len(expected)} items"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, tol, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
