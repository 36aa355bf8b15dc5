"""CoNLL-style token classification: one token a line with its tag in the last column, a blank line
between sentences, ``-DOCSTART-`` lines ignored. Each word's tag goes on its first word piece."""

from __future__ import annotations

import torch

from ..errors import DataError
from ..tokenizer import WordPieceTokenizer

Sentence = tuple[list[str], list[str]]


def read_sentences(path: str) -> list[Sentence]:
    out: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts or parts[0] == "-DOCSTART-":
                    if words:
                        out.append((words, tags))
                        words, tags = [], []
                    continue
                if len(parts) < 2:
                    raise DataError(path, f"expected 'token ... tag', found {line.strip()!r}", n)
                words.append(parts[0])
                tags.append(parts[-1])
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror}") from e
    if words:
        out.append((words, tags))
    if not out:
        raise DataError(path, "no sentences found")
    return out


def build_features(sentences: list[Sentence], tok: WordPieceTokenizer, labels: list[str], max_seq: int,
                   path: str) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
    """Tensors, and per sentence the positions of its words' first pieces (words cut off by
    ``max_seq`` have none and count as predicted ``O``)."""
    index = {l: i for i, l in enumerate(labels)}
    ids, masks, ys, firsts = [], [], [], []
    for words, tags in sentences:
        seq, lab, first = [tok.cls_id], [-100], []
        for w, t in zip(words, tags):
            if t not in index:
                raise DataError(path, f"tag {t!r} was not seen in the training set")
            pieces = tok.encode(w) or [tok.unk_id]
            if len(seq) + len(pieces) > max_seq - 1:
                break
            first.append(len(seq))
            seq += pieces
            lab += [index[t]] + [-100] * (len(pieces) - 1)
        seq.append(tok.sep_id)
        lab.append(-100)
        pad = max_seq - len(seq)
        ids.append(seq + [tok.pad_id] * pad)
        masks.append([1] * len(seq) + [0] * pad)
        ys.append(lab + [-100] * pad)
        firsts.append(first)
    t = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(masks), "labels": torch.tensor(ys)}
    t["token_type_ids"] = torch.zeros_like(t["input_ids"])
    return t, firsts
