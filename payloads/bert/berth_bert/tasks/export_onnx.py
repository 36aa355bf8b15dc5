"""Exports a fine-tuned model folder to ONNX (dynamic batch and sequence axes)."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import WeightsError
from ..export import export_onnx
from ..model import (BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification,
                     BertForTokenClassification)
from ..weights import load_into, read_pretrained

HEADS = {cls.architecture: cls for cls in (BertForQuestionAnswering, BertForSequenceClassification,
                                           BertForTokenClassification)}
HEADS["BertForPreTraining"] = HEADS["BertForMaskedLM"] = BertForPreTraining


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init-from", required=True, help="model folder in Hugging Face layout (e.g. <output>/model)")
    p.add_argument("--output", default="/results/model.onnx", help="ONNX file to write (default: %(default)s)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17; 14 is the oldest that works)")
    p.add_argument("--trace-seq-length", type=int, default=128,
                   help="sequence length of the example input used for tracing; the axes stay dynamic")


def run(args: argparse.Namespace) -> int:
    cfg, state, _ = read_pretrained(args.init_from)
    if cfg is None:
        raise WeightsError(f"{args.init_from}: no config.json")
    with open(os.path.join(args.init_from, "config.json")) as f:
        arch = (json.load(f).get("architectures") or ["BertForQuestionAnswering"])[0]
    head = HEADS.get(arch)
    if head is None:
        raise WeightsError(f"{args.init_from}: architecture {arch} cannot be exported ({', '.join(HEADS)})")
    if head is BertForPreTraining:
        model = BertForPreTraining(cfg, nsp=any(k.startswith("cls.seq_relationship.") for k in state))
    else:
        model = head(cfg)
    load_into(model, state, args.init_from)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    export_onnx(model, args.output, args.trace_seq_length, args.opset)
    print(f"export-onnx: wrote {args.output} ({os.path.getsize(args.output)} bytes)")
    return 0
