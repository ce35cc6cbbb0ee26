"""Seeded training sentences for the offline demo encoder, composed from shapes and names.

Each example is one sentence (sometimes two) from `demo_shapes`, its slots filled from
`demo_vocab`, with what gliner2's trainer needs to learn to separate the types rather than to
memorize a template:

- sentences with one to five entities, types side by side (two people, two places, a
  company and a university), and sentences with none;
- look-alike distractors that are not entities: job titles, honorifics, weekdays, months,
  kinds of product after a product's name, "the company";
- a random subset of the labels asked per sentence, including labels absent from it (trained
  as negatives), in random order, sometimes with "company" beside "organization";
- sentiment from phrase banks balanced over positive, negative and neutral;
- relations and structures where the shape states them (gliner2's loss skips a structure
  with no instance, so none is asked where the sentence states none).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from app.models import demo_vocab as vocab
from app.models.demo_shapes import FILLERS, SENTIMENT_BANKS, SHAPES, Shape

ENTITY_TYPES = ["person", "organization", "location", "product"]
SENTIMENTS = ["positive", "negative", "neutral"]
ENTITY_SLOTS = {"P": "person", "O": "organization", "I": "organization", "L": "location"}
ENTITY_SLOTS["R"] = "product"
SLOT = re.compile(r"\{(\w+)\}")


def person(rng: random.Random) -> str:
    first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
    form = rng.random()
    if form < 0.08:
        return f"{first} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last}"
    if form < 0.14:
        return f"{first} {last}-{rng.choice(vocab.LAST_NAMES)}"
    return f"{first} {last}"


def company(rng: random.Random) -> str:
    form = rng.random()
    root = rng.choice(vocab.ORG_ROOTS)
    if form < 0.55:
        return f"{root} {rng.choice(vocab.ORG_SUFFIXES)}"
    if form < 0.72:
        return root
    if form < 0.85:
        return f"{root} {rng.choice(vocab.ORG_ROOTS)} {rng.choice(vocab.ORG_SUFFIXES)}"
    return rng.choice(vocab.FAMOUS_COMPANIES)


def institution(rng: random.Random) -> tuple[str, str]:
    """(mention, article before it): "the" is written but not part of the name."""
    form = rng.random()
    if form < 0.6:
        template = rng.choice(vocab.INSTITUTION_FORMS)
        name = template.format(root=rng.choice(vocab.ORG_ROOTS), city=rng.choice(vocab.CITIES))
        return name, "the " if name.startswith("University of") else ""
    if form < 0.85:
        return rng.choice(vocab.FAMOUS_INSTITUTIONS), "the "
    return rng.choice(vocab.NAMED_BODIES), ""


def place(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(vocab.CITIES)
    return rng.choice(vocab.COUNTRIES_AND_REGIONS)


def product(rng: random.Random) -> str:
    base = rng.choice(vocab.PRODUCT_BASES)
    form = rng.random()
    number = str(rng.randint(2, 12))
    if form < 0.15:
        return base
    if form < 0.35:
        return f"{base} {number}"
    if form < 0.5:
        return f"{base} {rng.choice(vocab.PRODUCT_MODELS)}"
    if form < 0.65:
        return f"{base} {rng.choice(vocab.PRODUCT_MODELS)} {number}"
    if form < 0.75:
        return f"{base} {rng.choice('XSZQMV')}{number}"
    if form < 0.9:
        return f"{rng.choice(vocab.PRODUCT_BRANDS)} {base}" + rng.choice(["", f" {number}"])
    return rng.choice(vocab.FAMOUS_PRODUCTS)


def amount(rng: random.Random) -> str:
    value = rng.choice([2, 4, 12, 40, 75, 150, 300, 800])
    unit = rng.choice(["${} million", "{} million euros", "${} billion", "£{} million"])
    return unit.format(value)


@dataclass
class Sentence:
    text: str
    sentiment: str
    mentions: dict[str, str]  # entity slot ("P", "O2") → the name written there
    shape: Shape
    entities: dict[str, list[str]] = field(default_factory=dict)


def _fill(shape: Shape, sentiment: str, rng: random.Random) -> Sentence | None:
    mentions: dict[str, str] = {}
    written: dict[str, str] = {}
    for slot in dict.fromkeys(SLOT.findall(shape.text)):
        kind = slot.rstrip("2")
        if kind not in ENTITY_SLOTS:
            continue
        if kind == "I":
            mentions[slot], article = institution(rng)
            written[slot] = article + mentions[slot]
        else:
            maker = {"P": person, "O": company, "L": place, "R": product}[kind]
            mentions[slot] = written[slot] = maker(rng)
    names = [name.lower() for name in mentions.values()]
    if any(a != b and re.search(rf"\b{re.escape(a)}\b", b) for a in names for b in names):
        return None  # one name inside another ("Lyon", "University of Lyon"): ambiguous gold
    if len(set(names)) < len(names):
        return None

    def replace(match: re.Match[str]) -> str:
        slot = match.group(1)
        if slot in written:
            return written[slot]
        if slot in SENTIMENT_BANKS:
            return rng.choice(SENTIMENT_BANKS[slot][sentiment])
        if slot in FILLERS:
            return rng.choice(FILLERS[slot])
        fillers = {
            "T": lambda: rng.choice(vocab.TITLES),
            "H": lambda: rng.choice(vocab.HONORIFICS),
            "D": lambda: rng.choice(vocab.WEEKDAYS),
            "M": lambda: rng.choice(vocab.MONTHS),
            "Y": lambda: str(rng.randint(1990, 2025)),
            "N": lambda: amount(rng),
            "K": lambda: rng.choice(vocab.PRODUCT_KINDS),
        }
        return fillers[slot]()

    text = shape.text
    for _ in range(3):  # phrases carry slots of their own ("goes on sale on {D}")
        text = SLOT.sub(replace, text)
    text = text[0].upper() + text[1:]
    has_tone = any(slot in SENTIMENT_BANKS for slot in SLOT.findall(shape.text))
    sentence = Sentence(text, sentiment if has_tone else "neutral", mentions, shape)
    for slot, name in mentions.items():
        sentence.entities.setdefault(ENTITY_SLOTS[slot.rstrip("2")], []).append(name)
    companies = [name for slot, name in mentions.items() if slot.rstrip("2") == "O"]
    if companies:
        sentence.entities["company"] = companies
    return sentence


TONED_SHAPES = [s for s in SHAPES if any(slot in SENTIMENT_BANKS for slot in SLOT.findall(s.text))]


def sentence(rng: random.Random) -> Sentence:
    """One filled shape; the sentiment is drawn first, so the three come out balanced."""
    sentiment = rng.choice(SENTIMENTS)
    while True:
        shape = rng.choice(SHAPES if sentiment == "neutral" else TONED_SHAPES)
        made = _fill(shape, sentiment, rng)
        if made is not None:
            return made


def example(rng: random.Random) -> Any:
    from gliner2.training.data import Classification, InputExample, Relation, Structure

    parts = [sentence(rng)]
    if rng.random() < 0.12:  # two sentences of one tone, as a short paragraph
        while (extra := sentence(rng)).sentiment != parts[0].sentiment:
            pass
        if not set(extra.mentions.values()) & set(parts[0].mentions.values()):
            parts.append(extra)
    text = " ".join(part.text for part in parts)
    asked = [label for label in ENTITY_TYPES if rng.random() < 0.85] or [rng.choice(ENTITY_TYPES)]
    if rng.random() < 0.15:
        asked.append("company")
    rng.shuffle(asked)
    entities = {label: [n for p in parts for n in p.entities.get(label, [])] for label in asked}
    relations = []
    structures = []
    for part in parts:
        if part.shape.relations and rng.random() < 0.5:
            for name, head, tail in part.shape.relations:
                relations.append(Relation(name, head=part.mentions[head], tail=part.mentions[tail]))
        if part.shape.structures and rng.random() < 0.5:
            for name, slots in part.shape.structures:
                values = {key: part.mentions[slot] for key, slot in slots.items()}
                structures.append(Structure(name, **values))
    classifications = []
    if rng.random() < 0.8:
        classifications.append(
            Classification(task="sentiment", labels=list(SENTIMENTS), true_label=parts[0].sentiment)
        )
    return InputExample(
        text=text,
        entities=entities,
        classifications=classifications,
        relations=relations,
        structures=structures,
    )


def examples(count: int, seed: int = 0) -> list[Any]:
    rng = random.Random(seed)
    return [example(rng) for _ in range(count)]


def sentiment_examples(count: int, seed: int = 1) -> list[Any]:
    """Sentences with the sentiment task alone, for the demo's second, sentiment-only phase."""
    from gliner2.training.data import Classification, InputExample

    rng = random.Random(seed)
    made = []
    for _ in range(count):
        part = sentence(rng)
        task = Classification(task="sentiment", labels=list(SENTIMENTS), true_label=part.sentiment)
        made.append(InputExample(text=part.text, classifications=[task]))
    return made
