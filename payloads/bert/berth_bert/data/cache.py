"""Feature caches keyed by the input file and everything that shapes the features. They live under
the output directory (or --cache-dir), never next to the dataset, which may be a read-only mount."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any, Callable, TypeVar

import torch

from ..checkpoint import atomic_file
from ..errors import DataError
from ..tokenizer import WordPieceTokenizer

T = TypeVar("T")
_VERSION = 1  # bump when a feature builder changes its output


def cached(cache_dir: str | None, kind: str, path: str, tokenizer: WordPieceTokenizer, params: dict[str, Any],
           build: Callable[[], T]) -> T:
    if not os.path.isfile(path):
        raise DataError(path, "no such file")
    if not cache_dir:
        return build()
    st = os.stat(path)
    key = json.dumps({"v": _VERSION, "kind": kind, "path": os.path.abspath(path), "size": st.st_size,
                      "mtime": st.st_mtime_ns, "vocab": len(tokenizer), "lower": tokenizer.lower_case,
                      "vocab_hash": hashlib.sha256("\n".join(tokenizer.vocab).encode()).hexdigest(),
                      **params}, sort_keys=True)
    name = f"{kind}-{os.path.basename(path)}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    file = os.path.join(cache_dir, name)
    if os.path.isfile(file):
        try:
            return torch.load(file, weights_only=False)  # our own file
        except Exception as e:  # a corrupt cache is rebuilt, never fatal
            print(f"cache: ignoring unreadable {file}: {e}", file=sys.stderr)
    value = build()
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_file(file) as f:
        torch.save(value, f)
    return value
