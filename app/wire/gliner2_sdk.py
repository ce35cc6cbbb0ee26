"""Wire model of POST /gliner-2, what the gliner2 SDK's `GLiNER2API` sends. Pydantic only.

The client (gliner2 2.1.0, `api_client.py`) posts `{task, text, schema, threshold,
include_confidence, include_spans, format_results}` with its key in `X-API-Key`, and reads
`result` from the answer. `schema`'s form depends on `task`: app/translators/gliner2_sdk.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.wire.extraction_schema import WireModel
from app.wire.native import Texts

Gliner2Task = Literal["extract_entities", "classify_text", "extract_json", "schema"]


class Gliner2Request(WireModel):
    task: Gliner2Task = Field(description="Which of the client's methods sent it.")
    text: Texts = Field(description="One text, or a list: answered with a list, in order.")
    schema_: Any = Field(
        alias="schema",
        description="extract_entities: labels; classify_text: {categories}; extract_json: "
        "{structure: [field specs]}; schema: the SDK's SchemaAPI.build() dict.",
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    include_confidence: bool = False
    include_spans: bool = False
    format_results: bool = Field(
        True, description="false: confidences and spans kept whatever include_* say."
    )
    store: bool = True
    project_id: str | None = None
