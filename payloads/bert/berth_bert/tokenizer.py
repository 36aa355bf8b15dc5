"""BERT's WordPiece tokenizer: basic tokenisation (cleanup, CJK split, optional lower-casing and accent
stripping, punctuation split), then greedy longest-match-first word pieces against a vocab.txt.
Every token keeps the character span it came from in the original text, which is what SQuAD needs to
map answers to tokens and predictions back to text."""

from __future__ import annotations

import collections
import dataclasses
import unicodedata
from typing import Iterable

from .errors import DataError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass(frozen=True)
class Token:
    text: str
    start: int  # character offsets into the original string, end exclusive
    end: int


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT treats every non-alphanumeric ASCII character as punctuation, e.g. "$" and "^".
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _basic_words(text: str, lower_case: bool) -> list[tuple[str, list[int]]]:
    """Words and punctuation marks, each with the original index of every one of its characters
    (lower-casing and accent stripping can change a word's length)."""
    words: list[tuple[str, list[int]]] = []
    chars: list[str] = []
    where: list[int] = []

    def flush() -> None:
        if chars:
            words.append(("".join(chars), where.copy()))
            chars.clear()
            where.clear()

    for i, ch in enumerate(text):
        if ord(ch) == 0 or ord(ch) == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            flush()
            continue
        norm = ch
        if lower_case:
            norm = "".join(c for c in unicodedata.normalize("NFD", ch.lower()) if unicodedata.category(c) != "Mn")
        if _is_punctuation(ch) or _is_cjk(ord(ch)):
            flush()
            if norm:
                words.append((norm, [i] * len(norm)))
            continue
        chars.append(norm)
        where.extend([i] * len(norm))
    flush()
    return words


def basic_tokenize(text: str, lower_case: bool) -> list[Token]:
    return [Token(w, where[0], where[-1] + 1) for w, where in _basic_words(text, lower_case)]


def load_vocab(path: str) -> dict[str, int]:
    vocab: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                token = line.rstrip("\n")
                if token and token not in vocab:
                    vocab[token] = len(vocab)
    except OSError as e:
        raise DataError(path, f"cannot read vocab: {e.strerror}") from e
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise DataError(path, f"vocab lacks special tokens {missing}")
    return vocab


class WordPieceTokenizer:
    def __init__(self, vocab: dict[str, int], lower_case: bool = True, max_chars_per_word: int = 100) -> None:
        self.vocab = vocab
        self.inv_vocab = {i: t for t, i in vocab.items()}
        self.lower_case = lower_case
        self.max_chars_per_word = max_chars_per_word
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (vocab[t] for t in SPECIAL_TOKENS)

    @classmethod
    def from_file(cls, path: str, lower_case: bool = True) -> "WordPieceTokenizer":
        return cls(load_vocab(path), lower_case)

    def __len__(self) -> int:
        return len(self.vocab)

    def _word_pieces(self, text: str, where: list[int]) -> list[Token]:
        if len(text) > self.max_chars_per_word:
            return [Token("[UNK]", where[0], where[-1] + 1)]
        pieces: list[Token] = []
        i = 0
        while i < len(text):
            j = len(text)
            while j > i:
                piece = text[i:j] if i == 0 else "##" + text[i:j]
                if piece in self.vocab:
                    break
                j -= 1
            if j == i:
                return [Token("[UNK]", where[0], where[-1] + 1)]
            pieces.append(Token(piece, where[i], where[j - 1] + 1))
            i = j
        return pieces

    def tokenize_with_offsets(self, text: str) -> list[Token]:
        return [p for w, where in _basic_words(text, self.lower_case) for p in self._word_pieces(w, where)]

    def tokenize(self, text: str) -> list[str]:
        return [t.text for t in self.tokenize_with_offsets(text)]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def encode(self, text: str) -> list[int]:
        return self.convert_tokens_to_ids(self.tokenize(text))

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for i in range(len(self.inv_vocab)):
                f.write(self.inv_vocab[i] + "\n")


def build_vocab(lines: Iterable[str], size: int, lower_case: bool = True, min_count: int = 2) -> list[str]:
    """A frequency-based WordPiece vocab (not Google's likelihood-driven trainer, which needs far more
    text than our offline tiny models see): special tokens, every character seen (word-initial and
    ``##`` continuation), then whole words and word-initial / continuation pieces ranked by how many
    characters of the corpus they cover, until ``size`` entries."""
    words: collections.Counter[str] = collections.Counter()
    for line in lines:
        words.update(t.text for t in basic_tokenize(line, lower_case))
    chars: set[str] = set()
    cont_chars: set[str] = set()
    candidates: collections.Counter[str] = collections.Counter()
    for w, n in words.items():
        chars.add(w[0])
        cont_chars.update("##" + c for c in w[1:])
        if n >= min_count:
            candidates[w] += n * len(w) * 2  # whole words first: one id per word keeps sequences short
        for k in range(2, min(len(w), 10)):
            candidates[w[:k]] += n * k
            candidates["##" + w[-k:]] += n * k
    vocab = list(SPECIAL_TOKENS) + sorted(chars) + sorted(cont_chars)
    seen = set(vocab)
    for piece, _ in sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= size:
            break
        if piece not in seen:
            vocab.append(piece)
            seen.add(piece)
    return vocab
