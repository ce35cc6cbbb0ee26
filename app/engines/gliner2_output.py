"""Output fixes applied to what gliner2 returns. Pure functions, no torch.

gliner2 2.1.0 reports a relation that has a description under the key "name: description"
(and an empty list under "name"). Clients asked for "name", so the spans move back there.
"""

from __future__ import annotations

from typing import Any


def described_relation_keys(schema: dict[str, Any]) -> dict[str, str]:
    relations = schema.get("relations")
    if not isinstance(relations, dict):
        return {}
    keys = {}
    for name, config in relations.items():
        description = config if isinstance(config, str) else (config or {}).get("description")
        if description:
            keys[f"{name}: {description}"] = name
    return keys


def merge_described_relations(result: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    relations = result.get("relation_extraction")
    if not keys or not isinstance(relations, dict):
        return result
    merged: dict[str, Any] = {}
    for key, value in relations.items():
        name = keys.get(key, key)
        if key in keys or name not in merged:
            merged[name] = value
    return {**result, "relation_extraction": merged}
