"""Feature caches keyed by the input file and everything that shapes the features. They live under
the output directory (or --cache-dir), never next to the dataset, which may be a read-only mount."""

from __future__ import annotations

import dataclasses
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
_VERSION = 2  # bump when a feature builder changes its output


def _map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **{f.name: _map_tensors(getattr(obj, f.name), fn)
                                           for f in dataclasses.fields(obj)})
    return obj


def _narrow(t: torch.Tensor) -> torch.Tensor:
    """Token ids, masks and labels stored as int64 are 4-8x larger on disk than they need to be."""
    if t.dtype != torch.int64 or t.numel() == 0:
        return t
    lo, hi = int(t.min()), int(t.max())
    return t.to(torch.uint8) if lo >= 0 and hi < 256 else t.to(torch.int32) if hi < 2 ** 31 and lo >= -2 ** 31 else t


def _widen(t: torch.Tensor) -> torch.Tensor:
    return t.long() if t.dtype in (torch.uint8, torch.int32) else t


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
            return _map_tensors(torch.load(file, weights_only=False), _widen)  # our own file
        except Exception as e:  # a corrupt cache is rebuilt, never fatal
            print(f"cache: ignoring unreadable {file}: {e}", file=sys.stderr)
    value = build()
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_file(file) as f:
        torch.save(_map_tensors(value, _narrow), f)
    return value
