"""`tiny-agent`: a tiny Llama trained here, in a couple of minutes, to think and to call tools.

Same shape as `tiny-decoder` (2 layers, hidden 128, head_dim 64; so the zero LoRA adapter
built for that one fits it), with its own tokenizer and a chat template in the Hugging Face
convention that Qwen3 and Hermes models follow: tools listed as JSON inside `<tools>`,
`enable_thinking` (default off: the prompt then ends with an empty `<think></think>`), calls
written as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. vLLM's `deepseek_r1`
reasoning parser and `hermes` tool parser read its output. The training data is
`app.models.agent_data`; the build checks the behaviours with greedy decoding and fails if
one is missing, so a broken recipe never lands in models/.

Two things differ from a plain training run. Copying a city from the question into the JSON
needs an induction circuit, which 800 steps of gradient descent never found; so the copying
heads are set by hand before training (`wire_copy_circuit`), and training tunes everything
around them. And the tokenizer splits words from spaces and punctuation so that a name is
the same tokens wherever it appears (`PRE_SPLIT`). rope_theta is 1e6 (tiny-decoder: 1e4) so
the circuit's content matching is not turned by position; the tensor shapes are the same.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from app.models.builder import Builder
from app.models.tiny_llama import tiny_llama_config

log = logging.getLogger(__name__)

RECIPE = "tiny-agent-v1"  # bump when data or training change: built folders are rebuilt
SEED = 0
SPECIALS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
# Not special: they must survive decode(skip_special_tokens=True), which vLLM applies before
# its reasoning and tool parsers read the text.
TAGS = ["<think>", "</think>", "<tool_call>", "</tool_call>"]
VOCAB_SIZE = 1024
# Pieces BPE may not merge across. A capitalized word never carries a space, so "Paris" is
# the same tokens in "in Paris and Rome" and in '"Paris"': the model can copy a name it never
# saw into the JSON. Lowercase words keep one trailing space ("in "), which makes the word
# before a name its previous token: the copy circuit below finds names by it.
PRE_SPLIT = r"\p{Ll}+ ?|\p{L}+|\p{N}+|[^\p{L}\p{N}]+"
DEFAULT_SYSTEM = "You are a helpful assistant."

# Every tag trims the whitespace around it (`-`); the newlines the prompt has are written out
# as {{ nl }}, so the rendering does not hang on jinja's trim_blocks settings.
CHAT_TEMPLATE = """\
{%- set nl = "\\n" -%}
{%- macro text(content) -%}
{%- if content is string -%}{{ content }}
{%- elif content -%}{%- for part in content -%}{%- if part.type == "text" -%}{{ part.text }}
{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if messages and messages[0].role in ("system", "developer") -%}
{%- set system = text(messages[0].content) -%}{%- set turns = messages[1:] -%}
{%- else -%}
{%- set system = "%s" -%}{%- set turns = messages -%}
{%- endif -%}
<|system|>{{ system }}
{%- if tools -%}
{{ nl }}<tools>
{%- for tool in tools -%}
{%- set f = tool.function if tool.function is defined else tool -%}
{{ nl }}{{ {"name": f.name, "description": f.description | default(""),
            "parameters": f.parameters | default({})} | tojson }}
{%- endfor -%}
{{ nl }}</tools>
{%- endif -%}
<|end|>
{%- for message in turns -%}
{%- if message.role == "assistant" -%}
{%- set content = text(message.content) -%}
{%- if "</think>" in content -%}{%- set content = content.split("</think>")[-1] -%}{%- endif -%}
<|assistant|>{{ content }}
{%- for call in message.tool_calls or [] -%}
{%- set f = call.function if call.function is defined else call -%}
{%- set arguments = f.arguments if f.arguments is string else f.arguments | tojson -%}
<tool_call>{"name": {{ f.name | tojson }}, "arguments": {{ arguments }}}</tool_call>
{%- endfor -%}
<|end|>
{%- elif message.role == "tool" -%}
<|tool|>{{ text(message.content) }}<|end|>
{%- elif message.role in ("system", "developer") -%}
<|system|>{{ text(message.content) }}<|end|>
{%- else -%}
<|user|>{{ text(message.content) }}<|end|>
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|assistant|>
{%- if not (enable_thinking is defined and enable_thinking) -%}<think></think>{%- endif -%}
{%- endif -%}""".replace('"%s"', json.dumps(DEFAULT_SYSTEM))


def build_tokenizer(corpus: list[str]) -> Any:
    """A byte-level BPE over `corpus` (the rendered training transcripts), with the tags."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(TAGS),
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(corpus, trainer=trainer)
    core.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        additional_special_tokens=SPECIALS[3:],
        chat_template=CHAT_TEMPLATE,
    )


def render(tokenizer: Any, messages: list[dict[str, Any]], tools: Any, thinking: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, enable_thinking=thinking, tokenize=False
    )


