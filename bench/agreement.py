"""Agreement between two extraction results (a low-precision run against fp32)."""

from __future__ import annotations

from typing import Any


def _spans(result: dict[str, Any]) -> set[tuple[str, str, int, int]]:
    found = set()
    for label, items in result.get("entities", {}).items():
        for item in items:
            found.add((label, item["text"], item.get("start", -1), item.get("end", -1)))
    return found


def _confidences(result: dict[str, Any]) -> dict[tuple[str, str, int], float]:
    scores = {
        (label, item["text"], item.get("start", -1)): item["confidence"]
        for label, items in result.get("entities", {}).items()
        for item in items
    }
    for task, value in result.items():
        if isinstance(value, dict) and "label" in value and "confidence" in value:
            scores[(task, value["label"], -1)] = value["confidence"]
    return scores


def agreement(candidate: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, float]:
    """Entity-span F1, classification-label match rate, worst confidence gap on shared spans."""
    tp = fp = fn = 0
    labels_same = labels_total = 0
    worst_gap = 0.0
    for cand, ref in zip(candidate, reference, strict=True):
        cand_spans, ref_spans = _spans(cand), _spans(ref)
        tp += len(cand_spans & ref_spans)
        fp += len(cand_spans - ref_spans)
        fn += len(ref_spans - cand_spans)
        for task, value in ref.items():
            if isinstance(value, dict) and "label" in value:
                labels_total += 1
                labels_same += cand.get(task, {}).get("label") == value["label"]
        ref_conf, cand_conf = _confidences(ref), _confidences(cand)
        for key in ref_conf.keys() & cand_conf.keys():
            worst_gap = max(worst_gap, abs(ref_conf[key] - cand_conf[key]))
    f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0
    return {
        "reference_spans": tp + fn,
        "entity_f1": f1,
        "label_match": labels_same / labels_total if labels_total else 1.0,
        "max_confidence_gap": worst_gap,
    }
