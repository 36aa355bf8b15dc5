"""ONNX export with dynamic batch and sequence axes, for trtexec and ONNX Runtime."""

from __future__ import annotations

import inspect

import torch

from .model import BertForPreTraining, BertHead

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class _Positional(torch.nn.Module):
    """ONNX inputs are positional; this fixes their order and names."""

    def __init__(self, model: BertHead) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)


def output_names(model: BertHead) -> list[str]:
    if model.architecture == "BertForQuestionAnswering":
        return ["start_logits", "end_logits"]
    if isinstance(model, BertForPreTraining):
        return ["prediction_logits"] + (["seq_relationship_logits"] if model.cls.seq_relationship is not None else [])
    return ["logits"]


def export_onnx(model: BertHead, path: str, seq_len: int = 128, opset: int = 17) -> None:
    model = model.eval().float().cpu()
    ids = torch.ones(2, seq_len, dtype=torch.long)
    # A padded row keeps the masking path in the traced graph.
    mask = torch.ones(2, seq_len, dtype=torch.long)
    mask[1, seq_len // 2:] = 0
    names = output_names(model)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in INPUTS}
    dynamic.update({n: {0: "batch"} if n in ("logits", "seq_relationship_logits") and
                    model.architecture != "BertForTokenClassification" else {0: "batch", 1: "sequence"}
                    for n in names})
    # torch >= 2.9 defaults to the dynamo exporter, which needs the onnxscript package; the TorchScript
    # exporter needs nothing beyond torch (not even the onnx package) and honours dynamic_axes.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(_Positional(model), (ids, mask, torch.zeros_like(ids)), path, input_names=INPUTS,
                          output_names=names, dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True,
                          **legacy)