def _encode(tokenizer: Any, items: list[Any]) -> list[tuple[list[int], int]]:
    """(prompt + completion + EOS ids, prompt length) per example: the loss skips the prompt."""
    rows = []
    for item in items:
        prompt = tokenizer(render(tokenizer, item.messages, item.tools, item.thinking))
        completion = tokenizer(item.completion + tokenizer.eos_token)
        rows.append((prompt.input_ids + completion.input_ids, len(prompt.input_ids)))
    return rows


def _batches(rows: list[tuple[list[int], int]], size: int, seed: int) -> list[Any]:
    """Batches of like lengths (prompts run 60 to 340 tokens; padding all to the longest
    would double the work), as (input_ids, labels) tensors, in a seeded random order."""
    import random

    import torch

    rng = random.Random(seed)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(groups)
    out = []
    for group in groups:
        width = max(len(rows[i][0]) for i in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        labels = torch.full((len(group), width), -100, dtype=torch.long)
        for row, index in enumerate(group):
            tokens, prompt_len = rows[index]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            labels[row, prompt_len : len(tokens)] = torch.tensor(tokens[prompt_len:])
        out.append((ids, labels))
    return out


# Residual layout the copy circuit writes (hidden 128): the token's own code, the previous
# token's code, the code of the token to copy, free dimensions, and a constant.
TOKEN, PREVIOUS, COPY, CONSTANT = slice(0, 32), slice(32, 64), slice(64, 96), 127
CODE = 32


def wire_copy_circuit(model: Any, seed: int, starts: list[int], triggers: list[int]) -> None:
    """Set weights by hand so the untrained model already copies, then training tunes it.

    Copying a name from the question into the JSON needs an induction circuit (a head that
    reads the previous token, then one that finds "the token after the last occurrence of
    this one"). Gradient descent found none in 800 steps here: each half is useless without
    the other. So: layer 0 head 0 attends to the previous token (through RoPE alone, from the
    constant dimension) and writes its code into PREVIOUS; layer 1 head 0 matches the current
    token's code against PREVIOUS and writes the matched token's code into COPY, which the
    output layer reads. Layer 1 head 1 copies too, and starts out attending from `triggers`
    (where a copy begins: the `": "` before a JSON value, the end of a thought) to the tokens
    after `starts` ("in ", "and ", ": ", the tool turn's marker); training sorts out which
    one (the first city or the second, say). The content match uses RoPE's slowest
    frequencies (rope_theta 1e6), which barely turn over the 512-token context; the
    previous-token pattern uses the fastest ones. Scales are set so that RMSNorm, which
    divides by the root mean square of unit-norm parts, leaves each score where it is meant.
    """
    import math

    import torch

    config = model.config
    head, half = config.head_dim, config.head_dim // 2
    theta = config.rope_parameters["rope_theta"]
    omega = [theta ** (-f / half) for f in range(half)]
    slow = [f for f in range(half) if omega[f] * 512 < 0.6][-CODE // 2 :]
    slow_dims = slow + [f + half for f in slow]
    if len(slow_dims) != CODE:
        raise ValueError(f"rope_theta {theta} leaves too few slow frequencies for the codes")
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(config.vocab_size, CODE, generator=generator)
    codes /= codes.norm(dim=1, keepdim=True)
    eye = torch.eye(CODE)
    layer0, layer1 = (layer.self_attn for layer in model.model.layers)
    # RMSNorm divides by the root mean square; with each part of unit norm it is this.
    scale0 = math.sqrt(config.hidden_size / 2)  # token code + constant
    scale1 = math.sqrt(config.hidden_size / 3)  # + previous code (+ copy code at the end)
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, TOKEN], embed[:, PREVIOUS], embed[:, COPY] = codes, 0.0, 0.0
        embed[:, CONSTANT] = 1.0
        # Previous-token head: q is k turned back one position at each of the six fastest
        # frequencies, so score(d) = sum_f cos(w_f (d - 1)) peaks at distance d = 1, about 8
        # logits above any other distance at this amplitude.
        for weight in (layer0.q_proj.weight, layer0.k_proj.weight, layer0.v_proj.weight):
            weight[:head] = 0.0
        amplitude = 9.0
        for f in range(6):
            layer0.q_proj.weight[f, CONSTANT] = amplitude * math.cos(omega[f]) / scale0
            layer0.q_proj.weight[f + half, CONSTANT] = -amplitude * math.sin(omega[f]) / scale0
            layer0.k_proj.weight[f, CONSTANT] = amplitude / scale0
        layer0.v_proj.weight[:CODE, TOKEN] = eye / scale0
        layer0.o_proj.weight[:, :head] = 0.0
        layer0.o_proj.weight[PREVIOUS, :CODE] = eye
        # Induction head (0) and the head that learns where names start (1).
        for weight in (layer1.q_proj.weight, layer1.k_proj.weight, layer1.v_proj.weight):
            weight.zero_()
        match = 18.0  # a full match scores 18^2 / 8 = 40: one position takes the attention
        for index, dim in enumerate(slow_dims):
            layer1.q_proj.weight[dim, TOKEN] = match * eye[index] / scale1
            layer1.k_proj.weight[dim, PREVIOUS] = match * eye[index] / scale1
        layer1.o_proj.weight.zero_()
        for start in (0, head):
            layer1.v_proj.weight[start : start + CODE, TOKEN] = eye / scale1
            layer1.o_proj.weight[COPY, start : start + CODE] = eye
        # Head 1 starts out attending, from a trigger token (the `": "` before a JSON value, the
        # end of a thought), to tokens that follow a start marker ("in ", "and ", ": ",
        # the tool turn's marker): where a name to copy begins. Training refines it.
        start_code = codes[starts].sum(0)
        trigger_code = codes[triggers].sum(0)
        hint = 8.0
        layer1.q_proj.weight[head + slow_dims[0], TOKEN] = hint * trigger_code / scale1
        layer1.k_proj.weight[head + slow_dims[0], PREVIOUS] = hint * start_code / scale1
        # The output layer reads COPY only (at first): the copied token gets a logit of ~10.
        lm_head = model.lm_head.weight
        lm_head[:, TOKEN], lm_head[:, PREVIOUS] = 0.0, 0.0
        lm_head[:, COPY] = 10.0 * codes / scale1


STEPS = 1000
BATCH = 16
LEARNING_RATE = 2e-3
WARMUP = 30
BPE_SAMPLES = 3000  # transcripts the tokenizer is trained on; merges settle well before


def _train(model: Any, batches: list[Any]) -> list[float]:
    """AdamW, warmup then cosine to a tenth; no weight decay, since the wired weights are
    large on purpose. Returns the loss every 100 steps."""
    import math

    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, betas=(0.9, 0.98))
    steps = len(batches)

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / WARMUP) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    losses = []
    for step, (ids, labels) in enumerate(batches):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == steps - 1:
            losses.append(round(loss.item(), 4))
            log.info("tiny-agent: step %d/%d loss %.4f", step, steps, loss.item())
    model.eval()
    return losses


