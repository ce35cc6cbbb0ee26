"""Offline model building: everything the server serves and tests on, made without a hub."""

from __future__ import annotations

from app.models.builder import Builder
from app.models.decoder_builders import DECODER_BUILDERS
from app.models.embedding_builders import EMBEDDING_BUILDERS
from app.models.gliner2_builders import GLINER2_BUILDERS

BUILDERS: dict[str, Builder] = {
    b.name: b for b in (*GLINER2_BUILDERS, *DECODER_BUILDERS, *EMBEDDING_BUILDERS)
}
