"""Evaluation metrics: SQuAD exact match / F1 with the official answer normalisation, classification
accuracy / F1 / MCC, and entity-level F1 for BIO-tagged NER."""

from __future__ import annotations

import collections
import math
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """The official SQuAD script's: lower case, drop punctuation and articles, squeeze whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    p, t = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not p or not t:  # SQuAD v2: an unanswerable question scores 1 only for an empty prediction
        return float(p == t)
    common = sum((collections.Counter(p) & collections.Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """exact_match and F1 in percent, each the best over a question's gold answers ("" if none)."""
    em = f = 0.0
    for qid, golds in answers.items():
        golds = golds or [""]
        pred = predictions.get(qid, "")
        em += max(exact_match(pred, g) for g in golds)
        f += max(f1(pred, g) for g in golds)
    n = max(1, len(answers))
    return {"exact_match": 100 * em / n, "F1": 100 * f / n}


def classification_scores(preds: list[int], golds: list[int], num_labels: int) -> dict[str, float]:
    """accuracy; F1 of class 1 for binary tasks (GLUE's MRPC/QQP convention), macro F1 otherwise;
    Matthews correlation (CoLA's metric, multi-class by Gorodkin's formula). Fractions 0–1."""
    n = len(golds)
    cm = [[0] * num_labels for _ in range(num_labels)]
    for p, g in zip(preds, golds):
        cm[g][p] += 1
    per_class = []
    for c in range(num_labels):
        tp = cm[c][c]
        fp = sum(cm[g][c] for g in range(num_labels)) - tp
        fn = sum(cm[c]) - tp
        per_class.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    correct = sum(cm[c][c] for c in range(num_labels))
    t = [sum(cm[c]) for c in range(num_labels)]
    p = [sum(cm[g][c] for g in range(num_labels)) for c in range(num_labels)]
    denom = math.sqrt((n * n - sum(x * x for x in p)) * (n * n - sum(x * x for x in t)))
    mcc = (correct * n - sum(a * b for a, b in zip(t, p))) / denom if denom else 0.0
    return {"accuracy": correct / max(1, n), "F1": per_class[1] if num_labels == 2 else sum(per_class) / num_labels,
            "mcc": mcc}


def entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) chunks of a BIO / IOB1 tag sequence, as conlleval reads them: an I- tag
    that does not continue a chunk of its type starts a new one."""
    out = set()
    kind, start = None, 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        continues = prefix == "I" and kind == t
        if kind is not None and not continues:
            out.add((kind, start, i - 1))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = t, i
    return out


def entity_f1(pred_seqs: list[list[str]], gold_seqs: list[list[str]]) -> dict[str, float]:
    tp = n_pred = n_gold = 0
    for p, g in zip(pred_seqs, gold_seqs):
        pe, ge = entities(p), entities(g)
        tp += len(pe & ge)
        n_pred += len(pe)
        n_gold += len(ge)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    return {"precision": precision, "recall": recall,
            "F1": 2 * precision * recall / (precision + recall) if tp else 0.0}
