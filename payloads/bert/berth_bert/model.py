"""BERT encoder and task heads. Module names follow Hugging Face's BertModel so that checkpoints map
one-to-one, except that query/key/value are one fused ``qkv`` projection (one GEMM instead of three);
weights.py splits and joins it at the Hugging Face boundary."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import BertConfig

# torch >= 2.0 has a fused attention kernel (flash / memory-efficient); 1.13 (Debian) does not.
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def _activation(name: str):
    if name == "gelu":
        return F.gelu
    if name == "gelu_new":
        return lambda x: F.gelu(x, approximate="tanh")
    return F.relu


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + \
            self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """``keep`` is a boolean (B, 1, 1, S) mask of the keys to attend to, or None for all."""
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        p = self.dropout_p if self.training else 0.0
        if HAS_SDPA:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if keep is not None:
                scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
            ctx = torch.matmul(F.dropout(scores.softmax(-1), p, self.training), v)
        return ctx.transpose(1, 2).reshape(b, s, h)


class BertSelfOutput(nn.Module):
    """Projection + residual + LayerNorm; the same shape follows attention and the MLP."""

    def __init__(self, cfg: BertConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg, cfg.hidden_size)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, keep), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _activation(cfg.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertSelfOutput(cfg, cfg.intermediate_size)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        a = self.attention(x, keep)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, keep)
        return x


class BertPooler(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, cfg: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg) if add_pooling_layer else None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        keep = None
        if attention_mask is not None:
            # An all-ones mask is dropped so that SDPA may pick the flash kernel (it takes no mask).
            # The check reads a value back from the device (under torch.compile: one graph break);
            # an exported graph keeps the mask.
            if torch.jit.is_tracing() or not bool(attention_mask.all()):
                keep = attention_mask[:, None, None, :].bool()
        seq = self.encoder(self.embeddings(input_ids, token_type_ids), keep)
        return seq, (self.pooler(seq) if self.pooler is not None else None)


def init_weights(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = _activation(cfg.hidden_act)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CPU autocast (torch 1.13) leaves layer_norm uncast: a bf16 input meets fp32 weights and fails.
        # CUDA autocast runs layer_norm in fp32 anyway, so matching the weights' dtype costs nothing there.
        h = self.act(self.dense(x))
        return self.LayerNorm(h.to(self.LayerNorm.weight.dtype))


class BertLMPredictionHead(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.word_embeddings = word_embeddings  # tied decoder, as in BERT
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), self.word_embeddings.weight, self.bias)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding, nsp: bool) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings)
        self.seq_relationship = nn.Linear(cfg.hidden_size, 2) if nsp else None


class BertHead(nn.Module):
    """Base of the task models: a BertModel under ``bert`` plus a head; forward returns the loss when
    labels are given, else the logits (what ONNX export and inference want)."""

    architecture = "BertModel"

    def __init__(self, cfg: BertConfig, pooler: bool) -> None:
        super().__init__()
        self.config = cfg
        # Without a pooler where nothing reads it: DDP rejects parameters that get no gradient.
        self.bert = BertModel(cfg, add_pooling_layer=pooler)

    def reset_parameters(self) -> None:
        init_weights(self, self.config.initializer_range)


class BertForPreTraining(BertHead):
    """Masked LM, plus next-sentence prediction with ``nsp``; without NSP it is Hugging Face's
    BertForMaskedLM (no pooler), with it BertForPreTraining."""

    def __init__(self, cfg: BertConfig, nsp: bool = False) -> None:
        super().__init__(cfg, pooler=nsp)
        self.architecture = "BertForPreTraining" if nsp else "BertForMaskedLM"
        self.cls = BertPreTrainingHeads(cfg, self.bert.embeddings.word_embeddings, nsp)
        self.reset_parameters()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None,
                nsp_labels: torch.Tensor | None = None):
        seq, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        nsp_head = self.cls.seq_relationship
        if mlm_labels is None:
            return self.cls.predictions(seq), (nsp_head(pooled) if nsp_head is not None else None)
        # Only ~15% of positions are masked: project just those onto the vocabulary.
        picked = mlm_labels != -100
        logits = self.cls.predictions(seq[picked])
        loss = F.cross_entropy(logits.float(), mlm_labels[picked])
        if nsp_head is not None and nsp_labels is not None:
            loss = loss + F.cross_entropy(nsp_head(pooled).float(), nsp_labels)
        return loss


class BertForQuestionAnswering(BertHead):
    architecture = "BertForQuestionAnswering"

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__(cfg, pooler=False)
        self.qa_outputs = nn.Linear(cfg.hidden_size, 2)
        self.reset_parameters()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, start_positions: torch.Tensor | None = None,
                end_positions: torch.Tensor | None = None):
        seq, _ = self.bert(input_ids, token_type_ids, attention_mask)
        start, end = self.qa_outputs(seq).float().unbind(-1)
        if start_positions is None or end_positions is None:
            return start, end
        return (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2


class BertForSequenceClassification(BertHead):
    architecture = "BertForSequenceClassification"

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__(cfg, pooler=True)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)
        self.reset_parameters()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(pooled)).float()
        return logits if labels is None else F.cross_entropy(logits, labels)


class BertForTokenClassification(BertHead):
    architecture = "BertForTokenClassification"

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__(cfg, pooler=False)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)
        self.reset_parameters()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        seq, _ = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(seq)).float()
        if labels is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
