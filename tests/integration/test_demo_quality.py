"""The offline demo encoder on sentences it never saw: hand-written, held out, scored.

The held-out set (`tests/data/demo_heldout.json`) is written by hand and kept out of the
training generator's vocabulary, so a high score means the model separates the types on new
names and sentence shapes, not that it remembers its templates. The scores are printed in the
run's summary (`pytest -q` shows them) and must clear the bars below.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODELS, ROOT, report_line

HELDOUT = Path(__file__).resolve().parent.parent / "data" / "demo_heldout.json"
DEMO_DIR = MODELS / "gliner2-minilm-demo"
MIN_ENTITY_F1 = 0.8
MIN_SENTIMENT_ACCURACY = 0.8


@dataclass(frozen=True)
class Scores:
    true_positives: int
    predicted: int
    gold: int
    sentiment_correct: int
    sentences: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def sentiment_accuracy(self) -> float:
        return self.sentiment_correct / self.sentences

    def summary(self) -> str:
        return (
            f"entity P {self.precision:.3f} R {self.recall:.3f} F1 {self.f1:.3f} "
            f"({self.true_positives} of {self.predicted} predicted, {self.gold} gold); "
            f"sentiment {self.sentiment_correct}/{self.sentences} "
            f"({self.sentiment_accuracy:.3f})"
        )


def load_heldout() -> dict[str, Any]:
    return json.loads(HELDOUT.read_text())


def heldout_schema(heldout: dict[str, Any]) -> dict[str, Any]:
    """What a newcomer asks the demo for: the README's labels and sentiment task."""
    return {
        "entities": heldout["entity_labels"],
        "classifications": [{"task": "sentiment", "labels": heldout["sentiment_labels"]}],
    }


def score(model: Any, heldout: dict[str, Any], threshold: float = 0.5) -> Scores:
    """Micro-averaged entity scores (exact span text and label) and sentiment accuracy."""
    from gliner2 import Schema

    sentences = heldout["sentences"]
    schema = Schema.from_dict(heldout_schema(heldout))
    results = model.batch_extract(
        [sentence["text"] for sentence in sentences], schema, batch_size=8, threshold=threshold
    )
    true_positives = predicted = gold = sentiment_correct = 0
    for sentence, result in zip(sentences, results, strict=True):
        found = {(label, text) for label, texts in result["entities"].items() for text in texts}
        expected = {
            (label, text) for label, texts in sentence["entities"].items() for text in texts
        }
        true_positives += len(found & expected)
        predicted += len(found)
        gold += len(expected)
        sentiment_correct += result["sentiment"] == sentence["sentiment"]
    return Scores(true_positives, predicted, gold, sentiment_correct, len(sentences))


@pytest.fixture(scope="module")
def demo_model() -> Any:
    """The demo encoder as `make models` builds it (built here when absent or stale)."""
    from gliner2 import GLiNER2

    from app.models.__main__ import main

    main(["build", "--out", str(MODELS), "--only", "demo-encoder"])
    return GLiNER2.from_pretrained(str(DEMO_DIR))


def test_heldout_names_are_not_in_the_training_vocabulary() -> None:
    from app.models.demo_vocab import all_vocabulary

    vocabulary = {entry.lower() for entry in all_vocabulary()}
    heldout = load_heldout()
    mentions = {
        mention
        for sentence in heldout["sentences"]
        for texts in sentence["entities"].values()
        for mention in texts
    }
    seen = sorted(mention for mention in mentions if mention.lower() in vocabulary)
    assert not seen, f"held-out mentions the generator also uses: {seen}"
    assert len(heldout["sentences"]) >= 40


def test_heldout_annotations_are_in_their_sentences() -> None:
    heldout = load_heldout()
    for sentence in heldout["sentences"]:
        assert set(sentence["entities"]) == set(heldout["entity_labels"]), sentence["text"]
        assert sentence["sentiment"] in heldout["sentiment_labels"], sentence["text"]
        for texts in sentence["entities"].values():
            for text in texts:
                assert text in sentence["text"], (text, sentence["text"])


def test_demo_encoder_on_heldout_sentences(demo_model: Any, request: pytest.FixtureRequest) -> None:
    scores = score(demo_model, load_heldout())
    report_line(request.config, f"demo encoder, held-out sentences: {scores.summary()}")
    assert scores.f1 >= MIN_ENTITY_F1, scores.summary()
    assert scores.sentiment_accuracy >= MIN_SENTIMENT_ACCURACY, scores.summary()


def readme_first_example() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The README's first `/inference` request (text, schema) and the response it shows."""
    readme = (ROOT / "README.md").read_text()
    request_body = re.search(r"/inference -H [^\n]*-d '(\{.*?\})'\n", readme, re.DOTALL)
    response = re.search(r"## The response\n\n```json\n(.*?)\n```", readme, re.DOTALL)
    assert request_body and response, "README's first example or its response moved"
    body = json.loads(request_body.group(1))
    return body["text"], body["schema"], json.loads(response.group(1))["result"]


def without_confidence(value: Any) -> Any:
    """The README rounds confidences (and the server may run in bf16): compare the rest."""
    if isinstance(value, dict):
        return {key: without_confidence(item) for key, item in value.items() if key != "confidence"}
    if isinstance(value, list):
        return [without_confidence(item) for item in value]
    return value


def test_readme_first_example_answers_as_shown(demo_model: Any) -> None:
    from gliner2 import Schema

    text, schema, shown = readme_first_example()
    answer = demo_model.extract(
        text, Schema.from_dict(schema), include_confidence=True, include_spans=True
    )
    assert without_confidence(answer) == without_confidence(shown)
    shown_entities = shown["entities"].items()
    entities = {label: [span["text"] for span in spans] for label, spans in shown_entities}
    assert entities == {
        "person": ["Tim Cook"],
        "organization": ["Apple"],
        "location": ["Cupertino"],
        "product": ["iPhone 16"],
    }
    assert shown["sentiment"]["label"] == "positive"
