"""Sequence classification data (GLUE-style): TSV or CSV with a header row, or JSONL objects. Text
and label columns are named by flags or found among the usual GLUE names."""

from __future__ import annotations

import csv
import json
import os

import torch

from ..errors import DataError
from ..tokenizer import WordPieceTokenizer

TEXT_COLUMNS = (("sentence1", "sentence2"), ("question1", "question2"), ("#1 String", "#2 String"),
                ("question", "sentence"), ("text_a", "text_b"), ("premise", "hypothesis"),
                ("sentence", None), ("text", None))
LABEL_COLUMNS = ("label", "gold_label", "Quality")

Row = tuple[str, str | None, str]


def read_rows(path: str, text_a: str | None, text_b: str | None, label: str | None) -> list[Row]:
    """(text_a, text_b, label) rows; errors name the file and line."""
    ext = os.path.splitext(path)[1].lower()
    records: list[tuple[int, dict]] = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if ext in (".jsonl", ".json"):
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            records.append((n, json.loads(line)))
                        except json.JSONDecodeError as e:
                            raise DataError(path, f"not a JSON object: {e.msg}", n) from e
            elif ext in (".tsv", ".csv"):
                reader = csv.DictReader(f, delimiter="\t" if ext == ".tsv" else ",", quoting=csv.QUOTE_NONE
                                        if ext == ".tsv" else csv.QUOTE_MINIMAL)
                records = [(n, row) for n, row in enumerate(reader, 2)]
            else:
                raise DataError(path, "unknown format: use .tsv, .csv or .jsonl")
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror}") from e
    if not records:
        raise DataError(path, "no rows found")
    first = records[0][1]
    if not isinstance(first, dict):
        raise DataError(path, "expected one JSON object per line", records[0][0])
    if text_a is None:
        text_a, text_b = next(((a, b) for a, b in TEXT_COLUMNS if a in first and (b is None or b in first)),
                              (None, None))
    label = label or next((c for c in LABEL_COLUMNS if c in first), None)
    if text_a is None or label is None or text_a not in first or label not in first:
        raise DataError(path, f"cannot find the text/label columns among {sorted(first)}; name them with "
                              f"--text-column/--text-pair-column/--label-column", records[0][0])
    rows: list[Row] = []
    for n, rec in records:
        if not isinstance(rec, dict) or rec.get(text_a) is None or rec.get(label) is None or \
                (text_b is not None and rec.get(text_b) is None):
            raise DataError(path, f"row lacks {text_a!r}, {text_b!r} or {label!r}", n)
        rows.append((str(rec[text_a]), str(rec[text_b]) if text_b else None, str(rec[label])))
    return rows


def build_features(rows: list[Row], tok: WordPieceTokenizer, labels: list[str], max_seq: int,
                   path: str) -> dict[str, torch.Tensor]:
    index = {l: i for i, l in enumerate(labels)}
    ids, types, masks, ys = [], [], [], []
    for n, (a, b, y) in enumerate(rows):
        if y not in index:
            raise DataError(path, f"label {y!r} was not seen in the training set ({labels})")
        ta = tok.encode(a)
        tb = tok.encode(b) if b is not None else []
        budget = max_seq - (3 if b is not None else 2)
        while len(ta) + len(tb) > budget:  # longest-first truncation
            (ta if len(ta) >= len(tb) else tb).pop()
        seq = [tok.cls_id] + ta + [tok.sep_id]
        tt = [0] * len(seq)
        if b is not None:
            seq += tb + [tok.sep_id]
            tt += [1] * (len(tb) + 1)
        pad = max_seq - len(seq)
        ids.append(seq + [tok.pad_id] * pad)
        types.append(tt + [0] * pad)
        masks.append([1] * len(seq) + [0] * pad)
        ys.append(index[y])
    return {"input_ids": torch.tensor(ids), "token_type_ids": torch.tensor(types),
            "attention_mask": torch.tensor(masks), "labels": torch.tensor(ys)}
