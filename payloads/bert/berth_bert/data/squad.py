"""SQuAD v1.1 / v2.0: examples from the JSON, windows over long contexts (doc stride), answer spans
mapped through the tokenizer's character offsets, and n-best span decoding back to text."""

from __future__ import annotations

import dataclasses
import json

import torch

from ..errors import DataError, UsageError
from ..tokenizer import WordPieceTokenizer


@dataclasses.dataclass
class Example:
    qid: str
    question: str
    context: str
    answers: list[str]  # every gold answer text; empty for an unanswerable v2 question
    answer_start: int  # character offset of the first answer (training target), -1 if none


@dataclasses.dataclass
class Features:
    tensors: dict[str, torch.Tensor]
    example_index: list[int]
    # Per feature and position: the (start, end) character span in the context, or None outside it.
    offsets: list[list[tuple[int, int] | None]]
    # Per feature and position: whether this window gives the token its most context.
    max_context: list[list[bool]]


def read_examples(path: str) -> list[Example]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON: {e.msg} (column {e.colno})", e.lineno) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(path, 'not SQuAD format: expected {"data": [...]} at the top')
    out: list[Example] = []
    try:
        for a, article in enumerate(doc["data"]):
            for p, para in enumerate(article["paragraphs"]):
                context = para["context"]
                for qa in para["qas"]:
                    answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                    texts = [x["text"] for x in answers]
                    start = answers[0]["answer_start"] if answers else -1
                    if answers and context[start:start + len(texts[0])] != texts[0]:
                        raise DataError(path, f"question {qa['id']}: answer {texts[0]!r} is not at "
                                              f"context offset {start}")
                    out.append(Example(str(qa["id"]), qa["question"], context, texts, start))
    except (KeyError, TypeError, IndexError) as e:
        raise DataError(path, f"not SQuAD format in data[{a}].paragraphs[{p}]: missing or bad {e}") from e
    if not out:
        raise DataError(path, "no questions found")
    return out


def _windows(n: int, max_len: int, stride: int) -> list[tuple[int, int]]:
    spans, start = [], 0
    while True:
        length = min(max_len, n - start)
        spans.append((start, length))
        if start + length >= n:
            return spans
        start += min(length, stride)


def _is_max_context(spans: list[tuple[int, int]], current: int, pos: int) -> bool:
    """A token in several windows is scored only in the one where it has the most context on both sides."""
    best, best_score = None, -1.0
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if pos < start or pos > end:
            continue
        score = min(pos - start, end - pos) + 0.01 * length
        if score > best_score:
            best, best_score = i, score
    return best == current


def build_features(examples: list[Example], tok: WordPieceTokenizer, max_seq: int, doc_stride: int,
                   max_query: int, training: bool) -> Features:
    ids, types, masks, starts, ends = [], [], [], [], []
    example_index: list[int] = []
    offsets: list[list[tuple[int, int] | None]] = []
    max_context: list[list[bool]] = []
    for ei, ex in enumerate(examples):
        q = tok.convert_tokens_to_ids(tok.tokenize(ex.question)[:max_query])
        ctx = tok.tokenize_with_offsets(ex.context)
        ctx_ids = tok.convert_tokens_to_ids(t.text for t in ctx)
        room = max_seq - len(q) - 3
        if room < 1:
            raise UsageError(f"--max-seq-length {max_seq} leaves no room for context after the question")
        ans_tok = None
        if training and ex.answers:
            a0, a1 = ex.answer_start, ex.answer_start + len(ex.answers[0])
            inside = [i for i, t in enumerate(ctx) if t.end > a0 and t.start < a1]
            if inside:
                ans_tok = (inside[0], inside[-1])
        spans = _windows(len(ctx), room, doc_stride)
        for si, (s0, length) in enumerate(spans):
            head = [tok.cls_id] + q + [tok.sep_id]
            seq = head + ctx_ids[s0:s0 + length] + [tok.sep_id]
            pad = max_seq - len(seq)
            ids.append(seq + [tok.pad_id] * pad)
            types.append([0] * len(head) + [1] * (length + 1) + [0] * pad)
            masks.append([1] * len(seq) + [0] * pad)
            off: list[tuple[int, int] | None] = [None] * max_seq
            mc = [False] * max_seq
            for k in range(length):
                off[len(head) + k] = (ctx[s0 + k].start, ctx[s0 + k].end)
                mc[len(head) + k] = _is_max_context(spans, si, s0 + k)
            offsets.append(off)
            max_context.append(mc)
            example_index.append(ei)
            start = end = 0  # [CLS]: no answer in this window (or none at all)
            if ans_tok and s0 <= ans_tok[0] and ans_tok[1] < s0 + length:
                start, end = ans_tok[0] - s0 + len(head), ans_tok[1] - s0 + len(head)
            starts.append(start)
            ends.append(end)
    tensors = {"input_ids": torch.tensor(ids), "token_type_ids": torch.tensor(types),
               "attention_mask": torch.tensor(masks)}
    if training:
        tensors["start_positions"] = torch.tensor(starts)
        tensors["end_positions"] = torch.tensor(ends)
    return Features(tensors, example_index, offsets, max_context)


def decode(examples: list[Example], feats: Features, start_logits: torch.Tensor, end_logits: torch.Tensor,
           n_best: int = 20, max_answer_tokens: int = 30, version_2: bool = False,
           null_threshold: float = 0.0) -> dict[str, str]:
    """Best span per question over all its windows; with v2, "" when the null score wins."""
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    for f, ei in enumerate(feats.example_index):
        s, e = start_logits[f], end_logits[f]
        null[ei] = min(null.get(ei, float("inf")), float(s[0] + e[0]))
        off, mc = feats.offsets[f], feats.max_context[f]
        top_s = torch.topk(s, min(n_best, s.numel())).indices.tolist()
        top_e = torch.topk(e, min(n_best, e.numel())).indices.tolist()
        for i in top_s:
            if off[i] is None or not mc[i]:
                continue
            for j in top_e:
                if off[j] is None or j < i or j - i + 1 > max_answer_tokens:
                    continue
                score = float(s[i] + e[j])
                if ei not in best or score > best[ei][0]:
                    ctx = examples[ei].context
                    best[ei] = (score, ctx[off[i][0]:off[j][1]])
    out = {}
    for ei, ex in enumerate(examples):
        score, text = best.get(ei, (float("-inf"), ""))
        if version_2 and null.get(ei, float("-inf")) - score > null_threshold:
            text = ""
        out[ex.qid] = text
    return out
