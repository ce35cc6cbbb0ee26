"""GLiNER2 encoder throughput: the library, the server's engine, and the encoder forward alone.

Builds a GLiNER2 on a DeBERTa-v3-base-shaped backbone from a config (random weights: speed
does not depend on them; no hub access) and measures texts/s in one run on one device:

- at two span densities: "dense" (threshold 0: every candidate span passes, ~50 a text are
  left after overlap resolution) and "sparse" (threshold 1.01: none), at batch 8, 32, 64;
- gliner2's own `batch_extract`, the project's `GLiNER2Engine.extract` (tensor span decoding,
  where the engine has it), and the backbone forward alone on the same collated batches, with
  and without DisentangledFlash; ratios engine/library and engine/forward ceiling;
- precision: fp32, bf16 and fp16 on the engine and on the forward alone at one batch size,
  with agreement against fp32, to show whether half precision loses time in the forward or
  in the decode.

Without CUDA (or with --small) it runs a small backbone on the CPU so the script stays
exercised. The device image lacks gliner2 and pydantic: `bench/gpu_bundle.sh` downloads their
wheels into var/gpu-wheels (git-ignored: carry it along), then on the GPU machine run:

    python -m pip install --no-index --find-links var/gpu-wheels gliner2 pydantic disentangled-flash && python bench/encoder_gpu.py --json $OUT/encoder_gpu.json
"""  # noqa: E501 - the device command is quoted whole so it can be pasted

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
# Whole-word tokens; names and products are left out so they split into two-letter pieces, as a
# real subword vocab splits rare names: texts then come to ~69 tokens with the schema prompt.
COMMON_WORDS = """of announced the in on monday and analysts said launch went well badly as
expected for company its customers a new an model entities person organization location
product sentiment positive negative neutral""".split()
DEBERTA_V3 = dict(  # deberta-v3-base's attention and embedding settings
    relative_attention=True, position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
    pos_att_type=["p2c", "c2p"], max_relative_positions=-1, position_biased_input=False,
    vocab_size=128100, max_position_embeddings=512, type_vocab_size=0, layer_norm_eps=1e-7,
)  # fmt: skip
BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
SMALL = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}
DENSITIES = {"dense": 0.0, "sparse": 1.01}
COLUMNS = ["library", "engine", "engine+flash", "forward", "forward+flash", "eng/lib"]
COLUMNS += ["eng/ceiling", "eng+fl/ceil", "spans/text"]


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


def build_checkpoint(work: Path, shape: dict[str, int]) -> Path:
    """Write a backbone folder (config + offline word-piece tokenizer) and a GLiNER2 checkpoint
    built on it. The encoder comes from the config (`from_config`), so no backbone weights are
    written and read back: GLiNER2 resizes the 128k-row embedding to the tokenizer anyway."""
    import torch
    from gliner2 import ExtractorConfig, GLiNER2
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast, DebertaV2Config

    letters = string.ascii_lowercase
    pairs = [a + b for a in letters for b in letters]
    pieces = list(letters + string.digits + string.punctuation) + pairs
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + pieces
    vocab_list += ["##" + p for p in list(letters + string.digits) + pairs] + COMMON_WORDS
    vocab = {token: index for index, token in enumerate(dict.fromkeys(vocab_list))}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    names = {f"{n}_token": f"[{n.upper()}]" for n in ("unk", "pad", "cls", "sep", "mask")}
    tokenizer = BertTokenizerFast(tokenizer_object=core, **names)
    config = DebertaV2Config(**DEBERTA_V3, **shape, intermediate_size=4 * shape["hidden_size"])
    backbone, checkpoint = work / "backbone", work / "gliner2"
    config.save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    torch.manual_seed(0)
    model = GLiNER2(
        ExtractorConfig(model_name=str(backbone)), encoder_config=config, tokenizer=tokenizer
    )
    with torch.no_grad():  # random count heads often predict 0 instances: then nothing decodes
        model.count_pred[-1].bias[1] += 4.0
    model.save_pretrained(str(checkpoint))
    return checkpoint


def load_library(checkpoint: Path, device: str, dtype: str) -> Any:
    import torch
    from gliner2 import GLiNER2

    model = GLiNER2.from_pretrained(str(checkpoint), map_location=device)
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
    return model.eval()


def make_engine(device: str, dtype: str, flash: bool) -> tuple[Any, dict[str, Any]]:
    """The engine with tensor span decoding; older engines lack the keywords: fall back."""
    from app.engines.gliner2_engine import GLiNER2Engine

    wanted: dict[str, Any] = {"span_decoding": "tensor", "disentangled_flash": flash}
    for kwargs in (wanted, {"span_decoding": "tensor"}, {}):
        try:
            engine = GLiNER2Engine(device=device, dtype=dtype, **kwargs)
        except TypeError:
            continue
        return engine, {k: kwargs.get(k, "unavailable") for k in wanted}
    raise RuntimeError("GLiNER2Engine(device=..., dtype=...) failed")


