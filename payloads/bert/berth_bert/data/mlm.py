"""Raw text for masked-LM pretraining: one sentence or paragraph a line, a blank line between
documents. Lines are packed into sequences; masking is dynamic (new positions every epoch), 80% [MASK],
10% a random token, 10% unchanged, as in BERT."""

from __future__ import annotations

import random

import torch

from ..errors import DataError
from ..tokenizer import WordPieceTokenizer


def read_documents(path: str, tok: WordPieceTokenizer) -> list[list[list[int]]]:
    """Documents as lists of tokenised lines."""
    docs: list[list[list[int]]] = [[]]
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    if docs[-1]:
                        docs.append([])
                    continue
                ids = tok.encode(line)
                if ids:
                    docs[-1].append(ids)
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text: {e.reason}", n) from e
    docs = [d for d in docs if d]
    if not docs:
        raise DataError(path, "no text found")
    return docs


def build_features(docs: list[list[list[int]]], tok: WordPieceTokenizer, max_seq: int, nsp: bool,
                   seed: int) -> dict[str, torch.Tensor]:
    """Packs consecutive lines of a document into sequences of up to ``max_seq`` tokens. With NSP each
    sequence is two segments: B follows A (label 0) or, half of the time, comes from another document
    (label 1). NSP pairs are fixed here; only the masking is redrawn per epoch."""
    rng = random.Random(seed)
    budget = max_seq - (3 if nsp else 2)
    ids, types, nsp_labels = [], [], []

    def emit(a: list[int], b: list[int] | None, label: int) -> None:
        seq = [tok.cls_id] + a + [tok.sep_id]
        tt = [0] * len(seq)
        if b is not None:
            seq += b + [tok.sep_id]
            tt += [1] * (len(b) + 1)
        ids.append(seq + [tok.pad_id] * (max_seq - len(seq)))
        types.append(tt + [0] * (max_seq - len(tt)))
        nsp_labels.append(label)

    for d, doc in enumerate(docs):
        chunk: list[list[int]] = []
        size = 0
        for line in doc + [None]:  # None flushes the last chunk
            if line is not None and (size + len(line) <= budget or not chunk):
                chunk.append(line[:budget])
                size += len(chunk[-1])
                continue
            if not nsp:
                emit([t for l in chunk for t in l], None, 0)
            else:
                cut = rng.randint(1, len(chunk) - 1) if len(chunk) > 1 else 1
                a = [t for l in chunk[:cut] for t in l]
                b = [t for l in chunk[cut:] for t in l]
                label = 0
                if not b or (len(docs) > 1 and rng.random() < 0.5):
                    other = docs[rng.choice([i for i in range(len(docs)) if i != d])] if len(docs) > 1 else doc
                    b, label = [t for l in other for t in l], 1
                while len(a) + len(b) > budget:  # trim the longer segment, as BERT's data builder does
                    if len(a) > len(b):
                        a.pop()
                    else:
                        b.pop()
                emit(a, b, label)
            chunk = [line[:budget]] if line is not None else []
            size = len(chunk[0]) if chunk else 0
    out = {"input_ids": torch.tensor(ids), "token_type_ids": torch.tensor(types)}
    if nsp:
        out["nsp_labels"] = torch.tensor(nsp_labels)
    return out


def masker(tok: WordPieceTokenizer, probability: float = 0.15):
    """The batch transform: masks ~``probability`` of the real tokens, at least one per sequence."""
    specials = torch.tensor([tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.unk_id])
    vocab = len(tok)

    def transform(batch: dict[str, torch.Tensor], g: torch.Generator) -> dict[str, torch.Tensor]:
        ids = batch["input_ids"].clone()
        candidate = ~torch.isin(ids, specials)
        score = torch.rand(ids.shape, generator=g).masked_fill(~candidate, 2.0)
        chosen = score < probability
        # Rows where chance picked nothing still get their lowest-scoring candidate.
        lowest = torch.zeros_like(chosen).scatter_(1, score.argmin(dim=1, keepdim=True), True)
        chosen |= lowest & candidate & ~chosen.any(dim=1, keepdim=True)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        action = torch.rand(ids.shape, generator=g)
        ids[chosen & (action < 0.8)] = tok.mask_id
        swap = chosen & (action >= 0.8) & (action < 0.9)
        ids[swap] = torch.randint(len(specials), vocab, (int(swap.sum()),), generator=g)
        out = {"input_ids": ids, "token_type_ids": batch["token_type_ids"],
               "attention_mask": (batch["input_ids"] != tok.pad_id).long(), "mlm_labels": labels}
        if "nsp_labels" in batch:
            out["nsp_labels"] = batch["nsp_labels"]
        return out

    return transform
