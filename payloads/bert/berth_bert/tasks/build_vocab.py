"""Builds a WordPiece vocab.txt from raw text, for offline models trained from scratch."""

from __future__ import annotations

import argparse
import os

from ..errors import DataError, UsageError
from ..tokenizer import WordPieceTokenizer, build_vocab


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, nargs="+", help="UTF-8 text file(s)")
    p.add_argument("--output", required=True, help="vocab.txt to write")
    p.add_argument("--vocab-size", type=int, default=4000, help="entries, special tokens included (default: 4000)")
    p.add_argument("--min-count", type=int, default=2, help="whole words seen fewer times are split (default: 2)")
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case)")


def run(args: argparse.Namespace) -> int:
    if args.vocab_size < 16:
        raise UsageError("--vocab-size must be at least 16")

    def lines():
        for path in args.input:
            try:
                with open(path, encoding="utf-8") as f:
                    yield from f
            except OSError as e:
                raise DataError(path, f"cannot read: {e.strerror}") from e

    tokens = build_vocab(lines(), args.vocab_size, lower_case=not args.cased, min_count=args.min_count)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    WordPieceTokenizer({t: i for i, t in enumerate(tokens)}).save(args.output)
    print(f"build-vocab: wrote {len(tokens)} tokens to {args.output}")
    return 0