class Bench:
    """Times runs under one deadline into `rows` (texts/s) and `results` (what came out).

    Each run first makes one untimed sweep over its chunks (kernels are compiled, tuned or
    chosen per padded length, so one warm-up batch is not enough), then timed sweeps until
    `min_s` has passed (fast runs repeat, slow ones do not) and keeps the best; a sweep past
    the cap is cut short, and runs past the deadline are skipped and listed.
    """

    def __init__(self, cuda: bool, budget_s: float, cap_s: float, min_s: float) -> None:
        self.cuda, self.cap_s, self.min_s = cuda, cap_s, min_s
        self.deadline = time.monotonic() + budget_s
        self.rows: dict[str, float | None] = {}
        self.warmup_s: dict[str, float] = {}
        self.results: dict[str, list] = {}
        self.skipped: list[str] = []
        self.errors: dict[str, str] = {}

    def sweep(self, chunks: Sequence[Any], run: Callable, cap: float, min_s: float) -> tuple:
        """Sweeps over `chunks` until `min_s` has passed: (texts/s of each, first's results)."""
        import torch

        sync = torch.cuda.synchronize if self.cuda else lambda: None
        rates: list[float] = []
        results: list = []
        started = time.perf_counter()
        while True:
            sync()
            done, begun = 0, time.perf_counter()
            for chunk in chunks:
                out = run(chunk)
                results += out if not rates and isinstance(out, list) else []
                done += len(chunk)
                if time.perf_counter() - started > cap:
                    break
            sync()
            rates.append(done / (time.perf_counter() - begun))
            if time.perf_counter() - started >= min(cap, min_s):
                return rates, results

    def rate(self, key: str, chunks: Sequence[Any], run: Callable[[Any], Any]) -> None:
        import torch

        cap = min(self.cap_s, self.deadline - time.monotonic())
        if cap < 1:
            self.skipped.append(key)
            return
        try:
            with torch.inference_mode():
                # The warm-up may take longer than a timed sweep: it can compile or tune.
                started = time.perf_counter()
                self.sweep(chunks, run, 2.5 * cap, 0.0)
                self.warmup_s[key] = round(time.perf_counter() - started, 2)
                rates, self.results[key] = self.sweep(chunks, run, cap, self.min_s)
        except Exception as exc:  # one failing configuration must not cost the whole report
            self.errors[key] = f"{type(exc).__name__}: {exc}"[:300]
            print(f"  {key}: FAILED {self.errors[key]}", flush=True)
            return
        # The best sweep: machines are shared, and noise only ever slows a sweep down.
        self.rows[key] = round(max(rates), 1)
        print(f"  {key}: {self.rows[key]} texts/s, best of {len(rates)} (warm-up "
              f"{self.warmup_s[key]}s)", flush=True)  # fmt: skip


def chunked(texts: list[str], batch: int) -> list[list[str]]:
    return [texts[i : i + batch] for i in range(0, len(texts), batch)]


def collate(model: Any, texts: list[str], batch: int, device: str) -> list[Any]:
    """The batches gliner2's batch_extract builds, on the device: the forward's only input."""
    import torch
    from gliner2.training.trainer import ExtractorCollator

    model.processor.change_mode(is_training=False)
    collator = ExtractorCollator(model.processor, is_training=False, architecture="span")
    dicts, _ = model._build_schema_dicts_and_metadata([SCHEMA] * len(texts))
    pairs = list(zip(texts, dicts, strict=True))
    dtype = next(model.parameters()).dtype
    cast = None if dtype == torch.float32 else dtype
    return [collator(pairs[i : i + batch]).to(device, cast) for i in range(0, len(pairs), batch)]


Runner = Callable[[int, float], Callable[[list[str]], list]]  # (batch, threshold) -> run


def library_runner(model: Any) -> Runner:
    # Confidences and offsets on, as the engine always asks gliner2 for them.
    return lambda batch, threshold: lambda chunk: model.batch_extract(
        chunk, SCHEMA, batch_size=batch, threshold=threshold, include_confidence=True,
        include_spans=True,
    )  # fmt: skip


def engine_runner(engine: Any, ckpt: Path) -> tuple[Runner, Any]:
    ref = ResolvedModel("bench", "bench", "encoder", "gliner2", "bench", "bench", str(ckpt))
    loaded, compiled = engine.load(ref), engine.build_schema(SCHEMA)

    def make(batch: int, threshold: float) -> Callable[[list[str]], list]:
        options = ExtractOptions(threshold=threshold)
        return lambda chunk: engine.extract(
            loaded, chunk, [compiled] * len(chunk), options, batch_size=batch
        )

    return make, loaded.model


