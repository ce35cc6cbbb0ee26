"""Synthetic, seeded training sentences for the offline demo encoder.

Just enough signal to teach untrained GLiNER2 heads what a person, an organization, a
location and a product look like, so the demo extracts sensible spans. Not a benchmark.
"""

from __future__ import annotations

import random
from typing import Any

FIRST = [
    "Tim",
    "Sundar",
    "Satya",
    "Mary",
    "John",
    "Alice",
    "Maria",
    "Wei",
    "Priya",
    "Carlos",
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Sofia",
    "Arjun",
    "Yuki",
    "Hans",
]
LAST = [
    "Cook",
    "Pichai",
    "Nadella",
    "Smith",
    "Johnson",
    "Garcia",
    "Chen",
    "Patel",
    "Rossi",
    "Muller",
    "Brown",
    "Kim",
    "Nguyen",
    "Silva",
    "Tanaka",
    "Dubois",
]
ORGANIZATIONS = [
    "Apple",
    "Google",
    "Microsoft",
    "Nvidia",
    "Amazon",
    "Tesla",
    "Siemens",
    "Toyota",
    "Spotify",
    "Airbnb",
    "Netflix",
    "Samsung",
    "Intel",
    "Oracle",
    "Fastino",
    "Acme Corp",
    "Globex",
    "Initech",
]
LOCATIONS = [
    "Cupertino",
    "London",
    "Seattle",
    "Paris",
    "Tokyo",
    "Berlin",
    "San Francisco",
    "New York",
    "Toronto",
    "Madrid",
    "Sydney",
    "Mumbai",
    "Chicago",
    "Austin",
    "Dublin",
    "Singapore",
]
PRODUCTS = [
    "iPhone 16",
    "Pixel 9",
    "Surface Pro",
    "GeForce RTX",
    "Model Y",
    "Kindle",
    "Galaxy S24",
    "Xbox",
    "PlayStation",
    "MacBook Pro",
    "Echo Dot",
    "Walkman",
]
OUTCOMES = {
    "positive": ["was a big success", "delighted customers", "received glowing reviews"],
    "negative": ["was a disaster", "disappointed customers", "received harsh reviews"],
    "neutral": ["was announced on Monday", "will ship next quarter", "is listed on the website"],
}
TEMPLATES = [
    "{person}, the CEO of {org}, presented the {product} in {place}, and the launch {outcome}.",
    "In {place}, {org} unveiled the {product}; {person} said the event {outcome}.",
    "{org} hired {person} to lead its office in {place}. The news {outcome}.",
    "The {product} from {org} {outcome}, according to {person} in {place}.",
    "{person} flew to {place} to meet the {org} team about the {product}, which {outcome}.",
    "{org}, headquartered in {place}, said the {product} {outcome}, {person} told reporters.",
]
ENTITY_TYPES = ["person", "organization", "location", "product"]
SENTIMENTS = list(OUTCOMES)


def examples(count: int, seed: int = 0) -> list[Any]:
    from gliner2.training.data import Classification, InputExample

    rng = random.Random(seed)
    made = []
    for _ in range(count):
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        org, place = rng.choice(ORGANIZATIONS), rng.choice(LOCATIONS)
        product, sentiment = rng.choice(PRODUCTS), rng.choice(SENTIMENTS)
        text = rng.choice(TEMPLATES).format(
            person=person,
            org=org,
            place=place,
            product=product,
            outcome=rng.choice(OUTCOMES[sentiment]),
        )
        made.append(
            InputExample(
                text=text,
                entities={
                    "person": [person],
                    "organization": [org],
                    "location": [place],
                    "product": [product],
                },
                classifications=[
                    Classification(task="sentiment", labels=SENTIMENTS, true_label=sentiment)
                ],
            )
        )
    return made
