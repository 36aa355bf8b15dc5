"""Weights in and out: Hugging Face BERT folders (config.json, vocab.txt, model.safetensors or
pytorch_model.bin), NVIDIA DLE checkpoints (``{"model": state_dict}``), and our final model folder,
written in Hugging Face's layout and parameter names so other tools load it."""

from __future__ import annotations

import json
import os
import shutil
import sys

import torch

from . import safetensors
from .checkpoint import atomic_file, fsync_dir
from .config import BertConfig
from .errors import WeightsError
from .model import BertHead
from .tokenizer import WordPieceTokenizer

_QKV = ".attention.self.qkv."
_HF_QKV = (".attention.self.query.", ".attention.self.key.", ".attention.self.value.")
_DECODER = "cls.predictions.decoder."
_TIED = "cls.predictions.word_embeddings.weight"
_WORD_EMB = "bert.embeddings.word_embeddings.weight"


def to_hf_state_dict(model: BertHead) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        if _QKV in name:
            for part, hf in zip(t.chunk(3, dim=0), _HF_QKV):
                out[name.replace(_QKV, hf)] = part.clone()
        elif name == _TIED:
            out[_DECODER + "weight"] = t.clone()
        elif name == "cls.predictions.bias":
            out[name] = t.clone()
            out[_DECODER + "bias"] = t.clone()
        else:
            out[name] = t.clone()
    return out


def _normalise_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Names from Hugging Face (old and new), DLE and DDP-wrapped saves, onto Hugging Face's."""
    out = {}
    for name, t in sd.items():
        name = name.removeprefix("module.")
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        name = name.replace(".dense_act.", ".dense.")  # DLE's fused Linear+activation modules
        out[name] = t
    if not any(n.startswith("bert.") for n in out) and any(n.startswith("embeddings.") for n in out):
        out = {"bert." + n: t for n, t in out.items()}  # a bare BertModel save
    return out


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    if t.shape[0] >= rows:
        return t[:rows]
    return torch.cat([t, t.new_zeros((rows - t.shape[0],) + tuple(t.shape[1:]))])


def load_into(model: BertHead, sd: dict[str, torch.Tensor], source: str) -> list[str]:
    """Loads what matches; returns the names of parameters left at their fresh initialisation (a new
    task head). Fails if the encoder itself does not match."""
    sd = _normalise_names(sd)
    ours = model.state_dict()
    vocab = model.config.vocab_size
    merged: dict[str, torch.Tensor] = {}
    for name in ours:
        if _QKV in name:
            parts = [sd.get(name.replace(_QKV, hf)) for hf in _HF_QKV]
            if all(p is not None for p in parts):
                merged[name] = torch.cat(parts, dim=0)
        elif name == _TIED:
            if _WORD_EMB in sd:
                merged[name] = sd[_WORD_EMB]
        elif name == "cls.predictions.bias":
            bias = sd.get(name, sd.get(_DECODER + "bias"))
            if bias is not None:
                merged[name] = bias
        elif name in sd:
            merged[name] = sd[name]
    for name in (_WORD_EMB, _TIED, "cls.predictions.bias"):
        if name in merged:  # checkpoints carry the unpadded vocab (30522 for Google's BERT)
            merged[name] = _pad_rows(merged[name], vocab)
    for name, t in merged.items():
        if tuple(t.shape) != tuple(ours[name].shape):
            raise WeightsError(f"{source}: {name} has shape {tuple(t.shape)}, the model expects "
                               f"{tuple(ours[name].shape)} — does the config match the checkpoint?")
    missing = [n for n in ours if n not in merged]
    if any(n.startswith("bert.") and ".pooler." not in n for n in missing):
        raise WeightsError(f"{source}: not a BERT checkpoint we can read; missing e.g. "
                           f"{[n for n in missing if n.startswith('bert.')][:3]}")
    model.load_state_dict({**ours, **merged})
    return missing


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch pickle (Hugging Face .bin, DLE ``{"model": …}``)."""
    try:
        if path.endswith(".safetensors"):
            return safetensors.load_file(path)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            # DLE's pretraining checkpoints also pickle their data loader; only tensors are used here.
            print(f"weights: {path} holds more than tensors; loading it as a trusted pickle", file=sys.stderr)
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: cannot read weights: {e}") from e
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def find_weights(folder: str) -> str:
    for name in ("model.safetensors", "pytorch_model.bin"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise WeightsError(f"{folder}: no model.safetensors or pytorch_model.bin")


def read_pretrained(path: str) -> tuple[BertConfig | None, dict[str, torch.Tensor], str | None]:
    """(config or None, state dict, vocab.txt path or None) from a model folder or a checkpoint file;
    a file's config and vocab are taken from beside it when present."""
    if not os.path.exists(path):
        raise WeightsError(f"{path}: no such model folder or checkpoint file")
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    weights = find_weights(path) if os.path.isdir(path) else path
    cfg_path = os.path.join(folder, "config.json")
    vocab = os.path.join(folder, "vocab.txt")
    cfg = BertConfig.load(cfg_path) if os.path.isfile(cfg_path) else None
    return cfg, read_state_dict(weights), vocab if os.path.isfile(vocab) else None


def save_pretrained(model: BertHead, tokenizer: WordPieceTokenizer, folder: str) -> None:
    """The Hugging Face layout, replaced as a whole: written beside the target, then renamed over it."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{folder}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.config.save(os.path.join(tmp, "config.json"), model.architecture)
    tokenizer.save(os.path.join(tmp, "vocab.txt"))
    with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": tokenizer.lower_case,
                   "model_max_length": model.config.max_position_embeddings}, f, indent=2)
    with atomic_file(os.path.join(tmp, "model.safetensors")) as f:
        safetensors.save_file(to_hf_state_dict(model), f)
    fsync_dir(tmp)
    old = f"{folder}.old-{os.getpid()}"
    if os.path.exists(folder):
        os.rename(folder, old)
    os.rename(tmp, folder)
    fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)
