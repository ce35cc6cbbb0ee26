"""API keys: an optional map of key -> project, read from a file and/or an env var.

Clients send `X-API-Key: KEY` or `Authorization: Bearer KEY` (whichever their SDK sends).
Records carry a key id (a hash prefix), never the key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from fastapi import Request

from app.api.state import current
from app.config import AuthConfig
from app.protocol import ApiError, ApiException

logger = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class Principal:
    project_id: str | None
    key_id: str | None


ANONYMOUS = Principal(project_id=None, key_id=None)


def key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def load_keys(config: AuthConfig) -> dict[str, str]:
    keys: dict[str, str] = {}
    if config.keys_file:
        data = yaml.safe_load(Path(config.keys_file).read_text()) or {}
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in data.items()
        ):
            raise ValueError(
                f"{config.keys_file}: expected a mapping of API key -> non-empty project id"
            )
        keys.update(data)
    if config.keys_env and os.environ.get(config.keys_env):
        for pair in os.environ[config.keys_env].split(","):
            key, sep, project = pair.strip().partition("=")
            if not sep or not key or not project:
                raise ValueError(f"{config.keys_env}: expected 'key=project,...'")
            keys[key] = project
    return keys


def presented_key(request: Request) -> str | None:
    if key := request.headers.get("x-api-key"):
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Authenticator:
    def __init__(self, keys: dict[str, str]) -> None:
        self._keys = dict(keys)
        if not self._keys:
            logger.warning("No API keys configured: the server is open to any caller.")

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def __call__(self, request: Request) -> Principal:
        key = presented_key(request)
        if not self._keys:
            return Principal(project_id=None, key_id=key_id(key) if key else None)
        if key is None:
            raise ApiException(
                ApiError(
                    401,
                    "missing_api_key",
                    "Missing API key: send X-API-Key or Authorization: Bearer.",
                )
            )
        project = self._keys.get(key)
        if project is None:
            raise ApiException(ApiError(401, "invalid_api_key", "Invalid API key."))
        return Principal(project_id=project, key_id=key_id(key))


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the ingress installs its Authenticator in app.api.state.

    A coroutine although it never awaits: FastAPI runs a plain-function dependency in its
    thread pool, a thread hop per request for a dictionary lookup."""
    return current().authenticator(request)