def build_tiny_agent(target: Path, models_root: Path) -> None:
    import torch
    from transformers import LlamaForCausalLM

    from app.models import agent_checks, agent_data

    started = time.monotonic()
    torch.manual_seed(SEED)
    items = agent_data.examples(STEPS * BATCH, seed=SEED)
    # The template needs a tokenizer object to render with; any will do for the BPE corpus.
    scratch = build_tokenizer(["bootstrap"])
    corpus = []
    for x in items[:BPE_SAMPLES]:
        text = render(scratch, x.messages, x.tools, x.thinking) + x.completion
        for tag in TAGS:  # added after training: kept out of the merges
            text = text.replace(tag, " ")
        corpus.append(text)
    tokenizer = build_tokenizer(corpus)
    batches = _batches(_encode(tokenizer, items), BATCH, SEED)
    prepared = time.monotonic()

    # rope_theta 1e6: positions barely turn the copying heads (the shapes stay the same)
    config = tiny_llama_config(
        tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 1e6}
    )
    model = LlamaForCausalLM(config)
    starts = tokenizer.convert_tokens_to_ids(["inĠ", "andĠ", ":Ġ", "<|tool|>"])
    triggers = tokenizer.convert_tokens_to_ids(['":Ġ"', "</think>", "returnedĠ"])
    if None in starts + triggers:  # single tokens by PRE_SPLIT's design; a change can break it
        raise RuntimeError(f"tiny-agent: circuit tokens missing: {starts} {triggers}")
    wire_copy_circuit(model, SEED, starts, triggers)
    losses = _train(model, batches)
    trained = time.monotonic()

    results = agent_checks.run(model, tokenizer)
    checked = time.monotonic()
    info = {
        "kind": "test",
        "recipe": RECIPE,
        "seed": SEED,
        "arch": "llama-2x128",
        "build_steps": [
            f"BPE tokenizer ({VOCAB_SIZE} tokens) on {BPE_SAMPLES} rendered transcripts",
            "copy circuit wired by hand (wire_copy_circuit)",
            f"{STEPS} AdamW steps of {BATCH} transcripts, loss on the completions only",
            f"greedy checks (app.models.agent_checks), up to {agent_checks.MAX_NEW_TOKENS} tokens",
        ],
        "steps": STEPS,
        "batch": BATCH,
        "losses": losses,
        "seconds": {
            "prepare": round(prepared - started, 1),
            "train": round(trained - prepared, 1),
            "check": round(checked - trained, 1),
        },
        "checks": results,
    }
    failed = [r for r in results if not r["passed"] and not r["bonus"]]
    if failed:
        raise RuntimeError(f"tiny-agent failed its checks: {json.dumps(failed, indent=1)}")
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    info["seconds"]["total"] = round(time.monotonic() - started, 1)
    (target / "pioneer_build.json").write_text(json.dumps(info, indent=2) + "\n")


TINY_AGENT = Builder("tiny-agent", "llama-tiny-agent", build_tiny_agent, recipe=RECIPE)