def measure_dtype(
    bench: Bench, ckpt: Path, device: str, dtype: str, batches: list[int], texts: list[str]
) -> dict[str, Any]:
    """Forward alone, library and engine, then the forward with DisentangledFlash, at `batches`.
    Keys: `{dtype}/{forward|forward+flash}/b{B}` and `{dtype}/{library|engine}/{density}/b{B}`."""
    import torch

    library = load_library(ckpt, device, dtype)
    engine, info = make_engine(device, dtype, flash=False)
    runners = {"library": library_runner(library), "engine": engine_runner(engine, ckpt)[0]}
    collated = {b: collate(library, texts, b, device) for b in batches}
    lengths = [int(n) for c in collated[batches[0]] for n in c.attention_mask.sum(1).tolist()]
    info["tokens_per_sequence"] = round(sum(lengths) / len(lengths), 1)
    for b in batches:
        bench.rate(f"{dtype}/forward/b{b}", collated[b], library.encode_tokens)
    for b in batches:
        for density, threshold in DENSITIES.items():
            for name, make in runners.items():
                bench.rate(f"{dtype}/{name}/{density}/b{b}", chunked(texts, b), make(b, threshold))
    del runners, engine, make  # the engine's copy of the model: free it before the next one loads
    info["flash"] = "not installed"
    if importlib.util.find_spec("disentangled_flash") is not None:
        try:
            library.enable_disentangled_flash()  # after .eval() and the final device/dtype
            info["flash"] = f"enabled ({getattr(library, '_disentangled_flash_backend', '?')})"
            for b in batches:
                bench.rate(f"{dtype}/forward+flash/b{b}", collated[b], library.encode_tokens)
        except Exception as exc:  # report why, keep the rest of the run
            info["flash"] = f"failed: {type(exc).__name__}: {exc}"[:300]
    del library, collated
    if device == "cuda":
        torch.cuda.empty_cache()
    return info


def measure_engine_flash(
    bench: Bench, ckpt: Path, device: str, dtype: str, batches: list[int], texts: list[str]
) -> str:
    """The engine with its own DisentangledFlash switch on, where it has one and uses it."""
    engine, accepted = make_engine(device, dtype, flash=True)
    if accepted["disentangled_flash"] is not True:
        return "engine has no disentangled_flash parameter"
    try:
        make, model = engine_runner(engine, ckpt)
        if getattr(model, "_disentangled_flash_mode", None) is None:
            return "the engine left it off here (not installed, or not CUDA)"
        for b in batches:
            for density, threshold in DENSITIES.items():
                bench.rate(
                    f"{dtype}/engine+flash/{density}/b{b}", chunked(texts, b), make(b, threshold)
                )
    except Exception as exc:  # the engine's flash path is new: report it, keep the run
        return f"failed: {type(exc).__name__}: {exc}"[:300]
    return "on"


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def agree(results: dict[str, list], key: str, reference: str) -> dict[str, float] | None:
    """Agreement on the texts both runs reached (a run cut short for time has fewer)."""
    got, want = results.get(key, []), results.get(reference, [])
    n = min(len(got), len(want))
    return {k: round(v, 4) for k, v in agreement(got[:n], want[:n]).items()} if n else None


def spans_per_text(results: list[dict[str, Any]]) -> float | None:
    found = sum(len(v) for r in results for v in r.get("entities", {}).values())
    return round(found / len(results), 1) if results else None


