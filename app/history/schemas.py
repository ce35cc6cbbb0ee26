"""The Parquet schemas of the three datasets (inferences, billing, feedback).

Apart from `records` (the row builders) so that building a row never imports pyarrow: the
ingress makes rows, only the Recorder and the history readers need these types.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

INFERENCES = pa.schema(
    [
        ("id", pa.string()),
        ("user_id", pa.string()),
        ("api_key_id", pa.string()),
        ("model_id", pa.string()),
        ("model_name", pa.string()),
        ("task", pa.string()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("latency_ms", pa.int64()),
        ("tokens", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("source", pa.string()),
        ("format", pa.string()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("created_at", TIMESTAMP),
        ("project_id", pa.string()),
        ("training_job_id", pa.string()),
        ("provider", pa.string()),
        ("base_model", pa.string()),
        ("metadata", pa.string()),
    ]
)

BILLING = pa.schema(
    [
        ("id", pa.string()),  # the inference id: one event per inference
        ("project_id", pa.string()),
        ("api_key_id", pa.string()),
        ("model_id", pa.string()),
        ("base_model", pa.string()),
        ("training_job_id", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("status", pa.string()),
        ("created_at", TIMESTAMP),
    ]
)

FEEDBACK = pa.schema(
    [
        ("id", pa.string()),  # the feedback event's own id; the latest per inference wins
        ("inference_id", pa.string()),
        ("project_id", pa.string()),
        ("api_key_id", pa.string()),
        ("verdict", pa.string()),
        ("corrected_output", pa.string()),
        ("notes", pa.string()),
        ("created_at", TIMESTAMP),
    ]
)

SCHEMAS = {"inferences": INFERENCES, "billing": BILLING, "feedback": FEEDBACK}
