"""Model configuration: named presets and Hugging Face's config.json format."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from .errors import UsageError, WeightsError


@dataclasses.dataclass
class BertConfig:
    vocab_size: int = 30528
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # Labels of classification heads, in Hugging Face's id2label shape ({"0": "neg", ...}).
    id2label: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise UsageError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ("gelu", "gelu_new", "relu"):
            raise UsageError(f"hidden_act {self.hidden_act!r} is not supported (gelu, gelu_new, relu)")

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2

    def to_hf_dict(self, architecture: str) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("id2label")
        d.update(model_type="bert", architectures=[architecture], pad_token_id=0,
                 position_embedding_type="absolute")
        if self.id2label:
            d["id2label"] = self.id2label
            d["label2id"] = {v: int(k) for k, v in self.id2label.items()}
        return d

    def save(self, path: str, architecture: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_hf_dict(architecture), f, indent=2, sort_keys=True)
            f.write("\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BertConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in d.items() if k in fields})
        if cfg.id2label:
            cfg.id2label = {str(k): v for k, v in cfg.id2label.items()}
        return cfg

    @classmethod
    def load(cls, path: str) -> "BertConfig":
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except (OSError, ValueError, TypeError) as e:
            raise WeightsError(f"{path}: cannot read model config: {e}") from e


PRESETS: dict[str, dict[str, int]] = {
    # "tiny" is sized for the offline CPU demo: it learns the demo QA task in a few CPU minutes.
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}


def pad_vocab_size(n: int, multiple: int = 8) -> int:
    """Tensor cores want matrix sides that are multiples of 8; the extra rows are never produced."""
    return (n + multiple - 1) // multiple * multiple


def resolve_config(name_or_path: str, vocab_size: int) -> BertConfig:
    """A preset name or a config.json path; the vocab is padded to a multiple of 8."""
    if name_or_path in PRESETS:
        return BertConfig(**PRESETS[name_or_path], vocab_size=pad_vocab_size(vocab_size))
    if os.path.isfile(name_or_path):
        cfg = BertConfig.load(name_or_path)
        cfg.vocab_size = pad_vocab_size(max(cfg.vocab_size, vocab_size))
        return cfg
    raise UsageError(f"--model-config: {name_or_path!r} is neither a preset "
                     f"({', '.join(PRESETS)}) nor a config.json file")