def summarize(bench: Bench, dtype: str, batches: list[int]) -> dict[str, Any]:
    rows, res, pb = bench.rows, bench.results, batches[-1]
    table: dict[str, Any] = {}
    for b in batches:
        fwd, flash = rows.get(f"{dtype}/forward/b{b}"), rows.get(f"{dtype}/forward+flash/b{b}")
        ceiling = max(filter(None, [fwd, flash]), default=None)
        for density in DENSITIES:
            key = f"{density}/b{b}"
            lib, eng = rows.get(f"{dtype}/library/{key}"), rows.get(f"{dtype}/engine/{key}")
            eng_flash = rows.get(f"{dtype}/engine+flash/{key}")
            values = [lib, eng, eng_flash, fwd, flash, ratio(eng, lib), ratio(eng, ceiling)]
            values += [ratio(eng_flash, ceiling)]
            values += [spans_per_text(res.get(f"{dtype}/engine/{key}", []))]
            table[key] = dict(zip(COLUMNS, values, strict=True))
    precision: dict[str, Any] = {}
    for dt in ("float32", "bfloat16", "float16"):
        row: dict[str, Any] = {}
        for density in DENSITIES:
            key = f"engine/{density}/b{pb}"
            row[f"engine {density}"] = rows.get(f"{dt}/{key}")
            row[f"vs fp32 {density}"] = ratio(rows.get(f"{dt}/{key}"), rows.get(f"float32/{key}"))
            if dt != "float32":
                row[f"agreement {density}"] = agree(res, f"{dt}/{key}", f"float32/{key}")
        row["library dense"] = rows.get(f"{dt}/library/dense/b{pb}")
        fwd = row["forward"] = rows.get(f"{dt}/forward/b{pb}")
        row["fwd vs fp32"] = ratio(fwd, rows.get(f"float32/forward/b{pb}"))
        row["forward+flash"] = rows.get(f"{dt}/forward+flash/b{pb}")
        # The time that is not the forward (collation, span scoring, decode, shaping).
        dense = row["engine dense"]
        row["non-fwd ms/text"] = round(1000 / dense - 1000 / fwd, 3) if fwd and dense else None
        precision[dt] = row
    key = f"dense/b{pb}"
    return {
        "throughput": {"dtype": dtype, "rows": table},
        "precision": {"batch": pb, "rows": precision},
        "engine_vs_library_agreement_dense": agree(
            res, f"{dtype}/engine/{key}", f"{dtype}/library/{key}"
        ),
        "skipped_for_time": bench.skipped,
        "errors": bench.errors,
        "runs": rows,
        "warmup_s": bench.warmup_s,
    }


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="small backbone (CPU default)")
    parser.add_argument("--texts", type=int, help="texts per run (256 GPU, 64 small)")
    parser.add_argument("--dtype", default="auto", help="main dtype (auto: bf16 GPU, fp32 CPU)")
    parser.add_argument("--budget", type=float, help="seconds for all runs (300 GPU, 120 CPU)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()

    import gliner2
    import transformers

    transformers.logging.set_verbosity_error()  # the checkpoint-type notice on every load
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    small = args.small or not cuda
    batches = [8, 32] if small else [8, 32, 64]
    texts = make_texts(args.texts or (64 if small else 256))
    dtype = args.dtype
    if dtype == "auto":
        dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else "float32"
    bench = Bench(cuda, args.budget or (120 if small else 300), 6 if small else 12, 1.0)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "versions": [torch.__version__, transformers.__version__, gliner2.__version__],
        "backbone": {**(SMALL if small else BASE), "deberta_v3": True, "random_weights": True},
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "texts": len(texts),
        "thresholds": DENSITIES,
    }
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        ckpt = build_checkpoint(Path(work), SMALL if small else BASE)
        report["build_s"] = round(time.perf_counter() - started, 1)
        print(f"built {report['backbone']} in {report['build_s']}s", flush=True)
        report["engine"] = measure_dtype(bench, ckpt, device, dtype, batches, texts)
        report["engine_flash"] = measure_engine_flash(bench, ckpt, device, dtype, batches, texts)
        for other in ("float32", "bfloat16", "float16"):
            try:  # the precision section: one batch size, both densities
                if other != dtype:
                    measure_dtype(bench, ckpt, device, other, batches[-1:], texts)
            except Exception as exc:  # a load that fails in one precision: keep the others
                bench.errors[other] = f"{type(exc).__name__}: {exc}"[:300]
    report |= summarize(bench, dtype, batches)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print_tables(report)
    return 0


def line(label: str, values: list[Any], width: int) -> str:
    cells = ["-" if v is None else f"{v:g}" if isinstance(v, int | float) else v for v in values]
    return f"{label:11s}" + "".join(f"{c:>{width}s}" for c in cells)


def print_tables(report: dict[str, Any]) -> None:
    th, engine = report["throughput"], report["engine"]
    print(
        f"\n{report['device']} {th['dtype']}: {report['texts']} texts, "
        f"~{engine['tokens_per_sequence']} tokens a sequence (schema prompt + text); "
        f"span_decoding={engine['span_decoding']}; "
        f"forward DisentangledFlash: {engine['flash']}; engine's: {report['engine_flash']}"
    )
    print(line("texts/s", list(next(iter(th["rows"].values()))), 14))
    for key, row in th["rows"].items():
        print(line(key, list(row.values()), 14))
    pr = report["precision"]
    cols = [c for c in pr["rows"]["float32"] if not c.startswith("agreement")]
    print(f"\nprecision at batch {pr['batch']} (agree: dense entity F1 / label match vs fp32)")
    print(line("dtype", cols + ["agree"], 16))
    for dtype, row in pr["rows"].items():
        a = row.get("agreement dense")
        tail = f"{a['entity_f1']:.3f}/{a['label_match']:.3f}" if a else "-"
        print(line(dtype, [row[c] for c in cols] + [tail], 16))
    print(f"engine vs library, dense: {json.dumps(report['engine_vs_library_agreement_dense'])}")
    for problem in ("skipped_for_time", "errors"):
        if report[problem]:
            print(f"{problem}: {report[problem]}")


if __name__ == "__main__":
    sys.exit(main())
