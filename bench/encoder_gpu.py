"""GLiNER2 on the GPU: fp16/bf16 agreement with fp32, and texts/s at batch 1, 8 and 32.

Runs through the server's own engine class (`GLiNER2Engine`), so it measures the code path
the encoder deployment runs. Speeds are reported as ratios against fp32 measured in the same
run on the same device (machines are shared and noisy). Without CUDA it measures the CPU in
fp32 and bf16 so the script itself stays exercised.

    python bench/encoder_gpu.py [--model-dir models/gliner2-minilm-demo] [--texts 256]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.protocol import ExtractOptions, ResolvedModel  # noqa: E402
from bench.agreement import agreement  # noqa: E402

SCHEMA = {
    "entities": ["person", "organization", "location", "product"],
    "classifications": [{"task": "sentiment", "labels": ["positive", "negative", "neutral"]}],
}
SUBJECTS = ["Tim Cook", "Sundar Pichai", "Satya Nadella", "Mary Smith", "John Doe"]
COMPANIES = ["Apple", "Google", "Microsoft", "Nvidia", "Fastino"]
PLACES = ["Cupertino", "London", "Seattle", "Paris", "Tokyo"]
PRODUCTS = ["the iPhone 16", "a new laptop", "an AI model", "the Pixel phone", "a database"]


def make_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        texts.append(
            f"{rng.choice(SUBJECTS)} of {rng.choice(COMPANIES)} announced {rng.choice(PRODUCTS)} "
            f"in {rng.choice(PLACES)} on Monday, and analysts said the launch went "
            f"{rng.choice(['well', 'badly', 'as expected'])} for the company and its customers."
        )
    return texts


def run(engine, model, texts: list[str], batch: int, threshold: float) -> tuple[list, float]:
    import torch

    schema = engine.build_schema(SCHEMA)
    options = ExtractOptions(threshold=threshold)
    results: list = []
    engine.extract(model, texts[:batch], [schema] * batch, options, batch)  # warm-up
    if engine.device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        results += engine.extract(model, chunk, [schema] * len(chunk), options, batch)
    if engine.device == "cuda":
        torch.cuda.synchronize()
    return results, len(texts) / (time.perf_counter() - started)


def main() -> int:
    import torch

    from app.engines.gliner2_engine import GLiNER2Engine

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default=str(ROOT / "models" / "gliner2-minilm-demo"))
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtypes = ["float32", "float16", "bfloat16"] if device == "cuda" else ["float32", "bfloat16"]
    texts = make_texts(args.texts)
    model_ref = ResolvedModel(
        "bench", "bench", "encoder", "gliner2", "bench", "bench", args.model_dir
    )
    report: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "model_dir": args.model_dir,
        "texts": len(texts),
        "runs": {},
    }
    reference: dict[int, list] = {}
    baseline: dict[int, float] = {}
    for dtype in dtypes:
        engine = GLiNER2Engine(device=device, dtype=dtype)
        model = engine.load(model_ref)
        for batch in (1, 8, 32):
            results, rate = run(engine, model, texts, batch, args.threshold)
            row = {"texts_per_s": round(rate, 1)}
            if dtype == "float32":
                reference[batch], baseline[batch] = results, rate
            else:
                row |= agreement(results, reference[batch])
                row["speed_vs_fp32"] = round(rate / baseline[batch], 2)
            report["runs"][f"{dtype}/batch{batch}"] = row
            print(f"{device} {dtype:9s} batch {batch:2d}: {json.dumps(row)}", flush=True)
        del model, engine
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
