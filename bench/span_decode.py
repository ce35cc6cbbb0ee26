"""Span decoding alone: gliner2's own decoder against the tensor path, on the same model outputs.

The encoder's output is computed once and handed to `batch_extract(hidden_states=...)`, so
both runs do the same head work and differ only in how spans are thresholded, ranked and
resolved. Reported as texts/s and the ratio tensor ÷ library, at a dense threshold (many spans
pass) and a sparse one, and the two outputs are compared (they must be equal). Then the whole
engine end to end (`GLiNER2Engine.extract`, both decoders) on the same texts, since that is
what a replica runs.

    python bench/span_decode.py [--model-dir models/gliner2-minilm-demo] [--texts 128]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = {
    "entities": ["person", "organization", "location", "product", "date"],
    "classifications": [{"task": "sentiment", "labels": ["positive", "negative", "neutral"]}],
}
PEOPLE = ["Tim Cook", "Sundar Pichai", "Satya Nadella", "Mary Smith", "Zoë Ångström"]
COMPANIES = ["Apple", "Google", "Microsoft", "Nvidia", "Fastino", "Société Générale"]
PLACES = ["Cupertino", "London", "Seattle", "Paris", "東京", "São Paulo"]


def make_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(PEOPLE)} of {rng.choice(COMPANIES)} met {rng.choice(PEOPLE)} in "
        f"{rng.choice(PLACES)} on Monday to discuss a deal with {rng.choice(COMPANIES)}, and "
        f"analysts in {rng.choice(PLACES)} said the launch went "
        f"{rng.choice(['well', 'badly', 'as expected'])} for customers in {rng.choice(PLACES)}."
        for _ in range(count)
    ]


def encoder_states(model, texts: list[str], schema) -> list:
    """The encoder's output per text, as `batch_extract(hidden_states=...)` takes it."""
    from gliner2.training.trainer import ExtractorCollator

    schema_dicts, _ = model._build_schema_dicts_and_metadata([schema] * len(texts))
    collate = ExtractorCollator(model.processor, is_training=False, architecture="span")
    batch = collate(list(zip(texts, schema_dicts, strict=True)))
    with torch_inference():
        states = model.encode_tokens(batch)
    lengths = batch.attention_mask.sum(dim=1).tolist()
    return [states[i, :n] for i, n in enumerate(lengths)]


def torch_inference():
    import torch

    return torch.inference_mode()


def timed(call, repeats: int) -> tuple[object, float]:
    result = call()  # warm-up, and the output compared
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return result, (time.perf_counter() - started) / repeats


def main() -> int:
    from gliner2 import GLiNER2, Schema

    from app.engines import gliner2_tensor_decode
    from app.engines.gliner2_engine import GLiNER2Engine
    from app.protocol import ExtractOptions, ResolvedModel
    from bench.agreement import agreement

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default=str(ROOT / "models" / "gliner2-minilm-demo"))
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", action="store_true", help="also fp32 vs bf16 end to end")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    texts = make_texts(args.texts)
    library = GLiNER2.from_pretrained(args.model_dir).eval()
    tensor = GLiNER2.from_pretrained(args.model_dir).eval()
    gliner2_tensor_decode.install(tensor)
    schema = Schema.from_dict(SCHEMA)
    report: dict = {"model_dir": args.model_dir, "texts": len(texts), "decode_only": {}}

    for label, threshold in (("dense", 0.0), ("sparse", 0.5)):  # 0.0: every candidate passes
        row: dict = {"threshold": threshold}
        for start in range(0, len(texts), args.batch):
            chunk = texts[start : start + args.batch]
            states = encoder_states(library, chunk, schema)
            for name, model in (("library", library), ("tensor", tensor)):
                result, seconds = timed(
                    lambda m=model, c=chunk, s=states, t=threshold: m.batch_extract(
                        c, schema, threshold=t, hidden_states=s, include_confidence=True
                    ),
                    args.repeats,
                )
                row[f"{name}_s"] = row.get(f"{name}_s", 0.0) + seconds
                row.setdefault(f"{name}_out", []).extend(result)
        row["equal"] = row.pop("library_out") == row.pop("tensor_out")
        row["library_texts_per_s"] = round(len(texts) / row.pop("library_s"), 1)
        row["tensor_texts_per_s"] = round(len(texts) / row.pop("tensor_s"), 1)
        row["speedup"] = round(row["tensor_texts_per_s"] / row["library_texts_per_s"], 2)
        report["decode_only"][label] = row
        print(f"decode only, {label}: {json.dumps(row)}", flush=True)

    model_ref = ResolvedModel(
        "bench", "bench", "encoder", "gliner2", "bench", "bench", args.model_dir
    )
    options = ExtractOptions(threshold=0.5)
    end_to_end: dict = {}
    for decoding in ("library", "tensor", "library", "tensor"):  # alternated: the machine drifts
        engine = GLiNER2Engine(device="cpu", dtype="float32", span_decoding=decoding)

        loaded = engine.load(model_ref)
        compiled = engine.build_schema(SCHEMA)

        def run(e=engine, m=loaded, c=compiled) -> list:
            return e.extract(m, texts, [c] * len(texts), options, args.batch)

        _, seconds = timed(run, 1)
        end_to_end.setdefault(decoding, []).append(len(texts) / seconds)
    if args.dtypes:  # what `dtype: auto` weighs on CPU: speed, and agreement with fp32
        reference = None
        for dtype in ("float32", "bfloat16", "float32", "bfloat16"):
            engine = GLiNER2Engine(device="cpu", dtype=dtype)
            loaded = engine.load(model_ref)
            compiled = engine.build_schema(SCHEMA)
            result, seconds = timed(
                lambda e=engine, m=loaded, c=compiled: e.extract(
                    m, texts, [c] * len(texts), options, args.batch
                ),
                1,
            )
            end_to_end.setdefault(f"engine {dtype}", []).append(len(texts) / seconds)
            if dtype == "float32":
                reference = result
            else:
                report["bfloat16_agreement"] = agreement(result, reference)
    report["end_to_end_texts_per_s"] = {k: round(max(v), 1) for k, v in end_to_end.items()}
    report["end_to_end_ratio"] = round(max(end_to_end["tensor"]) / max(end_to_end["library"]), 2)
    print(
        f"engine end to end (threshold 0.5): {json.dumps(report['end_to_end_texts_per_s'])} "
        f"tensor/library {report['end_to_end_ratio']}"
    )
    if "bfloat16_agreement" in report:
        print(f"bfloat16 vs float32: {json.dumps(report['bfloat16_agreement'])}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(row["equal"] for row in report["decode_only"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
