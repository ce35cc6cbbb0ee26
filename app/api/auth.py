"""API keys: an optional map of key -> project, read from a file and/or an env var.

Clients send `X-API-Key: KEY` or `Authorization: Bearer KEY` (whichever their SDK sends).
Records carry a key id (a hash prefix), never the key. A key's entry is its project id, or a
mapping: `{project, projects (more it may attribute inferences to), gliner2_model,
rate_limits}` (KeyEntry).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import Request
from pydantic import Field, ValidationError

from app.api.state import current
from app.config import AuthConfig, RateLimit, StrictModel
from app.protocol import ApiError, ApiException, quoted

logger = logging.getLogger("ray.serve")


class KeyEntry(StrictModel):
    project: str = Field(min_length=1, description="The key's project (its team).")
    projects: list[str] = Field(
        default_factory=list,
        description="Further projects the key may attribute an inference to (project_id, "
        "metadata.project_id); others are refused.",
    )
    gliner2_model: str | None = Field(None, description="The model /gliner-2 runs for it.")
    rate_limits: dict[Literal["inference", "compatible", "gliner2", "other"], list[RateLimit]] = (
        Field(default_factory=dict, description="Per-group limits, counted for this key alone.")
    )


@dataclass(frozen=True)
class Principal:
    project_id: str | None
    key_id: str | None
    projects: frozenset[str] = frozenset()
    gliner2_model: str | None = None
    rate_limits: dict[str, list[RateLimit]] = field(default_factory=dict)
    client_ip: str | None = None

    def project_for(self, requested: str | None) -> str | None:
        """The project an inference is attributed to: the one asked for, where this key may
        use it (an open server takes any), else the key's own."""
        if requested is None or requested == self.project_id:
            return self.project_id
        if self.project_id is None or requested in self.projects:
            return requested
        raise ApiException(
            ApiError(
                403,
                "project_forbidden",
                f"This API key may not attribute inferences to project {quoted(requested)}.",
                "project_id",
            )
        )


ANONYMOUS = Principal(project_id=None, key_id=None)


def requested_project(wire: Any) -> str | None:
    """`project_id` in the body, or `metadata.project_id` (OpenAI's and Anthropic's
    metadata, the documented way to attribute an inference to a project)."""
    metadata = getattr(wire, "metadata", None) or {}
    from_metadata = metadata.get("project_id")
    if from_metadata is not None and not isinstance(from_metadata, str):
        raise ApiException(ApiError.invalid("metadata.project_id must be a string", "metadata"))
    explicit = getattr(wire, "project_id", None)
    if explicit is not None and from_metadata is not None and explicit != from_metadata:
        raise ApiException(
            ApiError.invalid("project_id and metadata.project_id disagree", "project_id")
        )
    return explicit or from_metadata


def key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def load_keys(config: AuthConfig) -> dict[str, KeyEntry]:
    keys: dict[str, KeyEntry] = {}
    if config.keys_file:
        data = yaml.safe_load(Path(config.keys_file).read_text()) or {}
        if not isinstance(data, dict) or not all(isinstance(k, str) and k for k in data):
            raise ValueError(f"{config.keys_file}: expected a mapping of API key -> project")
        for key, value in data.items():
            try:
                entry = value if isinstance(value, dict) else {"project": value}
                keys[key] = KeyEntry.model_validate(entry)
            except ValidationError as exc:  # the key itself stays out of the message
                raise ValueError(f"{config.keys_file}: entry {key_id(key)}: {exc}") from None
    if config.keys_env and os.environ.get(config.keys_env):
        for pair in os.environ[config.keys_env].split(","):
            key, sep, project = pair.strip().partition("=")
            if not sep or not key or not project:
                raise ValueError(f"{config.keys_env}: expected 'key=project,...'")
            keys[key] = KeyEntry(project=project)
    return keys


def presented_key(request: Request) -> str | None:
    if key := request.headers.get("x-api-key"):
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Authenticator:
    def __init__(self, keys: dict[str, KeyEntry]) -> None:
        self._keys = dict(keys)
        if not self._keys:
            logger.warning("No API keys configured: the server is open to any caller.")

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def __call__(self, request: Request) -> Principal:
        key = presented_key(request)
        ip = request.client.host if request.client else None
        if not self._keys:
            return Principal(project_id=None, key_id=key_id(key) if key else None, client_ip=ip)
        if key is None:
            raise ApiException(
                ApiError(
                    401,
                    "missing_api_key",
                    "Missing API key: send X-API-Key or Authorization: Bearer.",
                )
            )
        entry = self._keys.get(key)
        if entry is None:
            raise ApiException(ApiError(401, "invalid_api_key", "Invalid API key."))
        return Principal(
            project_id=entry.project,
            key_id=key_id(key),
            projects=frozenset(entry.projects),
            gliner2_model=entry.gliner2_model,
            rate_limits=dict(entry.rate_limits),
            client_ip=ip,
        )


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the ingress installs its Authenticator in app.api.state.

    A coroutine although it never awaits: FastAPI runs a plain-function dependency in its
    thread pool, a thread hop per request for a dictionary lookup."""
    return current().authenticator(request)
